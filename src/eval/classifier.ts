/**
 * A small CNN classifier: the feature extractor of our sample-quality metrics
 * (FID / KID on its penultimate layer, class histograms from its predictions).
 *
 *   x [N,H,W,C] in [-1,1]
 *   conv3x3 (stride 1) -> relu, then 3x conv3x3 (stride 2) -> relu   28 -> 14 -> 7 -> 4
 *   flatten -> dense(featureDim) -> relu      = the features (FID/KID)
 *   dense(numClasses)                         = logits
 *
 * Default: conv channels 32, 32, 64, 32 and 128 features (113k parameters,
 * about 3.3 M multiply-adds per 28×28 image).
 *
 * Written functionally over named parameters (like the U-Net) so everything
 * used has a gradient on the wasm backend with our kernels (strided convs
 * instead of pooling). Saved as a folder: config.json (architecture, label
 * names, how it was trained and its measured accuracy) + weights.safetensors,
 * swapped into place atomically (write a sibling temp folder, then rename).
 */
import * as tf from '../engine/tf.js';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { evenlySpacedIndices, subsetDataset } from '../data/dataset.js';
import { epochPermutation } from '../data/batches.js';
import { adamStep, cosineLearningRate, type FlatAdamState } from '../train/adam.js';
import { DiffuseError } from '../errors.js';
import { writeFileAtomicSync } from '../io/atomic.js';
import { readRegularFileSync } from '../io/files.js';
import { replaceFolder } from '../io/folder-swap.js';
import { Rng } from '../rng.js';
import { encodeSafetensors, readSafetensors } from '../io/safetensors.js';
import type { Weights } from '../tensor.js';

export const CLASSIFIER_FILES = ['config.json', 'weights.safetensors'] as const;

/**
 * Random label-preserving changes to each training image: shifts of up to
 * `shift` pixels in each direction (the uncovered edge repeats the nearest
 * border pixel: black for MNIST, white or a flag's colour for emoji) and, with
 * `flip`, a left-right mirror half of the time.
 */
export interface ClassifierAugment {
  shift: number;
  flip: boolean;
}

/** The augmentation `true` stands for (the MNIST recipe): ±2 pixel shifts, no flips. */
export const DEFAULT_AUGMENT: ClassifierAugment = { shift: 2, flip: false };

/** How a saved classifier was trained and how well it did (recorded in config.json). */
export interface ClassifierTrainingInfo {
  dataset: string;
  epochs: number;
  batchSize: number;
  seed: number;
  lr: number;
  /** false = none; true (older records) = DEFAULT_AUGMENT. */
  augment: boolean | ClassifierAugment;

  trainCount: number;
  testCount: number;
  /** Which images were held out, in words (e.g. "fashion-mnist test split"). */
  heldOut: string;
  testAccuracy: number;
  /** Held-out accuracy at the level of `groups` (emoji: category), when the classifier has groups. */
  testGroupAccuracy?: number;
  /** Held-out accuracy after each epoch. */
  epochAccuracies?: number[];
  /** A second held-out set (emoji: the other art style of some training identities), in words, and the accuracy on it. */
  validation?: string;
  validationCount?: number;
  validationAccuracy?: number;
  trainAccuracy: number;
  seconds: number;
}

/**
 * Coarser labels made of the classes: `ofClass[k]` is the group of class k
 * (emoji: the category of each subcategory). A prediction's group is the
 * group of its predicted class, so group accuracy needs no second head.
 */
export interface LabelGroups {
  name: string;
  names: string[];
  ofClass: number[];
}

/** How images of another size are brought to the classifier's: bilinear (either way), or area averages when shrinking. */
export type ClassifierResize = 'bilinear' | 'area';
export const CLASSIFIER_RESIZES: readonly ClassifierResize[] = ['bilinear', 'area'];

