/**
 * The native accelerator: oneDNN (the library PyTorch's CPU convolutions run
 * on) from Node, through the N-API addon in native/ (`npm run build:native`).
 *
 * It is a tfjs backend named 'native' that *is* the wasm backend's instance
 * (same heap, same tensors, every wasm kernel registered under the new name
 * too) with the hot kernels replaced by native ones. Those read and write the
 * wasm heap in place: a kernel allocates its outputs with the wasm backend's
 * allocator and passes Float32Array views of the heap to C++, which runs
 * oneDNN on them (both cores, OpenMP). So nothing is copied, the heap's
 * buffers are reused from step to step (no fresh pages to fault in), and every
 * op the addon doesn't cover still runs, unchanged, as a wasm kernel. Switching
 * between 'wasm' and 'native' is free: tensors stay where they are.
 *
 * Native kernels: Conv2D and FusedConv2D (bias, linear activation) forward,
 * Conv2DBackpropInput, Conv2DBackpropFilter (with the bias gradient in the same
 * pass, handed to the Sum that follows it over the same dy) (oneDNN convolutions, NHWC
 * activations as they lie, HWIO filters reordered to oneDNN's blocked layout
 * inside the call), BatchMatMul (oneDNN matmul; transposes as strides), the
 * fused GroupNorm(+SiLU) forward and backward (fused.ts's kernels, in C++),
 * Sum over a run of leading or middle axes (bias gradients), Add (equal
 * shapes or one operand broadcast as [A,1,C]), and the copies of Concat,
 * Slice and SplitV along one axis. Anything else, or any dtype but float32,
 * falls through to the wasm kernel.
 *
 * Loading: `loadNative()` never throws. A missing build, a missing libdnnl, a
 * non-Linux platform or DIFFUSE_NATIVE=0 give `{ ok: false, reason }` and the
 * engine stays on wasm. DIFFUSE_NATIVE_PATH loads the addon from another file;
 * DIFFUSE_NATIVE_THREADS sets its thread count (default: all cores).
 */
import * as tf from './tf.js';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GROUP_NORM_EPS, GROUP_NORM_GRAD_KERNEL, GROUP_NORM_KERNEL } from './fused.js';
import { convInfo, dims4, f32, type KernelArgs, type WasmBackendLike } from './kernels.js';

type TensorInfo = tf.TensorInfo;

/** The addon's functions (native/src/diffuse_native.cc). */
export interface NativeAddon {
  conv2dForward(x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array, dims: Int32Array): void;
  conv2dBackwardData(dy: Float32Array, w: Float32Array, dx: Float32Array, dims: Int32Array): void;
  conv2dBackwardWeights(x: Float32Array, dy: Float32Array, dw: Float32Array, dbias: Float32Array | null, dims: Int32Array): void;
  matmul(a: Float32Array, b: Float32Array, out: Float32Array, dims: Int32Array): void;
  groupNormForward(x: Float32Array, gamma: Float32Array, beta: Float32Array, y: Float32Array, stats: Float32Array,
    dims: Int32Array, silu: boolean, eps: number): void;
  groupNormBackward(dz: Float32Array, x: Float32Array, gamma: Float32Array, beta: Float32Array, stats: Float32Array,
    dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array, dims: Int32Array, silu: boolean): void;
  sumMiddle(x: Float32Array, out: Float32Array, dims: Int32Array): void;
  addBroadcast(x: Float32Array, y: Float32Array, out: Float32Array, dims: Int32Array): void;
  copyBlocks(src: Float32Array, dst: Float32Array, dims: Int32Array): void;
  /** Float32 FMA GFLOP/s of `threads` cores together (a 0.1 s microbenchmark). */
  peakGflops(threads: number): number;
  info(): NativeInfo;
  setThreads(n: number): void;
}

export interface NativeInfo {
  onednn: string;
  isa: string;
  threads: number;
  runtime: string;
  cachedPrimitives: number;
}

export type NativeLoad = { ok: true; addon: NativeAddon; info: NativeInfo; file: string } | { ok: false; reason: string };

export const NATIVE_BACKEND = 'native';
/** How to get the accelerator, for the one-line notice when it is absent. */
export const NATIVE_HINT = 'npm run build:native (Linux; needs g++ and libdnnl-dev: apt-get install libdnnl-dev)';

/** Where `npm run build:native` puts the addon: <package>/native/build/Release/diffuse_native.node. */
export function nativeAddonPath(): string {
  // This file is dist/src/engine/native.js in the built package.
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  return path.join(root, 'native', 'build', 'Release', 'diffuse_native.node');
}

