/**
 * Issue #17, study 4: one shared network, or one network per stage of the
 * noise? The explainer keeps one U-Net for every step ("the generation
 * quality might slightly deteriorate due to using only a single model");
 * eDiff-I (Balaji et al. 2022) trains expert denoisers, each for a range of
 * noise levels. Here: class-conditional Fashion-MNIST, the same total
 * training images for every cell, K = 1, 2, 4 experts from scratch, K = 2 with
 * narrower networks (as many parameters in total as K = 1), and eDiff-I's
 * cheaper recipe (a shared network for the first part of the budget, then
 * copies fine-tuned per range), each trained with several seeds, scored by
 * FID/KID against the real-vs-real floor, the classifier's agreement with the
 * requested class under guidance, sampling time, size, and the ε error at
 * each noise level.
 *
 * Work folder (--work, default runs/study-experts): runs/<cell>-s<seed>/ (a
 * `diffuse train` run each; the split cells start from runs/shared-s<seed>/,
 * the K = 1 network at the split step, which the K = 1 cell itself continues)
 * and results/<cell>-s<seed>.json (one evaluation each). A call trains and
 * evaluates what its --cells and --seeds name and is missing, then writes the
 * report from every result in the work folder made with the same evaluation
 * settings: cells can be run in separate calls and sessions, in any order, and
 * an interrupted call resumes where it stopped.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/study-experts.js                      # the whole study
 *   node dist/bench/study-experts.js --cells k1,k2 --seeds 0                          # part of it
 *   node dist/bench/study-experts.js --report-only                                    # the report from what exists
 *   node dist/bench/study-experts.js --budget-images 1280 --n 100 --seeds 0 --work /tmp/se --out /tmp/se/report   # smoke test
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseOptions } from '../src/cli/options.js';
import { configFromFlags, OPTIONS as TRAIN_OPTIONS } from '../src/cli/train.js';
import { withExperts, type DiffuseConfig } from '../src/config.js';
import { expertRange } from '../src/diffusion/experts.js';
import { qSample } from '../src/diffusion/forward.js';
import { classAgreement, sampleIndices, type SampleScores } from '../src/eval/evaluate.js';
import { classCondition } from '../src/guidance/condition.js';
import { ProgressBar } from '../src/io/progress.js';
import { unetParamCount } from '../src/model/unet-description.js';
import { exportCheckpointToOnnx } from '../src/onnx/export-unet.js';
import { generateWith, loadPipeline, type Pipeline } from '../src/pipeline.js';
import { Rng } from '../src/rng.js';
import type { SamplerName } from '../src/samplers/factory.js';
import { makeSchedule } from '../src/schedule.js';
import { loadModelWeights } from '../src/train/checkpoint.js';
import { readLog } from '../src/train/log.js';
import { train } from '../src/train/train.js';
import { configDiff, fixed, markdownTable, meanSE, perImageMse, reportError, sig, smoothEma, StudyError } from './study-common.js';
import { svgPlot, type PlotSeries } from './study-plot.js';
import {
  commandFlags, ensureRun, fixedPart, machineDescription, minutes, prepareEval, ROOT, say, scoreImages, sibling, warmUp, writeReport, writeSampleRows, type EvalContext,
} from './study-run.js';
import { benchOptions } from './options.js';
import { writeSampleGrid } from '../src/cli/sample-grid.js';
import { FASHION_MNIST_LABEL_NAMES } from '../src/data/fashion-mnist.js';

// ---------------------------------------------------------------- cells

interface ExpertCell {
  readonly id: string;
  readonly label: string;
  readonly experts: number;
  /** From scratch, or eDiff-I's shared network then copies per range. */
  readonly recipe: 'scratch' | 'split';
  /** Every expert as wide as the shared network, or narrower so that the K experts together have about its parameters. */
  readonly width: 'full' | 'matched';
  /**
   * Batch divided by this, steps multiplied by it (the same images). With
   * 2, one shared network takes as many Adam steps on as many images per step
   * as each of the K = 2 experts does: the control that tells specialisation
   * from the experts' extra optimizer steps.
   */
  readonly batchDivisor: number;
}

const CELLS: readonly ExpertCell[] = [
  { id: 'k1', label: 'K = 1 (one shared network)', experts: 1, recipe: 'scratch', width: 'full', batchDivisor: 1 },
  { id: 'k2', label: 'K = 2 experts', experts: 2, recipe: 'scratch', width: 'full', batchDivisor: 1 },
  { id: 'k4', label: 'K = 4 experts', experts: 4, recipe: 'scratch', width: 'full', batchDivisor: 1 },
  { id: 'k2-matched', label: 'K = 2, parameter-matched', experts: 2, recipe: 'scratch', width: 'matched', batchDivisor: 1 },
  { id: 'k2-split', label: 'K = 2, shared then split', experts: 2, recipe: 'split', width: 'full', batchDivisor: 1 },
  { id: 'k4-split', label: 'K = 4, shared then split', experts: 4, recipe: 'split', width: 'full', batchDivisor: 1 },
  { id: 'k1-half-batch', label: 'K = 1, half batch, 2× steps (K = 2\'s Adam steps)', experts: 1, recipe: 'scratch', width: 'full', batchDivisor: 2 },
];

/** The two sampler settings every model is scored at. */
const SAMPLERS: readonly { readonly sampler: SamplerName; readonly steps: number; readonly label: string }[] = [
  { sampler: 'ddim', steps: 50, label: 'DDIM 50' },
  { sampler: 'dpm-solver', steps: 20, label: 'DPM-Solver++ 20' },
];

interface StudySettings {
  readonly budgetImages: number;
  readonly batch: number;
  readonly steps: number;
  /** Steps of the shared phase of the split cells. */
  readonly sharedSteps: number;
  readonly baseChannels: number;
  readonly warmup: number;
  readonly workers: number;
  readonly work: string;
}

