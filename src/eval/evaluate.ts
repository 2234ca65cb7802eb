/**
 * The measuring stick: generated samples -> FID, KID, class histogram,
 * against N real images of the held-out set, with our small classifier's
 * penultimate layer as the feature space. `realFloor` gives the score of real
 * training images against the held-out set at the same N: what a perfect
 * generator would get (FID is biased upward at small N, so always compare to it).
 */
import type { Dataset } from '../data/dataset.js';
import { convertChannels, resizeAreaFloat, resizeDataset } from '../data/dataset.js';
import { DiffuseError } from '../errors.js';
import { Rng } from '../rng.js';
import type { Classifier } from './classifier.js';
import { classHistogram, type ClassHistogram, frechetDistance, kernelInceptionDistance, type KidOptions } from './metrics.js';
import type { ImageBatch } from '../tensor.js';

export interface SampleScores {
  /** Fréchet distance between classifier features of the samples and the reference images. */
  fid: number;
  /** KID (unbiased MMD², cubic kernel) mean and std over subsets. */
  kid: number;
  kidStd: number;
  kidSubsets: number;
  kidSubsetSize: number;
  /** Predicted-class counts of the samples. */
  classHistogram: number[];
  /** Entropy of the predicted-class histogram, nats (log K = perfectly even). */
  classEntropy: number;
  /** classEntropy / log K. */
  classEntropyNormalized: number;
  /** Classes predicted for at least 1/(4K) of the samples. */
  classesCovered: number;
  /** Images compared from each side. */
  n: number;
}

export type { ImageBatch };

/**
 * Classifier features of n reference images drawn with `seed`, computed once
 * and reusable across many `evaluateSamples` calls (e.g. every checkpoint of a run).
 */
export interface ReferenceFeatures {
  readonly kind: 'reference-features';
  /** [n, d] row-major. */
  readonly features: Float32Array;
  readonly n: number;
  readonly d: number;
  readonly seed: number;
  readonly name: string;
}

export interface EvaluateOptions {
  classifier: Classifier;
  samples: ImageBatch;
  /** Real images to compare with (the held-out / test set), or their features from `referenceFeatures`. */
  reference: Dataset | ReferenceFeatures;
  /** Images per side (default: all samples). Samples: the first n; reference: n drawn with `seed`. */
  n?: number;
  /** Seed of the reference subset and the KID subsets (default 0). */
  seed?: number;
  kid?: Omit<KidOptions, 'seed'>;
}

/**
 * Bring images to the classifier's size and channels: luma / gray
 * replication, then the classifier's resampling (config.resize: bilinear, or
 * area averages when shrinking, as the emoji data makes its smaller sizes).
 */
export function fitToClassifier(clf: Classifier, batch: ImageBatch, what = 'samples'): ImageBatch {
  const [n, h, w, c] = batch.shape;
  if (![n, h, w, c].every((v) => Number.isInteger(v) && v >= 0)) throw new DiffuseError(`${what}: bad shape [${batch.shape.join(',')}]`);
  if (batch.images.length !== n * h * w * c) throw new DiffuseError(`${what}: ${batch.images.length} values for shape [${batch.shape.join(',')}]`);
  if (h !== w) throw new DiffuseError(`${what}: images must be square, got ${h}×${w}`);
  const { imageSize, channels } = clf.config;
  let ds: Dataset = { name: what, images: batch.images, shape: [n, h, w, c] };
  if (c !== channels) {
    if ((c === 1 || c === 3) && (channels === 1 || channels === 3)) ds = convertChannels(ds, channels);
    else throw new DiffuseError(`${what}: ${c} channels cannot be converted to the classifier's ${channels}`);
  }
  if (h !== imageSize) {
    if (clf.config.resize === 'area' && h > imageSize) {
      const C = ds.shape[3];
      const per = h * h * C;
      const out = new Float32Array(n * imageSize * imageSize * C);
      for (let i = 0; i < n; i++) resizeAreaFloat(ds.images.subarray(i * per, (i + 1) * per), h, h, C, imageSize, imageSize, out, i * imageSize * imageSize * C);
      ds = { ...ds, images: out, shape: [n, imageSize, imageSize, C] };
    } else {
      ds = resizeDataset(ds, imageSize);
    }
  }
  return { images: ds.images, shape: ds.shape };
}

