import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import {
  GROUP_NORM_EPS, fusedGroupNormAvailable, groupNormAct, groupNormComposite, setFusedOps,
} from '../../src/engine/fused.js';
import { defaultUNetConfig, type UNetConfig } from '../../src/model/config.js';
import { buildUNet, unetParamSpecs } from '../../src/model/unet.js';
import { mulberry32 } from '../../src/rng.js';
import { maxRelErr, NATIVE, TRAIN_BACKENDS } from './helpers.js';

function rand(n: number, seed: number, scale = 1, offset = 0): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale + offset);
}


interface GNCase { n: number; h: number; w: number; c: number; g: number; silu: boolean }
const CASES: GNCase[] = [
  { n: 2, h: 4, w: 3, c: 6, g: 3, silu: true },
  { n: 3, h: 5, w: 5, c: 8, g: 2, silu: false },
  { n: 1, h: 2, w: 2, c: 4, g: 4, silu: true },
  { n: 2, h: 8, w: 8, c: 32, g: 8, silu: true },
  { n: 2, h: 3, w: 7, c: 5, g: 1, silu: false },
];

interface GNData { x: Float32Array; gamma: Float32Array; beta: Float32Array; dy: Float32Array }
function data(c: GNCase, seed: number): GNData {
  return {
    x: rand(c.n * c.h * c.w * c.c, seed, 2, 0.5),
    gamma: rand(c.c, seed + 1, 0.5, 1),
    beta: rand(c.c, seed + 2, 0.5),
    dy: rand(c.n * c.h * c.w * c.c, seed + 3),
  };
}

/** Forward and gradients (of <out, dy>) w.r.t. x, gamma, beta. */
function run(c: GNCase, d: GNData, fused: boolean): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(d.x, [c.n, c.h, c.w, c.c]);
    const gamma = tf.tensor1d(d.gamma), beta = tf.tensor1d(d.beta);
    const dy = tf.tensor4d(d.dy, [c.n, c.h, c.w, c.c]);
    const f = (a: tf.Tensor, b: tf.Tensor, e: tf.Tensor): tf.Tensor4D => fused
      ? groupNormAct(a as tf.Tensor4D, b as tf.Tensor1D, e as tf.Tensor1D, c.g, c.silu)
      : groupNormComposite(a as tf.Tensor4D, b as tf.Tensor1D, e as tf.Tensor1D, c.g, c.silu);
    const y = f(x, gamma, beta);
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, e: tf.Tensor) => tf.sum(tf.mul(f(a, b, e), dy)))([x, gamma, beta]);
    return [y, ...grads].map((t) => Float32Array.from(t.dataSync()));
  });
}

/** Float64 reference forward: act(GN(x) * gamma + beta). */
function ref64(c: GNCase, x: Float64Array, gamma: Float64Array, beta: Float64Array): Float64Array {
  const out = new Float64Array(x.length);
  const cg = c.c / c.g, hw = c.h * c.w;
  for (let n = 0; n < c.n; n++) for (let g = 0; g < c.g; g++) {
    let s = 0;
    for (let p = 0; p < hw; p++) for (let j = 0; j < cg; j++) s += x[(n * hw + p) * c.c + g * cg + j] as number;
    const m = s / (hw * cg);
    let v = 0;
    for (let p = 0; p < hw; p++) for (let j = 0; j < cg; j++) v += ((x[(n * hw + p) * c.c + g * cg + j] as number) - m) ** 2;
    const r = 1 / Math.sqrt(v / (hw * cg) + GROUP_NORM_EPS);
    for (let p = 0; p < hw; p++) for (let j = 0; j < cg; j++) {
      const i = (n * hw + p) * c.c + g * cg + j, ch = g * cg + j;
      const y = ((x[i] as number) - m) * r * (gamma[ch] as number) + (beta[ch] as number);
      out[i] = c.silu ? y / (1 + Math.exp(-y)) : y;
    }
  }
  return out;
}

before(async () => {
  await initEngine({ backend: 'wasm' });
});
after(() => setFusedOps(undefined));

test('fused group norm is used on wasm and cpu, and can be switched off', async () => {
  await initEngine({ backend: 'wasm' });
  assert.equal(fusedGroupNormAvailable(), true);
  setFusedOps(false);
  assert.equal(fusedGroupNormAvailable(), false);
  setFusedOps(undefined);
  await tf.setBackend('cpu');
  assert.equal(fusedGroupNormAvailable(), true);
  await initEngine({ backend: 'wasm' });
});

