/**
 * DDPM ancestral sampling (Ho et al. 2020), over all T steps or a respaced
 * subset (Nichol & Dhariwal 2021, improved-diffusion's respace.py): for kept
 * indices τ_1 < … < τ_n the new betas are β'_i = 1 − ᾱ_{τ_i}/ᾱ_{τ_{i−1}}
 * (ᾱ_{τ_0} := 1), so ᾱ' on the subset equals the original ᾱ there.
 */
import type { Rng } from '../rng.js';
import { scheduleFromBetas, type Schedule } from '../schedule.js';
import type { Shape4 } from '../diffusion/types.js';
import { SamplerBase, type SamplerOptions, type StepResult } from './types.js';

export interface DdpmOptions extends SamplerOptions {
  /** Reverse variance: 'small' = β̃_t (posterior, default), 'large' = β_t. */
  readonly variance?: 'small' | 'large';
}

export class DdpmSampler extends SamplerBase {
  readonly name = 'ddpm';
  private readonly variance: 'small' | 'large';
  /** Respaced tables, indexed by ascending position in the subset. */
  private respaced: Schedule | null = null;

  constructor(opts: DdpmOptions) {
    super(opts);
    this.variance = opts.variance ?? 'small';
  }

  protected override onSetTimesteps(): void {
    const asc = [...this.timesteps].reverse();
    const ab = this.schedule.alphaBar;
    const betas = asc.map((t, i) => 1 - ab[t]! / (i === 0 ? 1 : ab[asc[i - 1]!]!));
    this.respaced = scheduleFromBetas(betas, `${this.schedule.name}-respaced-${asc.length}`);
  }

  step(modelOutput: Float32Array, t: number, x: Float32Array, rng: Rng, shape?: Shape4): StepResult {
    // Paper symbols (Ho et al. eq. 6–7, respaced):
    //   x        = x_t            (at training index t = τ_j)
    //   x0, eps  = x̂_0, ε̂         (from the model output, x̂_0 optionally clipped)
    //   c1, c2   = coefficients of μ̃(x_t, x̂_0) = c1 x̂_0 + c2 x_t on the respaced chain
    //   varT     = β̃'_j (or β'_j for 'large'); z ~ N(0, I); no noise on the last step
    //   prev     = x_{τ_{j−1}} = μ̃ + sqrt(varT) z
    const j = this.timesteps.length - 1 - this.position(t);
    const rs = this.respaced!;
    const { x0 } = this.predict(modelOutput, t, x, shape);
    const c1 = rs.posteriorMeanCoef1[j]!;
    const c2 = rs.posteriorMeanCoef2[j]!;
    const varT = this.variance === 'small' ? rs.posteriorVariance[j]! : rs.betas[j]!;
    const sd = j > 0 ? Math.sqrt(varT) : 0;
    const prev = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const mean = c1 * x0[i]! + c2 * x[i]!;
      prev[i] = sd > 0 ? mean + sd * rng.normal() : mean;
    }
    return { prev, predX0: x0 };
  }
}
