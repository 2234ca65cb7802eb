/**
 * One description, three interpreters: the shape/parameter interpreter (the
 * graph builder), the tfjs forward and the ONNX graph must agree on every
 * network — the U-Net in several configs, and a toy network whose new block
 * type (FiLM), written once in this file, appears in all three. The less-used
 * primitives (multi-head attention, sinusoid variants, asymmetric padding,
 * per-channel parameters against images, GroupNorm eps) are checked against
 * plain-JS references; gradients against finite differences; and the trainer
 * trains the toy network, which is not a U-Net.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import { DiffuseError } from '../../src/errors.js';
import { defaultUNetConfig, type UNetConfig } from '../../src/model/config.js';
import { unetGraph } from '../../src/model/unet-description.js';
import { BATCH, type Graph, GraphBuilder, type Value } from '../../src/net/graph.js';
import { attentionBlock, conv, dense, downsample, embed, resBlock, timestepMlp, upsample, width } from '../../src/net/blocks.js';
import { type NetworkDef, networkGraph } from '../../src/net/network.js';
import { buildTfjsNetwork, runGraph } from '../../src/net/tfjs.js';
import { exportGraphToOnnx, hwioToOihw } from '../../src/onnx/export-graph.js';
import { decodeOnnxModel } from '../../src/onnx/proto.js';
import { ortAvailable } from '../../src/onnx/runner.js';
import { createNetworkTrainer } from '../../src/train/trainer.js';
import { withTextConditioning } from '../../src/text/captions.js';
import { defaultConfig } from '../../src/config.js';
import { mulberry32 } from '../../src/rng.js';
import type { Weights } from '../../src/tensor.js';
import { maxAbs, maxAbsDiff, randomWeights, uniform } from '../onnx/helpers.js';

before(async () => {
  await initEngine({ backend: 'wasm' });
});

const hasOrt = await ortAvailable();

type Arrays = Record<string, Float32Array | Int32Array>;

/** Random inputs for a graph (n rows; integers within their range). */
function randomInputs(graph: Graph, n: number, seed: number): Arrays {
  const rnd = mulberry32(seed);
  const out: Arrays = {};
  for (const d of graph.inputs) {
    const size = n * d.shape.slice(1).reduce((a, b) => a * b, 1);
    out[d.name] = d.dtype === 'int32'
      ? Int32Array.from({ length: size }, () => Math.floor(rnd() * ((d.max ?? 1) + 1)))
      : Float32Array.from({ length: size }, () => (d.name === 't' ? Math.floor(rnd() * 1000) : rnd() * 2 - 1));
  }
  return out;
}

function tensors(graph: Graph, inputs: Arrays, n: number): Record<string, tf.Tensor> {
  return Object.fromEntries(graph.inputs.filter((d) => inputs[d.name] !== undefined)
    .map((d) => [d.name, tf.tensor(inputs[d.name]!, [n, ...d.shape.slice(1)], d.dtype)]));
}

/** tfjs forward of every output, with every node's tensor checked against the description's shape. */
function tfjsRun(graph: Graph, weights: Weights, inputs: Arrays, n: number): Record<string, Float32Array> {
  const net = buildTfjsNetwork(graph, weights, graph.name);
  try {
    return tf.tidy(() => {
      const outs = net.run(tensors(graph, inputs, n), { checkShapes: true });
      return Object.fromEntries(Object.entries(outs).map(([k, v]) => [k, Float32Array.from(v.dataSync())]));
    });
  } finally {
    net.dispose();
  }
}

