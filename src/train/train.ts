/**
 * The training loop: data -> (x_t, t, target) in plain arrays -> the trainer
 * core (tfjs, one or two workers) -> checkpoints, logs and sample grids.
 *
 * The diffusion math stays here and in src/diffusion (engine-free); the trainer
 * core only regresses net(x_t, t) onto the target. Everything random comes from
 * one seeded Rng and a seeded batch sampler whose states are checkpointed, so
 * N steps straight and N/2 + resume + N/2 give the same weights.
 *
 * Work is never lost: one run per folder at a time (io/lock.ts), a folder that
 * holds a run is only continued (resume) or replaced on request (overwrite),
 * an abort signal (Ctrl-C in the CLI) finishes the current step and saves,
 * and the log is rewritten atomically on resume.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DiffuseError } from '../errors.js';
import { Rng } from '../rng.js';
import { makeSchedule } from '../schedule.js';
import { makeTrainingBatch } from '../diffusion/forward.js';
import { BatchSampler, gatherBatch } from '../data/batches.js';
import type { Dataset } from '../data/dataset.js';
import { loadDataset, type DatasetSpec } from '../data/index.js';
import { parseConfig, withExperts, type DiffuseConfig, type TrainConfig } from '../config.js';
import { checkpointDir, loadCheckpoint, saveCheckpoint, type TrainingState, LOSS_HISTORY_TAIL } from './checkpoint.js';
import { DEFAULT_MICRO_BATCH, type TrainerState } from './trainer.js';
import { createRunTrainer, type RunTrainer, splitSharedState } from './experts-trainer.js';
import { expertBatchSizes, type ExpertSplit, type SplitOptimizer, stratifiedTimesteps } from '../diffusion/experts.js';
import { JsonlLog, readLog, rewriteLog } from './log.js';
import type { BackendName } from '../engine/backend.js';
import { lockFolder } from '../io/lock.js';
import { siblingFolders } from '../io/folder-swap.js';
import { checkTrainingMemory } from '../limits.js';
import { ProgressBar, type ProgressStream } from '../io/progress.js';
import { tokenize } from '../text/tokenizer.js';
import { sampleCaption } from '../text/captions.js';

/** Settings that may change when a run is resumed (they do not change the math of a step). */
export type ResumableSettings = Partial<Pick<TrainConfig, 'steps' | 'workers' | 'sampleEvery' | 'checkpointEvery'>>;
export const RESUMABLE_SETTINGS: readonly (keyof ResumableSettings)[] = ['steps', 'workers', 'sampleEvery', 'checkpointEvery'];

export interface TrainOptions {
  /** The run's config (ignored when resuming: the checkpoint's config wins, except `overrides`). */
  readonly config: DiffuseConfig;
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
  /** Called with each sample grid written (path). */
  readonly onSamples?: (file: string, step: number) => void | Promise<void>;
  /** Writes sample grids during training (the CLI passes one; the library stays engine-light). */
  readonly sampleGrid?: (ema: TrainerState['ema'], config: DiffuseConfig, file: string) => Promise<void>;
  /** Print one-line messages (resume info, skipped files, warnings). */
  readonly log?: (msg: string) => void;
  /** Called once the run's config is final (classes taken from the data), before the first step. */
  readonly onStart?: (config: DiffuseConfig, resumedAt: number | undefined) => void;
  /**
   * eDiff-I's shared-then-split recipe: start a new run (in outDir) from the
   * single network trained in `dir`, copied into `experts` expert networks
   * (diffusion/experts.ts) that continue from its step, data order and random
   * state to config.train.steps. The run's config is `dir`'s, with the experts
   * section added (`config` is ignored; `overrides` apply).
   */
  readonly splitFrom?: SplitFrom;
}

export interface SplitFrom {
  /** Run or checkpoint folder of the shared network (a single network, K = 1). */
  readonly dir: string;
  /** Number of experts, ≥ 2. */
  readonly experts: number;
  readonly split: ExpertSplit;
  /** The experts inherit the shared network's Adam moments ('copy') or start fresh. */
  readonly optimizer: SplitOptimizer;
}

export interface TrainResult {
  readonly config: DiffuseConfig;
  readonly step: number;
  readonly lastLoss: number;
  readonly seconds: number;
  readonly imgPerSec: number;
  /** The checkpoint folder written. */
  readonly checkpoint: string;
  /** True when the abort signal stopped the run early (after saving). */
  readonly interrupted: boolean;
}

