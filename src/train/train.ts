/**
 * The training loop: data -> (x_t, t, target) in plain arrays -> the trainer
 * core (tfjs, one or two workers) -> checkpoints, logs and sample grids.
 *
 * The diffusion math stays here and in src/diffusion (engine-free); the trainer
 * core only regresses net(x_t, t) onto the target. Everything random comes from
 * one seeded Rng and a seeded batch sampler whose states are checkpointed, so
 * N steps straight and N/2 + resume + N/2 give the same weights.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiffuseError } from '../errors.js';
import { Rng } from '../rng.js';
import { makeSchedule } from '../schedule.js';
import { makeTrainingBatch } from '../diffusion/forward.js';
import { BatchSampler, gatherBatch } from '../data/batches.js';
import type { Dataset } from '../data/dataset.js';
import { loadDataset, type DatasetSpec } from '../data/index.js';
import type { DiffuseConfig } from '../config.js';
import { loadCheckpoint, saveCheckpoint, type TrainingState, LOSS_HISTORY_TAIL } from './checkpoint.js';
import { createTrainer, type Trainer, type TrainerState } from './trainer.js';
import { JsonlLog, readLog } from './log.js';
import { ProgressBar, type ProgressStream } from './progress.js';
import { tokenize } from '../text/tokenizer.js';
import { sampleCaption } from '../text/captions.js';

export interface TrainOptions {
  /** The run's config (ignored when resuming: the checkpoint's config wins, except train.steps). */
  readonly config: DiffuseConfig;
  /** Run folder: holds checkpoint/ (swapped atomically), log.jsonl and samples/. */
  readonly outDir: string;
  /** Continue from the checkpoint in outDir. */
  readonly resume?: boolean;
  /** Override the total number of steps (e.g. extend a resumed run). */
  readonly steps?: number;
  /** Stop after this many steps in this call (the checkpoint then says where to resume). */
  readonly stopAfter?: number;
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
  /** Print one-line messages (resume info, skipped files). */
  readonly log?: (msg: string) => void;
}

export interface TrainResult {
  readonly config: DiffuseConfig;
  readonly step: number;
  readonly lastLoss: number;
  readonly seconds: number;
  readonly imgPerSec: number;
}