/** ORT forward of an exported graph: int inputs as int64, every output by name. */
async function ortRun(graph: Graph, bytes: Uint8Array, inputs: Arrays, n: number): Promise<Record<string, Float32Array>> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, executionProviders: ['cpu'] });
  try {
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
    for (const d of graph.inputs) {
      const a = inputs[d.name]!;
      const dims = [n, ...d.shape.slice(1)];
      feeds[d.name] = a instanceof Int32Array ? new ort.Tensor('int64', BigInt64Array.from(a, (v) => BigInt(v)), dims) : new ort.Tensor('float32', a, dims);
    }
    const r = await session.run(feeds);
    return Object.fromEntries(graph.outputs.map((o) => [o.name, Float32Array.from(r[o.name]!.data as Float32Array)]));
  } finally {
    await session.release();
  }
}

function count(graph: Graph, op: string): number {
  return graph.nodes.filter((n) => n.op === op).length;
}

// ------------------------------------------------------------------ the U-Net

const text = withTextConditioning(defaultConfig({ data: { dataset: 'fashion-mnist', imageSize: 8, channels: 1 } }), ['boot', 'bag', 'shirt'], { dim: 16 }).model.text!;
const UNETS: Array<[string, UNetConfig]> = [
  ['2 levels, attention at 4, 3 classes', defaultUNetConfig({ imageSize: 8, baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [4], groups: 2, numClasses: 3 })],
  ['3 levels RGB, no attention, 2 res blocks, outC 6', defaultUNetConfig({ imageSize: 8, inChannels: 3, outChannels: 6, baseChannels: 8, channelMults: [1, 2, 2], numResBlocks: 2, attentionResolutions: [], groups: 4 })],
  ['text, attention at both levels', defaultUNetConfig({ imageSize: 8, baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [8, 4], groups: 4, text })],
  ['text, middle attention only, 3 levels', defaultUNetConfig({ imageSize: 12, baseChannels: 8, channelMults: [1, 1, 2], numResBlocks: 1, attentionResolutions: [], groups: 4, text })],
];

for (const [label, config] of UNETS) {
  test(`U-Net description, tfjs and ONNX agree: ${label}`, async () => {
    const graph = unetGraph(config);
    const weights = randomWeights(graph, 3);
    // Parameter interpreter = tfjs variables (names, shapes).
    const net = buildTfjsNetwork(graph, weights, 'U-Net');
    try {
      assert.deepEqual([...net.params.keys()], graph.params.map((s) => s.name));
      for (const s of graph.params) assert.deepEqual(net.params.get(s.name)!.shape, s.shape, s.name);
    } finally { net.dispose(); }
    // Cross-attention after every self-attention (text models), nowhere else.
    const selfAttn = graph.params.filter((s) => /\.attn\.\d+\.qkv\.kernel$/.test(s.name)).map((s) => s.name.replace('.attn.', '.xattn.').replace('.qkv.', '.q.'));
    const crossAttn = graph.params.filter((s) => /\.xattn\.\d+\.q\.kernel$/.test(s.name)).map((s) => s.name);
    assert.deepEqual(crossAttn, config.text !== undefined ? selfAttn : []);
    assert.ok(selfAttn.length >= 1, 'the middle block has self-attention');
    // The ONNX graph: one initializer per parameter (conv kernels OIHW), one op per primitive.
    const bytes = exportGraphToOnnx(graph, weights);
    const m = decodeOnnxModel(bytes);
    const inits = new Map(m.graph.initializers.map((t) => [t.name, t]));
    for (const s of graph.params) {
      const t = inits.get(s.name);
      assert.ok(t !== undefined, `initializer ${s.name}`);
      const p = weights[s.name]!;
      if (s.shape.length === 4) assert.deepEqual(t.data, hwioToOihw(p.data, p.shape), s.name);
      else assert.deepEqual(Float32Array.from(t.data as Float32Array), p.data, s.name);
    }
    const ops = (type: string): number => m.graph.nodes.filter((nd) => nd.opType === type).length;
    assert.equal(ops('Conv'), count(graph, 'conv2d'));
    assert.equal(ops('InstanceNormalization'), count(graph, 'groupNorm'));
    assert.equal(ops('Softmax'), count(graph, 'attention'));
    assert.equal(ops('Gather'), count(graph, 'embedding'));
    assert.deepEqual(m.graph.inputs.map((i) => i.name), graph.inputs.map((i) => i.name));
    // tfjs (every tensor's shape checked against the description) vs ORT.
    const n = 2;
    const inputs = randomInputs(graph, n, 7);
    const want = tfjsRun(graph, weights, inputs, n)['out']!;
    assert.ok(maxAbs(want) > 0.05);
    if (hasOrt) {
      const got = (await ortRun(graph, bytes, inputs, n))['out']!;
      assert.ok(maxAbsDiff(got, want) < 1e-4, `ORT vs tfjs ${maxAbsDiff(got, want)}`);
    }
  });
}

