/**
 * DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2): multistep
 * second-order solver of the diffusion ODE in data (x_0) prediction, for
 * ~10–25 steps. The first step is first order (no history yet); the step into
 * the last timestep is first order too (`lowerOrderFinal`, default true).
 * With 'uniform' spacing that last step spans a large jump in λ after a
 * small one (r = h_prev/h ≈ 0.25), where the second-order extrapolation
 * overshoots: on Gaussian data it inflated the variance by +0.18 at 20 steps
 * versus −0.01 with the first-order final step (docs/samplers.md).
 * After the last timestep the sample is x̂_0 (σ → 0 limit).
 *
 * Timesteps follow diffusers' DPMSolverMultistepScheduler: its 'linspace' and
 * 'leading' lay out n + 1 points and drop the last (the final jump to σ = 0
 * stands for it); `karrasSigmas` replaces the spacing with Karras et al.'s
 * levels between σ(0) and σ(T−1), each at the timestep of its σ: fractional
 * ('exact', default), or made an integer as diffusers does ('round'; 'floor'
 * for the cosine schedule, where it skips the rounding and its int64 cast
 * truncates; neighbouring levels may then share a timestep). Multistep history lives in the instance and is reset by
 * setTimesteps and whenever the first timestep is stepped again.
 */
import { DiffuseError } from '../errors.js';
import type { Rng } from '../rng.js';
import type { Shape4 } from '../diffusion/types.js';
import { levelAt, levelOfSigma, type NoiseLevel } from '../diffusion/prediction.js';
import { karrasSigmas, sigmaToTimestep } from './sigmas.js';
import { roundHalfEven } from './spacing.js';
import { SamplerBase, type SamplerOptions, type StepResult } from './types.js';

export interface DpmSolverOptions extends SamplerOptions {
  /** Use a first-order step into the last timestep (default true). */
  readonly lowerOrderFinal?: boolean;
  /** Karras et al. 2022 noise levels (ρ = 7) instead of the spacing's timesteps (default false). */
  readonly karrasSigmas?: boolean;
  /** With karrasSigmas: the model's timestep for each level (default 'exact', fractional). */
  readonly karrasTimesteps?: KarrasTimesteps;
}

export type KarrasTimesteps = 'exact' | 'round' | 'floor';
export const KARRAS_TIMESTEPS: readonly KarrasTimesteps[] = ['exact', 'round', 'floor'];

export class DpmSolverSampler extends SamplerBase {
  readonly name = 'dpm-solver';
  private readonly lowerOrderFinal: boolean;
  private readonly karras: boolean;
  private readonly karrasTimesteps: KarrasTimesteps;
  /** Noise level of each step (σ form), and λ = log(α/σ) = −log σ. */
  private sigmas: number[] = [];
  private prevX0: Float32Array | null = null;
  private prevLambda = 0;

  constructor(opts: DpmSolverOptions) {
    super(opts);
    this.lowerOrderFinal = opts.lowerOrderFinal ?? true;
    this.karras = opts.karrasSigmas ?? false;
    this.karrasTimesteps = opts.karrasTimesteps ?? 'exact';
    if (!KARRAS_TIMESTEPS.includes(this.karrasTimesteps)) {
      throw new DiffuseError(`dpm-solver: karrasTimesteps must be one of ${KARRAS_TIMESTEPS.join(', ')}, got '${String(this.karrasTimesteps)}'`);
    }
    if (this.karras && ((opts.timestepSpacing ?? 'uniform') !== 'uniform' || opts.customTimesteps !== undefined)) {
      throw new DiffuseError(`dpm-solver: karrasSigmas chooses the timesteps itself (between σ(0) and σ(T−1)); give no timestep spacing ('${opts.timestepSpacing ?? 'custom'}') with it`);
    }
    if (opts.karrasTimesteps !== undefined && !this.karras) throw new DiffuseError('dpm-solver: karrasTimesteps applies with karrasSigmas only');
    if (this.karras && opts.prediction === 'mean') {
      throw new DiffuseError("dpm-solver: karrasSigmas places steps between training timesteps, where prediction 'mean' is undefined");
    }
  }

  protected override plan(n: number): number[] {
    const sch = this.schedule;
    if (this.karras) {
      this.sigmas = karrasSigmas(sch.sigmas[0]!, sch.sigmas[sch.T - 1]!, n);
      const round = { exact: (t: number) => t, round: roundHalfEven, floor: Math.floor }[this.karrasTimesteps];
      return this.sigmas.map((s) => round(sigmaToTimestep(sch, s)));
    }
    const spacing = this.spacing.timestepSpacing;
    const plusOne = this.spacing.customTimesteps === undefined && (spacing === 'linspace' || spacing === 'leading');
    const ts = plusOne ? this.grid(n + 1).slice(0, n) : this.grid(n);
    this.sigmas = ts.map((t) => sch.sigmas[t]!);
    return ts;
  }

  protected override onSetTimesteps(): void {
    this.prevX0 = null;
  }

  /** Level of step i: the σ table's, with `mean` coefficients when the step sits on a training index. */
  private level(i: number, t: number): NoiseLevel {
    return this.karras ? levelOfSigma(this.sigmas[i]!) : { ...levelAt(this.schedule, t), ...levelOfSigma(this.sigmas[i]!) };
  }

  step(modelOutput: Float32Array, t: number, x: Float32Array, _rng: Rng, shape?: Shape4): StepResult {
    // Paper symbols (Lu et al. 2022, DPM-Solver++ Alg. 2), s = current step, t' = next:
    //   alphaS, sigmaS   = α_s = 1/sqrt(1+σ_s²), σ_s α_s (VP form of the level σ_s);  lamS = λ_s = −log σ_s
    //   alphaT, sigmaT   = the same at t';  h = λ_t' − λ_s
    //   x0               = x_θ(x_s, s) (data prediction), prevX0 = x_θ at the previous step
    //   r                = h_{prev}/h;  D = (1 + 1/(2r)) x_θ(s) − 1/(2r) x_θ(prev)
    //   prev             = (σ_t'/σ_s) x_s − α_t' (e^{−h} − 1) D   (D = x0 for first order)
    const i = this.advance(t);
    if (i === 0) this.prevX0 = null;
    const { x0 } = this.predict(modelOutput, t, x, shape, this.level(i, t));
    const n = this.timesteps.length;
    if (i === n - 1) {
      this.prevX0 = null;
      return { prev: x0.slice(), predX0: x0 };
    }
    const s = levelOfSigma(this.sigmas[i]!);
    const e = levelOfSigma(this.sigmas[i + 1]!);
    const lamS = -Math.log(this.sigmas[i]!);
    const h = -Math.log(this.sigmas[i + 1]!) - lamS;
    const firstOrder = this.prevX0 === null || (this.lowerOrderFinal && i === n - 2);
    const cx = e.b / s.b;
    const cd = -e.a * Math.expm1(-h);
    const prev = new Float32Array(x.length);
    if (firstOrder) {
      for (let k = 0; k < x.length; k++) prev[k] = cx * x[k]! + cd * x0[k]!;
    } else {
      const r = (lamS - this.prevLambda) / h;
      const w0 = 1 + 1 / (2 * r);
      const w1 = -1 / (2 * r);
      const p = this.prevX0!;
      for (let k = 0; k < x.length; k++) prev[k] = cx * x[k]! + cd * (w0 * x0[k]! + w1 * p[k]!);
    }
    this.prevX0 = x0;
    this.prevLambda = lamS;
    return { prev, predX0: x0 };
  }
}
