/**
 * Image files and pixel helpers. Images are interleaved (HWC) rows, top to
 * bottom. Byte images are Uint8Array in [0, 255]; float images are
 * Float32Array, mapped to [−1, 1] by `toFloat` (x/127.5 − 1).
 */
import pngjs from 'pngjs';
import jpeg from 'jpeg-js';
import { DiffuseError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { formatOfPath, readRegularFile } from './files.js';
import type { Shape4 } from '../tensor.js';

const { PNG } = pngjs;

export type Channels = 1 | 3 | 4;

/** A byte image, interleaved HWC. */
export interface ImageU8 {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly channels: Channels;
}

/** A float image, interleaved HWC (values usually in [−1, 1]). */
export interface ImageF32 {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export type ImageFormat = 'png' | 'jpeg';

/** Detect the format from magic bytes (not the file name); null if neither. */
export function detectFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/**
 * Largest image we decode, in pixels (about a 7000×7000 photo): a PNG or JPEG
 * declaring more is refused from its header, before any pixel is decoded
 * (a 400-megapixel PNG fits in a few hundred KB and would need gigabytes).
 */
export const MAX_IMAGE_PIXELS = 50_000_000;
/** Largest image file we read. */
export const MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024;

/** Read a PNG or JPEG file. Missing, unreadable, non-regular, oversized or non-image files throw a DiffuseError naming the file. */
export async function readImage(path: string): Promise<ImageU8> {
  return decodeImage(await readRegularFile(path, 'image', MAX_IMAGE_FILE_BYTES), path);
}

/** Width and height a PNG declares in its IHDR chunk (bytes 16..23), if present. */
function pngDeclaredSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  if (bytes.length < 24 || String.fromCharCode(bytes[12]!, bytes[13]!, bytes[14]!, bytes[15]!) !== 'IHDR') return undefined;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: v.getUint32(16), height: v.getUint32(20) };
}

function checkPixels(width: number, height: number, name: string): void {
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new DiffuseError(`image '${name}' declares ${width}×${height} pixels (${(width * height / 1e6).toFixed(0)} megapixels), more than the limit of ${MAX_IMAGE_PIXELS / 1e6} megapixels`);
  }
}

/** Decode PNG/JPEG bytes; `name` is used in error messages. */
export function decodeImage(bytes: Uint8Array, name = '<buffer>'): ImageU8 {
  const format = detectFormat(bytes);
  if (format === null) throw new DiffuseError(`'${name}' is not a PNG or JPEG image (unrecognised file signature)`);
  try {
    if (format === 'png') {
      const declared = pngDeclaredSize(bytes);
      if (declared !== undefined) checkPixels(declared.width, declared.height, name);
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      const rgba = new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength);
      const gray = png.colorType === 0 || png.colorType === 4;
      const channels: Channels = png.alpha ? 4 : gray ? 1 : 3;
      return { data: fromRgba(rgba, channels), width: png.width, height: png.height, channels };
    }
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6, maxMemoryUsageInMB: 1024 });
    return { data: fromRgba(img.data, 3), width: img.width, height: img.height, channels: 3 };
  } catch (err) {
    if (err instanceof DiffuseError) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    throw new DiffuseError(`cannot decode ${format.toUpperCase()} image '${name}': ${msg}${/maxResolutionInMP/.test(msg) ? ` (the limit is ${MAX_IMAGE_PIXELS / 1e6} megapixels)` : ''}`, { cause: err });
  }
}

function fromRgba(rgba: Uint8Array, channels: Channels): Uint8Array {
  const n = rgba.length / 4;
  if (channels === 4) return rgba.slice();
  const out = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) {
    if (channels === 1) out[i] = rgba[i * 4]!;
    else { out[i * 3] = rgba[i * 4]!; out[i * 3 + 1] = rgba[i * 4 + 1]!; out[i * 3 + 2] = rgba[i * 4 + 2]!; }
  }
  return out;
}

