/**
 * Kernels the tfjs 4.22 wasm backend lacks or runs slowly, built from kernels it
 * has (XNNPACK convolutions and matmuls, transposes) plus small JS loops on the
 * wasm heap. They call the backend's kernel functions directly on TensorInfos
 * (no tfjs ops, so no engine bookkeeping and no tidy interplay) and free every
 * intermediate with `backend.disposeData`.
 *
 * - Conv2DBackpropFilter (missing): dW is a forward convolution over swapped
 *   axes: input x as [Cin,H,W,N] (batch=Cin, channels=N), dy as a filter
 *   [OH,OW,N,Cout], dilation = the forward stride, then slice + transpose.
 * - Conv2DBackpropInput (present, ~10x slower than forward conv): replaced by a
 *   forward convolution of dy (zero-dilated for stride > 1) with the spatially
 *   flipped, channel-swapped filter.
 * - BatchMatMul with transposeA/B (falls to a scalar loop in the wasm binary):
 *   explicit transpose(s), then the fast non-transposed path; batched products
 *   (attention) as a loop of batch-1 products.
 * - Identity and same-dtype Cast (copied the data; tfjs clones every tensor it
 *   saves for backprop, so this doubled memory traffic): share the data.
 * - Sum over a run of leading or middle axes (bias gradients, broadcast-add
 *   gradients): one pass, no transpose.
 * - Slice/SplitV (strided slices allocated one subarray per innermost run):
 *   plain loops; this is the gradient of every channel concat.
 */
import * as tf from './tf.js';
import { fusedOpsEnabled } from './fused.js';

type TensorInfo = tf.TensorInfo;

/** The slice of BackendWasm these kernels use. */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
}

export type KernelArgs = Parameters<tf.KernelFunc>[0];

let registered = false;
let origConvInput: tf.KernelFunc | undefined;
let origBatchMatMul: tf.KernelFunc | undefined;

function kernel(name: string): tf.KernelFunc {
  const k = tf.getKernel(name, 'wasm');
  if (k === undefined) throw new Error(`wasm kernel ${name} is not registered`);
  return k.kernelFunc;
}

export function one(r: TensorInfo | TensorInfo[]): TensorInfo {
  if (Array.isArray(r)) {
    const first = r[0];
    if (r.length !== 1 || first === undefined) throw new Error('expected one output');
    return first;
  }
  return r;
}

function run(name: string, backend: WasmBackendLike, inputs: Record<string, TensorInfo>, attrs: tf.NamedAttrMap): TensorInfo {
  return one(kernel(name)({ inputs, backend: backend as unknown as tf.KernelBackend, attrs }));
}

export function f32(backend: WasmBackendLike, t: TensorInfo): Float32Array {
  const a = backend.typedArrayFromHeap(t);
  if (!(a instanceof Float32Array)) throw new Error('expected float32 data');
  return a;
}

export function dims4(shape: number[]): [number, number, number, number] {
  const [a, b, c, d] = shape;
  if (shape.length !== 4 || a === undefined || b === undefined || c === undefined || d === undefined) {
    throw new Error(`expected a rank-4 shape, got [${shape.join(',')}]`);
  }
  return [a, b, c, d];
}

type PadAttr = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;