for (const c of CASES) {
  const label = `n${c.n} ${c.h}x${c.w}x${c.c} groups ${c.g}${c.silu ? ' +silu' : ''}`;
  test(`fused group norm matches the composite ops (cpu, ${TRAIN_BACKENDS.join(', ')}) and finite differences: ${label}`, async () => {
    const d = data(c, 7 + c.c);
    await tf.setBackend('cpu');
    const comp = run(c, d, false);
    const fused: Array<[string, Float32Array[]]> = [['cpu', run(c, d, true)]];
    for (const backend of TRAIN_BACKENDS) {
      await initEngine({ backend });
      fused.push([backend, run(c, d, true)]);
    }
    await initEngine({ backend: 'wasm' });
    const names = ['y', 'dx', 'dgamma', 'dbeta'];
    for (const [which, f] of fused) {
      comp.forEach((r, i) => {
        assert.ok(maxRelErr(f[i] as Float32Array, r) < 2e-5, `${which} ${names[i]}: ${maxRelErr(f[i] as Float32Array, r)}`);
      });
    }

    // Central differences (float64) of L = <act(GN(x)), dy>.
    const x64 = Float64Array.from(d.x), g64 = Float64Array.from(d.gamma), b64 = Float64Array.from(d.beta);
    const L = (x: Float64Array, g: Float64Array, b: Float64Array): number => {
      const y = ref64(c, x, g, b);
      let s = 0;
      for (let i = 0; i < y.length; i++) s += (y[i] as number) * (d.dy[i] as number);
      return s;
    };
    const eps = 1e-4;
    const check = (which: 0 | 1 | 2, analytic: Float32Array): void => {
      const base = [x64, g64, b64][which] as Float64Array;
      for (const idx of [0, Math.floor(base.length / 2), base.length - 1]) {
        const p = base.slice(); p[idx] = (p[idx] as number) + eps;
        const m = base.slice(); m[idx] = (m[idx] as number) - eps;
        const args = (v: Float64Array): [Float64Array, Float64Array, Float64Array] =>
          which === 0 ? [v, g64, b64] : which === 1 ? [x64, v, b64] : [x64, g64, v];
        const fd = (L(...args(p)) - L(...args(m))) / (2 * eps);
        const an = analytic[idx] as number;
        assert.ok(Math.abs(fd - an) < 1e-4 * Math.max(1, Math.abs(fd)), `${names[which + 1]}[${idx}]: fd ${fd} vs ${an}`);
      }
    };
    for (const [, f] of fused.slice(1)) {
      check(0, f[1] as Float32Array);
      check(1, f[2] as Float32Array);
      check(2, f[3] as Float32Array);
    }
  });
}

test('fused group norm: no leaked tensors, inputs intact, inference records nothing', async () => {
  await initEngine({ backend: 'wasm' });
  const c = CASES[0] as GNCase;
  const d = data(c, 3);
  const x = tf.tensor4d(d.x, [c.n, c.h, c.w, c.c]);
  const gamma = tf.variable(tf.tensor1d(d.gamma)), beta = tf.variable(tf.tensor1d(d.beta));
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    const { value, grads } = tf.variableGrads(() => tf.sum(groupNormAct(x, gamma, beta, c.g, c.silu)) as tf.Scalar, [gamma, beta]);
    tf.dispose([value, ...Object.values(grads)]);
    tf.tidy(() => groupNormAct(x, gamma, beta, c.g, c.silu).dataSync());
  }
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(x.dataSync(), d.x);
  x.dispose(); gamma.dispose(); beta.dispose();
});

const TINY: UNetConfig = defaultUNetConfig({
  imageSize: 8, inChannels: 1, outChannels: 1, baseChannels: 8, channelMults: [1, 2],
  numResBlocks: 1, attentionResolutions: [4], groups: 2, dropout: 0, numClasses: 3,
});