/** The `diffuse train` flags of a from-scratch cell (the report prints them). */
function trainFlags(s: StudySettings, seed: number, steps: number, base: number, experts: number, groups?: number, batchDivisor = 1): string[] {
  return [
    '--dataset', 'fashion-mnist', '--conditional', '--attention', 'none', '--base-channels', String(base), ...(groups !== undefined ? ['--groups', String(groups)] : []), '--train-steps', String(steps * batchDivisor),
    '--batch-size', String(s.batch / batchDivisor), '--warmup-steps', String(s.warmup), '--seed', String(seed), '--sample-every', String(s.steps * batchDivisor),
    '--checkpoint-every', String(Math.max(1, Math.min(250, Math.floor(s.steps / 4)))), '--workers', String(s.workers),
    ...(experts > 1 ? ['--experts', String(experts)] : []),
  ];
}

/** The config `diffuse train <flags>` runs with, the class names included (training takes them from the data set). */
function flagsConfig(flags: readonly string[]): DiffuseConfig {
  const c = configFromFlags(parseOptions(TRAIN_OPTIONS, flags, 'diffuse train').values);
  return { ...c, data: { ...c.data, labelNames: [...FASHION_MNIST_LABEL_NAMES] } };
}

/**
 * The even base width, and the GroupNorm groups it allows (the largest
 * divisor of every channel count up to the full network's groups), whose K
 * experts together come closest to the full network's parameter count.
 */
function matchedWidth(full: DiffuseConfig, experts: number): { base: number; groups: number; params: number } {
  const target = unetParamCount(full.model);
  let best: { base: number; groups: number; params: number } | undefined;
  for (let c = 2; c <= full.model.baseChannels; c += 2) {
    const channels = full.model.channelMults.map((m) => c * m);
    let g = full.model.groups;
    while (g > 1 && channels.some((ch) => ch % g !== 0)) g--;
    const params = experts * unetParamCount({ ...full.model, baseChannels: c, groups: g });
    if (best === undefined || Math.abs(params - target) < Math.abs(best.params - target)) best = { base: c, groups: g, params };
  }
  return best!;
}

interface CellPlan {
  readonly cell: ExpertCell;
  readonly seed: number;
  readonly run: string;
  readonly runDir: string;
  readonly config: DiffuseConfig;
  /** The command that makes the run (for the report). */
  readonly command: string;
}

function sharedRun(s: StudySettings, seed: number): { runDir: string; config: DiffuseConfig; flags: string[] } {
  const flags = trainFlags(s, seed, s.sharedSteps, s.baseChannels, 1);
  return { runDir: join(s.work, 'runs', `shared-s${seed}`), config: flagsConfig(flags), flags };
}

function plan(s: StudySettings, cell: ExpertCell, seed: number): CellPlan {
  const run = `${cell.id}-s${seed}`;
  const runDir = join(s.work, 'runs', run);
  const full = flagsConfig(trainFlags(s, seed, s.steps, s.baseChannels, 1));
  const rel = (p: string): string => (p.startsWith(ROOT + '/') ? p.slice(ROOT.length + 1) : p);
  switch (cell.recipe) {
    case 'scratch': {
      if (cell.width === 'matched') {
        const m = matchedWidth(full, cell.experts);
        const flags = trainFlags(s, seed, s.steps, m.base, cell.experts, m.groups === full.model.groups ? undefined : m.groups);
        return { cell, seed, run, runDir, config: flagsConfig(flags), command: `diffuse train ${flags.join(' ')} --out ${rel(runDir)}` };
      }
      if (cell.batchDivisor !== 1) {
        const flags = trainFlags(s, seed, s.steps, s.baseChannels, cell.experts, undefined, cell.batchDivisor);
        return { cell, seed, run, runDir, config: flagsConfig(flags), command: `diffuse train ${flags.join(' ')} --out ${rel(runDir)}` };
      }
      if (cell.experts === 1) {
        const sh = sharedRun(s, seed);
        return {
          cell, seed, run, runDir, config: full,
          command: `diffuse train ${sh.flags.join(' ')} --out ${rel(sh.runDir)}; cp -r ${rel(sh.runDir)} ${rel(runDir)}; diffuse train --resume ${rel(runDir)} --train-steps ${s.steps}`,
        };
      }
      const flags = trainFlags(s, seed, s.steps, s.baseChannels, cell.experts);
      return { cell, seed, run, runDir, config: flagsConfig(flags), command: `diffuse train ${flags.join(' ')} --out ${rel(runDir)}` };
    }
    case 'split': {
      const sh = sharedRun(s, seed);
      const config = withExperts(full, cell.experts, 't', { kind: 'split', sharedSteps: s.sharedSteps, optimizer: 'copy' });
      return { cell, seed, run, runDir, config, command: `diffuse train --split-from ${rel(sh.runDir)} --experts ${cell.experts} --train-steps ${s.steps} --out ${rel(runDir)}` };
    }
    default: {
      const never: never = cell.recipe;
      throw new StudyError(`unknown recipe ${String(never)}`);
    }
  }
}

/** Train what is missing of a cell's run (and of the shared run it starts from), resuming what stopped early. */
async function ensureCell(s: StudySettings, p: CellPlan): Promise<{ action: string; step: number; trainSeconds: number }> {
  const common = { outDir: p.runDir, sampleGrid: writeSampleGrid, log: say } as const;
  const ensureShared = async (): Promise<string> => {
    const sh = sharedRun(s, p.seed);
    await ensureRun(sh.runDir, sh.config, s.sharedSteps, `diffuse train ${sh.flags.join(' ')}`, () => train({ config: sh.config, outDir: sh.runDir, sampleGrid: writeSampleGrid, log: say }));
    return sh.runDir;
  };
  let start: () => Promise<unknown>;
  if (p.cell.recipe === 'split') {
    start = async () => train({ ...common, config: p.config, splitFrom: { dir: await ensureShared(), experts: p.cell.experts, split: 't', optimizer: 'copy' }, overrides: { steps: s.steps } });
  } else if (p.cell.experts === 1 && p.cell.width === 'full' && p.cell.batchDivisor === 1) {
    // the shared run is the first sharedSteps of this cell: continue a copy of it (resume is exact)
    start = async () => {
      const from = await ensureShared();
      mkdirSync(p.runDir, { recursive: true });
      for (const f of readdirSync(from)) if (f === 'checkpoint' || f === 'log.jsonl' || f === 'samples') cpSync(join(from, f), join(p.runDir, f), { recursive: true });
      return train({ ...common, config: p.config, resume: true, overrides: { steps: s.steps } });
    };
  } else {
    start = async () => train({ ...common, config: p.config });
  }
  return ensureRun(p.runDir, p.config, s.steps * p.cell.batchDivisor, p.command, start);
}

