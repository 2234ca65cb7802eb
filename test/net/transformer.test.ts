/**
 * The primitives and blocks diffusers' UNet2DConditionModel adds (layerNorm,
 * gelu; GEGLU feed-forward, transformer block, spatial transformer) on both
 * interpreters against plain-JS references, at both ONNX layerNorm lowerings
 * (opset 17 LayerNormalization, opset 13 ReduceMean), and their gradients on
 * tfjs-wasm against finite differences.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import { BATCH, type Graph, GraphBuilder } from '../../src/net/graph.js';
import { dense, gegluFeedForward, layerNorm, spatialTransformer, width } from '../../src/net/blocks.js';
import { buildTfjsNetwork } from '../../src/net/tfjs.js';
import { createOrtGraphSession } from '../../src/onnx/graph-session.js';
import { ortAvailable } from '../../src/onnx/runner.js';
import type { Weights } from '../../src/tensor.js';
import { maxAbsDiff, randomWeights, uniform } from '../onnx/helpers.js';

before(async () => {
  await initEngine({ backend: 'wasm' });
});

const noOrt = !(await ortAvailable()) && 'onnxruntime-node unavailable';

function tfjsOut(graph: Graph, weights: Weights, inputs: Record<string, { data: Float32Array; shape: number[] }>): Float32Array {
  const net = buildTfjsNetwork(graph, weights, graph.name);
  try {
    return tf.tidy(() => Float32Array.from(net.run(Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.data, v.shape)])), { checkShapes: true })['out']!.dataSync()));
  } finally {
    net.dispose();
  }
}

async function ortOut(graph: Graph, weights: Weights, inputs: Record<string, Float32Array>, n: number, opset: number): Promise<Float32Array> {
  const s = await createOrtGraphSession(graph, weights, { opset, threads: 1 });
  try {
    return (await s.run(inputs, n)).out!.data;
  } finally {
    await s.dispose();
  }
}

// plain-JS references
const erf = (x: number): number => {
  // Abramowitz–Stegun 7.1.26 is 1.5e-7: enough against float32 kernels
  const s = Math.sign(x), a = Math.abs(x), t = 1 / (1 + 0.3275911 * a);
  return s * (1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a));
};
const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));
function layerNormRef(x: Float32Array, d: number, g: Float32Array, b: Float32Array, eps: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    let m = 0, v = 0;
    for (let i = 0; i < d; i++) m += x[r * d + i]!;
    m /= d;
    for (let i = 0; i < d; i++) v += (x[r * d + i]! - m) ** 2;
    v /= d;
    for (let i = 0; i < d; i++) out[r * d + i] = ((x[r * d + i]! - m) / Math.sqrt(v + eps)) * g[i]! + b[i]!;
  }
  return out;
}

test('layerNorm and gelu: tfjs and ORT (opsets 13 and 17) equal the plain-JS reference', { skip: noOrt }, async () => {
  const n = 2, L = 3, d = 6;
  const b = new GraphBuilder('ln-gelu');
  const x = b.input({ name: 'x', dtype: 'float32', shape: [BATCH, L, d], doc: 'tokens' });
  b.output('out', b.gelu(layerNorm(b, 'ln', x, { eps: 1e-3 }), 'act'));
  const graph = b.finish();
  const w = randomWeights(graph, 1);
  const xs = uniform(n * L * d, 2, 3);
  const ln = layerNormRef(xs, d, w['ln.gamma']!.data, w['ln.beta']!.data, 1e-3);
  const want = ln.map(gelu);
  const tfv = tfjsOut(graph, w, { x: { data: xs, shape: [n, L, d] } });
  assert.ok(maxAbsDiff(tfv, want) < 2e-5, `tfjs ${maxAbsDiff(tfv, want)}`);
  for (const opset of [13, 17]) {
    const o = await ortOut(graph, w, { x: xs }, n, opset);
    assert.ok(maxAbsDiff(o, want) < 2e-5, `ORT opset ${opset}: ${maxAbsDiff(o, want)}`);
  }
  // the operand checks
  assert.throws(() => new GraphBuilder('bad').layerNorm(x, x, x, {}, 'img'), /scale\/shift must be \[6\]/);
});

test('GEGLU feed-forward equals h · gelu(gate) through the dense layers, on both interpreters', { skip: noOrt }, async () => {
  const n = 2, L = 2, d = 3;
  const b = new GraphBuilder('geglu');
  const x = b.input({ name: 'x', dtype: 'float32', shape: [BATCH, L, d], doc: 'tokens' });
  b.output('out', gegluFeedForward(b, 'ff', x, { mult: 2 }));
  const graph = b.finish();
  assert.deepEqual(graph.params.map((p) => `${p.name}:${p.shape.join('x')}`), ['ff.out.bias:3', 'ff.out.kernel:6x3', 'ff.proj.bias:12', 'ff.proj.kernel:3x12']);
  const w = randomWeights(graph, 3);
  const xs = uniform(n * L * d, 4);
  const want = new Float32Array(n * L * d);
  for (let r = 0; r < n * L; r++) {
    const proj = Array.from({ length: 12 }, (_, j) => w['ff.proj.bias']!.data[j]! + [0, 1, 2].reduce((s, i) => s + xs[r * d + i]! * w['ff.proj.kernel']!.data[i * 12 + j]!, 0));
    const gated = Array.from({ length: 6 }, (_, j) => proj[j]! * gelu(proj[6 + j]!));
    for (let o = 0; o < d; o++) want[r * d + o] = w['ff.out.bias']!.data[o]! + gated.reduce((s, g, j) => s + g * w['ff.out.kernel']!.data[j * d + o]!, 0);
  }
  assert.ok(maxAbsDiff(tfjsOut(graph, w, { x: { data: xs, shape: [n, L, d] } }), want) < 2e-5);
  assert.ok(maxAbsDiff(await ortOut(graph, w, { x: xs }, n, 17), want) < 2e-5);
});

function transformerGraph(linearProjection: boolean): Graph {
  const b = new GraphBuilder('spatial-transformer');
  const x = b.input({ name: 'x', dtype: 'float32', shape: [BATCH, 4, 4, 4], doc: 'image' });
  const context = b.input({ name: 'context', dtype: 'float32', shape: [BATCH, 3, 5], doc: 'context' });
  const h = spatialTransformer(b, 'st', x, { context, heads: 2, groups: 2, linearProjection });
  b.output('out', h);
  assert.equal(width(h), 4);
  return b.finish();
}

test('spatial transformer: no q/k/v biases, ORT equals tfjs, the context changes the output', { skip: noOrt }, async () => {
  for (const linear of [false, true]) {
    const graph = transformerGraph(linear);
    const names = graph.params.map((p) => p.name);
    assert.ok(names.includes('st.block.0.attn1.qkv.kernel') && !names.includes('st.block.0.attn1.qkv.bias'));
    assert.ok(names.includes('st.block.0.attn2.kv.kernel') && !names.includes('st.block.0.attn2.kv.bias') && names.includes('st.block.0.attn2.proj.bias'));
    assert.equal(graph.params.find((p) => p.name === 'st.proj_in.kernel')!.shape.length, linear ? 2 : 4);
    const w = randomWeights(graph, 5);
    const xs = uniform(2 * 64, 6), cs = uniform(2 * 15, 7);
    const t = tfjsOut(graph, w, { x: { data: xs, shape: [2, 4, 4, 4] }, context: { data: cs, shape: [2, 3, 5] } });
    const o = await ortOut(graph, w, { x: xs, context: cs }, 2, 17);
    assert.ok(maxAbsDiff(t, o) < 1e-4, `linear ${linear}: ${maxAbsDiff(t, o)}`);
    const other = await ortOut(graph, w, { x: xs, context: uniform(2 * 15, 8) }, 2, 17);
    assert.ok(maxAbsDiff(o, other) > 1e-3, 'cross-attention reads the context');
  }
});

test('gradients through layerNorm, gelu and the transformer block match finite differences (tfjs-wasm)', () => {
  const graph = transformerGraph(true);
  const w = randomWeights(graph, 9);
  const xs = uniform(2 * 64, 10), cs = uniform(2 * 15, 11);
  const net = buildTfjsNetwork(graph, w, graph.name);
  const loss = (): tf.Scalar => tf.tidy(() => tf.sum(tf.square(net.run({ x: tf.tensor(xs, [2, 4, 4, 4]), context: tf.tensor(cs, [2, 3, 5]) })['out']!)) as tf.Scalar);
  try {
    const { grads } = tf.variableGrads(loss, [...net.params.values()]);
    // grads are keyed by the variables' own names
    const analytic = Object.fromEntries([...net.params].map(([name, v]) => [name, Float32Array.from(grads[v.name]!.dataSync())]));
    for (const g of Object.values(grads)) g.dispose();
    const h = 1e-2;
    for (const key of ['st.block.0.norm1.gamma', 'st.block.0.norm3.beta', 'st.block.0.ff.proj.kernel', 'st.block.0.attn2.kv.kernel', 'st.proj_in.kernel']) {
      const v = net.params.get(key)!;
      const base = Float32Array.from(v.dataSync());
      const idx = Math.floor(base.length / 3);
      const at = (delta: number): number => {
        const d = base.slice();
        d[idx] = base[idx]! + delta;
        v.assign(tf.tensor(d, v.shape));
        const l = loss();
        const r = l.dataSync()[0]!;
        l.dispose();
        return r;
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      v.assign(tf.tensor(base, v.shape));
      const g = analytic[key]![idx]!;
      assert.ok(Math.abs(g) > 0.05, `${key}[${idx}]: a gradient worth checking (${g})`);
      assert.ok(Math.abs(fd - g) <= 0.03 * Math.abs(g) + 2e-3, `${key}[${idx}]: analytic ${g} vs finite difference ${fd}`);
    }
  } finally {
    net.dispose();
  }
});

test('dense without bias has no bias parameter', () => {
  const b = new GraphBuilder('nobias');
  const x = b.input({ name: 'x', dtype: 'float32', shape: [BATCH, 3], doc: 'v' });
  b.output('out', dense(b, 'd', x, 2, { bias: false }));
  assert.deepEqual(b.finish().params.map((p) => p.name), ['d.kernel']);
});
