/** Shared by the latent tests: tiny autoencoders, flat-colour data (8x8 RGB "emoji") and latent checkpoints of random weights. */
import { join } from 'node:path';
import { defaultAutoencoderConfig, type AutoencoderConfig } from '../../src/model/autoencoder-config.js';
import type { Dataset } from '../../src/data/dataset.js';
import { mulberry32, Rng } from '../../src/rng.js';
import { defaultConfig, type DiffuseConfig } from '../../src/config.js';
import { BatchSampler } from '../../src/data/batches.js';
import { modelParamShapes, saveCheckpoint } from '../../src/train/checkpoint.js';
import { autoencoderParamSpecs } from '../../src/model/autoencoder-description.js';
import { initParam } from '../../src/net/params.js';
import { withCaptionConditioning } from '../../src/text/captions.js';
import type { Weights } from '../../src/tensor.js';

/** 8x8x3 -> 4x4x2 (f = 2), channels 8 and 16, attention in the middle: ~30k parameters. */
export function tinyAutoencoder(overrides: Partial<AutoencoderConfig> = {}): AutoencoderConfig {
  return defaultAutoencoderConfig({ imageSize: 8, channels: 3, latentChannels: 2, baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, groups: 4, ...overrides });
}

/**
 * n flat-colour 8x8 RGB images, values in [-1, 1]: a background colour and a
 * 4x4 square of another colour in one of the four quadrants (what emoji are, in miniature),
 * with captions "<colour> square" and labels = the square's colour.
 */
export function squares(n: number, seed: number, name = 'squares'): Dataset {
  const colours: [string, [number, number, number]][] = [['red', [1, -1, -1]], ['green', [-1, 1, -1]], ['blue', [-1, -1, 1]], ['yellow', [1, 1, -1]]];
  const rnd = mulberry32(seed);
  const images = new Float32Array(n * 8 * 8 * 3);
  const labels = new Int32Array(n);
  const captions: string[][] = [];
  for (let i = 0; i < n; i++) {
    const k = Math.floor(rnd() * colours.length);
    const [word, fg] = colours[k]!;
    const bg: [number, number, number] = rnd() < 0.5 ? [1, 1, 1] : [0.2, 0.2, 0.2];
    const x0 = 4 * Math.floor(rnd() * 2), y0 = 4 * Math.floor(rnd() * 2);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) {
      const inside = x >= x0 && x < x0 + 4 && y >= y0 && y < y0 + 4;
      for (let c = 0; c < 3; c++) images[((i * 8 + y) * 8 + x) * 3 + c] = (inside ? fg : bg)[c]!;
    }
    labels[i] = k;
    captions.push([`${word} square`, `a ${word} square`]);
  }
  return { name, images, shape: [n, 8, 8, 3], labels, labelNames: colours.map(([w]) => w), captions };
}

export interface RandomLatentModel {
  readonly config: DiffuseConfig;
  /** The U-Net's weights (also its EMA weights) and the autoencoder's. */
  readonly params: Weights;
  readonly autoencoder: Weights;
}

/**
 * A latent diffusion checkpoint in `dir` with random weights, no training: a
 * tiny U-Net (step 3) on the latents of `autoencoder` (default: 8x8x3 -> 4x4x4),
 * its config naming `dataset` and an autoencoder checkpoint `source` (a path);
 * prompt-conditioned on the squares' captions when `text`.
 */
export async function randomLatentCheckpoint(dir: string, opts: { autoencoder?: AutoencoderConfig; dataset?: string; source?: string; text?: boolean; seed?: number } = {}): Promise<RandomLatentModel> {
  const ae = opts.autoencoder ?? tinyAutoencoder({ latentChannels: 4 });
  const base = defaultConfig({
    data: { dataset: opts.dataset ?? 'squares', imageSize: ae.imageSize, channels: ae.channels },
    latent: { autoencoder: ae, scalingFactor: 0.5, posterior: 'sample', source: { checkpoint: opts.source ?? join(dir, '..', 'vae'), step: 3 } },
    model: { baseChannels: 8, channelMults: [1, 2], attentionResolutions: [], groups: 4, numResBlocks: 1 },
  });
  const config = opts.text === true ? withCaptionConditioning(base, squares(10, 7).captions!, { dim: 16 }) : base;
  const rng = new Rng(opts.seed ?? 6);
  const shapes = (await modelParamShapes())(config);
  const random = (scale: number): Weights => Object.fromEntries(Object.entries(shapes).map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return [name, { shape: [...shape], data: Float32Array.from({ length: n }, () => rng.normal() * scale) }];
  }));
  const params = random(0.1);
  const autoencoder: Weights = Object.fromEntries(autoencoderParamSpecs(ae).map((sp, i) => [sp.name, { shape: [...sp.shape], data: initParam(sp, i) }]));
  await saveCheckpoint(dir, {
    config,
    state: { params, ema: params, adam: { step: 3, m: random(0), v: random(0) } },
    trainingState: { step: 3, rng: rng.state(), sampler: new BatchSampler(10, 2, 1).state(), lossHistory: [], wallTimeSec: 1 },
    parts: { autoencoder },
  });
  return { config, params, autoencoder };
}