/** Conv2DInfo of a conv kernel's attrs (NHWC only; the gradient kernels carry no dilations: 1). */
export function convInfo(xShape: number[], filterShape: number[], attrs: tf.NamedAttrMap): tf.backend_util.Conv2DInfo {
  const strides = attrs['strides'] as [number, number] | number;
  const dilations = (attrs['dilations'] as [number, number] | number | undefined) ?? 1;
  const pad = attrs['pad'] as PadAttr;
  const rounding = attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined;
  const dataFormat = (attrs['dataFormat'] as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC';
  if (dataFormat !== 'NHWC') throw new Error(`our conv kernels support NHWC only, got ${dataFormat}`);
  return tf.backend_util.computeConv2DInfo(
    dims4(xShape), dims4(filterShape), strides, dilations, pad, rounding, false, 'channelsLast');
}

/** Most floats the im2col buffer of conv2DBackpropFilterGemm may hold (it goes in chunks of images beyond). */
let IM2COL_MAX_FLOATS = 8 << 20;

/** Set the im2col chunk limit (tests use a small one to exercise chunking); returns the previous limit. */
export function setIm2colMaxFloats(n: number): number {
  const prev = IM2COL_MAX_FLOATS;
  IM2COL_MAX_FLOATS = Math.max(1, Math.floor(n));
  return prev;
}

/**
 * dW for a stride-1 y = conv2d(x, W) as one matrix product per chunk of images:
 *
 *   dW [fh*fw*Cin, Cout] = A [fh*fw*Cin, P] x dyP [P, Cout],  P = N*Hp*Wp,
 *
 * over a grid of Hp = H+max(top,bottom) rows and Wp = W+max(left,right) columns
 * per image: x at offset (top,left), zeros around it, where the bottom (right)
 * padding of one image (row) is the top (left) padding of the next. dyP is dy
 * placed at the top-left OHxOW of each Hp x Wp image, zeros elsewhere. With xp =
 * that padded x in [Cin, (N+1)*Hp*Wp] layout (one JS pass; the extra zero image
 * keeps every window in range), row (i,j,ci) of A is the
 * contiguous run xp[ci, i*Wp+j .. i*Wp+j+P): x[n, oh+i-top, ow+j-left] sits at
 * u + i*Wp + j for u = (n*Hp + oh)*Wp + ow, reads past a row or an image land in
 * zeros, so dW[i,j,ci,co] = sum over u of xp[ci, u + i*Wp + j] * dyP[u, co]. So A is
 * fh*fw*Cin memcpys (no per-element JS), XNNPACK packs dyP once as the matmul's
 * weights, and the product is already in the [fh,fw,Cin,Cout] layout. A 1x1
 * unpadded conv needs neither the pad nor the copies: A = x^T, dyP = dy.
 */
function conv2DBackpropFilterGemm(backend: WasmBackendLike, kb: tf.KernelBackend, x: TensorInfo, dy: TensorInfo,
  info: tf.backend_util.Conv2DInfo, filterShape: number[]): TensorInfo | undefined {
  if (info.strideHeight !== 1 || info.strideWidth !== 1 || info.dilationHeight !== 1 || info.dilationWidth !== 1 ||
    x.dtype !== 'float32' || dy.dtype !== 'float32') return undefined;
  const orig = origBatchMatMul;
  if (orig === undefined) throw new Error('Conv2DBackpropFilter: BatchMatMul kernel missing');
  const [N, H, W, Cin] = dims4(x.shape);
  const [, OH, OW, Cout] = dims4(dy.shape);
  const fh = info.filterHeight, fw = info.filterWidth;
  const top = info.padInfo.top, left = info.padInfo.left;
  const bottom = OH + fh - 1 - H - top, right = OW + fw - 1 - W - left;
  if (top < 0 || left < 0 || bottom < 0 || right < 0) return undefined;
  // Grid period per image: the bottom (right) padding of one image (row) is the
  // top (left) padding of the next, so only max(top, bottom) rows and
  // max(left, right) columns of zeros are paid for.
  const Hp = H + Math.max(top, bottom), Wp = W + Math.max(left, right);
  if (OH > Hp || OW > Wp) return undefined;
  const K = fh * fw * Cin;
  const img = Hp * Wp;
  const matmul = (a: TensorInfo, b: TensorInfo): TensorInfo =>
    one(orig({ inputs: { a, b }, backend: kb, attrs: { transposeA: false, transposeB: false } }));
  const plain = fh === 1 && fw === 1 && top === 0 && left === 0 && bottom === 0 && right === 0;
  // xp [Cin, L]: x transposed to channel-major and padded (plus one zero image at the
  // end), in one JS pass that reads each image row (W*Cin floats) once and writes
  // Cin contiguous runs of W: cache-friendly, unlike the wasm Transpose + PadV2
  // (about 10x slower than this on 2 MB activations).
  const L = plain ? N * H * W : (N + 1) * img;
  const xp = backend.makeOutput([Cin, L], 'float32');
  {
    const src = f32(backend, x);
    const dst = f32(backend, xp);
    if (!plain) dst.fill(0);
    for (let n = 0; n < N; n++) {
      for (let r = 0; r < H; r++) {
        const s0 = (n * H + r) * W * Cin;
        const d0 = plain ? (n * H + r) * W : n * img + (r + top) * Wp + left;
        for (let ci = 0; ci < Cin; ci++) {
          const d = ci * L + d0;
          for (let q = 0; q < W; q++) dst[d + q] = src[s0 + q * Cin + ci] as number;
        }
      }
    }
  }
  if (plain) {
    const mm = matmul(xp, { dataId: dy.dataId, shape: [N * OH * OW, Cout], dtype: 'float32' });
    backend.disposeData(xp.dataId);
    return { dataId: mm.dataId, shape: [...filterShape], dtype: 'float32' };
  }
  const chunk = Math.max(1, Math.min(N, Math.floor(IM2COL_MAX_FLOATS / (K * img))));
  let acc: Float64Array | undefined;
  let result: TensorInfo | undefined;
  for (let n0 = 0; n0 < N; n0 += chunk) {
    const nc = Math.min(chunk, N - n0);
    const P = nc * img;
    const a = backend.makeOutput([K, P], 'float32');
    const b = backend.makeOutput([P, Cout], 'float32');
    {
      const src = f32(backend, xp);
      const dst = f32(backend, a);
      for (let i = 0; i < fh; i++) {
        for (let j = 0; j < fw; j++) {
          for (let ci = 0; ci < Cin; ci++) {
            const s0 = ci * L + n0 * img + i * Wp + j;
            dst.set(src.subarray(s0, s0 + P), ((i * fw + j) * Cin + ci) * P);
          }
        }
      }
      const dyv = f32(backend, dy);
      const dp = f32(backend, b);
      dp.fill(0);
      const rowLen = OW * Cout;
      for (let n = 0; n < nc; n++) {
        for (let oh = 0; oh < OH; oh++) {
          const s = (((n0 + n) * OH + oh) * OW) * Cout;
          dp.set(dyv.subarray(s, s + rowLen), (n * Hp + oh) * Wp * Cout);
        }
      }
    }
    const mm = matmul(a, b);
    backend.disposeData(a.dataId);
    backend.disposeData(b.dataId);
    if (nc === N) { result = mm; break; }
    const part = f32(backend, mm);
    if (acc === undefined) acc = new Float64Array(part.length);
    for (let k = 0; k < part.length; k++) acc[k] = (acc[k] as number) + (part[k] as number);
    backend.disposeData(mm.dataId);
  }
  backend.disposeData(xp.dataId);
  if (result !== undefined) return { dataId: result.dataId, shape: [...filterShape], dtype: 'float32' };
  const out = backend.makeOutput([...filterShape], 'float32');
  f32(backend, out).set(acc ?? new Float64Array(K * Cout));
  return out;
}

/**
 * dW for y = conv2d(x, W). Stride 1 with the 'dwgemm' fast path on (fused.ts
 * switch): one matmul over a memcpy'd im2col (conv2DBackpropFilterGemm).
 * Otherwise, as before: a forward conv of x^T (batch<->channels) with dy^T as
 * the filter, then slice + transpose.
 */
function conv2DBackpropFilter(args: KernelArgs): TensorInfo {
  const backend = args.backend as unknown as WasmBackendLike;
  const x = args.inputs['x'];
  const dy = args.inputs['dy'];
  if (x === undefined || dy === undefined) throw new Error('Conv2DBackpropFilter: missing inputs');
  const attrs = args.attrs ?? {};
  const filterShape = attrs['filterShape'] as number[];
  const info = convInfo(x.shape, filterShape, attrs);
  if (fusedOpsEnabled('dwgemm')) {
    const r = conv2DBackpropFilterGemm(backend, args.backend as tf.KernelBackend, x, dy, info, filterShape);
    if (r !== undefined) return r;
  }
  const [, H, W] = dims4(x.shape);
  const [, OH, OW] = dims4(dy.shape);
  const fh = info.filterHeight;
  const fw = info.filterWidth;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Output row i reads input rows i + oh*sh - top for oh < OH; pad the far side
  // only as far as the last needed row.
  const bottom = Math.max(0, fh - 1 + (OH - 1) * sh - top - (H - 1));
  const right = Math.max(0, fw - 1 + (OW - 1) * sw - left - (W - 1));

  const xT = run('Transpose', backend, { x }, { perm: [3, 1, 2, 0] }); // [Cin,H,W,N]
  const dyT = run('Transpose', backend, { x: dy }, { perm: [1, 2, 0, 3] }); // [OH,OW,N,Cout]
  const conv = run('Conv2D', backend, { x: xT, filter: dyT }, {
    strides: [1, 1],
    pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
    dataFormat: 'NHWC',
    dilations: [sh, sw],
  }); // [Cin, >=fh, >=fw, Cout]
  backend.disposeData(xT.dataId);
  backend.disposeData(dyT.dataId);
  let cut = conv;
  const [cin, ch, cw, cout] = dims4(conv.shape);
  if (ch !== fh || cw !== fw) {
    cut = run('Slice', backend, { x: conv }, { begin: [0, 0, 0, 0], size: [cin, fh, fw, cout] });
    backend.disposeData(conv.dataId);
  }
  const out = run('Transpose', backend, { x: cut }, { perm: [1, 2, 0, 3] }); // [fh,fw,Cin,Cout]
  backend.disposeData(cut.dataId);
  return out;
}

/** dx for y = conv2d(x, W): a forward conv of (zero-dilated) dy with the flipped, channel-swapped W. */
function conv2DBackpropInput(args: KernelArgs): TensorInfo {
  const backend = args.backend as unknown as WasmBackendLike;
  const dy = args.inputs['dy'];
  const filter = args.inputs['filter'];
  if (dy === undefined || filter === undefined) throw new Error('Conv2DBackpropInput: missing inputs');
  const attrs = args.attrs ?? {};
  const inputShape = attrs['inputShape'] as number[];
  const info = convInfo(inputShape, filter.shape, attrs);
  const [N, H, W, Cin] = dims4(inputShape);
  const [, OH, OW, Cout] = dims4(dy.shape);
  const fh = info.filterHeight;
  const fw = info.filterWidth;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const padTop = fh - 1 - info.padInfo.top;
  const padLeft = fw - 1 - info.padInfo.left;
  const hd = Math.max((OH - 1) * sh + 1, Math.min(OH * sh, H + fh - 1 - padTop));
  const wd = Math.max((OW - 1) * sw + 1, Math.min(OW * sw, W + fw - 1 - padLeft));
  const padBottom = H + fh - 1 - padTop - hd;
  const padRight = W + fw - 1 - padLeft - wd;
  if (padTop < 0 || padLeft < 0 || padBottom < 0 || padRight < 0 || origConvInput === undefined) {
    if (origConvInput === undefined) throw new Error('Conv2DBackpropInput: original kernel missing');
    return one(origConvInput(args));
  }

  // Flipped filter Wf[i,j,co,ci] = W[fh-1-i, fw-1-j, ci, co].
  const wf = backend.makeOutput([fh, fw, Cout, Cin], 'float32');
  {
    const src = f32(backend, filter);
    const dst = f32(backend, wf);
    for (let i = 0; i < fh; i++) {
      for (let j = 0; j < fw; j++) {
        const s0 = ((fh - 1 - i) * fw + (fw - 1 - j)) * Cin * Cout;
        const d0 = (i * fw + j) * Cout * Cin;
        for (let ci = 0; ci < Cin; ci++) {
          const srow = s0 + ci * Cout;
          for (let co = 0; co < Cout; co++) dst[d0 + co * Cin + ci] = src[srow + co] as number;
        }
      }
    }
  }

  let dyd = dy;
  if (sh !== 1 || sw !== 1) {
    dyd = backend.makeOutput([N, hd, wd, Cout], 'float32');
    const src = f32(backend, dy);
    const dst = f32(backend, dyd);
    dst.fill(0);
    for (let n = 0; n < N; n++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const s = ((n * OH + oh) * OW + ow) * Cout;
          const d = ((n * hd + oh * sh) * wd + ow * sw) * Cout;
          dst.set(src.subarray(s, s + Cout), d);
        }
      }
    }
  }
  const out = run('Conv2D', backend, { x: dyd, filter: wf }, {
    strides: [1, 1],
    pad: [[0, 0], [padTop, padBottom], [padLeft, padRight], [0, 0]],
    dataFormat: 'NHWC',
    dilations: [1, 1],
  });
  backend.disposeData(wf.dataId);
  if (dyd !== dy) backend.disposeData(dyd.dataId);
  return out;
}

