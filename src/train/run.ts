/**
 * A training run, for any network: the loop around the trainer core, written
 * once. A `Stage` says what is trained (the diffusion model: train.ts; the
 * autoencoder: latent/train-autoencoder.ts): how a batch is made from the
 * data, what is written every `sampleEvery` steps, and which config codec the
 * checkpoint uses. The run does the rest:
 *
 *   lock the folder; resume (the checkpoint's config, weights, Adam, RNG and
 *   data order) or refuse a folder that holds a run unless overwriting;
 *   resumable overrides; load and check the data; one seeded Rng and a seeded
 *   batch sampler (both checkpointed, so N steps straight and N/2 + resume +
 *   N/2 give the same weights); the progress bar, log.jsonl, checkpoints every
 *   `checkpointEvery` steps and at the end; the abort signal (Ctrl-C in the
 *   CLI) finishes the current step and saves.
 *
 * A new run may also start from another run's state (`startFrom`: train.ts
 * splits a shared network into experts that way): its config, weights, Adam,
 * step, RNG, data order and log, continued in a folder of its own.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DiffuseError } from '../errors.js';
import { Rng } from '../rng.js';
import { BatchSampler } from '../data/batches.js';
import { type Dataset, samplingGroups } from '../data/dataset.js';
import type { DataConfig, TrainConfig } from '../config.js';
import { checkpointDir, type CheckpointPart, type ConfigCodec, loadCheckpointWith, saveCheckpointWith, type TrainingState, LOSS_HISTORY_TAIL } from './checkpoint.js';
import type { StepHyper, Trainer, TrainerState } from './trainer.js';
import { JsonlLog, type LogRecord, readLog, rewriteLog } from './log.js';
import type { BackendName } from '../engine/backend.js';
import { lockFolder } from '../io/lock.js';
import { siblingFolders } from '../io/folder-swap.js';
import { ProgressBar, type ProgressStream } from '../io/progress.js';
import type { Weights } from '../tensor.js';

/** What every run's config has: the data and the training settings. */
export interface RunConfig {
  data: DataConfig;
  train: TrainConfig;
}

/** Settings that may change when a run is resumed: the budget, the cool-down, the workers and the outputs (not the model, the data or the optimiser). */
export type ResumableSettings = Partial<Pick<TrainConfig, 'steps' | 'lrDecaySteps' | 'workers' | 'sampleEvery' | 'checkpointEvery'>>;
export const RESUMABLE_SETTINGS: readonly (keyof ResumableSettings)[] = ['steps', 'lrDecaySteps', 'workers', 'sampleEvery', 'checkpointEvery'];

export interface RunOptions<C extends RunConfig> {
  /** The run's config (ignored when resuming: the checkpoint's config wins, except `overrides`). */
  readonly config: C;
  /** Run folder: holds checkpoint/ (swapped atomically), log.jsonl, samples/ and, while training, .lock. */
  readonly outDir: string;
  /** Continue from the checkpoint in outDir. */
  readonly resume?: boolean;
  /** Start a new run in a folder that already holds one (its checkpoint and log are replaced). */
  readonly overwrite?: boolean;
  /** Change these settings of the config (of the checkpoint, when resuming; each change is logged). */
  readonly overrides?: ResumableSettings;
  /** Stop after this many steps in this call (the checkpoint then says where to resume). */
  readonly stopAfter?: number;
  /** When aborted: finish the current step, save a checkpoint and return (result.interrupted). */
  readonly signal?: AbortSignal;
  /** tfjs backend of the trainer (default: tensorflow if installed, else wasm). */
  readonly backend?: BackendName;
  /** Data set already in memory (tests); otherwise loaded from config.data. */
  readonly dataset?: Dataset;
  /** Where the data set lives, for 'fashion-mnist' and 'folder'. */
  readonly dataDir?: string;
  /** Skip unreadable images in a folder data set (counted) instead of stopping. */
  readonly skipBad?: boolean;
  /** Progress bar stream (default stderr); null = no bar. */
  readonly progress?: ProgressStream | null;
  /** Called with each sample grid (or reconstruction grid) written (path). */
  readonly onSamples?: (file: string, step: number) => void | Promise<void>;
  /** Print one-line messages (resume info, skipped files, warnings). */
  readonly log?: (msg: string) => void;
  /** Called once the run's config is final (e.g. classes taken from the data), before the first step. */
  readonly onStart?: (config: C, resumedAt: number | undefined) => void;
  /**
   * Start this new run (not a resume: outDir is checked as for any new run)
   * from another run's state instead of from scratch; called once outDir is
   * locked. The run trains on from that step to train.steps (above it).
   */
  readonly startFrom?: () => Promise<RunStart<C>>;
}

