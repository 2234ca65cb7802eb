/**
 * Heun's second-order method (Karras et al. 2022, Algorithm 1 without churn;
 * diffusers' HeunDiscreteScheduler): an Euler predictor from σ_i to σ_{i+1},
 * a second model call there, and the step redone with the average slope. The
 * last step (to σ = 0) is Euler alone, so n steps take 2n − 1 model calls:
 * `timesteps` is [t_0, t_1, t_1, t_2, t_2, …, t_{n−1}, t_{n−1}]. Each call's
 * `prev` is the sample at σ_{i+1} (the predictor's, then the corrected one).
 */
import type { Rng } from '../rng.js';
import type { Shape4 } from '../diffusion/types.js';
import type { StepResult } from './types.js';
import { SigmaSpaceSampler, toVarianceExploding, toVariancePreserving, type SigmaSpaceOptions } from './sigma-space.js';

export type HeunOptions = SigmaSpaceOptions;

export class HeunSampler extends SigmaSpaceSampler {
  readonly name = 'heun';
  /** The predictor's x̃_i and slope d_i, kept for the corrector. */
  private saved: { xve: Float64Array; d: Float32Array } | null = null;

  protected override calls(levelTimesteps: readonly number[]): number[] {
    return levelTimesteps.flatMap((t, i) => (i === 0 ? [t] : [t, t]));
  }

  protected override onSetTimesteps(): void {
    this.saved = null;
  }

  step(modelOutput: Float32Array, t: number, x: Float32Array, _rng: Rng, shape?: Shape4): StepResult {
    // Symbols (Karras et al. 2022, Alg. 1 with γ = 0), call c of the list:
    //   c even: predictor at level i = c/2:  d_i = (x̃_i − x̂_0(x_i, σ_i))/σ_i = ε̂,
    //           x̃' = x̃_i + (σ_{i+1} − σ_i) d_i   (the final result when σ_{i+1} = 0)
    //   c odd:  corrector at σ_{i+1}, i = (c−1)/2:  d' = (x̃' − x̂_0(x', σ_{i+1}))/σ_{i+1},
    //           x̃_{i+1} = x̃_i + (σ_{i+1} − σ_i)(d_i + d')/2
    //   prev    = x̃'/sqrt(1+σ_{i+1}²) or x̃_{i+1}/sqrt(1+σ_{i+1}²)
    const c = this.advance(t);
    if (c === 0) this.saved = null;
    const corrector = c % 2 === 1;
    const i = corrector ? (c - 1) / 2 : c / 2;
    const sigma = this.sigmas[i]!;
    const sigmaNext = this.sigmas[i + 1]!;
    const dt = sigmaNext - sigma;
    const { x0, eps } = this.predict(modelOutput, t, x, shape, this.level(corrector ? i + 1 : i));
    if (!corrector) {
      const xve = toVarianceExploding(x, sigma);
      this.saved = { xve: xve.slice(), d: eps };
      for (let k = 0; k < xve.length; k++) xve[k] = xve[k]! + dt * eps[k]!;
      return { prev: toVariancePreserving(xve, sigmaNext), predX0: x0 };
    }
    const { xve, d } = this.saved!;
    this.saved = null;
    const out = new Float64Array(xve.length);
    for (let k = 0; k < xve.length; k++) out[k] = xve[k]! + dt * 0.5 * (d[k]! + eps[k]!);
    return { prev: toVariancePreserving(out, sigmaNext), predX0: x0 };
  }
}
