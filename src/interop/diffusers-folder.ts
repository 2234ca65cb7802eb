/**
 * diffusers' folders on disk, read and written:
 *
 *   <pipeline>/model_index.json                         {"_class_name": "DDPMPipeline", "unet": [...], "scheduler": [...]}
 *   <pipeline>/scheduler/scheduler_config.json
 *   <pipeline>/unet/config.json                         UNet2DModel / UNet2DConditionModel
 *   <pipeline>/unet/diffusion_pytorch_model.safetensors
 *
 * Reading gives what a checkpoint gives (a DiffuseConfig and weights under our
 * names) plus the scheduler's sampler settings; a bare unet/ folder takes the
 * scheduler config beside it (../scheduler/) or one given explicitly. Writing
 * makes such a folder from one of our checkpoints (a DDPMPipeline with a
 * DDPMScheduler holding our training schedule). The translations themselves
 * are interop/diffusers-unet.ts (network) and interop/diffusers-scheduler.ts
 * (schedule and sampler).
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { defaultConfig, type DiffuseConfig } from '../config.js';
import { DiffuseError } from '../errors.js';
import { readRegularFileSync } from '../io/files.js';
import { encodeSafetensors, readSafetensors } from '../io/safetensors.js';
import { writeFileSynced } from '../io/atomic.js';
import { fsyncDir, replaceFolder } from '../io/folder-swap.js';
import { betaRange } from '../schedule.js';
import type { SamplerName } from '../samplers/factory.js';
import type { Weights } from '../tensor.js';
import { BETA_SCHEDULES, type DiffusersSampling, parseDiffusersJson, PREDICTIONS, samplerFromDiffusersConfig } from './diffusers-scheduler.js';
import { DIFFUSERS_VERSION, type DiffusersUNetClass, diffusersConfigFromUNet, unetConfigFromDiffusers, weightsFromDiffusers, weightsToDiffusers } from './diffusers-unet.js';

export const MODEL_INDEX = 'model_index.json';
export const UNET_WEIGHTS = 'diffusion_pytorch_model.safetensors';
const SCHEDULER_CONFIG = join('scheduler', 'scheduler_config.json');
/** Pipeline components this import reads; any other (an autoencoder, a text encoder) means images are not what the U-Net makes. */
const READ_COMPONENTS = ['unet', 'scheduler'];
/** Largest config file read. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** Where a diffusers model's parts are. */
export interface DiffusersFolder {
  /** The folder given. */
  readonly dir: string;
  /** A pipeline folder (model_index.json) or a bare unet/ folder. */
  readonly layout: 'pipeline' | 'unet';
  readonly unetDir: string;
  /** The scheduler_config.json found beside the U-Net, if any. */
  readonly schedulerFile: string | undefined;
}

function readJsonFile(file: string, what: string): unknown {
  return parseDiffusersJson(readRegularFileSync(file, what, MAX_CONFIG_BYTES).toString('utf8'), file);
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The _class_name of a JSON file, if it has one. */
function className(file: string): unknown {
  const v = readJsonFile(file, 'diffusers config');
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>)['_class_name'] : undefined;
}

/** model_index.json's components must be ones this import reads (a latent or text pipeline's images are not its U-Net's output). */
function checkModelIndex(file: string): void {
  const v = readJsonFile(file, 'model_index.json');
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DiffuseError(`${file}: must be a JSON object`);
  const o = v as Record<string, unknown>;
  for (const [k, spec] of Object.entries(o)) {
    if (k.startsWith('_') || !Array.isArray(spec) || spec[0] === null) continue;
    if (!READ_COMPONENTS.includes(k)) {
      throw new DiffuseError(`${file}: the pipeline ${String(o['_class_name'])} has a '${k}' (${String(spec[1])}); only U-Net + scheduler pipelines (DDPMPipeline, DDIMPipeline) are read: its images are not the U-Net's output`);
    }
  }
  if (!Array.isArray(o['unet'])) throw new DiffuseError(`${file}: the pipeline has no 'unet' component`);
}

