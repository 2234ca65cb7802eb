/**
 * The trainer of a run's network(s): one U-Net trainer (trainer.ts), or, for a
 * config with experts (diffusion/experts.ts), K of them behind the same
 * Trainer interface. A step routes each row of the batch to the expert owning
 * its t (the routing sampling uses), and every expert takes one Adam step on
 * its rows: its own loss (the mean over its rows), its own gradient clipping,
 * Adam moments and EMA. The step's loss is the mean over all rows (Σ n_k·loss_k / n,
 * comparable with a single network's), its gradient norm the norm over all
 * experts' gradients together; each expert's loss goes to log.jsonl
 * (expert<k>Loss).
 *
 * Every expert must get at least one row per step (the training loop's
 * stratified batches give each its share), so the experts step in lockstep and
 * one Adam step count describes them all. The state is one TrainerState whose
 * tensor names carry the experts' prefixes (checkpoint.ts), so checkpoints,
 * resume and sampling read it like any other.
 */
import type { DiffuseConfig } from '../config.js';
import { expertIndex, expertRange, expertWeights, joinExpertWeights, type SplitOptimizer } from '../diffusion/experts.js';
import { DiffuseError } from '../errors.js';
import { conditionLength } from '../model/config.js';
import { copyWeights, type Weights, zeroWeights } from '../tensor.js';
import { createTrainer, type StepHyper, type StepResult, type TrainBatch, type Trainer, type TrainerOptions, type TrainerState } from './trainer.js';

/** One expert's part of a step. */
export interface ExpertStep {
  readonly rows: number;
  readonly loss: number;
  readonly gradNorm: number;
}

/** A trainer of every network of a run; `step` also reports each expert's part (one entry for a single network). */
export interface RunTrainer extends Trainer {
  step(batch: TrainBatch, hp: StepHyper): Promise<StepResult & { experts: ExpertStep[] }>;
  /** Number of networks (1, or config.experts.count). */
  readonly networks: number;
}

/** The rows of a batch whose indices are `rows`, as a batch of their own. */
function gatherRows(b: TrainBatch, rows: readonly number[], condLen: number): TrainBatch {
  const [, h, w, c] = b.shape;
  const per = h * w * c;
  const outPer = b.target.length / b.shape[0];
  const xt = new Float32Array(rows.length * per);
  const target = new Float32Array(rows.length * outPer);
  const t = new Float32Array(rows.length);
  const cond = b.cond === undefined ? undefined : new Int32Array(rows.length * condLen);
  rows.forEach((r, i) => {
    xt.set(b.xt.subarray(r * per, (r + 1) * per), i * per);
    target.set(b.target.subarray(r * outPer, (r + 1) * outPer), i * outPer);
    t[i] = b.t[r]!;
    cond?.set(b.cond!.subarray(r * condLen, (r + 1) * condLen), i * condLen);
  });
  return { xt, t, target, shape: [rows.length, h, w, c], ...(cond !== undefined ? { cond } : {}) };
}

function joinStates(states: readonly TrainerState[]): TrainerState {
  const step = states[0]!.adam.step;
  if (states.some((s) => s.adam.step !== step)) throw new DiffuseError(`the experts' optimizers are at different steps (${states.map((s) => s.adam.step).join(', ')})`);
  return {
    params: joinExpertWeights(states.map((s) => s.params)),
    ema: joinExpertWeights(states.map((s) => s.ema)),
    adam: { step, m: joinExpertWeights(states.map((s) => s.adam.m)), v: joinExpertWeights(states.map((s) => s.adam.v)) },
  };
}

function splitState(config: DiffuseConfig, s: TrainerState): TrainerState[] {
  const part = (w: Weights, what: string): Weights[] => expertWeights(config.experts?.count ?? 1, w, `trainer state ${what}`);
  const p = part(s.params, 'params');
  const e = part(s.ema, 'ema');
  const m = part(s.adam.m, 'adam.m');
  const v = part(s.adam.v, 'adam.v');
  return p.map((params, k) => ({ params, ema: e[k]!, adam: { step: s.adam.step, m: m[k]!, v: v[k]! } }));
}

