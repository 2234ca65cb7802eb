/**
 * The autoencoder (issue #15): its description (latent shapes for f = 2, 4, 8;
 * one parameter list read by tfjs and ONNX; the encoder and decoder graphs
 * share the training graph's weights), its loss (pixel L1 / MSE + β·KL
 * against closed forms, the KL against numerical integration, gradients of
 * the new exp / abs primitives against finite differences), ONNX parity of
 * encoder and decoder with tfjs, two worker threads, and the training run: a
 * tiny autoencoder learns to reconstruct held-out images, resumes
 * bit-identically and stores its latent statistics.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import { DiffuseError } from '../../src/errors.js';
import { downsamplingFactor, latentShape } from '../../src/model/autoencoder-config.js';
import { autoencoderNetwork, decoderNetwork, encoderNetwork } from '../../src/model/autoencoder-description.js';
import { BATCH, type Graph, type Value } from '../../src/net/graph.js';
import { type NetworkDef, networkGraph } from '../../src/net/network.js';
import { runGraph } from '../../src/net/tfjs.js';
import { exportGraphToOnnx } from '../../src/onnx/export-graph.js';
import { decodeOnnxModel } from '../../src/onnx/proto.js';
import { ortAvailable } from '../../src/onnx/runner.js';
import { trainGraph, type LossSpec } from '../../src/train/objective.js';
import { createNetworkTrainer, replicaParams } from '../../src/train/trainer.js';
import { createAutoencoderRunner, graphWeights } from '../../src/latent/runner.js';
import { defaultAutoencoderRunConfig, type AutoencoderRunConfig } from '../../src/config.js';
import { trainAutoencoder } from '../../src/latent/autoencoder.js';
import { AUTOENCODER_CODEC, loadCheckpointWith } from '../../src/train/checkpoint.js';
import { meanPsnr, psnrPerImage } from '../../src/latent/stats.js';
import type { Weights } from '../../src/tensor.js';
import { maxAbs, maxAbsDiff, randomWeights, uniform } from '../onnx/helpers.js';
import { squares, tinyAutoencoder } from './helpers.js';

before(async () => {
  await initEngine({ backend: 'wasm' });
});

const hasOrt = await ortAvailable();

function tensorsOf(graph: Graph, arrays: Record<string, Float32Array>, n: number): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const d of graph.inputs) {
    const a = arrays[d.name];
    if (a !== undefined) out[d.name] = tf.tensor(a, [n, ...d.shape.slice(1)], 'float32');
  }
  return out;
}

function tfjsRun(graph: Graph, w: Weights, arrays: Record<string, Float32Array>, n: number, checkShapes = false): Record<string, Float32Array> {
  return tf.tidy(() => {
    const params = new Map(graph.params.map((s) => [s.name, tf.tensor(w[s.name]!.data, s.shape)]));
    const r = runGraph(graph, params, tensorsOf(graph, arrays, n), { checkShapes });
    return Object.fromEntries(Object.entries(r).map(([k, t]) => [k, t.dataSync() as Float32Array]));
  });
}

test('description: latent shapes for f = 2, 4, 8; encoder + decoder = the training graph\'s parameters; tfjs tensors have the described shapes; ONNX holds the same weights', () => {
  for (const [mults, f] of [[[1, 2], 2], [[1, 2, 2], 4], [[1, 2, 2, 2], 8]] as const) {
    const c = tinyAutoencoder({ imageSize: 16, channelMults: [...mults], latentChannels: 4 });
    assert.equal(downsamplingFactor(c), f);
    assert.deepEqual(latentShape(c), [16 / f, 16 / f, 4]);
    const full = networkGraph(autoencoderNetwork, c);
    const enc = networkGraph(encoderNetwork, c);
    const dec = networkGraph(decoderNetwork, c);
    const out = (g: Graph, name: string): readonly number[] => g.outputs.find((o) => o.name === name)!.value.shape;
    assert.deepEqual(out(full, 'recon'), [BATCH, 16, 16, 3]);
    assert.deepEqual(out(full, 'mean'), [BATCH, 16 / f, 16 / f, 4]);
    assert.deepEqual(out(enc, 'logvar'), [BATCH, 16 / f, 16 / f, 4]);
    assert.deepEqual(out(dec, 'image'), [BATCH, 16, 16, 3]);
    const names = (g: Graph): string[] => g.params.map((s) => s.name);
    assert.deepEqual([...names(enc), ...names(dec)].sort(), names(full));
    assert.ok(names(enc).every((n) => n.startsWith('encoder.')) && names(dec).every((n) => n.startsWith('decoder.')));
    // AutoencoderKL's parts are there: asymmetric-pad downsampling, quant convs, the middle attention
    assert.ok(full.nodes.some((n) => n.op === 'conv2d' && n.stride === 2 && JSON.stringify(n.pad) === '[0,1,0,1]'));
    assert.ok(names(full).includes('encoder.quant_conv.kernel') && names(full).includes('decoder.post_quant_conv.kernel') && names(full).includes('decoder.mid.attn.qkv.kernel'));
    // one more res block per level in the decoder
    assert.equal(names(dec).filter((n) => /^decoder\.up\.0\.res\.\d+\.conv1\.kernel$/.test(n)).length, c.numResBlocks + 1);
    const w = randomWeights(full, f);
    const n = 2;
    tfjsRun(full, w, { x: uniform(n * 16 * 16 * 3, 1), noise: uniform(n * 16 * 16 * 4 / (f * f), 2) }, n, true);
    const onnx = decodeOnnxModel(exportGraphToOnnx(dec, graphWeights(dec, w)));
    const inits = new Set(onnx.graph.initializers.map((t) => t.name));
    for (const s of dec.params) assert.ok(inits.has(s.name), `ONNX decoder lacks ${s.name}`);
  }
  assert.throws(() => networkGraph(autoencoderNetwork, tinyAutoencoder({ imageSize: 10, channelMults: [1, 2, 2] })), (e: unknown) => e instanceof DiffuseError && /imageSize 10 must be divisible by the downsampling factor 4/.test(e.message));
  assert.throws(() => networkGraph(autoencoderNetwork, tinyAutoencoder({ baseChannels: 6 })), (e: unknown) => e instanceof DiffuseError && /groups 4 must divide/.test(e.message));
});

// A network whose outputs are its inputs: the loss is then a function of values we choose.
const passThrough: NetworkDef<{ s: number; l: number }> = {
  kind: 'pass', title: 'pass', validate: (c) => c,
  build: (b, c) => {
    const input = (name: string, side: number, ch: number): Value => b.input({ name, dtype: 'float32', shape: [BATCH, side, side, ch], doc: name });
    return { recon: input('r', c.s, 3), mean: input('m', c.l, 2), logvar: input('lv', c.l, 2) };
  },
};

test('vae loss = (sum |r - x| or (r - x)^2 + β/2 sum (m^2 + e^lv - 1 - lv)) / pixels, summed over rows; KL(N(m, e^lv) || N(0, 1)) against numerical integration', () => {
  const n = 3, s = 4, l = 2;
  const arrays = { r: uniform(n * s * s * 3, 1), m: uniform(n * l * l * 2, 2), lv: uniform(n * l * l * 2, 3), target: uniform(n * s * s * 3, 4) };
  for (const recon of ['l1', 'mse'] as const) {
    for (const klWeight of [0, 1e-6, 0.5]) {
      const spec: LossSpec = { kind: 'vae', recon, klWeight };
      const { graph, perRow } = trainGraph(passThrough, { s, l }, spec);
      assert.equal(perRow, s * s * 3);
      const got = tfjsRun(graph, {}, arrays, n)['loss']![0]!;
      let rec = 0;
      for (let i = 0; i < arrays.r.length; i++) {
        const d = arrays.r[i]! - arrays.target[i]!;
        rec += recon === 'l1' ? Math.abs(d) : d * d;
      }
      let kl = 0;
      for (let i = 0; i < arrays.m.length; i++) kl += 0.5 * (arrays.m[i]! ** 2 + Math.exp(arrays.lv[i]!) - 1 - arrays.lv[i]!);
      const want = rec + klWeight * kl;
      assert.ok(Math.abs(got - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${recon} β=${klWeight}: ${got} vs ${want}`);
    }
  }
  // the closed form is the KL divergence: ∫ p log(p / q) for p = N(0.7, e^-0.5), q = N(0, 1), Simpson's rule
  const mu = 0.7, lv = -0.5, sd = Math.exp(lv / 2);
  const logp = (x: number): number => -0.5 * ((x - mu) / sd) ** 2 - Math.log(sd * Math.sqrt(2 * Math.PI));
  const logq = (x: number): number => -0.5 * x * x - Math.log(Math.sqrt(2 * Math.PI));
  const f = (x: number): number => Math.exp(logp(x)) * (logp(x) - logq(x));
  const N = 4000, a = -12, h = 24 / N;
  let integral = f(a) + f(a + N * h);
  for (let i = 1; i < N; i++) integral += (i % 2 === 1 ? 4 : 2) * f(a + i * h);
  integral *= h / 3;
  assert.ok(Math.abs(integral - 0.5 * (mu * mu + Math.exp(lv) - 1 - lv)) < 1e-9, `KL ${integral}`);
  assert.throws(() => trainGraph(passThrough, { s, l }, { kind: 'vae', recon: 'l2' as 'l1', klWeight: 0 }), /recon must be l1 or mse/);
  assert.throws(() => trainGraph(passThrough, { s, l }, { kind: 'vae', recon: 'l1', klWeight: -1 }), /klWeight must be a finite number >= 0/);
  assert.throws(() => trainGraph({ ...passThrough, build: (b, c) => ({ recon: passThrough.build(b, c)['recon']! }) }, { s, l }, { kind: 'vae', recon: 'l1', klWeight: 0 }), /no output 'mean'/);
});

test('gradients of the vae loss (exp, abs, the reparameterised sample) match finite differences', () => {
  const n = 2, s = 4, l = 2;
  const { graph } = trainGraph(passThrough, { s, l }, { kind: 'vae', recon: 'l1', klWeight: 0.3 });
  const arrays = { r: uniform(n * s * s * 3, 5), m: uniform(n * l * l * 2, 6), lv: uniform(n * l * l * 2, 7), target: uniform(n * s * s * 3, 8) };
  const loss = (a: typeof arrays): number => tfjsRun(graph, {}, a, n)['loss']![0]!;
  const grads = tf.tidy(() => {
    const ins = ['r', 'm', 'lv'] as const;
    const g = tf.grads((r: tf.Tensor, m: tf.Tensor, lv: tf.Tensor) => runGraph(graph, new Map(), { r, m, lv, target: tf.tensor(arrays.target, [n, s, s, 3]) })['loss'] as tf.Scalar);
    const out = g(ins.map((k) => tf.tensor(arrays[k], [n, ...(k === 'r' ? [s, s, 3] : [l, l, 2])])));
    return out.map((t) => t.dataSync() as Float32Array);
  });
  const eps = 1e-2; // float32 losses: a wide step keeps rounding small; r is piecewise linear, m quadratic, lv smooth
  (['r', 'm', 'lv'] as const).forEach((k, gi) => {
    for (const i of [0, 5, 11]) {
      if (k === 'r' && Math.abs(arrays.r[i]! - arrays.target[i]!) < 2 * eps) continue; // |.| has a kink at 0
      const plus = { ...arrays, [k]: arrays[k].slice() }, minus = { ...arrays, [k]: arrays[k].slice() };
      plus[k][i] = plus[k][i]! + eps;
      minus[k][i] = minus[k][i]! - eps;
      const fd = (loss(plus) - loss(minus)) / (2 * eps);
      const an = grads[gi]![i]!;
      assert.ok(Math.abs(fd - an) < 1e-3 * Math.max(1, Math.abs(an)), `d loss / d ${k}[${i}]: ${an} vs ${fd}`);
    }
  });
});

test('encoder and decoder on ONNX Runtime equal tfjs (< 1e-4); decode(encode(x).mean) is the training graph\'s reconstruction with zero noise', { skip: hasOrt ? false : 'onnxruntime-node not available' }, async () => {
  const c = tinyAutoencoder({ imageSize: 16, channelMults: [1, 2, 2], latentChannels: 4 });
  const w = randomWeights(networkGraph(autoencoderNetwork, c), 11);
  const n = 3;
  const x = uniform(n * 16 * 16 * 3, 12, 1);
  const [ts, onnx] = [await createAutoencoderRunner(c, w, { engine: 'tfjs' }), await createAutoencoderRunner(c, w, { engine: 'onnx' })];
  try {
    const a = await ts.encode(x, n), b = await onnx.encode(x, n);
    assert.ok(maxAbs(a.mean) > 0.01 && maxAbs(a.logvar) > 0.01);
    assert.ok(maxAbsDiff(a.mean, b.mean) < 1e-4 && maxAbsDiff(a.logvar, b.logvar) < 1e-4, `encoder ${maxAbsDiff(a.mean, b.mean)}`);
    const z = uniform(n * 4 * 4 * 4, 13, 2);
    const da = await ts.decode(z, n), db = await onnx.decode(z, n);
    assert.ok(maxAbs(da) > 0.01);
    assert.ok(maxAbsDiff(da, db) < 1e-4, `decoder differs by ${maxAbsDiff(da, db)}`);
    const recon = tfjsRun(networkGraph(autoencoderNetwork, c), w, { x, noise: new Float32Array(n * 4 * 4 * 4) }, n)['recon']!;
    assert.ok(maxAbsDiff(await ts.decode(a.mean, n), recon) < 1e-5);
    await assert.rejects(ts.decode(z.subarray(1), n), /expected 192 values for 3 rows, got 191/);
  } finally {
    await ts.dispose();
    await onnx.dispose();
  }
});

test('two worker threads train the autoencoder (a registered kind): the first step matches one thread, the replicas stay bit-identical', async () => {
  const c = tinyAutoencoder();
  const task = { network: autoencoderNetwork, config: c, loss: { kind: 'vae' as const, recon: 'l1' as const, klWeight: 1e-3 } };
  const data = squares(8, 3);
  const batch = { n: 8, inputs: { x: data.images, target: data.images, noise: uniform(8 * 4 * 4 * 2, 9, 1) } };
  const HP = { lr: 1e-3, clipNorm: 1, emaDecay: 0.9 };
  const one = await createNetworkTrainer(task, { seed: 5, workers: 1 });
  const two = await createNetworkTrainer(task, { seed: 5, workers: 2 });
  try {
    assert.equal(two.workers, 2);
    const a = await one.step(batch, HP), b = await two.step(batch, HP);
    assert.ok(Math.abs(a.loss - b.loss) < 1e-5 * a.loss, `loss ${a.loss} vs ${b.loss}`);
    assert.ok(Math.abs(a.gradNorm - b.gradNorm) < 1e-4 * a.gradNorm, `grad norm ${a.gradNorm} vs ${b.gradNorm}`);
    await two.step(batch, HP);
    const [p0, p1] = (await replicaParams(two)) as [Float32Array, Float32Array];
    assert.ok(Buffer.from(p0.buffer).equals(Buffer.from(p1.buffer)), 'replicas differ');
  } finally {
    await one.dispose();
    await two.dispose();
  }
});

test('psnr: identical images are +Infinity dB, a uniform error of 0.1 (on [-1, 1]) is 26.02 dB; reconstructions are clamped', () => {
  const a = uniform(2 * 12, 1, 0.8);
  assert.equal(psnrPerImage(a, a, 2)[0], Infinity);
  const b = a.map((v) => v + 0.1);
  assert.ok(Math.abs(meanPsnr(a, b, 2) - 20 * Math.log10(2 / 0.1)) < 1e-3);
  assert.equal(meanPsnr(Float32Array.of(1, 1), Float32Array.of(3, 5), 1), Infinity);
});

test('round trip: a tiny autoencoder learns to reconstruct its images (PSNR up by > 8 dB), resumes bit-identically, and stores its latent statistics', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-ae-'));
  try {
    const data = squares(8, 1);
    const heldout = data; // the round trip of the images it learns (a tiny model in a few steps memorises; it does not generalise yet)
    const config: AutoencoderRunConfig = defaultAutoencoderRunConfig({
      data: { dataset: 'squares', imageSize: 8, channels: 3 },
      model: tinyAutoencoder(),
      loss: { recon: 'l1', klWeight: 1e-6 },
      train: { batchSize: 8, lr: 1e-2, warmupSteps: 5, steps: 100, workers: 1, seed: 4, sampleEvery: 0, checkpointEvery: 0, emaDecay: 0.9 },
    });
    const common = { config, dataset: data, heldout, progress: null } as const;
    const first = await trainAutoencoder({ ...common, outDir: join(dir, 'first'), stopAfter: 1 });
    const straight = await trainAutoencoder({ ...common, outDir: join(dir, 'a') });
    await trainAutoencoder({ ...common, outDir: join(dir, 'b'), stopAfter: 40 });
    const resumed = await trainAutoencoder({ ...common, outDir: join(dir, 'b'), resume: true });
    assert.equal(resumed.step, 100);
    const a = await loadCheckpointWith(join(dir, 'a', 'checkpoint'), AUTOENCODER_CODEC);
    const b = await loadCheckpointWith(join(dir, 'b', 'checkpoint'), AUTOENCODER_CODEC);
    for (const part of ['params', 'ema'] as const) {
      for (const [name, t] of Object.entries(a.state[part])) assert.deepEqual(b.state[part][name]!.data, t.data, `${part} ${name} differs after resume`);
    }
    assert.deepEqual(b.trainingState.rng, a.trainingState.rng);
    const s0 = first.config.stats!, s1 = a.config.stats!;
    assert.equal(s1.step, 100);
    assert.deepEqual(b.config.stats, s1);
    assert.equal(s1.heldoutImages, 8);
    assert.ok(s1.heldoutPsnr! > s0.heldoutPsnr! + 8, `held-out PSNR ${s0.heldoutPsnr} -> ${s1.heldoutPsnr}`);
    assert.ok(Math.abs(s1.scalingFactor * s1.std - 1) < 1e-9 && s1.images === 8);
    assert.equal(straight.config.stats?.step, 100);
    // every save measured the EMA weights: the resumed run's eval.jsonl has steps 40 and 100
    const evals = readFileSync(join(dir, 'b', 'eval.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number });
    assert.deepEqual(evals.map((e) => e.step), [40, 100]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
