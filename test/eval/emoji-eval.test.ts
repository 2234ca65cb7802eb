/**
 * The emoji measuring instruments: colour classifier with category groups and
 * area resampling, the classifier's splits, prompt agreement on fake "images
 * from prompts" functions, the floor's prompts, RGB FID/KID plumbing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import { DiffuseError } from '../../src/errors.js';
import { Rng } from '../../src/rng.js';
import { defaultConfig } from '../../src/config.js';
import { resizeAreaFloat, subsetDataset, type Dataset } from '../../src/data/dataset.js';
import { EMOJI_ALWAYS_TRAINED, emojiCatalog, loadEmoji, type EmojiImage } from '../../src/data/emoji.js';
import { withCaptionConditioning } from '../../src/text/captions.js';
import {
  augmentBatch, classifierAccuracies, classifierAccuracy, classifierParamCount, createClassifier, defaultClassifierConfig, loadClassifier, trainClassifier, validateClassifierConfig, type Classifier,
} from '../../src/eval/classifier.js';
import { classAgreement, evaluateSamples, fitToClassifier, floorIndices, realFloor, referenceFeatures } from '../../src/eval/evaluate.js';
import { emojiPromptRequests, evalPrompts } from '../../src/eval/emoji-prompts.js';
import { floorPrompts, pipelineImages, promptAgreement, promptReadable, type ImagesFromPrompts } from '../../src/eval/prompts.js';
import { emojiClassifierValidation, emojiGroups, loadEmojiEvalSplits, EMOJI_VALIDATION_STYLE } from '../../src/eval/splits.js';
import type { ImageBatch } from '../../src/tensor.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SHIPPED = join(root, 'models', 'classifier-emoji');

/** Toy colour task: a red, green or blue square at a random place on white; groups: red vs not red. */
function colourSquares(n: number, seed: number, S = 12): Dataset {
  const rng = new Rng(seed);
  const images = new Float32Array(n * S * S * 3).fill(1);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % 3;
    labels[i] = k;
    const side = 3 + rng.int(4);
    const y0 = rng.int(S - side + 1), x0 = rng.int(S - side + 1);
    for (let y = y0; y < y0 + side; y++) for (let x = x0; x < x0 + side; x++) {
      for (let c = 0; c < 3; c++) images[((i * S + y) * S + x) * 3 + c] = c === k ? 0.8 : -0.8;
    }
  }
  return { name: `squares-${seed}`, images, shape: [n, S, S, 3], labels, labelNames: ['red', 'green', 'blue'] };
}

test('classifier config: resize and groups are checked; fitToClassifier shrinks by area averages when asked', async () => {
  await initEngine({ backend: 'wasm' });
  const base = defaultClassifierConfig({ imageSize: 8, channels: 3, numClasses: 3, convChannels: [4, 4], featureDim: 8 });
  assert.throws(() => validateClassifierConfig({ ...base, resize: 'nearest' }), /resize must be one of bilinear, area/);
  assert.throws(() => validateClassifierConfig({ ...base, groups: { name: 'g', names: ['a'], ofClass: [0, 0] } }), /ofClass must give each of the 3 classes a group in 0..0/);
  assert.throws(() => validateClassifierConfig({ ...base, groups: { name: 'g', names: ['a', 'b'], ofClass: [0, 2, 1] } }), /groups.ofClass/);
  assert.throws(() => validateClassifierConfig({ ...base, groups: null }), /groups must be/);
  validateClassifierConfig({ ...base, groups: { name: 'g', names: ['a', 'b'], ofClass: [0, 1, 1] } });

  const rng = new Rng(4);
  const big: ImageBatch = { images: new Float32Array(2 * 24 * 24 * 3).map(() => rng.uniform() * 2 - 1), shape: [2, 24, 24, 3] };
  const area = createClassifier({ ...base, resize: 'area' }, 0);
  const bilinear = createClassifier(base, 0);
  try {
    const a = fitToClassifier(area, big);
    assert.deepEqual(a.shape, [2, 8, 8, 3]);
    const want = new Float32Array(2 * 8 * 8 * 3);
    for (let i = 0; i < 2; i++) resizeAreaFloat(big.images.subarray(i * 1728, (i + 1) * 1728), 24, 24, 3, 8, 8, want, i * 192);
    assert.deepEqual(a.images, want, 'area: each pixel the mean of its 3×3 block');
    let block = 0;
    for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) block += big.images[(y * 24 + x) * 3]!;
    assert.ok(Math.abs(want[0]! - block / 9) < 1e-6);
    // Bilinear (the default) at a factor of 3 reads the centre pixel of each block.
    const b = fitToClassifier(bilinear, big);
    assert.ok(Math.abs(b.images[0]! - big.images[(1 * 24 + 1) * 3]!) < 1e-6, 'the default stays bilinear');
    // Smaller images are still enlarged (bilinear) under 'area'.
    assert.deepEqual(fitToClassifier(area, { images: new Float32Array(4 * 4 * 3), shape: [1, 4, 4, 3] }).shape, [1, 8, 8, 3]);
  } finally {
    area.dispose();
    bilinear.dispose();
  }
});

