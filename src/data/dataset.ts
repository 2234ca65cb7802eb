/**
 * The one in-memory data set type every loader returns, plus small helpers
 * shared by the loaders (byte → [-1,1] conversion, subsetting, resizing).
 */
import { DiffuseError } from '../errors.js';
import { resizeAreaFloat } from '../image/pixels.js';

export { resizeAreaFloat };

/**
 * A set of images in memory, NHWC, float32 in [-1, 1].
 * `labels[i]` (if present) is an index into `labelNames` (if present).
 */
export interface Dataset {
  name: string;
  /** N×H×W×C values in [-1, 1], row-major NHWC. */
  images: Float32Array;
  shape: [n: number, h: number, w: number, c: number];
  labels?: Int32Array;
  labelNames?: string[];
  /**
   * Captioned sets (emoji, folders with metadata.jsonl or .txt sidecars): per
   * image, the captions it may be trained with (at least one; training draws
   * one per image per step). `captions[i][0]` is the image's canonical prompt.
   */
  captions?: string[][];
  /**
   * Images that show one thing (emoji: one emoji identity, all its skin tones
   * and art styles): a group id 0..G-1 per image. Optional; training balanced
   * by groups (data.balance) uses samplingGroups.
   */
  groups?: Int32Array;
}

/**
 * The groups that balanced sampling (data.balance 'groups', data/batches.ts)
 * draws equally often, one id 0..G-1 per image: the data set's own `groups`
 * (emoji: each emoji identity), else the images that share their first
 * (canonical) caption, else the classes; a set with none of them is refused.
 */
export function samplingGroups(ds: Dataset): Int32Array {
  // renumbered: a subset may have lost some of its groups or classes
  if (ds.groups !== undefined) return firstAppearanceIds(ds.groups);
  if (ds.captions !== undefined) return firstAppearanceIds(ds.captions.map((c) => c[0]!));
  if (ds.labels !== undefined) return firstAppearanceIds(ds.labels);
  throw new DiffuseError(`data set ${ds.name} has no groups to balance (no emoji identities, captions or classes): train without --balance groups`);
}

/** One id per item: its key's number, the distinct keys numbered 0, 1, 2 … in order of first appearance. */
export function firstAppearanceIds<K>(keys: ArrayLike<K>): Int32Array {
  const ids = new Map<K, number>();
  return Int32Array.from(keys, (k) => {
    let g = ids.get(k);
    if (g === undefined) ids.set(k, (g = ids.size));
    return g;
  });
}

/** Indices of `count` items spread evenly over `total` (deterministic, keeps class balance of grouped data). */
export function evenlySpacedIndices(total: number, count: number): Int32Array {
  const k = Math.min(total, count);
  const out = new Int32Array(k);
  for (let i = 0; i < k; i++) out[i] = Math.floor((i * total) / k);
  return out;
}

/** Check that a data set's arrays agree with its shape; throws DiffuseError naming the mismatch. */
export function validateDataset(ds: Dataset): void {
  const [n, h, w, c] = ds.shape;
  for (const [k, v] of [['n', n], ['h', h], ['w', w], ['c', c]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new DiffuseError(`data set ${ds.name}: shape ${k}=${v} is not a non-negative integer`);
  }
  if (ds.images.length !== n * h * w * c) {
    throw new DiffuseError(`data set ${ds.name}: images has ${ds.images.length} values, shape [${ds.shape.join(',')}] needs ${n * h * w * c}`);
  }
  if (ds.labels && ds.labels.length !== n) {
    throw new DiffuseError(`data set ${ds.name}: ${ds.labels.length} labels for ${n} images`);
  }
  if (ds.captions) {
    if (ds.captions.length !== n) throw new DiffuseError(`data set ${ds.name}: ${ds.captions.length} caption lists for ${n} images`);
    const i = ds.captions.findIndex((c) => c.length === 0);
    if (i >= 0) throw new DiffuseError(`data set ${ds.name}: image ${i} has no caption`);
  }
  if (ds.labels && ds.labelNames) {
    for (let i = 0; i < ds.labels.length; i++) {
      const l = ds.labels[i]!;
      if (l < 0 || l >= ds.labelNames.length) throw new DiffuseError(`data set ${ds.name}: label ${l} of image ${i} is outside 0..${ds.labelNames.length - 1}`);
    }
  }
}

/** Keep only the images at `indices` (in that order). */
export function subsetDataset(ds: Dataset, indices: ArrayLike<number>): Dataset {
  const [n, h, w, c] = ds.shape;
  const per = h * w * c;
  const images = new Float32Array(indices.length * per);
  const labels = ds.labels ? new Int32Array(indices.length) : undefined;
  const captions: string[][] | undefined = ds.captions ? [] : undefined;
  const groups = ds.groups ? new Int32Array(indices.length) : undefined;
  for (let j = 0; j < indices.length; j++) {
    const i = indices[j]!;
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new DiffuseError(`data set ${ds.name}: index ${i} out of range 0..${n - 1}`);
    images.set(ds.images.subarray(i * per, (i + 1) * per), j * per);
    if (labels) labels[j] = ds.labels![i]!;
    if (captions) captions.push(ds.captions![i]!);
    if (groups) groups[j] = ds.groups![i]!;
  }
  const out: Dataset = { name: ds.name, images, shape: [indices.length, h, w, c] };
  if (labels) out.labels = labels;
  if (ds.labelNames) out.labelNames = ds.labelNames.slice();
  if (captions) out.captions = captions;
  if (groups) out.groups = groups;
  return out;
}

/**
 * Indices of `count` items out of `total`, deterministic. With labels:
 * class-balanced round robin (1st of each class in label order, then the
 * 2nd, …; classes that run out are skipped), result in ascending index
 * order. Without labels: evenly spaced.
 */
export function balancedIndices(total: number, count: number, labels?: ArrayLike<number>): Int32Array {
  if (!labels) return evenlySpacedIndices(total, count);
  const k = Math.min(total, count);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < total; i++) {
    const l = labels[i]!;
    let a = byClass.get(l);
    if (!a) byClass.set(l, (a = []));
    a.push(i);
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b).map((c) => byClass.get(c)!);
  const out: number[] = [];
  for (let round = 0; out.length < k; round++) {
    for (const idx of classes) {
      if (round < idx.length && out.length < k) out.push(idx[round]!);
    }
  }
  return Int32Array.from(out.sort((a, b) => a - b));
}

