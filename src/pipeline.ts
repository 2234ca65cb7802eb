/**
 * A trained model, ready to generate: a checkpoint folder -> its config and a
 * `ModelFn` on the chosen engine. The samplers never see which engine runs.
 * A latent model's pipeline also holds its decoder (and encoder) on the same
 * engine, and `generateWith` decodes: every consumer gets images in pixels.
 */
import { availableParallelism } from 'node:os';
import { DiffuseError } from './errors.js';
import type { DiffuseConfig } from './config.js';
import type { ModelFn, Shape4 } from './diffusion/types.js';
import type { LatentStage } from './generate.js';
import { checkpointDir, loadModelWeights } from './train/checkpoint.js';
import type { BackendName } from './engine/backend.js';
import type { Weights } from './tensor.js';
import { checkSamplingMemory } from './limits.js';
import { resolveModelDir } from './shipped.js';

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
  /** Latent models: the latents' shape and the way between them and pixels (absent for pixel models). */
  readonly latent?: LatentPipeline;
  dispose(): Promise<void>;
}

/**
 * A latent model's autoencoder in a pipeline. The latents are in the
 * sampler's space (scaled by the scaling factor): `decode` takes what the
 * sampler makes (or its predicted x_0 at any step) to images in [-1, 1],
 * `encode` images to the scaled posterior means.
 */
export interface LatentPipeline extends LatentStage {
  readonly scalingFactor: number;
  encode(images: Float32Array, shape: Shape4): Promise<Float32Array>;
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

/**
 * Build a ModelFn for given weights on the tfjs engine. On the native engine
 * with several cores, each call's images are split between worker threads
 * (one oneDNN thread each: model/parallel-runner.ts).
 */
export async function tfjsModelFn(config: DiffuseConfig, params: Weights, opts: { backend?: BackendName; batchSize?: number } = {}): Promise<{ model: ModelFn; engine: string; dispose(): Promise<void> }> {
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

/** The checkpoint folder of a model given by shipped name or by path (a run folder's checkpoint/ inside it). */
export function modelCheckpointDir(model: string): string {
  // a folder left mid-swap by a crash resolves to itself (checkpoint.ts recovers it)
  return checkpointDir(checkpointDir(model) === model ? model : resolveModelDir(model));
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

/** A model ready to generate: the network on an engine (and a latent model's autoencoder beside it). */
export type ModelPipeline = Pick<Pipeline, 'config' | 'model' | 'engine' | 'latent' | 'dispose'>;

/**
 * The pipeline of given weights (a checkpoint's, or a training run's EMA
 * weights): the U-Net on the engine and, for a latent model
 * (config.latent), its autoencoder's decoder and encoder on the same engine.
 */
export async function createPipeline(config: DiffuseConfig, params: Weights, autoencoder: Weights | undefined, opts: PipelineOptions & { engine: EngineName }): Promise<ModelPipeline> {
  if ((config.latent !== undefined) !== (autoencoder !== undefined)) {
    throw new DiffuseError(config.latent !== undefined ? 'a latent model needs its autoencoder\'s weights' : 'autoencoder weights given for a model that is not latent');
  }
  let net: { model: ModelFn; engine: string; dispose(): Promise<void> };
  switch (opts.engine) {
    case 'tfjs':
      net = await tfjsModelFn(config, params, {
        ...(opts.backend !== undefined ? { backend: opts.backend } : {}),
        ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
      });
      break;
    case 'onnx': {
      const { exportUNetToOnnx } = await import('./onnx/export-unet.js');
      const { createOrtModelFn, ortAvailable } = await import('./onnx/runner.js');
      if (!(await ortAvailable())) throw new DiffuseError("engine 'onnx' needs onnxruntime-node (npm install onnxruntime-node)");
      const fn = await createOrtModelFn(exportUNetToOnnx(config.model, params), opts.threads !== undefined ? { threads: opts.threads } : {});
      net = { model: fn, engine: 'onnxruntime-node', dispose: () => fn.dispose() };
      break;
    }
    default: {
      const never: never = opts.engine;
      throw new DiffuseError(`unknown engine '${String(never)}'`);
    }
  }
  if (config.latent === undefined || autoencoder === undefined) return { config, ...net };
  const latent = config.latent;
  const { createAutoencoderRunner } = await import('./latent/runner.js');
  const { latentStage, scaledEncoder } = await import('./latent/scaled.js');
  let runner: Awaited<ReturnType<typeof createAutoencoderRunner>>;
  try {
    runner = await createAutoencoderRunner(latent.autoencoder, autoencoder, {
      engine: opts.engine,
      ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
      ...(opts.backend !== undefined ? { backend: opts.backend } : {}),
      ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
    });
  } catch (e) {
    await net.dispose();
    throw e;
  }
  return {
    config,
    model: net.model,
    engine: net.engine,
    latent: { ...latentStage(latent, runner), encode: scaledEncoder(runner, latent) },
    dispose: async () => { await net.dispose(); await runner.dispose(); },
  };
}

/**
 * Load a model for generation: a shipped model by name ('mnist',
 * 'fashion-mnist-text'; shippedModels() lists them) or a checkpoint or run
 * folder by path (a path that exists wins over a shipped name).
 */
export async function loadPipeline(model: string, opts: PipelineOptions = {}): Promise<Pipeline> {
  const checkpoint = modelCheckpointDir(model);
  const { config, params, step, parts } = await loadModelWeights(checkpoint, opts.weights ?? 'ema');
  const nativeDefault = (opts.batchSize ?? NATIVE_MIN_BATCH) >= NATIVE_MIN_BATCH && (await nativeAvailableLazy());
  const engineName: EngineName = opts.engine ?? (nativeDefault ? 'tfjs' : (await ortAvailableLazy()) ? 'onnx' : 'tfjs');
  // before any engine allocates: refuse what cannot run here (limits.ts)
  const guided = config.model.numClasses > 0 || config.model.text !== undefined;
  const pool = engineName === 'tfjs' && opts.backend !== 'tensorflow' ? 'wasm' : 'native';
  checkSamplingMemory(config.model, opts.batchSize ?? 64, guided, pool, checkpoint);
  const p = await createPipeline(config, params, parts.autoencoder, { ...opts, engine: engineName });
  return { ...p, step, checkpoint };
}

// Engine-free parts of the pipeline, where they live (re-exported for existing importers).
export { generateWith, type SampleRequest } from './generate.js';
export { defaultSteps } from './samplers/factory.js';
