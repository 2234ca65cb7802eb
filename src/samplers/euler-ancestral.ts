/**
 * Euler ancestral (k-diffusion's sample_euler_ancestral; diffusers'
 * EulerAncestralDiscreteScheduler): an Euler step down to σ_down, then fresh
 * noise of σ_up, so that σ_down² + σ_up² = σ_{i+1}² and the marginal noise
 * level is right. Stochastic like DDPM; does not converge to one image per
 * starting noise as the step count grows.
 */
import type { Rng } from '../rng.js';
import type { Shape4 } from '../diffusion/types.js';
import type { StepResult } from './types.js';
import { SigmaSpaceSampler, toVarianceExploding, toVariancePreserving, type SigmaSpaceOptions } from './sigma-space.js';

export type EulerAncestralOptions = SigmaSpaceOptions;

export class EulerAncestralSampler extends SigmaSpaceSampler {
  readonly name = 'euler-ancestral';

  step(modelOutput: Float32Array, t: number, x: Float32Array, rng: Rng, shape?: Shape4): StepResult {
    // Symbols:
    //   sigma, sigmaNext = σ_i, σ_{i+1} (0 after the last level)
    //   sigmaUp          = σ_up = sqrt(σ_{i+1}² (σ_i² − σ_{i+1}²) / σ_i²);  sigmaDown = sqrt(σ_{i+1}² − σ_up²)
    //   xve, eps         = x̃_i = x·sqrt(1+σ_i²) and d_i = (x̃_i − x̂_0)/σ_i = ε̂
    //   prev             = x̃_i + (σ_down − σ_i) d_i + σ_up z, returned as ·/sqrt(1+σ_{i+1}²)
    const i = this.position(t);
    const sigma = this.sigmas[i]!;
    const sigmaNext = this.sigmas[i + 1]!;
    const sigmaUp = Math.sqrt((sigmaNext ** 2 * (sigma ** 2 - sigmaNext ** 2)) / sigma ** 2);
    const sigmaDown = Math.sqrt(Math.max(0, sigmaNext ** 2 - sigmaUp ** 2));
    const { x0, eps } = this.predict(modelOutput, t, x, shape, this.level(i));
    const xve = toVarianceExploding(x, sigma);
    const dt = sigmaDown - sigma;
    for (let k = 0; k < xve.length; k++) xve[k] = xve[k]! + dt * eps[k]! + (sigmaUp > 0 ? sigmaUp * rng.normal() : 0);
    return { prev: toVariancePreserving(xve, sigmaNext), predX0: x0 };
  }
}
