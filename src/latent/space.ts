/**
 * The latent stage around the diffusion loop (docs/latent.md):
 *
 *   training:  images -> encoder -> posterior (mean, log-variance) per image,
 *              once per run, cached in the run folder (latents.safetensors);
 *              each step draws z = mean + exp(logvar / 2) · ε for the batch
 *              (or takes the mean) and scales it: the U-Net sees scalingFactor · z
 *   sampling:  the sampler's latents / scalingFactor -> decoder -> images
 *              (latent/scaled.ts, engine-free: the browser builds it too)
 *
 * Everything random comes from the run's Rng, so the latent path resumes
 * bit-identically like the pixel one.
 */
import { existsSync } from 'node:fs';
import { DiffuseError } from '../errors.js';
import type { LatentPosterior } from '../config.js';
import type { Dataset } from '../data/dataset.js';
import type { Shape4 } from '../diffusion/types.js';
import { hash32, type Rng } from '../rng.js';
import { latentShape } from '../model/autoencoder-config.js';
import { encodeSafetensors, readSafetensors } from '../io/safetensors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { ProgressBar, type ProgressStream } from '../io/progress.js';
import type { Weights } from '../tensor.js';
import type { AutoencoderRunner } from './runner.js';

/** The posterior of every image of a data set, in the data set's order. */
export interface LatentData {
  readonly mean: Float32Array;
  readonly logvar: Float32Array;
  /** [n, s, s, L]. */
  readonly shape: Shape4;
}

/** A short fingerprint of weights (names, shapes and values): a cache made by other weights is not reused. */
export function weightsFingerprint(w: Weights): string {
  let h = 0x811c9dc5;
  const mix = (x: number): void => { h = Math.imul(h ^ x, 0x01000193) >>> 0; };
  for (const name of Object.keys(w).sort()) {
    const t = w[name]!;
    mix(hash32(`${name}:${t.shape.join(',')}`));
    const u = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
    for (let i = 0; i < u.length; i++) mix(u[i] as number);
  }
  return h.toString(16).padStart(8, '0');
}

/** Encode every image of a data set (a progress bar when it takes more than 2 s). */
export async function encodeDataset(runner: AutoencoderRunner, data: Dataset, opts: { batch?: number; progress?: ProgressStream | null } = {}): Promise<LatentData> {
  const n = data.shape[0];
  const [s, , L] = latentShape(runner.config);
  const per = data.shape[1] * data.shape[2] * data.shape[3];
  const lat = s * s * L;
  const mean = new Float32Array(n * lat), logvar = new Float32Array(n * lat);
  const bs = opts.batch ?? 256;
  const bar = opts.progress === null ? null : new ProgressBar({ total: n, label: 'encode', quietForMs: 2000, ...(opts.progress ? { stream: opts.progress } : {}) });
  for (let i = 0; i < n; i += bs) {
    const k = Math.min(bs, n - i);
    const r = await runner.encode(data.images.subarray(i * per, (i + k) * per), k);
    mean.set(r.mean, i * lat);
    logvar.set(r.logvar, i * lat);
    bar?.update(i + k, { items: k });
  }
  bar?.finish();
  return { mean, logvar, shape: [n, s, s, L] };
}

/** Metadata that ties a latent cache to its autoencoder and data. */
function cacheMeta(fingerprint: string, data: Dataset): Record<string, string> {
  return { 'diffuse-ts': '1', kind: 'latents', autoencoder: fingerprint, data: data.name, images: String(data.shape[0]) };
}

/** The cached latents of `file` when they were made by these weights from this data; undefined otherwise. */
export function readLatentCache(file: string, fingerprint: string, data: Dataset, shape: readonly [number, number, number]): LatentData | undefined {
  if (!existsSync(file)) return undefined;
  let f: ReturnType<typeof readSafetensors>;
  try {
    f = readSafetensors(file);
  } catch {
    return undefined; // damaged: encoded again and replaced
  }
  const want = cacheMeta(fingerprint, data);
  if (Object.entries(want).some(([k, v]) => f.metadata[k] !== v)) return undefined;
  const n = data.shape[0];
  const full = [n, ...shape].join(',');
  const mean = f.tensors['mean'], logvar = f.tensors['logvar'];
  if (mean?.shape.join(',') !== full || logvar?.shape.join(',') !== full) return undefined;
  return { mean: mean.data, logvar: logvar.data, shape: [n, shape[0], shape[1], shape[2]] };
}

/** Write the latents of a data set (atomically) for the next start of the run. */
export async function writeLatentCache(file: string, latents: LatentData, fingerprint: string, data: Dataset): Promise<void> {
  const sh = [...latents.shape];
  await writeFileAtomic(file, encodeSafetensors({ mean: { shape: sh, data: latents.mean }, logvar: { shape: sh, data: latents.logvar } }, cacheMeta(fingerprint, data), file));
}

/**
 * The scaled latents of a batch (data indices `idx`): scalingFactor · z with
 * z = mean + exp(logvar / 2) · ε ('sample', ε from `rng`) or z = mean ('mean').
 */
export function latentBatch(latents: LatentData, idx: ArrayLike<number>, posterior: LatentPosterior, scalingFactor: number, rng: Rng): { x: Float32Array; shape: [number, number, number, number] } {
  const [n, s, , L] = latents.shape;
  const per = s * s * L;
  const x = new Float32Array(idx.length * per);
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k] as number;
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new DiffuseError(`latent batch: index ${i} out of range 0..${n - 1}`);
    for (let j = 0; j < per; j++) {
      const m = latents.mean[i * per + j] as number;
      const z = posterior === 'sample' ? m + Math.exp(0.5 * (latents.logvar[i * per + j] as number)) * rng.normal() : m;
      x[k * per + j] = scalingFactor * z;
    }
  }
  return { x, shape: [idx.length, s, s, L] };
}
