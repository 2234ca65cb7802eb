import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import { OUR_WASM_KERNELS } from '../../src/engine/kernels.js';
import type { BackendName } from '../../src/engine/backend.js';
import { maxRelErr, TRAIN_BACKENDS } from './helpers.js';

type Pad = 'same' | 'valid';

/** Deterministic pseudo-random floats in [-1, 1). */
function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

interface Case { n: number; h: number; w: number; cin: number; cout: number; k: number; stride: number; pad: Pad }

const CASES: Case[] = [
  { n: 2, h: 6, w: 5, cin: 1, cout: 3, k: 3, stride: 1, pad: 'same' },
  { n: 3, h: 7, w: 6, cin: 3, cout: 4, k: 3, stride: 1, pad: 'valid' },
  { n: 2, h: 8, w: 8, cin: 5, cout: 2, k: 3, stride: 2, pad: 'same' },
  { n: 2, h: 7, w: 7, cin: 4, cout: 6, k: 3, stride: 2, pad: 'same' },
  { n: 1, h: 7, w: 6, cin: 2, cout: 3, k: 3, stride: 2, pad: 'valid' },
  { n: 2, h: 5, w: 5, cin: 6, cout: 8, k: 1, stride: 1, pad: 'same' },
  { n: 2, h: 6, w: 6, cin: 3, cout: 5, k: 1, stride: 2, pad: 'valid' },
  { n: 4, h: 14, w: 14, cin: 16, cout: 32, k: 3, stride: 2, pad: 'same' },
];

function outSize(size: number, k: number, s: number, pad: Pad): number {
  return pad === 'same' ? Math.ceil(size / s) : Math.floor((size - k) / s) + 1;
}
function padBefore(size: number, k: number, s: number, pad: Pad): number {
  if (pad === 'valid') return 0;
  const o = Math.ceil(size / s);
  return Math.floor(Math.max((o - 1) * s + k - size, 0) / 2);
}

/** Naive float64 conv2d, NHWC x [n,h,w,cin], W [k,k,cin,cout]. */
function convRef(c: Case, x: Float64Array | Float32Array, wt: Float64Array | Float32Array): Float64Array {
  const oh = outSize(c.h, c.k, c.stride, c.pad), ow = outSize(c.w, c.k, c.stride, c.pad);
  const pt = padBefore(c.h, c.k, c.stride, c.pad), pl = padBefore(c.w, c.k, c.stride, c.pad);
  const y = new Float64Array(c.n * oh * ow * c.cout);
  for (let n = 0; n < c.n; n++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) for (let co = 0; co < c.cout; co++) {
    let acc = 0;
    for (let di = 0; di < c.k; di++) for (let dj = 0; dj < c.k; dj++) {
      const r = i * c.stride + di - pt, q = j * c.stride + dj - pl;
      if (r < 0 || r >= c.h || q < 0 || q >= c.w) continue;
      for (let ci = 0; ci < c.cin; ci++) {
        acc += (x[((n * c.h + r) * c.w + q) * c.cin + ci] as number) * (wt[((di * c.k + dj) * c.cin + ci) * c.cout + co] as number);
      }
    }
    y[((n * oh + i) * ow + j) * c.cout + co] = acc;
  }
  return y;
}

function dot(a: Float64Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

interface Grads { dw: Float32Array; dx: Float32Array }

function kernelGrads(c: Case, x: Float32Array, wt: Float32Array, dy: Float32Array): Grads {
  const oh = outSize(c.h, c.k, c.stride, c.pad), ow = outSize(c.w, c.k, c.stride, c.pad);
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, [c.n, c.h, c.w, c.cin]);
    const wtt = tf.tensor4d(wt, [c.k, c.k, c.cin, c.cout]);
    const dyt = tf.tensor4d(dy, [c.n, oh, ow, c.cout]);
    const attrs = { strides: [c.stride, c.stride], pad: c.pad, dataFormat: 'NHWC' };
    const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x: xt, dy: dyt }, { ...attrs, filterShape: [c.k, c.k, c.cin, c.cout] }) as tf.Tensor;
    const dx = tf.engine().runKernel('Conv2DBackpropInput', { dy: dyt, filter: wtt }, { ...attrs, inputShape: [c.n, c.h, c.w, c.cin] }) as tf.Tensor;
    return { dw: dw.dataSync() as Float32Array, dx: dx.dataSync() as Float32Array };
  });
}


before(async () => {
  await initEngine({ backend: 'wasm' });
});

test('our kernels are registered on the wasm backend', () => {
  for (const k of OUR_WASM_KERNELS) assert.ok(tf.getKernel(k, 'wasm') !== undefined, k);
});

