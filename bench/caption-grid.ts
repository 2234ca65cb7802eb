/**
 * Picture grids with captions for the docs: rows of images, each with a text
 * label on its left and optional column headings, drawn with a built-in 5×7
 * pixel font (letters are drawn as capitals; anything outside the font as
 * '?'), so a report's PNG says what each row asked for without another tool.
 */
import { DiffuseError } from '../src/errors.js';
import { toBytes, type ImageU8 } from '../src/io/image.js';
import type { ImageBatch } from '../src/tensor.js';

/** 5×7 glyphs: seven rows of five bits, most significant bit left. */
const GLYPHS: Readonly<Record<string, readonly number[]>> = {
  a: [14, 17, 17, 31, 17, 17, 17], b: [30, 17, 17, 30, 17, 17, 30], c: [14, 17, 16, 16, 16, 17, 14],
  d: [28, 18, 17, 17, 17, 18, 28], e: [31, 16, 16, 30, 16, 16, 31], f: [31, 16, 16, 30, 16, 16, 16],
  g: [14, 17, 16, 23, 17, 17, 15], h: [17, 17, 17, 31, 17, 17, 17], i: [14, 4, 4, 4, 4, 4, 14],
  j: [7, 2, 2, 2, 2, 18, 12], k: [17, 18, 20, 24, 20, 18, 17], l: [16, 16, 16, 16, 16, 16, 31],
  m: [17, 27, 21, 21, 17, 17, 17], n: [17, 17, 25, 21, 19, 17, 17], o: [14, 17, 17, 17, 17, 17, 14],
  p: [30, 17, 17, 30, 16, 16, 16], q: [14, 17, 17, 17, 21, 18, 13], r: [30, 17, 17, 30, 20, 18, 17],
  s: [15, 16, 16, 14, 1, 1, 30], t: [31, 4, 4, 4, 4, 4, 4], u: [17, 17, 17, 17, 17, 17, 14],
  v: [17, 17, 17, 17, 17, 10, 4], w: [17, 17, 17, 21, 21, 21, 10], x: [17, 17, 10, 4, 10, 17, 17],
  y: [17, 17, 17, 10, 4, 4, 4], z: [31, 1, 2, 4, 8, 16, 31],
  '0': [14, 17, 19, 21, 25, 17, 14], '1': [4, 12, 4, 4, 4, 4, 14], '2': [14, 17, 1, 2, 4, 8, 31],
  '3': [31, 2, 4, 2, 1, 17, 14], '4': [2, 6, 10, 18, 31, 2, 2], '5': [31, 16, 30, 1, 1, 17, 14],
  '6': [6, 8, 16, 30, 17, 17, 14], '7': [31, 1, 2, 4, 8, 8, 8], '8': [14, 17, 17, 14, 17, 17, 14],
  '9': [14, 17, 17, 15, 1, 2, 12],
  ' ': [0, 0, 0, 0, 0, 0, 0], '.': [0, 0, 0, 0, 0, 12, 12], ',': [0, 0, 0, 0, 12, 4, 8],
  ':': [0, 12, 12, 0, 12, 12, 0], '-': [0, 0, 0, 31, 0, 0, 0], "'": [12, 4, 8, 0, 0, 0, 0],
  '"': [10, 10, 10, 0, 0, 0, 0], '?': [14, 17, 1, 2, 4, 0, 4], '!': [4, 4, 4, 4, 4, 0, 4],
  '(': [2, 4, 8, 8, 8, 4, 2], ')': [8, 4, 2, 2, 2, 4, 8], '/': [0, 1, 2, 4, 8, 16, 0],
  '=': [0, 0, 31, 0, 31, 0, 0], '+': [0, 4, 4, 31, 4, 4, 0], '%': [24, 25, 2, 4, 8, 19, 3],
  '&': [12, 18, 20, 8, 21, 18, 13], '×': [0, 17, 10, 4, 10, 17, 0], '_': [0, 0, 0, 0, 0, 0, 31],
};

/** Width of one character cell (5 pixels and 1 of spacing) and height of a text line (7 and 2). */
export const CHAR_W = 6;
export const LINE_H = 9;

