/** `diffuse sample`: a checkpoint (default: the shipped MNIST model) -> PNG/JPEG grid, PNG files, GIF of the reverse process. */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { defineCommand } from './command.js';
import { BACKEND, CHECKPOINT, DEFAULT_GUIDANCE, GUIDANCE, SAMPLER, SAMPLING_BATCH, SAMPLING_STEPS, SEED, WEIGHTS } from './options.js';
import { allClassLabels, requireFinite, samplingSteps } from './common.js';
import { DiffuseError } from '../errors.js';
import { loadPipeline, ENGINE_NAMES, generateWith } from '../pipeline.js';
import type { GenerateResult } from '../generate.js';
import { checkSamplerSettings, type SamplerSettings } from '../samplers/factory.js';
import { TIMESTEP_SPACINGS } from '../samplers/spacing.js';
import { imageGrid, writeImage, writePng, type ImageU8 } from '../io/image.js';
import { conditionLength } from '../model/config.js';
import { writeGif } from '../io/gif.js';
import { ProgressBar } from '../io/progress.js';
import { classCondition, classCount, promptCondition, resolveClassFor, type Condition } from '../guidance/condition.js';
import { findDiffusersFolder } from '../interop/diffusers-folder.js';

export const OPTIONS = {
  checkpoint: { ...CHECKPOINT, help: `${CHECKPOINT.help}, or a diffusers pipeline or unet/ folder`, defaultText: 'mnist (the shipped MNIST model)' },
  sampler: { ...SAMPLER, defaultText: "ddim; a diffusers folder: its scheduler's" },
  'scheduler-config': { type: 'string', arg: 'FILE', help: "diffusers folders: the scheduler_config.json to use (default: the pipeline's scheduler/)" },
  'sampling-steps': SAMPLING_STEPS,
  eta: { type: 'number', min: 0, max: 1, arg: 'X', help: 'DDIM noise: 0 = deterministic, 1 = as much as DDPM', defaultText: '0' },
  'timestep-spacing': { type: 'choice', choices: TIMESTEP_SPACINGS, default: 'uniform', arg: 'S', help: 'where the steps sit among the T timesteps (docs/samplers.md)', defaultText: "uniform; a diffusers folder: its scheduler's" },
  karras: { type: 'flag', help: 'Karras et al. noise levels (euler, euler-ancestral, heun, dpm-solver)' },
  n: { type: 'int', min: 1, max: 100000, arg: 'N', help: 'number of images', defaultText: `64; with --class all, 6 per class` },
  seed: SEED,
  out: { type: 'out-file', formats: ['png', 'jpeg'], default: 'samples.png', arg: 'FILE', help: 'the grid of all images' },
  cols: { type: 'int', min: 1, max: 10000, arg: 'N', help: 'grid columns', defaultText: 'square; one row per class with --class all' },
  dir: { type: 'out-dir', arg: 'DIR', help: 'also write each image as DIR/000.png, DIR/001.png ...' },
  gif: { type: 'out-file', formats: ['gif'], arg: 'FILE', help: 'animated GIF of the reverse process, pure noise to image (the first 8 images): x_t above, the predicted clean image below (a latent model\'s both decoded)' },
  class: { type: 'string', arg: 'C', help: "conditional models: a class index or name (7, seven, 'ankle boot'), or 'all' for one row per class" },
  prompt: { type: 'string', arg: 'TEXT', help: 'text-conditioned models: a short prompt ("ankle boot", "a photo of a sneaker"); class models take a class name here too' },
  guidance: GUIDANCE,
  weights: WEIGHTS,
  engine: { type: 'choice', choices: ENGINE_NAMES, arg: 'E', help: 'what runs the network', defaultText: 'tfjs on the native engine when it is built and --batch-size >= 32, else onnx when onnxruntime-node is installed, else tfjs' },
  backend: { ...BACKEND, help: 'tfjs backend (implies --engine tfjs)' },
  'batch-size': SAMPLING_BATCH,
} as const;

/** GIF frames of a recorded reverse process: x_t above, the predicted clean image below, the last frame held. */
export function gifFrames(r: GenerateResult): ImageU8[] {
  const [n, h, w, c] = r.recordedShape;
  const frames: ImageU8[] = [];
  for (const f of r.frames) {
    const both = new Float32Array(2 * n * h * w * c);
    both.set(f.x, 0);
    both.set(f.predX0, n * h * w * c);
    frames.push(imageGrid(both, [2 * n, h, w, c], { cols: n, pad: 1 }));
  }
  // Hold the finished images for a moment before the loop restarts.
  const last = frames[frames.length - 1];
  if (last !== undefined) for (let i = 0; i < 8; i++) frames.push(last);
  return frames;
}

