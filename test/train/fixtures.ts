/** Shared by the training tests: a tiny U-Net config on 8×8 images and a small synthetic labelled data set. */
import { defaultConfig, type DiffuseConfig } from '../../src/config.js';
import type { Dataset } from '../../src/data/dataset.js';
import { Rng } from '../../src/rng.js';

/** A 2-level U-Net on 8×8 gray images, T = 100, batch 4, 6 steps, one worker, no grids or intermediate checkpoints. */
export function tinyConfig(overrides: { numClasses?: number } = {}): DiffuseConfig {
  return defaultConfig({
    data: { dataset: 'synthetic', imageSize: 8, channels: 1 },
    diffusion: { schedule: 'linear', timesteps: 100, prediction: 'epsilon' },
    model: { baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [4], groups: 4, numClasses: overrides.numClasses ?? 0 },
    train: { batchSize: 4, steps: 6, lr: 1e-3, warmupSteps: 2, workers: 1, seed: 3, sampleEvery: 0, checkpointEvery: 0 },
  });
}

/** n random 8×8 images in (−1, 1), labelled 0, 1, 2, 0, … (classes a, b, c). */
export function syntheticData(n: number): Dataset {
  const rng = new Rng(42);
  const images = new Float32Array(n * 8 * 8);
  for (let i = 0; i < images.length; i++) images[i] = Math.tanh(rng.normal());
  return { name: 'synthetic', images, shape: [n, 8, 8, 1], labels: Int32Array.from({ length: n }, (_, i) => i % 3), labelNames: ['a', 'b', 'c'] };
}
