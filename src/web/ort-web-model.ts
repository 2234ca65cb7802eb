/**
 * An exported U-Net (onnx/export-unet.ts) as a `ModelFn` on onnxruntime-web:
 * the browser twin of onnx/runner.ts (which runs onnxruntime-node). Same
 * interface: NHWC float32 images in, NHWC outputs back, `t` broadcast to every
 * image, int64 classes for class-conditional models (numClasses = no class).
 * And a latent model's exported decoder (onnx/export-autoencoder.ts) as a
 * `LatentDecoder`, the browser twin of latent/runner.ts's decode: with
 * latent/scaled.ts's latentStage it is the LatentStage generate() decodes with.
 *
 * The onnxruntime-web module is passed in (the page bundles it; Node tests
 * import it), so this file imports nothing at run time but the library's own
 * engine-free modules, and its types are the few members it calls (so the
 * package's browser entry needs onnxruntime-web's types no more than its code). Backends: 'webgpu' (when the browser has a GPU adapter)
 * or 'wasm'; 'auto' tries WebGPU first and falls back to wasm.
 */
import { DiffuseError } from '../errors.js';
import { unetFeedTensors, type TensorMaker, describeUNetSession, type UNetSessionInfo, type UNetSessionLike } from '../onnx/feeds.js';
import type { ModelFn, Shape4 } from '../diffusion/types.js';
import { ONNX_AUTOENCODER_CONFIG_KEY, ONNX_UNET_CONFIG_KEY, readOnnxMetadata } from '../onnx/proto.js';
import { latentShape, validateAutoencoderConfig, type AutoencoderConfig } from '../model/autoencoder-config.js';
import type { LatentDecoder } from '../latent/scaled.js';
import { routeByTimestep } from '../diffusion/experts.js';

/** What this module uses of an onnxruntime-web tensor. */
export interface OrtWebTensor {
  readonly data: unknown;
  readonly location?: string;
  getData(releaseData?: boolean): Promise<unknown>;
}

/** What this module uses of an onnxruntime-web InferenceSession. */
export interface OrtWebSession extends UNetSessionLike {
  run(feeds: Record<string, OrtWebTensor>): Promise<Readonly<Record<string, OrtWebTensor>>>;
  release(): Promise<void>;
}

/** What this module uses of the onnxruntime-web module (`import * as ort from 'onnxruntime-web'` or '/webgpu'). */
export interface OrtWebModule {
  readonly InferenceSession: {
    create(model: Uint8Array, options: { executionProviders: string[]; graphOptimizationLevel: 'all' }): Promise<OrtWebSession>;
  };
  readonly Tensor: {
    new (type: 'float32', data: Float32Array, dims: readonly number[]): OrtWebTensor;
    new (type: 'int64', data: BigInt64Array, dims: readonly number[]): OrtWebTensor;
  };
}
export type WebBackend = 'webgpu' | 'wasm';
export type WebBackendChoice = WebBackend | 'auto';

export type OrtWebModelFn = ((x: Float32Array, t: number, shape: Shape4, classes?: Int32Array) => Promise<Float32Array>) & {
  /** [H, W, C] of the model's input. */
  readonly imageShape: readonly [number, number, number];
  readonly outChannels: number;
  /** 0 for an unconditional model. */
  readonly numClasses: number;
  /** Text models: tokens per prompt (0 otherwise). */
  readonly tokenLength: number;
  /** The execution provider the session runs on. */
  readonly backend: WebBackend;
  /** Why WebGPU was not used ('auto' only), e.g. "no WebGPU in this browser". */
  readonly fallbackReason: string | null;
  /** The model's ONNX metadata (diffuse.schedule, diffuse.timesteps, ...). */
  readonly metadata: Readonly<Record<string, string>>;
  dispose(): Promise<void>;
};

const _isModelFn: (f: OrtWebModelFn) => ModelFn = (f) => f;
void _isModelFn;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface GpuNavigator {
  readonly gpu?: { requestAdapter(): Promise<unknown> };
}