test('augmentBatch: flips mirror exactly, shifts repeat the edge; a constant image is unchanged', () => {
  const S = 5, C = 3;
  const img = new Float32Array(S * S * C).map((_, i) => i);
  const x = new Float32Array(40 * S * S * C);
  for (let b = 0; b < 40; b++) x.set(img, b * S * S * C);
  augmentBatch(x, 40, S, C, { shift: 0, flip: true }, new Rng(1));
  const mirror = new Float32Array(S * S * C);
  for (let y = 0; y < S; y++) for (let xx = 0; xx < S; xx++) for (let c = 0; c < C; c++) mirror[(y * S + xx) * C + c] = img[(y * S + (S - 1 - xx)) * C + c]!;
  let flipped = 0;
  for (let b = 0; b < 40; b++) {
    const got = x.subarray(b * S * S * C, (b + 1) * S * S * C);
    const isMirror = got.every((v, i) => v === mirror[i]);
    assert.ok(isMirror || got.every((v, i) => v === img[i]), `image ${b} is neither itself nor its mirror`);
    if (isMirror) flipped++;
  }
  assert.ok(flipped > 8 && flipped < 32, `${flipped} of 40 flipped`);
  // Shift by (dy, dx): out(y, x) = in(clamp(y − dy), clamp(x − dx)); find each image's shift among the 25.
  const y2 = new Float32Array(30 * S * S * C);
  for (let b = 0; b < 30; b++) y2.set(img, b * S * S * C);
  augmentBatch(y2, 30, S, C, { shift: 2, flip: false }, new Rng(2));
  const cl = (v: number): number => Math.min(S - 1, Math.max(0, v));
  for (let b = 0; b < 30; b++) {
    const got = y2.subarray(b * S * S * C, (b + 1) * S * S * C);
    let match = false;
    for (let dy = -2; dy <= 2 && !match; dy++) for (let dx = -2; dx <= 2 && !match; dx++) {
      match = got.every((v, i) => { const c = i % C, p = (i - c) / C, yy = Math.floor(p / S), xx = p % S; return v === img[(cl(yy - dy) * S + cl(xx - dx)) * C + c]; });
    }
    assert.ok(match, `image ${b} is no edge-repeating shift of the original`);
  }
  const white = new Float32Array(4 * S * S * C).fill(1);
  augmentBatch(white, 4, S, C, { shift: 2, flip: true }, new Rng(3));
  assert.ok(white.every((v) => v === 1));
});

test('trainClassifier on colour squares: learns, reports validation and group accuracy in its record', async () => {
  await initEngine({ backend: 'wasm' });
  const before = tf.memory().numTensors;
  const train = colourSquares(192, 1);
  const test = colourSquares(60, 2);
  const val = colourSquares(30, 3);
  const res = await trainClassifier({
    dataset: train, testSet: test, validation: { data: val, description: 'other squares' },
    epochs: 4, batchSize: 16, seed: 2, lr: 5e-3, augment: { shift: 1, flip: true },
    config: { convChannels: [8, 8], featureDim: 16, groups: { name: 'redness', names: ['red', 'not red'], ofClass: [0, 1, 1] } },
  });
  try {
    const t = res.classifier.config.training!;
    assert.ok(res.testAccuracy > 0.75, `held-out accuracy ${res.testAccuracy} (chance 1/3)`);
    assert.equal(t.epochAccuracies!.length, 4);
    assert.equal(t.epochAccuracies![3], res.testAccuracy);
    assert.deepEqual(t.augment, { shift: 1, flip: true });
    assert.equal(t.validation, 'other squares');
    assert.equal(t.validationCount, 30);
    assert.equal(t.validationAccuracy, classifierAccuracy(res.classifier, val));
    const acc = classifierAccuracies(res.classifier, test);
    assert.equal(t.testGroupAccuracy, acc.groupAccuracy);
    assert.ok(acc.groupAccuracy! >= acc.accuracy, 'a right class is always in the right group');
  } finally {
    res.classifier.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'no tensors leak');
  await assert.rejects(trainClassifier({ dataset: train, testSet: test, augment: { shift: -1, flip: false } }), /augment.shift/);
  await assert.rejects(trainClassifier({ dataset: train, testSet: colourSquares(10, 4, 10) }), /squares-4 images are 10×10×3/);
});