// ------------------------------------------------------------------ a toy network with a new block type

/**
 * A new block type, written once: FiLM conditioning, h * (1 + scale) + shift
 * with (scale, shift) = dense(silu(emb)). Nothing else in the code base knows it.
 */
function film(b: GraphBuilder, name: string, h: Value, emb: Value): Value {
  const c = width(h);
  const [scale, shift] = b.split(dense(b, `${name}.proj`, b.silu(emb, `${name}/act`), 2 * c), [c, c], `${name}/split`) as [Value, Value];
  const scaled = b.add(h, b.mul(h, b.toPixel(scale, `${name}/scale`), `${name}/mul`), `${name}/scaled`);
  return b.add(scaled, b.toPixel(shift, `${name}/shift`), name);
}

interface ToyConfig { film: boolean; heads: number }

/** Primitives the next networks need: AE-style res block (no time input, eps 1e-6), asymmetric stride-2 pad, multi-head attention, ... */
const toyNetwork: NetworkDef<ToyConfig> = {
  kind: 'toy',
  title: 'toy',
  validate: (c) => {
    if (![1, 2, 4].includes(c.heads)) throw new DiffuseError(`toy heads must be 1, 2 or 4, got ${c.heads}`);
    return c;
  },
  build: (b, c) => {
    const x = b.input({ name: 'x', dtype: 'float32', shape: [BATCH, 8, 8, 2], doc: 'images' });
    const t = b.input({ name: 't', dtype: 'float32', shape: [BATCH], doc: 'timesteps' });
    const label = b.input({ name: 'label', dtype: 'int32', shape: [BATCH], max: 2, fill: 2, doc: 'label (2 = none)' });
    const emb = b.add(timestepMlp(b, 'temb', t, { dim: 8, flipSinToCos: true, freqShift: 0 }, 16), embed(b, 'label', label, 3, 16, 1), 'emb');
    let h = conv(b, 'conv_in', x, { out: 8 });
    if (c.film) h = film(b, 'film', h, emb);
    h = resBlock(b, 'res', h, undefined, { out: 8, groups: 2, dropout: 0, eps: 1e-6 });
    h = downsample(b, 'down', h, [0, 1, 0, 1]);
    h = attentionBlock(b, 'attn', h, { groups: 2, heads: c.heads, eps: 1e-6 });
    h = b.mul(h, b.param('chan_scale', [8], { normal: 1 }), 'chan_scale');
    h = b.scale(upsample(b, 'up', h), 0.5, 'half');
    return { out: conv(b, 'out', h, { out: 2, k: 1 }), emb };
  },
};

