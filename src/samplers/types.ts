/**
 * The one sampler contract (in the style of diffusers' scheduling_ddim.py) and
 * the pieces every sampler shares: timestep spacing, turning a model output
 * into (x̂_0, ε̂), and clipping x̂_0.
 *
 * Samples always live in the variance-preserving space of training,
 * x_t = sqrt(ᾱ_t) x_0 + sqrt(1−ᾱ_t) ε, and start as x_T ~ N(0, I). Samplers
 * that step in σ space (Euler, Heun) convert inside `step`, as diffusers'
 * `scale_model_input` does: the model sees, and `step` returns, x in this
 * space, so the loop, guidance and generate() are the same for every sampler.
 */
import { DiffuseError } from '../errors.js';
import type { Rng } from '../rng.js';
import type { Schedule } from '../schedule.js';
import { checkPredictionForSchedule, levelAt, toX0AndEpsAt, type NoiseLevel } from '../diffusion/prediction.js';
import { PREDICTION_TYPES, type PredictionType, type Shape4 } from '../diffusion/types.js';
import { checkSpacingOptions, timestepGrid, type SpacingOptions } from './spacing.js';

export interface StepResult {
  /** The sample one sampling step later (less noisy); the clean sample after the last step. */
  readonly prev: Float32Array;
  /** The sampler's estimate of x_0 at this step (after clipping). */
  readonly predX0: Float32Array;
}

export interface Sampler {
  readonly name: string;
  /**
   * Choose `n` sampling steps (1 ≤ n ≤ T, or the number of custom timesteps);
   * resets any multistep history. Most samplers make one model call per step;
   * Heun makes 2n − 1 (`timesteps.length` counts the calls).
   */
  setTimesteps(n: number): void;
  /**
   * The timesteps the model is called at, in order, one entry per call:
   * descending training indices, fractional for σ-space samplers with
   * 'linspace' spacing or Karras sigmas (the model receives t as is), and
   * repeated where a sampler calls the model twice at one level (Heun).
   */
  readonly timesteps: readonly number[];
  /**
   * One reverse step from x at timestep t (the next entry of `timesteps`).
   * `shape` (optional) tells per-sample operations (dynamic thresholding)
   * where samples start; without it the whole array counts as one sample.
   * Never mutates its inputs.
   */
  step(modelOutput: Float32Array, t: number, x: Float32Array, rng: Rng, shape?: Shape4): StepResult;
}

/** Clip x̂_0 to [−c, c], or dynamic thresholding (Imagen) at a percentile. */
export type ClipX0 = number | 'dynamic';

export interface SamplerOptions extends SpacingOptions {
  readonly schedule: Schedule;
  readonly prediction: PredictionType;
  readonly clipX0?: ClipX0;
  /** Percentile of |x̂_0| for dynamic thresholding (default 0.995). */
  readonly dynamicPercentile?: number;
}

/** x̂_0 (after clipping), ε̂ consistent with it, and ε̂ from the raw model output (before clipping). */
export interface Prediction {
  readonly x0: Float32Array;
  readonly eps: Float32Array;
  readonly rawEps: Float32Array;
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
  protected readonly spacing: SpacingOptions;
  private ts: readonly number[] = [];
  private first = new Map<number, number>();
  private cursor = 0;

  constructor(opts: SamplerOptions) {
    if (!PREDICTION_TYPES.includes(opts.prediction)) {
      throw new DiffuseError(`unknown prediction type '${String(opts.prediction)}'; expected one of ${PREDICTION_TYPES.join(', ')}`);
    }
    if (opts.clipX0 !== undefined && opts.clipX0 !== 'dynamic' && !(opts.clipX0 > 0)) {
      throw new DiffuseError(`clipX0 must be a positive number or 'dynamic', got ${String(opts.clipX0)}`);
    }
    checkPredictionForSchedule(opts.prediction, opts.schedule);
    checkSpacingOptions(opts, opts.schedule.T);
    this.schedule = opts.schedule;
    this.prediction = opts.prediction;
    this.clip = opts.clipX0;
    this.percentile = opts.dynamicPercentile ?? 0.995;
    this.spacing = {
      ...(opts.timestepSpacing !== undefined ? { timestepSpacing: opts.timestepSpacing } : {}),
      ...(opts.stepsOffset !== undefined ? { stepsOffset: opts.stepsOffset } : {}),
      ...(opts.customTimesteps !== undefined ? { customTimesteps: [...opts.customTimesteps] } : {}),
    };
  }

  get timesteps(): readonly number[] {
    return this.ts;
  }

  setTimesteps(n: number): void {
    this.ts = Object.freeze(this.plan(n));
    this.first = new Map();
    this.ts.forEach((t, i) => { if (!this.first.has(t)) this.first.set(t, i); });
    this.cursor = 0;
    this.onSetTimesteps();
  }

  /** The model-call timesteps for n steps (default: the spacing's grid). May set up per-step tables. */
  protected plan(n: number): number[] {
    return this.grid(n);
  }

  /** The spacing's grid of n timesteps (`fractional`: unrounded 'linspace'). */
  protected grid(n: number, fractional = false): number[] {
    return timestepGrid(this.schedule.T, n, this.spacing, fractional);
  }

  protected onSetTimesteps(): void {}

  private checkReady(): void {
    if (this.ts.length === 0) throw new DiffuseError(`${this.name}: call setTimesteps(n) before step()`);
  }

  /** Position of t in `timesteps` (samplers without history may step any timestep in any order). */
  protected position(t: number): number {
    this.checkReady();
    const i = this.first.get(t);
    if (i === undefined) throw new DiffuseError(`${this.name}: timestep ${t} is not one of the ${this.ts.length} sampling timesteps`);
    this.cursor = i + 1;
    return i;
  }

  /**
   * Position of t for samplers with history (multistep, predictor-corrector):
   * t must be the next timestep, or the first one (which starts over).
   */
  protected advance(t: number): number {
    this.checkReady();
    const i = this.ts[this.cursor] === t ? this.cursor : this.ts[0] === t ? 0 : -1;
    if (i < 0) {
      const want = this.ts[this.cursor];
      throw new DiffuseError(`${this.name}: steps must follow timesteps in order; expected t=${want ?? this.ts[0]}, got t=${t}`);
    }
    this.cursor = i + 1;
    return i;
  }

  /**
   * Model output -> x̂_0 (clipped), ε̂ consistent with the clipped x̂_0, and ε̂
   * from the raw output. The noise level is the schedule's at t unless given.
   */
  protected predict(modelOutput: Float32Array, t: number, x: Float32Array, shape?: Shape4, level: NoiseLevel = levelAt(this.schedule, t)): Prediction {
    if (modelOutput.length !== x.length) {
      throw new DiffuseError(`${this.name}: model output has ${modelOutput.length} elements but x has ${x.length}`);
    }
    const raw = toX0AndEpsAt(this.prediction, modelOutput, x, level);
    if (this.clip === undefined) return { x0: raw.x0, eps: raw.eps, rawEps: raw.eps };
    const x0 = clipX0(raw.x0, this.clip, shape, this.percentile);
    const eps = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) eps[i] = (x[i]! - level.a * x0[i]!) / level.b;
    return { x0, eps, rawEps: raw.eps };
  }

  abstract step(modelOutput: Float32Array, t: number, x: Float32Array, rng: Rng, shape?: Shape4): StepResult;
}