/** What in `outDir` shows an earlier run (a checkpoint, an interrupted save, a log), in words; undefined if none. */
export function existingRun(outDir: string): string | undefined {
  const ck = checkpointDir(outDir);
  if (existsSync(join(ck, 'config.json')) || existsSync(join(ck, 'state.json'))) return `a checkpoint (${ck})`;
  if (siblingFolders(ck, 'tmp').length + siblingFolders(ck, 'old').length > 0) return `a checkpoint left by an interrupted save (${ck}.*)`;
  if (existsSync(join(outDir, 'log.jsonl'))) return `a training log (${join(outDir, 'log.jsonl')})`;
  return undefined;
}

/** Linear warm-up to the peak rate, then constant. */
export function learningRate(step: number, lr: number, warmupSteps: number): number {
  return warmupSteps > 0 ? lr * Math.min(1, (step + 1) / warmupSteps) : lr;
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

/** Load the data set a config names (mnist, fashion-mnist, emoji, folder:<path>); a progress bar if loading takes more than 2 s. */
export async function datasetFor(config: DiffuseConfig, opts: { dataDir?: string; skipBad?: boolean; split?: 'train' | 'test' | 'heldout'; progress?: ProgressStream | null } = {}): Promise<Dataset & { skipped?: { file: string; reason: string }[] }> {
  const name = config.data.dataset;
  const size = { imageSize: config.data.imageSize, channels: config.data.channels };
  let bar: ProgressBar | undefined;
  const onProgress = opts.progress === null ? undefined : (done: number, total: number): void => {
    bar ??= new ProgressBar({ total, label: 'load', unit: 'file', quietForMs: 2000, ...(opts.progress ? { stream: opts.progress } : {}) });
    bar.update(done, { items: 1 });
    if (done === total) bar.finish();
  };
  let spec: DatasetSpec;
  if (name === 'mnist' || name === 'fashion-mnist') {
    spec = { name, ...size, split: opts.split ?? 'train', ...(opts.dataDir !== undefined ? { dir: opts.dataDir } : {}) };
  } else if (name === 'emoji') {
    spec = { name, ...size, split: opts.split ?? 'train', skipBad: opts.skipBad ?? false, ...(onProgress ? { onProgress } : {}) };
  } else if (name.startsWith('folder:')) {
    const requireCaptions = config.model.text !== undefined && config.data.captions === undefined;
    spec = { name: 'folder', dir: opts.dataDir ?? name.slice('folder:'.length), ...size, skipBad: opts.skipBad ?? false, requireCaptions };
  } else {
    throw new DiffuseError(`unknown data set '${name}': expected mnist, fashion-mnist, emoji or folder:<path>`);
  }
  return loadDataset(spec);
}

/**
 * Text models on a captioned data set: every caption of every image as token
 * rows, once, before training (a caption the vocabulary cannot read fails
 * here, naming it, not mid-run). Undefined for other models.
 */
function captionTokens(config: DiffuseConfig, data: Dataset): Int32Array[][] | undefined {
  const text = config.model.text;
  if (text === undefined || config.data.captions !== undefined) return undefined;
  if (data.captions === undefined) throw new DiffuseError(`data set ${data.name} has no captions: a text-conditioned model needs captions (or class names on mnist / fashion-mnist)`);
  return data.captions.map((caps) => caps.map((c) => {
    try {
      return tokenize(c, text);
    } catch (e) {
      if (e instanceof DiffuseError) throw new DiffuseError(`training caption of data set ${data.name}: ${e.message}`, { cause: e });
      throw e;
    }
  }));
}

/**
 * The condition rows of a batch, each dropped to "no condition" at rate p
 * (classifier-free guidance): class models get the label (numClasses = no
 * class); text models get the tokens of a random caption: of the image's own
 * captions on a captioned data set (`tokens`, by image index), else of its
 * label's phrases (text/captions.ts); or all pads.
 */
function batchCondition(config: DiffuseConfig, batch: { idx: ArrayLike<number>; labels: Int32Array | undefined }, p: number, rng: Rng, tokens: Int32Array[][] | undefined): Int32Array | undefined {
  const m = config.model;
  if (m.numClasses === 0 && m.text === undefined) return undefined;
  const n = batch.idx.length;
  if (m.text !== undefined && tokens !== undefined) {
    const L = m.text.maxTokens;
    const out = new Int32Array(n * L);
    for (let i = 0; i < n; i++) {
      const rows = tokens[batch.idx[i]!]!;
      if (rng.uniform() < p) continue; // all pads: no prompt
      out.set(rows[Math.min(rows.length - 1, Math.floor(rng.uniform() * rows.length))]!, i * L);
    }
    return out;
  }
  const labels = batch.labels;
  if (labels === undefined) throw new DiffuseError('the model is conditional (classes or text) but the data set has no labels');
  if (m.text !== undefined) {
    const caps = config.data.captions;
    if (caps === undefined) throw new DiffuseError('a text-conditioned model needs data.captions in its config');
    const L = m.text.maxTokens;
    const out = new Int32Array(labels.length * L);
    for (let i = 0; i < labels.length; i++) {
      const l = labels[i]!;
      if (l < 0 || l >= caps.length) throw new DiffuseError(`label ${l} out of range for captions of ${caps.length} classes`);
      if (rng.uniform() < p) continue; // all pads: no prompt
      out.set(tokenize(sampleCaption(l, caps, rng), m.text), i * L);
    }
    return out;
  }
  const numClasses = m.numClasses;
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l < 0 || l >= numClasses) throw new DiffuseError(`label ${l} out of range for a model with ${numClasses} classes`);
    out[i] = rng.uniform() < p ? numClasses : l;
  }
  return out;
}