// ---------------------------------------------------------------- evaluation of one run

interface SamplerResult {
  readonly sampler: SamplerName;
  readonly steps: number;
  readonly seconds: number;
  readonly secPerImage: number;
  readonly scores: SampleScores;
  readonly agreement: { readonly overall: number; readonly worst: number; readonly perClass: number[] };
  readonly load: readonly [number, number];
}

interface EvalSettings {
  readonly n: number;
  readonly guidance: number;
  readonly sampleSeed: number;
  readonly yardN: number;
  readonly yardT: readonly number[];
  readonly evalBatch: number;
  readonly threads: number;
}

interface RunResult {
  readonly version: 1;
  readonly run: string;
  readonly cell: string;
  readonly seed: number;
  readonly settings: EvalSettings;
  readonly config: DiffuseConfig;
  readonly step: number;
  readonly trainSeconds: number;
  readonly params: number;
  readonly emaBytes: number;
  readonly onnxBytes: number;
  readonly engine: string;
  readonly samplers: SamplerResult[];
  /** ε-MSE on held-out images at each t (true class as the condition, no guidance): mean ± SE over images. */
  readonly errorByT: { readonly t: number; readonly mean: number; readonly se: number }[];
  /** Per-step training losses (log.jsonl). */
  readonly losses: number[];
  /** First sampler's samples: `perClass` per class, class order, 0..255 bytes, base64. */
  readonly grid: { readonly perClass: number; readonly shape: [number, number, number, number]; readonly bytes: string };
  readonly machine: string;
  readonly date: string;
}

const GRID_PER_CLASS = 2;

function sameSettings(a: EvalSettings, b: EvalSettings): boolean {
  return a.n === b.n && a.guidance === b.guidance && a.sampleSeed === b.sampleSeed && a.yardN === b.yardN && a.yardT.join(',') === b.yardT.join(',');
}

/** ε-MSE of the model on `m` held-out images (seeded) at each t, with their true classes and one fixed noise draw per t. */
async function errorByT(pipe: Pipeline, ctx: EvalContext, settings: EvalSettings): Promise<RunResult['errorByT']> {
  const held = ctx.splits.heldOut;
  const [total, h, w, c] = held.shape;
  const per = h * w * c;
  const m = settings.yardN;
  const idx = sampleIndices(total, m, settings.sampleSeed + 1000);
  const x0 = new Float32Array(m * per);
  idx.forEach((i, k) => x0.set(held.images.subarray(i * per, (i + 1) * per), k * per));
  const labels = held.labels === undefined ? undefined : Int32Array.from(idx, (i) => held.labels![i]!);
  const schedule = makeSchedule(pipe.config.diffusion.schedule, pipe.config.diffusion.timesteps, pipe.config.diffusion);
  if (pipe.config.diffusion.prediction !== 'epsilon') throw new StudyError('the study\'s models predict ε');
  const rng = new Rng(settings.sampleSeed + 2000);
  const out: RunResult['errorByT'] = [];
  for (const t of settings.yardT) {
    const noise = rng.normalArray(m * per);
    const xt = qSample(schedule, x0, t, noise);
    const y = new Float32Array(m * per);
    for (let s = 0; s < m; s += settings.evalBatch) {
      const b = Math.min(settings.evalBatch, m - s);
      y.set(await pipe.model(xt.slice(s * per, (s + b) * per), t, [b, h, w, c], labels?.slice(s, s + b)), s * per);
    }
    const { mean, se } = meanSE(perImageMse(y, noise, m));
    out.push({ t, mean, se });
  }
  return out;
}

function fileSize(f: string): number {
  return existsSync(f) ? statSync(f).size : NaN;
}

async function evaluateRun(p: CellPlan, trained: { step: number; trainSeconds: number }, ctx: EvalContext, settings: EvalSettings): Promise<RunResult> {
  const pipe = await loadPipeline(p.runDir, { engine: 'onnx', threads: settings.threads, batchSize: settings.evalBatch });
  try {
    await warmUp(pipe, settings.evalBatch);
    const K = 10;
    const requested = Int32Array.from({ length: settings.n }, (_, i) => Math.floor((i * K) / settings.n));
    const samplers: SamplerResult[] = [];
    let grid: RunResult['grid'] | undefined;
    for (const sp of SAMPLERS) {
      const bar = new ProgressBar({ total: sp.steps * Math.ceil(settings.n / settings.evalBatch), label: `${p.run} ${sp.label}`, unit: 'nfe' });
      const before = loadavg()[0]!;
      const t0 = performance.now();
      const r = await generateWith(pipe, {
        sampler: sp.sampler, steps: sp.steps, n: settings.n, seed: settings.sampleSeed, batchSize: settings.evalBatch,
        condition: classCondition(pipe.config, requested, settings.guidance),
        onStep: (done) => bar.update(done),
      });
      const seconds = (performance.now() - t0) / 1000;
      bar.finish();
      const samples = { images: r.images, shape: r.shape };
      const a = classAgreement(ctx.classifier, samples, requested);
      const scores = scoreImages(ctx, r.images, r.shape);
      samplers.push({ sampler: sp.sampler, steps: sp.steps, seconds, secPerImage: seconds / settings.n, scores, agreement: { overall: a.overall, worst: a.worst, perClass: a.perClass }, load: [before, loadavg()[0]!] });
      say(`${p.run} ${sp.label}: FID ${scores.fid.toFixed(2)}, agreement ${(100 * a.overall).toFixed(1)}%, ${(1000 * seconds / settings.n).toFixed(1)} ms/image`);
      if (grid === undefined) {
        const [, h, w, c] = r.shape;
        const per = h * w * c;
        const pick = new Uint8Array(K * GRID_PER_CLASS * per);
        for (let k = 0; k < K; k++) {
          const first = requested.indexOf(k);
          for (let j = 0; j < GRID_PER_CLASS; j++) {
            const src = r.images.subarray((first + j) * per, (first + j + 1) * per);
            for (let q = 0; q < per; q++) pick[(k * GRID_PER_CLASS + j) * per + q] = Math.round(Math.min(255, Math.max(0, (src[q]! + 1) * 127.5)));
          }
        }
        grid = { perClass: GRID_PER_CLASS, shape: [K * GRID_PER_CLASS, h, w, c], bytes: Buffer.from(pick).toString('base64') };
      }
    }
    const ck = join(p.runDir, 'checkpoint');
    const { params, step } = await loadModelWeights(ck, 'ema');
    const onnx = exportCheckpointToOnnx(pipe.config, params, { weights: 'ema', step });
    const losses: number[] = [];
    for (const rec of readLog(join(p.runDir, 'log.jsonl'))) losses[rec.step - 1] = rec.loss;
    return {
      version: 1, run: p.run, cell: p.cell.id, seed: p.seed, settings, config: pipe.config, step: trained.step, trainSeconds: trained.trainSeconds,
      params: (pipe.config.experts?.count ?? 1) * unetParamCount(pipe.config.model), emaBytes: fileSize(join(ck, 'ema.safetensors')), onnxBytes: onnx.reduce((a, b) => a + b.length, 0),
      engine: pipe.engine, samplers, errorByT: await errorByT(pipe, ctx, settings), losses: Array.from(losses, (v) => v ?? NaN), grid: grid!,
      machine: machineDescription(), date: new Date().toISOString(),
    };
  } finally {
    await pipe.dispose();
  }
}

