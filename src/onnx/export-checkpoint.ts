/**
 * A diffusion checkpoint's networks as ONNX files, each with the metadata
 * that says how to use it: the U-Net (export-unet.ts exportCheckpointToOnnx:
 * one file, or one per expert) and a latent model's decoder or encoder (the
 * scaling factor its latents are divided by). What `diffuse export` writes
 * and the explorer's server sends.
 */
import { DiffuseError } from '../errors.js';
import type { DiffuseConfig } from '../config.js';
import type { Weights } from '../tensor.js';
import { exportCheckpointToOnnx, type CheckpointExportInfo } from './export-unet.js';
import { exportAutoencoderToOnnx, type AutoencoderPart } from './export-autoencoder.js';

/** Which network of a diffusion checkpoint. */
export type CheckpointNetwork = 'unet' | AutoencoderPart;

/**
 * One network of a diffusion checkpoint as ONNX bytes: `params` are the
 * U-Net's weights, `autoencoder` a latent model's (its decoder and encoder).
 * A U-Net of K experts (config.experts) gives K files, in expert order; every
 * other network one.
 */
export function exportCheckpointNetwork(config: DiffuseConfig, weights: { readonly params: Weights; readonly autoencoder?: Weights | undefined }, network: CheckpointNetwork, info: CheckpointExportInfo): Uint8Array[] {
  switch (network) {
    case 'unet':
      return exportCheckpointToOnnx(config, weights.params, info);
    case 'decoder':
    case 'encoder':
      if (config.latent === undefined || weights.autoencoder === undefined) throw new DiffuseError(`not a latent model: it has no autoencoder, so no ${network}`);
      return [exportAutoencoderToOnnx(config.latent.autoencoder, weights.autoencoder, network, {
        ...(info.opset !== undefined ? { opset: info.opset } : {}),
        metadata: { 'diffuse.scaling_factor': String(config.latent.scalingFactor), 'diffuse.diffusion_weights': info.weights, 'diffuse.step': String(info.step) },
      })];
    default: {
      const never: never = network;
      throw new DiffuseError(`unknown network '${String(never)}'`);
    }
  }
}
