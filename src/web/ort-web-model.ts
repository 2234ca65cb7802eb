/**
 * An exported U-Net (onnx/export-unet.ts) as a `ModelFn` on onnxruntime-web:
 * the browser twin of onnx/runner.ts (which runs onnxruntime-node). Same
 * interface: NHWC float32 images in, NHWC outputs back, `t` broadcast to every
 * image, int64 classes for class-conditional models (numClasses = no class).
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
import { ONNX_UNET_CONFIG_KEY, readOnnxMetadata } from '../onnx/proto.js';
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

/** Load ONNX bytes into an onnxruntime-web session and wrap it as a ModelFn. */
export async function createOrtWebModelFn(ort: OrtWebModule, bytes: Uint8Array, opts: OrtWebModelOptions = {}): Promise<OrtWebModelFn> {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new DiffuseError('the ONNX model is empty');
  let meta: Record<string, string>;
  try {
    meta = readOnnxMetadata(bytes);
  } catch (err) {
    throw new DiffuseError(`the model is not a valid ONNX file: ${message(err)}`, { cause: err });
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
  let session: OrtWebSession;
  try {
    session = await create(backend);
  } catch (err) {
    if (backend === 'webgpu' && choice === 'auto') {
      fallbackReason = `WebGPU session failed (${message(err)})`;
      backend = 'wasm';
      try {
        session = await create('wasm');
      } catch (err2) {
        throw new DiffuseError(`ONNX Runtime (wasm) cannot load the model: ${message(err2)}`, { cause: err2 });
      }
    } else {
      throw new DiffuseError(`ONNX Runtime (${backend}) cannot load the model: ${message(err)}`, { cause: err });
    }
  }
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
    const result = await session.run(feeds);
    const out = result['out'];
    if (out === undefined) throw new DiffuseError("ORT web model: no 'out' in the session's results");
    const data = backend === 'webgpu' && out.location === 'gpu-buffer' ? await out.getData(true) : out.data;
    if (!(data instanceof Float32Array)) throw new DiffuseError("ORT web model: 'out' is not float32");
    return data;
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
