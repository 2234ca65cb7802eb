/**
 * A trained model, ready to generate: a checkpoint folder (or a diffusers
 * pipeline or unet/ folder, translated) -> its config and a
 * `ModelFn` on the chosen engine. The samplers never see which engine runs.
 * A latent model's pipeline also holds its decoder (and encoder) on the same
 * engine, and `generateWith` decodes: every consumer gets images in pixels.
 * A checkpoint of expert networks (config.experts) loads one network per
 * expert behind one ModelFn that hands each call to the expert owning its t
 * (diffusion/experts.ts): on ONNX Runtime one session each, on the native
 * engine's workers all of them in each worker.
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
import { expertWeights, routeByTimestep } from './diffusion/experts.js';
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
  /** diffusers folders: how to read the scheduler (its class, or another scheduler_config.json). */
  readonly diffusers?: DiffusersPipelineOptions;
}

interface LoadedNetwork { model: ModelFn; dispose(): Promise<void> }

/** The config's one network, or its experts routed by t (routeByTimestep), as one ModelFn. */
function routed(config: DiffuseConfig, models: readonly ModelFn[]): ModelFn {
  const ex = config.experts;
  return ex === undefined ? models[0]! : routeByTimestep(models, ex.boundaries);
}

/**
 * One ModelFn over the config's network(s): `load` once per expert (or for
 * the one shared network), routed by t. Each loaded one is disposed if a later one fails.
 */
async function networksModelFn(config: DiffuseConfig, load: (k: number) => Promise<LoadedNetwork>): Promise<LoadedNetwork> {
  const loaded: LoadedNetwork[] = [];
  try {
    for (let k = 0; k < (config.experts?.count ?? 1); k++) loaded.push(await load(k));
  } catch (err) {
    await Promise.all(loaded.map((l) => l.dispose()));
    throw err;
  }
  return {
    model: routed(config, loaded.map((l) => l.model)),
    dispose: async () => { await Promise.all(loaded.map((l) => l.dispose())); },
  };
}

/**
 * Build a ModelFn for given weights (of the config's network, or of its
 * experts) on the tfjs engine. On the native engine with several cores, each
 * call's images are split between worker threads (one oneDNN thread each:
 * model/parallel-runner.ts), every worker holding every expert.
 */
export async function tfjsModelFn(config: DiffuseConfig, params: Weights, opts: { backend?: BackendName; batchSize?: number } = {}): Promise<{ model: ModelFn; engine: string; dispose(): Promise<void> }> {
  const { initEngine } = await import('./engine/backend.js');
  const { loadUNetFromState, modelFnFromUNet } = await import('./model/runner.js');
  const engine = await initEngine(opts.backend !== undefined ? { backend: opts.backend } : {});
  const nets = expertWeights(config.experts?.count ?? 1, params);
  if (engine.backend === 'native' && availableParallelism() >= 2) {
    const { createParallelModelFns } = await import('./model/parallel-runner.js');
    const par = await createParallelModelFns(config.model, nets, { backend: 'native', ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}) });
    return { model: routed(config, par.models), engine: `tfjs-native (oneDNN, ${par.workers} workers)`, dispose: par.dispose };
  }
  const r = await networksModelFn(config, async (k) => {
    const unet = loadUNetFromState(config.model, nets[k]!);
    const fn = modelFnFromUNet(unet, engine.tf as unknown as Parameters<typeof modelFnFromUNet>[1], opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {});
    return { model: fn, dispose: async () => unet.dispose() };
  });
  return { ...r, engine: `tfjs-${engine.backend}` };
}

/** Build a ModelFn for given weights (of the config's network, or of its experts) on ONNX Runtime: one session per network. */
export async function onnxModelFn(config: DiffuseConfig, params: Weights, opts: { threads?: number; weights?: 'ema' | 'model'; step?: number } = {}): Promise<{ model: ModelFn; engine: string; dispose(): Promise<void> }> {
  const { exportCheckpointToOnnx } = await import('./onnx/export-unet.js');
  const { createOrtModelFn, ortAvailable } = await import('./onnx/runner.js');
  if (!(await ortAvailable())) throw new DiffuseError("engine 'onnx' needs onnxruntime-node (npm install onnxruntime-node)");
  const files = exportCheckpointToOnnx(config, params, { weights: opts.weights ?? 'ema', step: opts.step ?? 0 });
  const r = await networksModelFn(config, async (k) => {
    const fn = await createOrtModelFn(files[k]!, opts.threads !== undefined ? { threads: opts.threads } : {});
    return { model: fn, dispose: () => fn.dispose() };
  });
  return { ...r, engine: 'onnxruntime-node' };
}

