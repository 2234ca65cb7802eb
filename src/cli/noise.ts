/** `diffuse noise IMAGE`: the forward process of one image as a strip of frames. */
import { defineCommand } from './command.js';
import { SEED } from './options.js';
import { SCHEDULE_NAMES } from '../schedule.js';
import { forwardStrip } from '../diffusion/strip.js';
import { readImage, writeImage } from '../io/image.js';

export const OPTIONS = {
  timesteps: { type: 'int', min: 10, max: 4000, default: 1000, arg: 'T', aliases: ['steps'], help: 'diffusion length T: the last frame is x_T' },
  schedule: { type: 'choice', choices: SCHEDULE_NAMES, default: 'linear', arg: 'S', help: 'beta schedule' },
  frames: { type: 'int', min: 2, max: 64, default: 8, arg: 'N', help: 'number of frames' },
  size: { type: 'int', min: 4, max: 1024, default: 64, arg: 'N', help: 'frame side in pixels after centre crop + resize' },
  seed: { ...SEED, help: 'noise seed' },
  out: { type: 'out-file', formats: ['png', 'jpeg'], default: 'strip.png', arg: 'FILE', help: 'output image' },
} as const;

export const command = defineCommand({
  name: 'noise',
  usage: 'IMAGE [options]',
  description: `Noise IMAGE (PNG or JPEG) step by step, x_t = sqrt(1-beta_t) x_{t-1} + sqrt(beta_t) eps,
and write frames x_0 ... x_T at evenly spaced steps as one horizontal strip.`,
  options: OPTIONS,
  positionals: { names: ['IMAGE'] },
  async run({ values: o, positionals }) {
    const image = await readImage(positionals[0]!);
    const strip = forwardStrip(image, { steps: o.timesteps, schedule: o.schedule, frames: o.frames, size: o.size, seed: o.seed });
    await writeImage(o.out, strip.image);
    process.stdout.write(`wrote ${o.out}: ${strip.steps.length} frames at steps ${strip.steps.join(', ')} (${strip.image.width}×${strip.image.height})\n`);
  },
});