let loaded: NativeLoad | undefined;

/** Load the addon once (per thread). Never throws. */
export function loadNative(): NativeLoad {
  if (loaded !== undefined) return loaded;
  const env = process.env['DIFFUSE_NATIVE'];
  if (env === '0' || env === 'off') {
    loaded = { ok: false, reason: 'disabled by DIFFUSE_NATIVE=0' };
    return loaded;
  }
  const override = process.env['DIFFUSE_NATIVE_PATH'];
  const file = override !== undefined && override !== '' ? path.resolve(override) : nativeAddonPath();
  if (!existsSync(file)) {
    loaded = { ok: false, reason: override !== undefined && override !== '' ? `not found at ${file} (DIFFUSE_NATIVE_PATH)` : `not built; to enable it: ${NATIVE_HINT}` };
    return loaded;
  }
  try {
    const addon = createRequire(import.meta.url)(file) as NativeAddon;
    const threads = process.env['DIFFUSE_NATIVE_THREADS'];
    if (threads !== undefined && threads !== '') {
      const n = Number(threads);
      if (!Number.isInteger(n) || n < 1) throw new Error(`DIFFUSE_NATIVE_THREADS must be a positive integer, got '${threads}'`);
      addon.setThreads(n);
    }
    loaded = { ok: true, addon, info: addon.info(), file };
  } catch (err) {
    const msg = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
    loaded = { ok: false, reason: `failed to load (${msg}); rebuild it: ${NATIVE_HINT}` };
  }
  return loaded;
}

function addonOrThrow(): NativeAddon {
  const l = loadNative();
  if (!l.ok) throw new Error(`native accelerator: ${l.reason}`);
  return l.addon;
}

/** Set the OpenMP team size of the calling thread (oneDNN and the fused kernels). */
export function setNativeThreads(n: number): void {
  addonOrThrow().setThreads(n);
}

/** A one-line description: "native (oneDNN 2.6.3, avx512_core_amx, 2 threads)" (threads: this thread's, or as given). */
export function describeNative(threads?: number): string {
  const l = loadNative();
  if (!l.ok) return `native unavailable: ${l.reason}`;
  const i = l.addon.info();
  const n = threads ?? i.threads;
  return `native (oneDNN ${i.onednn}, ${i.isa}, ${n} thread${n === 1 ? '' : 's'})`;
}

// ------------------------------------------------------------------ kernels

let addon: NativeAddon;
const fallback = new Map<string, tf.KernelFunc>();

const fallbackCounts = new Map<string, number>();

function wasmKernel(name: string, args: KernelArgs): TensorInfo | TensorInfo[] {
  const k = fallback.get(name);
  if (k === undefined) throw new Error(`native: no wasm kernel ${name} to fall back to`);
  fallbackCounts.set(name, (fallbackCounts.get(name) ?? 0) + 1);
  return k(args);
}

/** How often each native kernel handed a call to the wasm kernel since the last reset (tests, benchmarks). */
export function nativeFallbacks(reset = false): Map<string, number> {
  const r = new Map(fallbackCounts);
  if (reset) fallbackCounts.clear();
  return r;
}

function isF32(...ts: Array<TensorInfo | undefined>): boolean {
  return ts.every((t) => t === undefined || t.dtype === 'float32');
}

function input(args: KernelArgs, name: string): TensorInfo {
  const t = args.inputs[name];
  if (t === undefined) throw new Error(`missing input ${name}`);
  return t;
}

/** oneDNN's dims of a conv, or undefined when its geometry is one oneDNN would reject (then: wasm). */
function convDims(info: tf.backend_util.Conv2DInfo): Int32Array | undefined {
  const p = info.padInfo;
  const effH = (info.filterHeight - 1) * info.dilationHeight + 1;
  const effW = (info.filterWidth - 1) * info.dilationWidth + 1;
  const oh = Math.floor((info.inHeight + p.top + p.bottom - effH) / info.strideHeight) + 1;
  const ow = Math.floor((info.inWidth + p.left + p.right - effW) / info.strideWidth) + 1;
  if (oh !== info.outHeight || ow !== info.outWidth || p.top < 0 || p.bottom < 0 || p.left < 0 || p.right < 0) return undefined;
  return Int32Array.from([info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth,
    info.outChannels, info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, info.dilationHeight,
    info.dilationWidth, p.top, p.left, p.bottom, p.right]);
}