test('emoji eval splits: validation is the Google style of a tenth of the training emoji; groups are the categories', async () => {
  const s = await loadEmojiEvalSplits({ imageSize: 8 });
  assert.deepEqual(s.train.shape.slice(1), [8, 8, 3]);
  assert.equal(s.classifierTrain.shape[0] + s.validation.data.shape[0], s.train.shape[0]);
  assert.ok(s.validation.data.emoji.every((e) => e.style === EMOJI_VALIDATION_STYLE && e.split === 'train'));
  assert.ok(s.classifierTrain.emoji.every((e) => !emojiClassifierValidation(e)));
  const ids = new Set(s.train.emoji.map((e) => e.identity));
  const vIds = new Set(s.validation.data.emoji.map((e) => e.identity));
  assert.ok(vIds.size > 0.07 * ids.size && vIds.size < 0.13 * ids.size, `${vIds.size} of ${ids.size} identities`);
  // The classifier still sees each validation emoji in the other style.
  const seen = new Set(s.classifierTrain.emoji.map((e) => e.identity));
  assert.ok([...vIds].filter((id) => seen.has(id)).length >= 0.9 * vIds.size);
  assert.equal(s.heldOut.emoji.filter((e) => e.split !== 'heldout').length, 0);
  // Categories: every subcategory in exactly one.
  s.train.labels.forEach((k, i) => assert.equal(s.groups.ofClass[k], s.train.categories[i]));
  const bad = { name: 'x', labels: Int32Array.of(0, 0), labelNames: ['a'], categories: Int32Array.of(0, 1), categoryNames: ['c', 'd'] };
  assert.throws(() => emojiGroups(bad), /subcategory a lies in two categories/);
  // The validation images are the same pixels as in the full split.
  const k = s.train.emoji.indexOf(s.validation.data.emoji[0]!);
  assert.deepEqual(s.validation.data.images.subarray(0, 192), s.train.images.subarray(k * 192, (k + 1) * 192));
});