/**
 * The diffusers folder at `dir` (a pipeline folder with model_index.json, a
 * folder holding unet/ and scheduler/, or a unet/ folder whose config.json
 * names a diffusers class), or undefined when `dir` is not one (e.g. one of
 * our checkpoints).
 */
export function findDiffusersFolder(dir: string): DiffusersFolder | undefined {
  const index = join(dir, MODEL_INDEX);
  if (existsSync(index)) {
    checkModelIndex(index);
    const scheduler = join(dir, SCHEDULER_CONFIG);
    return { dir, layout: 'pipeline', unetDir: join(dir, 'unet'), schedulerFile: existsSync(scheduler) ? scheduler : undefined };
  }
  // unet/ and scheduler/ without a model_index.json (what an export of a UNet2DConditionModel writes)
  const inner = join(dir, 'unet', 'config.json');
  if (existsSync(inner) && typeof className(inner) === 'string') {
    const scheduler = join(dir, SCHEDULER_CONFIG);
    return { dir, layout: 'pipeline', unetDir: join(dir, 'unet'), schedulerFile: existsSync(scheduler) ? scheduler : undefined };
  }
  const config = join(dir, 'config.json');
  if (!existsSync(config) || typeof className(config) !== 'string') return undefined;
  const parent = dirname(resolve(dir));
  if (existsSync(join(parent, MODEL_INDEX))) checkModelIndex(join(parent, MODEL_INDEX));
  const beside = join(parent, SCHEDULER_CONFIG);
  return { dir, layout: 'unet', unetDir: dir, schedulerFile: existsSync(beside) ? beside : undefined };
}

export interface LoadedDiffusersUNet {
  readonly config: DiffuseConfig['model'];
  readonly className: DiffusersUNetClass;
  /** The images' channels (in_channels: 1 or 3). */
  readonly channels: 1 | 3;
  /** Our parameters, by our names. */
  readonly params: Weights;
}

/** A diffusers unet/ folder's config and weights, translated (DiffuseError for anything it cannot reproduce). */
export function loadDiffusersUNet(unetDir: string, opts: { contextLength?: number } = {}): LoadedDiffusersUNet {
  if (!isDir(unetDir)) throw new DiffuseError(`${unetDir}: no such folder (a diffusers pipeline keeps its U-Net in unet/)`);
  const cfgFile = join(unetDir, 'config.json');
  if (!existsSync(cfgFile)) throw new DiffuseError(`${unetDir}: missing config.json (not a diffusers model folder)`);
  const { config, className, channels } = unetConfigFromDiffusers(readJsonFile(cfgFile, 'U-Net config'), {
    source: cfgFile, ...(opts.contextLength !== undefined ? { contextLength: opts.contextLength } : {}),
  });
  let file = join(unetDir, UNET_WEIGHTS);
  if (!existsSync(file)) {
    const variant = join(unetDir, 'diffusion_pytorch_model.fp16.safetensors');
    if (existsSync(variant)) file = variant;
    else if (existsSync(join(unetDir, `${UNET_WEIGHTS}.index.json`))) throw new DiffuseError(`${unetDir}: the weights are sharded (${UNET_WEIGHTS}.index.json); only a single safetensors file is read`);
    else if (existsSync(join(unetDir, 'diffusion_pytorch_model.bin'))) {
      throw new DiffuseError(`${unetDir}: only diffusion_pytorch_model.bin (a PyTorch pickle) is there; diffuse-ts reads safetensors: in Python, UNet2DModel.from_pretrained(dir).save_pretrained(dir) writes one`);
    } else throw new DiffuseError(`${unetDir}: missing ${UNET_WEIGHTS}`);
  }
  const st = readSafetensors(file);
  const tensors: Weights = {};
  for (const [k, t] of Object.entries(st.tensors)) {
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16' && t.dtype !== 'F64') throw new DiffuseError(`${file}: tensor "${k}" is stored as ${t.dtype}; weights must be floating point`);
    tensors[k] = { shape: t.shape, data: t.data };
  }
  return { config, className, channels, params: weightsFromDiffusers(config, tensors, file) };
}