/** The state a new run starts from (RunOptions.startFrom). */
export interface RunStart<C> {
  /** The new run's config (`overrides` still apply). */
  readonly config: C;
  readonly state: TrainerState;
  /** The step, RNG and data order it continues (absent: step 0, the new config's seed and data order). */
  readonly training?: TrainingState;
  /** Checkpoint parts it brings (a latent model's autoencoder). */
  readonly parts?: Partial<Record<CheckpointPart, Weights>>;
  /** log.jsonl lines up to that step: the new run's log starts with them. */
  readonly log: readonly LogRecord[];
  /** What it starts from, in words (for messages: "the shared network of runs/a"). */
  readonly what: string;
  /** Said once the run's settings are checked, before its data is loaded. */
  readonly message?: string;
}

export interface RunResult<C> {
  /** The config of the last checkpoint saved (with what the stage measured, e.g. an autoencoder's latent statistics). */
  readonly config: C;
  readonly step: number;
  readonly lastLoss: number;
  readonly seconds: number;
  readonly imgPerSec: number;
  /** The checkpoint folder written. */
  readonly checkpoint: string;
  /** True when the abort signal stopped the run early (after saving). */
  readonly interrupted: boolean;
}

/** What the run learns about the stage's start. */
export interface StageContext {
  /** The run continues a checkpoint's state (resumed, or started from another run's: RunOptions.startFrom). */
  readonly resumed: boolean;
  /** The checkpoint's parts (resumed runs). */
  readonly parts: Partial<Record<CheckpointPart, Weights>> | undefined;
  readonly outDir: string;
  readonly say: (msg: string) => void;
  readonly progress: ProgressStream | null | undefined;
}

/** A stage, ready to train: built once the config is parsed and the data loaded. */
export interface PreparedStage<C, B> {
  /** The final config (e.g. with the data set's classes); saved in every checkpoint. */
  readonly config: C;
  /** The trainer (created after onStart, so the model's summary prints first). */
  createTrainer(): Promise<Trainer<B>>;
  /** The batch of the given data indices; everything random comes from `rng` (checkpointed). */
  batch(idx: Int32Array, rng: Rng): B;
  /** Images in a batch (for img/s). */
  batchImages(b: B): number;
  /** Every sampleEvery steps: write a picture of the EMA weights to `file` (the run folder's samples/). */
  snapshot?(ema: Weights, step: number, file: string): Promise<void>;
  /** A few words for the progress bar (e.g. the last held-out PSNR). */
  status?(): string | undefined;
  /** What a checkpoint saves besides the trainer's state: the config at this step (stage statistics) and the parts. */
  checkpoint?(state: TrainerState, step: number): Promise<{ config: C; parts?: Partial<Record<CheckpointPart, Weights>> }>;
  dispose?(): Promise<void>;
}

/** What is trained in a run. */
export interface Stage<C extends RunConfig, B> {
  /** How the checkpoint stores the config and which weights it holds. */
  readonly codec: ConfigCodec<C>;
  /** Checks of a parsed config before any data is loaded (memory); `source` names the config. */
  check?(config: C, source: string): void;
  /** Load the data set the config names. */
  loadData(config: C): Promise<Dataset>;
  prepare(config: C, data: Dataset, cx: StageContext): Promise<PreparedStage<C, B>>;
}

