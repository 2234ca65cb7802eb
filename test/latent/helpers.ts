/** Shared by the latent tests: tiny autoencoders and flat-colour data (8x8 RGB "emoji"). */
import { defaultAutoencoderConfig, type AutoencoderConfig } from '../../src/model/autoencoder-config.js';
import type { Dataset } from '../../src/data/dataset.js';
import { mulberry32 } from '../../src/rng.js';

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
