/**
 * Shared types of the diffusion math. Engine-free: nothing here imports tfjs.
 */

/**
 * What the network predicts. One closed set, handled by exhaustive `switch`es:
 * - `epsilon`: the noise ε that was added (DDPM's choice);
 * - `x0`: the clean image x_0 ("reconstruct the image");
 * - `v`: v = sqrt(ᾱ_t)·ε − sqrt(1−ᾱ_t)·x_0 (Salimans & Ho, progressive distillation);
 * - `mean`: the posterior mean μ̃_t(x_t, x_0) of x_{t−1} ("the previous step's image").
 */
export type PredictionType = 'epsilon' | 'x0' | 'v' | 'mean';
export const PREDICTION_TYPES: readonly PredictionType[] = ['epsilon', 'x0', 'v', 'mean'];

import type { Shape4 } from '../tensor.js';

export type { Shape4 };

/**
 * A denoising network as the samplers see it: a plain function over arrays.
 * `x` holds a batch of images x_t (NHWC, `shape`), all at the same timestep
 * `t` (0 ≤ t ≤ T−1 of the model's schedule; a training index, or fractional
 * between two for σ-space samplers and Karras sigmas: the network's time
 * embedding takes any real t). It returns
 * the network output (in the model's PredictionType), the same size as `x`.
 * A tfjs model, an ONNX Runtime session and the closed-form Gaussian denoiser
 * of the tests all fit this. A conditional network also takes its condition
 * rows (`cond`, row-major [n, L]): one class index per image for class models
 * (L = 1; numClasses = "no class"), or L token ids per image for text models
 * (0 = pad; all pads = no prompt). See guidance/condition.ts.
 */
export type ModelFn = (x: Float32Array, t: number, shape: Shape4, cond?: Int32Array) => Promise<Float32Array> | Float32Array;

export function assertNever(x: never, what: string): never {
  throw new Error(`unhandled ${what}: ${String(x)}`);
}