/** Run `f` on `backend` and on cpu (the reference); leaves `backend` selected. */
async function onBoth<T>(backend: BackendName, f: () => T): Promise<{ ours: T; ref: T }> {
  await initEngine({ backend });
  assert.equal(tf.getBackend(), backend);
  const ours = f();
  await tf.setBackend('cpu');
  const ref = f();
  await initEngine({ backend });
  return { ours, ref };
}

for (const backend of TRAIN_BACKENDS) for (const c of CASES) {
  const label = `n${c.n} ${c.h}x${c.w} ${c.cin}->${c.cout} k${c.k} s${c.stride} ${c.pad}`;
  test(`${backend}: conv2d backprop filter/input match cpu and finite differences: ${label}`, async () => {
    const oh = outSize(c.h, c.k, c.stride, c.pad), ow = outSize(c.w, c.k, c.stride, c.pad);
    const x = rand(c.n * c.h * c.w * c.cin, 11 + c.h);
    const wt = rand(c.k * c.k * c.cin * c.cout, 23 + c.cin);
    const dy = rand(c.n * oh * ow * c.cout, 37 + c.cout);

    const { ours, ref } = await onBoth(backend, () => kernelGrads(c, x, wt, dy));

    assert.ok(maxRelErr(ours.dw, ref.dw) < 1e-5, `dW vs cpu: ${maxRelErr(ours.dw, ref.dw)}`);
    assert.ok(maxRelErr(ours.dx, ref.dx) < 1e-5, `dx vs cpu: ${maxRelErr(ours.dx, ref.dx)}`);

    // Central finite differences (float64) of L = <conv(x, W), dy> on a few coordinates.
    const x64 = Float64Array.from(x), w64 = Float64Array.from(wt);
    const eps = 1e-3;
    const L = (xa: Float64Array, wa: Float64Array): number => dot(convRef(c, xa, wa), dy);
    const coords = [0, Math.floor(wt.length / 3), wt.length - 1];
    for (const idx of coords) {
      const wp = w64.slice(); wp[idx] = (wp[idx] as number) + eps;
      const wm = w64.slice(); wm[idx] = (wm[idx] as number) - eps;
      const fd = (L(x64, wp) - L(x64, wm)) / (2 * eps);
      assert.ok(Math.abs(fd - (ours.dw[idx] as number)) < 1e-4 * Math.max(1, Math.abs(fd)), `dW[${idx}] fd ${fd} vs ${ours.dw[idx]}`);
    }
    for (const idx of [0, Math.floor(x.length / 2), x.length - 1]) {
      const xp = x64.slice(); xp[idx] = (xp[idx] as number) + eps;
      const xm = x64.slice(); xm[idx] = (xm[idx] as number) - eps;
      const fd = (L(xp, w64) - L(xm, w64)) / (2 * eps);
      assert.ok(Math.abs(fd - (ours.dx[idx] as number)) < 1e-4 * Math.max(1, Math.abs(fd)), `dx[${idx}] fd ${fd} vs ${ours.dx[idx]}`);
    }
  });
}

for (const backend of TRAIN_BACKENDS) test(`${backend}: conv2d autodiff matches cpu (goes through the registered kernels)`, async () => {
  const c = { n: 2, h: 8, w: 8, cin: 3, cout: 4 };
  const x = rand(c.n * c.h * c.w * c.cin, 5);
  const w = rand(9 * c.cin * c.cout, 6);
  const grads = (): Float32Array[] => tf.tidy(() => {
    const xt = tf.tensor4d(x, [c.n, c.h, c.w, c.cin]);
    const wt = tf.tensor4d(w, [3, 3, c.cin, c.cout]);
    const f = (a: tf.Tensor, b: tf.Tensor): tf.Scalar =>
      tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same').square().sum();
    return tf.grads(f)([xt, wt]).map((g) => g.dataSync() as Float32Array);
  });
  const { ours, ref } = await onBoth(backend, grads);
  for (let i = 0; i < 2; i++) assert.ok(maxRelErr(ours[i] as Float32Array, ref[i] as Float32Array) < 1e-5);
});

