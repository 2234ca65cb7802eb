/**
 * The input checks and feeds of an exported U-Net, shared by the Node runner
 * (onnxruntime-node) and the browser one (onnxruntime-web). Engine-free and
 * browser-safe: no ORT import here, the caller wraps the arrays in its Tensor.
 */
import { DiffuseError } from '../errors.js';
import type { Shape4 } from '../diffusion/types.js';

export interface UNetFeedArrays {
  /** x as given, and t repeated per image. */
  readonly x: Float32Array;
  readonly t: Float32Array;
  /** int64 class per image for class-conditional models ("no class" when none given). */
  readonly classes?: BigInt64Array;
  /** int64 token ids [n, tokenLength] for text models (all pads = no prompt when none given). */
  readonly tokens?: BigInt64Array;
}

/** What the feeds need to know about a model. */
export interface UNetFeedModel {
  readonly imageShape: readonly [number, number, number];
  readonly conditional: boolean;
  readonly numClasses: number;
  /** Text models: tokens per prompt and vocabulary size (absent or 0 = class model / unconditional). */
  readonly tokenLength?: number;
  readonly vocabSize?: number;
}

/**
 * Validate one call (shape against the model's [H, W, C], x length, t, class
 * indices) and build the arrays to feed. `what` names the runner in errors.
 */
export function unetFeeds(
  what: string,
  model: UNetFeedModel,
  x: Float32Array,
  t: number,
  shape: Shape4,
  classes?: Int32Array,
): UNetFeedArrays {
  const [H, W, C] = model.imageShape;
  const [n, h, w, ch] = shape;
  if (!Number.isInteger(n) || n < 1 || h !== H || w !== W || ch !== C) {
    throw new DiffuseError(`${what} expects input [N,${H},${W},${C}], got [${shape.join(',')}]`);
  }
  if (!(x instanceof Float32Array) || x.length !== n * H * W * C) {
    throw new DiffuseError(`${what}: x must be a Float32Array of ${n * H * W * C} values for shape [${shape.join(',')}], got ${x.length}`);
  }
  if (typeof t !== 'number' || !Number.isFinite(t)) throw new DiffuseError(`${what}: timestep must be a finite number, got ${String(t)}`);
  const tArr = new Float32Array(n).fill(t);
  if (!model.conditional) {
    if (classes !== undefined) throw new DiffuseError(`${what}: class labels given to an unconditional model`);
    return { x, t: tArr };
  }
  const L = model.tokenLength ?? 0;
  if (L > 0) {
    const V = model.vocabSize ?? 0;
    const tok = new BigInt64Array(n * L);
    if (classes !== undefined) {
      if (classes.length !== n * L) throw new DiffuseError(`${what}: ${classes.length} token ids for a batch of ${n} prompts of ${L} tokens`);
      for (let i = 0; i < n * L; i++) {
        const c = classes[i]!;
        if (!Number.isInteger(c) || c < 0 || c >= V) throw new DiffuseError(`${what}: token ${c} of prompt ${Math.floor(i / L)} is outside the vocabulary 0..${V - 1}`);
        tok[i] = BigInt(c);
      }
    }
    return { x, t: tArr, tokens: tok };
  }
  const k = model.numClasses;
  const cls = new BigInt64Array(n);
  if (classes === undefined) {
    cls.fill(BigInt(k));
  } else {
    if (classes.length !== n) throw new DiffuseError(`${what}: ${classes.length} class labels for a batch of ${n}`);
    for (let i = 0; i < n; i++) {
      const c = classes[i]!;
      if (!Number.isInteger(c) || c < 0 || c > k) throw new DiffuseError(`${what}: class ${c} at index ${i} is outside 0..${k} (${k} = no class)`);
      cls[i] = BigInt(c);
    }
  }
  return { x, t: tArr, classes: cls };
}

/** What both ORT packages' sessions expose about their inputs and outputs. */
export interface UNetSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly { readonly name: string; readonly isTensor: boolean; readonly shape?: readonly (number | string)[] }[];
  readonly outputMetadata: readonly { readonly name: string; readonly isTensor: boolean; readonly shape?: readonly (number | string)[] }[];
}

export interface UNetSessionInfo {
  readonly imageShape: readonly [number, number, number];
  readonly outChannels: number;
  readonly conditional: boolean;
  readonly numClasses: number;
  /** Text models: tokens per prompt and vocabulary size (0 otherwise). */
  readonly tokenLength: number;
  readonly vocabSize: number;
}