/** What in `outDir` shows an earlier run (a checkpoint, an interrupted save, a log), in words; undefined if none. */
export function existingRun(outDir: string): string | undefined {
  const ck = checkpointDir(outDir);
  if (existsSync(join(ck, 'config.json')) || existsSync(join(ck, 'state.json'))) return `a checkpoint (${ck})`;
  if (siblingFolders(ck, 'tmp').length + siblingFolders(ck, 'old').length > 0) return `a checkpoint left by an interrupted save (${ck}.*)`;
  if (existsSync(join(outDir, 'log.jsonl'))) return `a training log (${join(outDir, 'log.jsonl')})`;
  return undefined;
}

/**
 * The learning rate of optimizer step `step` (0-based) of a `totalSteps` run:
 * warm-up, stable, decay (WSD; Hägele et al. 2024, "Scaling Laws and
 * Compute-Optimal Training Beyond Fixed Training Durations").
 *
 *   warm-up   lr * (s + 1) / W                     s < W
 *   stable    lr
 *   decay     lr * (S - s) / D                     s >= S - D
 *
 * with W = warmupSteps, D = decaySteps, S = totalSteps (the factors multiply
 * where the phases overlap). D = 0: constant after the warm-up. Because the
 * decay is anchored to the end, a run can be trained at a constant rate and
 * cooled down later: resume it with a larger S and a D.
 */
export function learningRate(step: number, lr: number, warmupSteps: number, decaySteps = 0, totalSteps = 0): number {
  const warm = warmupSteps > 0 ? Math.min(1, (step + 1) / warmupSteps) : 1;
  const decay = decaySteps > 0 ? Math.min(1, Math.max(0, totalSteps - step) / decaySteps) : 1;
  return lr * warm * decay;
}

/**
 * EMA decay with a warm-up, min(decay, (1 + n) / (10 + n)) after n updates (as
 * TensorFlow's ExponentialMovingAverage with num_updates): early on the average
 * follows the fast-moving weights instead of staying anchored to the random
 * initialisation, so sample grids are meaningful from the first few hundred steps.
 */
export function emaDecayAt(step: number, decay: number): number {
  return Math.min(decay, (1 + step) / (10 + step));
}

/** Run (or resume) the training of a stage; writes checkpoints to opts.outDir. */
export async function runTraining<C extends RunConfig, B>(stage: Stage<C, B>, opts: RunOptions<C>): Promise<RunResult<C>> {
  const say = opts.log ?? (() => {});
  if (opts.resume && opts.overwrite) throw new DiffuseError('resume or overwrite a run, not both');
  if (opts.resume && opts.startFrom) throw new DiffuseError('resume a run or start a new one from another run\'s state, not both');
  if (opts.resume && !existsSync(opts.outDir)) throw new DiffuseError(`cannot resume ${opts.outDir}: no such folder`);
  const lock = lockFolder(opts.outDir, 'training run', say);
  try {
    return await runLocked(stage, opts, say);
  } finally {
    lock.release();
  }
}

