/**
 * The one sampler contract (in the style of diffusers' scheduling_ddim.py) and
 * the pieces every sampler shares: timestep spacing, turning a model output
 * into (x̂_0, ε̂), and clipping x̂_0.
 */
import { DiffuseError } from '../errors.js';
import type { Rng } from '../rng.js';
import type { Schedule } from '../schedule.js';
import { toX0AndEps, type X0AndEps } from '../diffusion/prediction.js';
import { PREDICTION_TYPES, type PredictionType, type Shape4 } from '../diffusion/types.js';

export interface StepResult {
  /** The sample one sampling step later (less noisy); the clean sample after the last step. */
  readonly prev: Float32Array;
  /** The sampler's estimate of x_0 at this step (after clipping). */
  readonly predX0: Float32Array;
}

export interface Sampler {
  readonly name: string;
  /** Choose `n` sampling steps (1 ≤ n ≤ T); resets any multistep history. */
  setTimesteps(n: number): void;
  /** Descending training indices the sampler visits, one model call each; the last is 0. */
  readonly timesteps: readonly number[];
  /**
   * One reverse step from x at training index t (an entry of `timesteps`).
   * `shape` (optional) tells per-sample operations (dynamic thresholding)
   * where samples start; without it the whole array counts as one sample.
   * Never mutates its inputs.
   */
  step(modelOutput: Float32Array, t: number, x: Float32Array, rng: Rng, shape?: Shape4): StepResult;
}

/** Clip x̂_0 to [−c, c], or dynamic thresholding (Imagen) at a percentile. */
export type ClipX0 = number | 'dynamic';

export interface SamplerOptions {
  readonly schedule: Schedule;
  readonly prediction: PredictionType;
  readonly clipX0?: ClipX0;
  /** Percentile of |x̂_0| for dynamic thresholding (default 0.995). */
  readonly dynamicPercentile?: number;
}

/**
 * n evenly spaced training indices from T−1 down to 0 (rounded linspace),
 * strictly descending. Includes both ends, so sampling starts from the
 * noisiest step and ends at the cleanest.
 */
export function spacedTimesteps(T: number, n: number): number[] {
  if (!Number.isInteger(n) || n < 1 || n > T) {
    throw new DiffuseError(`number of sampling steps must be an integer in [1, ${T}], got ${n}`);
  }
  if (n === 1) return [T - 1];
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Math.round(((T - 1) * (n - 1 - i)) / (n - 1)));
  return out;
}

/** Clip x̂_0 (returns a new array). */
export function clipX0(x0: Float32Array, clip: ClipX0, shape?: Shape4, percentile = 0.995): Float32Array {
  const out = new Float32Array(x0.length);
  if (clip === 'dynamic') {
    if (!(percentile > 0 && percentile <= 1)) throw new DiffuseError(`dynamic threshold percentile must be in (0, 1], got ${percentile}`);
    const nb = shape ? shape[0] : 1;
    if (x0.length % nb !== 0) throw new DiffuseError(`clipX0: batch of ${nb} does not divide ${x0.length} elements`);
    const per = x0.length / nb;
    const abs = new Float32Array(per);
    for (let b = 0; b < nb; b++) {
      for (let i = 0; i < per; i++) abs[i] = Math.abs(x0[b * per + i]!);
      abs.sort();
      const s = Math.max(1, abs[Math.min(per - 1, Math.floor(percentile * (per - 1)))]!);
      for (let i = 0; i < per; i++) {
        const v = x0[b * per + i]!;
        out[b * per + i] = Math.min(s, Math.max(-s, v)) / s;
      }
    }
    return out;
  }
  if (!(clip > 0) || !Number.isFinite(clip)) throw new DiffuseError(`clipX0 must be a positive number or 'dynamic', got ${clip}`);
  for (let i = 0; i < x0.length; i++) out[i] = Math.min(clip, Math.max(-clip, x0[i]!));
  return out;
}

/** Shared state and helpers of the samplers. Each instance owns its state. */
export abstract class SamplerBase implements Sampler {
  abstract readonly name: string;
  protected readonly schedule: Schedule;
  protected readonly prediction: PredictionType;
  protected readonly clip: ClipX0 | undefined;
  protected readonly percentile: number;
  private ts: readonly number[] = [];
  private pos = new Map<number, number>();

  constructor(opts: SamplerOptions) {
    if (!PREDICTION_TYPES.includes(opts.prediction)) {
      throw new DiffuseError(`unknown prediction type '${String(opts.prediction)}'; expected one of ${PREDICTION_TYPES.join(', ')}`);
    }
    if (opts.clipX0 !== undefined && opts.clipX0 !== 'dynamic' && !(opts.clipX0 > 0)) {
      throw new DiffuseError(`clipX0 must be a positive number or 'dynamic', got ${String(opts.clipX0)}`);
    }
    this.schedule = opts.schedule;
    this.prediction = opts.prediction;
    this.clip = opts.clipX0;
    this.percentile = opts.dynamicPercentile ?? 0.995;
  }

  get timesteps(): readonly number[] {
    return this.ts;
  }

  setTimesteps(n: number): void {
    this.ts = Object.freeze(spacedTimesteps(this.schedule.T, n));
    this.pos = new Map(this.ts.map((t, i) => [t, i]));
    this.onSetTimesteps();
  }

  protected onSetTimesteps(): void {}

  /** Position of t in `timesteps`, or a DiffuseError. */
  protected position(t: number): number {
    if (this.ts.length === 0) throw new DiffuseError(`${this.name}: call setTimesteps(n) before step()`);
    const i = this.pos.get(t);
    if (i === undefined) throw new DiffuseError(`${this.name}: timestep ${t} is not one of the ${this.ts.length} sampling timesteps`);
    return i;
  }

  /** Model output -> (x̂_0 clipped, ε̂ consistent with the clipped x̂_0). */
  protected predict(modelOutput: Float32Array, t: number, x: Float32Array, shape?: Shape4): X0AndEps {
    if (modelOutput.length !== x.length) {
      throw new DiffuseError(`${this.name}: model output has ${modelOutput.length} elements but x has ${x.length}`);
    }
    const raw = toX0AndEps(this.prediction, modelOutput, x, t, this.schedule);
    if (this.clip === undefined) return raw;
    const x0 = clipX0(raw.x0, this.clip, shape, this.percentile);
    const a = this.schedule.sqrtAlphaBar[t]!;
    const b = this.schedule.sqrtOneMinusAlphaBar[t]!;
    const eps = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) eps[i] = (x[i]! - a * x0[i]!) / b;
    return { x0, eps };
  }

  abstract step(modelOutput: Float32Array, t: number, x: Float32Array, rng: Rng, shape?: Shape4): StepResult;
}
