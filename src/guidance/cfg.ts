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
  /** Class index per image (0..numClasses−1, or nullClass for "no class"). */
  readonly classes: Int32Array;
  /** The "no class" index the model was trained with (= numClasses). */
  readonly nullClass: number;
  /** Guidance weight w ≥ 0. */
  readonly weight: number;
}

/** Wrap a class-conditional model into a guided `ModelFn` (conditional and unconditional passes in one batch). */
export function classifierFreeGuidance(model: ModelFn, opts: GuidanceOptions): ModelFn {
  const { classes, nullClass, weight: w } = opts;
  if (!(Number.isFinite(w) && w >= 0)) throw new DiffuseError(`guidance weight must be a number ≥ 0, got ${w}`);
  for (const c of classes) {
    if (!Number.isInteger(c) || c < 0 || c > nullClass) throw new DiffuseError(`class index ${c} out of range 0..${nullClass - 1} (${nullClass} = no class)`);
  }
  return async (x: Float32Array, t: number, shape: Shape4): Promise<Float32Array> => {
    const [n] = shape;
    if (classes.length !== n) throw new DiffuseError(`guidance: ${classes.length} class labels for a batch of ${n}`);
    if (w === 0 || classes.every((c) => c === nullClass)) return model(x, t, shape, classes);
    const both = new Float32Array(2 * x.length);
    both.set(x, 0);
    both.set(x, x.length);
    const cls = new Int32Array(2 * n);
    cls.set(classes, 0);
    cls.fill(nullClass, n);
    const out = await model(both, t, [2 * n, shape[1], shape[2], shape[3]], cls);
    if (out.length !== both.length) throw new DiffuseError(`guidance: model returned ${out.length} values, expected ${both.length}`);
    const res = new Float32Array(x.length);
    for (let i = 0; i < res.length; i++) res[i] = (1 + w) * out[i]! - w * out[x.length + i]!;
    return res;
  };
}
