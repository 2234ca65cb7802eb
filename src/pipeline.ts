/**
 * A trained model, ready to generate: a checkpoint folder -> its config and a
 * `ModelFn` on the chosen engine. The samplers never see which engine runs.
 * A checkpoint of expert networks (config.experts) loads one network per
 * expert (on ONNX Runtime, one session each) behind one ModelFn that hands
 * each call to the expert owning its t (diffusion/experts.ts).
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
import { expertWeights, routeByTimestep } from './diffusion/experts.js';

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

interface LoadedNetwork { model: ModelFn; dispose(): Promise<void> }

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
  const ex = config.experts;
  return {
    model: ex === undefined ? loaded[0]!.model : routeByTimestep(loaded.map((l) => l.model), ex.boundaries),
    dispose: async () => { await Promise.all(loaded.map((l) => l.dispose())); },
  };
}

/** Build a ModelFn for given weights (of the config's network, or of its experts) on the tfjs engine. */
export async function tfjsModelFn(config: DiffuseConfig, params: Weights, opts: { backend?: BackendName; batchSize?: number } = {}): Promise<{ model: ModelFn; engine: string; dispose(): Promise<void> }> {
  const { initEngine } = await import('./engine/backend.js');
  const { loadUNetFromState, modelFnFromUNet } = await import('./model/runner.js');
  const engine = await initEngine(opts.backend !== undefined ? { backend: opts.backend } : {});
  const nets = expertWeights(config.experts?.count ?? 1, params);
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

async function ortAvailableLazy(): Promise<boolean> {
  const { ortAvailable } = await import('./onnx/runner.js');
  return ortAvailable();
}

/** Load a checkpoint for generation. */
export async function loadPipeline(dir: string, opts: PipelineOptions = {}): Promise<Pipeline> {
  if (!existsSync(dir) && checkpointDir(dir) !== dir) throw new DiffuseError(`checkpoint ${dir}: no such folder`);
  const checkpoint = checkpointDir(dir);
  const { config, params, step } = await loadModelWeights(checkpoint, opts.weights ?? 'ema');
  const engineName: EngineName = opts.engine ?? ((await ortAvailableLazy()) ? 'onnx' : 'tfjs');
  // before any engine allocates: refuse what cannot run here (limits.ts)
  const guided = config.model.numClasses > 0 || config.model.text !== undefined;
  const pool = engineName === 'tfjs' && opts.backend !== 'tensorflow' ? 'wasm' : 'native';
  // every expert's network is loaded at once, but they run one at a time: the activations of one pass are what is checked
  checkSamplingMemory(config.model, opts.batchSize ?? 64, guided, pool, checkpoint);
  switch (engineName) {
    case 'tfjs': {
      const r = await tfjsModelFn(config, params as Weights, {
        ...(opts.backend !== undefined ? { backend: opts.backend } : {}),
        ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
      });
      return { config, step, checkpoint, ...r };
    }
    case 'onnx': {
      const r = await onnxModelFn(config, params as Weights, { weights: opts.weights ?? 'ema', step, ...(opts.threads !== undefined ? { threads: opts.threads } : {}) });
      return { config, step, checkpoint, ...r };
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