/** `count` distinct indices out of `total`, seeded, in ascending order. */
export function sampleIndices(total: number, count: number, seed: number): Int32Array {
  if (count > total) throw new DiffuseError(`cannot draw ${count} images from ${total}`);
  const idx = new Int32Array(total);
  for (let i = 0; i < total; i++) idx[i] = i;
  const rng = new Rng(seed);
  for (let i = 0; i < count; i++) {
    const j = i + rng.int(total - i);
    const t = idx[i]!;
    idx[i] = idx[j]!;
    idx[j] = t;
  }
  return idx.slice(0, count).sort();
}

function take(batch: ImageBatch, indices: ArrayLike<number>): ImageBatch {
  const [, h, w, c] = batch.shape;
  const per = h * w * c;
  const out = new Float32Array(indices.length * per);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    out.set(batch.images.subarray(i * per, (i + 1) * per), k * per);
  }
  return { images: out, shape: [indices.length, h, w, c] };
}

function checkN(n: number, have: number, what: string): void {
  if (!Number.isInteger(n) || n < 2) throw new DiffuseError(`evaluate: n must be an integer ≥ 2, got ${n}`);
  if (n > have) throw new DiffuseError(`evaluate: n=${n} but ${what} has only ${have} images`);
}

/** The reference subset `evaluateSamples` uses for (n, seed): n images drawn with `seed`. */
function referenceSubset(reference: Dataset, n: number, seed: number): ImageBatch {
  checkN(n, reference.shape[0], `the reference set ${reference.name}`);
  return take({ images: reference.images, shape: reference.shape }, sampleIndices(reference.shape[0], n, seed));
}

/** Features of the n reference images `evaluateSamples` would draw with this seed. */
export function referenceFeatures(classifier: Classifier, reference: Dataset, n: number, seed = 0): ReferenceFeatures {
  const ref = fitToClassifier(classifier, referenceSubset(reference, n, seed), 'reference');
  return { kind: 'reference-features', features: classifier.features(ref.images, n), n, d: classifier.config.featureDim, seed, name: reference.name };
}

/** Score a batch of images against reference features (same N). */
function score(clf: Classifier, a: ImageBatch, ref: ReferenceFeatures, seed: number, kid: Omit<KidOptions, 'seed'> | undefined): SampleScores {
  const fa = fitToClassifier(clf, a, 'samples');
  const D = clf.config.featureDim;
  if (ref.d !== D) throw new DiffuseError(`evaluate: reference features have dimension ${ref.d}, the classifier gives ${D}`);
  const ra = clf.featuresAndPredict(fa.images, fa.shape[0]);
  const A = { data: ra.features, n: fa.shape[0], d: D };
  const B = { data: ref.features, n: ref.n, d: D };
  const fid = frechetDistance(A, B);
  const k = kernelInceptionDistance(A, B, { ...kid, seed });
  const hist: ClassHistogram = classHistogram(ra.labels, clf.config.numClasses);
  return {
    fid,
    kid: k.kid,
    kidStd: k.std,
    kidSubsets: k.subsets,
    kidSubsetSize: k.subsetSize,
    classHistogram: hist.counts,
    classEntropy: hist.entropy,
    classEntropyNormalized: hist.normalizedEntropy,
    classesCovered: hist.classesCovered,
    n: A.n,
  };
}

/**
 * FID / KID / class histogram of generated samples against n real reference
 * images. Samples: the first n. Reference: n images drawn with `seed` (or
 * precomputed `referenceFeatures` for the same n and seed: identical result).
 */
export function evaluateSamples(opts: EvaluateOptions): SampleScores {
  const { classifier: clf, samples, reference } = opts;
  const seed = opts.seed ?? 0;
  const have = samples.shape[0];
  const n = opts.n ?? have;
  checkN(n, have, 'the sample set');
  let ref: ReferenceFeatures;
  if ('kind' in reference && reference.kind === 'reference-features') {
    if (reference.n !== n) throw new DiffuseError(`evaluate: reference features are for n=${reference.n}, asked for n=${n}`);
    if (reference.seed !== seed) throw new DiffuseError(`evaluate: reference features were drawn with seed ${reference.seed}, asked for seed ${seed}`);
    ref = reference;
  } else {
    ref = referenceFeatures(clf, reference as Dataset, n, seed);
  }
  const first = take(samples, Int32Array.from({ length: n }, (_, i) => i));
  return score(clf, first, ref, seed, opts.kid);
}

/**
 * The training images the real-vs-real floor scores for (n, seed): a stream
 * apart from the reference subset's. A text model asked for these images'
 * captions can be scored against the floor image for image.
 */
export function floorIndices(trainCount: number, n: number, seed: number): Int32Array {
  return sampleIndices(trainCount, n, seed + 7919);
}