test('a new block type written once appears in the parameters, the tfjs forward and the ONNX graph', async () => {
  const withFilm = networkGraph(toyNetwork, { film: true, heads: 2 });
  const without = networkGraph(toyNetwork, { film: false, heads: 2 });
  const filmParams = withFilm.params.filter((s) => s.name.startsWith('film.')).map((s) => `${s.name} [${s.shape.join(',')}]`);
  assert.deepEqual(filmParams, ['film.proj.bias [16]', 'film.proj.kernel [16,16]']);
  assert.ok(!without.params.some((s) => s.name.startsWith('film.')));
  const weights = randomWeights(withFilm, 11);
  const n = 3;
  const inputs = randomInputs(withFilm, n, 5);
  const a = tfjsRun(withFilm, weights, inputs, n);
  const { 'film.proj.kernel': _k, 'film.proj.bias': _b, ...rest } = weights;
  const b = tfjsRun(without, rest, inputs, n);
  assert.equal(a['out']!.length, n * 8 * 8 * 2);
  assert.equal(a['emb']!.length, n * 16);
  assert.deepEqual(a['emb'], b['emb']);
  assert.ok(maxAbsDiff(a['out']!, b['out']!) > 1e-3, 'the block changes the output');
  // The gradient reaches the new block's weights.
  const net = buildTfjsNetwork(withFilm, weights, 'toy');
  try {
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => tf.sum(tf.square(net.run(tensors(withFilm, inputs, n))['out']!)) as tf.Scalar, [...net.params.values()]);
      assert.ok(maxAbs(grads[net.params.get('film.proj.kernel')!.name]!.dataSync() as Float32Array) > 0);
    });
  } finally { net.dispose(); }
  // The ONNX graph has them too and computes the same.
  const bytes = exportGraphToOnnx(withFilm, weights);
  const names = decodeOnnxModel(bytes).graph.initializers.map((t) => t.name);
  assert.ok(names.includes('film.proj.kernel') && names.includes('film.proj.bias'));
  assert.throws(() => exportGraphToOnnx(without, weights), /unexpected parameter 'film\.proj\.bias'/);
  if (hasOrt) {
    for (const heads of [1, 2, 4]) {
      const g = networkGraph(toyNetwork, { film: true, heads });
      const want = tfjsRun(g, weights, inputs, n);
      const got = await ortRun(g, exportGraphToOnnx(g, weights, { opset: heads === 4 ? 13 : 17 }), inputs, n);
      for (const k of ['out', 'emb']) assert.ok(maxAbsDiff(got[k]!, want[k]!) < 1e-4, `heads ${heads} ${k}: ORT vs tfjs ${maxAbsDiff(got[k]!, want[k]!)}`);
    }
  }
});

test('toy network gradients on wasm match finite differences (asymmetric pad, multi-head attention, per-channel parameter)', () => {
  const graph = networkGraph(toyNetwork, { film: true, heads: 2 });
  const weights = randomWeights(graph, 4);
  const n = 2;
  const inputs = randomInputs(graph, n, 9);
  const target = uniform(n * 8 * 8 * 2, 3);
  const loss = (w: Weights): number => {
    const y = tfjsRun(graph, w, inputs, n)['out']!;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += (y[i]! - target[i]!) ** 2;
    return s / y.length;
  };
  const net = buildTfjsNetwork(graph, weights, 'toy');
  const grads = new Map<string, Float32Array>();
  try {
    tf.tidy(() => {
      const { grads: g } = tf.variableGrads(() => tf.mean(tf.squaredDifference(net.run(tensors(graph, inputs, n))['out']!, tf.tensor(target, [n, 8, 8, 2]))) as tf.Scalar, [...net.params.values()]);
      for (const [name, v] of net.params) grads.set(name, Float32Array.from(g[v.name]!.dataSync()));
    });
  } finally { net.dispose(); }
  const eps = 3e-3;
  for (const name of ['down.kernel', 'attn.qkv.kernel', 'attn.norm.gamma', 'chan_scale.', 'film.proj.kernel', 'res.norm1.beta', 'label.table', 'temb.dense0.kernel']) {
    const key = [...grads.keys()].find((k) => k === name || (name.endsWith('.') && k === name.slice(0, -1)));
    assert.ok(key !== undefined, name);
    const g = grads.get(key)!;
    let idx = 0;
    for (let i = 1; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[idx]!)) idx = i;
    const at = (d: number): number => {
      const data = weights[key]!.data.slice();
      data[idx] = data[idx]! + d;
      return loss({ ...weights, [key]: { shape: weights[key]!.shape, data } });
    };
    const fd = (at(eps) - at(-eps)) / (2 * eps);
    assert.ok(Math.abs(fd - g[idx]!) <= 0.03 * Math.abs(g[idx]!) + 2e-4, `${key}[${idx}]: analytic ${g[idx]} vs finite difference ${fd}`);
  }
});

