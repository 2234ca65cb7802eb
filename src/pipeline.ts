/**
 * A trained model, ready to generate: a checkpoint folder -> its config and a
 * `ModelFn` on the chosen engine. The samplers never see which engine runs.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiffuseError } from './errors.js';
import type { DiffuseConfig } from './config.js';
import type { ModelFn } from './diffusion/types.js';
import { checkpointDir, loadModelWeights } from './train/checkpoint.js';
import type { BackendName } from './engine/backend.js';
import { generate, type GenerateOptions, type GenerateResult } from './generate.js';
import type { SamplerName } from './samplers/factory.js';
import type { Weights } from './tensor.js';
import type { ScheduleOptions } from './schedule.js';
import { checkSamplingMemory } from './limits.js';
import type { DiffusersSampling } from './interop/diffusers-scheduler.js';
import type { DiffusersPipelineOptions } from './interop/diffusers-folder.js';

/** What runs the network: tfjs (any backend) or ONNX Runtime (exported on the fly, the fast path). */
export type EngineName = 'tfjs' | 'onnx';
export const ENGINE_NAMES: readonly EngineName[] = ['tfjs', 'onnx'];

export interface Pipeline {
  readonly config: DiffuseConfig;
  /** A diffusers folder's scheduler: its sampler and settings (absent for our checkpoints). */
  readonly sampling?: DiffusersSampling;
  readonly model: ModelFn;
  /** Which engine runs the network, in words (e.g. "tfjs-wasm"). */
  readonly engine: string;
  /** Training step of the weights. */
  readonly step: number;
  readonly checkpoint: string;
  dispose(): Promise<void>;
}

export interface PipelineOptions {
  /** 'ema' (default) or the raw 'model' weights. */
  readonly weights?: 'ema' | 'model';
  /** Default: onnx when onnxruntime-node loads, else tfjs. */
  readonly engine?: EngineName;
  /** ONNX Runtime threads (default 2). */
  readonly threads?: number;
  /** tfjs backend (default: tensorflow if installed, else wasm). */
  readonly backend?: BackendName;
  /** Images per network evaluation. */
  readonly batchSize?: number;
  /** diffusers folders: how to read the scheduler (its class, or another scheduler_config.json). */
  readonly diffusers?: DiffusersPipelineOptions;
}

/** What sampling needs from a folder: the config, one set of weights and where they came from. */
export interface SamplingModel {
  readonly config: DiffuseConfig;
  readonly params: Weights;
  readonly step: number;
  readonly checkpoint: string;
  readonly sampling?: DiffusersSampling;
}

/**
 * A checkpoint (or run) folder, or a diffusers pipeline / unet/ folder
 * (interop/diffusers-folder.ts, translated to our U-Net and schedule), as a
 * config and one set of weights. diffusers folders hold one set (`weights`
 * does not apply) and have no training step (0).
 */
export async function loadSamplingModel(dir: string, opts: Pick<PipelineOptions, 'weights' | 'diffusers'> = {}): Promise<SamplingModel> {
  const { findDiffusersFolder, loadDiffusersPipeline } = await import('./interop/diffusers-folder.js');
  const folder = existsSync(dir) ? findDiffusersFolder(dir) : undefined;
  if (folder !== undefined) {
    const d = loadDiffusersPipeline(folder, opts.diffusers ?? {});
    return { config: d.diffuse, params: d.params, step: 0, checkpoint: dir, sampling: d.sampling };
  }
  if (!existsSync(dir) && checkpointDir(dir) !== dir) throw new DiffuseError(`checkpoint ${dir}: no such folder`);
  const checkpoint = checkpointDir(dir);
  const { config, params, step } = await loadModelWeights(checkpoint, opts.weights ?? 'ema');
  return { config, params, step, checkpoint };
}

/** The model shipped with the package: models/mnist (relative to the package root). */
export function shippedModelDir(): string {
  // dist/src/pipeline.js -> package root
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'mnist');
}

