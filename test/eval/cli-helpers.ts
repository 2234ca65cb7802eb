/** Helpers of the CLI tests of diffuse eval and train-classifier. */
import type { DiffuseConfig } from '../../src/config.js';
import { createUNet, unetParamSpecs } from '../../src/model/unet.js';
import { Rng } from '../../src/rng.js';
import type { Weights } from '../../src/tensor.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';

/**
 * Run a CLI command in this process, capturing the text it writes to stdout
 * and stderr. Bytes pass through untouched: the test runner's own messages to
 * its parent process (a finished test's report can still be on its way when
 * the next test starts) must not end up in the captured text.
 */
export async function capture(fn: () => Promise<unknown>): Promise<{ out: string; err: string }> {
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  let out = '', err = '';
  process.stdout.write = ((s: string | Uint8Array) => { if (typeof s === 'string') out += s; else ow(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { if (typeof s === 'string') err += s; else ew(s); return true; }) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
  return { out, err };
}

/** Save an untrained U-Net for `config` (weights from `seed`, EMA = weights, zero Adam state) as a checkpoint folder `dir`. */
export async function saveUntrainedCheckpoint(dir: string, config: DiffuseConfig, seed = 1): Promise<void> {
  const unet = createUNet(config.model, seed);
  const params: Weights = {};
  for (const s of unetParamSpecs(config.model)) params[s.name] = { shape: s.shape, data: unet.params.get(s.name)!.dataSync() as Float32Array };
  unet.dispose();
  const zeros = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, { shape: v.shape, data: new Float32Array(v.data.length) }]));
  await saveCheckpoint(dir, {
    config,
    state: { params, ema: params, adam: { step: 0, m: zeros, v: zeros } },
    trainingState: { step: 0, rng: new Rng(0).state(), sampler: { n: 10, batchSize: 2, seed: 0, epoch: 0, cursor: 0 }, lossHistory: [], wallTimeSec: 1 },
  });
}