// ------------------------------------------------------------------ primitives against plain-JS references

test('multi-head attention: softmax(q kᵀ / sqrt(d_head)) v per head, on tfjs and ONNX', async () => {
  const b = new GraphBuilder('attention');
  const q = b.input({ name: 'q', dtype: 'float32', shape: [BATCH, 3, 8], doc: 'q' });
  const k = b.input({ name: 'k', dtype: 'float32', shape: [BATCH, 5, 8], doc: 'k' });
  const v = b.input({ name: 'v', dtype: 'float32', shape: [BATCH, 5, 4], doc: 'v' });
  b.output('o', b.attention(q, k, v, { heads: 2 }, 'mha'));
  const graph = b.finish();
  const n = 2;
  const inputs = randomInputs(graph, n, 21);
  const [Q, K, V] = [inputs['q']!, inputs['k']!, inputs['v']!] as Float32Array[];
  const ref = new Float32Array(n * 3 * 4);
  for (let i = 0; i < n; i++) for (let h = 0; h < 2; h++) for (let a = 0; a < 3; a++) {
    const s = Array.from({ length: 5 }, (_, j) => {
      let dot = 0;
      for (let c = 0; c < 4; c++) dot += Q![(i * 3 + a) * 8 + h * 4 + c]! * K![(i * 5 + j) * 8 + h * 4 + c]!;
      return dot / 2;
    });
    const mx = Math.max(...s);
    const e = s.map((x) => Math.exp(x - mx));
    const z = e.reduce((p, x) => p + x, 0);
    for (let c = 0; c < 2; c++) ref[(i * 3 + a) * 4 + h * 2 + c] = e.reduce((p, x, j) => p + (x / z) * V![(i * 5 + j) * 4 + h * 2 + c]!, 0);
  }
  const got = tfjsRun(graph, {}, inputs, n)['o']!;
  assert.ok(maxAbsDiff(got, ref) < 1e-5, `tfjs ${maxAbsDiff(got, ref)}`);
  if (hasOrt) {
    const o = (await ortRun(graph, exportGraphToOnnx(graph, {}), inputs, n))['o']!;
    assert.ok(maxAbsDiff(o, ref) < 1e-5, `ORT ${maxAbsDiff(o, ref)}`);
  }
});

test('sinusoidal embedding variants follow exp(-ln(P) i / (half - shift)), sin or cos first', async () => {
  for (const opts of [{ dim: 8 }, { dim: 6, freqShift: 0, flipSinToCos: true, maxPeriod: 100 }]) {
    const b = new GraphBuilder('sinusoid');
    b.output('e', b.sinusoidal(b.input({ name: 't', dtype: 'float32', shape: [BATCH], doc: 't' }), opts, 'e'));
    const graph = b.finish();
    const ts = Float32Array.from([0, 3, 517]);
    const half = opts.dim / 2, shift = opts.freqShift ?? 1, P = opts.maxPeriod ?? 10000;
    const ref = new Float32Array(3 * opts.dim);
    ts.forEach((t, i) => {
      for (let j = 0; j < half; j++) {
        const a = t * Math.fround(Math.exp((-Math.log(P) * j) / (half - shift)));
        ref[i * opts.dim + j] = opts.flipSinToCos === true ? Math.cos(a) : Math.sin(a);
        ref[i * opts.dim + half + j] = opts.flipSinToCos === true ? Math.sin(a) : Math.cos(a);
      }
    });
    const got = tfjsRun(graph, {}, { t: ts }, 3)['e']!;
    assert.ok(maxAbsDiff(got, ref) < 1e-4, `tfjs ${JSON.stringify(opts)}: ${maxAbsDiff(got, ref)}`);
    if (hasOrt) {
      const o = (await ortRun(graph, exportGraphToOnnx(graph, {}), { t: ts }, 3))['e']!;
      assert.ok(maxAbsDiff(o, ref) < 1e-4, `ORT ${JSON.stringify(opts)}: ${maxAbsDiff(o, ref)}`);
    }
  }
});