export const command = defineCommand({
  name: 'sample',
  description: 'Generate images from a trained model: a grid, optionally each image as a file and the reverse process as a GIF.',
  options: OPTIONS,
  async run({ values: o, given }) {
    // a diffusers folder's scheduler picks the sampler unless --sampler does (checked once it is known)
    const diffusers = o.checkpoint !== undefined && findDiffusersFolder(o.checkpoint) !== undefined;
    const userOptions: SamplerSettings = {
      ...(given.has('timestep-spacing') || !diffusers ? { timestepSpacing: o['timestep-spacing'] } : {}),
      ...(o.karras ? { karrasSigmas: true } : {}),
    };
    if (!diffusers) checkSamplerSettings(o.sampler, userOptions);
    if (o['scheduler-config'] !== undefined && !diffusers) throw new DiffuseError('--scheduler-config is for diffusers folders (give --checkpoint a diffusers pipeline or unet/ folder)');
    if (given.has('weights') && diffusers) throw new DiffuseError('--weights chooses between a checkpoint\'s EMA and raw weights; a diffusers folder holds one set');
    if (o.class !== undefined && o.prompt !== undefined) throw new DiffuseError('give --class or --prompt, not both');
    if (o.backend !== undefined && o.engine === 'onnx') throw new DiffuseError('--backend chooses a tfjs backend: use it with --engine tfjs');
    const engine = o.engine ?? (o.backend !== undefined ? 'tfjs' : undefined);
    const pipe = await loadPipeline(o.checkpoint ?? 'mnist', {
      weights: o.weights,
      batchSize: o['batch-size'],
      ...(engine !== undefined ? { engine } : {}),
      ...(o.backend !== undefined ? { backend: o.backend } : {}),
      diffusers: {
        ...(given.has('sampler') ? { sampler: o.sampler } : {}),
        ...(o['scheduler-config'] !== undefined ? { schedulerConfig: o['scheduler-config'] } : {}),
      },
    });
    try {
      const cfg = pipe.config;
      const sampler = pipe.sampling !== undefined && !given.has('sampler') ? pipe.sampling.sampler : o.sampler;
      const samplerOptions: SamplerSettings = { ...(pipe.sampling?.samplerOptions ?? {}), ...userOptions };
      if (diffusers) checkSamplerSettings(sampler, samplerOptions);
      const steps = samplingSteps(o['sampling-steps'], sampler, cfg.diffusion.timesteps);
      const k = classCount(cfg);
      let n = o.n ?? 64;
      let cols = o.cols;
      let condition: Condition | undefined;
      if (o.class !== undefined || o.guidance !== undefined || o.prompt !== undefined) {
        if (conditionLength(cfg.model) === 0) throw new DiffuseError(`checkpoint ${pipe.checkpoint} is unconditional: --class, --prompt and --guidance need a conditional model (train with --conditional or --text)`);
        const guidance = o.guidance ?? DEFAULT_GUIDANCE;
        if (o.prompt !== undefined) {
          condition = promptCondition(cfg, new Array<string>(n).fill(o.prompt), guidance);
        } else if (k === 0) {
          throw new DiffuseError(`checkpoint ${pipe.checkpoint} was trained on its data set's captions, not on classes: give --prompt "..."`);
        } else if (o.class === undefined || o.class === 'all') {
          const all = allClassLabels(o.n, k);
          n = all.n;
          condition = classCondition(cfg, all.labels, guidance);
          cols = cols ?? all.per;
        } else {
          condition = classCondition(cfg, new Int32Array(n).fill(resolveClassFor(cfg, o.class)), guidance);
        }
      } else if (conditionLength(cfg.model) > 0) {
        condition = classCondition(cfg, new Int32Array(n).fill(-1), 0);
      }
      const batch = o['batch-size'];
      let bar: ProgressBar | undefined;
      const r = await generateWith(pipe, {
        sampler,
        ...(pipe.sampling !== undefined ? { clip: pipe.sampling.clip } : {}),
        steps,
        n,
        seed: o.seed,
        batchSize: batch,
        ...(o.eta !== undefined ? { eta: o.eta } : {}),
        samplerOptions,
        ...(condition !== undefined ? { condition } : {}),
        ...(o.gif !== undefined ? { recordFrames: Math.min(steps, 40), recordSamples: Math.min(n, 8) } : {}),
        onStep: (done, total) => (bar ??= new ProgressBar({ total, label: 'sample', unit: 'nfe' })).update(done, {}),
      });
      bar?.finish();
      requireFinite(r.images, `the model of ${pipe.checkpoint}`);
      await writeImage(o.out, imageGrid(r.images, r.shape, cols !== undefined ? { cols } : {}));
      const wrote = [o.out];
      if (o.dir !== undefined) {
        await mkdir(o.dir, { recursive: true });
        const [, h, w, c] = r.shape;
        const per = h * w * c;
        for (let i = 0; i < n; i++) {
          await writePng(join(o.dir, `${String(i).padStart(3, '0')}.png`), imageGrid(r.images.subarray(i * per, (i + 1) * per), [1, h, w, c], { pad: 0 }));
        }
        wrote.push(`${o.dir}/ (${n} files)`);
      }
      if (o.gif !== undefined) {
        await writeGif(o.gif, gifFrames(r), { delayMs: 80, scale: 3 });
        wrote.push(o.gif);
      }
      const guided = (o.prompt !== undefined ? `, prompt '${o.prompt}'` : '') + (condition !== undefined && condition.guidance > 0 ? `, guidance ${condition.guidance}` : '');
      process.stderr.write(
        `${n} images, ${sampler} ${steps} steps${guided}, ${r.seconds.toFixed(1)} s on ${pipe.engine}${pipe.latent !== undefined ? ` (latent ${pipe.latent.shape.join('x')}, decoding included)` : ''} ` +
          `(${pipe.sampling !== undefined ? `diffusers folder ${pipe.checkpoint}, its ${pipe.sampling.className}` : `checkpoint ${pipe.checkpoint}, step ${pipe.step}`})\n` +
          `wrote ${wrote.join(', ')}\n`,
      );
      if (engine === undefined && pipe.engine.startsWith('tfjs') && !pipe.engine.startsWith('tfjs-native')) {
        process.stderr.write('note: onnxruntime-node is not installed (its install step may have failed: see the README\'s Install), so this ran on tfjs, about 10× slower\n');
      }
    } finally {
      await pipe.dispose();
    }
  },
});
