/**
 * DDIM (Song, Meng & Ermon 2021), any number of steps, eta ∈ [0, 1]
 * (eta = 0: deterministic; eta = 1: DDPM-like ancestral noise), with
 * diffusers' DDIMScheduler choices: where the final step lands
 * (`setAlphaToOne`), which ε̂ moves the sample when x̂_0 is clipped
 * (`useClippedModelOutput`), and which level a step lands on (`prevTimestep`).
 */
import { DiffuseError } from '../errors.js';
import type { Rng } from '../rng.js';
import type { Shape4 } from '../diffusion/types.js';
import { SamplerBase, type SamplerOptions, type StepResult } from './types.js';

export type DdimPrevTimestep = 'next' | 'stride';
export const DDIM_PREV_TIMESTEPS: readonly DdimPrevTimestep[] = ['next', 'stride'];

export interface DdimOptions extends SamplerOptions {
  readonly eta?: number;
  /**
   * After the last timestep the sample lands on ᾱ = 1, the clean image
   * (true, default), or on ᾱ_0, the first training step (false; diffusers'
   * set_alpha_to_one = false, used by Stable Diffusion's configs).
   */
  readonly setAlphaToOne?: boolean;
  /**
   * With clipping: move the sample along the ε̂ consistent with the clipped
   * x̂_0 (true, default) or along the model's own ε̂ (false, diffusers' default).
   */
  readonly useClippedModelOutput?: boolean;
  /**
   * The level a step from t lands on: the next timestep of the list ('next',
   * default), or t − ⌊T/n⌋ ('stride', diffusers' DDIMScheduler). They differ
   * where the list is not evenly spaced by ⌊T/n⌋ ('uniform'/'linspace'
   * spacing, 'trailing' when n does not divide T): with 'stride' the sample
   * then sits at a slightly different level than the next model call assumes.
   */
  readonly prevTimestep?: DdimPrevTimestep;
}

/**
 * The deterministic part of a DDIM move between noise levels:
 * x' = sqrt(ᾱ') x̂_0 + sqrt(1 − ᾱ' − σ²) ε̂ (+ σ z, added by the caller).
 */
export function ddimMove(x0: Float32Array, eps: Float32Array, abNext: number, sigma: number): Float32Array {
  const a = Math.sqrt(abNext);
  const d = Math.sqrt(Math.max(0, 1 - abNext - sigma * sigma));
  const out = new Float32Array(x0.length);
  for (let i = 0; i < x0.length; i++) out[i] = a * x0[i]! + d * eps[i]!;
  return out;
}

export class DdimSampler extends SamplerBase {
  readonly name = 'ddim';
  readonly eta: number;
  private readonly finalAlphaBar: number;
  private readonly useClipped: boolean;
  private readonly prevRule: DdimPrevTimestep;

  constructor(opts: DdimOptions) {
    super(opts);
    const eta = opts.eta ?? 0;
    if (!(eta >= 0 && eta <= 1)) throw new DiffuseError(`ddim eta must be in [0, 1], got ${eta}`);
    const rule = opts.prevTimestep ?? 'next';
    if (!DDIM_PREV_TIMESTEPS.includes(rule)) throw new DiffuseError(`ddim prevTimestep must be one of ${DDIM_PREV_TIMESTEPS.join(', ')}, got '${String(rule)}'`);
    this.eta = eta;
    this.finalAlphaBar = opts.setAlphaToOne === false ? this.schedule.alphaBar[0]! : 1;
    this.useClipped = opts.useClippedModelOutput ?? true;
    this.prevRule = rule;
  }

  /** ᾱ of the level a step from position i (timestep t) lands on. */
  private alphaBarPrev(i: number, t: number): number {
    const prev = this.prevRule === 'next' ? this.timesteps[i + 1] : t - Math.floor(this.schedule.T / this.timesteps.length);
    return prev === undefined || prev < 0 ? this.finalAlphaBar : this.schedule.alphaBar[prev]!;
  }

  step(modelOutput: Float32Array, t: number, x: Float32Array, rng: Rng, shape?: Shape4): StepResult {
    // Paper symbols (Song et al. eq. 12):
    //   x        = x_t;  ab = α_t (DDIM's α is DDPM's ᾱ) at index t
    //   abPrev   = α_{t−1} at the level the step lands on (the next timestep;
    //              after the last one 1, or ᾱ_0 without setAlphaToOne)
    //   x0, eps  = f_θ(x_t) = x̂_0 ("predicted x_0", clipped) and ε_θ(x_t)
    //              (consistent with the clipped x̂_0, or the raw one)
    //   sigma    = σ_t(η) = η sqrt((1−α_{t−1})/(1−α_t)) sqrt(1 − α_t/α_{t−1})
    //   prev     = sqrt(α_{t−1}) x̂_0 + sqrt(1−α_{t−1}−σ²) ε̂ + σ z
    const i = this.position(t);
    const ab = this.schedule.alphaBar[t]!;
    const abPrev = this.alphaBarPrev(i, t);
    const p = this.predict(modelOutput, t, x, shape);
    const sigma = this.eta * Math.sqrt(((1 - abPrev) / (1 - ab)) * (1 - ab / abPrev));
    const prev = ddimMove(p.x0, this.useClipped ? p.eps : p.rawEps, abPrev, sigma);
    if (sigma > 0) for (let k = 0; k < prev.length; k++) prev[k] = prev[k]! + sigma * rng.normal();
    return { prev, predX0: p.x0 };
  }
}