/** BatchMatMul with explicit transposes, so the wasm binary's fast path runs. */
function batchMatMul(args: KernelArgs): TensorInfo {
  const orig = origBatchMatMul;
  if (orig === undefined) throw new Error('BatchMatMul: original kernel missing');
  const attrs = args.attrs ?? {};
  const transposeA = attrs['transposeA'] === true;
  const transposeB = attrs['transposeB'] === true;
  const backend = args.backend as unknown as WasmBackendLike;
  if (!transposeA && !transposeB) {
    const a0 = args.inputs['a'], b0 = args.inputs['b'];
    if (a0 === undefined || b0 === undefined) throw new Error('BatchMatMul: missing inputs');
    return batchedNoTranspose(backend, orig, args.backend as tf.KernelBackend, a0, b0, attrs);
  }
  let a = args.inputs['a'];
  let b = args.inputs['b'];
  if (a === undefined || b === undefined) throw new Error('BatchMatMul: missing inputs');
  const swapLast = (t: TensorInfo): TensorInfo => {
    const r = t.shape.length;
    const perm = t.shape.map((_, i) => (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i));
    return run('Transpose', backend, { x: t }, { perm });
  };
  const tmp: TensorInfo[] = [];
  if (transposeA) { a = swapLast(a); tmp.push(a); }
  if (transposeB) { b = swapLast(b); tmp.push(b); }
  const out = batchedNoTranspose(backend, orig, args.backend as tf.KernelBackend, a, b, attrs);
  for (const t of tmp) backend.disposeData(t.dataId);
  return out;
}

