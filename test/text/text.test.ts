/**
 * Text conditioning: tokenizer and captions (engine-free), the text U-Net
 * (prompt changes the output, gradients reach the encoder), its ONNX export
 * (ORT = tfjs), condition building from prompts/classes, and a tiny training
 * run whose checkpoint remembers its vocabulary and answers prompts.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import { DiffuseError } from '../../src/errors.js';
import { defaultConfig, parseConfig, stringifyConfig, type DiffuseConfig } from '../../src/config.js';
import { buildVocab, detokenize, tokenize, words } from '../../src/text/tokenizer.js';
import { allCaptions, defaultCaptions, sampleCaption, withTextConditioning } from '../../src/text/captions.js';
import { FASHION_MNIST_LABEL_NAMES } from '../../src/data/fashion-mnist.js';
import { MNIST_LABEL_NAMES } from '../../src/data/mnist.js';
import { classCondition, promptCondition, resolveClassFor } from '../../src/guidance/condition.js';
import { Rng } from '../../src/rng.js';
import { unetParamSpecs } from '../../src/model/unet.js';
import { exportUNetToOnnx } from '../../src/onnx/export-unet.js';
import { createOrtModelFn, ortAvailable } from '../../src/onnx/runner.js';
import { modelFnFromUNet } from '../../src/model/runner.js';
import { train } from '../../src/train/train.js';
import { loadModelWeights } from '../../src/train/checkpoint.js';
import { generateWith, loadPipeline } from '../../src/pipeline.js';
import type { Dataset } from '../../src/data/dataset.js';
import { maxAbs, maxAbsDiff, randomUNet, uniform } from '../onnx/helpers.js';

before(async () => {
  await initEngine({ backend: 'wasm' });
});

function fashionTextConfig(overrides: Partial<DiffuseConfig['model']> = {}): DiffuseConfig {
  const base = defaultConfig({
    data: { dataset: 'fashion-mnist', imageSize: 8, channels: 1 },
    diffusion: { schedule: 'linear', timesteps: 100, prediction: 'epsilon' },
    model: { baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [4], groups: 4, ...overrides },
    train: { batchSize: 4, steps: 4, lr: 1e-3, warmupSteps: 1, workers: 1, seed: 3, sampleEvery: 0, checkpointEvery: 0 },
  });
  return withTextConditioning(base, FASHION_MNIST_LABEL_NAMES, { dim: 16 });
}

test('words and vocabulary: lower-case runs of letters/digits, pad first, sorted, unique', () => {
  assert.deepEqual(words('A photo of a T-shirt/Top!'), ['a', 'photo', 'of', 'a', 't', 'shirt', 'top']);
  assert.deepEqual(buildVocab(['the boot', 'a Boot', 'ankle boot']), ['<pad>', 'a', 'ankle', 'boot', 'the']);
});

test('tokenize: ids padded to maxTokens; unknown words (with the closest known ones) and long prompts are errors', () => {
  const cfg = fashionTextConfig();
  const text = cfg.model.text!;
  const ids = tokenize('Ankle Boot', text);
  assert.equal(ids.length, text.maxTokens);
  assert.equal(detokenize(ids, text), 'ankle boot');
  assert.deepEqual([...ids.slice(2)], new Array(text.maxTokens - 2).fill(0));
  assert.throws(() => tokenize('a purple boot', text), (e: unknown) => e instanceof DiffuseError && /^unknown word 'purple' in prompt 'a purple boot'; closest known words: purse$/.test(e.message));
  assert.throws(() => tokenize('a xylophone', text), (e: unknown) => e instanceof DiffuseError && /^unknown word 'xylophone' in prompt 'a xylophone'; no known word is close \(this model knows \d+ words\)$/.test(e.message));
  assert.throws(() => tokenize('a snaeker', text), (e: unknown) => e instanceof DiffuseError && /unknown word 'snaeker'.*closest known words: sneaker, sneakers/.test(e.message));
  assert.throws(() => tokenize(new Array(text.maxTokens + 1).fill('boot').join(' '), text), /at most/);
  assert.deepEqual([...tokenize('', text)], new Array(text.maxTokens).fill(0));
});

test('captions: built-in synonyms, every template fits maxTokens, sampling is seeded', () => {
  const caps = defaultCaptions(FASHION_MNIST_LABEL_NAMES);
  assert.equal(caps.length, 10);
  assert.equal(caps[9]![0], 'ankle boot');
  assert.ok(caps[7]!.includes('running shoe'));
  assert.deepEqual(defaultCaptions(MNIST_LABEL_NAMES)[7], ['seven', '7', 'digit seven', 'number seven']);
  assert.deepEqual(defaultCaptions(['cat', 'Dog']), [['cat'], ['dog']]);
  const cfg = fashionTextConfig();
  for (const c of allCaptions(caps)) tokenize(c, cfg.model.text!); // none throws
  const a = new Rng(5), b = new Rng(5);
  const s1 = Array.from({ length: 20 }, () => sampleCaption(9, caps, a));
  assert.deepEqual(s1, Array.from({ length: 20 }, () => sampleCaption(9, caps, b)));
  assert.ok(s1.every((s) => /boot/.test(s)));
  assert.ok(new Set(s1).size > 3, 'captions vary');
});

test('config: text models round-trip through config.json; classes and text are exclusive; captions required', () => {
  const cfg = fashionTextConfig();
  assert.deepEqual(parseConfig(stringifyConfig(cfg), 't'), cfg);
  const { captions: _drop, ...dataNoCaps } = cfg.data;
  assert.throws(() => parseConfig({ ...cfg, data: dataNoCaps }, 'x.json'), /captions/);
  assert.throws(() => parseConfig({ ...cfg, model: { ...cfg.model, numClasses: 10 } }, 'x.json'), /not both/);
  assert.throws(() => parseConfig({ ...cfg, model: { ...cfg.model, text: { ...cfg.model.text!, vocab: ['a', 'b'] } } }, 'x.json'), /<pad>/);
});

test('conditions: prompts tokenize, classes map to their canonical prompt, class models accept names', () => {
  const cfg = fashionTextConfig();
  const L = cfg.model.text!.maxTokens;
  const p = promptCondition(cfg, ['boot', ''], 2);
  assert.equal(p.cond.length, 2 * L);
  assert.deepEqual([...p.nullCond], new Array(L).fill(0));
  assert.deepEqual([...p.cond.slice(L)], new Array(L).fill(0));
  const c = classCondition(cfg, [9, -1], 1);
  assert.equal(detokenize(c.cond.subarray(0, L), cfg.model.text!), 'ankle boot');
  assert.equal(resolveClassFor(cfg, 'running shoe'), 7);
  assert.equal(resolveClassFor(cfg, 'Ankle boot'), 9);
  assert.throws(() => promptCondition(cfg, ['a purple boot'], 1), /unknown word/);
  const classModel = defaultConfig({ model: { numClasses: 10 }, data: { dataset: 'mnist', imageSize: 28, channels: 1, labelNames: [...MNIST_LABEL_NAMES] } });
  const q = promptCondition(classModel, ['seven', ''], 3);
  assert.deepEqual([...q.cond], [7, 10]);
  assert.deepEqual([...q.nullCond], [10]);
});

test('text U-Net: the prompt changes the output, no prompt = all pads, gradients reach the text encoder', async () => {
  const cfg = fashionTextConfig();
  const { unet: net } = await randomUNet(cfg.model, 1);
  try {
    assert.ok(unetParamSpecs(cfg.model).some((s) => s.name === 'mid.xattn.0.kv.kernel'));
    assert.ok(unetParamSpecs(cfg.model).some((s) => s.name === 'down.1.xattn.0.q.kernel'));
    const L = cfg.model.text!.maxTokens;
    const fn = modelFnFromUNet(net, tf);
    const x = uniform(2 * 64, 3);
    const boot = promptCondition(cfg, ['boot', 'boot'], 0).cond;
    const bag = promptCondition(cfg, ['bag', 'bag'], 0).cond;
    const a = await fn(x, 50, [2, 8, 8, 1], boot);
    const b = await fn(x, 50, [2, 8, 8, 1], bag);
    const none = await fn(x, 50, [2, 8, 8, 1]);
    const pads = await fn(x, 50, [2, 8, 8, 1], new Int32Array(2 * L));
    assert.ok(maxAbsDiff(a, b) > 1e-3, `prompts give different outputs (${maxAbsDiff(a, b)})`);
    assert.equal(maxAbsDiff(none, pads), 0);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => tf.tidy(() => {
      const y = net.apply(tf.tensor4d(x, [2, 8, 8, 1]), tf.tensor1d([10, 60]), { tokens: tf.tensor2d(boot, [2, L], 'int32') });
      return tf.mean(tf.square(y)) as tf.Scalar;
    }), [...net.params.values()]);
    const g = await grads[net.params.get('text.tok_emb.table')!.name]!.data();
    const gq = await grads[net.params.get('mid.xattn.0.kv.kernel')!.name]!.data();
    assert.ok(maxAbs(g as Float32Array) > 0 && maxAbs(gq as Float32Array) > 0, 'gradient reaches the token table and the cross-attention');
    tf.dispose([value, ...Object.values(grads)]);
    assert.equal(tf.memory().numTensors, before);
  } finally {
    net.dispose();
  }
});

const skip = !(await ortAvailable()) && 'onnxruntime-node unavailable';

test('ONNX export of a text model matches tfjs (prompts and no prompt)', { skip }, async () => {
  const cfg = fashionTextConfig();
  const { unet: net, params } = await randomUNet(cfg.model, 4);
  const ort = await createOrtModelFn(exportUNetToOnnx(cfg.model, params), { threads: 1 });
  const ref = modelFnFromUNet(net, tf);
  try {
    assert.equal(ort.tokenLength, cfg.model.text!.maxTokens);
    const x = uniform(3 * 64, 8);
    const cond = promptCondition(cfg, ['a photo of a sneaker', 'ankle boot', ''], 0).cond;
    for (const t of [0, 47, 99]) {
      const want = await ref(x, t, [3, 8, 8, 1], cond);
      const d = maxAbsDiff(await ort(x, t, [3, 8, 8, 1], cond), want);
      assert.ok(d < 1e-4, `t=${t}: max abs diff ${d.toExponential(2)}`);
    }
    const d0 = maxAbsDiff(await ort(x, 5, [3, 8, 8, 1]), await ref(x, 5, [3, 8, 8, 1]));
    assert.ok(d0 < 1e-4, `no prompt: ${d0}`);
    await assert.rejects(ort(x, 5, [3, 8, 8, 1], new Int32Array(3 * cfg.model.text!.maxTokens).fill(999)), /outside the vocabulary/);
  } finally {
    await ort.dispose();
    net.dispose();
  }
});

test('a tiny text-conditioned training run: checkpoint keeps vocab and captions, prompts sample, unknown words fail', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-text-'));
  try {
    const rng = new Rng(1);
    const n = 12;
    const images = new Float32Array(n * 64);
    for (let i = 0; i < images.length; i++) images[i] = Math.tanh(rng.normal());
    const data: Dataset = { name: 'fashion-mnist', images, shape: [n, 8, 8, 1], labels: Int32Array.from({ length: n }, (_, i) => i % 10), labelNames: [...FASHION_MNIST_LABEL_NAMES] };
    const cfg = fashionTextConfig();
    const r = await train({ config: cfg, outDir: dir, dataset: data, progress: null });
    assert.equal(r.step, 4);
    assert.ok(Number.isFinite(r.lastLoss));
    const { config } = await loadModelWeights(join(dir, 'checkpoint'), 'ema');
    assert.deepEqual(config.model.text, cfg.model.text);
    assert.deepEqual(config.data.captions, cfg.data.captions);
    const pipe = await loadPipeline(dir, { engine: 'tfjs' });
    try {
      const out = await generateWith(pipe, { sampler: 'ddim', steps: 3, n: 2, seed: 1, condition: promptCondition(pipe.config, ['boot', 'bag'], 2) });
      assert.equal(out.images.length, 2 * 64);
      assert.ok(out.images.every((v) => Number.isFinite(v)));
      assert.throws(() => promptCondition(pipe.config, ['spaceship'], 2), /unknown word 'spaceship'/);
    } finally {
      await pipe.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