export interface ClassifierConfig {
  version: 1;
  kind: 'cnn-classifier';
  imageSize: number;
  channels: number;
  numClasses: number;
  /** Output channels of the conv layers; the first has stride 1, the rest stride 2. */
  convChannels: number[];
  /** Width of the penultimate (feature) layer. */
  featureDim: number;
  labelNames?: string[];
  /**
   * Resampling of images of another size (default bilinear). 'area' shrinks by
   * area averages (resizeAreaFloat, what the emoji data itself uses for
   * smaller sizes), so a 64×64 sample is judged as the 32×32 training images were made.
   */
  resize?: ClassifierResize;
  groups?: LabelGroups;
  training?: ClassifierTrainingInfo;
}

export function defaultClassifierConfig(overrides: Partial<ClassifierConfig> = {}): ClassifierConfig {
  return validateClassifierConfig({
    version: 1,
    kind: 'cnn-classifier',
    imageSize: 28,
    channels: 1,
    numClasses: 10,
    convChannels: [32, 32, 64, 32],
    featureDim: 128,
    ...overrides,
  });
}

const posInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;

/** Check a (parsed) config; throws a DiffuseError naming the bad field. */
export function validateClassifierConfig(raw: unknown, source = 'classifier config'): ClassifierConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DiffuseError(`${source}: must be a JSON object`);
  const c = raw as Record<string, unknown>;
  if (c['version'] !== 1) throw new DiffuseError(`${source}: version must be 1, got ${JSON.stringify(c['version'])}`);
  if (c['kind'] !== 'cnn-classifier') throw new DiffuseError(`${source}: kind must be "cnn-classifier", got ${JSON.stringify(c['kind'])}`);
  for (const k of ['imageSize', 'channels', 'numClasses', 'featureDim'] as const) {
    if (!posInt(c[k])) throw new DiffuseError(`${source}: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
  }
  if ((c['numClasses'] as number) < 2) throw new DiffuseError(`${source}: numClasses must be at least 2`);
  const conv = c['convChannels'];
  if (!Array.isArray(conv) || conv.length < 1 || conv.length > 6 || !conv.every(posInt)) {
    throw new DiffuseError(`${source}: convChannels must be 1..6 positive integers, got ${JSON.stringify(conv)}`);
  }
  const names = c['labelNames'];
  if (names !== undefined && (!Array.isArray(names) || names.length !== c['numClasses'] || !names.every((s) => typeof s === 'string'))) {
    throw new DiffuseError(`${source}: labelNames must be ${String(c['numClasses'])} strings`);
  }
  const resize = c['resize'];
  if (resize !== undefined && !CLASSIFIER_RESIZES.includes(resize as ClassifierResize)) {
    throw new DiffuseError(`${source}: resize must be one of ${CLASSIFIER_RESIZES.join(', ')}, got ${JSON.stringify(resize)}`);
  }
  const g = c['groups'];
  if (g !== undefined) {
    const gr = typeof g === 'object' && g !== null && !Array.isArray(g) ? (g as Record<string, unknown>) : undefined;
    const gNames = gr?.['names'];
    if (gr === undefined || typeof gr['name'] !== 'string' || !Array.isArray(gNames) || gNames.length < 1 || !gNames.every((s) => typeof s === 'string')) {
      throw new DiffuseError(`${source}: groups must be { name, names: [strings], ofClass: [group of each class] }`);
    }
    const of = gr['ofClass'];
    if (!Array.isArray(of) || of.length !== c['numClasses'] || !of.every((v) => Number.isInteger(v) && v >= 0 && v < gNames.length)) {
      throw new DiffuseError(`${source}: groups.ofClass must give each of the ${String(c['numClasses'])} classes a group in 0..${gNames.length - 1}`);
    }
  }
  return raw as ClassifierConfig;
}

/** Spatial side after the stride-2 convs ('same' padding: ceil(s/2) each). */
function finalSide(config: ClassifierConfig): number {
  let s = config.imageSize;
  for (let i = 1; i < config.convChannels.length; i++) s = Math.ceil(s / 2);
  return s;
}

export interface ClassifierParamSpec {
  name: string;
  shape: number[];
  fanIn: number;
}

/** Every parameter: name, shape, fan-in (biases have fanIn 0 = zeros), sorted by name. */
export function classifierParamSpecs(config: ClassifierConfig): ClassifierParamSpec[] {
  const specs: ClassifierParamSpec[] = [];
  let cin = config.channels;
  config.convChannels.forEach((cout, i) => {
    specs.push({ name: `conv${i}.kernel`, shape: [3, 3, cin, cout], fanIn: 9 * cin });
    specs.push({ name: `conv${i}.bias`, shape: [cout], fanIn: 0 });
    cin = cout;
  });
  const s = finalSide(config);
  const flat = s * s * cin;
  specs.push({ name: 'feat.kernel', shape: [flat, config.featureDim], fanIn: flat });
  specs.push({ name: 'feat.bias', shape: [config.featureDim], fanIn: 0 });
  specs.push({ name: 'head.kernel', shape: [config.featureDim, config.numClasses], fanIn: config.featureDim });
  specs.push({ name: 'head.bias', shape: [config.numClasses], fanIn: 0 });
  return specs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function classifierParamCount(config: ClassifierConfig): number {
  return classifierParamSpecs(config).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
}

export interface ClassPrediction {
  /** [N, numClasses] softmax probabilities, row-major. */
  probs: Float32Array;
  /** Arg-max class per image. */
  labels: Int32Array;
}

export interface Classifier {
  readonly config: ClassifierConfig;
  readonly params: Map<string, tf.Variable>;
  /** Logits and features of a batch (tensors; caller disposes or uses inside tidy). */
  forward(x: tf.Tensor4D): { logits: tf.Tensor2D; features: tf.Tensor2D };
  /** Penultimate-layer features, [N, featureDim] row-major. */
  features(images: Float32Array, n?: number): Float32Array;
  predict(images: Float32Array, n?: number): ClassPrediction;
  /** Both at once (one forward pass). */
  featuresAndPredict(images: Float32Array, n?: number): { features: Float32Array } & ClassPrediction;
  dispose(): void;
}

/** Counter making variable names unique per classifier instance. */
let instances = 0;

/** Default number of images per forward pass at inference. */
const INFER_BATCH = 250;

function heInit(spec: ClassifierParamSpec, rng: Rng): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  if (spec.fanIn === 0) return out;
  const std = Math.sqrt(2 / spec.fanIn);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
  return out;
}

/** A classifier with fresh He-initialised weights (deterministic in seed). */
export function createClassifier(config: ClassifierConfig, seed: number): Classifier {
  validateClassifierConfig(config);
  const rng = new Rng(seed);
  const values = new Map<string, Float32Array>();
  for (const s of classifierParamSpecs(config)) values.set(s.name, heInit(s, rng));
  return buildClassifier(config, values);
}

/** A classifier from given weights (names and sizes must match the config). */
export function buildClassifier(config: ClassifierConfig, values: Map<string, Float32Array>, source = 'classifier'): Classifier {
  validateClassifierConfig(config, source);
  const params = new Map<string, tf.Variable>();
  const instance = ++instances;
  try {
    for (const s of classifierParamSpecs(config)) {
      const v = values.get(s.name);
      const size = s.shape.reduce((a, b) => a * b, 1);
      if (v === undefined) throw new DiffuseError(`${source}: parameter '${s.name}' is missing`);
      if (v.length !== size) throw new DiffuseError(`${source}: parameter '${s.name}' has ${v.length} values, expected ${size} for [${s.shape.join(',')}]`);
      params.set(s.name, tf.tidy(() => tf.variable(tf.tensor(v, s.shape, 'float32'), true, `classifier${instance}.${s.name}`)));
    }
  } catch (err) {
    for (const p of params.values()) p.dispose();
    throw err;
  }
  return makeClassifier(config, params);
}

function makeClassifier(config: ClassifierConfig, params: Map<string, tf.Variable>): Classifier {
  const { imageSize: S, channels: C } = config;
  const per = S * S * C;
  const P = (name: string): tf.Variable => {
    const v = params.get(name);
    if (v === undefined) throw new Error(`missing classifier parameter ${name}`);
    return v;
  };
  const forward = (x: tf.Tensor4D): { logits: tf.Tensor2D; features: tf.Tensor2D } => {
    if (x.shape[1] !== S || x.shape[2] !== S || x.shape[3] !== C) {
      throw new DiffuseError(`classifier expects images ${S}×${S}×${C}, got ${x.shape[1]}×${x.shape[2]}×${x.shape[3]}`);
    }
    let h: tf.Tensor4D = x;
    for (let i = 0; i < config.convChannels.length; i++) {
      const stride = i === 0 ? 1 : 2;
      h = tf.relu(tf.add(tf.conv2d(h, P(`conv${i}.kernel`) as tf.Tensor4D, stride, 'same'), P(`conv${i}.bias`))) as tf.Tensor4D;
    }
    const flat = tf.reshape(h, [x.shape[0], -1]) as tf.Tensor2D;
    const features = tf.relu(tf.add(tf.matMul(flat, P('feat.kernel') as tf.Tensor2D), P('feat.bias'))) as tf.Tensor2D;
    const logits = tf.add(tf.matMul(features, P('head.kernel') as tf.Tensor2D), P('head.bias')) as tf.Tensor2D;
    return { logits, features };
  };
  const count = (images: Float32Array, n: number | undefined): number => {
    if (!(images instanceof Float32Array)) throw new DiffuseError('classifier: images must be a Float32Array (NHWC in [-1,1])');
    const m = n ?? images.length / per;
    if (!Number.isInteger(m) || m < 0 || m * per > images.length || (n === undefined && images.length % per !== 0)) {
      throw new DiffuseError(`classifier: ${images.length} values is not a whole number of ${S}×${S}×${C} images`);
    }
    return m;
  };
  const run = (images: Float32Array, n: number | undefined, wantFeatures: boolean, wantProbs: boolean): { features: Float32Array; probs: Float32Array } => {
    const m = count(images, n);
    const D = config.featureDim;
    const K = config.numClasses;
    const feats = new Float32Array(wantFeatures ? m * D : 0);
    const probs = new Float32Array(wantProbs ? m * K : 0);
    for (let start = 0; start < m; start += INFER_BATCH) {
      const b = Math.min(INFER_BATCH, m - start);
      const [f, p] = tf.tidy(() => {
        const x = tf.tensor4d(images.subarray(start * per, (start + b) * per), [b, S, S, C]);
        const out = forward(x);
        return [wantFeatures ? out.features : tf.zeros([0]), wantProbs ? tf.softmax(out.logits) : tf.zeros([0])];
      });
      if (wantFeatures) feats.set(f!.dataSync() as Float32Array, start * D);
      if (wantProbs) probs.set(p!.dataSync() as Float32Array, start * K);
      f!.dispose();
      p!.dispose();
    }
    return { features: feats, probs };
  };
  const argmax = (probs: Float32Array): Int32Array => {
    const K = config.numClasses;
    const m = probs.length / K;
    const labels = new Int32Array(m);
    for (let i = 0; i < m; i++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (probs[i * K + k]! > probs[i * K + best]!) best = k;
      labels[i] = best;
    }
    return labels;
  };
  return {
    config,
    params,
    forward,
    features: (images, n) => run(images, n, true, false).features,
    predict: (images, n) => {
      const { probs } = run(images, n, false, true);
      return { probs, labels: argmax(probs) };
    },
    featuresAndPredict: (images, n) => {
      const { features, probs } = run(images, n, true, true);
      return { features, probs, labels: argmax(probs) };
    },
    dispose: () => {
      for (const p of params.values()) p.dispose();
    },
  };
}

/** Fraction of images whose predicted class equals the label. */
export function classifierAccuracy(clf: Classifier, ds: Dataset): number {
  return classifierAccuracies(clf, ds).accuracy;
}

/**
 * Accuracy on a labelled set, and at the level of the classifier's groups
 * (the group of the predicted class against the group of the label).
 */
export function classifierAccuracies(clf: Classifier, ds: Dataset): { accuracy: number; groupAccuracy?: number } {
  if (!ds.labels) throw new DiffuseError(`accuracy: data set ${ds.name} has no labels`);
  const { labels } = clf.predict(ds.images, ds.shape[0]);
  const of = clf.config.groups?.ofClass;
  let ok = 0;
  let groupOk = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === ds.labels[i]) ok++;
    if (of !== undefined && of[labels[i]!] === of[ds.labels[i]!]) groupOk++;
  }
  const n = labels.length;
  return { accuracy: n === 0 ? NaN : ok / n, ...(of !== undefined ? { groupAccuracy: n === 0 ? NaN : groupOk / n } : {}) };
}

// ------------------------------------------------------------------ training

export interface TrainClassifierOptions {
  /** Training images (labelled). */
  dataset: Dataset;
  /** Held-out images for the reported accuracy (labelled). */
  testSet: Dataset;
  /** Words for config.json, e.g. "fashion-mnist test split". */
  heldOutDescription?: string;
  /** A second labelled held-out set (emoji: the other art style of some training identities), scored at the end. */
  validation?: { data: Dataset; description: string };
  epochs?: number;
  batchSize?: number;
  seed?: number;
  /** Peak Adam learning rate; cosine-decayed to 5% of it over the run. */
  lr?: number;
  /** Random shifts / flips (default true = DEFAULT_AUGMENT: ±2 pixel shifts). */
  augment?: boolean | ClassifierAugment;

  config?: Partial<ClassifierConfig>;
  /** Called after every step and after each epoch's evaluation. */
  onProgress?: (p: ClassifierProgress) => void;
}

export interface ClassifierProgress {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  /** Set after an epoch ends. */
  testAccuracy?: number;
}

export interface TrainedClassifier {
  classifier: Classifier;
  testAccuracy: number;
  trainAccuracy: number;
  seconds: number;
}

/**
 * Augment a batch in place: each image shifted by (dy, dx) ∈ [−s, s]² (edge
 * pixels repeated into the uncovered border) and, with `flip`, mirrored left-right
 * with probability ½. The draws per image: dy, dx, then the flip.
 */
export function augmentBatch(x: Float32Array, n: number, S: number, C: number, aug: ClassifierAugment, rng: Rng): void {
  const per = S * S * C;
  const tmp = new Float32Array(per);
  const clamp = (v: number): number => (v < 0 ? 0 : v >= S ? S - 1 : v);
  for (let b = 0; b < n; b++) {
    const dy = aug.shift > 0 ? rng.int(2 * aug.shift + 1) - aug.shift : 0;
    const dx = aug.shift > 0 ? rng.int(2 * aug.shift + 1) - aug.shift : 0;
    const flip = aug.flip && rng.uniform() < 0.5;
    if (dy === 0 && dx === 0 && !flip) continue;
    const img = x.subarray(b * per, (b + 1) * per);
    for (let y = 0; y < S; y++) {
      const sy = clamp(y - dy);
      for (let xx = 0; xx < S; xx++) {
        const sx = clamp((flip ? S - 1 - xx : xx) - dx);
        for (let c = 0; c < C; c++) tmp[(y * S + xx) * C + c] = img[(sy * S + sx) * C + c]!;
      }
    }
    img.set(tmp);
  }
}

function checkAugment(a: boolean | ClassifierAugment): ClassifierAugment | false {
  if (a === false) return false;
  const aug = a === true ? DEFAULT_AUGMENT : a;
  if (!Number.isInteger(aug.shift) || aug.shift < 0 || aug.shift > 16) throw new DiffuseError(`trainClassifier: augment.shift must be an integer in 0..16, got ${aug.shift}`);
  return aug.shift === 0 && !aug.flip ? false : { shift: aug.shift, flip: aug.flip };
}

/**
 * Train a classifier on `dataset`, report accuracy on `testSet`: softmax
 * cross-entropy, the project's flat Adam (src/train/adam.ts) with a cosine
 * learning-rate decay, one seeded permutation per epoch (data/batches.ts).
 */
export async function trainClassifier(opts: TrainClassifierOptions): Promise<TrainedClassifier> {
  const { dataset: ds, testSet } = opts;
  const epochs = opts.epochs ?? 4;
  const batchSize = opts.batchSize ?? 64;
  const seed = opts.seed ?? 0;
  const lr = opts.lr ?? 2e-3;
  if (!posInt(epochs)) throw new DiffuseError(`trainClassifier: epochs must be a positive integer, got ${epochs}`);
  if (!posInt(batchSize)) throw new DiffuseError(`trainClassifier: batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(seed) || seed < 0) throw new DiffuseError(`trainClassifier: seed must be a non-negative integer, got ${seed}`);
  if (!(lr > 0)) throw new DiffuseError(`trainClassifier: lr must be positive, got ${lr}`);
  const augment = checkAugment(opts.augment ?? true);
  if (!ds.labels) throw new DiffuseError(`trainClassifier: data set ${ds.name} has no labels`);
  if (!testSet.labels) throw new DiffuseError(`trainClassifier: test set ${testSet.name} has no labels`);
  const [n, h, w, c] = ds.shape;
  if (h !== w) throw new DiffuseError(`trainClassifier: images must be square, got ${h}×${w}`);
  for (const other of [testSet, ...(opts.validation ? [opts.validation.data] : [])]) {
    if (other.shape[1] !== h || other.shape[2] !== w || other.shape[3] !== c) {
      throw new DiffuseError(`trainClassifier: ${other.name} images are ${other.shape.slice(1).join('×')}, training images ${ds.shape.slice(1).join('×')}`);
    }
  }
  if (n < batchSize) throw new DiffuseError(`trainClassifier: ${n} training images is fewer than one batch of ${batchSize}`);
  let maxLabel = 0;
  for (const l of ds.labels) maxLabel = Math.max(maxLabel, l);
  const numClasses = ds.labelNames?.length ?? maxLabel + 1;
  const config = defaultClassifierConfig({
    imageSize: h,
    channels: c,
    numClasses,
    ...(ds.labelNames ? { labelNames: ds.labelNames.slice() } : {}),
    ...opts.config,
  });
  const clf = createClassifier(config, seed);
  // The parameters as one flat buffer for Adam; each variable is a view's copy.
  const vars = [...clf.params.values()];
  const offsets: number[] = [];
  let total = 0;
  for (const v of vars) {
    offsets.push(total);
    total += v.size;
  }
  const flat = new Float32Array(total);
  vars.forEach((v, k) => flat.set(v.dataSync() as Float32Array, offsets[k]!));
  const grad = new Float32Array(total);
  const adam: FlatAdamState = { step: 0, m: new Float32Array(total), v: new Float32Array(total) };
  const stepsPerEpoch = Math.floor(n / batchSize);
  const totalSteps = stepsPerEpoch * epochs;
  const augRng = new Rng(seed + 1);
  const per = h * w * c;
  const x = new Float32Array(batchSize * per);
  const y = new Int32Array(batchSize);
  const t0 = performance.now();
  let step = 0;
  let testAccuracy = NaN;
  const epochAccuracies: number[] = [];
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const perm = epochPermutation(n, seed, epoch);
      for (let s = 0; s < stepsPerEpoch; s++) {
        for (let k = 0; k < batchSize; k++) {
          const i = perm[s * batchSize + k]!;
          x.set(ds.images.subarray(i * per, (i + 1) * per), k * per);
          y[k] = ds.labels[i]!;
        }
        if (augment !== false) augmentBatch(x, batchSize, h, c, augment, augRng);
        step++;
        const { value, grads } = tf.tidy(() => {
          const xt = tf.tensor4d(x, [batchSize, h, w, c]);
          const yt = tf.oneHot(tf.tensor1d(y, 'int32'), numClasses);
          return tf.variableGrads(() => {
            const { logits } = clf.forward(xt);
            return tf.neg(tf.mean(tf.sum(tf.mul(yt, tf.logSoftmax(logits)), 1))) as tf.Scalar;
          }, vars);
        });
        vars.forEach((v, k) => grad.set(grads[v.name]!.dataSync() as Float32Array, offsets[k]!));
        const loss = (value.dataSync() as Float32Array)[0]!;
        tf.dispose([value, ...Object.values(grads)]);
        if (!Number.isFinite(loss)) throw new DiffuseError(`trainClassifier: loss became ${loss} at step ${step} (lr ${lr} too high?)`);
        adamStep(flat, grad, adam, cosineLearningRate(step, totalSteps, lr));
        vars.forEach((v, k) => tf.tidy(() => v.assign(tf.tensor(flat.subarray(offsets[k]!, offsets[k]! + v.size), v.shape, 'float32'))));
        opts.onProgress?.({ step, totalSteps, epoch, loss });
        // Let the event loop breathe (progress bars, signals).
        if (step % 16 === 0) await new Promise((r) => setImmediate(r));
      }
      testAccuracy = classifierAccuracy(clf, testSet);
      epochAccuracies.push(testAccuracy);
      opts.onProgress?.({ step, totalSteps, epoch, loss: NaN, testAccuracy });
    }
  } catch (err) {
    clf.dispose();
    throw err;
  }
  const seconds = (performance.now() - t0) / 1000;
  // Training accuracy on (up to) 5000 evenly spread training images, no augmentation.
  const trainAccuracy = classifierAccuracy(clf, subsetDataset(ds, evenlySpacedIndices(n, 5000)));
  const test = classifierAccuracies(clf, testSet);
  const val = opts.validation !== undefined ? classifierAccuracy(clf, opts.validation.data) : undefined;
  const info: ClassifierTrainingInfo = {
    dataset: ds.name,
    epochs,
    batchSize,
    seed,
    lr,
    augment,
    trainCount: n,
    testCount: testSet.shape[0],
    heldOut: opts.heldOutDescription ?? `${testSet.name} (${testSet.shape[0]} images)`,
    testAccuracy,
    ...(test.groupAccuracy !== undefined ? { testGroupAccuracy: test.groupAccuracy } : {}),
    epochAccuracies,
    ...(opts.validation !== undefined && val !== undefined ? { validation: opts.validation.description, validationCount: opts.validation.data.shape[0], validationAccuracy: val } : {}),
    trainAccuracy,
    seconds: Math.round(seconds * 10) / 10,
  };
  (clf.config as ClassifierConfig).training = info;
  return { classifier: clf, testAccuracy, trainAccuracy, seconds };
}

