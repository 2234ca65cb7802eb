/**
 * A diffusion checkpoint's networks as ONNX files, each with the metadata
 * that says how to use it: the U-Net (schedule, T, prediction, label names,
 * a latent model's scaling factor) and a latent model's decoder or encoder
 * (the scaling factor its latents are divided by). What `diffuse export`
 * writes and the explorer's server sends.
 */
import { DiffuseError } from '../errors.js';
import type { DiffuseConfig } from '../config.js';
import type { Weights } from '../tensor.js';
import { exportUNetToOnnx } from './export-unet.js';
import { exportAutoencoderToOnnx, type AutoencoderPart } from './export-autoencoder.js';

/** Which network of a diffusion checkpoint. */
export type CheckpointNetwork = 'unet' | AutoencoderPart;

export interface CheckpointExportOptions {
  /** The checkpoint's training step and which of its weights ('ema' or 'model') these are. */
  readonly step: number;
  readonly weights: 'ema' | 'model';
  readonly opset?: number;
}

/**
 * One network of a diffusion checkpoint as ONNX bytes: `params` are the
 * U-Net's weights, `autoencoder` a latent model's (its decoder and encoder).
 */
export function exportCheckpointNetwork(config: DiffuseConfig, weights: { readonly params: Weights; readonly autoencoder?: Weights | undefined }, network: CheckpointNetwork, opts: CheckpointExportOptions): Uint8Array {
  const step = String(opts.step);
  const opset = opts.opset !== undefined ? { opset: opts.opset } : {};
  switch (network) {
    case 'unet':
      return exportUNetToOnnx(config.model, weights.params, {
        ...opset,
        metadata: {
          'diffuse.schedule': config.diffusion.schedule,
          'diffuse.timesteps': String(config.diffusion.timesteps),
          'diffuse.prediction': config.diffusion.prediction,
          'diffuse.weights': opts.weights,
          'diffuse.step': step,
          ...(config.data.labelNames !== undefined ? { 'diffuse.label_names': JSON.stringify(config.data.labelNames) } : {}),
          ...(config.latent !== undefined ? { 'diffuse.latent_scaling_factor': String(config.latent.scalingFactor) } : {}),
        },
      });
    case 'decoder':
    case 'encoder':
      if (config.latent === undefined || weights.autoencoder === undefined) throw new DiffuseError(`not a latent model: it has no autoencoder, so no ${network}`);
      return exportAutoencoderToOnnx(config.latent.autoencoder, weights.autoencoder, network, {
        ...opset,
        metadata: { 'diffuse.scaling_factor': String(config.latent.scalingFactor), 'diffuse.diffusion_weights': opts.weights, 'diffuse.step': step },
      });
    default: {
      const never: never = network;
      throw new DiffuseError(`unknown network '${String(never)}'`);
    }
  }
}
