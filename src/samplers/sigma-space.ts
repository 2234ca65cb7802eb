/**
 * What the σ-space samplers (Euler, Euler ancestral, Heun; Karras et al. 2022)
 * share: their noise levels σ_0 > … > σ_{n−1} > σ_n = 0 and the change of
 * variables between the project's variance-preserving samples x (what the
 * model sees; diffusers' `scale_model_input` output) and the
 * variance-exploding x̃ = x·sqrt(1 + σ²) = x_0 + σ ε they step in.
 *
 * Levels follow diffusers' Euler/Heun schedulers: σ at each timestep of the
 * spacing by linear interpolation of the σ table ('linspace' is left
 * fractional), or with `karrasSigmas` Karras et al.'s ρ = 7 levels between
 * the spacing's first and last σ, each at the (fractional) timestep of its σ.
 */
import { DiffuseError } from '../errors.js';
import { levelAt, levelOfSigma, type NoiseLevel } from '../diffusion/prediction.js';
import { interpSigma, karrasSigmas, sigmaToTimestep } from './sigmas.js';
import { SamplerBase, type SamplerOptions } from './types.js';

export interface SigmaSpaceOptions extends SamplerOptions {
  /** Karras et al. 2022 noise levels (ρ = 7) between the spacing's end levels (default false). */
  readonly karrasSigmas?: boolean;
}

/** x̃ = x·sqrt(1 + σ²) (variance-preserving -> variance-exploding) into a new float64 array. */
export function toVarianceExploding(x: Float32Array, sigma: number): Float64Array {
  const s = Math.sqrt(1 + sigma * sigma);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * s;
  return out;
}

/** x = x̃ / sqrt(1 + σ²) (variance-exploding -> variance-preserving). */
export function toVariancePreserving(xve: Float64Array, sigma: number): Float32Array {
  const s = 1 / Math.sqrt(1 + sigma * sigma);
  const out = new Float32Array(xve.length);
  for (let i = 0; i < xve.length; i++) out[i] = xve[i]! * s;
  return out;
}

export abstract class SigmaSpaceSampler extends SamplerBase {
  private readonly karras: boolean;
  /** σ_0 … σ_{n−1}, then 0 (the clean end). */
  protected sigmas: number[] = [];
  /** The (possibly fractional) timestep of each level. */
  protected levelTimesteps: number[] = [];

  constructor(opts: SigmaSpaceOptions) {
    super(opts);
    this.karras = opts.karrasSigmas ?? false;
  }

  /** The model-call timesteps for the levels (default: one call per level). */
  protected calls(levelTimesteps: readonly number[]): number[] {
    return [...levelTimesteps];
  }

  protected override plan(n: number): number[] {
    if (this.karras && this.spacing.customTimesteps !== undefined) {
      throw new DiffuseError(`${this.name}: karrasSigmas chooses the levels itself; give no customTimesteps with it`);
    }
    let ts = this.grid(n, true);
    let sig = ts.map((t) => interpSigma(this.schedule, t));
    if (this.karras) {
      sig = karrasSigmas(sig[sig.length - 1]!, sig[0]!, n);
      ts = sig.map((s) => sigmaToTimestep(this.schedule, s));
    }
    if (this.prediction === 'mean' && (this.karras || !ts.every(Number.isInteger))) {
      throw new DiffuseError(`${this.name}: prediction 'mean' needs integer timesteps; use 'uniform', 'leading' or 'trailing' spacing without Karras sigmas`);
    }
    this.sigmas = [...sig, 0];
    this.levelTimesteps = ts;
    return this.calls(ts);
  }

  /** Noise level k for the conversion of a model output (with `mean` coefficients on training indices). */
  protected level(k: number): NoiseLevel {
    const sigma = levelOfSigma(this.sigmas[k]!);
    const t = this.levelTimesteps[k]!;
    return this.prediction === 'mean' ? { ...levelAt(this.schedule, t), ...sigma } : sigma;
  }
}