/** Words wrapped into lines of at most `maxChars` characters (a longer word is cut). */
export function wrapText(text: string, maxChars: number): string[] {
  if (!Number.isInteger(maxChars) || maxChars < 1) throw new DiffuseError(`wrapText: maxChars must be a positive integer, got ${maxChars}`);
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    let w = word;
    while (w.length > maxChars) {
      if (line !== '') { lines.push(line); line = ''; }
      lines.push(w.slice(0, maxChars));
      w = w.slice(maxChars);
    }
    if (line === '') line = w;
    else if (line.length + 1 + w.length <= maxChars) line += ' ' + w;
    else { lines.push(line); line = w; }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** Draw one line of text into an RGB byte image at (x, y) (top-left of the first glyph), each font pixel `scale`×`scale`. */
export function drawText(img: { data: Uint8Array; width: number; height: number }, text: string, x: number, y: number, scale = 1, color: readonly [number, number, number] = [0, 0, 0]): void {
  let cx = x;
  for (const ch of text.toLowerCase()) {
    const g = GLYPHS[ch] ?? GLYPHS['?']!;
    for (let r = 0; r < 7 * scale; r++) {
      for (let b = 0; b < 5 * scale; b++) {
        if (((g[Math.floor(r / scale)]! >> (4 - Math.floor(b / scale))) & 1) === 0) continue;
        const px = cx + b, py = y + r;
        if (px < 0 || py < 0 || px >= img.width || py >= img.height) continue;
        const o = (py * img.width + px) * 3;
        img.data[o] = color[0];
        img.data[o + 1] = color[1];
        img.data[o + 2] = color[2];
      }
    }
    cx += CHAR_W * scale;
  }
}

export interface CaptionRow {
  /** Text on the left of the row (wrapped to the label column). */
  readonly label: string;
  /** The row's images, NHWC in [−1, 1], `cols` of them (fewer leave blanks). */
  readonly images: Float32Array;
}

export interface CaptionGridOptions {
  /** Side and channels (1 or 3) of every image. */
  readonly size: number;
  readonly channels: 1 | 3;
  /** Images per row. */
  readonly cols: number;
  /** Each image drawn `scale`×`scale` pixels per pixel (default 2). */
  readonly scale?: number;
  /** Characters per line of the label column (default 24). */
  readonly labelChars?: number;
  /** Each font pixel drawn `textScale`×`textScale` (default 1: 5×7 glyphs). */
  readonly textScale?: number;
  /** Headings over the image columns (wrapped to a column's width; at scale 1 if a word would not fit), e.g. "W = 0". */
  readonly headings?: readonly string[];
  /** A gap after these column indices (e.g. between two models' samples). */
  readonly gapAfter?: readonly number[];
}

/** Rows of images with captions on a white page, RGB. */
export function captionGrid(rows: readonly CaptionRow[], opts: CaptionGridOptions): ImageU8 {
  const scale = opts.scale ?? 2;
  const { size, channels: C, cols } = opts;
  if (![size, cols, scale].every((v) => Number.isInteger(v) && v >= 1)) throw new DiffuseError(`captionGrid: size, cols and scale must be positive integers`);
  if (C !== 1 && C !== 3) throw new DiffuseError(`captionGrid: channels must be 1 or 3, got ${String(C)}`);
  const labelChars = opts.labelChars ?? 24;
  const ts = opts.textScale ?? 1;
  const cw = CHAR_W * ts, lh = LINE_H * ts;
  const pad = 4;
  const tile = size * scale;
  const gaps = new Set(opts.gapAfter ?? []);
  const colX: number[] = [];
  let x = pad + labelChars * cw + pad;
  for (let j = 0; j < cols; j++) {
    colX.push(x);
    x += tile + 2 + (gaps.has(j) ? 3 * pad : 0);
  }
  const width = x + pad;
  // Headings at the text scale when every word fits a column, else at scale 1.
  const words = (opts.headings ?? []).flatMap((h) => h.split(/\s+/));
  const hs = words.every((w) => w.length * cw <= tile + 2) ? ts : 1;
  const headLines = (opts.headings ?? []).map((h) => wrapText(h, Math.max(1, Math.floor((tile + 2) / (CHAR_W * hs)))));
  const headH = headLines.length > 0 ? Math.max(...headLines.map((l) => l.length)) * LINE_H * hs + pad : 0;
  const rowLines = rows.map((r) => wrapText(r.label, labelChars));
  const rowH = rowLines.map((l) => Math.max(tile, l.length * lh) + pad);
  const height = pad + headH + rowH.reduce((a, b) => a + b, 0) + pad;
  const img = { data: new Uint8Array(width * height * 3).fill(255), width, height, channels: 3 as const };
  headLines.forEach((lines, j) => lines.forEach((l, k) => { if (j < cols) drawText(img, l, colX[j]!, pad + k * LINE_H * hs, hs); }));
  let y = pad + headH;
  const per = size * size * C;
  rows.forEach((r, i) => {
    if (r.images.length % per !== 0 || r.images.length / per > cols) throw new DiffuseError(`captionGrid: row '${r.label}' has ${r.images.length / per} images of ${size}×${size}×${C}, at most ${cols}`);
    rowLines[i]!.forEach((l, k) => drawText(img, l, pad, y + k * lh, ts));
    const bytes = toBytes(r.images);
    for (let j = 0; j < r.images.length / per; j++) {
      for (let py = 0; py < tile; py++) {
        for (let px = 0; px < tile; px++) {
          const s = j * per + (Math.floor(py / scale) * size + Math.floor(px / scale)) * C;
          const o = ((y + py) * width + colX[j]! + px) * 3;
          for (let k = 0; k < 3; k++) img.data[o + k] = bytes[s + (C === 1 ? 0 : k)]!;
        }
      }
    }
    y += rowH[i]!;
  });
  return img;
}

/** A batch at `size` (an integer multiple of its side) by nearest-neighbour upscaling, for grids that mix sizes. */
export function upscaleNearest(b: ImageBatch, size: number): Float32Array {
  const [n, h, , c] = b.shape;
  if (h === size) return b.images;
  const f = size / h;
  if (!Number.isInteger(f) || f < 1) throw new DiffuseError(`cannot show ${h}×${h} images at ${size}×${size}`);
  const out = new Float32Array(n * size * size * c);
  for (let i = 0; i < n; i++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) for (let k = 0; k < c; k++) {
    out[((i * size + y) * size + x) * c + k] = b.images[((i * h + Math.floor(y / f)) * h + Math.floor(x / f)) * c + k]!;
  }
  return out;
}