function toRgba(img: ImageU8): Uint8Array {
  const n = img.width * img.height;
  const out = new Uint8Array(n * 4);
  const d = img.data;
  for (let i = 0; i < n; i++) {
    switch (img.channels) {
      case 1: out[i * 4] = out[i * 4 + 1] = out[i * 4 + 2] = d[i]!; out[i * 4 + 3] = 255; break;
      case 3: out[i * 4] = d[i * 3]!; out[i * 4 + 1] = d[i * 3 + 1]!; out[i * 4 + 2] = d[i * 3 + 2]!; out[i * 4 + 3] = 255; break;
      case 4: out[i * 4] = d[i * 4]!; out[i * 4 + 1] = d[i * 4 + 1]!; out[i * 4 + 2] = d[i * 4 + 2]!; out[i * 4 + 3] = d[i * 4 + 3]!; break;
    }
  }
  return out;
}

/** Throw unless `img` is a consistent byte image. */
export function checkImage(img: ImageU8, what = 'image'): void {
  const { width, height, channels } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new DiffuseError(`${what}: width and height must be positive integers, got ${width}×${height}`);
  }
  if (channels !== 1 && channels !== 3 && channels !== 4) throw new DiffuseError(`${what}: channels must be 1, 3 or 4, got ${String(channels)}`);
  if (img.data.length !== width * height * channels) {
    throw new DiffuseError(`${what}: ${width}×${height}×${channels} needs ${width * height * channels} bytes, got ${img.data.length}`);
  }
}

/** Encode an image as PNG bytes (grayscale, RGB or RGBA colour type). */
export function encodePng(img: ImageU8): Uint8Array {
  checkImage(img, 'encodePng');
  const png = new PNG({ width: img.width, height: img.height });
  png.data = Buffer.from(toRgba(img).buffer);
  const colorType = img.channels === 1 ? 0 : img.channels === 3 ? 2 : 6;
  const buf = PNG.sync.write(png, { colorType, inputColorType: 6, inputHasAlpha: true });
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Encode an image as baseline JPEG (quality 1..100, default 95); gray is stored as RGB, alpha is dropped. */
export function encodeJpeg(img: ImageU8, quality = 95): Uint8Array {
  checkImage(img, 'encodeJpeg');
  const rgba = toRgba(img);
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
  const out = jpeg.encode({ data: rgba, width: img.width, height: img.height }, quality);
  return new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
}

/** Write a PNG file atomically. */
export async function writePng(path: string, img: ImageU8): Promise<void> {
  await writeFileAtomic(path, encodePng(img));
}

/** Write an image atomically in the format its extension names (.png, .jpg/.jpeg); any other extension is refused. */
export async function writeImage(path: string, img: ImageU8): Promise<void> {
  const f = formatOfPath(path);
  if (f === 'png') return writePng(path, img);
  if (f === 'jpeg') return writeFileAtomic(path, encodeJpeg(img));
  throw new DiffuseError(`cannot write image '${path}': the file name must end in .png, .jpg or .jpeg`);
}

/** [0, 255] -> [−1, 1]: x/127.5 − 1. */
export function toFloat(data: Uint8Array): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! / 127.5 - 1;
  return out;
}

/** [−1, 1] -> [0, 255], clipped and rounded. */
export function toBytes(data: Float32Array): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = Math.round((data[i]! + 1) * 127.5);
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return out;
}

export function toFloatImage(img: ImageU8): ImageF32 {
  checkImage(img);
  return { data: toFloat(img.data), width: img.width, height: img.height, channels: img.channels };
}

export function toByteImage(img: ImageF32): ImageU8 {
  const c = img.channels;
  if (c !== 1 && c !== 3 && c !== 4) throw new DiffuseError(`toByteImage: channels must be 1, 3 or 4, got ${c}`);
  return { data: toBytes(img.data), width: img.width, height: img.height, channels: c };
}

/** Luma (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B); alpha is dropped. */
export function toGrayscale(img: ImageU8): ImageU8 {
  checkImage(img);
  if (img.channels === 1) return { ...img, data: img.data.slice() };
  const n = img.width * img.height;
  const c = img.channels;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = Math.round(0.299 * img.data[i * c]! + 0.587 * img.data[i * c + 1]! + 0.114 * img.data[i * c + 2]!);
  }
  return { data: out, width: img.width, height: img.height, channels: 1 };
}

/** To 3-channel RGB: gray is replicated, alpha is dropped (not composited). */
export function toRgb(img: ImageU8): ImageU8 {
  checkImage(img);
  const n = img.width * img.height;
  const c = img.channels;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) out[i * 3 + k] = img.data[i * c + (c === 1 ? 0 : k)]!;
  }
  return { data: out, width: img.width, height: img.height, channels: 3 };
}

