/**
 * Euler and Euler ancestral, in σ space (Karras et al. 2022, "Elucidating the
 * design space of diffusion-based generative models"; diffusers'
 * EulerDiscreteScheduler and EulerAncestralDiscreteScheduler).
 *
 * Euler: one Euler step of the probability-flow ODE dx̃/dσ = (x̃ − x̂_0)/σ per
 * level (Algorithm 1 without churn). Without clipping, on the same levels it
 * moves exactly as deterministic DDIM.
 *
 * Euler ancestral (k-diffusion's sample_euler_ancestral): the Euler step goes
 * down to σ_down only, then fresh noise of σ_up is added, with
 * σ_down² + σ_up² = σ_{i+1}² so that the marginal noise level is right.
 * Stochastic like DDPM; it does not converge to one image per starting noise
 * as the step count grows.
 */
import type { Rng } from '../rng.js';
import type { Shape4 } from '../diffusion/types.js';
import type { StepResult } from './types.js';
import { SigmaSpaceSampler, toVarianceExploding, toVariancePreserving, type SigmaSpaceOptions } from './sigma-space.js';

export interface EulerOptions extends SigmaSpaceOptions {
  /** Euler ancestral: step to σ_down and add noise of σ_up (default false). */
  readonly ancestral?: boolean;
}

export class EulerSampler extends SigmaSpaceSampler {
  readonly name: 'euler' | 'euler-ancestral';
  private readonly ancestral: boolean;

  constructor(opts: EulerOptions) {
    super(opts);
    this.ancestral = opts.ancestral ?? false;
    this.name = this.ancestral ? 'euler-ancestral' : 'euler';
  }

  step(modelOutput: Float32Array, t: number, x: Float32Array, rng: Rng, shape?: Shape4): StepResult {
    // Symbols (Karras et al. 2022, Alg. 1 with γ = 0; k-diffusion's ancestral step):
    //   sigma, sigmaNext = σ_i, σ_{i+1} (0 after the last level)
    //   sigmaUp          = σ_up = sqrt(σ_{i+1}² (σ_i² − σ_{i+1}²) / σ_i²) (ancestral; else 0)
    //   sigmaDown        = sqrt(σ_{i+1}² − σ_up²)                          (= σ_{i+1} for Euler)
    //   xve, eps         = x̃_i = x·sqrt(1+σ_i²) (the model saw x) and d_i = (x̃_i − x̂_0)/σ_i = ε̂
    //   prev             = x̃_i + (σ_down − σ_i) d_i + σ_up z, returned as ·/sqrt(1+σ_{i+1}²)
    const i = this.position(t);
    const sigma = this.sigmas[i]!;
    const sigmaNext = this.sigmas[i + 1]!;
    const sigmaUp = this.ancestral ? Math.sqrt((sigmaNext ** 2 * (sigma ** 2 - sigmaNext ** 2)) / sigma ** 2) : 0;
    const sigmaDown = this.ancestral ? Math.sqrt(Math.max(0, sigmaNext ** 2 - sigmaUp ** 2)) : sigmaNext;
    const { x0, eps } = this.predict(modelOutput, t, x, shape, this.level(i));
    const xve = toVarianceExploding(x, sigma);
    const dt = sigmaDown - sigma;
    for (let k = 0; k < xve.length; k++) xve[k] = xve[k]! + dt * eps[k]! + (sigmaUp > 0 ? sigmaUp * rng.normal() : 0);
    return { prev: toVariancePreserving(xve, sigmaNext), predX0: x0 };
  }
}
