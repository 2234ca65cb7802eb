/**
 * Where the sampling steps sit among the T training timesteps: the timestep
 * spacings of Lin et al. 2023 ("Common diffusion noise schedules and sample
 * steps are flawed", Table 2), computed exactly as diffusers' schedulers do so
 * that the same configuration visits the same timesteps:
 *
 *   uniform   round(linspace(T−1, 0, n)), halves rounded up: both ends. The
 *             project's own rule and every sampler's default.
 *   linspace  linspace(0, T−1, n) reversed (diffusers "linspace"), rounded half
 *             to even as numpy does; the σ-space samplers keep it fractional.
 *   leading   k·⌊T/n⌋ + stepsOffset for k = n−1 … 0 (diffusers "leading";
 *             Stable Diffusion 1.x uses stepsOffset = 1). Never visits T−1.
 *   trailing  round(T − k·T/n) − 1 for k = 0 … n−1 (diffusers "trailing"):
 *             starts at T−1, the noisiest step, but stops short of 0.
 *
 * or a custom strictly descending list of training indices, which replaces
 * the spacing (diffusers' `set_timesteps(timesteps=…)`).
 */
import { DiffuseError } from '../errors.js';

export type TimestepSpacing = 'uniform' | 'linspace' | 'leading' | 'trailing';
export const TIMESTEP_SPACINGS: readonly TimestepSpacing[] = ['uniform', 'linspace', 'leading', 'trailing'];

export interface SpacingOptions {
  /** Default 'uniform'. */
  readonly timestepSpacing?: TimestepSpacing;
  /** Added to every timestep of 'leading' spacing (diffusers' steps_offset); 'leading' only. Default 0. */
  readonly stepsOffset?: number;
  /** The sampling timesteps themselves (integers, strictly descending, in [0, T−1]); replaces the spacing. */
  readonly customTimesteps?: readonly number[];
}

/** Throw unless the spacing options are well-formed (T: the schedule's number of timesteps). */
export function checkSpacingOptions(opts: SpacingOptions, T: number): void {
  const spacing = opts.timestepSpacing;
  if (spacing !== undefined && !TIMESTEP_SPACINGS.includes(spacing)) {
    throw new DiffuseError(`unknown timestep spacing '${String(spacing)}'; expected one of ${TIMESTEP_SPACINGS.join(', ')}`);
  }
  const offset = opts.stepsOffset;
  if (offset !== undefined) {
    if (!Number.isInteger(offset) || offset < 0 || offset >= T) throw new DiffuseError(`stepsOffset must be an integer in [0, ${T - 1}], got ${offset}`);
    if (offset !== 0 && spacing !== 'leading' && opts.customTimesteps === undefined) {
      throw new DiffuseError(`stepsOffset applies to 'leading' spacing only (timestep spacing is '${spacing ?? 'uniform'}')`);
    }
  }
  if (opts.customTimesteps !== undefined) checkDescending(opts.customTimesteps, T, 'custom timesteps', true);
}

function checkDescending(ts: readonly number[], T: number, what: string, integers: boolean): void {
  if (ts.length === 0) throw new DiffuseError(`${what}: need at least one timestep`);
  ts.forEach((t, i) => {
    if (!(t >= 0 && t <= T - 1) || (integers && !Number.isInteger(t))) {
      throw new DiffuseError(`${what}: timestep ${t} is not ${integers ? 'an integer' : 'a number'} in [0, ${T - 1}]`);
    }
    if (i > 0 && !(t < ts[i - 1]!)) throw new DiffuseError(`${what}: timesteps must be strictly descending, got ${ts[i - 1]} then ${t}`);
  });
}

/** numpy's rounding: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/** Throw unless n is a valid number of sampling steps for T training timesteps. */
export function checkSteps(n: number, T: number): void {
  if (!Number.isInteger(n) || n < 1 || n > T) {
    throw new DiffuseError(`number of sampling steps must be an integer in [1, ${T}], got ${n}`);
  }
}

/**
 * n evenly spaced training indices from T−1 down to 0 (rounded linspace,
 * halves up), strictly descending: the 'uniform' spacing.
 */
export function spacedTimesteps(T: number, n: number): number[] {
  checkSteps(n, T);
  if (n === 1) return [T - 1];
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Math.round(((T - 1) * (n - 1 - i)) / (n - 1)));
  return out;
}

/**
 * The descending timesteps of a spacing for n steps (`fractional`: leave
 * 'linspace' unrounded, as diffusers' Euler and Heun schedulers do). With
 * custom timesteps, n must be their number.
 */
export function timestepGrid(T: number, n: number, opts: SpacingOptions, fractional = false): number[] {
  checkSpacingOptions(opts, T);
  if (opts.customTimesteps !== undefined) {
    if (n !== opts.customTimesteps.length) {
      throw new DiffuseError(`${opts.customTimesteps.length} custom timesteps given but ${n} steps asked for`);
    }
    return [...opts.customTimesteps];
  }
  checkSteps(n, T);
  const spacing = opts.timestepSpacing ?? 'uniform';
  const out: number[] = [];
  switch (spacing) {
    case 'uniform':
      return spacedTimesteps(T, n);
    case 'linspace': {
      // numpy: y_k = k·((T−1)/(n−1)), the last set to T−1 exactly
      const step = n > 1 ? (T - 1) / (n - 1) : 0;
      for (let k = n - 1; k >= 0; k--) {
        const y = k === n - 1 ? T - 1 : k * step;
        out.push(fractional ? y : roundHalfEven(y));
      }
      break;
    }
    case 'leading': {
      const ratio = Math.floor(T / n);
      const offset = opts.stepsOffset ?? 0;
      for (let k = n - 1; k >= 0; k--) out.push(k * ratio + offset);
      break;
    }
    case 'trailing': {
      // numpy: arange(T, 0, −T/n) has ceil(T/(T/n)) entries T + k·(−T/n)
      const step = -T / n;
      const count = Math.ceil(-T / step);
      for (let k = 0; k < count; k++) out.push(roundHalfEven(T + k * step) - 1);
      break;
    }
    default: {
      const never: never = spacing;
      throw new DiffuseError(`unknown timestep spacing '${String(never)}'`);
    }
  }
  checkDescending(out, T, `'${spacing}' spacing with ${n} steps (T = ${T})`, !fractional);
  return out;
}
