/**
 * Between the sampler's (scaled) latent space and pixels, engine-free: the
 * U-Net sees scalingFactor · z, so its latents are divided by the scaling
 * factor before the autoencoder's decoder (and the encoder's means multiplied
 * by it). The autoencoder comes in as plain-array functions: latent/runner.ts
 * (tfjs or onnxruntime-node) in Node, web/ort-web-decoder.ts (onnxruntime-web)
 * in the browser, so the pipeline and the explorer page build the same stage.
 */
import type { LatentConfig } from '../config.js';
import type { Shape4 } from '../diffusion/types.js';
import type { LatentStage } from '../generate.js';
import { latentShape } from '../model/autoencoder-config.js';

/** What decoding needs of an autoencoder: n (unscaled) latents [n,s,s,L] -> images [n,S,S,C] (not clamped). */
export interface LatentDecoder {
  decode(z: Float32Array, n: number): Promise<Float32Array>;
}

/** What encoding needs of an autoencoder: n images [n,S,S,C] -> the posterior's mean [n,s,s,L] (unscaled). */
export interface LatentEncoder {
  encode(x: Float32Array, n: number): Promise<{ mean: Float32Array }>;
}

/** The sampler's (scaled) latents -> images in [-1, 1]: decode(z / scalingFactor), clamped. */
export function scaledDecoder(decoder: LatentDecoder, latent: Pick<LatentConfig, 'scalingFactor'>): (z: Float32Array, shape: Shape4) => Promise<Float32Array> {
  const inv = 1 / latent.scalingFactor;
  return async (z, shape) => {
    const n = shape[0];
    const u = new Float32Array(z.length);
    for (let i = 0; i < z.length; i++) u[i] = (z[i] as number) * inv;
    const x = await decoder.decode(u, n);
    for (let i = 0; i < x.length; i++) x[i] = Math.max(-1, Math.min(1, x[i] as number));
    return x;
  };
}

/** Images -> the scaled posterior means the sampler's space holds (for img2img-style uses and the explorer). */
export function scaledEncoder(encoder: LatentEncoder, latent: Pick<LatentConfig, 'scalingFactor'>): (x: Float32Array, shape: Shape4) => Promise<Float32Array> {
  return async (x, shape) => {
    const { mean } = await encoder.encode(x, shape[0]);
    for (let i = 0; i < mean.length; i++) mean[i] = (mean[i] as number) * latent.scalingFactor;
    return mean;
  };
}

/**
 * A latent model's stage for generate(): the latents' shape (from its
 * autoencoder's config) and its decoder behind the scaling factor.
 */
export function latentStage(latent: Pick<LatentConfig, 'autoencoder' | 'scalingFactor'>, decoder: LatentDecoder): LatentStage & { readonly scalingFactor: number } {
  return { shape: latentShape(latent.autoencoder), scalingFactor: latent.scalingFactor, decode: scaledDecoder(decoder, latent) };
}