for (const backend of TRAIN_BACKENDS) test(`tiny U-Net: fused ops (group norm + SiLU, conv bias) give the composite forward and gradients (${backend})`, async () => {
  await initEngine({ backend });
  const cfg = TINY, n = 3;
  const rnd = mulberry32(5);
  const vals = new Map<string, Float32Array>();
  for (const s of unetParamSpecs(cfg)) {
    const len = s.shape.reduce((a, b) => a * b, 1);
    const fan = s.shape.length > 1 ? s.shape.slice(0, -1).reduce((a, b) => a * b, 1) : 4;
    vals.set(s.name, Float32Array.from({ length: len }, () => (rnd() * 2 - 1) * Math.sqrt(3 / fan) + (s.name.endsWith('gamma') ? 1 : 0)));
  }
  const size = n * cfg.imageSize * cfg.imageSize;
  const xs = Float32Array.from({ length: size }, () => rnd() * 2 - 1);
  const ys = Float32Array.from({ length: size }, () => rnd() * 2 - 1);
  const go = (fused: boolean): { out: Float32Array; grads: Map<string, Float32Array> } => {
    setFusedOps(fused);
    const net = buildUNet(cfg, vals);
    try {
      let r: { out: Float32Array; grads: Map<string, Float32Array> } | undefined;
      tf.tidy(() => {
        const x = tf.tensor4d(xs, [n, 8, 8, 1]), tgt = tf.tensor4d(ys, [n, 8, 8, 1]);
        const t = tf.tensor1d([3, 500, 999]), classes = tf.tensor1d([0, 1, 3], 'int32');
        const out = Float32Array.from(net.apply(x, t, { classes }).dataSync());
        const { grads } = tf.variableGrads(
          () => tf.mean(tf.squaredDifference(net.apply(x, t, { classes, training: true }), tgt)) as tf.Scalar, [...net.params.values()]);
        const m = new Map<string, Float32Array>();
        for (const [name, v] of net.params) m.set(name, Float32Array.from((grads[v.name] as tf.Tensor).dataSync()));
        r = { out, grads: m };
      });
      assert.ok(r !== undefined);
      return r;
    } finally {
      net.dispose();
      setFusedOps(undefined);
    }
  };
  const a = go(true), b = go(false);
  assert.ok(maxRelErr(a.out, b.out) < 1e-5, `forward ${maxRelErr(a.out, b.out)}`);
  for (const [name, g] of a.grads) {
    const r = b.grads.get(name) as Float32Array;
    let scale = 1e-3, err = 0;
    for (let i = 0; i < g.length; i++) {
      scale = Math.max(scale, Math.abs(r[i] as number));
      err = Math.max(err, Math.abs((g[i] as number) - (r[i] as number)));
    }
    assert.ok(err / scale < 1e-3, `${name}: fused vs composite rel err ${err / scale}`);
  }
});

interface ConvCase { n: number; h: number; w: number; cin: number; cout: number; k: number; stride: number; pad: 'same' | 'valid' }
const CONV_CASES: ConvCase[] = [
  { n: 2, h: 6, w: 5, cin: 1, cout: 3, k: 3, stride: 1, pad: 'same' },
  { n: 3, h: 7, w: 6, cin: 3, cout: 4, k: 3, stride: 1, pad: 'valid' },
  { n: 2, h: 5, w: 5, cin: 6, cout: 8, k: 1, stride: 1, pad: 'same' },
  { n: 4, h: 9, w: 9, cin: 16, cout: 8, k: 3, stride: 1, pad: 'same' },
  { n: 2, h: 8, w: 6, cin: 4, cout: 5, k: 5, stride: 1, pad: 'same' },
  { n: 2, h: 8, w: 8, cin: 5, cout: 2, k: 3, stride: 2, pad: 'same' },
  { n: 2, h: 5, w: 7, cin: 3, cout: 4, k: 2, stride: 1, pad: 'same' }, // padding 0 before, 1 after
  { n: 3, h: 6, w: 5, cin: 2, cout: 3, k: 4, stride: 1, pad: 'same' }, // padding 1 before, 2 after
  { n: 2, h: 6, w: 6, cin: 3, cout: 2, k: 5, stride: 1, pad: 'valid' },
];

test('Conv2DBackpropFilter: the im2col-matmul path (whole and chunked) equals the previous path and cpu', async () => {
  const { setIm2colMaxFloats } = await import('../../src/engine/kernels.js');
  for (const c of CONV_CASES) {
    const oh = c.pad === 'same' ? Math.ceil(c.h / c.stride) : Math.floor((c.h - c.k) / c.stride) + 1;
    const ow = c.pad === 'same' ? Math.ceil(c.w / c.stride) : Math.floor((c.w - c.k) / c.stride) + 1;
    const x = rand(c.n * c.h * c.w * c.cin, 3 + c.cin);
    const dy = rand(c.n * oh * ow * c.cout, 5 + c.cout);
    const dw = (): Float32Array => tf.tidy(() => Float32Array.from((tf.engine().runKernel('Conv2DBackpropFilter',
      { x: tf.tensor4d(x, [c.n, c.h, c.w, c.cin]), dy: tf.tensor4d(dy, [c.n, oh, ow, c.cout]) },
      { strides: [c.stride, c.stride], pad: c.pad, dataFormat: 'NHWC', filterShape: [c.k, c.k, c.cin, c.cout] }) as tf.Tensor).dataSync()));
    await tf.setBackend('cpu');
    const ref = dw();
    await initEngine({ backend: 'wasm' });
    setFusedOps(['dwgemm']);
    const whole = dw();
    const prev = setIm2colMaxFloats(c.k * c.k * c.cin * (oh + c.k) * (ow + c.k)); // about one image per chunk
    const chunked = dw();
    setIm2colMaxFloats(prev);
    setFusedOps(false);
    const old = dw();
    setFusedOps(undefined);
    const label = JSON.stringify(c);
    assert.ok(maxRelErr(whole, ref) < 1e-5, `whole ${label}: ${maxRelErr(whole, ref)}`);
    assert.ok(maxRelErr(chunked, ref) < 1e-5, `chunked ${label}: ${maxRelErr(chunked, ref)}`);
    assert.ok(maxRelErr(old, ref) < 1e-5, `previous path ${label}: ${maxRelErr(old, ref)}`);
  }
});