function staticDim(d: number | string | undefined, what: string): number {
  if (typeof d !== 'number' || !Number.isInteger(d) || d < 1) throw new DiffuseError(`ONNX model: ${what} must be a fixed size, got ${String(d)}`);
  return d;
}

/**
 * Check that a session is a diffuse-ts U-Net export (inputs x, t[, classes];
 * output out; fixed image size) and read its shape and class count (from the
 * `configKey` metadata entry). `source` names the model in errors; the caller
 * releases the session when this throws.
 */
export function describeUNetSession(session: UNetSessionLike, meta: Readonly<Record<string, string>>, configKey: string, source: string): UNetSessionInfo {
  const inputs = new Set(session.inputNames);
  if (!inputs.has('x') || !inputs.has('t') || !session.outputNames.includes('out')) {
    throw new DiffuseError(`${source} is not a diffuse-ts U-Net export (inputs ${session.inputNames.join(', ')}; outputs ${session.outputNames.join(', ')})`);
  }
  const xMeta = session.inputMetadata.find((m) => m.name === 'x');
  const oMeta = session.outputMetadata.find((m) => m.name === 'out');
  if (xMeta === undefined || !xMeta.isTensor || oMeta === undefined || !oMeta.isTensor) {
    throw new DiffuseError(`${source}: input 'x' / output 'out' must be tensors`);
  }
  const imageShape = [staticDim(xMeta.shape?.[1], "x's height"), staticDim(xMeta.shape?.[2], "x's width"), staticDim(xMeta.shape?.[3], "x's channels")] as const;
  const outChannels = staticDim(oMeta.shape?.[3], "out's channels");
  const text = inputs.has('tokens');
  const conditional = inputs.has('classes') || text;
  if (!conditional) return { imageShape, outChannels, conditional, numClasses: 0, tokenLength: 0, vocabSize: 0 };
  let parsed: unknown;
  try {
    const cfg = meta[configKey];
    parsed = cfg === undefined ? undefined : JSON.parse(cfg);
  } catch {
    parsed = undefined;
  }
  if (text) {
    const tc = (parsed as { text?: { vocab?: unknown; maxTokens?: unknown } } | undefined)?.text;
    const L = tc?.maxTokens;
    if (tc === undefined || !Array.isArray(tc.vocab) || typeof L !== 'number' || !Number.isInteger(L) || L < 1) {
      throw new DiffuseError(`${source}: text model without a valid '${configKey}' metadata entry (text.vocab, text.maxTokens)`);
    }
    return { imageShape, outChannels, conditional, numClasses: 0, tokenLength: L, vocabSize: tc.vocab.length };
  }
  const nc = (parsed as { numClasses?: unknown } | undefined)?.numClasses;
  if (typeof nc !== 'number' || !Number.isInteger(nc) || nc < 1) {
    throw new DiffuseError(`${source}: conditional model without a valid '${configKey}' metadata entry (numClasses)`);
  }
  return { imageShape, outChannels, conditional, numClasses: nc, tokenLength: 0, vocabSize: 0 };
}

/** A package's `new Tensor(type, data, dims)`, for the two element types the U-Net takes. */
export interface TensorMaker<T> {
  float32(data: Float32Array, dims: readonly number[]): T;
  int64(data: BigInt64Array, dims: readonly number[]): T;
}

/**
 * The feeds of one U-Net call (x, t and, for conditional models, classes or
 * tokens) as the caller's ORT tensors, after the checks of `unetFeeds`.
 */
export function unetFeedTensors<T>(what: string, info: UNetSessionInfo, x: Float32Array, t: number, shape: Shape4, cond: Int32Array | undefined, make: TensorMaker<T>): Record<string, T> {
  const [H, W, C] = info.imageShape;
  const n = shape[0];
  const arrays = unetFeeds(what, info, x, t, shape, cond);
  const feeds: Record<string, T> = { x: make.float32(arrays.x, [n, H, W, C]), t: make.float32(arrays.t, [n]) };
  if (arrays.classes !== undefined) feeds['classes'] = make.int64(arrays.classes, [n]);
  if (arrays.tokens !== undefined) feeds['tokens'] = make.int64(arrays.tokens, [n, info.tokenLength]);
  return feeds;
}
