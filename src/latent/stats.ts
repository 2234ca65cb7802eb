/**
 * What is measured about an autoencoder: reconstruction PSNR and the
 * statistics of its latents (the scaling factor latent diffusion multiplies
 * them by). Plain arrays in, numbers out; the network comes in as an
 * AutoencoderRunner (latent/runner.ts).
 */
import { DiffuseError } from '../errors.js';
import { Rng } from '../rng.js';
import type { LatentStats } from '../config.js';
import type { Dataset } from '../data/dataset.js';
import { evenlySpacedIndices, subsetDataset } from '../data/dataset.js';
import type { AutoencoderRunner } from './runner.js';

/**
 * PSNR in dB of each image of `b` against `a` (both NHWC in [-1, 1], n images),
 * as images in [0, 1] (peak 1): 10 log10(1 / MSE). `b` is clamped to [-1, 1]
 * first (what any picture of it shows). Identical images give Infinity.
 */
export function psnrPerImage(a: Float32Array, b: Float32Array, n: number): Float64Array {
  if (a.length !== b.length || n < 1 || a.length % n !== 0) throw new DiffuseError(`psnr: ${a.length} and ${b.length} values do not make ${n} images alike`);
  const per = a.length / n;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let se = 0;
    for (let k = i * per; k < (i + 1) * per; k++) {
      const d = (Math.max(-1, Math.min(1, b[k] as number)) - (a[k] as number)) / 2;
      se += d * d;
    }
    out[i] = 10 * Math.log10(1 / (se / per));
  }
  return out;
}

/** Mean of the per-image PSNRs (dB). */
export function meanPsnr(a: Float32Array, b: Float32Array, n: number): number {
  const p = psnrPerImage(a, b, n);
  return p.reduce((s, x) => s + x, 0) / n;
}

/** Mean and (population) standard deviation of values. */
export function meanStd(x: ArrayLike<number>): { mean: number; std: number } {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] as number;
  const mean = s / x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += ((x[i] as number) - mean) ** 2;
  return { mean, std: Math.sqrt(v / x.length) };
}

/** One posterior sample per element: mean + exp(logvar / 2) · ε, ε from `rng`. */
export function posteriorSample(mean: Float32Array, logvar: Float32Array, rng: Rng): Float32Array {
  const z = new Float32Array(mean.length);
  for (let i = 0; i < z.length; i++) z[i] = (mean[i] as number) + Math.exp(0.5 * (logvar[i] as number)) * rng.normal();
  return z;
}

/** How many training images the scaling factor is measured on, and its seed. */
export const STATS_IMAGES = 1024;
export const STATS_SEED = 2022;

export interface StatsOptions {
  /** Training images to measure the latents on (evenly spaced; default STATS_IMAGES). */
  readonly images?: number;
  /** Held-out images for the reconstruction PSNR. */
  readonly heldout?: Dataset;
}

/**
 * The latent statistics of an autoencoder on a data set: the standard
 * deviation of posterior samples of evenly spaced training images (seeded),
 * the scaling factor 1 / std (as stable diffusion scales its latents), and the
 * held-out reconstruction PSNR (posterior means decoded).
 */
export async function latentStatistics(runner: AutoencoderRunner, train: Dataset, step: number, opts: StatsOptions = {}): Promise<LatentStats> {
  const sub = subsetDataset(train, evenlySpacedIndices(train.shape[0], opts.images ?? STATS_IMAGES));
  const n = sub.shape[0];
  const { mean, logvar } = await runner.encode(sub.images, n);
  const ms = meanStd(posteriorSample(mean, logvar, new Rng(STATS_SEED)));
  if (!(ms.std > 0) || !Number.isFinite(ms.std)) throw new DiffuseError(`the autoencoder's latents have standard deviation ${ms.std}: cannot scale them`);
  const stats: LatentStats = { step, scalingFactor: 1 / ms.std, mean: ms.mean, std: ms.std, images: n };
  if (opts.heldout !== undefined) {
    const r = await reconstruct(runner, opts.heldout.images, opts.heldout.shape[0]);
    stats.heldoutPsnr = meanPsnr(opts.heldout.images, r, opts.heldout.shape[0]);
    stats.heldoutImages = opts.heldout.shape[0];
  }
  return stats;
}

/** decode(encode(x).mean): the autoencoder's reconstruction of n images. */
export async function reconstruct(runner: AutoencoderRunner, x: Float32Array, n: number): Promise<Float32Array> {
  const { mean } = await runner.encode(x, n);
  return runner.decode(mean, n);
}
