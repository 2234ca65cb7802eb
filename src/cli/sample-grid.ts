/** The sample grids written during training: a few EMA samples, DDIM 25 steps, fixed seed. */
import type { DiffuseConfig } from '../config.js';
import { requireFinite } from './common.js';
import { imageGrid, writePng } from '../io/image.js';
import { tfjsModelFn, generateWith } from '../pipeline.js';
import { mkdir } from 'node:fs/promises';
import { classCondition, classCount } from '../guidance/condition.js';
import { dirname } from 'node:path';
import type { Weights } from '../tensor.js';

export async function writeSampleGrid(ema: Weights, config: DiffuseConfig, file: string): Promise<void> {
  const m = await tfjsModelFn(config, ema);
  try {
    const n = 16;
    const k = classCount(config);
    const r = await generateWith({ config, model: m.model }, {
      sampler: 'ddim',
      steps: 25,
      n,
      seed: 1234,
      ...(k > 0 ? { condition: classCondition(config, Int32Array.from({ length: n }, (_, i) => i % k), 2) } : {}),
    });
    requireFinite(r.images, `the EMA weights (sample grid ${file})`);
    await mkdir(dirname(file), { recursive: true });
    await writePng(file, imageGrid(r.images, r.shape, { cols: 8 }));
  } finally {
    await m.dispose();
  }
}
