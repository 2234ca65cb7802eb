/**
 * Noise levels in σ form, for the samplers that step between them (Euler,
 * Euler ancestral, Heun, DPM-Solver with Karras sigmas). σ_t = sqrt((1−ᾱ_t)/ᾱ_t)
 * is the noise level of the variance-exploding form x_t/sqrt(ᾱ_t) = x_0 + σ_t ε
 * (Karras et al. 2022, "Elucidating the design space of diffusion-based
 * generative models"); schedule.sigmas holds it for every training index.
 * The interpolations are diffusers', so that the same configuration gives the
 * same levels.
 */
import type { Schedule } from '../schedule.js';

/** σ at a real timestep by linear interpolation of the σ table (numpy `interp`: diffusers' Euler and Heun). */
export function interpSigma(schedule: Schedule, t: number): number {
  const s = schedule.sigmas;
  if (t <= 0) return s[0]!;
  if (t >= schedule.T - 1) return s[schedule.T - 1]!;
  const i = Math.floor(t);
  const w = t - i;
  return w === 0 ? s[i]! : (1 - w) * s[i]! + w * s[i + 1]!;
}

/**
 * The timestep of a noise level σ: log σ interpolated linearly between the
 * two training indices around it, clamped to [0, T−1] (diffusers' `_sigma_to_t`).
 * Within 1e-9 of an integer it is that integer (σ^{1/ρ} round trips miss
 * the table's ends by an ulp).
 */
export function sigmaToTimestep(schedule: Schedule, sigma: number): number {
  const T = schedule.T;
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  let low = 0;
  for (let j = 0; j < T; j++) if (Math.log(schedule.sigmas[j]!) <= logSigma) low = j;
  low = Math.min(low, T - 2);
  const lo = Math.log(schedule.sigmas[low]!);
  const hi = Math.log(schedule.sigmas[low + 1]!);
  const w = Math.min(1, Math.max(0, (lo - logSigma) / (lo - hi)));
  const t = (1 - w) * low + w * (low + 1);
  return Math.abs(t - Math.round(t)) < 1e-9 ? Math.round(t) : t;
}

/**
 * Karras et al. 2022, eq. 5: n levels from σ_max down to σ_min, evenly spaced
 * in σ^{1/ρ} (ρ = 7), so that the steps crowd towards low noise.
 */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number, rho = 7): number[] {
  const lo = sigmaMin ** (1 / rho);
  const hi = sigmaMax ** (1 / rho);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const ramp = n > 1 ? i / (n - 1) : 0;
    out.push((hi + ramp * (lo - hi)) ** rho);
  }
  return out;
}