/** Whether this JavaScript environment offers a WebGPU adapter (false in Node and GPU-less browsers). */
export async function webGpuAvailable(): Promise<boolean> {
  const nav = (globalThis as { navigator?: GpuNavigator }).navigator;
  if (nav?.gpu === undefined) return false;
  try {
    return (await nav.gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

export interface OrtWebModelOptions {
  /** 'auto' (default): WebGPU when available, else wasm. */
  readonly backend?: WebBackendChoice;
}

/** A session on the backend chosen (WebGPU falling back to wasm under 'auto'), with the model's metadata. */
interface OpenedSession {
  readonly session: OrtWebSession;
  readonly backend: WebBackend;
  readonly fallbackReason: string | null;
  readonly meta: Readonly<Record<string, string>>;
}

async function openSession(ort: OrtWebModule, bytes: Uint8Array, what: string, opts: OrtWebModelOptions): Promise<OpenedSession> {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new DiffuseError(`the ONNX ${what} is empty`);
  let meta: Record<string, string>;
  try {
    meta = readOnnxMetadata(bytes);
  } catch (err) {
    throw new DiffuseError(`the ${what} is not a valid ONNX file: ${message(err)}`, { cause: err });
  }
  const choice = opts.backend ?? 'auto';
  let fallbackReason: string | null = null;
  let backend: WebBackend = 'wasm';
  if (choice === 'webgpu' || choice === 'auto') {
    if (await webGpuAvailable()) {
      backend = 'webgpu';
    } else if (choice === 'webgpu') {
      throw new DiffuseError('WebGPU is not available in this browser (no GPU adapter)');
    } else {
      fallbackReason = 'no WebGPU adapter in this browser';
    }
  }
  const create = (ep: WebBackend): Promise<OrtWebSession> =>
    ort.InferenceSession.create(bytes, { executionProviders: [ep], graphOptimizationLevel: 'all' });
  try {
    return { session: await create(backend), backend, fallbackReason, meta };
  } catch (err) {
    if (backend === 'webgpu' && choice === 'auto') {
      try {
        return { session: await create('wasm'), backend: 'wasm', fallbackReason: `WebGPU session failed (${message(err)})`, meta };
      } catch (err2) {
        throw new DiffuseError(`ONNX Runtime (wasm) cannot load the ${what}: ${message(err2)}`, { cause: err2 });
      }
    }
    throw new DiffuseError(`ONNX Runtime (${backend}) cannot load the ${what}: ${message(err)}`, { cause: err });
  }
}

/** A float32 output of a run, read back from the GPU when it stayed there. */
async function outputData(result: Readonly<Record<string, OrtWebTensor>>, name: string, backend: WebBackend, what: string): Promise<Float32Array> {
  const out = result[name];
  if (out === undefined) throw new DiffuseError(`ORT web ${what}: no '${name}' in the session's results`);
  const data = backend === 'webgpu' && out.location === 'gpu-buffer' ? await out.getData(true) : out.data;
  if (!(data instanceof Float32Array)) throw new DiffuseError(`ORT web ${what}: '${name}' is not float32`);
  return data;
}

/** Load ONNX bytes into an onnxruntime-web session and wrap it as a ModelFn. */
export async function createOrtWebModelFn(ort: OrtWebModule, bytes: Uint8Array, opts: OrtWebModelOptions = {}): Promise<OrtWebModelFn> {
  const { session, backend, fallbackReason, meta } = await openSession(ort, bytes, 'model', opts);
  let info: UNetSessionInfo;
  try {
    info = describeUNetSession(session, meta, ONNX_UNET_CONFIG_KEY, 'the model');
  } catch (err) {
    await session.release();
    throw err;
  }
  const [H, W, C] = info.imageShape;
  const { outChannels: outC, numClasses, tokenLength } = info;
  const tensors: TensorMaker<OrtWebTensor> = {
    float32: (data, dims) => new ort.Tensor('float32', data, dims),
    int64: (data, dims) => new ort.Tensor('int64', data, dims),
  };

  let disposed = false;
  const run = async (x: Float32Array, t: number, shape: Shape4, classes?: Int32Array): Promise<Float32Array> => {
    if (disposed) throw new DiffuseError('ORT web model function used after dispose()');
    const feeds = unetFeedTensors('the model', info, x, t, shape, classes, tensors);
    return outputData(await session.run(feeds), 'out', backend, 'model');
  };
  return Object.assign(run, {
    imageShape: [H, W, C] as const,
    outChannels: outC,
    numClasses,
    tokenLength,
    backend,
    fallbackReason,
    metadata: Object.freeze({ ...meta }),
    dispose: async (): Promise<void> => {
      if (disposed) return;
      disposed = true;
      await session.release();
    },
  });
}

/** A latent model's decoder on onnxruntime-web: n latents [n,s,s,L] (unscaled) -> images [n,S,S,C] (not clamped). */
export type OrtWebDecoder = LatentDecoder & {
  /** The autoencoder's config (from the file's metadata). */
  readonly config: AutoencoderConfig;
  /** [s, s, L] of the latents it takes and [S, S, C] of the images it makes. */
  readonly latentShape: readonly [number, number, number];
  readonly imageShape: readonly [number, number, number];
  readonly backend: WebBackend;
  readonly fallbackReason: string | null;
  /** The file's ONNX metadata (diffuse.scaling_factor, ...). */
  readonly metadata: Readonly<Record<string, string>>;
  dispose(): Promise<void>;
};

/** Load an exported decoder (diffuse export --part decoder, or the explorer's /api/decoder.onnx) into an onnxruntime-web session. */
export async function createOrtWebDecoder(ort: OrtWebModule, bytes: Uint8Array, opts: OrtWebModelOptions = {}): Promise<OrtWebDecoder> {
  const { session, backend, fallbackReason, meta } = await openSession(ort, bytes, 'decoder', opts);
  let config: AutoencoderConfig;
  try {
    if (!session.inputNames.includes('z') || !session.outputNames.includes('image')) {
      throw new DiffuseError(`the decoder is not a diffuse-ts decoder export (inputs ${session.inputNames.join(', ')}; outputs ${session.outputNames.join(', ')})`);
    }
    const raw = meta[ONNX_AUTOENCODER_CONFIG_KEY];
    if (raw === undefined) throw new DiffuseError(`the decoder has no '${ONNX_AUTOENCODER_CONFIG_KEY}' metadata entry`);
    try {
      config = validateAutoencoderConfig(JSON.parse(raw) as AutoencoderConfig);
    } catch (err) {
      throw new DiffuseError(`the decoder's '${ONNX_AUTOENCODER_CONFIG_KEY}' metadata entry is not a valid autoencoder config: ${message(err)}`, { cause: err });
    }
  } catch (err) {
    await session.release();
    throw err;
  }
  const [s, , L] = latentShape(config);
  const S = config.imageSize, C = config.channels;
  let disposed = false;
  return {
    config,
    latentShape: [s, s, L],
    imageShape: [S, S, C],
    backend,
    fallbackReason,
    metadata: Object.freeze({ ...meta }),
    decode: async (z, n) => {
      if (disposed) throw new DiffuseError('ORT web decoder used after dispose()');
      if (!Number.isInteger(n) || n < 1 || !(z instanceof Float32Array) || z.length !== n * s * s * L) {
        throw new DiffuseError(`the decoder expects ${n}·${s}·${s}·${L} latent values for ${n} images, got ${z instanceof Float32Array ? z.length : typeof z}`);
      }
      const result = await session.run({ z: new ort.Tensor('float32', z, [n, s, s, L]) });
      return outputData(result, 'image', backend, 'decoder');
    },
    dispose: async () => {
      if (disposed) return;
      disposed = true;
      await session.release();
    },
  };
}

/**
 * Expert networks (config.experts), one session each, as one OrtWebModelFn:
 * each call goes to the expert owning its t (diffusion/experts.ts). Shapes,
 * classes and backend are the first expert's (all must agree); dispose
 * releases every session.
 */
export function routeOrtWebModels(experts: readonly OrtWebModelFn[], boundaries: readonly number[]): OrtWebModelFn {
  const first = experts[0];
  if (first === undefined) throw new DiffuseError('no expert networks to route between');
  experts.forEach((e, k) => {
    if (e.imageShape.join('x') !== first.imageShape.join('x') || e.numClasses !== first.numClasses || e.tokenLength !== first.tokenLength || e.outChannels !== first.outChannels) {
      throw new DiffuseError(`expert ${k} takes other inputs than expert 0 (${e.imageShape.join('×')}, ${e.numClasses} classes vs ${first.imageShape.join('×')}, ${first.numClasses} classes)`);
    }
  });
  const routed = routeByTimestep(experts, boundaries);
  const run = async (x: Float32Array, t: number, shape: Shape4, classes?: Int32Array): Promise<Float32Array> => routed(x, t, shape, classes);
  return Object.assign(run, {
    imageShape: first.imageShape,
    outChannels: first.outChannels,
    numClasses: first.numClasses,
    tokenLength: first.tokenLength,
    backend: first.backend,
    fallbackReason: first.fallbackReason,
    metadata: first.metadata,
    dispose: async (): Promise<void> => { await Promise.all(experts.map((e) => e.dispose())); },
  });
}
