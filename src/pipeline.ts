/**
 * A trained model, ready to generate: a checkpoint folder -> its config and a
 * `ModelFn` on the chosen engine. The samplers never see which engine runs.
 * A latent model's pipeline also holds its decoder (and encoder) on the same
 * engine, and `generateWith` decodes: every consumer gets images in pixels.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiffuseError } from './errors.js';
import type { DiffuseConfig } from './config.js';
import type { ModelFn, Shape4 } from './diffusion/types.js';
import { checkpointDir, loadModelWeights } from './train/checkpoint.js';
import type { BackendName } from './engine/backend.js';
import { generate, type GenerateOptions, type GenerateResult, type LatentStage } from './generate.js';
import type { SamplerName } from './samplers/factory.js';
import type { Weights } from './tensor.js';
import type { ScheduleOptions } from './schedule.js';
import { checkSamplingMemory } from './limits.js';

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
  /** Default: onnx when onnxruntime-node loads, else tfjs. */
  readonly engine?: EngineName;
  /** ONNX Runtime threads (default 2). */
  readonly threads?: number;
  /** tfjs backend (default: tensorflow if installed, else wasm). */
  readonly backend?: BackendName;
  /** Images per network evaluation. */
  readonly batchSize?: number;
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
  const { latentShape } = await import('./model/autoencoder-config.js');
  const { scaledDecoder, scaledEncoder } = await import('./latent/space.js');
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
    latent: { shape: latentShape(latent.autoencoder), scalingFactor: latent.scalingFactor, decode: scaledDecoder(runner, latent), encode: scaledEncoder(runner, latent) },
    dispose: async () => { await net.dispose(); await runner.dispose(); },
  };
}

/** Load a checkpoint for generation. */
export async function loadPipeline(dir: string, opts: PipelineOptions = {}): Promise<Pipeline> {
  if (!existsSync(dir) && checkpointDir(dir) !== dir) throw new DiffuseError(`checkpoint ${dir}: no such folder`);
  const checkpoint = checkpointDir(dir);
  const { config, params, step, parts } = await loadModelWeights(checkpoint, opts.weights ?? 'ema');
  const engine: EngineName = opts.engine ?? ((await ortAvailableLazy()) ? 'onnx' : 'tfjs');
  // before any engine allocates: refuse what cannot run here (limits.ts)
  const guided = config.model.numClasses > 0 || config.model.text !== undefined;
  const pool = engine === 'tfjs' && opts.backend !== 'tensorflow' ? 'wasm' : 'native';
  checkSamplingMemory(config.model, opts.batchSize ?? 64, guided, pool, checkpoint);
  const p = await createPipeline(config, params, parts.autoencoder, { ...opts, engine });
  return { ...p, step, checkpoint };
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

/**
 * Generate from a loaded pipeline: its config fills in the schedule (name, T,
 * β range, zero SNR), prediction type and image shape. A latent model's
 * pipeline decodes (its `latent`): the images are pixels either way.
 */
export async function generateWith(pipe: Pick<Pipeline, 'config' | 'model' | 'latent'>, req: SampleRequest): Promise<GenerateResult> {
  const cfg = pipe.config;
  if (cfg.latent !== undefined && pipe.latent === undefined) throw new DiffuseError('a latent model generates latents: give generateWith its pipeline\'s decoder (loadPipeline or createPipeline has it)');
  return generate(pipe.model, {
    ...req,
    ...cfg.diffusion,
    imageSize: cfg.data.imageSize,
    channels: cfg.data.channels,
    steps: req.steps ?? defaultSteps(req.sampler, cfg.diffusion.timesteps),
    ...(cfg.latent !== undefined && pipe.latent !== undefined ? { latent: pipe.latent } : {}),
  });
}
