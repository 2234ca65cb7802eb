/**
 * Noise schedules and the derived tables of DDPM (Ho et al. 2020) and improved
 * DDPM (Nichol & Dhariwal 2021). Pure functions over plain float64 numbers.
 *
 * Index convention: tables are indexed by the 0-based training timestep
 * t = 0 … T−1. Index t is the paper's step t+1, so `alphaBar[t]` = ∏_{s≤t} α_s
 * and x_t ~ q(x_t | x_0) = N(sqrt(ᾱ_t) x_0, (1−ᾱ_t) I). "Clean" x_0 sits before
 * index 0 (ᾱ = 1): `alphaBarPrev[0]` = 1.
 */
import { DiffuseError } from './errors.js';

export type ScheduleName = 'linear' | 'cosine' | 'sigmoid';
export const SCHEDULE_NAMES: readonly ScheduleName[] = ['linear', 'cosine', 'sigmoid'];

export const MIN_T = 10;
export const MAX_T = 4000;
/** Betas are clipped here (Nichol & Dhariwal): β = 1 would destroy x_0 in one step. */
export const MAX_BETA = 0.999;

type Table = readonly number[];

/** The named tables of a schedule, computed once. Arrays are frozen. */
export interface Schedule {
  readonly name: string;
  /** Number of training timesteps T. */
  readonly T: number;
  /** β_t: per-step noise variance. */
  readonly betas: Table;
  /** α_t = 1 − β_t. */
  readonly alphas: Table;
  /** ᾱ_t = ∏_{s≤t} α_s. */
  readonly alphaBar: Table;
  /** ᾱ_{t−1}, with ᾱ_{−1} = 1. */
  readonly alphaBarPrev: Table;
  /** sqrt(ᾱ_t). */
  readonly sqrtAlphaBar: Table;
  /** sqrt(1 − ᾱ_t). */
  readonly sqrtOneMinusAlphaBar: Table;
  /** 1 / sqrt(ᾱ_t). */
  readonly sqrtRecipAlphaBar: Table;
  /** sqrt(1/ᾱ_t − 1). */
  readonly sqrtRecipm1AlphaBar: Table;
  /** β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t): variance of q(x_{t−1} | x_t, x_0). 0 at t = 0. */
  readonly posteriorVariance: Table;
  /** log β̃_t with β̃_0 replaced by β̃_1 (log 0 is −∞), as improved-diffusion. */
  readonly posteriorLogVarianceClipped: Table;
  /** β_t sqrt(ᾱ_{t−1}) / (1 − ᾱ_t): weight of x_0 in μ̃_t. Equals 1 at t = 0. */
  readonly posteriorMeanCoef1: Table;
  /** (1 − ᾱ_{t−1}) sqrt(α_t) / (1 − ᾱ_t): weight of x_t in μ̃_t. Equals 0 at t = 0. */
  readonly posteriorMeanCoef2: Table;
}

function checkT(T: number): void {
  if (!Number.isInteger(T) || T < MIN_T || T > MAX_T) {
    throw new DiffuseError(`number of timesteps T must be an integer in [${MIN_T}, ${MAX_T}], got ${T}`);
  }
}

/**
 * DDPM linear schedule: β from 1e-4 to 0.02 at T = 1000. For other T both ends
 * are scaled by 1000/T (improved-diffusion), so ∑β stays comparable; betas are
 * clipped at MAX_BETA (only matters for T < 20).
 */
export function linearBetaSchedule(T: number): number[] {
  checkT(T);
  const scale = 1000 / T;
  const b0 = scale * 1e-4;
  const b1 = scale * 0.02;
  const out: number[] = [];
  for (let i = 0; i < T; i++) out.push(Math.min(b0 + ((b1 - b0) * i) / (T - 1), MAX_BETA));
  return out;
}

/**
 * Cosine schedule (Nichol & Dhariwal 2021): ᾱ(t) = f(t)/f(0) with
 * f(t) = cos²(((t/T + s)/(1 + s))·π/2); β_t = min(1 − ᾱ(t+1)/ᾱ(t), 0.999).
 */
export function cosineBetaSchedule(T: number, s = 0.008): number[] {
  checkT(T);
  if (!(s > 0 && s < 1)) throw new DiffuseError(`cosine schedule offset s must be in (0, 1), got ${s}`);
  const f = (t: number): number => Math.cos((((t / T) + s) / (1 + s)) * (Math.PI / 2)) ** 2;
  const out: number[] = [];
  for (let i = 0; i < T; i++) out.push(Math.min(1 - f(i + 1) / f(i), MAX_BETA));
  return out;
}

