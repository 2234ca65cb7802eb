/** `diffuse noise IMAGE`: the forward process of one image as a strip of frames. */
import { Flags, type ParsedArgs } from './args.js';
import { DiffuseError } from '../errors.js';
import { SCHEDULE_NAMES } from '../schedule.js';
import { forwardStrip } from '../diffusion/strip.js';
import { readImage, writePng } from '../io/image.js';

export const HELP = `usage: diffuse noise IMAGE [options]

Noise IMAGE (PNG or JPEG) step by step, x_t = sqrt(1-beta_t) x_{t-1} + sqrt(beta_t) eps,
and write frames x_0 ... x_T at evenly spaced steps as one horizontal PNG strip.

options:
  --steps N        diffusion steps T, 10..4000 (default 1000)
  --schedule S     beta schedule: ${SCHEDULE_NAMES.join(', ')} (default linear)
  --frames N       number of frames, 2..64 (default 8)
  --size N         frame side in pixels after centre crop + resize (default 64)
  --seed N         noise seed (default 0)
  --out FILE       output PNG (default strip.png)
  --help           show this help`;

export async function run(args: ParsedArgs): Promise<void> {
  const f = new Flags(args);
  const steps = f.int('steps', 1000);
  const schedule = f.choice('schedule', SCHEDULE_NAMES, 'linear');
  const frames = f.int('frames', 8);
  const size = f.int('size', 64);
  const seed = f.int('seed', 0);
  const out = f.string('out', 'strip.png');
  f.rejectUnknown();
  if (args.positional.length !== 1) {
    throw new DiffuseError(`noise needs exactly one IMAGE argument, got ${args.positional.length} (see diffuse noise --help)`);
  }
  const image = await readImage(args.positional[0]!);
  const strip = forwardStrip(image, { steps, schedule, frames, size, seed });
  await writePng(out, strip.image);
  process.stdout.write(`wrote ${out}: ${strip.steps.length} frames at steps ${strip.steps.join(', ')} (${strip.image.width}×${strip.image.height})\n`);
}