/**
 * Non-transposed BatchMatMul. Batched products of equal batch (attention) run
 * as one batch-1 product per item: the binary's batched path is a scalar loop,
 * its batch-1 path is XNNPACK.
 */
function batchedNoTranspose(backend: WasmBackendLike, orig: tf.KernelFunc, kb: tf.KernelBackend,
  a: TensorInfo, b: TensorInfo, attrs: tf.NamedAttrMap): TensorInfo {
  const plain = { ...attrs, transposeA: false, transposeB: false };
  const ra = a.shape.length, rb = b.shape.length;
  const batchA = a.shape.slice(0, -2).reduce((p, q) => p * q, 1);
  const batchB = b.shape.slice(0, -2).reduce((p, q) => p * q, 1);
  const sameBatch = ra === rb && a.shape.slice(0, -2).every((d, i) => d === b.shape[i]);
  if (batchA <= 1 || !sameBatch || a.dtype !== 'float32' || b.dtype !== 'float32' || batchA !== batchB) {
    return one(orig({ inputs: { a, b }, backend: kb, attrs: plain }));
  }
  const M = a.shape[ra - 2] as number, K = a.shape[ra - 1] as number, N = b.shape[rb - 1] as number;
  const out = backend.makeOutput([...a.shape.slice(0, -2), M, N], 'float32');
  for (let i = 0; i < batchA; i++) {
    // Fresh buffers per item: the binary caches packed weights by the id of b.
    const ai = backend.makeOutput([M, K], 'float32');
    const bi = backend.makeOutput([K, N], 'float32');
    f32(backend, ai).set(f32(backend, a).subarray(i * M * K, (i + 1) * M * K));
    f32(backend, bi).set(f32(backend, b).subarray(i * K * N, (i + 1) * K * N));
    const oi = one(orig({ inputs: { a: ai, b: bi }, backend: kb, attrs: plain }));
    f32(backend, out).set(f32(backend, oi), i * M * N);
    backend.disposeData(oi.dataId);
    backend.disposeData(ai.dataId);
    backend.disposeData(bi.dataId);
  }
  return out;
}