/** The checkpoint folder of a run folder: `<run>/checkpoint`, or the folder itself if it is a checkpoint. */
export function checkpointDir(dir: string): string {
  return existsSync(join(dir, 'config.json')) ? dir : join(dir, 'checkpoint');
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

/** Load the data set a config names (mnist, fashion-mnist, folder:<path>). */
export async function datasetFor(config: DiffuseConfig, opts: { dataDir?: string; skipBad?: boolean; split?: 'train' | 'test' } = {}): Promise<Dataset & { skipped?: { file: string; reason: string }[] }> {
  const name = config.data.dataset;
  let spec: DatasetSpec;
  if (name === 'mnist' || name === 'fashion-mnist') {
    spec = { name, imageSize: config.data.imageSize, channels: config.data.channels, split: opts.split ?? 'train', ...(opts.dataDir !== undefined ? { dir: opts.dataDir } : {}) };
  } else if (name.startsWith('folder:')) {
    spec = { name: 'folder', dir: opts.dataDir ?? name.slice('folder:'.length), imageSize: config.data.imageSize, channels: config.data.channels, skipBad: opts.skipBad ?? false };
  } else {
    throw new DiffuseError(`unknown data set '${name}': expected mnist, fashion-mnist or folder:<path>`);
  }
  return loadDataset(spec);
}

/**
 * The condition rows of a batch, each dropped to "no condition" at rate p
 * (classifier-free guidance): class models get the label (numClasses = no
 * class); text models get the tokens of a random caption of the label
 * (text/captions.ts), or all pads.
 */
function batchCondition(config: DiffuseConfig, labels: Int32Array | undefined, p: number, rng: Rng): Int32Array | undefined {
  const m = config.model;
  if (m.numClasses === 0 && m.text === undefined) return undefined;
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

/** Train (or resume training) a diffusion model; writes checkpoints to opts.outDir. */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const say = opts.log ?? (() => {});
  let config = opts.config;
  let resumed: { state: TrainerState; training: TrainingState } | undefined;
  if (opts.resume) {
    const ck = await loadCheckpoint(checkpointDir(opts.outDir));
    config = ck.config;
    resumed = { state: ck.state, training: ck.trainingState };
    say(`resuming ${opts.outDir} at step ${ck.trainingState.step}`);
  }
  const totalSteps = opts.steps ?? config.train.steps;
  if (totalSteps !== config.train.steps) config = { ...config, train: { ...config.train, steps: totalSteps } };
  const tc = config.train;

  const data = opts.dataset ?? (await datasetFor(config, { ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}), skipBad: opts.skipBad ?? false }));
  const skipped = (data as { skipped?: unknown[] }).skipped;
  if (skipped !== undefined && skipped.length > 0) say(`skipped ${skipped.length} unreadable image(s)`);
  const [, h, w, c] = data.shape;
  if (h !== config.data.imageSize || w !== config.data.imageSize || c !== config.data.channels) {
    throw new DiffuseError(`data set images are ${h}x${w}x${c} but the config expects ${config.data.imageSize}x${config.data.imageSize}x${config.data.channels}`);
  }
  if ((config.model.numClasses > 0 || config.model.text !== undefined) && config.data.labelNames === undefined && data.labelNames !== undefined) {
    config = { ...config, data: { ...config.data, labelNames: [...data.labelNames] } };
  }

  const schedule = makeSchedule(config.diffusion.schedule, config.diffusion.timesteps);
  const rng = resumed ? Rng.fromState(resumed.training.rng) : new Rng(tc.seed);
  const batches = resumed ? BatchSampler.fromState(resumed.training.sampler, data.shape[0]) : new BatchSampler(data.shape[0], tc.batchSize, tc.seed);
  const lossHistory = resumed ? [...resumed.training.lossHistory] : [];
  let step = resumed?.training.step ?? 0;
  const priorWall = resumed?.training.wallTimeSec ?? 0;

  const trainer: Trainer = await createTrainer(config.model, { seed: tc.seed, workers: tc.workers === 2 ? 2 : 1 });
  say(`engine: ${trainer.engine}`);
  if (trainer.notice !== undefined) say(trainer.notice);
  const logFile = join(opts.outDir, 'log.jsonl');
  if (resumed && existsSync(logFile)) {
    // A run killed after its last checkpoint logged steps that will be redone: keep the log in step with the checkpoint.
    const kept = readLog(logFile).filter((r) => r.step <= resumed!.training.step);
    writeFileSync(logFile, kept.map((r) => JSON.stringify(r) + '\n').join(''));
  }
  const log = new JsonlLog(logFile);
  try {
    if (resumed) await trainer.importState(resumed.state);
    const bar = opts.progress === null ? null : new ProgressBar({ total: totalSteps, start: step, label: 'train', ...(opts.progress ? { stream: opts.progress } : {}) });
    const t0 = performance.now();
    const stepsThisCall = Math.min(totalSteps, opts.stopAfter !== undefined ? step + opts.stopAfter : totalSteps);
    let lastLoss = NaN;
    const save = async (): Promise<void> => {
      const state = await trainer.exportState();
      await saveCheckpoint(checkpointDir(opts.outDir), {
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
      return undefined;
    };
    while (step < stepsThisCall) {
      const idx = batches.next();
      const { x, labels, shape } = gatherBatch(data, idx);
      const cond = batchCondition(config, labels, tc.condDropout, rng);
      const b = makeTrainingBatch(schedule, config.diffusion.prediction, x, shape, rng);
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
      log.append({ step, loss: r.loss, lr, gradNorm: r.gradNorm, imgPerSec: ((step - (resumed?.training.step ?? 0)) * tc.batchSize) / Math.max(elapsed, 1e-9) });
      const last = step === stepsThisCall;
      if (tc.checkpointEvery > 0 && step % tc.checkpointEvery === 0 && !last) await save();
      if (opts.sampleGrid && tc.sampleEvery > 0 && (step % tc.sampleEvery === 0 || step === totalSteps)) {
        const file = join(opts.outDir, 'samples', `step-${String(step).padStart(6, '0')}.png`);
        const st = await trainer.exportState();
        await opts.sampleGrid(st.ema, config, file);
        await opts.onSamples?.(file, step);
      }
    }
    await save();
    bar?.finish();
    const seconds = (performance.now() - t0) / 1000;
    const done = step - (resumed?.training.step ?? 0);
    return { config, step, lastLoss, seconds, imgPerSec: (done * tc.batchSize) / Math.max(seconds, 1e-9) };
  } finally {
    await trainer.dispose();
  }
}