/** Allocate outputs, then take the heap views (an allocation may grow the heap and detach older views). */
function outputs(b: WasmBackendLike, shapes: number[][]): TensorInfo[] {
  return shapes.map((s) => b.makeOutput(s, 'float32'));
}

function conv2D(args: KernelArgs): TensorInfo | TensorInfo[] {
  const x = input(args, 'x'), filter = input(args, 'filter');
  const attrs = args.attrs ?? {};
  if (!isF32(x, filter)) return wasmKernel('Conv2D', args);
  const info = convInfo(x.shape, filter.shape, attrs);
  const dims = convDims(info);
  if (dims === undefined) return wasmKernel('Conv2D', args);
  const b = args.backend as unknown as WasmBackendLike;
  const [y] = outputs(b, [info.outShape]) as [TensorInfo];
  addon.conv2dForward(f32(b, x), f32(b, filter), null, f32(b, y), dims);
  return y;
}

function fusedConv2D(args: KernelArgs): TensorInfo | TensorInfo[] {
  const x = input(args, 'x'), filter = input(args, 'filter');
  const bias = args.inputs['bias'];
  const attrs = args.attrs ?? {};
  const act = (attrs['activation'] as string | undefined) ?? 'linear';
  if (act !== 'linear' || args.inputs['preluActivationWeights'] !== undefined || !isF32(x, filter, bias)) return wasmKernel('FusedConv2D', args);
  const info = convInfo(x.shape, filter.shape, attrs);
  const dims = convDims(info);
  if (dims === undefined || (bias !== undefined && bias.shape.reduce((p, q) => p * q, 1) !== info.outChannels)) return wasmKernel('FusedConv2D', args);
  const b = args.backend as unknown as WasmBackendLike;
  const [y] = outputs(b, [info.outShape]) as [TensorInfo];
  addon.conv2dForward(f32(b, x), f32(b, filter), bias === undefined ? null : f32(b, bias), f32(b, y), dims);
  return y;
}

function conv2DBackpropInput(args: KernelArgs): TensorInfo | TensorInfo[] {
  const dy = input(args, 'dy'), filter = input(args, 'filter');
  const attrs = args.attrs ?? {};
  if (!isF32(dy, filter)) return wasmKernel('Conv2DBackpropInput', args);
  const inputShape = attrs['inputShape'] as number[];
  const info = convInfo(inputShape, filter.shape, attrs);
  const dims = convDims(info);
  if (dims === undefined) return wasmKernel('Conv2DBackpropInput', args);
  const b = args.backend as unknown as WasmBackendLike;
  const [dx] = outputs(b, [[...inputShape]]) as [TensorInfo];
  addon.conv2dBackwardData(f32(b, dy), f32(b, filter), f32(b, dx), dims);
  return dx;
}

function conv2DBackpropFilter(args: KernelArgs): TensorInfo | TensorInfo[] {
  const x = input(args, 'x'), dy = input(args, 'dy');
  const attrs = args.attrs ?? {};
  if (!isF32(x, dy)) return wasmKernel('Conv2DBackpropFilter', args);
  const filterShape = attrs['filterShape'] as number[];
  const info = convInfo(x.shape, filterShape, attrs);
  const dims = convDims(info);
  if (dims === undefined) return wasmKernel('Conv2DBackpropFilter', args);
  const b = args.backend as unknown as WasmBackendLike;
  const [dw] = outputs(b, [[...filterShape]]) as [TensorInfo];
  // oneDNN sums dy for the bias gradient in the same pass: kept for the Sum that
  // tfjs's conv-with-bias gradient asks for next, over the same dy.
  const db = new Float32Array(info.outChannels);
  addon.conv2dBackwardWeights(f32(b, x), f32(b, dy), f32(b, dw), db, dims);
  biasGrad = { dataId: dy.dataId, db };
  return dw;
}

/** The bias gradient computed with the last weight gradient, and the dy it belongs to. */
let biasGrad: { dataId: tf.DataId; db: Float32Array } | undefined;

const prod = (a: number[]): number => a.reduce((p, q) => p * q, 1);

