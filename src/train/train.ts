/**
 * Training a diffusion model: the stage the run loop (run.ts) trains. Data ->
 * (x_t, t, target) in plain arrays -> the U-Net's trainer core (tfjs, one or
 * two workers); sample grids every `sampleEvery` steps.
 *
 * The diffusion math stays here and in src/diffusion (engine-free); the trainer
 * core only regresses net(x_t, t) onto the target. Everything random comes from
 * the run's one seeded Rng and its seeded batch sampler (both checkpointed).
 *
 * A latent model (config.latent) trains on the autoencoder's scaled latents
 * instead of the pixels: a stage before the same loop (latent/space.ts), the
 * images encoded once per run (cached in the run folder), a posterior sample
 * drawn per image and step.
 *
 * Expert denoisers (config.experts, diffusion/experts.ts): K U-Nets trained
 * side by side (experts-trainer.ts), each batch stratified so every expert
 * gets its share of images with t in its own range; or eDiff-I's
 * shared-then-split recipe (`splitFrom`): a new run that starts from a
 * trained single network copied into the experts.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DiffuseError } from '../errors.js';
import type { Rng } from '../rng.js';
import { makeSchedule } from '../schedule.js';
import { makeTrainingBatch } from '../diffusion/forward.js';
import { gatherBatch } from '../data/batches.js';
import { type Dataset, evenlySpacedIndices } from '../data/dataset.js';
import { loadDataset, type DatasetSpec } from '../data/index.js';
import { type DataConfig, parseConfig, withExperts, type DiffuseConfig, type SamplingBalance, type TrainConfig } from '../config.js';
import { checkpointDir, DIFFUSION_CODEC, loadCheckpoint, loadModelWeights } from './checkpoint.js';
import { DEFAULT_MICRO_BATCH, type TrainBatch } from './trainer.js';
import { createRunTrainer, splitSharedState } from './experts-trainer.js';
import { expertBatchSizes, type ExpertSplit, type SplitOptimizer, stratifiedTimesteps } from '../diffusion/experts.js';
import { readLog } from './log.js';
import type { BackendName } from '../engine/backend.js';
import { checkTrainingMemory } from '../limits.js';
import { ProgressBar, type ProgressStream } from '../io/progress.js';
import { tokenize } from '../text/tokenizer.js';
import { sampleCaption } from '../text/captions.js';
import { type RunOptions, type RunResult, type RunStart, runTraining, type Stage } from './run.js';
import { copyWeights, type Weights, zeroWeights } from '../tensor.js';
import { type AutoencoderConfig, latentShape } from '../model/autoencoder-config.js';
import { encodeDataset, type LatentData, latentBatch, readLatentCache, weightsFingerprint, writeLatentCache } from '../latent/space.js';

export { existingRun, learningRate, emaDecayAt, RESUMABLE_SETTINGS, type ResumableSettings } from './run.js';

export interface TrainOptions extends RunOptions<DiffuseConfig> {
  /**
   * Writes sample grids during training (the CLI passes one; the library stays
   * engine-light). With them come a latent model's autoencoder weights and, for
   * a text model on a captioned data set, 16 of its captions (each the
   * canonical caption of evenly spaced training images).
   */
  readonly sampleGrid?: (ema: Weights, config: DiffuseConfig, file: string, extras: { autoencoder?: Weights; prompts?: string[] }) => Promise<void>;
  /**
   * A new latent model (config.latent): the autoencoder's weights (its EMA
   * weights, latent/autoencoder.ts loadAutoencoder), saved into every
   * checkpoint. Resumed runs read them from their own checkpoint.
   */
  readonly autoencoder?: Weights;
  /**
   * eDiff-I's shared-then-split recipe: start a new run (in outDir) from the
   * single network trained in `dir`, copied into `experts` expert networks
   * (diffusion/experts.ts) that continue from its step, data order and random
   * state to config.train.steps. The run's config is `dir`'s, with the experts
   * section added (`config` is ignored; `overrides` apply).
   */
  readonly splitFrom?: SplitFrom;
  /**
   * Fine-tune: start a new run (in outDir) from the EMA weights of another
   * model, with fresh Adam moments at step 0 (`config` is ignored; `overrides`
   * apply).
   */
  readonly initFrom?: InitFrom;
}