/** Build a ModelFn for given weights on the tfjs engine. */
export async function tfjsModelFn(config: DiffuseConfig, params: Weights, opts: { backend?: BackendName; batchSize?: number } = {}): Promise<{ model: ModelFn; engine: string; dispose(): Promise<void> }> {
  const { initEngine } = await import('./engine/backend.js');
  const { loadUNetFromState, modelFnFromUNet } = await import('./model/runner.js');
  const engine = await initEngine(opts.backend !== undefined ? { backend: opts.backend } : {});
  const unet = loadUNetFromState(config.model, params);
  const fn = modelFnFromUNet(unet, engine.tf as unknown as Parameters<typeof modelFnFromUNet>[1], opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {});
  return { model: fn, engine: `tfjs-${engine.backend}`, dispose: async () => unet.dispose() };
}

async function ortAvailableLazy(): Promise<boolean> {
  const { ortAvailable } = await import('./onnx/runner.js');
  return ortAvailable();
}

/** Load a checkpoint for generation. */
export async function loadPipeline(dir: string, opts: PipelineOptions = {}): Promise<Pipeline> {
  const { config, params, step, checkpoint, sampling } = await loadSamplingModel(dir, opts);
  if (config.model.crossAttention !== undefined) {
    throw new DiffuseError(`${checkpoint}: a UNet2DConditionModel attends to encoder_hidden_states from a text encoder (e.g. CLIP), which diffuse-ts does not run; ` +
      'sample it through the library with your own hidden states (createOrtGraphSession, docs/diffusers.md)');
  }
  const engineName: EngineName = opts.engine ?? ((await ortAvailableLazy()) ? 'onnx' : 'tfjs');
  // before any engine allocates: refuse what cannot run here (limits.ts)
  const guided = config.model.numClasses > 0 || config.model.text !== undefined;
  const pool = engineName === 'tfjs' && opts.backend !== 'tensorflow' ? 'wasm' : 'native';
  checkSamplingMemory(config.model, opts.batchSize ?? 64, guided, pool, checkpoint);
  switch (engineName) {
    case 'tfjs': {
      const r = await tfjsModelFn(config, params as Weights, {
        ...(opts.backend !== undefined ? { backend: opts.backend } : {}),
        ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
      });
      return { config, step, checkpoint, ...(sampling !== undefined ? { sampling } : {}), ...r };
    }
    case 'onnx': {
      const { exportUNetToOnnx } = await import('./onnx/export-unet.js');
      const { createOrtModelFn, ortAvailable } = await import('./onnx/runner.js');
      if (!(await ortAvailable())) throw new DiffuseError("engine 'onnx' needs onnxruntime-node (npm install onnxruntime-node)");
      const bytes = exportUNetToOnnx(config.model, params as Weights);
      const fn = await createOrtModelFn(bytes, opts.threads !== undefined ? { threads: opts.threads } : {});
      return { config, step, checkpoint, ...(sampling !== undefined ? { sampling } : {}), model: fn, engine: 'onnxruntime-node', dispose: () => fn.dispose() };
    }
    default: {
      const never: never = engineName;
      throw new DiffuseError(`unknown engine '${String(never)}'`);
    }
  }
}

/** The usual number of steps per sampler: DDPM all T, DDIM and Euler 50, Heun 25 (49 network evaluations), DPM-Solver++ 20. */
export function defaultSteps(sampler: SamplerName, T: number): number {
  switch (sampler) {
    case 'ddpm': return T;
    case 'ddim': case 'euler': case 'euler-ancestral': return Math.min(50, T);
    case 'heun': return Math.min(25, T);
    case 'dpm-solver': return Math.min(20, T);
    default: {
      const never: never = sampler;
      throw new DiffuseError(`unknown sampler '${String(never)}'`);
    }
  }
}

/** What generation needs beyond the model's own config (schedule, prediction, size come from the checkpoint). */
export type SampleRequest = Omit<GenerateOptions, 'schedule' | 'timesteps' | 'prediction' | 'imageSize' | 'channels' | 'steps' | keyof ScheduleOptions> & { readonly steps?: number };

/** Generate from a loaded pipeline: its config fills in the schedule (name, T, β range, zero SNR), prediction type and image shape. */
export async function generateWith(pipe: Pick<Pipeline, 'config' | 'model'>, req: SampleRequest): Promise<GenerateResult> {
  const cfg = pipe.config;
  return generate(pipe.model, {
    ...req,
    ...cfg.diffusion,
    imageSize: cfg.data.imageSize,
    channels: cfg.data.channels,
    steps: req.steps ?? defaultSteps(req.sampler, cfg.diffusion.timesteps),
  });
}