let origSum: tf.KernelFunc | undefined;
/**
 * Sum over one run of adjacent axes as one pass over memory: leading axes (bias
 * gradients: [N,H,W,C] -> [C]) and middle axes (the gradient of a broadcast
 * add, [N,H,W,C] -> [N,1,1,C]). The stock kernel transposes the reduced axes to
 * the end first.
 */
function sum(args: KernelArgs): TensorInfo {
  const x = args.inputs['x'];
  if (x === undefined) throw new Error('Sum: missing input');
  if (origSum === undefined) throw new Error('Sum: original kernel missing');
  const attrs = args.attrs ?? {};
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(attrs['axis'] as number | number[], x.shape).sort((p, q) => p - q);
  const first = axes[0];
  const adjacent = first !== undefined && axes.every((ax, i) => ax === first + i);
  const last = first === undefined ? -1 : first + axes.length - 1;
  // Reductions that end on the last axis are contiguous already; the stock kernel handles those.
  if (x.dtype !== 'float32' || !adjacent || first === undefined || last >= rank - 1) return one(origSum(args));
  const prod = (a: number[]): number => a.reduce((p, q) => p * q, 1);
  const A = prod(x.shape.slice(0, first));
  const R = prod(x.shape.slice(first, last + 1));
  const C = prod(x.shape.slice(last + 1));
  const keep = attrs['keepDims'] === true;
  const outShape = keep ? x.shape.map((d, i) => (i >= first && i <= last ? 1 : d)) : x.shape.filter((_, i) => i < first || i > last);
  const backend = args.backend as unknown as WasmBackendLike;
  const out = backend.makeOutput(outShape, 'float32');
  const src = f32(backend, x);
  const dst = f32(backend, out);
  const acc = new Float64Array(C);
  for (let a = 0; a < A; a++) {
    acc.fill(0);
    const base = a * R * C;
    for (let r = 0; r < R; r++) {
      const o = base + r * C;
      for (let c = 0; c < C; c++) acc[c] = (acc[c] as number) + (src[o + c] as number);
    }
    dst.set(acc, a * C);
  }
  return out;
}