/** A fine-tuning run's start (TrainOptions.initFrom). */
export interface InitFrom {
  /** A run, checkpoint or shipped model's folder: its model, diffusion, latent autoencoder, data and train settings. */
  readonly dir: string;
  /** The data set to train on (default: the model's). */
  readonly dataset?: string;
  /** How to draw the images (default: the model's). */
  readonly balance?: SamplingBalance;
  /** Changes to the model's train settings (steps: the new run's, from 0). */
  readonly train: Partial<TrainConfig>;
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

export type TrainResult = RunResult<DiffuseConfig>;

/** The file in the run folder that caches a latent model's encoded training set. */
export const LATENT_CACHE_FILE = 'latents.safetensors';

/** Load the data set a config names (mnist, fashion-mnist, emoji, folder:<path>); a progress bar if loading takes more than 2 s. */
export async function datasetFor(config: { data: DataConfig; model?: object }, opts: { dataDir?: string; skipBad?: boolean; split?: 'train' | 'test' | 'heldout'; progress?: ProgressStream | null } = {}): Promise<Dataset & { skipped?: { file: string; reason: string }[] }> {
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
    const m = config.model;
    const requireCaptions = m !== undefined && 'text' in m && m.text !== undefined && config.data.captions === undefined;
    spec = { name: 'folder', dir: opts.dataDir ?? name.slice('folder:'.length), ...size, skipBad: opts.skipBad ?? false, requireCaptions };
  } else {
    throw new DiffuseError(`unknown data set '${name}': expected mnist, fashion-mnist, emoji or folder:<path>`);
  }
  return loadDataset(spec);
}

/** The training images of a run's config, with the run's data options (folder, skipping bad files, progress). */
export function runDataset(config: { data: DataConfig; model?: object }, opts: Pick<RunOptions<never>, 'dataDir' | 'skipBad' | 'progress'>): ReturnType<typeof datasetFor> {
  return datasetFor(config, { ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}), skipBad: opts.skipBad ?? false, ...(opts.progress !== undefined ? { progress: opts.progress } : {}) });
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
  const sf = opts.splitFrom;
  const init = opts.initFrom;
  if (init !== undefined) {
    if (opts.resume) throw new DiffuseError('resume a run or start one from another model (initFrom), not both');
    if (sf !== undefined) throw new DiffuseError('start a run from another model (initFrom) or split a shared network (splitFrom), not both');
    if (opts.autoencoder !== undefined) throw new DiffuseError('a run started from another model takes that model\'s autoencoder: give no autoencoder');
    return runTraining(diffusionStage(opts), { ...opts, startFrom: () => initStart(init, opts.outDir) });
  }
  if (sf === undefined) return runTraining(diffusionStage(opts), opts);
  if (opts.resume) throw new DiffuseError('resume a run or split a shared network into experts, not both');
  if (resolve(checkpointDir(sf.dir)) === resolve(checkpointDir(opts.outDir))) {
    throw new DiffuseError(`the experts split from ${sf.dir} need a run folder of their own (--out), not the shared network's`);
  }
  return runTraining(diffusionStage(opts), { ...opts, startFrom: () => splitStart(sf) });
}

/**
 * Where a fine-tuning run starts (TrainOptions.initFrom): the EMA weights of
 * the model in `dir` as both its weights and its average, fresh Adam moments,
 * step 0. Its config is `dir`'s with the InitFrom's changes.
 */
