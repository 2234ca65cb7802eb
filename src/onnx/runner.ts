/**
 * An exported U-Net (export-unet.ts) as a `ModelFn` on ONNX Runtime for Node
 * (onnxruntime-node, native CPU kernels). One `session.run` per call, with the
 * batch size taken from the given shape; `t` is broadcast to every image.
 * Engine-free: loading this module does not load tfjs.
 */
import { readFile } from 'node:fs/promises';
import type * as Ort from 'onnxruntime-node';
import { DiffuseError } from '../errors.js';
import { unetFeedTensors, type TensorMaker, describeUNetSession, type UNetSessionInfo } from './feeds.js';
import type { ModelFn, Shape4 } from '../diffusion/types.js';
import { ONNX_UNET_CONFIG_KEY, readOnnxMetadata } from './proto.js';

export interface OrtModelOptions {
  /** Intra-op threads (default 2: both cores of the reference machine). */
  threads?: number;
}

export type OrtModelFn = ((x: Float32Array, t: number, shape: Shape4, classes?: Int32Array) => Promise<Float32Array>) & {
  /** [H, W, C] of the model's input. */
  readonly imageShape: readonly [number, number, number];
  readonly outChannels: number;
  /** 0 for an unconditional model. */
  readonly numClasses: number;
  /** Text models: tokens per prompt (0 otherwise). */
  readonly tokenLength: number;
  dispose(): Promise<void>;
};

// Compile-time check that an OrtModelFn is a ModelFn.
const _isModelFn: (f: OrtModelFn) => ModelFn = (f) => f;
void _isModelFn;

type OrtModule = typeof Ort;
let ortModule: Promise<OrtModule | undefined> | undefined;

async function loadOrt(): Promise<OrtModule | undefined> {
  ortModule ??= import('onnxruntime-node').then(
    (m) => (typeof m.InferenceSession?.create === 'function' ? m : undefined),
    () => undefined,
  );
  return ortModule;
}

/** True when onnxruntime-node (and its native binding) can be loaded here. */
export async function ortAvailable(): Promise<boolean> {
  return (await loadOrt()) !== undefined;
}

/** An ONNX Runtime session on the CPU, with the module that made it and the model's metadata. */
export interface OrtSession {
  readonly ort: OrtModule;
  readonly session: Ort.InferenceSession;
  /** metadata_props of the model. */
  readonly metadata: Record<string, string>;
  /** The file, or 'ONNX model bytes', for messages. */
  readonly source: string;
}

/**
 * Open an ONNX model (bytes or a file path) in an ONNX Runtime session
 * (sequential, `threads` intra-op threads, every graph optimisation); bad
 * files and missing runtimes are DiffuseErrors.
 */
export async function openOrtSession(model: Uint8Array | string, opts: OrtModelOptions = {}): Promise<OrtSession> {
  const threads = opts.threads ?? 2;
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw new DiffuseError(`ORT threads must be an integer in 1..256, got ${String(threads)}`);
  const ort = await loadOrt();
  if (ort === undefined) throw new DiffuseError('onnxruntime-node cannot be loaded on this platform (npm install onnxruntime-node)');
  let bytes: Uint8Array;
  if (typeof model === 'string') {
    try {
      bytes = await readFile(model);
    } catch (err) {
      throw new DiffuseError(`cannot read ONNX model '${model}': ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  } else if (model instanceof Uint8Array) {
    bytes = model;
  } else {
    throw new DiffuseError('openOrtSession: model must be ONNX bytes (Uint8Array) or a file path');
  }
  const source = typeof model === 'string' ? model : 'ONNX model bytes';
  let metadata: Record<string, string>;
  try {
    metadata = readOnnxMetadata(bytes);
  } catch (err) {
    throw new DiffuseError(`${source} is not a valid ONNX file: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  try {
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      executionProviders: ['cpu'],
    });
    return { ort, session, metadata, source };
  } catch (err) {
    throw new DiffuseError(`ONNX Runtime cannot load ${source}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/**
 * Load an exported U-Net (bytes or a file path) into an ONNX Runtime session.
 * The returned function takes NHWC float32 images and returns NHWC outputs.
 */
export async function createOrtModelFn(model: Uint8Array | string, opts: OrtModelOptions = {}): Promise<OrtModelFn> {
  const { ort, session, metadata: meta, source } = await openOrtSession(model, opts);
  let info: UNetSessionInfo;
  try {
    info = describeUNetSession(session, meta, ONNX_UNET_CONFIG_KEY, source);
  } catch (err) {
    await session.release();
    throw err;
  }
  const [H, W, C] = info.imageShape;
  const { outChannels: outC, numClasses, tokenLength } = info;
  const tensors: TensorMaker<Ort.Tensor> = {
    float32: (data, dims) => new ort.Tensor('float32', data, dims),
    int64: (data, dims) => new ort.Tensor('int64', data, dims),
  };

  let disposed = false;
  const run = async (x: Float32Array, t: number, shape: Shape4, classes?: Int32Array): Promise<Float32Array> => {
    if (disposed) throw new DiffuseError('ORT model function used after dispose()');
    const feeds = unetFeedTensors('ORT model', info, x, t, shape, classes, tensors);
    const result = await session.run(feeds);
    const out = result['out'];
    if (out === undefined || !(out.data instanceof Float32Array)) throw new Error("ORT model: no float32 'out' in the session's results");
    return out.data;
  };
  return Object.assign(run, {
    imageShape: [H, W, C] as const,
    outChannels: outC,
    numClasses,
    tokenLength,
    dispose: async (): Promise<void> => {
      if (disposed) return;
      disposed = true;
      await session.release();
    },
  });
}
