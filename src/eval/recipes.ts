/**
 * How the classifier of each evaluation data set is trained by default (what
 * `diffuse train-classifier --dataset D` does without further flags), and the
 * settings that are part of its config rather than of its training: the size
 * it judges images at and how it resamples them.
 */
import { DEFAULT_AUGMENT, type ClassifierAugment, type ClassifierConfig } from './classifier.js';
import { EMOJI_EVAL_SIZE, type EvalDatasetName } from './splits.js';
import { DiffuseError } from '../errors.js';

export interface ClassifierRecipe {
  epochs: number;
  batchSize: number;
  lr: number;
  augment: ClassifierAugment | false;
  /** Architecture and resampling (merged into the classifier's config). */
  config: Pick<ClassifierConfig, 'convChannels' | 'featureDim'> & Partial<Pick<ClassifierConfig, 'resize'>>;
  /** Image side the classifier is trained and applied at (undefined: the data set's own). */
  imageSize?: number;
}

export function classifierRecipe(dataset: EvalDatasetName): ClassifierRecipe {
  const base = { batchSize: 64, lr: 2e-3, augment: DEFAULT_AUGMENT, config: { convChannels: [32, 32, 64, 32], featureDim: 128 } };
  switch (dataset) {
    case 'mnist':
      return { ...base, epochs: 10 };
    case 'fashion-mnist':
      return { ...base, epochs: 4 };
    case 'emoji':
      // 32×32 area averages: the pixel baseline's own size, and what a 64×64
      // latent model's samples become by the data set's own downsampling, so
      // both are judged by one classifier on equal terms (docs/emoji-eval.md).
      // Mirror images of emoji are emoji of the same subcategory.
      return { ...base, epochs: 12, augment: { shift: 2, flip: true }, config: { convChannels: [32, 64, 64, 64], featureDim: 128, resize: 'area' }, imageSize: EMOJI_EVAL_SIZE };
    default: {
      const never: never = dataset;
      throw new DiffuseError(`no classifier recipe for data set '${String(never)}'`);
    }
  }
}