test('Conv2DBackpropFilter im2col path frees its intermediates (wasm heap tensors)', async () => {
  await initEngine({ backend: 'wasm' });
  const x = tf.tensor4d(rand(2 * 6 * 6 * 3, 1), [2, 6, 6, 3]);
  const w = tf.variable(tf.tensor4d(rand(9 * 3 * 4, 2), [3, 3, 3, 4]));
  const before = tf.memory().numTensors;
  const idsBefore = tf.engine().backend.numDataIds();
  for (let i = 0; i < 3; i++) {
    const g = tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same').sum())([x, w]));
    tf.dispose(g);
  }
  assert.equal(tf.memory().numTensors, before);
  assert.equal(tf.engine().backend.numDataIds(), idsBefore);
  x.dispose(); w.dispose();
});

test('DIFFUSE_FUSED parsing: defaults, 0, all and lists; native adds convbias', async () => {
  const { parseFusedSpec, DEFAULT_FUSED_FEATURES, NATIVE_DEFAULT_FUSED_FEATURES, FUSED_FEATURES, fusedOpsEnabled } = await import('../../src/engine/fused.js');
  assert.deepEqual([...parseFusedSpec(undefined)], [...DEFAULT_FUSED_FEATURES]);
  assert.deepEqual([...parseFusedSpec('', NATIVE_DEFAULT_FUSED_FEATURES)], [...NATIVE_DEFAULT_FUSED_FEATURES]);
  assert.ok(NATIVE_DEFAULT_FUSED_FEATURES.includes('convbias') && !DEFAULT_FUSED_FEATURES.includes('convbias'));
  if (process.env['DIFFUSE_FUSED'] === undefined) {
    await initEngine({ backend: 'wasm' });
    assert.equal(fusedOpsEnabled('convbias'), false);
    if (NATIVE.ok) {
      await initEngine({ backend: 'native' });
      assert.equal(fusedOpsEnabled('convbias'), true);
      await initEngine({ backend: 'wasm' });
    }
  }
  assert.deepEqual([...parseFusedSpec('0')], []);
  assert.deepEqual([...parseFusedSpec('all')], [...FUSED_FEATURES]);
  assert.deepEqual([...parseFusedSpec('groupnorm, dwgemm')], ['groupnorm', 'dwgemm']);
  assert.throws(() => parseFusedSpec('groupnrom'), /unknown feature/);
});

for (const backend of TRAIN_BACKENDS) test(`${backend}: Sum over leading and middle axes (one-pass override) matches cpu`, async () => {
  const x = rand(3 * 4 * 5 * 6, 9);
  const cases: Array<[number[], boolean]> = [[[0, 1, 2], false], [[1, 2], true], [[1, 2], false], [[1], false], [[2], true], [[0], false], [[0, 1, 2, 3], false], [[2, 3], false], [[0, 2], false]];
  const go = (): Array<{ shape: number[]; data: Float32Array }> => tf.tidy(() => cases.map(([ax, keep]) => {
    const r = tf.sum(tf.tensor4d(x, [3, 4, 5, 6]), ax, keep);
    return { shape: r.shape, data: Float32Array.from(r.dataSync()) };
  }));
  await tf.setBackend('cpu');
  const ref = go();
  await initEngine({ backend });
  const ours = go();
  ours.forEach((o, i) => {
    const r = ref[i] as { shape: number[]; data: Float32Array };
    assert.deepEqual(o.shape, r.shape, JSON.stringify(cases[i]));
    assert.ok(maxRelErr(o.data, r.data) < 1e-6, JSON.stringify(cases[i]));
  });
});
