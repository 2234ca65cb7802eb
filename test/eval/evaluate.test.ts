/**
 * Sanity of the whole measuring stick with the shipped MNIST classifier, at a
 * modest N: pure noise ≫ blurred digits ≫ real digits, and seeded = repeatable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import { DiffuseError } from '../../src/errors.js';
import { Rng } from '../../src/rng.js';
import { loadClassifier, classifierAccuracy } from '../../src/eval/classifier.js';
import { classAgreement, evaluateSamples, fitToClassifier, realFloor, referenceFeatures, sampleIndices, type ImageBatch, type SampleScores } from '../../src/eval/evaluate.js';
import { loadEvalSplits } from '../../src/eval/splits.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const N = 500;

/** 3×3 box blur, applied `passes` times (edges clamped), NHWC with C = 1. */
function blur(images: Float32Array, n: number, s: number, passes: number): Float32Array {
  let src = Float32Array.from(images);
  for (let p = 0; p < passes; p++) {
    const dst = new Float32Array(src.length);
    for (let b = 0; b < n; b++) {
      const o = b * s * s;
      for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
        let acc = 0;
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
          const yy = Math.min(s - 1, Math.max(0, y + dy)), xx = Math.min(s - 1, Math.max(0, x + dx));
          acc += src[o + yy * s + xx]!;
        }
        dst[o + y * s + x] = acc / 9;
      }
    }
    src = dst;
  }
  return src;
}

test('shipped MNIST classifier: FID(noise) ≫ FID(blurred digits) > FID(real digits); deterministic for a seed', async () => {
  await initEngine({ backend: 'wasm' });
  const before = tf.memory().numTensors;
  const clf = loadClassifier(join(root, 'models', 'classifier-mnist'));
  try {
    const { train, heldOut } = await loadEvalSplits('mnist');
    assert.ok(classifierAccuracy(clf, heldOut) >= 0.98, 'the shipped classifier keeps its held-out accuracy');
    const [, s] = train.shape;
    const idx = sampleIndices(train.shape[0], N, 99);
    const per = s * s;
    const realImgs = new Float32Array(N * per);
    idx.forEach((i, k) => realImgs.set(train.images.subarray(i * per, (i + 1) * per), k * per));
    const real: ImageBatch = { images: realImgs, shape: [N, s, s, 1] };
    const blurred: ImageBatch = { images: blur(realImgs, N, s, 1), shape: [N, s, s, 1] };
    const rng = new Rng(1);
    const noise: ImageBatch = { images: new Float32Array(N * per).map(() => rng.uniform() * 2 - 1), shape: [N, s, s, 1] };

    const ref = referenceFeatures(clf, heldOut, N, 0);
    const score = (samples: ImageBatch): SampleScores => evaluateSamples({ classifier: clf, samples, reference: ref, n: N, kid: { subsets: 50 } });
    const r = score(real), b = score(blurred), z = score(noise);
    assert.ok(z.fid > 3 * b.fid, `noise ${z.fid} vs blurred ${b.fid}`);
    assert.ok(b.fid > 2 * r.fid, `blurred ${b.fid} vs real ${r.fid}`);
    assert.ok(z.kid > b.kid && b.kid > r.kid, `KID noise ${z.kid}, blurred ${b.kid}, real ${r.kid}`);
    assert.ok(Math.abs(r.kid) < 3 * r.kidStd + 1e-3, `real digits: KID ${r.kid} ± ${r.kidStd} should be ≈ 0`);
    // Real digits cover all ten classes about evenly; noise collapses onto few.
    assert.ok(r.classEntropyNormalized > 0.97, `real entropy ${r.classEntropyNormalized}`);
    assert.equal(r.classesCovered, 10);
    assert.ok(z.classEntropyNormalized < r.classEntropyNormalized);
    assert.equal(r.classHistogram.reduce((a, c) => a + c, 0), N);
    assert.equal(r.n, N);

    // Same seed: identical numbers (also when the reference features are not precomputed);
    // another seed draws another reference subset.
    assert.deepEqual(evaluateSamples({ classifier: clf, samples: blurred, reference: heldOut, n: N, seed: 0, kid: { subsets: 50 } }), b);
    assert.throws(() => evaluateSamples({ classifier: clf, samples: blurred, reference: ref, n: N, seed: 1 }), /seed 0/);
    assert.notDeepEqual(sampleIndices(heldOut.shape[0], N, 1), sampleIndices(heldOut.shape[0], N, 0));

    // The real-vs-real floor draws training images itself: close to the real-digit score.
    const floor = realFloor({ classifier: clf, train, reference: heldOut, referenceFeatures: ref, n: N, kid: { subsets: 50 } });
    assert.ok(floor.fid < b.fid / 2, `floor ${floor.fid} vs blurred ${b.fid}`);

    // 32×32 3-channel samples are brought to the classifier's 28×28×1.
    const big = fitToClassifier(clf, { images: new Float32Array(2 * 32 * 32 * 3).fill(0.5), shape: [2, 32, 32, 3] });
    assert.deepEqual(big.shape, [2, 28, 28, 1]);
    assert.ok(Math.abs(big.images[100]! - 0.5) < 1e-6);

    assert.throws(() => evaluateSamples({ classifier: clf, samples: real, reference: heldOut, n: N + 1 }), /only 500 images/);
    assert.throws(() => evaluateSamples({ classifier: clf, samples: { images: realImgs, shape: [N, 28, 27, 1] }, reference: heldOut, n: 10 }), DiffuseError);
  } finally {
    clf.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'no tensors leak');
});

test('class agreement: real test digits agree with their labels, shifted labels do not, unconditional rows are ignored', async () => {
  await initEngine({ backend: 'wasm' });
  const clf = loadClassifier(join(root, 'models', 'classifier-mnist'));
  try {
    const splits = await loadEvalSplits('mnist');
    const ds = splits.heldOut;
    const n = 200;
    const [, h, w, c] = ds.shape;
    const batch: ImageBatch = { images: ds.images.slice(0, n * h * w * c), shape: [n, h, w, c] };
    const labels = Int32Array.from(ds.labels!.slice(0, n));
    const right = classAgreement(clf, batch, labels);
    assert.ok(right.overall > 0.95, `true labels: ${right.overall}`);
    assert.equal(right.counts.reduce((a, b) => a + b, 0), n);
    const wrong = classAgreement(clf, batch, labels.map((l) => (l + 1) % 10));
    assert.ok(wrong.overall < 0.1, `shifted labels: ${wrong.overall}`);
    assert.ok(wrong.worst <= wrong.overall);
    // The confusion matrix: rows sum to the counts, its diagonal is the hits, and
    // shifting the asked-for labels by one shifts the matrix by one column.
    right.confusion.forEach((row, k) => {
      assert.equal(row.reduce((a, b) => a + b, 0), right.counts[k]);
      assert.ok(Math.abs(row[k]! / right.counts[k]! - right.perClass[k]!) < 1e-12);
      assert.deepEqual(wrong.confusion[(k + 1) % 10], row);
    });
    const half = labels.map((l, i) => (i % 2 === 0 ? l : -1));
    assert.equal(classAgreement(clf, batch, half).counts.reduce((a, b) => a + b, 0), n / 2);
    assert.throws(() => classAgreement(clf, batch, labels.subarray(0, 5)), DiffuseError);
  } finally {
    clf.dispose();
  }
});
