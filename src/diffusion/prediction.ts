/**
 * Conversions among the four things a network may predict (PredictionType),
 * given x_t, the training index t and the schedule. Everything goes through the
 * pair (x̂_0, ε̂), which is linked to x_t by x_t = sqrt(ᾱ_t) x̂_0 + sqrt(1−ᾱ_t) ε̂.
 *
 * - epsilon: output = ε̂
 * - x0:      output = x̂_0
 * - v:       output = sqrt(ᾱ_t) ε̂ − sqrt(1−ᾱ_t) x̂_0   (Salimans & Ho 2022)
 * - mean:    output = μ̃_t = c1_t x̂_0 + c2_t x_t        (c1, c2 = posteriorMeanCoef1/2)
 *
 * Convention at t = 0 for `mean`: ᾱ_{−1} = 1, so c1_0 = 1 and c2_0 = 0 and the
 * posterior mean of the clean image is x̂_0 itself (μ̃_0 = x̂_0). c1_t > 0 for
 * every t, so mean → x0 is always defined; note that for large t c1_t is small
 * (≈1e-4 late in the linear schedule), so float32 noise in a `mean` output is
 * amplified ~1/c1_t when recovering x̂_0.
 *
 * t may lie between training indices (σ-space samplers, Karras sigmas): ᾱ is
 * then interpolated (schedule.ts `alphaBarAt`); `mean` is defined on the
 * discrete chain only and needs an integer t. Samplers that know their noise
 * level exactly pass it as a `NoiseLevel` (`toX0AndEpsAt`).
 *
 * Inputs are never mutated; outputs are new Float32Arrays (math in float64).
 */
import { DiffuseError } from '../errors.js';
import { assertNever, type PredictionType } from './types.js';
import { alphaBarAt, checkTime, type Schedule } from '../schedule.js';
import { checkSameLength, forEachSample, type Timesteps } from './timesteps.js';

export interface X0AndEps {
  readonly x0: Float32Array;
  readonly eps: Float32Array;
}

/**
 * What a conversion needs to know about a noise level: a = sqrt(ᾱ),
 * b = sqrt(1 − ᾱ), and, on the discrete chain only, the posterior mean
 * coefficients (c1, c2) of `mean` prediction.
 */
export interface NoiseLevel {
  readonly a: number;
  readonly b: number;
  readonly meanCoefs?: readonly [c1: number, c2: number];
}

/** The noise level of timestep t (any real t in [0, T−1]; `mean` coefficients at integer t). */
export function levelAt(schedule: Schedule, t: number): NoiseLevel {
  checkTime(schedule, t);
  if (!Number.isInteger(t)) {
    const ab = alphaBarAt(schedule, t);
    return { a: Math.sqrt(ab), b: Math.sqrt(1 - ab) };
  }
  return {
    a: schedule.sqrtAlphaBar[t]!,
    b: schedule.sqrtOneMinusAlphaBar[t]!,
    meanCoefs: [schedule.posteriorMeanCoef1[t]!, schedule.posteriorMeanCoef2[t]!],
  };
}

/** The noise level of the variance-exploding σ: ᾱ = 1/(1 + σ²). No `mean` coefficients. */
export function levelOfSigma(sigma: number): NoiseLevel {
  const a = 1 / Math.sqrt(1 + sigma * sigma);
  return { a, b: sigma * a };
}

function meanCoefs(level: NoiseLevel): readonly [number, number] {
  if (level.meanCoefs === undefined) {
    throw new DiffuseError("prediction 'mean' is defined on the training chain only: it needs an integer timestep (use epsilon, x0 or v between timesteps)");
  }
  return level.meanCoefs;
}

function toRange(prediction: PredictionType, level: NoiseLevel, output: Float32Array, xt: Float32Array, x0: Float32Array, eps: Float32Array, s: number, e: number): void {
  const { a, b } = level;
  switch (prediction) {
    case 'epsilon':
      for (let i = s; i < e; i++) {
        const ep = output[i]!;
        eps[i] = ep;
        x0[i] = (xt[i]! - b * ep) / a;
      }
      break;
    case 'x0':
      for (let i = s; i < e; i++) {
        const z = output[i]!;
        x0[i] = z;
        eps[i] = (xt[i]! - a * z) / b;
      }
      break;
    case 'v':
      for (let i = s; i < e; i++) {
        const v = output[i]!;
        const x = xt[i]!;
        x0[i] = a * x - b * v;
        eps[i] = b * x + a * v;
      }
      break;
    case 'mean': {
      const [c1, c2] = meanCoefs(level);
      for (let i = s; i < e; i++) {
        const x = xt[i]!;
        const z = (output[i]! - c2 * x) / c1;
        x0[i] = z;
        eps[i] = (x - a * z) / b;
      }
      break;
    }
    default:
      assertNever(prediction, 'prediction type');
  }
}