export interface DiffusersPipelineOptions {
  /** Read the scheduler config as this sampler's diffusers class (diffusers' from_config); default its own _class_name. */
  readonly sampler?: SamplerName;
  /** A scheduler_config.json to use instead of the folder's. */
  readonly schedulerConfig?: string;
  /** UNet2DConditionModel: length of the context sequence (default 77). */
  readonly contextLength?: number;
}

export interface LoadedDiffusersPipeline extends LoadedDiffusersUNet {
  /** What a checkpoint's config.json would say: the U-Net, the scheduler's schedule and prediction, the image shape. */
  readonly diffuse: DiffuseConfig;
  /** The scheduler's sampler and its settings (generate() options). */
  readonly sampling: DiffusersSampling;
  readonly folder: DiffusersFolder;
}

/** A diffusers pipeline (or unet/ folder with a scheduler config) ready to sample: config, weights and sampler settings. */
export function loadDiffusersPipeline(folder: DiffusersFolder, opts: DiffusersPipelineOptions = {}): LoadedDiffusersPipeline {
  const schedulerFile = opts.schedulerConfig ?? folder.schedulerFile;
  if (schedulerFile === undefined) {
    throw new DiffuseError(`${folder.dir}: no scheduler config (looked for ${folder.layout === 'pipeline' ? join(folder.dir, SCHEDULER_CONFIG) : join(dirname(resolve(folder.dir)), SCHEDULER_CONFIG)}); ` +
      'the noise schedule is not in unet/: point --checkpoint at the pipeline folder, or give --scheduler-config FILE');
  }
  if (!existsSync(schedulerFile)) throw new DiffuseError(`${schedulerFile}: no such scheduler config`);
  const sampling = samplerFromDiffusersConfig(readJsonFile(schedulerFile, 'scheduler config'), {
    source: schedulerFile, ...(opts.sampler !== undefined ? { sampler: opts.sampler } : {}),
  });
  const unet = loadDiffusersUNet(folder.unetDir, opts);
  const m = unet.config;
  if (m.outChannels !== m.inChannels) {
    throw new DiffuseError(`${join(folder.unetDir, 'config.json')}: out_channels ${m.outChannels} ≠ in_channels ${m.inChannels}: a U-Net that also predicts its variance is not supported`);
  }
  const diffuse = defaultConfig({
    model: m,
    diffusion: {
      schedule: sampling.schedule, timesteps: sampling.timesteps, prediction: sampling.prediction,
      ...(sampling.betaStart !== undefined ? { betaStart: sampling.betaStart } : {}),
      ...(sampling.betaEnd !== undefined ? { betaEnd: sampling.betaEnd } : {}),
      ...(sampling.zeroTerminalSnr === true ? { zeroTerminalSnr: true } : {}),
    },
    data: { dataset: `diffusers:${folder.dir}`, imageSize: m.imageSize, channels: unet.channels },
  });
  return { ...unet, diffuse, sampling, folder };
}

// ---------------------------------------------------------------- export

/** Our training schedule as a DDPMScheduler config (every field, as diffusers' save_config writes it). */
export function diffusersSchedulerConfig(d: DiffuseConfig['diffusion']): Record<string, unknown> {
  const schedule = Object.keys(BETA_SCHEDULES).find((k) => BETA_SCHEDULES[k] === d.schedule);
  const prediction = Object.keys(PREDICTIONS).find((k) => PREDICTIONS[k] === d.prediction);
  if (schedule === undefined) throw new DiffuseError(`schedule '${d.schedule}' has no diffusers beta_schedule`);
  if (prediction === undefined) throw new DiffuseError(`prediction type '${d.prediction}' has no diffusers prediction_type (epsilon, sample, v_prediction): such a model cannot be sampled by diffusers' schedulers`);
  const [b0, b1] = d.schedule === 'cosine' ? [0.0001, 0.02] : betaRange(d.timesteps, d.betaStart, d.betaEnd);
  return {
    _class_name: 'DDPMScheduler', _diffusers_version: DIFFUSERS_VERSION,
    beta_end: b1, beta_schedule: schedule, beta_start: b0, clip_sample: true, clip_sample_range: 1.0, dynamic_thresholding_ratio: 0.995,
    num_train_timesteps: d.timesteps, prediction_type: prediction, rescale_betas_zero_snr: d.zeroTerminalSnr === true, sample_max_value: 1.0,
    steps_offset: 0, thresholding: false, timestep_spacing: 'leading', trained_betas: null, variance_type: 'fixed_small',
  };
}

