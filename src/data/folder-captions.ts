/**
 * Captions of an image folder, in the layout diffusers' text-to-image
 * training reads (its "imagefolder" with metadata):
 *
 * - `metadata.jsonl` in any folder: one JSON object per line,
 *   `{"file_name": "cats/a.png", "text": "a cat on a mat"}`, `file_name`
 *   relative to the folder holding that metadata.jsonl. `text` is a string or
 *   a list of strings (alternative captions: training draws one per step).
 *   Other columns are ignored; blank lines are skipped.
 * - Fallback for an image no metadata line names: a sidecar text file with
 *   the image's name and `.txt` (`a.png` -> `a.txt`), each non-empty line one
 *   caption.
 *
 * Bad input is one line naming the file (and line): a line that is not JSON,
 * not an object, or lacks `file_name` or `text`; an image named twice; an
 * image named but missing (skipped and listed instead with `skipBad`); a
 * caption with no word in it. Engine-free and synchronous (the CLI reads the
 * captions to build a vocabulary before any image is decoded).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, join, normalize } from 'node:path';
import { DiffuseError } from '../errors.js';
import { words } from '../text/tokenizer.js';

export const METADATA_FILE = 'metadata.jsonl';

export interface FolderCaptions {
  /** Captions per image path (as given in `images`); images without one are absent. */
  readonly byImage: Map<string, string[]>;
  /** Metadata lines naming a missing image (only with skipBad; otherwise an error). */
  readonly missing: { file: string; reason: string }[];
  /** How many images got their captions from metadata.jsonl and from sidecars. */
  readonly fromMetadata: number;
  readonly fromSidecars: number;
}

const IMAGE_EXT = /\.(png|jpe?g)$/i;

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new DiffuseError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
}

function checkCaption(text: string, where: string): string {
  const t = text.trim();
  if (words(t).length === 0) throw new DiffuseError(`${where}: caption '${text}' has no words (a word is a run of letters or digits)`);
  return t;
}

/** The captions of one metadata.jsonl line's `text` field (a string or a list of strings). */
function lineCaptions(value: unknown, where: string): string[] {
  if (typeof value === 'string') return [checkCaption(value, where)];
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string')) return value.map((v: string) => checkCaption(v, where));
  throw new DiffuseError(`${where}: "text" must be a caption string or a non-empty list of strings, got ${JSON.stringify(value)?.slice(0, 60) ?? 'nothing'}`);
}

/**
 * Read the captions of `images` (image paths found in a folder) from the
 * metadata.jsonl files and .txt sidecars among `files` (every file found in
 * that folder, images included).
 */
export function readFolderCaptions(images: readonly string[], files: readonly string[], opts: { skipBad?: boolean } = {}): FolderCaptions {
  const imageSet = new Set(images.map((f) => normalize(f)));
  const allFiles = new Set(files.map((f) => normalize(f)));
  const byImage = new Map<string, string[]>();
  const firstLine = new Map<string, string>();
  const missing: { file: string; reason: string }[] = [];
  for (const meta of files.filter((f) => basename(f) === METADATA_FILE)) {
    const lines = readText(meta).split(/\r?\n/);
    lines.forEach((line, i) => {
      const where = `${meta}:${i + 1}`;
      if (line.trim() === '') return;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch (e) {
        throw new DiffuseError(`${where}: not JSON (${(e as Error).message}); each line of ${METADATA_FILE} is one {"file_name": ..., "text": ...} object`, { cause: e });
      }
      if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new DiffuseError(`${where}: not a JSON object; each line of ${METADATA_FILE} is one {"file_name": ..., "text": ...} object`);
      const r = row as Record<string, unknown>;
      const name = r['file_name'];
      if (typeof name !== 'string' || name === '') throw new DiffuseError(`${where}: has no "file_name" string`);
      if (!('text' in r)) throw new DiffuseError(`${where}: has no "text" (the caption of ${name})`);
      const caps = lineCaptions(r['text'], where);
      const path = normalize(join(dirname(meta), name));
      if (!IMAGE_EXT.test(name)) throw new DiffuseError(`${where}: '${name}' is not a .png, .jpg or .jpeg file`);
      if (!imageSet.has(path)) {
        if (allFiles.has(path) || existsSync(path)) return; // an image left out on purpose (limit, hidden): not an error
        const reason = `${where}: names '${name}', which does not exist`;
        if (!opts.skipBad) throw new DiffuseError(reason);
        missing.push({ file: path, reason });
        return;
      }
      const before = firstLine.get(path);
      if (before !== undefined) throw new DiffuseError(`${where}: '${name}' already has a caption (${before})`);
      firstLine.set(path, where);
      byImage.set(path, caps);
    });
  }
  const fromMetadata = byImage.size;
  let fromSidecars = 0;
  for (const img of imageSet) {
    if (byImage.has(img)) continue;
    const side = img.slice(0, img.length - extname(img).length) + '.txt';
    if (!allFiles.has(side)) continue;
    const caps = readText(side).split(/\r?\n/).flatMap((l, i) => (l.trim() === '' ? [] : [checkCaption(l, `${side}:${i + 1}`)]));
    if (caps.length === 0) throw new DiffuseError(`${side}: empty caption file (give each line one caption of ${img})`);
    byImage.set(img, caps);
    fromSidecars++;
  }
  return { byImage, missing, fromMetadata, fromSidecars };
}
