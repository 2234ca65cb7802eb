/**
 * The sampling loop, written once for every sampler, and DDIM inversion.
 */
import { DiffuseError } from '../errors.js';
import type { Rng } from '../rng.js';
import type { Schedule } from '../schedule.js';
import { checkShape } from '../diffusion/forward.js';
import { toX0AndEps } from '../diffusion/prediction.js';
import type { ModelFn, PredictionType, Shape4 } from '../diffusion/types.js';
import { ddimMove } from './ddim.js';
import type { Sampler } from './types.js';
import { spacedTimesteps } from './spacing.js';

export interface StepInfo {
  /** 0-based index of the sampling step. */
  readonly i: number;
  /** Training index the model was evaluated at. */
  readonly t: number;
  /** The sample after this step. */
  readonly x: Float32Array;
  readonly predX0: Float32Array;
}

export interface SampleOptions {
  readonly rng: Rng;
  readonly steps: number;
  readonly onStep?: (info: StepInfo) => void;
  /** Starting noise x_T (default: N(0, I) from rng). Not mutated. */
  readonly xT?: Float32Array;
}

/** Run `sampler` for `opts.steps` steps from x_T to a sample x_0 of `shape`. */
export async function sample(model: ModelFn, sampler: Sampler, shape: Shape4, opts: SampleOptions): Promise<Float32Array> {
  const size = checkShape(shape, shape.reduce((p, d) => p * d, 1), 'sample');
  if (opts.xT !== undefined && opts.xT.length !== size) {
    throw new DiffuseError(`sample: xT has ${opts.xT.length} elements but shape [${shape.join(', ')}] needs ${size}`);
  }
  sampler.setTimesteps(opts.steps);
  let x = opts.xT !== undefined ? opts.xT.slice() : opts.rng.normalArray(size);
  const ts = sampler.timesteps;
  for (let i = 0; i < ts.length; i++) {
    const t = ts[i]!;
    const out = await model(x, t, shape);
    if (out.length !== size) throw new DiffuseError(`sample: model returned ${out.length} elements at t=${t}, expected ${size}`);
    const { prev, predX0 } = sampler.step(out, t, x, opts.rng, shape);
    x = prev;
    opts.onStep?.({ i, t, x, predX0 });
  }
  return x;
}

/**
 * DDIM inversion (eta = 0 run backwards): encode x_0 into x_T deterministically
 * along the same `steps` timesteps DDIM sampling uses, so that DDIM-sampling
 * the result with the same steps gives back ≈ x_0. Each move from level s to
 * the next higher level t' uses the model at s (the usual approximation):
 * x_t' = sqrt(ᾱ_t') x̂_0(x_s) + sqrt(1−ᾱ_t') ε̂(x_s). The first move starts from
 * the clean x_0, evaluated as if at index 0.
 */
export async function ddimInvert(
  model: ModelFn,
  schedule: Schedule,
  prediction: PredictionType,
  x0: Float32Array,
  shape: Shape4,
  steps: number,
): Promise<Float32Array> {
  checkShape(shape, x0.length, 'ddimInvert');
  const asc = spacedTimesteps(schedule.T, steps).reverse();
  let x: Float32Array = x0.slice();
  for (let i = 0; i < asc.length; i++) {
    const tEval = asc[Math.max(0, i - 1)]!;
    const out = await model(x, tEval, shape);
    if (out.length !== x.length) throw new DiffuseError(`ddimInvert: model returned ${out.length} elements at t=${tEval}, expected ${x.length}`);
    const { x0: px0, eps } = toX0AndEps(prediction, out, x, tEval, schedule);
    x = ddimMove(px0, eps, schedule.alphaBar[asc[i]!]!, 0);
  }
  return x;
}
