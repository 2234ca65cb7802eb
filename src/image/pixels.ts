/**
 * Pixel arithmetic on images held in memory: byte and float images, value
 * mapping, colour conversion, crop, resize (bilinear, and area averaging for
 * downscales) and grids. Engine-free and free of Node built-ins (the browser
 * page uses it too); reading and writing image files is io/image.ts.
 * Images are interleaved (HWC) rows, top to bottom. Byte images are
 * Uint8Array in [0, 255]; float images are Float32Array, mapped to [−1, 1] by
 * `toFloat` (x/127.5 − 1).
 */
import { DiffuseError } from '../errors.js';
import type { Shape4 } from '../tensor.js';
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

/**
 * Area-average downsampling of one HWC image (floats, or any numeric array such
 * as a canvas's RGBA bytes) to oh×ow float values (oh ≤ h, ow ≤ w):
 * each output pixel is the mean of the input area it covers, input pixels cut
 * by its border counted by the fraction inside. For integer factors this is
 * the plain block mean (64→32: the mean of each 2×2 block); unlike point or
 * bilinear sampling it never drops input pixels, so thin lines fade instead
 * of aliasing.
 */
export function resizeAreaFloat(src: ArrayLike<number>, h: number, w: number, c: number, oh: number, ow: number, dst: Float32Array = new Float32Array(oh * ow * c), dstOffset = 0): Float32Array {
  if (!(Number.isInteger(oh) && Number.isInteger(ow) && oh >= 1 && ow >= 1 && oh <= h && ow <= w)) {
    throw new DiffuseError(`area resize shrinks only: ${h}×${w} to ${oh}×${ow}`);
  }
  const rows = areaWeights(h, oh);
  const cols = areaWeights(w, ow);
  const tmp = new Float64Array(h * ow * c); // horizontal pass
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      const { first, weights } = cols[x]!;
      const o = (y * ow + x) * c;
      for (let k = 0; k < weights.length; k++) {
        const s = (y * w + first + k) * c;
        const wt = weights[k]!;
        for (let ch = 0; ch < c; ch++) tmp[o + ch] = tmp[o + ch]! + wt * src[s + ch]!;
      }
    }
  }
  for (let y = 0; y < oh; y++) {
    const { first, weights } = rows[y]!;
    for (let x = 0; x < ow; x++) {
      const o = dstOffset + (y * ow + x) * c;
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = 0; k < weights.length; k++) acc += weights[k]! * tmp[((first + k) * ow + x) * c + ch]!;
        dst[o + ch] = acc;
      }
    }
  }
  return dst;
}

/** Per output index: the first input index it covers and each covered input's share (summing to 1). */
function areaWeights(n: number, on: number): { first: number; weights: number[] }[] {
  const out: { first: number; weights: number[] }[] = [];
  for (let o = 0; o < on; o++) {
    const lo = (o * n) / on;
    const hi = ((o + 1) * n) / on;
    const first = Math.floor(lo);
    const weights: number[] = [];
    for (let i = first; i < Math.min(n, Math.ceil(hi)); i++) weights.push((Math.min(hi, i + 1) - Math.max(lo, i)) / (hi - lo));
    out.push({ first, weights });
  }
  return out;
}