/** Take at most `limit` images: class-balanced if labelled, else evenly spaced. */
export function limitDataset(ds: Dataset, limit: number): Dataset {
  if (!Number.isInteger(limit) || limit < 1) throw new DiffuseError(`data set ${ds.name}: limit must be a positive integer, got ${limit}`);
  if (limit >= ds.shape[0]) return ds;
  return subsetDataset(ds, balancedIndices(ds.shape[0], limit, ds.labels));
}

/**
 * Bilinear resize of one HWC float image (align-corners=false, half-pixel
 * centres, edge clamped). Plain bilinear: shrinking by much more than 2×
 * aliases, which is fine for the 28→32 / 64→32 sizes used here.
 */
export function resizeBilinearFloat(src: Float32Array, h: number, w: number, c: number, oh: number, ow: number, dst: Float32Array = new Float32Array(oh * ow * c), dstOffset = 0): Float32Array {
  const sy = h / oh;
  const sx = w / ow;
  for (let y = 0; y < oh; y++) {
    let fy = (y + 0.5) * sy - 0.5;
    if (fy < 0) fy = 0;
    const y0 = Math.min(h - 1, Math.floor(fy));
    const y1 = Math.min(h - 1, y0 + 1);
    const wy = fy - y0;
    for (let x = 0; x < ow; x++) {
      let fx = (x + 0.5) * sx - 0.5;
      if (fx < 0) fx = 0;
      const x0 = Math.min(w - 1, Math.floor(fx));
      const x1 = Math.min(w - 1, x0 + 1);
      const wx = fx - x0;
      const o = dstOffset + (y * ow + x) * c;
      for (let k = 0; k < c; k++) {
        const a = src[(y0 * w + x0) * c + k]!;
        const b = src[(y0 * w + x1) * c + k]!;
        const d = src[(y1 * w + x0) * c + k]!;
        const e = src[(y1 * w + x1) * c + k]!;
        dst[o + k] = (a * (1 - wx) + b * wx) * (1 - wy) + (d * (1 - wx) + e * wx) * wy;
      }
    }
  }
  return dst;
}

/** Resize every image of a data set to size×size (bilinear). Returns the same object if already that size. */
export function resizeDataset(ds: Dataset, size: number): Dataset {
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new DiffuseError(`data set ${ds.name}: imageSize must be an integer in 1..4096, got ${size}`);
  const [n, h, w, c] = ds.shape;
  if (h === size && w === size) return ds;
  const per = h * w * c;
  const oper = size * size * c;
  const images = new Float32Array(n * oper);
  for (let i = 0; i < n; i++) {
    resizeBilinearFloat(ds.images.subarray(i * per, (i + 1) * per), h, w, c, size, size, images, i * oper);
  }
  return { ...ds, images, shape: [n, size, size, c] };
}

/** Convert channel count: 1→3 replicates gray, 3→1 uses Rec.601 luma. */
export function convertChannels(ds: Dataset, channels: 1 | 3): Dataset {
  const [n, h, w, c] = ds.shape;
  if (c === channels) return ds;
  const px = n * h * w;
  const images = new Float32Array(px * channels);
  if (c === 1 && channels === 3) {
    for (let i = 0; i < px; i++) { const v = ds.images[i]!; images[3 * i] = v; images[3 * i + 1] = v; images[3 * i + 2] = v; }
  } else if (c === 3 && channels === 1) {
    for (let i = 0; i < px; i++) images[i] = 0.299 * ds.images[3 * i]! + 0.587 * ds.images[3 * i + 1]! + 0.114 * ds.images[3 * i + 2]!;
  } else {
    throw new DiffuseError(`data set ${ds.name}: cannot convert ${c} channels to ${channels}`);
  }
  return { ...ds, images, shape: [n, h, w, channels] };
}