function batchMatMul(args: KernelArgs): TensorInfo | TensorInfo[] {
  const a = input(args, 'a'), bIn = input(args, 'b');
  const attrs = args.attrs ?? {};
  const ta = attrs['transposeA'] === true, tb = attrs['transposeB'] === true;
  const ra = a.shape.length, rb = bIn.shape.length;
  if (!isF32(a, bIn) || ra < 2 || rb < 2) return wasmKernel('BatchMatMul', args);
  const M = a.shape[ta ? ra - 1 : ra - 2] as number, K = a.shape[ta ? ra - 2 : ra - 1] as number;
  const K2 = bIn.shape[tb ? rb - 1 : rb - 2] as number, N = bIn.shape[tb ? rb - 2 : rb - 1] as number;
  const batchA = a.shape.slice(0, -2), batchB = bIn.shape.slice(0, -2);
  const na = prod(batchA), nb = prod(batchB);
  const same = batchA.length === batchB.length && batchA.every((d, i) => d === batchB[i]);
  // Equal batches, or one side a single matrix broadcast against the other.
  let outBatch: number[];
  if (same) outBatch = batchA;
  else if (nb === 1 && batchA.length >= batchB.length) outBatch = batchA;
  else if (na === 1 && batchB.length >= batchA.length) outBatch = batchB;
  else return wasmKernel('BatchMatMul', args);
  if (K !== K2) throw new Error(`BatchMatMul: inner dimensions ${K} and ${K2} differ`);
  const b = args.backend as unknown as WasmBackendLike;
  const [out] = outputs(b, [[...outBatch, M, N]]) as [TensorInfo];
  if (M * N === 0) return out;
  if (K === 0) { f32(b, out).fill(0); return out; }
  addon.matmul(f32(b, a), f32(b, bIn), f32(b, out), Int32Array.from([na, nb, M, K, N, ta ? 1 : 0, tb ? 1 : 0]));
  return out;
}

function sum(args: KernelArgs): TensorInfo | TensorInfo[] {
  const x = input(args, 'x');
  const attrs = args.attrs ?? {};
  if (x.dtype !== 'float32') return wasmKernel('Sum', args);
  const axes = tf.util.parseAxisParam(attrs['axis'] as number | number[], x.shape).sort((p, q) => p - q);
  const rank = x.shape.length;
  const first = axes[0];
  // One run of adjacent axes that does not end on the last one: leading axes (bias
  // gradients, [N,H,W,C] -> [C]) or middle ones ([N,H,W,C] -> [N,1,1,C]).
  if (first === undefined || axes.some((ax, i) => ax !== first + i) || first + axes.length >= rank) return wasmKernel('Sum', args);
  const last = first + axes.length - 1;
  const A = prod(x.shape.slice(0, first)), R = prod(x.shape.slice(first, last + 1)), C = prod(x.shape.slice(last + 1));
  const keep = attrs['keepDims'] === true;
  const outShape = keep ? x.shape.map((d, i) => (i >= first && i <= last ? 1 : d)) : x.shape.filter((_, i) => i < first || i > last);
  const b = args.backend as unknown as WasmBackendLike;
  const [out] = outputs(b, [outShape]) as [TensorInfo];
  const cached = biasGrad;
  biasGrad = undefined;
  if (A === 1 && cached !== undefined && cached.dataId === x.dataId && cached.db.length === C) f32(b, out).set(cached.db);
  else addon.sumMiddle(f32(b, x), f32(b, out), Int32Array.from([A, R, C]));
  return out;
}

/**
 * [A, R, C] when `small` broadcasts against `big` as small[a, c] over big[a, r, c]
 * (R = 1: equal shapes), else undefined.
 */
export function broadcastARC(big: readonly number[], small: readonly number[]): [number, number, number] | undefined {
  const k = big.length;
  if (small.length > k) return undefined;
  const sm = [...new Array<number>(k - small.length).fill(1), ...small];
  let A = 1, R = 1, C = 1;
  let phase: 'lead' | 'bcast' | 'tail' = 'lead';
  for (let i = 0; i < k; i++) {
    const B = big[i] as number, d = sm[i] as number;
    if (B === 1) {
      if (d !== 1) return undefined;
      continue;
    }
    if (d === B) {
      if (phase === 'bcast') phase = 'tail';
      if (phase === 'lead') A *= B; else C *= B;
    } else if (d === 1) {
      if (phase === 'tail') return undefined;
      phase = 'bcast';
      R *= B;
    } else {
      return undefined;
    }
  }
  return phase === 'lead' ? [A, 1, 1] : [A, R, C];
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

function add(args: KernelArgs): TensorInfo | TensorInfo[] {
  const a = input(args, 'a'), bIn = input(args, 'b');
  if (!isF32(a, bIn)) return wasmKernel('Add', args);
  const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, bIn.shape);
  // Addition commutes: the full-shape operand goes first.
  const [big, small] = sameShape(a.shape, outShape) ? [a, bIn] : sameShape(bIn.shape, outShape) ? [bIn, a] : [undefined, undefined];
  const arc = big !== undefined && small !== undefined ? broadcastARC(outShape, small.shape) : undefined;
  if (big === undefined || small === undefined || arc === undefined || prod(outShape) === 0) return wasmKernel('Add', args);
  const b = args.backend as unknown as WasmBackendLike;
  const [out] = outputs(b, [outShape]) as [TensorInfo];
  addon.addBroadcast(f32(b, big), f32(b, small), f32(b, out), Int32Array.from(arc));
  return out;
}