/** The checkpoint folder of a model given by shipped name or by path (a run folder's checkpoint/ inside it). */
export function modelCheckpointDir(model: string): string {
  // a folder left mid-swap by a crash resolves to itself (checkpoint.ts recovers it)
  return checkpointDir(checkpointDir(model) === model ? model : resolveModelDir(model));
}

/** What sampling needs from a folder: the config, one set of weights (EMA or raw; a checkpoint of experts: every expert's), a latent model's autoencoder, and where they came from. */
export interface SamplingModel {
  readonly config: DiffuseConfig;
  readonly params: Weights;
  /** A latent model's autoencoder weights (absent for other models). */
  readonly autoencoder?: Weights;
  readonly step: number;
  readonly checkpoint: string;
  readonly sampling?: DiffusersSampling;
}

/**
 * A shipped model by name, a checkpoint (or run) folder, or a diffusers
 * pipeline / unet/ folder (interop/diffusers-folder.ts, translated to our
 * U-Net and schedule), as a config and one set of weights. diffusers folders
 * hold one set (`weights` does not apply) and have no training step (0).
 */
export async function loadSamplingModel(model: string, opts: Pick<PipelineOptions, 'weights' | 'diffusers'> = {}): Promise<SamplingModel> {
  const { findDiffusersFolder, loadDiffusersPipeline } = await import('./interop/diffusers-folder.js');
  const folder = findDiffusersFolder(model);
  if (folder !== undefined) {
    const d = loadDiffusersPipeline(folder, opts.diffusers ?? {});
    return { config: d.diffuse, params: d.params, step: 0, checkpoint: model, sampling: d.sampling };
  }
  const checkpoint = modelCheckpointDir(model);
  const { config, params, step, parts } = await loadModelWeights(checkpoint, opts.weights ?? 'ema');
  return { config, params, step, checkpoint, ...(parts.autoencoder !== undefined ? { autoencoder: parts.autoencoder } : {}) };
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
    case 'onnx':
      net = await onnxModelFn(config, params, { ...(opts.threads !== undefined ? { threads: opts.threads } : {}), ...(opts.weights !== undefined ? { weights: opts.weights } : {}) });
      break;
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
 * 'fashion-mnist-text'; shippedModels() lists them), a checkpoint or run
 * folder by path (a path that exists wins over a shipped name), or a
 * diffusers pipeline or unet/ folder (docs/diffusers.md).
 */
export async function loadPipeline(model: string, opts: PipelineOptions = {}): Promise<Pipeline> {
  const { config, params, autoencoder, step, checkpoint, sampling } = await loadSamplingModel(model, opts);
  if (config.model.crossAttention !== undefined) {
    throw new DiffuseError(`${checkpoint}: a UNet2DConditionModel attends to encoder_hidden_states from a text encoder (e.g. CLIP), which diffuse-ts does not run; ` +
      'sample it through the library with your own hidden states (createOrtGraphSession, docs/diffusers.md)');
  }
  const nativeDefault = (opts.batchSize ?? NATIVE_MIN_BATCH) >= NATIVE_MIN_BATCH && (await nativeAvailableLazy());
  const engineName: EngineName = opts.engine ?? (nativeDefault ? 'tfjs' : (await ortAvailableLazy()) ? 'onnx' : 'tfjs');
  // before any engine allocates: refuse what cannot run here (limits.ts)
  const guided = config.model.numClasses > 0 || config.model.text !== undefined;
  const pool = engineName === 'tfjs' && opts.backend !== 'tensorflow' ? 'wasm' : 'native';
  // every expert's network is loaded at once, but they run one at a time: the activations of one pass are what is checked
  checkSamplingMemory(config.model, opts.batchSize ?? 64, guided, pool, checkpoint);
  const p = await createPipeline(config, params, autoencoder, { ...opts, engine: engineName });
  return { ...p, step, checkpoint, ...(sampling !== undefined ? { sampling } : {}) };
}

// Engine-free parts of the pipeline, where they live (re-exported for existing importers).
export { generateWith, type SampleRequest } from './generate.js';
export { defaultSteps } from './samplers/factory.js';
