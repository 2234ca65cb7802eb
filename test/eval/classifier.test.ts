import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import { DiffuseError } from '../../src/errors.js';
import { loadDataset } from '../../src/data/index.js';
import { limitDataset, type Dataset } from '../../src/data/dataset.js';
import {
  classifierAccuracy,
  classifierParamCount,
  createClassifier,
  defaultClassifierConfig,
  loadClassifier,
  saveClassifier,
  trainClassifier,
} from '../../src/eval/classifier.js';
import { loadEvalSplits, splitHeldOut } from '../../src/eval/splits.js';
import { FASHION_MNIST_DIR } from '../../src/data/fashion-mnist.js';

test('splitHeldOut: deterministic, disjoint, per-class 20%', async () => {
  const ds = await loadDataset({ name: 'mnist' });
  const a = splitHeldOut(ds, 0.2, 12345);
  const b = splitHeldOut(ds, 0.2, 12345);
  assert.equal(a.train.shape[0] + a.heldOut.shape[0], ds.shape[0]);
  assert.deepEqual(a.heldOut.labels, b.heldOut.labels);
  assert.deepEqual(a.heldOut.images.subarray(0, 2000), b.heldOut.images.subarray(0, 2000));
  const c = splitHeldOut(ds, 0.2, 1);
  assert.notDeepEqual(c.heldOut.images.subarray(0, 7840), a.heldOut.images.subarray(0, 7840));
  const counts = new Map<number, [number, number]>();
  for (const l of ds.labels!) counts.set(l, [(counts.get(l)?.[0] ?? 0) + 1, 0]);
  for (const l of a.heldOut.labels!) counts.get(l)![1]++;
  for (const [l, [all, held]] of counts) assert.equal(held, Math.round(all * 0.2), `class ${l}`);
  assert.throws(() => splitHeldOut(ds, 1), DiffuseError);
});