/** The one axis along which `size` differs from `shape` (all others full), or -1 when it is a full copy; undefined if several. */
function singleAxis(shape: readonly number[], begin: readonly number[], size: readonly number[]): number | undefined {
  let axis = -1;
  for (let i = 0; i < shape.length; i++) {
    if ((begin[i] as number) === 0 && (size[i] as number) === (shape[i] as number)) continue;
    if (axis !== -1) return undefined;
    axis = i;
  }
  return axis;
}

/** Copy `part` (begin..begin+len along `axis`) between a tensor of shape `shape` and a block of that slice. */
function blockDims(shape: readonly number[], axis: number, begin: number, len: number, toSlice: boolean): Int32Array {
  const outer = prod(shape.slice(0, axis) as number[]), inner = prod(shape.slice(axis + 1) as number[]);
  const full = (shape[axis] as number) * inner, part = len * inner;
  return toSlice
    ? Int32Array.from([outer, full, begin * inner, part, 0, part])
    : Int32Array.from([outer, part, 0, full, begin * inner, part]);
}

function slice(args: KernelArgs): TensorInfo | TensorInfo[] {
  const x = input(args, 'x');
  const attrs = args.attrs ?? {};
  if (x.dtype !== 'float32' || x.shape.length < 1) return wasmKernel('Slice', args);
  const [begin, size] = tf.slice_util.parseSliceParams(
    { shape: x.shape } as unknown as tf.TensorInfo & tf.Tensor, attrs['begin'] as number | number[], attrs['size'] as number | number[]);
  if (begin === undefined || size === undefined) throw new Error('Slice: could not parse begin/size');
  const axis = singleAxis(x.shape, begin, size);
  if (axis === undefined || axis === -1 || prod(size) === 0) return wasmKernel('Slice', args);
  const b = args.backend as unknown as WasmBackendLike;
  const [out] = outputs(b, [size]) as [TensorInfo];
  addon.copyBlocks(f32(b, x), f32(b, out), blockDims(x.shape, axis, begin[axis] as number, size[axis] as number, true));
  return out;
}

function splitV(args: KernelArgs): TensorInfo | TensorInfo[] {
  const x = input(args, 'x');
  const attrs = args.attrs ?? {};
  if (x.dtype !== 'float32' || prod(x.shape) === 0) return wasmKernel('SplitV', args);
  const axis = tf.util.parseAxisParam(attrs['axis'] as number, x.shape)[0] as number;
  const sizes = tf.backend_util.prepareSplitSize({ shape: x.shape } as unknown as tf.Tensor, attrs['numOrSizeSplits'] as number | number[], axis);
  const b = args.backend as unknown as WasmBackendLike;
  const outs = outputs(b, sizes.map((sz) => x.shape.map((d, i) => (i === axis ? sz : d))));
  let at = 0;
  sizes.forEach((sz, i) => {
    if (sz > 0) addon.copyBlocks(f32(b, x), f32(b, outs[i] as TensorInfo), blockDims(x.shape, axis, at, sz, true));
    at += sz;
  });
  return outs;
}

function concat(args: KernelArgs): TensorInfo | TensorInfo[] {
  const ins = Object.values(args.inputs).filter((t): t is TensorInfo => t !== undefined);
  const attrs = args.attrs ?? {};
  const first = ins[0];
  if (first === undefined || !isF32(...ins)) return wasmKernel('Concat', args);
  const axis = tf.util.parseAxisParam(attrs['axis'] as number, first.shape)[0] as number;
  const outShape = tf.backend_util.computeOutShape(ins.map((t) => t.shape), axis);
  if (ins.some((t) => t.shape.length !== outShape.length || t.shape.some((d, i) => i !== axis && d !== outShape[i]))) return wasmKernel('Concat', args);
  const b = args.backend as unknown as WasmBackendLike;
  const [out] = outputs(b, [outShape]) as [TensorInfo];
  let at = 0;
  for (const t of ins) {
    const len = t.shape[axis] as number;
    if (len > 0 && prod(t.shape) > 0) addon.copyBlocks(f32(b, t), f32(b, out), blockDims(outShape, axis, at, len, false));
    at += len;
  }
  return out;
}