// ------------------------------------------------------------------ save / load

/** Save config.json + weights.safetensors into `dir`, replacing those two files atomically (anything else in `dir` stays). */
export async function saveClassifier(dir: string, clf: Classifier): Promise<void> {
  const tensors: Weights = {};
  for (const [name, v] of clf.params) tensors[name] = { shape: v.shape.slice(), data: v.dataSync() as Float32Array };
  await replaceFolder(dir, CLASSIFIER_FILES, (tmp) => {
    writeFileAtomicSync(join(tmp, 'weights.safetensors'), encodeSafetensors(tensors, { format: 'diffuse-ts classifier' }, dir));
    writeFileAtomicSync(join(tmp, 'config.json'), JSON.stringify(clf.config, null, 2) + '\n');
  }, `cannot save classifier to '${dir}'`);
}

/** Load a classifier folder written by `saveClassifier`. */
export function loadClassifier(dir: string): Classifier {
  const cf = join(dir, 'config.json');
  const wf = join(dir, 'weights.safetensors');
  for (const f of [cf, wf]) if (!existsSync(f)) throw new DiffuseError(`classifier '${dir}': missing ${basename(f)} (train one with: diffuse train-classifier)`);
  let raw: unknown;
  const text = readRegularFileSync(cf, 'classifier config', 16 * 1024 * 1024).toString('utf8');
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new DiffuseError(`classifier '${dir}': config.json is not valid JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const config = validateClassifierConfig(raw, cf);
  const file = readSafetensors(wf);
  const values = new Map<string, Float32Array>();
  for (const [name, t] of Object.entries(file.tensors)) values.set(name, t.data);
  const expected = new Set(classifierParamSpecs(config).map((s) => s.name));
  for (const name of values.keys()) if (!expected.has(name)) throw new DiffuseError(`${wf}: unexpected tensor '${name}' for this config`);
  return buildClassifier(config, values, wf);
}
