/**
 * A folder of PNG / JPEG images (searched recursively) as a data set.
 *
 * Every image is center-cropped to a square, resized (bilinear) to
 * size×size, and converted to grayscale (Rec.601 luma) or RGB; alpha is
 * composited over white. If every image sits in a first-level subfolder and
 * there are at least two of them, the subfolder names (sorted) are the labels.
 *
 * Captions (for text-conditioned training) come from metadata.jsonl files or
 * .txt sidecars, in the layout of folder-captions.ts; with `requireCaptions`
 * every image must have one.
 *
 * Files are taken in sorted path order, so the result is deterministic.
 * Files with other extensions are ignored. A file with an image extension
 * that cannot be read or decoded is an error naming the file (or, with
 * `skipBad`, skipped and listed in `skipped`). Nothing is returned half-done:
 * either the whole set loads or one DiffuseError says why not.
 */
import { readdirSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, normalize, relative, sep } from 'node:path';
import { DiffuseError } from '../errors.js';
import { readImage, toFloat, toGrayscale, toRgb } from '../io/image.js';
import type { ImageBatch } from '../tensor.js';
import { type FolderCaptions, METADATA_FILE, readFolderCaptions } from './folder-captions.js';
import { balancedIndices, type Dataset, resizeBilinearFloat } from './dataset.js';

export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg'];

export interface FolderOptions {
  /** Output side length in pixels (default 32). */
  imageSize?: number;
  /** 1 = grayscale, 3 = RGB (default 3). */
  channels?: 1 | 3;
  /** Skip unreadable / undecodable files instead of failing (default false). */
  skipBad?: boolean;
  /** Load at most this many images (class-balanced over subfolders, else evenly spaced). */
  limit?: number;
  /** Every image must have a caption (text-conditioned training); otherwise captions are attached only when every image has one. */
  requireCaptions?: boolean;
}

export interface FolderDataset extends Dataset {
  /** Files that were skipped because of `skipBad`, with the reason. */
  skipped: { file: string; reason: string }[];
}

/** Every (non-hidden) file under `root`, recursively, in sorted path order. */
function walk(root: string): string[] {
  const out: string[] = [];
  const visit = (dir: string): void => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new DiffuseError(`image folder ${dir}: cannot list (${code ?? (e as Error).message})`, { cause: e });
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) visit(p);
      else if (e.isFile() || e.isSymbolicLink()) out.push(p);
    }
  };
  visit(root);
  return out;
}

/** Square center crop + bilinear resize + channel conversion of decoded 8-bit pixels, into `dst`. */
export function preprocessImage(
  img: { data: Uint8Array; width: number; height: number; channels: number },
  size: number,
  channels: 1 | 3,
  dst: Float32Array,
  dstOffset: number,
  file: string,
): void {
  const { width: w, height: h, channels: c, data } = img;
  if (!(c === 1 || c === 3 || c === 4) || w < 1 || h < 1 || data.length !== w * h * c) {
    throw new DiffuseError(`image ${file}: bad decoded shape ${w}×${h}×${c} (${data.length} bytes)`);
  }
  const side = Math.min(w, h);
  const x0 = Math.floor((w - side) / 2);
  const y0 = Math.floor((h - side) / 2);
  // crop + convert to target channels, values in [-1,1]
  const crop = new Float32Array(side * side * channels);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const s = ((y + y0) * w + (x + x0)) * c;
      let r: number, g: number, b: number;
      if (c === 1) { r = g = b = data[s]!; } else { r = data[s]!; g = data[s + 1]!; b = data[s + 2]!; }
      if (c === 4) {
        const a = data[s + 3]! / 255;
        r = r * a + 255 * (1 - a); g = g * a + 255 * (1 - a); b = b * a + 255 * (1 - a);
      }
      const o = (y * side + x) * channels;
      if (channels === 1) crop[o] = (c === 1 ? r : 0.299 * r + 0.587 * g + 0.114 * b) / 127.5 - 1;
      else { crop[o] = r / 127.5 - 1; crop[o + 1] = g / 127.5 - 1; crop[o + 2] = b / 127.5 - 1; }
    }
  }
  if (side === size) dst.set(crop, dstOffset);
  else resizeBilinearFloat(crop, side, side, channels, size, size, dst, dstOffset);
}

/** What a folder holds, before any image is decoded: image files (after `limit`), labels, captions. */
interface FolderScan {
  files: string[];
  labelNames: string[] | undefined;
  captions: FolderCaptions;
  /** Every image has a caption. */
  captioned: boolean;
}

