/**
 * Image files: PNG and JPEG decoding and encoding, reading and writing. The
 * pixel arithmetic (types, conversions, crop, resize, grids) is
 * image/pixels.ts, re-exported here for the modules that import it from io.
 */
import pngjs from 'pngjs';
import jpeg from 'jpeg-js';
import { DiffuseError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { formatOfPath, readRegularFile } from './files.js';
import { checkImage, type Channels, type ImageU8 } from '../image/pixels.js';

const { PNG } = pngjs;

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

export { checkImage, toFloat, toBytes, toFloatImage, toByteImage, toGrayscale, toRgb, centerCropSquare, resizeBilinear, resizeAreaFloat, imageGrid, type Channels, type ImageU8, type ImageF32, type GridOptions } from '../image/pixels.js';
