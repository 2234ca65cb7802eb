/**
 * Noise schedules and the derived tables of DDPM (Ho et al. 2020) and improved
 * DDPM (Nichol & Dhariwal 2021), the scaled-linear schedule of latent diffusion
 * (Rombach et al. 2022), and the zero-terminal-SNR rescaling of Lin et al. 2023.
 * Pure functions over plain float64 numbers.
 *
 * Index convention: tables are indexed by the 0-based training timestep
 * t = 0 … T−1. Index t is the paper's step t+1, so `alphaBar[t]` = ∏_{s≤t} α_s
 * and x_t ~ q(x_t | x_0) = N(sqrt(ᾱ_t) x_0, (1−ᾱ_t) I). "Clean" x_0 sits before
 * index 0 (ᾱ = 1): `alphaBarPrev[0]` = 1.
 */
import { DiffuseError } from './errors.js';

export type ScheduleName = 'linear' | 'scaled-linear' | 'cosine' | 'sigmoid';
export const SCHEDULE_NAMES: readonly ScheduleName[] = ['linear', 'scaled-linear', 'cosine', 'sigmoid'];

/** Options of a named schedule (diffusers' beta_start, beta_end, rescale_betas_zero_snr). */
export interface ScheduleOptions {
  /**
   * β of the first and last step of 'linear', 'scaled-linear' and 'sigmoid'
   * (default 1e-4 and 0.02 at T = 1000, both scaled by 1000/T). 'cosine' has none.
   */
  readonly betaStart?: number;
  readonly betaEnd?: number;
  /**
   * Rescale the betas to zero terminal SNR (Lin et al. 2023, Algorithm 1):
   * ᾱ_{T−1} = 0, so the last step is pure noise. Needs a network that
   * predicts v, x0 or mean (ε says nothing about x_0 at SNR 0).
   */
  readonly zeroTerminalSnr?: boolean;
}

export const MIN_T = 10;
export const MAX_T = 4000;
/** Betas are clipped here (Nichol & Dhariwal): β = 1 would destroy x_0 in one step. */
export const MAX_BETA = 0.999;
/**
 * At zero terminal SNR ᾱ_{T−1} = 0 and σ_{T−1} = ∞. Where a finite noise level
 * is needed (the σ table, interpolation between timesteps) ᾱ = 0 counts as
 * 2⁻²⁴ (σ ≈ 4096), as diffusers' σ-space schedulers do.
 */
export const ZERO_SNR_ALPHA_BAR = 2 ** -24;

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
  /** sqrt(1/ᾱ_t − 1) (∞ where ᾱ_t = 0). */
  readonly sqrtRecipm1AlphaBar: Table;
  /**
   * σ_t = sqrt((1 − ᾱ_t)/ᾱ_t): the noise level of the same x_t in the
   * variance-exploding form x_t/sqrt(ᾱ_t) = x_0 + σ_t ε (Karras et al. 2022),
   * with ᾱ = 0 counted as ZERO_SNR_ALPHA_BAR.
   */
  readonly sigmas: Table;
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

/** The β range: given, or DDPM's 1e-4 → 0.02 at T = 1000 with both ends scaled by 1000/T (improved-diffusion). */
export function betaRange(T: number, betaStart?: number, betaEnd?: number): [number, number] {
  for (const [name, v] of [['betaStart', betaStart], ['betaEnd', betaEnd]] as const) {
    if (v !== undefined && !(v > 0 && v < 1)) throw new DiffuseError(`${name} must be in (0, 1), got ${v}`);
  }
  const b0 = betaStart ?? (1000 / T) * 1e-4;
  const b1 = betaEnd ?? (1000 / T) * 0.02;
  if (b0 > b1) throw new DiffuseError(`betaStart (${b0}) must not exceed betaEnd (${b1})`);
  return [b0, b1];
}

/**
 * DDPM linear schedule: β from betaStart to betaEnd (default 1e-4 → 0.02 at
 * T = 1000; for other T both ends are scaled by 1000/T so ∑β stays
 * comparable); betas are clipped at MAX_BETA (only matters for T < 20).
 */
export function linearBetaSchedule(T: number, betaStart?: number, betaEnd?: number): number[] {
  checkT(T);
  const [b0, b1] = betaRange(T, betaStart, betaEnd);
  const out: number[] = [];
  for (let i = 0; i < T; i++) out.push(Math.min(b0 + ((b1 - b0) * i) / (T - 1), MAX_BETA));
  return out;
}

/**
 * Scaled-linear schedule of latent diffusion (Rombach et al. 2022; diffusers'
 * "scaled_linear"): sqrt(β) linear from sqrt(betaStart) to sqrt(betaEnd),
 * same default range as the linear schedule, clipped at MAX_BETA.
 */
export function scaledLinearBetaSchedule(T: number, betaStart?: number, betaEnd?: number): number[] {
  checkT(T);
  const [b0, b1] = betaRange(T, betaStart, betaEnd);
  const r0 = Math.sqrt(b0);
  const r1 = Math.sqrt(b1);
  const out: number[] = [];
  for (let i = 0; i < T; i++) out.push(Math.min((r0 + ((r1 - r0) * i) / (T - 1)) ** 2, MAX_BETA));
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
 * sigmoid(linspace(−6, 6, T)), with the linear schedule's ends (default 1e-4,
 * 0.02 at T = 1000, scaled by 1000/T), clipped at MAX_BETA.
 */
export function sigmoidBetaSchedule(T: number, betaStart?: number, betaEnd?: number): number[] {
  checkT(T);
  const [b0, b1] = betaRange(T, betaStart, betaEnd);
  const out: number[] = [];
  for (let i = 0; i < T; i++) {
    const x = -6 + (12 * i) / (T - 1);
    out.push(Math.min(b0 + (b1 - b0) / (1 + Math.exp(-x)), MAX_BETA));
  }
  return out;
}

