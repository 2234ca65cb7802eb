/**
 * DDIM (Song, Meng & Ermon 2021), any number of steps, eta ∈ [0, 1]
 * (eta = 0: deterministic; eta = 1: DDPM-like ancestral noise).
 */
import { DiffuseError } from '../errors.js';
import type { Rng } from '../rng.js';
import type { Shape4 } from '../diffusion/types.js';
import { SamplerBase, type SamplerOptions, type StepResult } from './types.js';

export interface DdimOptions extends SamplerOptions {
  readonly eta?: number;
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

  constructor(opts: DdimOptions) {
    super(opts);
    const eta = opts.eta ?? 0;
    if (!(eta >= 0 && eta <= 1)) throw new DiffuseError(`ddim eta must be in [0, 1], got ${eta}`);
    this.eta = eta;
  }

  step(modelOutput: Float32Array, t: number, x: Float32Array, rng: Rng, shape?: Shape4): StepResult {
    // Paper symbols (Song et al. eq. 12):
    //   x        = x_t;  ab = α_t (DDIM's α is DDPM's ᾱ) at index t
    //   abPrev   = α_{t−1} at the next (lower) sampling index; 1 after the last (clean)
    //   x0, eps  = f_θ(x_t) = x̂_0 ("predicted x_0") and ε_θ(x_t)
    //   sigma    = σ_t(η) = η sqrt((1−α_{t−1})/(1−α_t)) sqrt(1 − α_t/α_{t−1})
    //   prev     = sqrt(α_{t−1}) x̂_0 + sqrt(1−α_{t−1}−σ²) ε̂ + σ z
    const i = this.position(t);
    const ab = this.schedule.alphaBar[t]!;
    const next = this.timesteps[i + 1];
    const abPrev = next === undefined ? 1 : this.schedule.alphaBar[next]!;
    const { x0, eps } = this.predict(modelOutput, t, x, shape);
    const sigma = this.eta * Math.sqrt(((1 - abPrev) / (1 - ab)) * (1 - ab / abPrev));
    const prev = ddimMove(x0, eps, abPrev, sigma);
    if (sigma > 0) for (let k = 0; k < prev.length; k++) prev[k] = prev[k]! + sigma * rng.normal();
    return { prev, predX0: x0 };
  }
}