for (const backend of TRAIN_BACKENDS) test(`${backend}: BatchMatMul with transposes matches cpu (batch 1, batched, broadcast)`, async () => {
  const shapes: Array<{ a: number[]; b: number[]; ta: boolean; tb: boolean }> = [
    { a: [5, 7], b: [5, 3], ta: true, tb: false },
    { a: [5, 7], b: [3, 7], ta: false, tb: true },
    { a: [7, 5], b: [3, 7], ta: true, tb: true },
    { a: [4, 6, 5], b: [4, 6, 3], ta: true, tb: false },
    { a: [4, 6, 5], b: [4, 3, 5], ta: false, tb: true },
    { a: [4, 6, 5], b: [4, 5, 3], ta: false, tb: false },
    { a: [2, 3, 6, 5], b: [2, 3, 5, 7], ta: false, tb: false },
    { a: [6, 5], b: [5, 7], ta: false, tb: false },
    { a: [3, 6, 5], b: [5, 7], ta: false, tb: false },
    { a: [6, 5], b: [3, 7, 5], ta: false, tb: true },
  ];
  for (const s of shapes) {
    const a = rand(s.a.reduce((p, q) => p * q, 1), 3);
    const b = rand(s.b.reduce((p, q) => p * q, 1), 4);
    const mm = (): Float32Array => tf.tidy(() => tf.matMul(tf.tensor(a, s.a), tf.tensor(b, s.b), s.ta, s.tb).dataSync() as Float32Array);
    const { ours, ref } = await onBoth(backend, mm);
    assert.ok(maxRelErr(ours, ref) < 1e-5, JSON.stringify(s));
  }
});

for (const backend of TRAIN_BACKENDS) test(`${backend}: kernels do not leak tensors or free the caller's inputs`, async () => {
  await initEngine({ backend });
  const x = tf.tensor4d(rand(2 * 6 * 6 * 3, 1), [2, 6, 6, 3]);
  const w = tf.variable(tf.tensor4d(rand(9 * 3 * 4, 2), [3, 3, 3, 4]));
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    const g = tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same').sum())([x, w]));
    tf.dispose(g);
  }
  assert.equal(tf.memory().numTensors, before);
  assert.equal(x.isDisposed, false);
  assert.equal(x.dataSync().length, 2 * 6 * 6 * 3);
  x.dispose(); w.dispose();
});

for (const backend of TRAIN_BACKENDS) test(`${backend}: Sum, Slice, SplitV, Concat, Add, Identity and Cast overrides match cpu`, async () => {
  const x = rand(3 * 4 * 5 * 6, 9);
  const run = (): Float32Array[] => tf.tidy(() => {
    const t = tf.tensor4d(x, [3, 4, 5, 6]);
    const outs: tf.Tensor[] = [
      tf.sum(t, [0, 1, 2]), tf.sum(t, [0], true), tf.sum(t, [1, 2]), tf.sum(t, [0, 1, 2, 3]), tf.sum(t, [2, 0]),
      tf.slice(t, [0, 1, 1, 2], [3, 2, 3, 3]), tf.slice(t, [1, 0, 0, 0], [1, 4, 5, 6]),
      ...tf.split(t, [2, 4], 3), ...tf.split(t, [1, 3], 1), ...tf.split(t, [3, 0, 2], 2),
      tf.slice(t, [0, 0, 2, 0], [3, 4, 2, 6]), tf.slice(t, [0, 0, 0, 1], [3, 4, 5, 4]),
      tf.concat([t, t], 3), tf.concat([t, tf.slice(t, [0, 0, 0, 0], [3, 4, 2, 6])], 2), tf.concat([t, t, t], 0), tf.concat([t], 1),
      tf.add(t, t), tf.add(t, tf.tensor1d(x.slice(0, 6))), tf.add(tf.tensor1d(x.slice(0, 6)), t),
      tf.add(t, tf.tensor4d(x.slice(0, 18), [3, 1, 1, 6])), tf.add(t, tf.tensor4d(x.slice(0, 3), [3, 1, 1, 1])),
      tf.add(t, tf.tensor4d(x.slice(0, 20), [1, 4, 5, 1])), tf.add(tf.tensor4d(x.slice(0, 20), [1, 4, 5, 1]), tf.tensor4d(x.slice(0, 18), [3, 1, 1, 6])),
      t.clone(), tf.cast(t, 'float32'), tf.cast(t, 'int32'),
    ];
    return outs.map((o) => Float32Array.from(o.dataSync()));
  });
  const { ours, ref } = await onBoth(backend, run);
  assert.equal(ours.length, ref.length);
  ours.forEach((o, i) => assert.ok(maxRelErr(o, ref[i] as Float32Array) < 1e-6, `output ${i}`));
});

for (const backend of TRAIN_BACKENDS) test(`${backend}: gradient of a channel concat (SplitV) matches cpu`, async () => {
  const a = rand(2 * 3 * 3 * 4, 1), b = rand(2 * 3 * 3 * 5, 2), w = rand(2 * 3 * 3 * 9, 3);
  const g = (): Float32Array[] => tf.tidy(() => tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.concat([p, q], 3), tf.tensor4d(w, [2, 3, 3, 9]))))(
    [tf.tensor4d(a, [2, 3, 3, 4]), tf.tensor4d(b, [2, 3, 3, 5])]).map((t) => t.dataSync() as Float32Array));
  const { ours, ref } = await onBoth(backend, g);
  ours.forEach((o, i) => assert.ok(maxRelErr(o, ref[i] as Float32Array) < 1e-6));
});
