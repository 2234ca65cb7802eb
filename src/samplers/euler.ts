/**
 * Euler (Karras et al. 2022, Algorithm 1 without churn; diffusers'
 * EulerDiscreteScheduler): one Euler step of the probability-flow ODE
 * dx̃/dσ = (x̃ − x̂_0)/σ per level, in the variance-exploding space. Without
 * clipping, on the same levels it moves exactly as deterministic DDIM.
 */
import type { Rng } from '../rng.js';
import type { Shape4 } from '../diffusion/types.js';
import type { StepResult } from './types.js';
import { SigmaSpaceSampler, toVarianceExploding, toVariancePreserving, type SigmaSpaceOptions } from './sigma-space.js';

export type EulerOptions = SigmaSpaceOptions;

export class EulerSampler extends SigmaSpaceSampler {
  readonly name = 'euler';

  step(modelOutput: Float32Array, t: number, x: Float32Array, _rng: Rng, shape?: Shape4): StepResult {
    // Symbols (Karras et al. 2022, Alg. 1 with γ = 0):
    //   sigma, sigmaNext = σ_i, σ_{i+1} (0 after the last level)
    //   xve              = x̃_i = x·sqrt(1+σ_i²)   (the model saw x)
    //   x0, d            = x̂_0 (clipped) and d_i = (x̃_i − x̂_0)/σ_i = ε̂
    //   prev             = x̃_{i+1} = x̃_i + (σ_{i+1} − σ_i) d_i, returned as x̃_{i+1}/sqrt(1+σ_{i+1}²)
    const i = this.position(t);
    const sigma = this.sigmas[i]!;
    const sigmaNext = this.sigmas[i + 1]!;
    const { x0, eps } = this.predict(modelOutput, t, x, shape, this.level(i));
    const xve = toVarianceExploding(x, sigma);
    const dt = sigmaNext - sigma;
    for (let k = 0; k < xve.length; k++) xve[k] = xve[k]! + dt * eps[k]!;
    return { prev: toVariancePreserving(xve, sigmaNext), predX0: x0 };
  }
}