/**
 * Sigmoid schedule (as in GeoDiff, Xu et al. 2022): β_t = start + (end − start)·
 * sigmoid(linspace(−6, 6, T)), with the linear schedule's ends (1e-4, 0.02 at
 * T = 1000, scaled by 1000/T), clipped at MAX_BETA.
 */
export function sigmoidBetaSchedule(T: number): number[] {
  checkT(T);
  const scale = 1000 / T;
  const b0 = scale * 1e-4;
  const b1 = scale * 0.02;
  const out: number[] = [];
  for (let i = 0; i < T; i++) {
    const x = -6 + (12 * i) / (T - 1);
    out.push(Math.min(b0 + (b1 - b0) / (1 + Math.exp(-x)), MAX_BETA));
  }
  return out;
}

export function betasFor(name: ScheduleName, T: number): number[] {
  switch (name) {
    case 'linear': return linearBetaSchedule(T);
    case 'cosine': return cosineBetaSchedule(T);
    case 'sigmoid': return sigmoidBetaSchedule(T);
    default: {
      const n: never = name;
      throw new DiffuseError(`unknown schedule '${String(n)}'; expected one of ${SCHEDULE_NAMES.join(', ')}`);
    }
  }
}

/** All tables of a named schedule with T steps. */
export function makeSchedule(name: ScheduleName, T: number): Schedule {
  if (!SCHEDULE_NAMES.includes(name)) {
    throw new DiffuseError(`unknown schedule '${String(name)}'; expected one of ${SCHEDULE_NAMES.join(', ')}`);
  }
  return scheduleFromBetas(betasFor(name, T), name);
}

/**
 * All tables from an explicit list of betas (each in (0, 1)). Used by
 * respacing, which derives new betas for a subset of timesteps.
 */
export function scheduleFromBetas(betasIn: readonly number[], name = 'custom'): Schedule {
  const T = betasIn.length;
  if (T < 1) throw new DiffuseError('a schedule needs at least one beta');
  for (let i = 0; i < T; i++) {
    const b = betasIn[i]!;
    if (!(b > 0 && b < 1)) throw new DiffuseError(`beta[${i}] must be in (0, 1), got ${b}`);
  }
  const betas = betasIn.slice();
  const alphas = betas.map((b) => 1 - b);
  const alphaBar: number[] = [];
  let prod = 1;
  for (const a of alphas) { prod *= a; alphaBar.push(prod); }
  const alphaBarPrev = [1, ...alphaBar.slice(0, T - 1)];
  const posteriorVariance = betas.map((b, t) => (b * (1 - alphaBarPrev[t]!)) / (1 - alphaBar[t]!));
  const pvClip = T > 1 ? posteriorVariance[1]! : betas[0]!;
  const freeze = (a: number[]): Table => Object.freeze(a);
  return Object.freeze({
    name,
    T,
    betas: freeze(betas),
    alphas: freeze(alphas),
    alphaBar: freeze(alphaBar),
    alphaBarPrev: freeze(alphaBarPrev),
    sqrtAlphaBar: freeze(alphaBar.map(Math.sqrt)),
    sqrtOneMinusAlphaBar: freeze(alphaBar.map((a) => Math.sqrt(1 - a))),
    sqrtRecipAlphaBar: freeze(alphaBar.map((a) => 1 / Math.sqrt(a))),
    sqrtRecipm1AlphaBar: freeze(alphaBar.map((a) => Math.sqrt(1 / a - 1))),
    posteriorVariance: freeze(posteriorVariance),
    posteriorLogVarianceClipped: freeze(posteriorVariance.map((v, t) => Math.log(t === 0 ? pvClip : v))),
    posteriorMeanCoef1: freeze(betas.map((b, t) => (b * Math.sqrt(alphaBarPrev[t]!)) / (1 - alphaBar[t]!))),
    posteriorMeanCoef2: freeze(alphas.map((a, t) => ((1 - alphaBarPrev[t]!) * Math.sqrt(a)) / (1 - alphaBar[t]!))),
  });
}

/** Throw unless t is a valid training index of `schedule`. */
export function checkTimestep(schedule: Schedule, t: number): void {
  if (!Number.isInteger(t) || t < 0 || t >= schedule.T) {
    throw new DiffuseError(`timestep t must be an integer in [0, ${schedule.T - 1}], got ${t}`);
  }
}