test('conv padding: explicit (0,1,0,1) stride 2 reads the same pixels on tfjs and ONNX, unlike "same" (1,1) padding', async () => {
  const make = (pad: 'same' | [number, number, number, number]): Graph => {
    const b = new GraphBuilder('conv');
    const x = b.input({ name: 'x', dtype: 'float32', shape: [BATCH, 5, 6, 1], doc: 'x' });
    b.output('y', b.conv2d(x, b.param('w', [3, 3, 1, 1], 'ones'), undefined, { stride: 2, pad }, 'c'));
    return b.finish();
  };
  const x = Float32Array.from({ length: 30 }, (_, i) => i);
  // Output (r, c) sums x over rows 2r-top..2r-top+2 and columns 2c-left..2c-left+2 inside the image.
  const ref = (top: number, left: number, oh: number, ow: number): Float32Array => {
    const out = new Float32Array(oh * ow);
    for (let r = 0; r < oh; r++) for (let c = 0; c < ow; c++) {
      for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) {
        const y = 2 * r - top + dy, xx = 2 * c - left + dx;
        if (y >= 0 && y < 5 && xx >= 0 && xx < 6) out[r * ow + c] = out[r * ow + c]! + x[y * 6 + xx]!;
      }
    }
    return out;
  };
  const w: Weights = { w: { shape: [3, 3, 1, 1], data: new Float32Array(9).fill(1) } };
  for (const [pad, top, left, oh, ow] of [[[0, 1, 0, 1], 0, 0, 2, 3], [[1, 1, 1, 1], 1, 1, 3, 3], ['same', 1, 0, 3, 3]] as const) {
    const graph = make(pad as 'same' | [number, number, number, number]);
    assert.deepEqual(graph.values[graph.outputs[0]!.value.id]!.shape, [BATCH, oh, ow, 1]);
    const want = ref(top, left, oh, ow);
    assert.deepEqual(tfjsRun(graph, w, { x }, 1)['y'], want, `tfjs pad ${JSON.stringify(pad)}`);
    if (hasOrt) assert.deepEqual((await ortRun(graph, exportGraphToOnnx(graph, w), { x }, 1))['y'], want, `ORT pad ${JSON.stringify(pad)}`);
  }
});

test('the builder rejects descriptions that do not fit together, naming the block', () => {
  const b = new GraphBuilder('bad');
  const x = b.input({ name: 'x', dtype: 'float32', shape: [BATCH, 4, 4, 3], doc: 'x' });
  assert.throws(() => b.conv2d(x, b.param('k', [3, 3, 2, 4], 'zeros'), undefined, {}, 'enc.conv'), /conv2d enc\.conv: input has 3 channels, the kernel takes 2/);
  assert.throws(() => b.param('k', [3, 3, 3, 4], 'zeros'), /parameter 'k' declared as \[3,3,2,4\] and again as \[3,3,3,4\]/);
  assert.throws(() => b.groupNorm(x, b.param('g', [3], 'ones'), b.param('bb', [3], 'zeros'), { groups: 2 }, 'n'), /3 channels do not split into 2 groups/);
  assert.throws(() => b.add(x, b.param('v', [2], 'zeros'), 'a'), /do not broadcast/);
  assert.throws(() => b.sinusoidal(b.input({ name: 't', dtype: 'float32', shape: [BATCH], doc: 't' }), { dim: 7 }, 's'), /even/);
  assert.throws(() => b.finish(), /no outputs/);
  assert.throws(() => unetGraph(defaultUNetConfig({ baseChannels: 7, groups: 7 })), (e: unknown) => e instanceof DiffuseError && /baseChannels must be even/.test(e.message));
});