/**
 * Zero terminal SNR (Lin et al. 2023, "Common diffusion noise schedules and
 * sample steps are flawed", Algorithm 1): shift and scale sqrt(ᾱ) so that its
 * first value is kept and its last becomes 0, then recover the betas. The
 * last beta is 1.
 */
export function rescaleZeroTerminalSnr(betas: readonly number[]): number[] {
  if (betas.length < 2) throw new DiffuseError('zero-terminal-SNR rescaling needs at least two betas');
  let prod = 1;
  const sqrtAb = betas.map((b) => Math.sqrt((prod *= 1 - b)));
  const first = sqrtAb[0]!;
  const last = sqrtAb[sqrtAb.length - 1]!;
  const ab = sqrtAb.map((v) => ((v - last) * (first / (first - last))) ** 2);
  return ab.map((a, i) => 1 - (i === 0 ? a : a / ab[i - 1]!));
}

export function betasFor(name: ScheduleName, T: number, opts: ScheduleOptions = {}): number[] {
  const range = [opts.betaStart, opts.betaEnd] as const;
  const betas = ((): number[] => {
    switch (name) {
      case 'linear': return linearBetaSchedule(T, ...range);
      case 'scaled-linear': return scaledLinearBetaSchedule(T, ...range);
      case 'cosine':
        if (opts.betaStart !== undefined || opts.betaEnd !== undefined) throw new DiffuseError("the cosine schedule has no betaStart/betaEnd");
        return cosineBetaSchedule(T);
      case 'sigmoid': return sigmoidBetaSchedule(T, ...range);
      default: {
        const n: never = name;
        throw new DiffuseError(`unknown schedule '${String(n)}'; expected one of ${SCHEDULE_NAMES.join(', ')}`);
      }
    }
  })();
  return opts.zeroTerminalSnr === true ? rescaleZeroTerminalSnr(betas) : betas;
}

/** All tables of a named schedule with T steps. */
export function makeSchedule(name: ScheduleName, T: number, opts: ScheduleOptions = {}): Schedule {
  if (!SCHEDULE_NAMES.includes(name)) {
    throw new DiffuseError(`unknown schedule '${String(name)}'; expected one of ${SCHEDULE_NAMES.join(', ')}`);
  }
  return scheduleFromBetas(betasFor(name, T, opts), opts.zeroTerminalSnr === true ? `${name}+zero-snr` : name);
}

/**
 * All tables from an explicit list of betas (each in (0, 1); the last may be
 * 1: zero terminal SNR). Used by respacing, which derives new betas for a
 * subset of timesteps.
 */
export function scheduleFromBetas(betasIn: readonly number[], name = 'custom'): Schedule {
  const T = betasIn.length;
  if (T < 1) throw new DiffuseError('a schedule needs at least one beta');
  for (let i = 0; i < T; i++) {
    const b = betasIn[i]!;
    if (!(b > 0 && (b < 1 || (b === 1 && i === T - 1)))) throw new DiffuseError(`beta[${i}] must be in (0, 1) (only the last may be 1), got ${b}`);
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
    sigmas: freeze(alphaBar.map((a) => sigmaOfAlphaBar(a))),
    posteriorVariance: freeze(posteriorVariance),
    posteriorLogVarianceClipped: freeze(posteriorVariance.map((v, t) => Math.log(t === 0 ? pvClip : v))),
    posteriorMeanCoef1: freeze(betas.map((b, t) => (b * Math.sqrt(alphaBarPrev[t]!)) / (1 - alphaBar[t]!))),
    posteriorMeanCoef2: freeze(alphas.map((a, t) => ((1 - alphaBarPrev[t]!) * Math.sqrt(a)) / (1 - alphaBar[t]!))),
  });
}

/** σ = sqrt((1 − ᾱ)/ᾱ), with ᾱ = 0 counted as ZERO_SNR_ALPHA_BAR. */
export function sigmaOfAlphaBar(alphaBar: number): number {
  const a = alphaBar === 0 ? ZERO_SNR_ALPHA_BAR : alphaBar;
  return Math.sqrt((1 - a) / a);
}

/**
 * ᾱ at any real t in [0, T−1]: the table at integer t; between two indices,
 * log σ is interpolated linearly (the inverse of diffusers' `_sigma_to_t`,
 * which places Karras sigmas at fractional timesteps).
 */
export function alphaBarAt(schedule: Schedule, t: number): number {
  checkTime(schedule, t);
  if (Number.isInteger(t)) return schedule.alphaBar[t]!;
  const i = Math.floor(t);
  const w = t - i;
  const logSigma = (1 - w) * Math.log(schedule.sigmas[i]!) + w * Math.log(schedule.sigmas[i + 1]!);
  return 1 / (1 + Math.exp(2 * logSigma));
}

/** Throw unless t is a real number in [0, T−1] (a timestep, possibly between training indices). */
export function checkTime(schedule: Schedule, t: number): void {
  if (!(typeof t === 'number' && t >= 0 && t <= schedule.T - 1)) {
    throw new DiffuseError(`timestep t must be a number in [0, ${schedule.T - 1}], got ${t}`);
  }
}

/** Throw unless t is a valid training index of `schedule`. */
export function checkTimestep(schedule: Schedule, t: number): void {
  if (!Number.isInteger(t) || t < 0 || t >= schedule.T) {
    throw new DiffuseError(`timestep t must be an integer in [0, ${schedule.T - 1}], got ${t}`);
  }
}