function fromRange(prediction: PredictionType, level: NoiseLevel, x0: Float32Array, eps: Float32Array, xt: Float32Array, out: Float32Array, s: number, e: number): void {
  const { a, b } = level;
  switch (prediction) {
    case 'epsilon':
      for (let i = s; i < e; i++) out[i] = eps[i]!;
      break;
    case 'x0':
      for (let i = s; i < e; i++) out[i] = x0[i]!;
      break;
    case 'v':
      for (let i = s; i < e; i++) out[i] = a * eps[i]! - b * x0[i]!;
      break;
    case 'mean': {
      const [c1, c2] = meanCoefs(level);
      for (let i = s; i < e; i++) out[i] = c1 * x0[i]! + c2 * xt[i]!;
      break;
    }
    default:
      assertNever(prediction, 'prediction type');
  }
}

/** Per sample range, its noise level: a single t may be fractional, per-sample t are training indices. */
function forEachLevel(schedule: Schedule, n: number, t: Timesteps, fn: (level: NoiseLevel, s: number, e: number) => void): void {
  if (typeof t === 'number') {
    fn(levelAt(schedule, t), 0, n);
    return;
  }
  forEachSample(schedule, n, t, (ti, s, e) => fn(levelAt(schedule, ti), s, e));
}

/** Network output in `prediction` form at a known noise level -> (x̂_0, ε̂). */
export function toX0AndEpsAt(prediction: PredictionType, output: Float32Array, xt: Float32Array, level: NoiseLevel): X0AndEps {
  const n = checkSameLength({ output, xt });
  const x0 = new Float32Array(n);
  const eps = new Float32Array(n);
  toRange(prediction, level, output, xt, x0, eps, 0, n);
  return { x0, eps };
}

/** Network output in `prediction` form -> (x̂_0, ε̂). */
export function toX0AndEps(
  prediction: PredictionType,
  output: Float32Array,
  xt: Float32Array,
  t: Timesteps,
  schedule: Schedule,
): X0AndEps {
  const n = checkSameLength({ output, xt });
  const x0 = new Float32Array(n);
  const eps = new Float32Array(n);
  forEachLevel(schedule, n, t, (level, s, e) => toRange(prediction, level, output, xt, x0, eps, s, e));
  return { x0, eps };
}

/** (x̂_0, ε̂) -> what a network of type `prediction` outputs (also the training target). */
export function fromX0AndEps(
  prediction: PredictionType,
  x0: Float32Array,
  eps: Float32Array,
  xt: Float32Array,
  t: Timesteps,
  schedule: Schedule,
): Float32Array {
  const n = checkSameLength({ x0, eps, xt });
  const out = new Float32Array(n);
  forEachLevel(schedule, n, t, (level, s, e) => fromRange(prediction, level, x0, eps, xt, out, s, e));
  return out;
}

/** Convert a network output from one prediction type to another. */
export function convertPrediction(
  from: PredictionType,
  to: PredictionType,
  output: Float32Array,
  xt: Float32Array,
  t: Timesteps,
  schedule: Schedule,
): Float32Array {
  const { x0, eps } = toX0AndEps(from, output, xt, t, schedule);
  return fromX0AndEps(to, x0, eps, xt, t, schedule);
}

/**
 * A zero-terminal-SNR schedule (ᾱ_{T−1} = 0) cannot be sampled with an
 * ε-predicting network: x̂_0 = (x_t − sqrt(1−ᾱ) ε̂)/sqrt(ᾱ) divides by 0 at the
 * first step (Lin et al. 2023, §3.2). Throws a DiffuseError for that pair.
 */
export function checkPredictionForSchedule(prediction: PredictionType, schedule: Schedule): void {
  if (prediction === 'epsilon' && schedule.alphaBar[schedule.T - 1] === 0) {
    throw new DiffuseError(`schedule '${schedule.name}' has zero terminal SNR: use a v, x0 or mean network, not epsilon (x̂_0 is undefined at ᾱ = 0)`);
  }
}