test('classifier: features [N, D] and probabilities from one forward pass; save/load round-trips exactly', async () => {
  await initEngine({ backend: 'wasm' });
  const before = tf.memory().numTensors;
  const config = defaultClassifierConfig({ convChannels: [4, 8], featureDim: 16, labelNames: ['a', 'b', 'c'], numClasses: 3, imageSize: 12 });
  const clf = createClassifier(config, 3);
  const n = 7;
  const x = new Float32Array(n * 12 * 12).map((_, i) => Math.sin(i * 0.37));
  const f = clf.features(x);
  assert.equal(f.length, n * 16);
  assert.ok(f.every((v) => v >= 0), 'features are after a ReLU');
  assert.ok(f.some((v) => v > 0));
  const p = clf.predict(x);
  assert.equal(p.probs.length, n * 3);
  for (let i = 0; i < n; i++) {
    const row = p.probs.subarray(i * 3, i * 3 + 3);
    assert.ok(Math.abs(row[0]! + row[1]! + row[2]! - 1) < 1e-5);
    assert.equal(p.labels[i], row.indexOf(Math.max(...row)));
  }
  assert.equal(classifierParamCount(config), clf.params.size === 0 ? 0 : [...clf.params.values()].reduce((a, v) => a + v.size, 0));
  const dir = mkdtempSync(join(tmpdir(), 'clf-'));
  try {
    const out = join(dir, 'nested', 'clf');
    await saveClassifier(out, clf);
    await saveClassifier(out, clf); // replacing an existing folder works too
    assert.deepEqual(readdirSync(out).sort(), ['config.json', 'weights.safetensors']);
    assert.deepEqual(readdirSync(join(dir, 'nested')), ['clf'], 'no temp folders left behind');
    const back = loadClassifier(out);
    assert.deepEqual(back.config, clf.config);
    assert.deepEqual(back.features(x), f);
    back.dispose();
    assert.throws(() => loadClassifier(join(dir, 'missing')), /missing config.json/);
    writeFileSync(join(out, 'config.json'), '{"version": 1, "kind": "cnn-classifier", "imageSize": 0}');
    assert.throws(() => loadClassifier(out), /imageSize must be a positive integer/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => clf.features(new Float32Array(100)), DiffuseError);
  assert.throws(() => tf.tidy(() => clf.forward(tf.zeros([1, 10, 10, 1]) as tf.Tensor4D)), /expects images 12×12×1/);
  clf.dispose();
  assert.equal(tf.memory().numTensors, before, 'no tensors leak');
});

test('trainClassifier learns (far above chance after a short run) and is deterministic for a seed', async () => {
  await initEngine({ backend: 'wasm' });
  const ds = await loadDataset({ name: 'mnist' });
  const { train, heldOut } = splitHeldOut(ds, 0.2, 12345);
  const small = limitDataset(train, 640);
  const testSet300 = limitDataset(heldOut, 300);
  const before = tf.memory().numTensors;
  const run = () => trainClassifier({ dataset: small, testSet: testSet300, epochs: 2, batchSize: 16, seed: 5, augment: false, config: { convChannels: [8, 16, 16], featureDim: 32 } });
  const a = await run();
  assert.ok(a.testAccuracy > 0.5, `held-out accuracy ${a.testAccuracy} after 80 steps (chance 0.1)`);
  assert.equal(a.classifier.config.training?.testAccuracy, a.testAccuracy);
  assert.equal(a.classifier.config.training?.trainCount, 640);
  const b = await run();
  assert.equal(b.testAccuracy, a.testAccuracy);
  assert.deepEqual(b.classifier.params.get('head.kernel')!.dataSync(), a.classifier.params.get('head.kernel')!.dataSync());
  a.classifier.dispose();
  b.classifier.dispose();
  assert.equal(tf.memory().numTensors, before, 'no tensors leak');
  await assert.rejects(trainClassifier({ dataset: small, testSet: testSet300, epochs: 0 }), DiffuseError);
  const unlabelled: Dataset = { name: 'unlabelled', images: small.images, shape: small.shape };
  await assert.rejects(trainClassifier({ dataset: unlabelled, testSet: testSet300 }), /no labels/);
});

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const noFashion = !existsSync(FASHION_MNIST_DIR) && `Fashion-MNIST not installed (${FASHION_MNIST_DIR}; Debian package dataset-fashion-mnist)`;
if (noFashion) console.log(`shipped Fashion-MNIST classifier test skipped: ${noFashion}`);

test('shipped MNIST classifier classifies the held-out digits it never saw (≥ 97%), and not by chance', async () => {
  await initEngine({ backend: 'wasm' });
  const clf = loadClassifier(join(ROOT, 'models', 'classifier-mnist'));
  try {
    const { heldOut } = await loadEvalSplits('mnist');
    const test1000 = limitDataset(heldOut, 1000);
    const acc = classifierAccuracy(clf, test1000);
    assert.ok(acc >= 0.97, `accuracy on 1000 held-out digits ${acc}`);
    // the same images with their labels rotated by one: a classifier that reads the digits gets almost none right
    const wrong: Dataset = { ...test1000, labels: test1000.labels!.map((l) => (l + 1) % 10) };
    assert.ok(classifierAccuracy(clf, wrong) < 0.05);
  } finally {
    clf.dispose();
  }
});

test('shipped Fashion-MNIST classifier classifies test images (≥ 88% on 1000, class-balanced)', { skip: noFashion }, async () => {
  await initEngine({ backend: 'wasm' });
  const clf = loadClassifier(join(ROOT, 'models', 'classifier-fashion-mnist'));
  try {
    assert.equal(clf.config.training?.dataset, 'fashion-mnist');
    assert.ok(classifierParamCount(clf.config) * 4 < 1024 * 1024, 'weights well under 1 MB');
    const test1000 = await loadDataset({ name: 'fashion-mnist', split: 'test', limit: 1000 });
    const acc = classifierAccuracy(clf, test1000);
    assert.ok(acc >= 0.88, `accuracy on 1000 class-balanced test images ${acc}`);
  } finally {
    clf.dispose();
  }
});
