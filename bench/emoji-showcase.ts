/**
 * The README's pictures of a text-to-image emoji model (issue #15): a grid of
 * prompts (one row each, `--per-prompt` samples at guidance W) and a GIF of
 * the reverse process for the first `--gif-prompts` prompts (decoded x_t above,
 * decoded predicted x_0 below: for a latent model, the latent being denoised
 * and decoded at every recorded step). The same generation as
 * `diffuse sample` (generateWith on the model's pipeline).
 *
 *   node dist/bench/emoji-showcase.js                        # models/emoji -> docs/emoji-showcase.png, .gif
 *   options (--help): --checkpoint DIR --prompts "red heart,dog face" --per-prompt 6 --guidance 4
 *            --sampling-steps 50 --seed 0 --gif-prompts 4 --out docs/emoji-showcase
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SAMPLING_STEPS, SEED } from '../src/cli/options.js';
import { gifFrames } from '../src/cli/sample.js';
import { DiffuseError } from '../src/errors.js';
import { generateWith } from '../src/generate.js';
import { promptCondition } from '../src/guidance/condition.js';
import { writeGif } from '../src/io/gif.js';
import { writePng } from '../src/io/image.js';
import { ProgressBar } from '../src/io/progress.js';
import { loadPipeline } from '../src/pipeline.js';
import { captionGrid } from './caption-grid.js';
import { benchOptions } from './options.js';
import { reportError } from './study-common.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Emoji with many relatives in the training set (faces, hearts, animals, food, objects). */
export const SHOWCASE_PROMPTS: readonly string[] = [
  'grinning face', 'smiling face with heart-eyes', 'red heart', 'dog face', 'red apple', 'pizza', 'fire', 'thumbs up',
];

async function main(): Promise<void> {
  const { values: o } = benchOptions('emoji-showcase', {
    checkpoint: { type: 'string', arg: 'DIR', help: 'a text-to-image emoji checkpoint', defaultText: 'models/emoji' },
    prompts: { type: 'string', arg: 'LIST', help: 'comma-separated prompts, one row each', defaultText: SHOWCASE_PROMPTS.join(',') },
    'per-prompt': { type: 'int', min: 1, max: 64, default: 6, arg: 'N', help: 'samples per prompt' },
    guidance: { type: 'number', min: 0, max: 100, default: 4, arg: 'W', help: 'classifier-free guidance weight' },
    'sampling-steps': { ...SAMPLING_STEPS, default: 50, defaultText: undefined, help: 'DDIM steps' },
    seed: SEED,
    'gif-prompts': { type: 'int', min: 0, max: 16, default: 4, arg: 'N', help: 'prompts in the GIF (its first sample each; 0 = no GIF)' },
    out: { type: 'string', arg: 'PREFIX', help: 'writes PREFIX.png and PREFIX.gif', defaultText: 'docs/emoji-showcase' },
  } as const);
  const prompts = o.prompts !== undefined ? o.prompts.split(',').map((p) => p.trim()).filter((p) => p !== '') : [...SHOWCASE_PROMPTS];
  if (prompts.length === 0) throw new DiffuseError('--prompts: give at least one prompt');
  const per = o['per-prompt'];
  const steps = o['sampling-steps'];
  const out = o.out ?? join(ROOT, 'docs', 'emoji-showcase');
  const pipe = await loadPipeline(o.checkpoint ?? join(ROOT, 'models', 'emoji'));
  try {
    const cfg = pipe.config;
    if (cfg.model.text === undefined) throw new DiffuseError(`${pipe.checkpoint} is not a text model (train with --text)`);
    // one request: every prompt's samples in order, the GIF's images first
    const gifN = Math.min(o['gif-prompts'], prompts.length);
    const asked = [...prompts.slice(0, gifN), ...prompts.flatMap((p) => new Array<string>(per).fill(p))];
    const condition = promptCondition(cfg, asked, o.guidance);
    let bar: ProgressBar | undefined;
    const r = await generateWith(pipe, {
      sampler: 'ddim', steps, n: asked.length, seed: o.seed, batchSize: 64, condition,
      ...(gifN > 0 ? { recordFrames: Math.min(steps, 25), recordSamples: gifN } : {}),
      onStep: (done, total) => (bar ??= new ProgressBar({ total, label: 'sample', unit: 'nfe' })).update(done, {}),
    });
    bar?.finish();
    const [, h, , c] = r.shape;
    const size = h * h * c;
    const rows = prompts.map((label, i) => ({ label, images: r.images.subarray((gifN + i * per) * size, (gifN + (i + 1) * per) * size) }));
    await writePng(`${out}.png`, captionGrid(rows, { size: h, channels: c === 1 ? 1 : 3, cols: per, scale: 1, labelChars: 22, textScale: 1 }));
    process.stdout.write(`wrote ${out}.png (${prompts.length} prompts x ${per}, W = ${o.guidance}, DDIM ${steps}; ${r.seconds.toFixed(1)} s on ${pipe.engine})\n`);
    if (gifN > 0) {
      await writeGif(`${out}.gif`, gifFrames(r), { delayMs: 100, scale: 2 });
      process.stdout.write(`wrote ${out}.gif (${prompts.slice(0, gifN).join(', ')}: decoded x_t above, decoded predicted x_0 below)\n`);
    }
  } finally {
    await pipe.dispose();
  }
}

main().catch(reportError);
