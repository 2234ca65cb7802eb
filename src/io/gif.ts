/** Animated GIFs (gifenc), for grayscale, RGB and RGBA frames. Written atomically. */
import { createRequire } from 'node:module';
import { DiffuseError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { checkImage, type ImageU8 } from './image.js';

type Palette = number[][];
interface GifEncoderInstance {
  writeFrame(index: Uint8Array, width: number, height: number, opts: { palette: Palette; delay: number; repeat?: number }): void;
  finish(): void;
  bytes(): Uint8Array;
}
interface GifencModule {
  GIFEncoder(): GifEncoderInstance;
  quantize(rgba: Uint8Array, maxColors: number): Palette;
  applyPalette(rgba: Uint8Array, palette: Palette): Uint8Array;
}

const gifenc = createRequire(import.meta.url)('gifenc') as GifencModule;

const GRAY_PALETTE: Palette = Array.from({ length: 256 }, (_, i) => [i, i, i]);

export interface GifOptions {
  /** Delay per frame in milliseconds (default 100; GIF stores 10 ms units). */
  readonly delayMs?: number;
  /** Integer nearest-neighbour upscale factor (default 1). */
  readonly scale?: number;
  /** 0 = loop forever (default), −1 = play once. */
  readonly repeat?: number;
}

function upscale(img: ImageU8, s: number): ImageU8 {
  if (s === 1) return img;
  const W = img.width * s;
  const H = img.height * s;
  const c = img.channels;
  const out = new Uint8Array(W * H * c);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const src = (Math.floor(y / s) * img.width + Math.floor(x / s)) * c;
      out.set(img.data.subarray(src, src + c), (y * W + x) * c);
    }
  }
  return { data: out, width: W, height: H, channels: c };
}

/** Encode frames (all the same size and channels) as an animated GIF. */
export function encodeGif(frames: readonly ImageU8[], opts: GifOptions = {}): Uint8Array {
  if (frames.length === 0) throw new DiffuseError('gif: need at least one frame');
  const delay = opts.delayMs ?? 100;
  const scale = opts.scale ?? 1;
  if (!(delay >= 0) || !Number.isFinite(delay)) throw new DiffuseError(`gif: delayMs must be ≥ 0, got ${delay}`);
  if (!Number.isInteger(scale) || scale < 1 || scale > 64) throw new DiffuseError(`gif: scale must be an integer in [1, 64], got ${scale}`);
  const f0 = frames[0]!;
  frames.forEach((f, i) => {
    checkImage(f, `gif frame ${i}`);
    if (f.width !== f0.width || f.height !== f0.height || f.channels !== f0.channels) {
      throw new DiffuseError(`gif frame ${i} is ${f.width}×${f.height}×${f.channels}, frame 0 is ${f0.width}×${f0.height}×${f0.channels}`);
    }
  });
  const enc = gifenc.GIFEncoder();
  // Colour frames are quantised at their own size and the palette indices upscaled (s² fewer pixels to
  // quantise); a frame repeated (the hold at the end of a reverse-process GIF) is quantised once.
  const done = new Map<ImageU8, { index: Uint8Array; palette: Palette }>();
  frames.forEach((frame, i) => {
    let q = done.get(frame);
    if (q === undefined) {
      if (frame.channels === 1) {
        q = { index: upscale(frame, scale).data, palette: GRAY_PALETTE };
      } else {
        const n = frame.width * frame.height;
        const rgba = new Uint8Array(n * 4);
        for (let p = 0; p < n; p++) {
          for (let k = 0; k < 3; k++) rgba[p * 4 + k] = frame.data[p * frame.channels + k]!;
          rgba[p * 4 + 3] = 255;
        }
        const palette = gifenc.quantize(rgba, 256);
        q = { index: upscale({ data: gifenc.applyPalette(rgba, palette), width: frame.width, height: frame.height, channels: 1 }, scale).data, palette };
      }
      done.set(frame, q);
    }
    enc.writeFrame(q.index, frame.width * scale, frame.height * scale, { palette: q.palette, delay, ...(i === 0 ? { repeat: opts.repeat ?? 0 } : {}) });
  });
  enc.finish();
  return enc.bytes().slice();
}

/** Write an animated GIF file atomically. */
export async function writeGif(path: string, frames: readonly ImageU8[], opts: GifOptions = {}): Promise<void> {
  await writeFileAtomic(path, encodeGif(frames, opts));
}