/** JSON as diffusers writes it: keys sorted, two-space indent, newline. */
function diffusersJson(v: Record<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])), null, 2) + '\n';
}

/** The files of a diffusers folder for one of our checkpoints: path (relative) -> contents. */
export function diffusersPipelineFiles(config: DiffuseConfig, params: Weights): Record<string, string | Uint8Array> {
  if (config.latent !== undefined) {
    throw new DiffuseError('a latent diffusion model has no diffusers pipeline here: DDPMPipeline samples pixels and our autoencoder is not diffusers\' AutoencoderKL (export its U-Net and decoder as ONNX: --part unet, --part decoder)');
  }
  if (config.experts !== undefined) {
    throw new DiffuseError(`a checkpoint of ${config.experts.count} expert networks has no diffusers pipeline (a DDPMPipeline holds one UNet2DModel for every timestep): export it as ONNX, one file per expert`);
  }
  const { className, config: unet } = diffusersConfigFromUNet(config.model);
  const scheduler = diffusersSchedulerConfig(config.diffusion);
  const files: Record<string, string | Uint8Array> = {
    [join('unet', 'config.json')]: diffusersJson({ _class_name: className, _diffusers_version: DIFFUSERS_VERSION, ...unet }),
    [join('unet', UNET_WEIGHTS)]: encodeSafetensors(weightsToDiffusers(config.model, params), { format: 'pt' }),
    [SCHEDULER_CONFIG]: diffusersJson(scheduler),
  };
  // a UNet2DConditionModel needs a text encoder to make a pipeline: its folder holds the U-Net and the scheduler only
  if (className === 'UNet2DModel') {
    files[MODEL_INDEX] = diffusersJson({ _class_name: 'DDPMPipeline', _diffusers_version: DIFFUSERS_VERSION, scheduler: ['diffusers', 'DDPMScheduler'], unet: ['diffusers', className] });
  }
  return files;
}

/** The entries a diffusers export owns in its folder (replaced by a new export; anything else there is kept). */
export const EXPORT_ENTRIES = [MODEL_INDEX, 'unet', 'scheduler'] as const;

/**
 * Write `files` (diffusersPipelineFiles) as the folder `dir`, atomically: a
 * folder that already holds an export is replaced only with `overwrite`.
 */
export async function saveDiffusersPipeline(dir: string, files: Record<string, string | Uint8Array>, opts: { overwrite?: boolean } = {}): Promise<void> {
  if (existsSync(dir)) {
    if (!isDir(dir)) throw new DiffuseError(`--out '${dir}' exists and is not a folder`);
    const held = EXPORT_ENTRIES.filter((e) => existsSync(join(dir, e)));
    if (held.length > 0 && opts.overwrite !== true) {
      throw new DiffuseError(`--out '${dir}' already holds ${held.join(', ')}: give --overwrite to replace them (the folder's other files are kept)`);
    }
  }
  await replaceFolder(dir, EXPORT_ENTRIES, (tmp) => {
    for (const [rel, data] of Object.entries(files)) {
      mkdirSync(dirname(join(tmp, rel)), { recursive: true });
      writeFileSynced(join(tmp, rel), data);
    }
    for (const sub of new Set(Object.keys(files).map((r) => dirname(r)).filter((d) => d !== '.'))) fsyncDir(join(tmp, sub));
    fsyncDir(tmp);
  }, `export ${basename(dir)}`);
}