/** Largest centred square crop. */
export function centerCropSquare<T extends ImageU8 | ImageF32>(img: T): T {
  const s = Math.min(img.width, img.height);
  const x0 = Math.floor((img.width - s) / 2);
  const y0 = Math.floor((img.height - s) / 2);
  const c = img.channels;
  const out = new (img.data.constructor as { new (n: number): T['data'] })(s * s * c);
  for (let y = 0; y < s; y++) {
    const src = ((y + y0) * img.width + x0) * c;
    out.set(img.data.subarray(src, src + s * c), y * s * c);
  }
  return { ...img, data: out, width: s, height: s };
}

/**
 * Bilinear resize with half-pixel centres (align_corners = false), edge
 * clamped. Note: no antialiasing, so large downscales alias.
 */
export function resizeBilinear(img: ImageF32, width: number, height: number): ImageF32 {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new DiffuseError(`resize: target size must be positive integers, got ${width}×${height}`);
  }
  const { width: W, height: H, channels: c, data } = img;
  if (data.length !== W * H * c) throw new DiffuseError(`resize: ${W}×${H}×${c} needs ${W * H * c} values, got ${data.length}`);
  const out = new Float32Array(width * height * c);
  const sx = W / width;
  const sy = H / height;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), H - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, H - 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), W - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, W - 1);
      const wx = fx - x0;
      for (let k = 0; k < c; k++) {
        const a = data[(y0 * W + x0) * c + k]!;
        const b = data[(y0 * W + x1) * c + k]!;
        const d = data[(y1 * W + x0) * c + k]!;
        const e = data[(y1 * W + x1) * c + k]!;
        out[(y * width + x) * c + k] = (1 - wy) * ((1 - wx) * a + wx * b) + wy * ((1 - wx) * d + wx * e);
      }
    }
  }
  return { data: out, width, height, channels: c };
}

export interface GridOptions {
  /** Images per row (default: ceil(sqrt(n))). */
  readonly cols?: number;
  /** Pixels of padding around and between tiles (default 2). */
  readonly pad?: number;
  /** Padding value in [−1, 1] (default −1: black). */
  readonly padValue?: number;
}

/**
 * Tile a batch (NHWC Float32Array in [−1, 1]) into one byte image, row-major,
 * `pad` pixels around and between tiles (like torchvision's make_grid):
 * width = cols·(w + pad) + pad, height = rows·(h + pad) + pad.
 */
export function imageGrid(images: Float32Array, shape: Shape4, opts: GridOptions = {}): ImageU8 {
  const [n, h, w, c] = shape;
  if (![n, h, w, c].every((d) => Number.isInteger(d) && d > 0)) throw new DiffuseError(`imageGrid: bad shape [${shape.join(', ')}]`);
  if (c !== 1 && c !== 3 && c !== 4) throw new DiffuseError(`imageGrid: channels must be 1, 3 or 4, got ${c}`);
  if (images.length !== n * h * w * c) throw new DiffuseError(`imageGrid: shape [${shape.join(', ')}] needs ${n * h * w * c} values, got ${images.length}`);
  const cols = opts.cols ?? Math.ceil(Math.sqrt(n));
  const pad = opts.pad ?? 2;
  if (!Number.isInteger(cols) || cols < 1) throw new DiffuseError(`imageGrid: cols must be a positive integer, got ${cols}`);
  if (!Number.isInteger(pad) || pad < 0) throw new DiffuseError(`imageGrid: pad must be a non-negative integer, got ${pad}`);
  const rows = Math.ceil(n / cols);
  const W = cols * (w + pad) + pad;
  const H = rows * (h + pad) + pad;
  const fill = toBytes(Float32Array.of(opts.padValue ?? -1))[0]!;
  const out = new Uint8Array(W * H * c).fill(fill);
  if (c === 4 && fill !== 255) for (let i = 3; i < out.length; i += 4) out[i] = 255;
  const bytes = toBytes(images);
  for (let b = 0; b < n; b++) {
    const ox = pad + (b % cols) * (w + pad);
    const oy = pad + Math.floor(b / cols) * (h + pad);
    for (let y = 0; y < h; y++) {
      const src = ((b * h + y) * w) * c;
      out.set(bytes.subarray(src, src + w * c), ((oy + y) * W + ox) * c);
    }
  }
  return { data: out, width: W, height: H, channels: c };
}