async function runLocked<C extends RunConfig, B>(stage: Stage<C, B>, opts: RunOptions<C>, say: (msg: string) => void): Promise<RunResult<C>> {
  let config = opts.config;
  let resumed: { state: TrainerState; training: TrainingState | undefined; parts: Partial<Record<CheckpointPart, Weights>> | undefined } | undefined;
  let started: RunStart<C> | undefined;
  const ckDir = checkpointDir(opts.outDir);
  const notes: string[] = []; // said once the settings are known to be valid: bad input gets one line
  if (opts.resume) {
    const ck = await loadCheckpointWith(ckDir, stage.codec);
    config = ck.config;
    resumed = { state: ck.state, training: ck.trainingState, parts: ck.parts };
    const sb = ck.trainingState.sampler.batchSize;
    if (sb !== config.train.batchSize) {
      throw new DiffuseError(`${join(ckDir, 'state.json')}: the data sampler's batch size ${sb} differs from the config's train.batchSize ${config.train.batchSize} (damaged checkpoint?)`);
    }
    notes.push(`resuming ${opts.outDir} at step ${ck.trainingState.step}`);
  } else {
    const found = existingRun(opts.outDir);
    if (found !== undefined && !opts.overwrite) {
      throw new DiffuseError(`${opts.outDir} already holds a run: ${found}; continue it with --resume ${opts.outDir}, start over with --overwrite, or choose another --out`);
    }
    if (opts.startFrom !== undefined) {
      started = await opts.startFrom();
      config = started.config;
      resumed = { state: started.state, training: started.training, parts: started.parts };
    }
  }
  for (const k of RESUMABLE_SETTINGS) {
    const v = opts.overrides?.[k];
    if (v === undefined || v === config.train[k]) continue;
    if (opts.resume) notes.push(`resuming with ${k} ${v} (was ${config.train[k]})`);
    config = { ...config, train: { ...config.train, [k]: v } };
  }
  const source = opts.resume ? join(ckDir, 'config.json') : 'the run\'s config';
  config = stage.codec.parse(JSON.parse(stage.codec.stringify(config)), source);
  const tc = config.train;
  const totalSteps = tc.steps;
  if (tc.workers !== 1 && tc.workers !== 2) throw new DiffuseError(`train.workers must be 1 or 2 (data-parallel worker threads), got ${tc.workers} (give --workers 1 or 2)`);
  if (tc.lrDecaySteps > totalSteps) throw new DiffuseError(`--lr-decay-steps ${tc.lrDecaySteps} is longer than the run's ${totalSteps} steps (--train-steps): give at most ${totalSteps}`);
  if (resumed?.training && resumed.training.step > totalSteps) throw new DiffuseError(`the checkpoint is at step ${resumed.training.step}, past the run's ${totalSteps} steps: give --train-steps above ${resumed.training.step} to continue it`);
  if (started?.training && started.training.step >= totalSteps) throw new DiffuseError(`${started.what} is at step ${started.training.step}: give --train-steps above ${started.training.step} for the new run to train`);
  if (started?.message !== undefined) say(started.message);
  stage.check?.(config, opts.resume ? join(ckDir, 'config.json') : 'this run');
  for (const n of notes) say(n);

  const data = opts.dataset ?? (await stage.loadData(config));
  const skipped = (data as { skipped?: unknown[] }).skipped;
  if (skipped !== undefined && skipped.length > 0) say(`skipped ${skipped.length} unreadable image(s)`);
  const [, h, w, c] = data.shape;
  if (h !== config.data.imageSize || w !== config.data.imageSize || c !== config.data.channels) {
    throw new DiffuseError(`data set images are ${h}x${w}x${c} but the config expects ${config.data.imageSize}x${config.data.imageSize}x${config.data.channels}`);
  }
  const prepared = await stage.prepare(config, data, { resumed: resumed !== undefined, parts: resumed?.parts, outDir: opts.outDir, say, progress: opts.progress });
  try {
    config = prepared.config;
    opts.onStart?.(config, opts.resume ? resumed?.training?.step : undefined);
    const rng = resumed?.training ? Rng.fromState(resumed.training.rng) : new Rng(tc.seed);
    // data.balance 'groups': every group (an emoji with its skin tones and styles, a caption, a class) equally often
    const groups = config.data.balance === 'groups' ? samplingGroups(data) : undefined;
    const batches = resumed?.training !== undefined
      ? BatchSampler.fromState(resumed.training.sampler, data.shape[0], groups)
      : new BatchSampler(data.shape[0], tc.batchSize, tc.seed, {}, groups);
    if (groups !== undefined && !opts.resume) say(`sampling balanced over ${batches.epochLength} groups of ${data.shape[0]} images (an epoch = one image of each group)`);
    const lossHistory = resumed?.training ? [...resumed.training.lossHistory] : [];
    const startStep = resumed?.training?.step ?? 0;
    let step = startStep;
    const priorWall = resumed?.training?.wallTimeSec ?? 0;

    const trainer = await prepared.createTrainer();
    say(`engine: ${trainer.engine}`);
    if (trainer.notice !== undefined) say(trainer.notice);
    const logFile = join(opts.outDir, 'log.jsonl');
    try {
      if (started !== undefined) {
        // a run started from another's state carries on its loss curve up to that step
        rewriteLog(logFile, started.log.filter((r) => r.step <= startStep));
      } else if (existsSync(logFile) && (resumed || opts.overwrite)) {
        // Resuming: a run killed after its last checkpoint logged steps that will be redone; keep the log in step
        // with the checkpoint (damaged lines are dropped with a warning). Overwriting: a new run, a new log.
        let bad = 0;
        const kept = resumed ? readLog(logFile, { onBadLine: () => { bad++; } }).filter((r) => r.step <= startStep) : [];
        if (bad > 0) say(`warning: ${logFile}: ${bad} damaged line(s) dropped; the rest of the log is kept`);
        rewriteLog(logFile, kept);
      }
      const log = new JsonlLog(logFile);
      if (resumed) await trainer.importState(resumed.state);
      const bar = opts.progress === null ? null : new ProgressBar({ total: totalSteps, start: step, label: 'train', ...(opts.progress ? { stream: opts.progress } : {}) });
      const t0 = performance.now();
      const stepsThisCall = Math.min(totalSteps, opts.stopAfter !== undefined ? step + opts.stopAfter : totalSteps);
      let lastLoss = NaN;
      let images = 0;
      let saved = config;
      const stopRequested = (): boolean => opts.signal?.aborted === true;
      const save = async (): Promise<void> => {
        const state = await trainer.exportState();
        const extra = prepared.checkpoint !== undefined ? await prepared.checkpoint(state, step) : { config };
        saved = extra.config;
        await saveCheckpointWith(ckDir, {
          config: extra.config,
          state,
          trainingState: {
            step,
            rng: rng.state(),
            sampler: batches.state(),
            lossHistory: lossHistory.slice(-LOSS_HISTORY_TAIL),
            wallTimeSec: priorWall + (performance.now() - t0) / 1000,
          },
          ...(extra.parts !== undefined ? { parts: extra.parts } : {}),
        }, stage.codec);
      };
      while (step < stepsThisCall) {
        // Let the event loop run (signal handlers, timers): with one worker a step is all microtasks.
        await new Promise<void>((r) => setImmediate(r));
        if (stopRequested()) break;
        const b = prepared.batch(batches.next(), rng);
        const lr = learningRate(step, tc.lr, tc.warmupSteps, tc.lrDecaySteps, totalSteps);
        const hp: StepHyper = { lr, clipNorm: tc.clipNorm, emaDecay: emaDecayAt(step, tc.emaDecay) };
        const r = await trainer.step(b, hp);
        if (!Number.isFinite(r.loss)) throw new DiffuseError(`training diverged at step ${step}: loss is ${r.loss} (try a lower --lr)`);
        step++;
        lastLoss = r.loss;
        lossHistory.push(r.loss);
        if (lossHistory.length > 2 * LOSS_HISTORY_TAIL) lossHistory.splice(0, lossHistory.length - LOSS_HISTORY_TAIL);
        const n = prepared.batchImages(b);
        images += n;
        const status = prepared.status?.();
        bar?.update(step, { loss: r.loss, items: n, ...(status !== undefined ? { status } : {}) });
        const elapsed = (performance.now() - t0) / 1000;
        log.append({ step, loss: r.loss, lr, gradNorm: r.gradNorm, imgPerSec: images / Math.max(elapsed, 1e-9), ...r.log });
        const last = step === stepsThisCall;
        if (tc.checkpointEvery > 0 && step % tc.checkpointEvery === 0 && !last && !stopRequested()) await save();
        if (prepared.snapshot && tc.sampleEvery > 0 && (step % tc.sampleEvery === 0 || step === totalSteps) && !stopRequested()) {
          const file = join(opts.outDir, 'samples', `step-${String(step).padStart(6, '0')}.png`);
          const st = await trainer.exportState();
          await prepared.snapshot(st.ema, step, file);
          await opts.onSamples?.(file, step);
        }
      }
      const interrupted = step < stepsThisCall;
      if (step > startStep || !opts.resume) await save();
      bar?.finish();
      const seconds = (performance.now() - t0) / 1000;
      return { config: saved, step, lastLoss, seconds, imgPerSec: images / Math.max(seconds, 1e-9), checkpoint: ckDir, interrupted };
    } finally {
      await trainer.dispose();
    }
  } finally {
    await prepared.dispose?.();
  }
}