/** Whether a stored result is of the run `p` plans (same config but for the resumable settings) and these evaluation settings. */
function resultFits(r: RunResult | undefined, p: CellPlan, s: StudySettings, settings: EvalSettings): r is RunResult {
  return r !== undefined && r.step === s.steps * p.cell.batchDivisor && sameSettings(r.settings, settings) && configDiff(fixedPart(p.config), fixedPart(r.config)).length === 0;
}

function readResult(file: string): RunResult | undefined {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as RunResult;
    return r.version === 1 ? r : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- report

interface CellSummary {
  readonly cell: ExpertCell;
  readonly runs: RunResult[];
}

const meanOf = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const spreadOf = (xs: readonly number[]): string => (xs.length < 2 ? '' : ` (${xs.map((x) => x.toFixed(1)).join(', ')})`);
const pct = (x: number): string => `${fixed(100 * x, 1)}%`;
const mb = (bytes: number): string => (Number.isFinite(bytes) ? `${(bytes / 1e6).toFixed(2)} MB` : '—');

function report(summaries: readonly CellSummary[], ctx: EvalContext, s: StudySettings, settings: EvalSettings, out: string, wall: number): { md: string; json: unknown; extra: Record<string, string> } {
  const held = ctx.splits.heldOut;
  const realAgreement = held.labels === undefined ? NaN : classAgreement(ctx.classifier, { images: held.images, shape: held.shape }, Int32Array.from(held.labels)).overall;
  const k1 = summaries.find((c) => c.cell.id === 'k1');
  const seedsOf = (c: CellSummary): number[] => c.runs.map((r) => r.seed);
  const floor = ctx.floor;
  const fs = ctx.floorSpread.fids;
  const floorSpread = Math.max(...fs) - Math.min(...fs);

  // ---- the cells: what each is and what it costs
  const costRows = summaries.map((c) => {
    const r = c.runs[0]!;
    const ex = r.config.experts;
    const ranges = ex === undefined ? 't 0–999 (all)' : ex.boundaries.slice(0, -1).map((_, k) => expertRange(ex.boundaries, k)).join(', ');
    const trainS = c.runs.map((x) => x.trainSeconds);
    return [
      c.cell.label, `${ex?.count ?? 1} × ${(unetParamCount(r.config.model) / 1e6).toFixed(3)}M (base ${r.config.model.baseChannels}${r.config.model.groups !== 8 ? `, ${r.config.model.groups} groups` : ''})`,
      `${(r.params / 1e6).toFixed(2)}M`, mb(r.emaBytes), mb(r.onnxBytes), ranges,
      c.cell.recipe === 'split' ? `shared ${s.sharedSteps} steps, then ${s.steps - s.sharedSteps} as experts`
        : c.cell.batchDivisor !== 1 ? `from scratch, ${s.steps * c.cell.batchDivisor} steps of batch ${s.batch / c.cell.batchDivisor}` : 'from scratch',
      `${minutes(meanOf(trainS))} (${fixed((s.steps * s.batch) / meanOf(trainS), 1)} img/s)`,
    ];
  });
  const costTable = markdownTable(['cell', 'networks × parameters', 'parameters', 'EMA weights on disk', 'ONNX (all experts)', 'timestep ranges', 'training', 'training time (mean over seeds)'], costRows, ['l', 'l', 'r', 'r', 'r', 'l', 'l', 'r']);

  // ---- quality per sampler
  const samplerTable = (i: number): string => {
    const rows = summaries.map((c) => {
      const rs = c.runs.map((r) => r.samplers[i]!);
      const fids = rs.map((x) => x.scores.fid);
      const kid = meanOf(rs.map((x) => x.scores.kid));
      const paired = k1 === undefined || c === k1 ? '—' : (() => {
        const d = c.runs.flatMap((r) => {
          const base = k1.runs.find((b) => b.seed === r.seed);
          return base === undefined ? [] : [r.samplers[i]!.scores.fid - base.samplers[i]!.scores.fid];
        });
        return d.length === 0 ? '—' : `${d.map((x) => (x >= 0 ? '+' : '') + x.toFixed(1)).join(', ')}`;
      })();
      return [
        c.cell.label, seedsOf(c).join(','), `${fixed(meanOf(fids), 2)}${spreadOf(fids)}`, fixed(kid, 2), paired,
        pct(meanOf(rs.map((x) => x.agreement.overall))), pct(meanOf(rs.map((x) => x.agreement.worst))), `${fixed(1000 * meanOf(rs.map((x) => x.secPerImage)), 1)}`,
      ];
    });
    rows.push(['real vs real (floor)', '—', fixed(floor.fid, 2), fixed(floor.kid, 2), '—', '—', '—', '—']);
    return markdownTable(['cell', 'seeds', 'FID (mean; per seed)', 'KID', 'FID − K = 1, same seed', 'agreement', 'worst class', 'ms / image'], rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r']);
  };

  // ---- error by noise level, relative to K = 1
  const ts = settings.yardT;
  const errRows = summaries.map((c) => [c.cell.label, ...ts.map((_, j) => {
    const m = meanOf(c.runs.map((r) => r.errorByT[j]!.mean));
    const base = k1 === undefined ? NaN : meanOf(k1.runs.map((r) => r.errorByT[j]!.mean));
    return c === k1 || k1 === undefined ? sig(m, 3) : `${sig(m, 3)} (${fixed(m / base, 2)}×)`;
  })]);
  const errTable = markdownTable(['cell', ...ts.map((t) => `t = ${t}`)], errRows, ['l', ...ts.map(() => 'r' as const)]);
  const seOf = summaries.flatMap((c) => c.runs.flatMap((r) => r.errorByT.map((e) => e.se / e.mean)));
  const errSvg = svgPlot({
    title: `ε-MSE on ${settings.yardN} held-out images at each t, relative to K = 1 (lower is better)`,
    xLabel: 'timestep t (of T = 1000)',
    yLabel: 'ε-MSE / ε-MSE of K = 1',
    xTicks: [...ts],
    series: summaries.filter((c) => c !== k1).map((c) => ({
      name: c.cell.label,
      points: ts.map((t, j) => ({ x: t, y: meanOf(c.runs.map((r) => r.errorByT[j]!.mean)) / (k1 === undefined ? 1 : meanOf(k1.runs.map((r) => r.errorByT[j]!.mean))) })),
    })),
    refLines: [{ y: 1, label: 'K = 1' }],
  });

  // ---- FID against parameters
  const fidSvg = svgPlot({
    title: `FID against parameters (N = ${settings.n}, guidance ${settings.guidance}; mean over seeds)`,
    xLabel: 'parameters, all networks (millions)',
    yLabel: 'FID',
    series: SAMPLERS.map((sp, i): PlotSeries => ({
      name: sp.label,
      line: false,
      points: summaries.map((c) => ({ x: c.runs[0]!.params / 1e6, y: meanOf(c.runs.map((r) => r.samplers[i]!.scores.fid)), label: c.cell.id })),
    })),
    refLines: [{ y: floor.fid, label: `real-vs-real floor ${fixed(floor.fid, 1)}` }],
  });

  // ---- loss curves (seed of the first run of each cell)
  const lossSvg = svgPlot({
    title: 'Training loss (ε-MSE over the batch, smoothed, EMA 0.98; first seed)',
    xLabel: 'training step',
    yLabel: 'loss',
    logY: true,
    series: summaries.map((c) => ({ name: c.cell.label, markers: false, points: smoothEma(c.runs[0]!.losses, 0.98).map((y, i) => ({ x: i + 1, y })) })),
  });

  // ---- findings from the numbers
  const findings: string[] = [];
  const maxSe = seOf.length > 0 ? Math.max(...seOf) : NaN;
  for (const [i, sp] of SAMPLERS.entries()) {
    const sorted = [...summaries].sort((a, b) => meanOf(a.runs.map((r) => r.samplers[i]!.scores.fid)) - meanOf(b.runs.map((r) => r.samplers[i]!.scores.fid)));
    findings.push(`${sp.label}, FID from best to worst (mean over seeds): ${sorted.map((c) => `${c.cell.id} ${meanOf(c.runs.map((r) => r.samplers[i]!.scores.fid)).toFixed(2)}`).join(', ')}; floor ${floor.fid.toFixed(2)}.`);
  }
  if (k1 !== undefined) {
    for (const c of summaries) {
      if (c === k1) continue;
      const d = c.runs.flatMap((r) => {
        const b = k1.runs.find((x) => x.seed === r.seed);
        return b === undefined ? [] : SAMPLERS.map((_, i) => r.samplers[i]!.scores.fid - b.samplers[i]!.scores.fid);
      });
      if (d.length === 0) continue;
      const better = d.filter((x) => x < -floorSpread).length;
      const worse = d.filter((x) => x > floorSpread).length;
      findings.push(`${c.cell.label} vs K = 1, same seed and sampler (${d.length} pairs): FID ${better} × lower and ${worse} × higher by more than the floor's spread (${floorSpread.toFixed(2)}), ${d.length - better - worse} × within it; differences ${d.map((x) => (x >= 0 ? '+' : '') + x.toFixed(1)).join(', ')}.`);
    }
    const bands = ts.map((t, j) => {
      const base = meanOf(k1.runs.map((r) => r.errorByT[j]!.mean));
      const best = [...summaries].filter((c) => c !== k1).sort((a, b) => meanOf(a.runs.map((r) => r.errorByT[j]!.mean)) - meanOf(b.runs.map((r) => r.errorByT[j]!.mean)))[0];
      return best === undefined ? '' : `t = ${t}: ${best.cell.id} ${fixed(meanOf(best.runs.map((r) => r.errorByT[j]!.mean)) / base, 2)}×`;
    }).filter((x) => x !== '');
    if (bands.length > 0) findings.push(`Lowest ε-MSE relative to K = 1 at each t (the standard error of each mean is at most ${fixed(100 * maxSe, 1)}% of it): ${bands.join(', ')}.`);
  }

  const r0 = summaries[0]?.runs[0];
  const cfg = r0?.config;
  const rel = (p: string): string => (p.startsWith(ROOT + '/') ? p.slice(ROOT.length + 1) : p);
  const planned = summaries.map((c) => plan(s, c.cell, c.runs[0]!.seed));
  const loads = summaries.flatMap((c) => c.runs.flatMap((r) => r.samplers.flatMap((x) => x.load)));
  const md = `# Study: one shared network, or one network per stage of the noise? (issue #17, study 4)

The explainer trains one U-Net for every step of the reverse process: a separate network per iteration "is feasible and can lead to high-quality inference results" but costs too much, so one model is shared, and "the generation quality might slightly deteriorate due to using only a single model". eDiff-I (Balaji et al. 2022) trains an ensemble of *expert denoisers*, each for a range of noise levels. Here: the same data and the same total training images for every cell, K = 1, 2 and 4 expert networks, and eDiff-I's cheaper recipe (one shared network first, then a copy per range fine-tuned for the rest of the budget).
Regenerate everything on this page with one command (it trains and evaluates what is missing in its work folder, then writes the report from every result there; this call took ${minutes(wall)}):

\`\`\`sh
npx tsc -p tsconfig.json && node dist/bench/study-experts.js${commandFlags()}
\`\`\`

**Data and model.** Fashion-MNIST (the 60,000 training images, 28×28), class-conditional with label dropout ${cfg?.train.condDropout ?? '?'} for classifier-free guidance; U-Net with base ${s.baseChannels} channels (mults ${cfg?.model.channelMults.join(',') ?? '?'}, ${cfg?.model.numResBlocks ?? '?'} res block per level, self-attention in the middle block only), linear β schedule, T = ${cfg?.diffusion.timesteps ?? '?'}, ε-prediction. Adam lr ${cfg?.train.lr ?? '?'} with ${s.warmup} warm-up steps, gradient clip ${cfg?.train.clipNorm ?? '?'}, EMA ${cfg?.train.emaDecay ?? '?'}, ${s.workers} data-parallel workers.

**Budget.** Every cell sees **${s.budgetImages.toLocaleString('en-US')} training images** (${s.steps} steps of batch ${s.batch}, ${(s.budgetImages / 60000).toFixed(2)} epochs): equal training compute in images seen. The budget is what fits the machine for ${summaries.length} cells × ${new Set(summaries.flatMap(seedsOf)).size} seeds; these are comparisons at a small, equal budget, not of converged models.

**Experts.** Expert k owns the training timesteps b_k ≤ t < b_{k+1}, ranges of equal width in t (\`--expert-split t\`; \`src/diffusion/experts.ts\`). Every training step gives each expert its share of the batch (${s.batch}/K images) with t drawn uniformly in its own range, so the training distribution of (image, t) and the number of images per step are those of the shared network, and every expert takes as many Adam steps as it does, each on its ${s.batch}/K images: K experts together make K times the parameter updates of one shared network on the same images (the half-batch control below gives one shared network those updates). Splitting by log-SNR (eDiff-I's axis) was not used: on this linear schedule equal log-SNR ranges give the low-noise expert 31 of 1,000 timesteps at K = 4 (3 images of a batch of 64; a 20-step sampler with trailing spacing never calls it; see docs/experts.md). Every expert starts from the shared network's initial weights (same seed). Sampling hands each network call to the expert owning its t (one ONNX Runtime session per expert).

**The cells**, with the command that made each run (seed ${planned[0]?.seed ?? 0} shown; \`--seed\` and the folder change with the seed):

${planned.map((p) => `- ${p.cell.label}: \`${p.command}\``).join('\n')}

The K = 1 cell is the shared run continued by \`--resume\` (exact: the same weights as one straight run), so the split cells and K = 1 share their first ${s.sharedSteps} steps, seed by seed: from the split on, the two recipes differ only in the networks. The parameter-matched cell narrows each expert to the width whose ${'K'} = 2 experts together have the parameter count closest to K = 1's (GroupNorm groups reduced where the width requires it, as the table says). The half-batch K = 1 cell is the control for the experts' extra optimizer steps: one shared network trained for twice the steps on half the batch (the same images, warm-up and learning rate), so that it takes as many Adam steps, each on as many images, as each K = 2 expert does; what remains of K = 2's gain over it is the specialisation itself.

${costTable}
Training times are the ones recorded in each checkpoint (split cells: the shared phase included). Work folder: \`${rel(s.work)}\`.

## Quality (N = ${settings.n} per run, guidance W = ${settings.guidance}, seed ${settings.sampleSeed})

Each run generates N images, N/10 per class (the class asked for by index, guidance W = ${settings.guidance}), from the same starting noise for every run. FID/KID against ${settings.n} Fashion-MNIST test images in the feature space of \`${ctx.classifierDir}\` (docs/eval.md); agreement = the share of samples that classifier assigns to the class asked for (it gets ${pct(realAgreement)} of the ${held.shape[0].toLocaleString('en-US')} real test images right). Time per image: the whole guided generation (2 network evaluations per step) divided by N, ONNX Runtime, ${settings.threads} threads, batches of ${settings.evalBatch}; 1-minute load average around the timings ${fixed(Math.min(...loads), 2)}–${fixed(Math.max(...loads), 2)}.

${SAMPLERS.map((sp, i) => `**${sp.label}:**\n\n${samplerTable(i)}`).join('\n')}
**How much is noise.** Real-vs-real floor at N = ${settings.n}: FID ${fixed(floor.fid, 2)} (KID ${fixed(floor.kid, 2)}); drawing other real images (seeds ${ctx.floorSpread.seeds.join(', ')}) moves it over ${fixed(Math.min(...fs), 2)}–${fixed(Math.max(...fs), 2)}, a spread of **${fixed(floorSpread, 2)}**: FID's own noise at this N. The training seed is the larger source: the per-seed FIDs in brackets show how far two trainings of the same cell land apart. A difference between cells counts only where it exceeds both, seed by seed ("FID − K = 1, same seed": the same seed's data order, noise and initial weights).

![FID against parameters](${sibling(out, '-fid.svg')})

## Where the experts differ: error at each noise level

The ε-MSE of each model on ${settings.yardN} held-out test images, noised to x_t with one fixed noise draw per t (the same for every model), each image conditioned on its true class (no guidance); mean over seeds, and in brackets relative to K = 1. This is the quantity the training loss averages over t: it shows at which noise levels specialisation pays.

${errTable}
![error by t](${sibling(out, '-error-by-t.svg')})

![loss curves](${sibling(out, '-loss.svg')})

## Findings (generated from the numbers)

${findings.map((f) => `- ${f}`).join('\n')}

## Samples

Guided samples (W = ${settings.guidance}, ${SAMPLERS[0]!.label}) of the first seed of each cell, one row per cell in table order, ${GRID_PER_CLASS} per class in class order (t-shirt, trousers, pullover, dress, coat, sandal, shirt, sneaker, bag, ankle boot); every row starts from the same noise.

![samples](${sibling(out, '-samples.png')})

**Machine.** ${r0?.machine ?? machineDescription()}.
`;
  const json = {
    study: 'experts', settings, budgetImages: s.budgetImages, steps: s.steps, sharedSteps: s.sharedSteps, baseChannels: s.baseChannels, floor, floorSpread: ctx.floorSpread,
    cells: summaries.map((c) => ({ id: c.cell.id, label: c.cell.label, runs: c.runs.map(({ grid: _g, losses: _l, ...r }) => r) })),
  };
  return { md, json, extra: { '-fid.svg': fidSvg, '-error-by-t.svg': errSvg, '-loss.svg': lossSvg } };
}