/**
 * Class-conditional models take their classes from the data: numClasses and
 * labelNames follow the data set's label names (a folder's subfolders), and a
 * data set without labels is refused before training starts.
 */
function withDataLabels(config: DiffuseConfig, data: Dataset, resumed: boolean): DiffuseConfig {
  const m = config.model;
  if (m.numClasses === 0 && m.text === undefined) return config;
  // a text model whose captions come with the images (not from class names) needs no labels
  if (m.text !== undefined && config.data.captions === undefined) return config;
  if (data.labels === undefined) throw new DiffuseError(`the model is conditional (${m.text !== undefined ? 'text' : 'classes'}) but data set ${data.name} has no labels (a folder needs one subfolder per class, at least two)`);
  const names = data.labelNames;
  if (names === undefined) return config;
  if (m.text !== undefined) {
    const caps = config.data.captions?.length;
    if (caps !== undefined && caps !== names.length) throw new DiffuseError(`data set ${data.name} has ${names.length} classes, the text model's captions describe ${caps}`);
    return config.data.labelNames === undefined ? { ...config, data: { ...config.data, labelNames: [...names] } } : config;
  }
  if (resumed || config.data.labelNames !== undefined) {
    if (m.numClasses !== names.length) throw new DiffuseError(`data set ${data.name} has ${names.length} classes (${names.join(', ')}), the model was made for ${m.numClasses}`);
    return config.data.labelNames === undefined ? { ...config, data: { ...config.data, labelNames: [...names] } } : config;
  }
  return parseConfig({ ...config, model: { ...m, numClasses: names.length }, data: { ...config.data, labelNames: [...names] } }, 'config with the data set\'s classes');
}

/** Train (or resume training) a diffusion model; writes checkpoints to opts.outDir. */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const say = opts.log ?? (() => {});
  if (opts.resume && opts.overwrite) throw new DiffuseError('resume or overwrite a run, not both');
  if (opts.resume && opts.splitFrom) throw new DiffuseError('resume a run or split a shared network into experts, not both');
  if (opts.splitFrom && resolve(checkpointDir(opts.splitFrom.dir)) === resolve(checkpointDir(opts.outDir))) {
    throw new DiffuseError(`the experts split from ${opts.splitFrom.dir} need a run folder of their own (--out), not the shared network's`);
  }
  if (opts.resume && !existsSync(opts.outDir)) throw new DiffuseError(`cannot resume ${opts.outDir}: no such folder`);
  const lock = lockFolder(opts.outDir, 'training run', say);
  try {
    return await trainLocked(opts, say);
  } finally {
    lock.release();
  }
}