function scanFolder(dir: string, opts: Pick<FolderOptions, 'limit' | 'skipBad' | 'requireCaptions'>): FolderScan {
  let st: import('node:fs').Stats;
  try {
    st = statSync(dir);
  } catch (e) {
    throw new DiffuseError(`image folder ${dir}: does not exist`, { cause: e });
  }
  if (!st.isDirectory()) throw new DiffuseError(`image folder ${dir}: is not a directory`);
  const all = walk(dir);
  let files = all.filter((f) => IMAGE_EXTENSIONS.some((x) => f.toLowerCase().endsWith(x)));
  if (files.length === 0) throw new DiffuseError(`image folder ${dir}: empty (no .png/.jpg/.jpeg files found)`);

  // Labels: first-level subfolder, if every file has one.
  const rel = files.map((f) => relative(dir, f).split(sep));
  const labelled = rel.every((parts) => parts.length >= 2);
  const classNames = labelled ? [...new Set(rel.map((p) => p[0]!))].sort() : [];
  const labelNames = classNames.length >= 2 ? classNames : undefined;

  if (opts.limit !== undefined) {
    if (!Number.isInteger(opts.limit) || opts.limit < 1) throw new DiffuseError(`image folder ${dir}: limit must be a positive integer, got ${opts.limit}`);
    const fileLabels = labelNames ? rel.map((p) => labelNames.indexOf(p[0]!)) : undefined;
    const idx = balancedIndices(files.length, opts.limit, fileLabels);
    files = Array.from(idx, (i) => files[i]!);
  }

  const captions = readFolderCaptions(files, all, opts.skipBad ? { skipBad: true } : {});
  const uncaptioned = files.filter((f) => !captions.byImage.has(normalize(f)));
  if (opts.requireCaptions && uncaptioned.length > 0) {
    throw new DiffuseError(
      captions.byImage.size === 0
        ? `image folder ${dir}: no captions (no ${METADATA_FILE} and no .txt sidecars); text conditioning needs a caption for every image`
        : `image folder ${dir}: ${uncaptioned.length} of ${files.length} images have no caption (first: ${relative(dir, uncaptioned[0]!)}); give each a line in ${METADATA_FILE} or a .txt sidecar`,
    );
  }
  return { files, labelNames, captions, captioned: uncaptioned.length === 0 };
}

/** The captions of every image in a folder (each image must have one), without decoding any image. */
export function folderCaptions(dir: string): string[][] {
  const scan = scanFolder(dir, { requireCaptions: true, skipBad: true });
  return scan.files.map((f) => scan.captions.byImage.get(normalize(f))!);
}

/** Load every PNG/JPEG under `dir` (recursively). */
export async function loadImageFolder(dir: string, opts: FolderOptions = {}): Promise<FolderDataset> {
  const size = opts.imageSize ?? 32;
  const channels = opts.channels ?? 3;
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new DiffuseError(`image folder ${dir}: imageSize must be an integer in 1..4096, got ${size}`);
  if (channels !== 1 && channels !== 3) throw new DiffuseError(`image folder ${dir}: channels must be 1 or 3, got ${String(channels)}`);
  const { files, labelNames, captions: caps, captioned: withCaptions } = scanFolder(dir, opts);

  const per = size * size * channels;
  const buf = new Float32Array(files.length * per);
  const labels: number[] = [];
  const captions: string[][] = [];
  const skipped: { file: string; reason: string }[] = [...caps.missing];
  let n = 0;
  const CONCURRENCY = 8;
  for (let start = 0; start < files.length; start += CONCURRENCY) {
    const chunk = files.slice(start, start + CONCURRENCY);
    const decoded = await Promise.all(
      chunk.map(async (f) => {
        try {
          return { ok: true as const, img: await readImage(f) };
        } catch (e) {
          return { ok: false as const, reason: e instanceof Error ? e.message : String(e) };
        }
      }),
    );
    for (let k = 0; k < chunk.length; k++) {
      const f = chunk[k]!;
      const d = decoded[k]!;
      let reason: string | undefined;
      if (d.ok) {
        try {
          preprocessImage(d.img, size, channels, buf, n * per, f);
        } catch (e) {
          reason = e instanceof Error ? e.message : String(e);
        }
      } else reason = d.reason;
      if (reason !== undefined) {
        if (!opts.skipBad) {
          throw new DiffuseError(reason.includes(f) ? `image folder ${dir}: ${reason}` : `image folder ${dir}: ${f}: ${reason}`);
        }
        skipped.push({ file: f, reason });
        continue;
      }
      if (labelNames) labels.push(labelNames.indexOf(relative(dir, f).split(sep)[0]!));
      if (withCaptions) captions.push(caps.byImage.get(normalize(f))!);
      n++;
    }
  }
  if (n === 0) throw new DiffuseError(`image folder ${dir}: no readable images (${skipped.length} skipped, first: ${skipped[0]?.file}: ${skipped[0]?.reason})`);
  const out: FolderDataset = {
    name: `folder:${dir}`,
    images: n * per === buf.length ? buf : buf.slice(0, n * per),
    shape: [n, size, size, channels],
    skipped,
  };
  if (withCaptions) out.captions = captions;
  if (labelNames) {
    // drop label names whose every image was skipped? keep them: indices stay stable.
    out.labels = Int32Array.from(labels);
    out.labelNames = labelNames;
  }
  return out;
}

/** Read every PNG/JPEG in `dir` (sorted by name), at most `limit`, as one batch in [-1, 1]. */
export async function readImageFolder(dir: string, channels: number, limit?: number): Promise<ImageBatch> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort();
  } catch (err) {
    throw new DiffuseError(`cannot read samples folder '${dir}': ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (names.length === 0) throw new DiffuseError(`samples folder '${dir}' has no .png or .jpg files`);
  if (limit !== undefined) names = names.slice(0, limit);
  let size: [number, number] | undefined;
  const c = channels === 1 ? 1 : 3;
  const parts: Float32Array[] = [];
  for (const name of names) {
    const img = await readImage(join(dir, name));
    const conv = c === 1 ? toGrayscale(img) : toRgb(img);
    if (size === undefined) size = [conv.height, conv.width];
    else if (conv.height !== size[0] || conv.width !== size[1]) {
      throw new DiffuseError(`samples folder '${dir}': ${name} is ${conv.width}×${conv.height}, the first image ${size[1]}×${size[0]} (all must be one size)`);
    }
    parts.push(toFloat(conv.data));
  }
  const [h, w] = size!;
  const per = h * w * c;
  const images = new Float32Array(parts.length * per);
  parts.forEach((p, i) => images.set(p, i * per));
  return { images, shape: [parts.length, h, w, c] };
}