function gnDims(x: TensorInfo, groups: number): Int32Array {
  const [N, H, W, C] = dims4(x.shape);
  if (!Number.isInteger(groups) || groups < 1 || C % groups !== 0) throw new Error(`group norm: ${C} channels not divisible into ${groups} groups`);
  return Int32Array.from([N, H * W, C, groups]);
}

function groupNorm(args: KernelArgs): TensorInfo[] {
  const x = input(args, 'x'), gamma = input(args, 'gamma'), beta = input(args, 'beta');
  const attrs = args.attrs ?? {};
  const groups = attrs['groups'] as number;
  const dims = gnDims(x, groups);
  const b = args.backend as unknown as WasmBackendLike;
  const [y, stats] = outputs(b, [x.shape, [dims[0] as number, groups, 2]]) as [TensorInfo, TensorInfo];
  addon.groupNormForward(f32(b, x), f32(b, gamma), f32(b, beta), f32(b, y), f32(b, stats), dims,
    attrs['silu'] === true, (attrs['eps'] as number | undefined) ?? GROUP_NORM_EPS);
  return [y, stats];
}

function groupNormGrad(args: KernelArgs): TensorInfo[] {
  const dy = input(args, 'dy'), x = input(args, 'x'), gamma = input(args, 'gamma'), beta = input(args, 'beta'), stats = input(args, 'stats');
  const attrs = args.attrs ?? {};
  const dims = gnDims(x, attrs['groups'] as number);
  const C = dims[2] as number;
  const b = args.backend as unknown as WasmBackendLike;
  const [dx, dg, db] = outputs(b, [x.shape, [C], [C]]) as [TensorInfo, TensorInfo, TensorInfo];
  addon.groupNormBackward(f32(b, dy), f32(b, x), f32(b, gamma), f32(b, beta), f32(b, stats), f32(b, dx), f32(b, dg), f32(b, db),
    dims, attrs['silu'] === true);
  return [dx, dg, db];
}

/** The kernels the addon runs (the rest of the 'native' backend's kernels are the wasm ones). */
export const NATIVE_KERNELS: ReadonlyArray<readonly [string, (args: KernelArgs) => TensorInfo | TensorInfo[]]> = [
  ['Conv2D', conv2D],
  ['FusedConv2D', fusedConv2D],
  ['Conv2DBackpropInput', conv2DBackpropInput],
  ['Conv2DBackpropFilter', conv2DBackpropFilter],
  ['BatchMatMul', batchMatMul],
  ['Sum', sum],
  ['Add', add],
  ['Slice', slice],
  ['SplitV', splitV],
  ['Concat', concat],
  [GROUP_NORM_KERNEL, groupNorm],
  [GROUP_NORM_GRAD_KERNEL, groupNormGrad],
];

let registered = false;

/**
 * Register the 'native' backend: the (initialised) wasm backend's instance under
 * a second name, every wasm kernel copied to it, the NATIVE_KERNELS on top.
 * Call after the wasm backend and our wasm and fused kernels are registered.
 */
export function registerNativeBackend(wasmBackend: tf.KernelBackend): void {
  if (registered) return;
  addon = addonOrThrow();
  for (const k of tf.getKernelsForBackend('wasm')) {
    fallback.set(k.kernelName, k.kernelFunc);
    if (tf.getKernel(k.kernelName, NATIVE_BACKEND) === undefined) tf.registerKernel({ ...k, backendName: NATIVE_BACKEND });
  }
  for (const [name, fn] of NATIVE_KERNELS) {
    if (tf.getKernel(name, NATIVE_BACKEND) !== undefined) tf.unregisterKernel(name, NATIVE_BACKEND);
    tf.registerKernel({ kernelName: name, backendName: NATIVE_BACKEND, kernelFunc: fn as tf.KernelFunc });
  }
  tf.registerBackend(NATIVE_BACKEND, () => wasmBackend, 1);
  registered = true;
}