interface RefCounting { incRef(dataId: tf.DataId): void }

/** Identity without a copy (tfjs tensors are immutable): share the data, bump its refcount. */
function shareData(args: KernelArgs): TensorInfo {
  const x = args.inputs['x'];
  if (x === undefined) throw new Error('Identity: missing input');
  (args.backend as unknown as RefCounting).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

let origCast: tf.KernelFunc | undefined;
/** Cast to the same dtype shares the data (the stock kernel copies). */
function cast(args: KernelArgs): TensorInfo {
  const x = args.inputs['x'];
  if (x !== undefined && args.attrs?.['dtype'] === x.dtype) return shareData(args);
  if (origCast === undefined) throw new Error('Cast: original kernel missing');
  return one(origCast(args));
}

let origSlice: tf.KernelFunc | undefined;
/**
 * Slice for float32 without per-row subarray allocations (the stock kernel's
 * strided path creates one subarray per innermost run, ~50x slower for narrow
 * channel slices as in the gradient of a channel concat).
 */
function slice(args: KernelArgs): TensorInfo {
  const x = args.inputs['x'];
  if (x === undefined) throw new Error('Slice: missing input');
  if (origSlice === undefined) throw new Error('Slice: original kernel missing');
  const attrs = args.attrs ?? {};
  const rank = x.shape.length;
  if (x.dtype !== 'float32' || rank < 2) return one(origSlice(args));
  const parsed = tf.slice_util.parseSliceParams(
    { shape: x.shape } as unknown as tf.TensorInfo & tf.Tensor, attrs['begin'] as number | number[], attrs['size'] as number | number[]);
  const [begin, size] = parsed;
  if (begin === undefined || size === undefined) throw new Error('Slice: could not parse begin/size');
  if (tf.slice_util.isSliceContinous(x.shape, begin, size)) return one(origSlice(args));
  const backend = args.backend as unknown as WasmBackendLike;
  const out = backend.makeOutput(size, 'float32');
  const src = f32(backend, x);
  const dst = f32(backend, out);
  const strides = tf.util.computeStrides(x.shape);
  const inner = size[rank - 1] as number;
  const innerBegin = begin[rank - 1] as number;
  const rows = size.slice(0, rank - 1).reduce((a, b) => a * b, 1);
  const idx = new Array<number>(rank - 1).fill(0);
  let o = 0;
  for (let r = 0; r < rows; r++) {
    let base = innerBegin;
    for (let d = 0; d < rank - 1; d++) base += ((begin[d] as number) + (idx[d] as number)) * (strides[d] as number);
    for (let k = 0; k < inner; k++) dst[o++] = src[base + k] as number;
    for (let d = rank - 2; d >= 0; d--) {
      idx[d] = (idx[d] as number) + 1;
      if ((idx[d] as number) < (size[d] as number)) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** SplitV via our Slice. */
function splitV(args: KernelArgs): TensorInfo[] {
  const x = args.inputs['x'];
  if (x === undefined) throw new Error('SplitV: missing input');
  const attrs = args.attrs ?? {};
  const axis = tf.util.parseAxisParam(attrs['axis'] as number, x.shape)[0] as number;
  const sizes = tf.backend_util.prepareSplitSize({ shape: x.shape } as unknown as tf.Tensor, attrs['numOrSizeSplits'] as number | number[], axis);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const sz = [...x.shape];
    sz[axis] = s;
    const r = slice({ inputs: { x }, backend: args.backend, attrs: { begin: [...begin], size: sz } });
    begin[axis] = (begin[axis] as number) + s;
    return r;
  });
}

function replace(name: string, kernelFunc: tf.KernelFunc): tf.KernelFunc | undefined {
  const existing = tf.getKernel(name, 'wasm');
  if (existing !== undefined) tf.unregisterKernel(name, 'wasm');
  // Keep the original's setup/dispose hooks: they bind its wasm exports, and the
  // original kernel function stays reachable through our replacement.
  const config: tf.KernelConfig = { kernelName: name, backendName: 'wasm', kernelFunc };
  if (existing?.setupFunc !== undefined) config.setupFunc = existing.setupFunc;
  if (existing?.disposeFunc !== undefined) config.disposeFunc = existing.disposeFunc;
  tf.registerKernel(config);
  return existing?.kernelFunc;
}

/**
 * Register our wasm kernels (idempotent). Must run after
 * @tensorflow/tfjs-backend-wasm is imported (it registers its own kernels on import).
 */
export function registerWasmKernels(): void {
  if (registered) return;
  replace('Conv2DBackpropFilter', conv2DBackpropFilter as tf.KernelFunc);
  origConvInput = replace('Conv2DBackpropInput', conv2DBackpropInput as tf.KernelFunc);
  origBatchMatMul = replace('BatchMatMul', batchMatMul as tf.KernelFunc);
  origSum = replace('Sum', sum as tf.KernelFunc);
  replace('Identity', shareData as tf.KernelFunc);
  origCast = replace('Cast', cast as tf.KernelFunc);
  origSlice = replace('Slice', slice as tf.KernelFunc);
  replace('SplitV', splitV as unknown as tf.KernelFunc);
  registered = true;
}

/** Names of the kernels `registerWasmKernels` adds or replaces on the wasm backend. */
export const OUR_WASM_KERNELS: readonly string[] = [
  'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'BatchMatMul', 'Identity', 'Cast', 'Slice', 'SplitV', 'Sum'];
