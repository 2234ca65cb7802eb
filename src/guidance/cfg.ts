/**
 * Classifier-free guidance (Ho & Salimans 2022), engine-free.
 *
 * One network, trained with its condition dropped to a "no class" token at some
 * rate, predicts both ε(x_t, c) and ε(x_t, ∅). Guidance pushes the prediction
 * away from the unconditional one:
 *
 *     out = (1 + w) · out(x_t, c) − w · out(x_t, ∅)
 *
 * w = 0 is the plain conditional model; larger w trades diversity for fidelity
 * to the condition. The mix is applied to the raw network output whatever the
 * prediction type: every conversion between ε, x_0, v and the posterior mean is
 * affine in the output for a fixed x_t, so mixing outputs equals mixing ε.
 */
import { DiffuseError } from '../errors.js';
import type { ModelFn, Shape4 } from '../diffusion/types.js';

export interface GuidanceOptions {
  /**
   * The condition of each image, row-major [n, L]: a class index (L = 1) or a
   * prompt's token ids (L = maxTokens). Rows equal to `nullCond` are unconditional.
   */
  readonly cond: Int32Array;
  /** The "no condition" row the model was trained with ([numClasses], or L pad tokens). */
  readonly nullCond: Int32Array;
  /** Guidance weight w ≥ 0. */
  readonly weight: number;
}

/** Wrap a conditional model into a guided `ModelFn` (conditional and unconditional passes in one batch). */
export function classifierFreeGuidance(model: ModelFn, opts: GuidanceOptions): ModelFn {
  const { cond, nullCond, weight: w } = opts;
  if (!(Number.isFinite(w) && w >= 0)) throw new DiffuseError(`guidance weight must be a number ≥ 0, got ${w}`);
  const L = nullCond.length;
  if (L < 1) throw new DiffuseError('guidance: the null condition is empty');
  if (cond.length % L !== 0) throw new DiffuseError(`guidance: ${cond.length} condition values do not split into rows of ${L}`);
  const allNull = (): boolean => {
    for (let i = 0; i < cond.length; i++) if (cond[i] !== nullCond[i % L]) return false;
    return true;
  };
  const unconditional = allNull();
  return async (x: Float32Array, t: number, shape: Shape4): Promise<Float32Array> => {
    const [n] = shape;
    if (cond.length !== n * L) throw new DiffuseError(`guidance: ${cond.length / L} conditions for a batch of ${n}`);
    if (w === 0 || unconditional) return model(x, t, shape, cond);
    const both = new Float32Array(2 * x.length);
    both.set(x, 0);
    both.set(x, x.length);
    const c2 = new Int32Array(2 * n * L);
    c2.set(cond, 0);
    for (let i = 0; i < n; i++) c2.set(nullCond, (n + i) * L);
    const out = await model(both, t, [2 * n, shape[1], shape[2], shape[3]], c2);
    if (out.length !== both.length) throw new DiffuseError(`guidance: model returned ${out.length} values, expected ${both.length}`);
    const res = new Float32Array(x.length);
    for (let i = 0; i < res.length; i++) res[i] = (1 + w) * out[i]! - w * out[x.length + i]!;
    return res;
  };
}