/**
 * The state of K experts made from one shared network (eDiff-I's
 * shared-then-split recipe): each expert a copy of its weights and EMA, with
 * the shared network's Adam moments ('copy') or fresh ones ('fresh': zero
 * moments, Adam step 0).
 */
export function splitSharedState(config: DiffuseConfig, shared: TrainerState, optimizer: SplitOptimizer): TrainerState {
  const K = config.experts?.count ?? 1;
  let adam: TrainerState['adam'];
  switch (optimizer) {
    case 'copy': adam = shared.adam; break;
    case 'fresh': adam = { step: 0, m: zeroWeights(shared.adam.m), v: zeroWeights(shared.adam.v) }; break;
    default: {
      const never: never = optimizer;
      throw new DiffuseError(`unknown split optimizer '${String(never)}'`);
    }
  }
  const one: TrainerState = { params: shared.params, ema: shared.ema, adam };
  return joinStates(Array.from({ length: K }, () => ({ params: copyWeights(one.params), ema: copyWeights(one.ema), adam: { step: one.adam.step, m: copyWeights(one.adam.m), v: copyWeights(one.adam.v) } })));
}

/** The trainer of a run: its one network, or its K experts (all starting from the same initial weights, the seed's). */
export async function createRunTrainer(config: DiffuseConfig, opts: TrainerOptions): Promise<RunTrainer> {
  const ex = config.experts;
  if (ex === undefined) {
    const one = await createTrainer(config.model, opts);
    return {
      networks: 1,
      workers: one.workers,
      engine: one.engine,
      ...(one.notice !== undefined ? { notice: one.notice } : {}),
      step: async (batch, hp) => {
        const r = await one.step(batch, hp);
        return { ...r, experts: [{ rows: batch.shape[0], ...r }] };
      },
      exportState: () => one.exportState(),
      importState: (s) => one.importState(s),
      dispose: () => one.dispose(),
    };
  }
  const trainers: Trainer[] = [];
  try {
    for (let k = 0; k < ex.count; k++) trainers.push(await createTrainer(config.model, opts));
  } catch (err) {
    await Promise.all(trainers.map((t) => t.dispose()));
    throw err;
  }
  const condLen = conditionLength(config.model);
  const first = trainers[0]!;
  return {
    networks: ex.count,
    workers: first.workers,
    engine: `${first.engine}, for each of ${ex.count} experts in turn`,
    ...(first.notice !== undefined ? { notice: first.notice } : {}),
    step: async (batch, hp) => {
      const n = batch.shape[0];
      if (!(batch.t instanceof Float32Array) || batch.t.length !== n) throw new DiffuseError(`train batch t must be a Float32Array of ${n} values`);
      const rows: number[][] = Array.from({ length: ex.count }, () => []);
      for (let i = 0; i < n; i++) rows[expertIndex(ex.boundaries, batch.t[i]!)]!.push(i);
      const empty = rows.findIndex((r) => r.length === 0);
      if (empty >= 0) throw new DiffuseError(`train batch has no image for expert ${empty} (${expertRange(ex.boundaries, empty)}): every expert needs at least one per step`);
      const parts: ExpertStep[] = [];
      for (let k = 0; k < ex.count; k++) {
        const r = await trainers[k]!.step(gatherRows(batch, rows[k]!, condLen), hp);
        parts.push({ rows: rows[k]!.length, ...r });
      }
      const loss = parts.reduce((a, p) => a + p.rows * p.loss, 0) / n;
      const gradNorm = Math.sqrt(parts.reduce((a, p) => a + p.gradNorm ** 2, 0));
      return { loss, gradNorm, experts: parts, log: Object.fromEntries(parts.map((p, k) => [`expert${k}Loss`, p.loss])) };
    },
    exportState: async () => joinStates(await Promise.all(trainers.map((t) => t.exportState()))),
    importState: async (s) => {
      const parts = splitState(config, s);
      for (let k = 0; k < ex.count; k++) await trainers[k]!.importState(parts[k]!);
    },
    dispose: async () => {
      await Promise.all(trainers.map((t) => t.dispose()));
    },
  };
}