async function initStart(init: InitFrom, outDir: string): Promise<RunStart<DiffuseConfig>> {
  const dir = init.dir;
  if (resolve(checkpointDir(dir)) === resolve(checkpointDir(outDir))) throw new DiffuseError(`the run started from ${dir} needs a folder of its own (--out), not that model's`);
  const src = await loadModelWeights(checkpointDir(dir), 'ema');
  if (src.config.experts !== undefined) throw new DiffuseError(`${dir} holds ${src.config.experts.count} expert networks: start a run from a single network`);
  const data = {
    ...src.config.data,
    ...(init.dataset !== undefined ? { dataset: init.dataset } : {}),
    ...(init.balance !== undefined ? { balance: init.balance } : {}),
  };
  const next = parseConfig({ ...src.config, data, train: { ...src.config.train, ...init.train } }, `the config of a run started from ${dir}`);
  return {
    config: next,
    state: { params: copyWeights(src.params), ema: copyWeights(src.params), adam: { step: 0, m: zeroWeights(src.params), v: zeroWeights(src.params) } },
    ...(Object.keys(src.parts).length > 0 ? { parts: src.parts } : {}),
    log: [],
    what: `the model in ${dir}`,
    message: `starting from the EMA weights of ${dir} (step ${src.step}): its model${src.config.latent !== undefined ? ', autoencoder' : ''}${src.config.model.text !== undefined ? ', vocabulary' : ''}, data and training settings (with the changes given), fresh Adam moments, step 0`,
  };
}

/** Where the experts of a shared-then-split run start: the shared network's run, copied into each expert. */
async function splitStart(sf: SplitFrom): Promise<RunStart<DiffuseConfig>> {
  if (!Number.isInteger(sf.experts) || sf.experts < 2) throw new DiffuseError(`splitting a shared network needs at least 2 experts, got ${sf.experts}`);
  const src = await loadCheckpoint(checkpointDir(sf.dir));
  if (src.config.experts !== undefined) throw new DiffuseError(`${sf.dir} holds ${src.config.experts.count} expert networks already: split a single shared network`);
  const at = src.trainingState.step;
  const config = withExperts(src.config, sf.experts, sf.split, { kind: 'split', sharedSteps: at, optimizer: sf.optimizer });
  const srcLog = join(sf.dir, 'log.jsonl');
  return {
    config,
    state: splitSharedState(config, src.state, sf.optimizer),
    training: src.trainingState,
    log: existsSync(srcLog) ? readLog(srcLog, { onBadLine: () => {} }) : [],
    what: `the shared network of ${sf.dir}`,
    message: `splitting the shared network of ${sf.dir} (step ${at}) into ${sf.experts} experts (${sf.split} split, ${sf.optimizer === 'copy' ? 'Adam moments copied' : 'fresh Adam moments'})`,
  };
}

