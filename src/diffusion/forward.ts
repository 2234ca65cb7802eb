/**
 * The forward (noising) process q of DDPM, closed form and step by step, and
 * the training targets derived from it. Inputs are never mutated.
 *
 * Index convention (see schedule.ts): t is the 0-based training index; x_t at
 * index t has had t+1 noising steps applied. "Step k" below (k = 0 … T) counts
 * noising steps: step 0 is the clean x_0, step k is training index k−1.
 */
import { DiffuseError } from '../errors.js';
import { Rng } from '../rng.js';
import { checkTimestep, type Schedule } from '../schedule.js';
import { checkSameLength, forEachSample, type Timesteps } from './timesteps.js';
import { fromX0AndEps } from './prediction.js';
import type { PredictionType, Shape4 } from './types.js';

/**
 * Closed form q(x_t | x_0): x_t = sqrt(ᾱ_t) x_0 + sqrt(1−ᾱ_t) ε.
 * `t`: one index for the whole array, or one per sample (the array is split
 * into t.length equal samples).
 */
export function qSample(schedule: Schedule, x0: Float32Array, t: Timesteps, noise: Float32Array): Float32Array {
  const n = checkSameLength({ x0, noise });
  const out = new Float32Array(n);
  forEachSample(schedule, n, t, (ti, s, e) => {
    const a = schedule.sqrtAlphaBar[ti]!;
    const b = schedule.sqrtOneMinusAlphaBar[ti]!;
    for (let i = s; i < e; i++) out[i] = a * x0[i]! + b * noise[i]!;
  });
  return out;
}

/**
 * One Markov step q(x_t | x_{t−1}): x_t = sqrt(1−β_t) x_{t−1} + sqrt(β_t) ε —
 * "add a little Gaussian noise to every pixel". `xPrev` is x at index t−1
 * (the clean image when t = 0).
 */
export function forwardStep(schedule: Schedule, xPrev: Float32Array, t: number, noise: Float32Array): Float32Array {
  checkTimestep(schedule, t);
  const n = checkSameLength({ xPrev, noise });
  const a = Math.sqrt(schedule.alphas[t]!);
  const b = Math.sqrt(schedule.betas[t]!);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = a * xPrev[i]! + b * noise[i]!;
  return out;
}

export interface ChainFrame {
  /** Number of noising steps applied (0 = clean x_0, T = fully noised). */
  readonly step: number;
  readonly x: Float32Array;
}

/**
 * Run the step-by-step chain x_0 → x_1 → … and yield copies of x after the
 * given numbers of steps (each in [0, T], any order; yielded ascending, once
 * each). Stops after the largest requested step. Noise comes from `rng`.
 */
export function* forwardChain(
  schedule: Schedule,
  x0: Float32Array,
  atSteps: readonly number[],
  rng: Rng,
): Generator<ChainFrame, void, void> {
  for (const k of atSteps) {
    if (!Number.isInteger(k) || k < 0 || k > schedule.T) {
      throw new DiffuseError(`forward chain step must be an integer in [0, ${schedule.T}], got ${k}`);
    }
  }
  const wanted = [...new Set(atSteps)].sort((p, q) => p - q);
  if (wanted.length === 0) return;
  let x = x0;
  let next = 0;
  const noise = new Float32Array(x0.length);
  for (let k = 0; k <= wanted[wanted.length - 1]!; k++) {
    if (k > 0) x = forwardStep(schedule, x, k - 1, rng.fillNormal(noise));
    if (wanted[next] === k) {
      yield { step: k, x: x === x0 ? x0.slice() : x.slice() };
      next++;
    }
  }
}

/**
 * What the network must regress for `prediction` (loss = MSE(net(x_t, t), target)):
 * epsilon → ε; x0 → x_0; v → sqrt(ᾱ_t) ε − sqrt(1−ᾱ_t) x_0; mean → μ̃_t(x_t, x_0).
 */
export function trainingTarget(
  schedule: Schedule,
  prediction: PredictionType,
  x0: Float32Array,
  noise: Float32Array,
  xt: Float32Array,
  t: Timesteps,
): Float32Array {
  return fromX0AndEps(prediction, x0, noise, xt, t, schedule);
}

export interface TrainingBatch {
  /** Noised images x_t, NHWC like the input. */
  readonly xt: Float32Array;
  /** One uniformly random training index per image. */
  readonly t: Int32Array;
  /** The regression target for the prediction type. */
  readonly target: Float32Array;
  /** The ε used (handy for logging or other losses). */
  readonly noise: Float32Array;
}

/**
 * Draw t ~ U{0..T−1} per image (unless the timesteps are given, e.g. the
 * stratified draw of diffusion/experts.ts) and ε ~ N(0, I) from `rng`; build (x_t, t, target).
 */
export function makeTrainingBatch(
  schedule: Schedule,
  prediction: PredictionType,
  x0Batch: Float32Array,
  shape: Shape4,
  rng: Rng,
  timesteps?: Int32Array,
): TrainingBatch {
  const size = checkShape(shape, x0Batch.length, 'training batch');
  if (timesteps !== undefined && timesteps.length !== shape[0]) throw new DiffuseError(`training batch: ${timesteps.length} timesteps for ${shape[0]} images`);
  const t = timesteps ?? new Int32Array(shape[0]);
  if (timesteps === undefined) for (let i = 0; i < t.length; i++) t[i] = rng.int(schedule.T);
  const noise = rng.normalArray(size);
  const xt = qSample(schedule, x0Batch, t, noise);
  const target = trainingTarget(schedule, prediction, x0Batch, noise, xt, t);
  return { xt, t, target, noise };
}

/** Throw unless `shape` is four positive integers whose product is `length`. */
export function checkShape(shape: Shape4, length: number, what: string): number {
  if (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new DiffuseError(`${what}: shape must be four positive integers [n, h, w, c], got [${shape.join(', ')}]`);
  }
  const size = shape[0] * shape[1] * shape[2] * shape[3];
  if (size !== length) {
    throw new DiffuseError(`${what}: shape [${shape.join(', ')}] has ${size} elements but the array has ${length}`);
  }
  return size;
}
