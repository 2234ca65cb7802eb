/** Checks and choices shared by the commands that generate (sample, eval). */
import { DiffuseError } from '../errors.js';
import { defaultSteps } from '../pipeline.js';
import type { SamplerName } from '../samplers/factory.js';

/** Images per class when `--class all` is asked without --n. */
export const PER_CLASS_DEFAULT = 6;

/**
 * `--class all`: the same number of images for each of the k classes, in class
 * order. An --n that does not split evenly is rounded to the nearest multiple
 * of k (at least k), and that is said on stderr in one line.
 */
export function allClassLabels(n: number | undefined, k: number): { n: number; per: number; labels: Int32Array } {
  const per = n === undefined ? PER_CLASS_DEFAULT : Math.max(1, Math.round(n / k));
  const total = per * k;
  if (n !== undefined && n !== total) {
    process.stderr.write(`diffuse: --class all: ${k} classes, so --n ${n} becomes ${total} (${per} per class)\n`);
  }
  return { n: total, per, labels: Int32Array.from({ length: total }, (_, i) => Math.floor(i / per)) };
}

/** The sampling steps to use: the flag, else the sampler's default; at most the model's T. */
export function samplingSteps(given: number | undefined, sampler: SamplerName, T: number): number {
  if (given !== undefined && given > T) throw new DiffuseError(`--sampling-steps ${given} is more than the model's T = ${T} diffusion steps: give 1..${T}`);
  return given ?? defaultSteps(sampler, T);
}

/**
 * Refuse to write or score images computed from NaN or infinite values
 * (damaged or diverged weights would otherwise give a black picture and exit 0).
 */
export function requireFinite(images: Float32Array, what: string): void {
  let bad = 0;
  for (let i = 0; i < images.length; i++) if (!Number.isFinite(images[i]!)) bad++;
  if (bad > 0) {
    throw new DiffuseError(`${what} produced NaN or infinite values (${bad} of ${images.length}): the weights are damaged or training diverged; nothing was written`);
  }
}
