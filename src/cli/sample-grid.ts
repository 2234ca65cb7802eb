/** The sample grids written during training: a few EMA samples, DDIM 25 steps, fixed seed. */
import type { DiffuseConfig } from '../config.js';
import { requireFinite } from './common.js';
import { imageGrid, writePng } from '../io/image.js';
import { createPipeline, generateWith } from '../pipeline.js';
import { mkdir } from 'node:fs/promises';
import { classCondition, classCount, promptCondition } from '../guidance/condition.js';
import { dirname } from 'node:path';
import type { Weights } from '../tensor.js';

/** What a run adds to its sample grids: a latent model's autoencoder, a captioned data set's prompts. */
export interface SampleGridExtras {
  readonly autoencoder?: Weights;
  /** Prompts of a text model trained on captions (one per grid cell, in turn). */
  readonly prompts?: readonly string[];
}

/**
 * A grid of 16 samples of the EMA weights on tfjs: class models one per class
 * in turn, text models on captioned data the run's `prompts` (guidance 2);
 * a latent model's decoded by its autoencoder.
 */
export async function writeSampleGrid(ema: Weights, config: DiffuseConfig, file: string, extras: SampleGridExtras = {}): Promise<void> {
  const m = await createPipeline(config, ema, extras.autoencoder, { engine: 'tfjs' });
  try {
    const n = 16;
    const k = classCount(config);
    const prompts = extras.prompts !== undefined && extras.prompts.length > 0 && config.model.text !== undefined ? extras.prompts : undefined;
    const condition = prompts !== undefined ? promptCondition(config, Array.from({ length: n }, (_, i) => prompts[i % prompts.length]!), 2)
      : k > 0 ? classCondition(config, Int32Array.from({ length: n }, (_, i) => i % k), 2) : undefined;
    const r = await generateWith(m, {
      sampler: 'ddim',
      steps: 25,
      n,
      seed: 1234,
      ...(condition !== undefined ? { condition } : {}),
    });
    requireFinite(r.images, `the EMA weights (sample grid ${file})`);
    await mkdir(dirname(file), { recursive: true });
    await writePng(file, imageGrid(r.images, r.shape, { cols: 8 }));
  } finally {
    await m.dispose();
  }
}
