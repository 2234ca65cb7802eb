/**
 * A trained model, ready to generate: a checkpoint folder -> its config and a
 * `ModelFn` on the chosen engine. The samplers never see which engine runs.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiffuseError } from './errors.js';
import type { DiffuseConfig } from './config.js';
import type { ModelFn } from './diffusion/types.js';
import { loadModelWeights } from './train/checkpoint.js';
import type { NamedArrays } from './train/trainer.js';
import type { BackendName } from './engine/backend.js';
import { generate, type GenerateOptions, type GenerateResult } from './generate.js';
import type { SamplerName } from './samplers/factory.js';

/** What runs the network: tfjs (any backend) or ONNX Runtime (exported on the fly, the fast path). */
export type EngineName = 'tfjs' | 'onnx';
export const ENGINE_NAMES: readonly EngineName[] = ['tfjs', 'onnx'];

export interface Pipeline {
  readonly config: DiffuseConfig;
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
  /**
   * Default: tfjs on the native engine when its addon loads and batches are
   * large (batchSize >= NATIVE_MIN_BATCH, or unset), else onnx when
   * onnxruntime-node loads, else tfjs.
   */
  readonly engine?: EngineName;
  /** ONNX Runtime threads (default 2). */
  readonly threads?: number;
  /** tfjs backend (default: native if its addon loads, else tensorflow if installed, else wasm). */
  readonly backend?: BackendName;
  /** Images per network evaluation. */
  readonly batchSize?: number;
}

/** The model shipped with the package: models/mnist (relative to the package root). */
export function shippedModelDir(): string {
  // dist/src/pipeline.js -> package root
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'mnist');
}

/** A run folder (holding checkpoint/) or a checkpoint folder (holding config.json). */
export function resolveCheckpoint(dir: string): string {
  if (existsSync(join(dir, 'config.json'))) return dir;
  if (existsSync(join(dir, 'checkpoint', 'config.json'))) return join(dir, 'checkpoint');
  if (!existsSync(dir)) throw new DiffuseError(`checkpoint ${dir}: no such folder`);
  return dir; // loadModelWeights names what is missing (and recovers an interrupted save)
}

/**
 * Build a ModelFn for given weights on the tfjs engine. On the native engine
 * with several cores, each call's images are split between worker threads
 * (one oneDNN thread each: model/parallel-runner.ts).
 */
export async function tfjsModelFn(config: DiffuseConfig, params: NamedArrays, opts: { backend?: BackendName; batchSize?: number } = {}): Promise<{ model: ModelFn; engine: string; dispose(): Promise<void> }> {
  const { initEngine } = await import('./engine/backend.js');
  const { loadUNetFromState, modelFnFromUNet } = await import('./model/runner.js');
  const engine = await initEngine(opts.backend !== undefined ? { backend: opts.backend } : {});
  if (engine.backend === 'native' && availableParallelism() >= 2) {
    const { createParallelModelFn } = await import('./model/parallel-runner.js');
    const par = await createParallelModelFn(config.model, params, { backend: 'native', ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}) });
    return { model: par.model, engine: `tfjs-native (oneDNN, ${par.workers} workers)`, dispose: par.dispose };
  }
  const unet = loadUNetFromState(config.model, params);
  const fn = modelFnFromUNet(unet, engine.tf as unknown as Parameters<typeof modelFnFromUNet>[1], opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {});
  return { model: fn, engine: `tfjs-${engine.backend}`, dispose: async () => unet.dispose() };
}

/**
 * Smallest batch the native engine is the default for. bench/nfe.ts on the
 * shipped model, best of interleaved rounds: at batch 64 native (2 workers)
 * and ONNX Runtime tie (2.20 and 2.21 ms/image), and in runs with other jobs
 * on the cores native was 1.6-1.8x faster; at batch 16 and 1 ONNX Runtime is
 * faster (2.14 against 2.84, 2.9 against 8.7 ms/image).
 */
export const NATIVE_MIN_BATCH = 32;

async function nativeAvailableLazy(): Promise<boolean> {
  const { loadNative } = await import('./engine/native.js');
  return loadNative().ok;
}

async function ortAvailableLazy(): Promise<boolean> {
  const { ortAvailable } = await import('./onnx/runner.js');
  return ortAvailable();
}

/** Load a checkpoint for generation. */
export async function loadPipeline(dir: string, opts: PipelineOptions = {}): Promise<Pipeline> {
  const checkpoint = resolveCheckpoint(dir);
  const { config, params, step } = await loadModelWeights(checkpoint, opts.weights ?? 'ema');
  const nativeDefault = (opts.batchSize ?? NATIVE_MIN_BATCH) >= NATIVE_MIN_BATCH && (await nativeAvailableLazy());
  const engineName: EngineName = opts.engine ?? (nativeDefault ? 'tfjs' : (await ortAvailableLazy()) ? 'onnx' : 'tfjs');
  switch (engineName) {
    case 'tfjs': {
      const r = await tfjsModelFn(config, params as NamedArrays, {
        ...(opts.backend !== undefined ? { backend: opts.backend } : {}),
        ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
      });
      return { config, step, checkpoint, ...r };
    }
    case 'onnx': {
      const { exportUNetToOnnx } = await import('./onnx/export-unet.js');
      const { createOrtModelFn, ortAvailable } = await import('./onnx/runner.js');
      if (!(await ortAvailable())) throw new DiffuseError("engine 'onnx' needs onnxruntime-node (npm install onnxruntime-node)");
      const bytes = exportUNetToOnnx(config.model, params as NamedArrays);
      const fn = await createOrtModelFn(bytes, opts.threads !== undefined ? { threads: opts.threads } : {});
      return { config, step, checkpoint, model: fn, engine: 'onnxruntime-node', dispose: () => fn.dispose() };
    }
    default: {
      const never: never = engineName;
      throw new DiffuseError(`unknown engine '${String(never)}'`);
    }
  }
}

/** The usual number of network evaluations per sampler: DDPM all T, DDIM 50, DPM-Solver++ 20. */
export function defaultSteps(sampler: SamplerName, T: number): number {
  switch (sampler) {
    case 'ddpm': return T;
    case 'ddim': return Math.min(50, T);
    case 'dpm-solver': return Math.min(20, T);
    default: {
      const never: never = sampler;
      throw new DiffuseError(`unknown sampler '${String(never)}'`);
    }
  }
}

/** What generation needs beyond the model's own config (schedule, prediction, size come from the checkpoint). */
export type SampleRequest = Omit<GenerateOptions, 'schedule' | 'timesteps' | 'prediction' | 'imageSize' | 'channels' | 'steps'> & { readonly steps?: number };

/** Generate from a loaded pipeline: its config fills in schedule, prediction type and image shape. */
export async function generateWith(pipe: Pick<Pipeline, 'config' | 'model'>, req: SampleRequest): Promise<GenerateResult> {
  const cfg = pipe.config;
  return generate(pipe.model, {
    ...req,
    schedule: cfg.diffusion.schedule,
    timesteps: cfg.diffusion.timesteps,
    prediction: cfg.diffusion.prediction,
    imageSize: cfg.data.imageSize,
    channels: cfg.data.channels,
    steps: req.steps ?? defaultSteps(req.sampler, cfg.diffusion.timesteps),
  });
}
