/** `diffuse sample`: a checkpoint (default: the shipped MNIST model) -> PNG grid, PNG files, GIF of the reverse process. */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ParsedArgs } from './args.js';
import { Flags } from './args.js';
import { DiffuseError } from '../errors.js';
import { loadPipeline, shippedModelDir, ENGINE_NAMES, defaultSteps, generateWith } from '../pipeline.js';
import type { GenerateResult } from '../generate.js';
import { SAMPLER_NAMES } from '../samplers/factory.js';
import { imageGrid, writePng, type ImageU8 } from '../io/image.js';
import { writeGif } from '../io/gif.js';
import { ProgressBar } from '../train/progress.js';
import { parseBackendName } from '../engine/backend.js';
import { classCondition, classCount, promptCondition, resolveClassFor, type Condition } from '../guidance/condition.js';

export const HELP = `usage: diffuse sample [options]

  --checkpoint DIR      run or checkpoint folder (default: the shipped MNIST model, models/mnist)
  --sampler NAME        ddpm | ddim (default) | dpm-solver
  --steps K             network evaluations (default: ddpm = all T, ddim 50, dpm-solver 20)
  --eta X               DDIM noise (0 = deterministic, default)
  --n N                 number of images (default 64)
  --seed S              (default 0): same seed, same images
  --out FILE            PNG grid (default samples.png)
  --cols N              grid columns (default: square)
  --dir DIR             also write each image as DIR/000.png ...
  --gif FILE            animated GIF of the reverse process, pure noise to image (first 8 images)
  --class C             conditional models: a class index or name (e.g. 7, seven, 'ankle boot'), or 'all' for one row per class
  --prompt TEXT         text-conditioned models: a short prompt (e.g. "ankle boot", "a photo of a sneaker");
                        unknown words get an error listing the model's vocabulary. Class models accept
                        a class name or synonym here too.
  --guidance W          classifier-free guidance weight (default 2 with --class or --prompt)
  --weights ema|model   which weights (default ema)
  --engine E            tfjs | onnx (default: tfjs on the native engine when it is built and --batch >= 32, else onnx)
  --backend B           tfjs backend: native | wasm | tensorflow | webgpu | cpu (default: native if built, else tensorflow if installed, else wasm)
  --batch N             images per network evaluation (default 64)`;

function gifFrames(r: GenerateResult): ImageU8[] {
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

export async function run(args: ParsedArgs): Promise<void> {
  const f = new Flags(args);
  const ckptFlag = f.string('checkpoint');
  const checkpoint = ckptFlag ?? shippedModelDir();
  const sampler = f.choice('sampler', SAMPLER_NAMES, 'ddim');
  const stepsFlag = f.int('steps');
  const eta = f.number('eta');
  let n = f.int('n', 64);
  const seed = f.int('seed', 0);
  const out = f.string('out', 'samples.png');
  const colsFlag = f.int('cols');
  const dir = f.string('dir');
  const gif = f.string('gif');
  const classFlag = f.string('class');
  const promptFlag = f.string('prompt');
  if (classFlag !== undefined && promptFlag !== undefined) throw new DiffuseError('give --class or --prompt, not both');
  const guidanceFlag = f.number('guidance');
  const weights = f.choice('weights', ['ema', 'model'], 'ema');
  const engineFlag = f.string('engine');
  const engine = engineFlag === undefined ? undefined : f.choice('engine', ENGINE_NAMES, 'onnx');
  const backendFlag = f.string('backend');
  if (backendFlag !== undefined && engine === 'onnx') throw new DiffuseError('--backend chooses a tfjs backend: use it with --engine tfjs');
  const batch = f.int('batch', 64);
  f.rejectUnknown();
  if (args.positional.length > 0) throw new DiffuseError(`unexpected argument '${args.positional[0]}' (see diffuse sample --help)`);
  if (n < 1) throw new DiffuseError(`--n must be at least 1, got ${n}`);

  const pipe = await loadPipeline(checkpoint, {
    weights,
    batchSize: batch,
    ...(engine !== undefined ? { engine } : backendFlag !== undefined ? { engine: 'tfjs' as const } : {}),
    ...(backendFlag !== undefined ? { backend: parseBackendName(backendFlag) } : {}),
  });
  try {
    const cfg = pipe.config;
    const T = cfg.diffusion.timesteps;
    const steps = stepsFlag ?? defaultSteps(sampler, T);
    const k = classCount(cfg);
    let cols = colsFlag;
    let condition: Condition | undefined;
    if (classFlag !== undefined || guidanceFlag !== undefined || promptFlag !== undefined) {
      if (k === 0) throw new DiffuseError(`checkpoint ${pipe.checkpoint} is unconditional: --class, --prompt and --guidance need a conditional model (train with --conditional or --text)`);
      const guidance = guidanceFlag ?? 2;
      if (promptFlag !== undefined) {
        condition = promptCondition(cfg, new Array<string>(n).fill(promptFlag), guidance);
      } else if (classFlag === undefined || classFlag === 'all') {
        const per = Math.max(1, Math.round(n / k));
        n = per * k;
        condition = classCondition(cfg, Int32Array.from({ length: n }, (_, i) => Math.floor(i / per)), guidance);
        cols = cols ?? per;
      } else {
        condition = classCondition(cfg, new Int32Array(n).fill(resolveClassFor(cfg, classFlag)), guidance);
      }
    } else if (k > 0) {
      condition = classCondition(cfg, new Int32Array(n).fill(-1), 0);
    }
    const bar = new ProgressBar({ total: steps * Math.ceil(n / batch), label: 'sample', unit: 'nfe' });
    const r = await generateWith(pipe, {
      sampler,
      steps,
      n,
      seed,
      batchSize: batch,
      ...(eta !== undefined ? { eta } : {}),
      ...(condition !== undefined ? { condition } : {}),
      ...(gif !== undefined ? { recordFrames: Math.min(steps, 40), recordSamples: Math.min(n, 8) } : {}),
      onStep: (done) => bar.update(done, {}),
    });
    bar.finish();
    await writePng(out, imageGrid(r.images, r.shape, cols !== undefined ? { cols } : {}));
    const wrote = [out];
    if (dir !== undefined) {
      await mkdir(dir, { recursive: true });
      const [, h, w, c] = r.shape;
      const per = h * w * c;
      for (let i = 0; i < n; i++) {
        const file = join(dir, `${String(i).padStart(3, '0')}.png`);
        await writePng(file, imageGrid(r.images.subarray(i * per, (i + 1) * per), [1, h, w, c], { pad: 0 }));
      }
      wrote.push(`${dir}/ (${n} files)`);
    }
    if (gif !== undefined) {
      await writeGif(gif, gifFrames(r), { delayMs: 80, scale: 3 });
      wrote.push(gif);
    }
    const guided = (promptFlag !== undefined ? `, prompt '${promptFlag}'` : '') + (condition !== undefined && condition.guidance > 0 ? `, guidance ${condition.guidance}` : '');
    process.stderr.write(
      `${n} images, ${sampler} ${steps} steps${guided}, ${r.seconds.toFixed(1)} s on ${pipe.engine} (checkpoint ${pipe.checkpoint}, step ${pipe.step})\n` +
        `wrote ${wrote.join(', ')}\n`,
    );
  } finally {
    await pipe.dispose();
  }
}