/**
 * n other training images for (n, seed), none of them among the floor's
 * (`floorIndices`): a second reference from the training distribution, against
 * which the floor's images score the train-vs-train floor (no gap between
 * known and new images, as on a data set with held-out identities).
 */
export function trainReferenceIndices(trainCount: number, n: number, seed: number): Int32Array {
  const floor = new Set(floorIndices(trainCount, n, seed));
  const rest = Int32Array.from({ length: trainCount }, (_, i) => i).filter((i) => !floor.has(i));
  return Int32Array.from(sampleIndices(rest.length, n, seed + 104729), (k) => rest[k]!);
}

export interface RealFloorOptions {
  classifier: Classifier;
  /** Real images standing in for "samples" (the training images). */
  train: Dataset;
  /** The reference (held-out / test images), as in evaluateSamples. */
  reference: Dataset;
  n: number;
  seed?: number;
  kid?: Omit<KidOptions, 'seed'>;
  /** Precomputed features of the reference subset (same n and seed), to skip recomputing them. */
  referenceFeatures?: ReferenceFeatures;
}

/**
 * The score of n real training images against n held-out images: the floor a
 * perfect generator would reach at this N (FID is biased upward at small N).
 * The reference subset is drawn exactly as in `evaluateSamples` with the same seed.
 */
export function realFloor(opts: RealFloorOptions): SampleScores {
  const seed = opts.seed ?? 0;
  checkN(opts.n, opts.train.shape[0], `the training set ${opts.train.name}`);
  checkN(opts.n, opts.reference.shape[0], `the reference set ${opts.reference.name}`);
  const fake = take({ images: opts.train.images, shape: opts.train.shape }, floorIndices(opts.train.shape[0], opts.n, seed));
  const ref = opts.referenceFeatures ?? referenceFeatures(opts.classifier, opts.reference, opts.n, seed);
  if (ref.n !== opts.n || ref.seed !== seed) throw new DiffuseError(`realFloor: reference features are for n=${ref.n}, seed ${ref.seed}; asked for n=${opts.n}, seed ${seed}`);
  return score(opts.classifier, fake, ref, seed, opts.kid);
}

export interface ClassAgreement {
  /** Fraction of all samples the classifier assigns to the class they were asked for. */
  overall: number;
  /** Per requested class: fraction agreeing (NaN when no sample asked for it). */
  perClass: number[];
  /** Samples asked for each class. */
  counts: number[];
  /** The lowest per-class agreement over the classes asked for. */
  worst: number;
  /** confusion[asked][seen]: how many samples asked for one class the classifier assigns to each class. */
  confusion: number[][];
  /** At the level of the classifier's groups (emoji: category), when it has groups: the share whose seen class lies in the asked class's group. */
  group?: { name: string; overall: number };
}

/**
 * Does the classifier see what was asked for? `requested[i]` is the class
 * sample i was generated for (−1 = unconditional, ignored).
 */
export function classAgreement(classifier: Classifier, samples: ImageBatch, requested: Int32Array): ClassAgreement {
  const n = samples.shape[0];
  if (requested.length !== n) throw new DiffuseError(`class agreement: ${requested.length} requested classes for ${n} samples`);
  const K = classifier.config.numClasses;
  const fit = fitToClassifier(classifier, samples);
  const { labels } = classifier.predict(fit.images, n);
  const counts = new Array<number>(K).fill(0);
  const confusion = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  for (let i = 0; i < n; i++) {
    const k = requested[i]!;
    if (k < 0) continue;
    if (k >= K) throw new DiffuseError(`class agreement: requested class ${k} but the classifier knows ${K}`);
    counts[k]!++;
    confusion[k]![labels[i]!]!++;
  }
  // The hits are the confusion matrix's diagonal.
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) throw new DiffuseError('class agreement: no sample was generated for a class');
  const agree = confusion.reduce((a, row, k) => a + row[k]!, 0);
  const perClass = confusion.map((row, k) => (counts[k]! > 0 ? row[k]! / counts[k]! : NaN));
  const worst = Math.min(...perClass.filter((v) => !Number.isNaN(v)));
  const groups = classifier.config.groups;
  const group = groups === undefined ? undefined : {
    name: groups.name,
    overall: confusion.reduce((a, row, k) => a + row.reduce((b, c, j) => b + (groups.ofClass[j] === groups.ofClass[k] ? c : 0), 0), 0) / total,
  };
  return { overall: agree / total, perClass, counts, worst, confusion, ...(group !== undefined ? { group } : {}) };
}