// ---------------------------------------------------------------- estimate

/** Median of the step durations (seconds) of log records after step `from` (the steady state: no start-up). */
function medianStepSeconds(runDir: string, from: number): number {
  const recs = readLog(join(runDir, 'log.jsonl')).filter((r) => r.step > from).sort((a, b) => a.step - b.step);
  const d: number[] = [];
  for (let i = 1; i < recs.length; i++) if (recs[i]!.step === recs[i - 1]!.step + 1) d.push(recs[i]!.time - recs[i - 1]!.time);
  if (d.length === 0) throw new StudyError(`${runDir}: too few logged steps after step ${from} to time (give --estimate a larger number)`);
  d.sort((a, b) => a - b);
  return d[Math.floor(d.length / 2)]!;
}

/**
 * Train every cell for `steps` steps (seed 0) in a scratch folder, time its
 * steady-state training steps (from log.jsonl) and its sampling (both
 * samplers, `n` images), and print what the study of `s` (its budget, seeds)
 * and `settings` (N) would take on this machine.
 */
async function estimate(s: StudySettings, settings: EvalSettings, cells: readonly ExpertCell[], seeds: number, steps: number, n: number): Promise<void> {
  const tiny: StudySettings = { ...s, steps, sharedSteps: Math.floor(steps / 2), budgetImages: steps * s.batch, work: join(s.work, 'estimate') };
  const rows: string[][] = [];
  let perSeed = 0;
  for (const cell of cells) {
    const p = plan(tiny, cell, 0);
    await ensureCell(tiny, p);
    const skip = cell.recipe === 'split' ? tiny.sharedSteps + 2 : Math.min(5, Math.floor(steps / 3));
    const stepS = medianStepSeconds(p.runDir, skip);
    // what the full study trains for this cell: the split cells only their expert phase (the shared phase is the K = 1 run's)
    const trainSteps = cell.recipe === 'split' ? s.steps - s.sharedSteps : s.steps * cell.batchDivisor;
    const pipe = await loadPipeline(p.runDir, { engine: 'onnx', threads: settings.threads, batchSize: settings.evalBatch });
    let sampleS = 0;
    try {
      await warmUp(pipe, settings.evalBatch);
      for (const sp of SAMPLERS) {
        const t0 = performance.now();
        await generateWith(pipe, { sampler: sp.sampler, steps: sp.steps, n, seed: 0, batchSize: settings.evalBatch, condition: classCondition(pipe.config, Int32Array.from({ length: n }, (_, i) => i % 10), settings.guidance) });
        sampleS += (performance.now() - t0) / 1000 / n;
      }
    } finally {
      await pipe.dispose();
    }
    const train = trainSteps * stepS;
    const evalS = sampleS * settings.n * 1.1; // + the yardstick and scoring, about a tenth
    perSeed += train + evalS;
    const batch = s.batch / cell.batchDivisor;
    rows.push([cell.id, fixed((batch / stepS), 1), `${trainSteps}`, minutes(train), fixed(1000 * sampleS, 1), minutes(evalS), minutes(train + evalS)]);
    say(`${cell.id}: ${fixed(batch / stepS, 1)} img/s training, ${fixed(1000 * sampleS, 1)} ms/image sampling (both samplers)`);
  }
  process.stdout.write(`\nEstimate on this machine (${machineDescription()}; 1-minute load ${fixed(loadavg()[0]!, 2)} now), from ${steps} training steps and ${n} samples per cell:\n\n` +
    markdownTable(['cell', 'training img/s', 'steps to train', 'training', 'sampling ms/image (DDIM 50 + DPM++ 20, guided)', `evaluation (N = ${settings.n})`, 'cell, one seed'], rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r']) +
    `\nbudget ${s.budgetImages.toLocaleString('en-US')} images (${s.steps} steps, split at ${s.sharedSteps}): ${minutes(perSeed)} per seed, **${minutes(perSeed * seeds)} for ${seeds} seed(s)**` +
    ` (plus a minute or two per call for data loading and the floor). A training engine k times faster divides the training column by k.\n`);
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const { values: o } = benchOptions('study-experts', {
    cells: { type: 'string', help: `comma-separated cells to train and evaluate (${CELLS.map((c) => c.id).join(', ')})`, defaultText: 'all' },
    seeds: { type: 'int-list', min: 0, max: 1_000_000, maxLength: 16, default: [0, 1], help: 'training seeds of every cell' },
    'budget-images': { type: 'int', min: 64, max: 100_000_000, default: 32_000, help: 'training images per cell (a multiple of the batch size)' },
    'batch-size': { type: 'int', min: 4, max: 4096, default: 64, help: 'training batch' },
    'split-at': { type: 'number', min: 0, max: 1, exclusive: 'both', default: 0.5, help: 'share of the budget the split cells train as one shared network' },
    'base-channels': { type: 'int', min: 8, max: 256, default: 16, help: 'U-Net base channels (the full-width networks)' },
    'warmup-steps': { type: 'int', min: 0, max: 100_000, default: 200, help: 'learning-rate warm-up steps' },
    workers: { type: 'int', min: 1, max: 2, default: 2, help: 'data-parallel training workers' },
    n: { type: 'int', min: 20, max: 100_000, default: 1000, help: 'samples per run and sampler (and reference images)' },
    guidance: { type: 'number', min: 0, max: 100, default: 2, help: 'guidance weight W of the samples' },
    'sample-seed': { type: 'int', min: 0, max: 2 ** 32 - 1, default: 0, help: 'seed of the sampling noise and reference images' },
    'yard-n': { type: 'int', min: 1, max: 10_000, default: 256, help: 'held-out images of the error-by-t yardstick' },
    'yard-t': { type: 'int-list', min: 0, max: 999, maxLength: 32, default: [10, 100, 200, 350, 500, 650, 800, 950], help: 'timesteps of the error-by-t yardstick' },
    'eval-batch': { type: 'int', min: 1, max: 4096, default: 64, help: 'images per network evaluation when sampling' },
    threads: { type: 'int', min: 1, max: 64, default: 2, help: 'ONNX Runtime threads' },
    'floor-seeds': { type: 'int', min: 1, max: 100, default: 5, help: 'draws of real images for the floor\'s spread' },
    work: { type: 'string', help: 'work folder (runs/ and results/)', defaultText: 'runs/study-experts' },
    out: { type: 'string', help: 'report prefix', defaultText: 'docs/study-experts' },
    'no-train': { type: 'flag', help: 'evaluate only runs that are trained; fail on a missing one' },
    'report-only': { type: 'flag', help: 'train and evaluate nothing: write the report from the results in the work folder' },
    estimate: { type: 'int', min: 8, max: 10_000, help: 'train every cell this many steps (in <work>/estimate), time training and sampling, and print what the study with these settings would take; writes no report' },
    'estimate-n': { type: 'int', min: 10, max: 10_000, default: 128, help: 'with --estimate: images sampled per cell to time sampling' },
  } as const);
  const batch = o['batch-size'];
  if (o['budget-images'] % batch !== 0) throw new StudyError(`--budget-images ${o['budget-images']} is not a multiple of --batch-size ${batch}`);
  const steps = o['budget-images'] / batch;
  const sharedSteps = Math.round(o['split-at'] * steps);
  if (sharedSteps < 1 || sharedSteps >= steps) throw new StudyError(`--split-at ${o['split-at']} of ${steps} steps leaves no shared or no expert phase`);
  const s: StudySettings = {
    budgetImages: o['budget-images'], batch, steps, sharedSteps, baseChannels: o['base-channels'], warmup: o['warmup-steps'], workers: o.workers,
    work: o.work ?? join(ROOT, 'runs', 'study-experts'),
  };
  const settings: EvalSettings = { n: o.n, guidance: o.guidance, sampleSeed: o['sample-seed'], yardN: o['yard-n'], yardT: [...o['yard-t']], evalBatch: o['eval-batch'], threads: o.threads };
  const out = o.out ?? join(ROOT, 'docs', 'study-experts');
  const wanted = o.cells === undefined ? [...CELLS] : o.cells.split(',').map((id) => {
    const c = CELLS.find((x) => x.id === id.trim());
    if (c === undefined) throw new StudyError(`--cells: unknown cell '${id}'; known: ${CELLS.map((x) => x.id).join(', ')}`);
    return c;
  });
  const seeds = [...new Set(o.seeds)];
  if (o.estimate !== undefined) {
    await estimate(s, settings, wanted, seeds.length, o.estimate, o['estimate-n']);
    return;
  }
  const tStart = performance.now();
  const resultsDir = join(s.work, 'results');
  mkdirSync(resultsDir, { recursive: true });
  say(`study 4 (experts): ${steps} steps of batch ${batch} per cell (${s.budgetImages} images), split cells shared for ${sharedSteps}; work folder ${s.work}`);

  // train first (both cores), then evaluate: timings are not disturbed by training
  const todo: { p: CellPlan; trained: { step: number; trainSeconds: number } }[] = [];
  if (!o['report-only']) {
    for (const cell of wanted) {
      for (const seed of seeds) {
        const p = plan(s, cell, seed);
        const prev = readResult(join(resultsDir, `${p.run}.json`));
        if (o['no-train'] && !existsSync(join(p.runDir, 'checkpoint'))) throw new StudyError(`--no-train: ${p.run} has no checkpoint in ${p.runDir}`);
        const trained = o['no-train'] ? await ensureRun(p.runDir, p.config, s.steps * p.cell.batchDivisor, p.command, async () => { throw new StudyError(`--no-train: ${p.run} is not trained`); }) : await ensureCell(s, p);
        say(`${p.run}: ${trained.action} (step ${trained.step}, ${minutes(trained.trainSeconds)} of training)`);
        if (resultFits(prev, p, s, settings)) {
          say(`${p.run}: evaluated already (${join(resultsDir, `${p.run}.json`)})`);
          continue;
        }
        todo.push({ p, trained });
      }
    }
  }
  say(`measuring stick at N = ${settings.n}: Fashion-MNIST test images, real-vs-real floor …`);
  const ctx = await prepareEval(settings.n, settings.sampleSeed, o['floor-seeds'], 'fashion-mnist');
  try {
    for (const { p, trained } of todo) {
      const r = await evaluateRun(p, trained, ctx, settings);
      writeFileSync(join(resultsDir, `${p.run}.json`), JSON.stringify(r) + '\n');
    }
    // the report: every result of these settings in the work folder, cells in study order, seeds ascending
    const all = readdirSync(resultsDir).filter((f) => f.endsWith('.json')).map((f) => readResult(join(resultsDir, f))).filter((r): r is RunResult => r !== undefined);
    const fits = (cell: ExpertCell, r: RunResult): boolean => r.cell === cell.id && resultFits(r, plan(s, cell, r.seed), s, settings);
    const stale = all.filter((r) => !CELLS.some((c) => fits(c, r)));
    if (stale.length > 0) say(`left out of the report (other budget, model or evaluation settings): ${stale.map((r) => r.run).join(', ')}`);
    const summaries: CellSummary[] = CELLS.map((cell) => ({ cell, runs: all.filter((r) => fits(cell, r)).sort((a, b) => a.seed - b.seed) })).filter((c) => c.runs.length > 0);
    if (summaries.length === 0) throw new StudyError(`no results in ${resultsDir} with these settings (N ${settings.n}, guidance ${settings.guidance}, ${s.steps} steps): nothing to report`);
    const wall = (performance.now() - tStart) / 1000;
    const r = report(summaries, ctx, s, settings, out, wall);
    const files = writeReport(out, r.md, r.json, r.extra);
    await writeSampleRows(`${out}-samples.png`, summaries.map((c) => {
      const g = c.runs[0]!.grid;
      return { images: Float32Array.from(Buffer.from(g.bytes, 'base64'), (v) => v / 127.5 - 1), shape: g.shape };
    }), 10 * GRID_PER_CLASS);
    say(`wrote ${[...files, `${out}-samples.png`].join(', ')} (${minutes(wall)}; ${summaries.map((c) => `${c.cell.id}: seeds ${c.runs.map((x) => x.seed).join(',')}`).join('; ')})`);
  } finally {
    ctx.dispose();
  }
}

main().catch(reportError);
