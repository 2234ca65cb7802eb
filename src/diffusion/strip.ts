/**
 * A picture of the forward process: one image noised step by step
 * (x_t = sqrt(1−β_t) x_{t−1} + sqrt(β_t) ε), shown as a horizontal strip of
 * frames at evenly spaced step counts from 0 (clean) to T (pure noise).
 */
import { DiffuseError } from '../errors.js';
import { Rng } from '../rng.js';
import { makeSchedule, type ScheduleName } from '../schedule.js';
import { centerCropSquare, checkImage, imageGrid, resizeBilinear, toFloat, type ImageU8 } from '../image/pixels.js';
import { forwardChain } from './forward.js';

export interface StripOptions {
  /** Number of diffusion steps T (default 1000). */
  readonly steps?: number;
  readonly schedule?: ScheduleName;
  /** Number of frames, ≥ 2 (default 8): step counts round(k·T/(frames−1)). */
  readonly frames?: number;
  /** Side of the square frames in pixels (default 64). */
  readonly size?: number;
  readonly seed?: number;
  /** Padding between frames in pixels (default 2). */
  readonly pad?: number;
}

/** The step counts shown: `frames` evenly spaced values from 0 to T inclusive. */
export function stripSteps(T: number, frames: number): number[] {
  if (!Number.isInteger(frames) || frames < 2 || frames > 64) throw new DiffuseError(`frames must be an integer in [2, 64], got ${frames}`);
  const out: number[] = [];
  for (let k = 0; k < frames; k++) out.push(Math.round((k * T) / (frames - 1)));
  return out;
}

/**
 * Centre-crop `image` to a square, resize to size×size (alpha dropped), run
 * the step-by-step forward chain and tile the chosen frames left to right.
 */
export function forwardStrip(image: ImageU8, opts: StripOptions = {}): { image: ImageU8; steps: number[] } {
  checkImage(image);
  const T = opts.steps ?? 1000;
  const size = opts.size ?? 64;
  if (!Number.isInteger(size) || size < 4 || size > 1024) throw new DiffuseError(`size must be an integer in [4, 1024], got ${size}`);
  const schedule = makeSchedule(opts.schedule ?? 'linear', T);
  const steps = stripSteps(T, opts.frames ?? 8);
  const c = image.channels === 1 ? 1 : 3;
  let src: Uint8Array = image.data;
  if (image.channels === 4) {
    src = new Uint8Array(image.width * image.height * 3);
    for (let i = 0; i < image.width * image.height; i++) for (let k = 0; k < 3; k++) src[i * 3 + k] = image.data[i * 4 + k]!;
  }
  const sq = centerCropSquare({ data: toFloat(src), width: image.width, height: image.height, channels: c });
  const x0 = resizeBilinear(sq, size, size).data;
  const rng = new Rng(opts.seed ?? 0);
  const per = size * size * c;
  const batch = new Float32Array(per * steps.length);
  const slot = new Map<number, number[]>();
  steps.forEach((k, i) => slot.set(k, [...(slot.get(k) ?? []), i]));
  for (const frame of forwardChain(schedule, x0, steps, rng)) {
    for (const i of slot.get(frame.step)!) batch.set(frame.x, i * per);
  }
  const strip = imageGrid(batch, [steps.length, size, size, c], { cols: steps.length, pad: opts.pad ?? 2, padValue: 1 });
  return { image: strip, steps };
}
