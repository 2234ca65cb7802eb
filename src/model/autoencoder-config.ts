/**
 * The autoencoder's hyper-parameters (the "latent space" of latent diffusion):
 * a KL-regularised convolutional autoencoder in the style of Rombach et al.
 * 2022 (diffusers' AutoencoderKL), small enough for a 2-core CPU. Engine-free.
 *
 * The image (imageSize² × channels) is encoded to a latent of side
 * imageSize / f and latentChannels channels, f = 2^(channelMults.length - 1)
 * (the encoder halves the image between levels).
 */
import { DiffuseError } from '../errors.js';

export interface AutoencoderConfig {
  /** Side of the (square) images in pixels; divisible by the downsampling factor. */
  imageSize: number;
  /** Image channels: 1 (grayscale) or 3 (RGB). */
  channels: 1 | 3;
  /** Channels of the latent (AutoencoderKL: 4). */
  latentChannels: number;
  /** Channels at full resolution. */
  baseChannels: number;
  /** Channel multiplier per level; f = 2^(levels - 1). */
  channelMults: number[];
  /** Residual blocks per level in the encoder; the decoder has one more per level (as AutoencoderKL). */
  numResBlocks: number;
  /** A self-attention block between the two residual blocks of the middle (encoder and decoder). */
  midAttention: boolean;
  /** GroupNorm groups (eps 1e-6, as AutoencoderKL); must divide every channel count. */
  groups: number;
}

/** The autoencoder's pixel loss (train/objective.ts adds the KL term): L1 or MSE. */
export type ReconLoss = 'l1' | 'mse';
export const RECON_LOSSES: readonly ReconLoss[] = ['l1', 'mse'];

/** The most latent channels a config may ask for. */
export const MAX_LATENT_CHANNELS = 64;

/**
 * Defaults for 64×64 RGB emoji, the f = 4 shape chosen by the pilots of
 * docs/latent.md: 64×64×3 -> 16×16×4, channels 16, 32, 64 (0.68M parameters),
 * one residual block per level (two in the decoder), attention in the middle.
 */
export function defaultAutoencoderConfig(overrides: Partial<AutoencoderConfig> = {}): AutoencoderConfig {
  const c: AutoencoderConfig = {
    imageSize: 64,
    channels: 3,
    latentChannels: 4,
    baseChannels: 16,
    channelMults: [1, 2, 4],
    numResBlocks: 1,
    midAttention: true,
    groups: 8,
    ...overrides,
  };
  c.channelMults = [...c.channelMults];
  return c;
}

/** The downsampling factor f: image side / latent side. */
export function downsamplingFactor(c: Pick<AutoencoderConfig, 'channelMults'>): number {
  return 2 ** (c.channelMults.length - 1);
}

/** [side, side, channels] of the latent. */
export function latentShape(c: AutoencoderConfig): [number, number, number] {
  const s = c.imageSize / downsamplingFactor(c);
  return [s, s, c.latentChannels];
}

function positiveInt(v: unknown, field: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw new DiffuseError(`AutoencoderConfig.${field} must be an integer in 1..${max}, got ${String(v)}`);
  }
  return v;
}

/** Throws a DiffuseError naming the first bad field; returns the config. */
export function validateAutoencoderConfig(c: AutoencoderConfig): AutoencoderConfig {
  if (typeof c !== 'object' || c === null) throw new DiffuseError('AutoencoderConfig must be an object');
  positiveInt(c.imageSize, 'imageSize', 4096);
  if (c.channels !== 1 && c.channels !== 3) throw new DiffuseError(`AutoencoderConfig.channels must be 1 or 3, got ${String(c.channels)}`);
  positiveInt(c.latentChannels, 'latentChannels', MAX_LATENT_CHANNELS);
  positiveInt(c.baseChannels, 'baseChannels', 4096);
  if (!Array.isArray(c.channelMults) || c.channelMults.length === 0 || c.channelMults.length > 6) {
    throw new DiffuseError('AutoencoderConfig.channelMults must be 1 to 6 positive integers');
  }
  c.channelMults.forEach((m, i) => positiveInt(m, `channelMults[${i}]`, 64));
  positiveInt(c.numResBlocks, 'numResBlocks', 8);
  if (typeof c.midAttention !== 'boolean') throw new DiffuseError(`AutoencoderConfig.midAttention must be true or false, got ${String(c.midAttention)}`);
  positiveInt(c.groups, 'groups');
  const f = downsamplingFactor(c);
  if (c.imageSize % f !== 0) {
    throw new DiffuseError(`AutoencoderConfig.imageSize ${c.imageSize} must be divisible by the downsampling factor ${f} (channelMults has ${c.channelMults.length} levels)`);
  }
  for (const ch of new Set(c.channelMults.map((m) => m * c.baseChannels))) {
    if (ch % c.groups !== 0) throw new DiffuseError(`AutoencoderConfig.groups ${c.groups} must divide every channel count; ${ch} is not divisible`);
  }
  return c;
}