async function trainLocked(opts: TrainOptions, say: (msg: string) => void): Promise<TrainResult> {
  let config = opts.config;
  let resumed: { state: TrainerState; training: TrainingState } | undefined;
  const ckDir = checkpointDir(opts.outDir);
  if (opts.resume) {
    const ck = await loadCheckpoint(ckDir);
    config = ck.config;
    resumed = { state: ck.state, training: ck.trainingState };
    const sb = ck.trainingState.sampler.batchSize;
    if (sb !== config.train.batchSize) {
      throw new DiffuseError(`${join(ckDir, 'state.json')}: the data sampler's batch size ${sb} differs from the config's train.batchSize ${config.train.batchSize} (damaged checkpoint?)`);
    }
    say(`resuming ${opts.outDir} at step ${ck.trainingState.step}`);
  } else {
    const found = existingRun(opts.outDir);
    if (found !== undefined && !opts.overwrite) {
      throw new DiffuseError(`${opts.outDir} already holds a run: ${found}; continue it with --resume ${opts.outDir}, start over with --overwrite, or choose another --out`);
    }
  }
  if (opts.splitFrom) {
    const sf = opts.splitFrom;
    const srcDir = checkpointDir(sf.dir);
    const src = await loadCheckpoint(srcDir);
    if (src.config.experts !== undefined) throw new DiffuseError(`${sf.dir} holds ${src.config.experts.count} expert networks already: split a single shared network`);
    if (!Number.isInteger(sf.experts) || sf.experts < 2) throw new DiffuseError(`splitting a shared network needs at least 2 experts, got ${sf.experts}`);
    const at = src.trainingState.step;
    config = withExperts(src.config, sf.experts, sf.split, { kind: 'split', sharedSteps: at, optimizer: sf.optimizer });
    resumed = { state: splitSharedState(config, src.state, sf.optimizer), training: src.trainingState };
  }
  for (const k of RESUMABLE_SETTINGS) {
    const v = opts.overrides?.[k];
    if (v === undefined || v === config.train[k]) continue;
    if (opts.resume) say(`resuming with ${k} ${v} (was ${config.train[k]})`);
    config = { ...config, train: { ...config.train, [k]: v } };
  }
  config = parseConfig(config, opts.resume ? join(ckDir, 'config.json') : 'the run\'s config');
  const tc = config.train;
  const totalSteps = tc.steps;
  if (tc.workers !== 1 && tc.workers !== 2) throw new DiffuseError(`train.workers must be 1 or 2 (data-parallel worker threads), got ${tc.workers} (give --workers 1 or 2)`);
  if (resumed && resumed.training.step > totalSteps) throw new DiffuseError(`the checkpoint is at step ${resumed.training.step}, past the run's ${totalSteps} steps: give --train-steps above ${resumed.training.step} to continue it`);
  if (opts.splitFrom && resumed && resumed.training.step >= totalSteps) throw new DiffuseError(`the shared network is at step ${resumed.training.step}: give --train-steps above ${resumed.training.step} for the experts to train`);
  if (opts.splitFrom && resumed) {
    const sf = opts.splitFrom;
    say(`splitting the shared network of ${sf.dir} (step ${resumed.training.step}) into ${sf.experts} experts (${sf.split} split, ${sf.optimizer === 'copy' ? 'Adam moments copied' : 'fresh Adam moments'})`);
  }
  const source = opts.resume ? join(ckDir, 'config.json') : 'this run';
  checkTrainingMemory(config.model, tc.batchSize, DEFAULT_MICRO_BATCH, opts.backend === 'tensorflow' ? 'native' : 'wasm', source);

  const data = opts.dataset ?? (await datasetFor(config, { ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}), skipBad: opts.skipBad ?? false, ...(opts.progress !== undefined ? { progress: opts.progress } : {}) }));
  const skipped = (data as { skipped?: unknown[] }).skipped;
  if (skipped !== undefined && skipped.length > 0) say(`skipped ${skipped.length} unreadable image(s)`);
  const [, h, w, c] = data.shape;
  if (h !== config.data.imageSize || w !== config.data.imageSize || c !== config.data.channels) {
    throw new DiffuseError(`data set images are ${h}x${w}x${c} but the config expects ${config.data.imageSize}x${config.data.imageSize}x${config.data.channels}`);
  }
  const classesBefore = config.model.numClasses;
  config = withDataLabels(config, data, resumed !== undefined);
  if (config.model.numClasses !== classesBefore) say(`${config.model.numClasses} classes from the data set: ${config.data.labelNames?.join(', ')}`);

  opts.onStart?.(config, opts.resume ? resumed?.training.step : undefined);
  const tokens = captionTokens(config, data);
  const schedule = makeSchedule(config.diffusion.schedule, config.diffusion.timesteps, config.diffusion);
  const rng = resumed ? Rng.fromState(resumed.training.rng) : new Rng(tc.seed);
  const batches = resumed ? BatchSampler.fromState(resumed.training.sampler, data.shape[0]) : new BatchSampler(data.shape[0], tc.batchSize, tc.seed);
  const lossHistory = resumed ? [...resumed.training.lossHistory] : [];
  const startStep = resumed?.training.step ?? 0;
  let step = startStep;
  const priorWall = resumed?.training.wallTimeSec ?? 0;

  const trainer: RunTrainer = await createRunTrainer(config, { seed: tc.seed, workers: tc.workers === 2 ? 2 : 1, ...(opts.backend !== undefined ? { backend: opts.backend } : {}) });
  const experts = config.experts;
  const expertShares = experts === undefined ? undefined : expertBatchSizes(experts.boundaries, tc.batchSize);
  const logFile = join(opts.outDir, 'log.jsonl');
  try {
    if (opts.splitFrom) {
      // the experts' run carries on the shared network's loss curve up to the split
      const srcLog = join(opts.splitFrom.dir, 'log.jsonl');
      rewriteLog(logFile, existsSync(srcLog) ? readLog(srcLog, { onBadLine: () => {} }).filter((r) => r.step <= startStep) : []);
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
    const stopRequested = (): boolean => opts.signal?.aborted === true;
    const save = async (): Promise<void> => {
      const state = await trainer.exportState();
      await saveCheckpoint(ckDir, {
        config,
        state,
        trainingState: {
          step,
          rng: rng.state(),
          sampler: batches.state(),
          lossHistory: lossHistory.slice(-LOSS_HISTORY_TAIL),
          wallTimeSec: priorWall + (performance.now() - t0) / 1000,
        },
      });
    };
    while (step < stepsThisCall) {
      // Let the event loop run (signal handlers, timers): with one worker a step is all microtasks.
      await new Promise<void>((r) => setImmediate(r));
      if (stopRequested()) break;
      const idx = batches.next();
      const { x, labels, shape } = gatherBatch(data, idx);
      const cond = batchCondition(config, { idx, labels }, tc.condDropout, rng, tokens);
      // experts: each gets its share of the batch with t in its own range (stratified); one network: t ~ U{0..T-1}
      const b = makeTrainingBatch(schedule, config.diffusion.prediction, x, shape, rng,
        experts !== undefined && expertShares !== undefined ? stratifiedTimesteps(experts.boundaries, expertShares, rng) : undefined);
      const lr = learningRate(step, tc.lr, tc.warmupSteps);
      const ts = Float32Array.from(b.t);
      const r = await trainer.step(
        { xt: b.xt, t: ts, target: b.target, shape, ...(cond !== undefined ? { cond } : {}) },
        { lr, clipNorm: tc.clipNorm, emaDecay: emaDecayAt(step, tc.emaDecay) },
      );
      if (!Number.isFinite(r.loss)) throw new DiffuseError(`training diverged at step ${step}: loss is ${r.loss} (try a lower --lr)`);
      step++;
      lastLoss = r.loss;
      lossHistory.push(r.loss);
      if (lossHistory.length > 2 * LOSS_HISTORY_TAIL) lossHistory.splice(0, lossHistory.length - LOSS_HISTORY_TAIL);
      bar?.update(step, { loss: r.loss, items: shape[0] });
      const elapsed = (performance.now() - t0) / 1000;
      const perExpert = r.experts.length > 1 ? Object.fromEntries(r.experts.map((e, k) => [`expert${k}Loss`, e.loss])) : {};
      log.append({ step, loss: r.loss, lr, gradNorm: r.gradNorm, imgPerSec: ((step - startStep) * tc.batchSize) / Math.max(elapsed, 1e-9), ...perExpert });
      const last = step === stepsThisCall;
      if (tc.checkpointEvery > 0 && step % tc.checkpointEvery === 0 && !last && !stopRequested()) await save();
      if (opts.sampleGrid && tc.sampleEvery > 0 && (step % tc.sampleEvery === 0 || step === totalSteps) && !stopRequested()) {
        const file = join(opts.outDir, 'samples', `step-${String(step).padStart(6, '0')}.png`);
        const st = await trainer.exportState();
        await opts.sampleGrid(st.ema, config, file);
        await opts.onSamples?.(file, step);
      }
    }
    const interrupted = step < stepsThisCall;
    if (step > startStep || !opts.resume) await save();
    bar?.finish();
    const seconds = (performance.now() - t0) / 1000;
    const done = step - startStep;
    return { config, step, lastLoss, seconds, imgPerSec: (done * tc.batchSize) / Math.max(seconds, 1e-9), checkpoint: ckDir, interrupted };
  } finally {
    await trainer.dispose();
  }
}
