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
 * Inputs are never mutated; outputs are new Float32Arrays (math in float64).
 */
import { assertNever, type PredictionType } from './types.js';
import type { Schedule } from '../schedule.js';
import { checkSameLength, forEachSample, type Timesteps } from './timesteps.js';

export interface X0AndEps {
  readonly x0: Float32Array;
  readonly eps: Float32Array;
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
  forEachSample(schedule, n, t, (ti, s, e) => {
    const a = schedule.sqrtAlphaBar[ti]!;
    const b = schedule.sqrtOneMinusAlphaBar[ti]!;
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
        const c1 = schedule.posteriorMeanCoef1[ti]!;
        const c2 = schedule.posteriorMeanCoef2[ti]!;
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
  });
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
  forEachSample(schedule, n, t, (ti, s, e) => {
    const a = schedule.sqrtAlphaBar[ti]!;
    const b = schedule.sqrtOneMinusAlphaBar[ti]!;
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
        const c1 = schedule.posteriorMeanCoef1[ti]!;
        const c2 = schedule.posteriorMeanCoef2[ti]!;
        for (let i = s; i < e; i++) out[i] = c1 * x0[i]! + c2 * xt[i]!;
        break;
      }
      default:
        assertNever(prediction, 'prediction type');
    }
  });
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
