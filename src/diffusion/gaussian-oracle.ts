/**
 * The ideal denoiser for data drawn from a known Gaussian (mixture), in closed
 * form: a `ModelFn` that needs no training. With it the samplers can be checked
 * against exact statistics.
 *
 * For one component x_0 ~ N(μ, σ² I) (per dimension) and
 * x_t = sqrt(ᾱ) x_0 + sqrt(1−ᾱ) ε:
 *   x_t ~ N(sqrt(ᾱ) μ, ᾱσ² + 1 − ᾱ),
 *   E[x_0 | x_t] = μ + sqrt(ᾱ) σ² / (ᾱσ² + 1 − ᾱ) · (x_t − sqrt(ᾱ) μ).
 * For a mixture ∑ w_k N(μ_k, σ_k² I), E[x_0 | x_t] = ∑ r_k E_k[x_0 | x_t] with
 * posterior responsibilities r_k ∝ w_k N(x_t; sqrt(ᾱ) μ_k, (ᾱσ_k² + 1 − ᾱ) I),
 * computed per sample over all its dimensions.
 * The oracle outputs x̂_0 converted to any PredictionType. t may lie between
 * training indices (σ-space samplers): ᾱ is then schedule.ts' `alphaBarAt`.
 */
import { DiffuseError } from '../errors.js';
import type { Rng } from '../rng.js';
import { alphaBarAt, type Schedule } from '../schedule.js';
import { checkShape } from './forward.js';
import { fromX0AndEps, levelAt } from './prediction.js';
import type { ModelFn, PredictionType, Shape4 } from './types.js';

export interface GaussianComponent {
  /** Mixture weight (> 0; weights are normalised). */
  readonly weight: number;
  /** Mean per dimension (length = h·w·c), or one number for all dimensions. */
  readonly mean: number | readonly number[];
  /** Standard deviation per dimension, or one number (> 0). */
  readonly std: number | readonly number[];
}

export interface OracleOptions {
  readonly schedule: Schedule;
  readonly prediction: PredictionType;
  readonly components: readonly GaussianComponent[];
}

function at(v: number | readonly number[], d: number): number {
  return typeof v === 'number' ? v : v[d]!;
}

function checkComponents(components: readonly GaussianComponent[], dims?: number): void {
  if (components.length === 0) throw new DiffuseError('gaussian oracle needs at least one component');
  components.forEach((c, k) => {
    if (!(c.weight > 0) || !Number.isFinite(c.weight)) throw new DiffuseError(`component ${k}: weight must be > 0, got ${c.weight}`);
    for (const [name, v] of [['mean', c.mean], ['std', c.std]] as const) {
      const arr = typeof v === 'number' ? [v] : v;
      if (dims !== undefined && typeof v !== 'number' && v.length !== dims) {
        throw new DiffuseError(`component ${k}: ${name} has ${v.length} values but a sample has ${dims} dimensions`);
      }
      if (!arr.every(Number.isFinite)) throw new DiffuseError(`component ${k}: ${name} must be finite`);
      if (name === 'std' && !arr.every((s) => s > 0)) throw new DiffuseError(`component ${k}: std must be > 0`);
    }
  });
}

/** E[x_0 | x_t] for a batch (float64 math), as a Float32Array. */
export function gaussianPosteriorMeanX0(
  components: readonly GaussianComponent[],
  schedule: Schedule,
  x: Float32Array,
  t: number,
  shape: Shape4,
): Float32Array {
  checkShape(shape, x.length, 'gaussian oracle');
  const dims = shape[1] * shape[2] * shape[3];
  checkComponents(components, dims);
  const ab = alphaBarAt(schedule, t);
  const a = Math.sqrt(ab);
  const wsum = components.reduce((s, c) => s + c.weight, 0);
  const K = components.length;
  const out = new Float32Array(x.length);
  const logr = new Float64Array(K);
  const means = new Float64Array(K * dims);
  for (let b = 0; b < shape[0]; b++) {
    const off = b * dims;
    for (let k = 0; k < K; k++) {
      const c = components[k]!;
      let ll = Math.log(c.weight / wsum);
      for (let d = 0; d < dims; d++) {
        const m = at(c.mean, d);
        const s2 = at(c.std, d) ** 2;
        const vt = ab * s2 + (1 - ab);
        const r = x[off + d]! - a * m;
        ll += -0.5 * (r * r) / vt - 0.5 * Math.log(vt);
        means[k * dims + d] = m + ((a * s2) / vt) * r;
      }
      logr[k] = ll;
    }
    let mx = -Infinity;
    for (let k = 0; k < K; k++) mx = Math.max(mx, logr[k]!);
    let z = 0;
    for (let k = 0; k < K; k++) { logr[k] = Math.exp(logr[k]! - mx); z += logr[k]!; }
    for (let d = 0; d < dims; d++) {
      let v = 0;
      for (let k = 0; k < K; k++) v += (logr[k]! / z) * means[k * dims + d]!;
      out[off + d] = v;
    }
  }
  return out;
}

/** A ModelFn: the exact denoiser for the given mixture, in `prediction` form. */
export function gaussianMixtureOracle(opts: OracleOptions): ModelFn {
  checkComponents(opts.components);
  const components = opts.components.map((c) => ({
    weight: c.weight,
    mean: typeof c.mean === 'number' ? c.mean : [...c.mean],
    std: typeof c.std === 'number' ? c.std : [...c.std],
  }));
  const { schedule, prediction } = opts;
  return (x, t, shape) => {
    const x0 = gaussianPosteriorMeanX0(components, schedule, x, t, shape);
    const { a, b } = levelAt(schedule, t);
    const eps = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) eps[i] = (x[i]! - a * x0[i]!) / b;
    return fromX0AndEps(prediction, x0, eps, x, t, schedule);
  };
}

/** Oracle for a single Gaussian N(mean, std²) per dimension. */
export function gaussianOracle(opts: {
  schedule: Schedule;
  prediction: PredictionType;
  mean: number | readonly number[];
  std: number | readonly number[];
}): ModelFn {
  return gaussianMixtureOracle({
    schedule: opts.schedule,
    prediction: opts.prediction,
    components: [{ weight: 1, mean: opts.mean, std: opts.std }],
  });
}

/**
 * Draw `n` samples of `dims` dimensions from the mixture. Also returns which
 * component each sample came from.
 */
export function sampleGaussianMixture(
  components: readonly GaussianComponent[],
  n: number,
  dims: number,
  rng: Rng,
): { x: Float32Array; component: Int32Array } {
  checkComponents(components, dims);
  const wsum = components.reduce((s, c) => s + c.weight, 0);
  const x = new Float32Array(n * dims);
  const component = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let u = rng.uniform() * wsum;
    let k = 0;
    while (k < components.length - 1 && u >= components[k]!.weight) { u -= components[k]!.weight; k++; }
    component[i] = k;
    const c = components[k]!;
    for (let d = 0; d < dims; d++) x[i * dims + d] = at(c.mean, d) + at(c.std, d) * rng.normal();
  }
  return { x, component };
}