test('the tfjs interpreter fills an absent optional input and demands required ones', () => {
  const graph = networkGraph(toyNetwork, { film: true, heads: 1 });
  const weights = randomWeights(graph, 2);
  const inputs = randomInputs(graph, 2, 3);
  const none = tfjsRun(graph, weights, { ...inputs, label: Int32Array.from([2, 2]) }, 2);
  const { label: _l, ...noLabel } = inputs;
  assert.deepEqual(tfjsRun(graph, weights, noLabel, 2)['out'], none['out']);
  const { t: _t, ...noT } = inputs;
  assert.throws(() => tfjsRun(graph, weights, noT, 2), /input 't' is required/);
  assert.throws(() => buildTfjsNetwork(graph, { ...weights, 'res.conv1.kernel': { shape: [1], data: new Float32Array(1) } }, 'toy'), /res\.conv1\.kernel' has 1 values/);
  tf.tidy(() => {
    assert.throws(() => runGraph(graph, new Map(), tensors(graph, inputs, 2)), /parameter '.*' is missing/);
  });
});

// ------------------------------------------------------------------ the trainer trains any described network

test('the trainer trains the toy network (not a U-Net): loss falls, resumes bit-identically; 2 workers need a registered kind', async () => {
  const task = { network: toyNetwork, config: { film: true, heads: 2 }, loss: { kind: 'mse' as const } };
  const graph = networkGraph(toyNetwork, task.config);
  const n = 4;
  const { label: _l, ...inputs } = randomInputs(graph, n, 8);
  const batch = { n, inputs: { ...inputs, target: uniform(n * 8 * 8 * 2, 4, 1) } };
  const HP = { lr: 3e-3, clipNorm: 1, emaDecay: 0.9 };
  const a = await createNetworkTrainer(task, { seed: 1, workers: 1, microBatch: 3 });
  const b = await createNetworkTrainer(task, { seed: 2, workers: 1, microBatch: 3 });
  try {
    const first = await a.step(batch, HP);
    let last = first;
    for (let i = 0; i < 4; i++) last = await a.step(batch, HP);
    const mid = await a.exportState();
    assert.deepEqual(Object.keys(mid.params).sort(), graph.params.map((s) => s.name));
    for (let i = 0; i < 10; i++) last = await a.step(batch, HP);
    assert.ok(last.loss < first.loss * 0.8, `loss ${first.loss} -> ${last.loss}`);
    await b.importState(mid);
    for (let i = 0; i < 10; i++) await b.step(batch, HP);
    const sa = await a.exportState(), sb = await b.exportState();
    for (const k of Object.keys(sa.params)) assert.deepEqual(sb.params[k]!.data, sa.params[k]!.data, k);
    await assert.rejects(a.step({ n, inputs: { ...batch.inputs, label: Int32Array.from([0, 1, 2, 3]) } }, HP), /label value 3 out of range 0\.\.2/);
    await assert.rejects(a.step({ n, inputs: { x: inputs['x'], t: inputs['t'] } }, HP), /lacks input 'target'/);
    await assert.rejects(a.step({ n, inputs: { ...batch.inputs, extra: new Float32Array(4) } }, HP), /input 'extra'/);
  } finally {
    await a.dispose();
    await b.dispose();
  }
  await assert.rejects(createNetworkTrainer(task, { seed: 1, workers: 2 }), /'toy' is not registered/);
  await assert.rejects(createNetworkTrainer({ ...task, config: { film: true, heads: 3 } }, { seed: 1, workers: 1 }), /heads must be 1, 2 or 4/);
});
