/** `diffuse train-autoencoder`: flags -> AutoencoderRunConfig -> trainAutoencoder(), with Ctrl-C saving a checkpoint. */
import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import type { Values } from './options.js';
import { defaultAutoencoderRunConfig, type AutoencoderRunConfig, type DeepPartial } from '../config.js';
import { DiffuseError } from '../errors.js';
import { DATASET_NAMES } from '../data/index.js';
import { MAX_LATENT_CHANNELS, RECON_LOSSES } from '../model/autoencoder-config.js';
import { describeAutoencoder, trainAutoencoder } from '../latent/autoencoder.js';
import { resumeOverrides, runFlagOptions, runOptions, runSummary, trainFlags, withStopSignals } from './training.js';
import type { ResumableSettings } from '../train/run.js';

const base = defaultAutoencoderRunConfig();
const m = base.model;

/** Image side and channels of a data set when --size / --channels are not given. */
const DATA_SHAPES: Record<string, { size: number; channels: 1 | 3 }> = { emoji: { size: 64, channels: 3 }, mnist: { size: 28, channels: 1 }, 'fashion-mnist': { size: 28, channels: 1 }, folder: { size: 64, channels: 3 } };

export const OPTIONS = {
  dataset: { type: 'choice', choices: DATASET_NAMES, default: 'emoji', arg: 'NAME', help: 'the images to encode: emoji (its held-out 5% measure the PSNR), mnist, fashion-mnist (their test splits), or folder (--data-dir DIR; evenly spaced training images stand in for a held-out set)' },
  out: { type: 'out-dir', arg: 'DIR', help: 'run folder: checkpoint/, log.jsonl, eval.jsonl, samples/ (reconstruction grids)', defaultText: 'runs/vae' },
  ...runOptions(base.train, ''),
  size: { type: 'int', min: 4, max: 1024, arg: 'N', help: 'image side in pixels', defaultText: "the data set's: emoji and folders 64, mnist 28" },
  channels: { type: 'choice', choices: ['1', '3'], arg: 'C', help: 'image channels', defaultText: "the data set's: emoji and folders 3, mnist 1" },
  'latent-channels': { type: 'int', min: 1, max: MAX_LATENT_CHANNELS, arg: 'N', help: 'channels of the latent', defaultText: String(m.latentChannels) },
  'base-channels': { type: 'int', min: 1, max: 1024, arg: 'N', help: 'channels at full resolution', defaultText: String(m.baseChannels) },
  'channel-mults': { type: 'int-list', min: 1, max: 64, maxLength: 6, arg: 'LIST', help: 'channel multiplier per level; the downsampling factor is f = 2^(levels - 1): 1,2,2 gives f = 4 (64x64 -> 16x16), 1,2,2,2 gives f = 8', defaultText: m.channelMults.join(',') },
  'res-blocks': { type: 'int', min: 1, max: 8, arg: 'N', help: 'residual blocks per level in the encoder (the decoder has one more)', defaultText: String(m.numResBlocks) },
  'no-attention': { type: 'flag', help: 'no self-attention block in the middle of the encoder and decoder' },
  groups: { type: 'int', min: 1, max: 1024, arg: 'N', help: 'GroupNorm groups', defaultText: String(m.groups) },
  loss: { type: 'choice', choices: RECON_LOSSES, arg: 'L', help: 'pixel loss: l1 (mean |x - recon|) or mse', defaultText: base.loss.recon },
  'kl-weight': { type: 'number', min: 0, max: 1, arg: 'X', help: 'weight of the KL term (per-image sums, as the latent diffusion paper\'s kl_weight)', defaultText: String(base.loss.klWeight) },
} as const;

type Flags = Values<typeof OPTIONS>;

/** The config of a new run from its flags (only what was given overrides the defaults). */
export function autoencoderConfigFromFlags(o: Flags): AutoencoderRunConfig {
  if (o.dataset === 'folder' && o['data-dir'] === undefined) throw new DiffuseError('--dataset folder needs --data-dir DIR');
  const shape = DATA_SHAPES[o.dataset] ?? { size: 64, channels: 3 };
  const size = o.size ?? shape.size;
  const channels = o.channels !== undefined ? (o.channels === '3' ? 3 : 1) : shape.channels;
  const opt = <K extends string, V>(key: K, v: V | undefined): { [P in K]?: V } => (v !== undefined ? { [key]: v } as { [P in K]: V } : {});
  const overrides: DeepPartial<AutoencoderRunConfig> = {
    data: { dataset: o.dataset === 'folder' ? `folder:${resolve(o['data-dir']!)}` : o.dataset, imageSize: size, channels },
    model: {
      imageSize: size,
      channels,
      ...opt('latentChannels', o['latent-channels']),
      ...opt('baseChannels', o['base-channels']),
      ...opt('channelMults', o['channel-mults']),
      ...opt('numResBlocks', o['res-blocks']),
      ...opt('groups', o.groups),
      ...(o['no-attention'] ? { midAttention: false } : {}),
    },
    loss: { ...opt('recon', o.loss), ...opt('klWeight', o['kl-weight']) },
    train: trainFlags(o),
  };
  return defaultAutoencoderRunConfig(overrides);
}

export const command = defineCommand({
  name: 'train-autoencoder',
  description: `Train the autoencoder of latent diffusion (a small KL-regularised AutoencoderKL:
images -> latents -> images; docs/latent.md), or continue one (--resume). Every
--sample-every steps it writes samples/step-N.png (held-out images, rows of originals
then their reconstructions) and shows the held-out PSNR; every checkpoint stores the
latents' scaling factor. Then: diffuse train --latent DIR. Ctrl-C (or SIGTERM)
finishes the current step, saves a checkpoint and exits (130, or 143).`,
  options: OPTIONS,
  async run({ values: o, given }) {
    const overrides: ResumableSettings = o.resume === undefined ? {} : resumeOverrides(OPTIONS, given, o);
    const config = autoencoderConfigFromFlags(o);
    const outDir = o.resume ?? o.out ?? 'runs/vae';
    const { result, code } = await withStopSignals((signal) => trainAutoencoder({
      config,
      ...runFlagOptions(o, outDir, overrides, signal),
      onStart: (c, resumedAt) => { if (resumedAt === undefined) process.stderr.write(`${describeAutoencoder(c.model)}\n`); },
      onSamples: (file, step) => { process.stderr.write(`\nstep ${step}: reconstructions -> ${file}\n`); },
    }));
    const st = result.config.stats;
    const stats = st !== undefined
      ? `held-out PSNR ${st.heldoutPsnr?.toFixed(2) ?? '-'} dB (${st.heldoutImages ?? 0} images), latents: mean ${st.mean.toFixed(3)}, std ${st.std.toFixed(3)}, scaling factor ${st.scalingFactor.toPrecision(4)}\n`
      : '';
    process.stderr.write(stats + runSummary(result, 'train-autoencoder', outDir, `latent diffusion: diffuse train --latent ${outDir} --dataset ${result.config.data.dataset.startsWith('folder:') ? 'folder' : result.config.data.dataset}`));
    return code;
  },
});