/** The diffusion model as a stage of the run loop. */
function diffusionStage(opts: TrainOptions): Stage<DiffuseConfig, TrainBatch> {
  return {
    codec: DIFFUSION_CODEC,
    check: (config, source) => checkTrainingMemory(config.model, config.train.batchSize, DEFAULT_MICRO_BATCH, opts.backend === 'tensorflow' ? 'native' : 'wasm', source),
    loadData: (config) => runDataset(config, opts),
    async prepare(config0, data, cx) {
      const classesBefore = config0.model.numClasses;
      const config = withDataLabels(config0, data, cx.resumed);
      if (config.model.numClasses !== classesBefore) cx.say(`${config.model.numClasses} classes from the data set: ${config.data.labelNames?.join(', ')}`);
      const tokens = captionTokens(config, data);
      const schedule = makeSchedule(config.diffusion.schedule, config.diffusion.timesteps, config.diffusion);
      const tc = config.train;
      const latent = config.latent;
      let autoencoder: Weights | undefined;
      let latents: LatentData | undefined;
      if (latent !== undefined) {
        autoencoder = cx.parts?.autoencoder ?? opts.autoencoder;
        if (autoencoder === undefined) throw new DiffuseError('a latent model (config.latent) needs its autoencoder\'s weights: train({ autoencoder })');
        latents = await latentsFor(latent.autoencoder, autoencoder, data, join(cx.outDir, LATENT_CACHE_FILE), opts.backend, cx);
      } else if (opts.autoencoder !== undefined) {
        throw new DiffuseError('autoencoder weights were given for a model without config.latent');
      }
      const parts = autoencoder !== undefined ? { autoencoder } : undefined;
      const sampleGrid = opts.sampleGrid;
      const prompts = tokens !== undefined && data.captions !== undefined ? Array.from(evenlySpacedIndices(data.shape[0], 16), (i) => data.captions![i]![0]!) : undefined;
      const experts = config.experts;
      const expertShares = experts === undefined ? undefined : expertBatchSizes(experts.boundaries, tc.batchSize);
      return {
        config,
        createTrainer: () => createRunTrainer(config, { seed: tc.seed, workers: tc.workers === 2 ? 2 : 1, ...(opts.backend !== undefined ? { backend: opts.backend } : {}) }),
        batch(idx, rng) {
          // pixels, or the scaled latents of a latent model (a fresh posterior sample per image)
          const { x, shape } = latent !== undefined && latents !== undefined
            ? latentBatch(latents, idx, latent.posterior, latent.scalingFactor, rng)
            : gatherBatch(data, idx);
          const labels = data.labels === undefined ? undefined : Int32Array.from(idx, (i) => data.labels![i]!);
          const cond = batchCondition(config, { idx, labels }, tc.condDropout, rng, tokens);
          // experts: each gets its share of the batch with t in its own range (stratified); one network: t ~ U{0..T-1}
          const b = makeTrainingBatch(schedule, config.diffusion.prediction, x, shape, rng,
            experts !== undefined && expertShares !== undefined ? stratifiedTimesteps(experts.boundaries, expertShares, rng) : undefined);
          return { xt: b.xt, t: Float32Array.from(b.t), target: b.target, shape, ...(cond !== undefined ? { cond } : {}) };
        },
        batchImages: (b) => b.shape[0],
        ...(sampleGrid !== undefined ? {
          snapshot: (ema: Weights, _step: number, file: string) => sampleGrid(ema, config, file, {
            ...(autoencoder !== undefined ? { autoencoder } : {}), ...(prompts !== undefined ? { prompts } : {}),
          }),
        } : {}),
        ...(parts !== undefined ? { checkpoint: async () => ({ config, parts }) } : {}),
      };
    },
  };
}

/**
 * The posterior of every training image under the autoencoder: read from the
 * run folder's cache when these weights made it from this data, else encoded
 * (ONNX Runtime when it loads, else tfjs) and cached.
 */
async function latentsFor(config: AutoencoderConfig, weights: Weights, data: Dataset, file: string,
  backend: BackendName | undefined, cx: { say: (m: string) => void; progress: ProgressStream | null | undefined }): Promise<LatentData> {
  const fp = weightsFingerprint(weights);
  const cached = readLatentCache(file, fp, data, latentShape(config));
  if (cached !== undefined) return cached;
  const { createAutoencoderRunner } = await import('../latent/runner.js');
  const runner = await createAutoencoderRunner(config, weights, { parts: 'encoder', ...(backend !== undefined ? { backend } : {}) });
  try {
    const t0 = performance.now();
    const latents = await encodeDataset(runner, data, { ...(cx.progress !== undefined ? { progress: cx.progress } : {}) });
    cx.say(`encoded ${data.shape[0]} images to ${latents.shape.slice(1).join('x')} latents in ${((performance.now() - t0) / 1000).toFixed(1)} s on ${runner.engine}; cached in ${file}`);
    await writeLatentCache(file, latents, fp, data);
    return latents;
  } finally {
    await runner.dispose();
  }
}