test('emoji prompt requests: one per identity, its name without tones, its subcategory; evenly spaced subsets', () => {
  const all = emojiCatalog().filter((e) => e.split === 'train');
  const names = [...new Set(emojiCatalog().map((e) => e.subcategory))].sort();
  const req = emojiPromptRequests({ emoji: all, name: 'emoji' }, names);
  assert.equal(req.length, new Set(all.map((e) => e.identity)).size);
  const apple = req.find((r) => r.prompt === 'red apple');
  assert.equal(apple?.subcategory, 'food-fruit', 'red apple trains (EMOJI_ALWAYS_TRAINED)');
  assert.equal(apple.images.length, 2, 'both styles');
  assert.equal(req.find((r) => r.prompt === 'two hearts'), undefined, 'two hearts is held out');
  const thumbs = req.find((r) => r.prompt === 'thumbs up sign');
  assert.equal(thumbs?.subcategory, 'hand-fingers-closed');
  assert.equal(thumbs.images.length, 12, 'both styles, base and five tones');
  for (const r of req.slice(0, 200)) {
    const imgs = r.images.map((i) => all[i]!);
    assert.ok(imgs.every((e) => e.identity === r.identity));
    assert.equal(names[r.label], r.subcategory);
    assert.ok(!r.prompt.includes('skin tone'), r.prompt);
    assert.equal(r.prompt, imgs.find((e: EmojiImage) => e.tones.length === 0)!.captions[0]);
  }
  const sub = emojiPromptRequests({ emoji: all, name: 'emoji' }, names, { count: 10 });
  assert.equal(sub.length, 10);
  assert.deepEqual(sub.map((r) => r.identity), Array.from({ length: 10 }, (_, i) => req[Math.floor((i * req.length) / 10)]!.identity));
  const few = emojiPromptRequests({ emoji: all, name: 'emoji' }, names, { readable: (p) => p.startsWith('cat') });
  assert.ok(few.length > 0 && few.every((r) => r.prompt.startsWith('cat')));
  assert.throws(() => emojiPromptRequests({ emoji: all, name: 'emoji' }, names, { readable: () => false }), /no readable prompt/);
  assert.throws(() => emojiPromptRequests({ emoji: all, name: 'emoji' }, ['face-smiling']), /is not one of the classifier's 1 classes/);
});

test('prompt agreement on fake models: real images of what was asked = the classifier\'s accuracy on them; a wrong class = 0', { skip: existsSync(SHIPPED) ? false : 'models/classifier-emoji not trained yet' }, async () => {
  await initEngine({ backend: 'wasm' });
  const clf: Classifier = loadClassifier(SHIPPED);
  try {
    const s = await loadEmojiEvalSplits({ imageSize: clf.config.imageSize });
    const requests = emojiPromptRequests(s.train, clf.config.labelNames!, { count: 60 });
    const first = new Map(requests.map((r) => [r.prompt, r.images[0]!]));
    const per = 32 * 32 * 3;
    // A perfect "model": the first real image of the emoji asked for (at 64×64, so it is also area-averaged on the way).
    const big = await loadEmoji({ split: 'train', imageSize: 64 });
    const real: ImagesFromPrompts = async (prompts, _w, _seed) => {
      const images = new Float32Array(prompts.length * 64 * 64 * 3);
      prompts.forEach((p, i) => { const k = first.get(p)!; images.set(big.images.subarray(k * 4 * per, (k + 1) * 4 * per), i * 4 * per); });
      return { images, shape: [prompts.length, 64, 64, 3], seconds: 0 };
    };
    const [a] = await promptAgreement({ classifier: clf, images: real, requests, weights: [2] });
    const truth = subsetDataset(s.train, requests.map((r) => r.images[0]!));
    assert.equal(a!.overall, classifierAccuracy(clf, truth));
    assert.equal(a!.guidance, 2);
    assert.ok(a!.overall > 0.5, `the classifier on real training emoji: ${a!.overall}`);
    assert.equal(a!.group!.overall, classifierAccuracies(clf, truth).groupAccuracy);
    // Asking for a class the classifier does not see in the returned image: 0, whatever the classifier.
    const seen = clf.predict(truth.images, truth.shape[0]).labels;
    const wrong = requests.map((r, i) => ({ prompt: r.prompt, label: (seen[i]! + 1) % clf.config.numClasses }));
    const [z] = await promptAgreement({ classifier: clf, images: real, requests: wrong, weights: [0], samplesPerPrompt: 2 });
    assert.equal(z!.overall, 0);
    assert.equal(z!.samples.shape[0], 2 * requests.length);
    await assert.rejects(promptAgreement({ classifier: clf, images: real, requests: [{ prompt: 'x', label: 999 }], weights: [0] }), /asks for class 999/);
    await assert.rejects(promptAgreement({ classifier: clf, images: real, requests, weights: [-1] }), /weights must be numbers ≥ 0/);
    const short: ImagesFromPrompts = async () => ({ images: new Float32Array(per), shape: [1, 32, 32, 3], seconds: 0 });
    await assert.rejects(promptAgreement({ classifier: clf, images: short, requests, weights: [0] }), /asked for 60 images, got 1/);

    // FID/KID on RGB: the 64×64 held-out images score 0 against their own 32×32 versions; noise does not.
    const ho = await loadEmoji({ split: 'heldout', imageSize: 64 });
    const n = s.heldOut.shape[0];
    const ref = referenceFeatures(clf, s.heldOut, n, 0);
    const same = evaluateSamples({ classifier: clf, samples: { images: ho.images, shape: ho.shape }, reference: ref, n, kid: { subsets: 20 } });
    assert.ok(Math.abs(same.fid) < 1e-3, `FID of the held-out images against themselves ${same.fid}`);
    const rng = new Rng(5);
    const noise = evaluateSamples({ classifier: clf, samples: { images: new Float32Array(n * per).map(() => rng.uniform() * 2 - 1), shape: [n, 32, 32, 3] }, reference: ref, n, kid: { subsets: 20 } });
    const floor = realFloor({ classifier: clf, train: s.train, reference: s.heldOut, referenceFeatures: ref, n, kid: { subsets: 20 } });
    assert.ok(noise.fid > 3 * floor.fid && floor.fid > 0, `noise ${noise.fid}, floor ${floor.fid}`);
    // The floor's training images are the ones floorPrompts asks for.
    const idx = floorIndices(s.train.shape[0], n, 0);
    const floorImgs = subsetDataset(s.train, idx);
    assert.deepEqual(evaluateSamples({ classifier: clf, samples: { images: floorImgs.images, shape: floorImgs.shape }, reference: ref, n, kid: { subsets: 20 } }), floor);
    assert.deepEqual(floorPrompts(s.train, n, 0), Array.from(idx, (i) => s.train.captions[i]![0]));
    const asked = evalPrompts(s, clf, { n: 12, seed: 0, agreement: true });
    assert.equal(asked.prompts.length, 12);
    assert.equal(asked.requested!.length, 12);
    assert.deepEqual(evalPrompts(s, clf, { n: 5, seed: 3, agreement: false }).prompts, floorPrompts(s.train, 5, 3));
    assert.equal(classAgreement(clf, { images: floorImgs.images, shape: floorImgs.shape }, Int32Array.from(floorImgs.labels!)).counts.reduce((x, y) => x + y, 0), n);
  } finally {
    clf.dispose();
  }
});

test('pipelineImages: prompts become conditions; a latent model\'s decode runs after sampling', async () => {
  const captions = [['red apple', 'an emoji of a red apple'], ['blue heart'], ['cat face']];
  const cfg = withCaptionConditioning(defaultConfig({ data: { dataset: 'emoji', imageSize: 4, channels: 3 }, diffusion: { schedule: 'linear', timesteps: 20, prediction: 'epsilon' } }), captions, { dim: 8 });
  const seenConds: Int32Array[] = [];
  const model = (x: Float32Array, _t: number, _shape: readonly number[], cond?: Int32Array): Float32Array => {
    if (cond !== undefined) seenConds.push(cond.slice());
    return new Float32Array(x.length);
  };
  const decode = async (b: ImageBatch): Promise<ImageBatch> => {
    const [n, h, w, c] = b.shape;
    return { images: new Float32Array(n * 2 * h * 2 * w * c).fill(0.25), shape: [n, 2 * h, 2 * w, c] };
  };
  let steps = 0;
  const make = pipelineImages({ config: cfg, model }, { steps: 3, decode, onStep: () => steps++ });
  const out = await make(['red apple', 'cat face'], 2, 0);
  assert.deepEqual(out.shape, [2, 8, 8, 3]);
  assert.ok(out.images.every((v) => v === 0.25));
  assert.ok(out.seconds >= 0);
  assert.equal(steps, 3);
  assert.ok(seenConds.length > 0 && seenConds.some((c) => c.some((v) => v !== 0)), 'the model saw the prompt tokens');
  const plain = await pipelineImages({ config: cfg, model }, { steps: 2 })(['blue heart'], 0, 0);
  assert.deepEqual(plain.shape, [1, 4, 4, 3]);
  assert.equal(promptReadable(cfg, 'red apple'), true);
  assert.equal(promptReadable(cfg, 'purple apple'), false);
  await assert.rejects(make(['purple apple'], 0, 0), DiffuseError);
});

test('shipped emoji classifier: 32×32 area, category groups, under 1 MB, and it keeps its recorded held-out accuracy', { skip: existsSync(SHIPPED) ? false : 'models/classifier-emoji not trained yet' }, async () => {
  await initEngine({ backend: 'wasm' });
  const clf = loadClassifier(SHIPPED);
  try {
    const cfg = clf.config;
    assert.equal(cfg.imageSize, 32);
    assert.equal(cfg.resize, 'area');
    assert.equal(cfg.groups?.names.length, 9);
    assert.ok(classifierParamCount(cfg) * 4 < 1024 * 1024, 'weights under 1 MB');
    const t = cfg.training!;
    assert.ok(t.testAccuracy >= 0.6 && t.validationAccuracy! >= 0.65, `recorded ${t.testAccuracy}, validation ${t.validationAccuracy}`);
    const s = await loadEmojiEvalSplits({ imageSize: 32 });
    // recorded on the held-out split of its date, which still held the red apple (EMOJI_ALWAYS_TRAINED since)
    const all = await loadEmoji({ split: 'all', imageSize: 32 });
    const ofItsDate = subsetDataset(all, all.emoji.flatMap((e, i) => (e.split === 'heldout' || EMOJI_ALWAYS_TRAINED.includes(e.identity) ? [i] : [])));
    assert.equal(ofItsDate.shape[0], t.testCount);
    assert.equal(ofItsDate.shape[0], s.heldOut.shape[0] + 2);
    const acc = classifierAccuracies(clf, ofItsDate);
    assert.equal(acc.accuracy, t.testAccuracy, 'the same held-out accuracy as recorded');
    assert.equal(acc.groupAccuracy, t.testGroupAccuracy);
    assert.equal(classifierAccuracy(clf, s.validation.data), t.validationAccuracy);
  } finally {
    clf.dispose();
  }
});
