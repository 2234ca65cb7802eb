/**
 * Generation, engine-free: start from pure noise and pass it through the same
 * network again and again (the sampler loop), recording the reverse process
 * for pictures. The network comes in as a `ModelFn`, so this drives a tfjs
 * U-Net, an ONNX Runtime session or a closed-form denoiser alike.
 *
 * Latent models (`latent`): the sampler works on latents, and a decoder
 * (also passed in) turns the final latents and the recorded frames into
 * images, so the result is in pixels either way; the raw latents are kept
 * beside them (`result.latent`).
 */
import { DiffuseError } from './errors.js';
import { Rng } from './rng.js';
import { makeSchedule, type ScheduleName, type ScheduleOptions } from './schedule.js';
import { createSampler, defaultSteps, type SamplerName, type SamplerSettings } from './samplers/factory.js';
import type { DiffuseConfig } from './config.js';
import { sample } from './samplers/loop.js';
import type { ModelFn, PredictionType, Shape4 } from './diffusion/types.js';
import { classifierFreeGuidance } from './guidance/cfg.js';
import type { Condition } from './guidance/condition.js';

export interface GenerateOptions extends ScheduleOptions {
  /** The training schedule of the model (name, T and the ScheduleOptions fields). */
  readonly schedule: ScheduleName;
  readonly timesteps: number;
  readonly prediction: PredictionType;
  /** Image size and channels of the images made (the model's, or a latent model's decoder's). */
  readonly imageSize: number;
  readonly channels: number;
  /** Latent models: the latents' shape and the decoder (the sampler's latents -> images). */
  readonly latent?: LatentStage;
  readonly sampler: SamplerName;
  /** Number of sampling steps (one network evaluation each; Heun: 2·steps − 1). */
  readonly steps: number;
  /** How many images. */
  readonly n: number;
  readonly seed: number;
  /** DDIM's eta (0 = deterministic). */
  readonly eta?: number;
  /** Sampler options: timestep spacing, Karras sigmas, DDIM's choices (see SamplerSettings). */
  readonly samplerOptions?: SamplerSettings;
  /** Clip the predicted clean image to [-c, c] at every step: true = [-1, 1] (default for pixels), a number c, or false (default for latents, which are not bounded). */
  readonly clip?: boolean | number;
  /** Network evaluations per call: the batch is split into chunks of this size (default: all). */
  readonly batchSize?: number;
  /** Keep this many frames of the reverse process (x_t and predicted x_0) for the first `recordSamples` images. */
  readonly recordFrames?: number;
  readonly recordSamples?: number;
  /**
   * Conditional models: one condition row per image (a class index, or a
   * prompt's token ids; see guidance/condition.ts), the unconditional row, and
   * the guidance weight w (classifier-free guidance, 0 = none).
   */
  readonly condition?: Condition;
  /**
   * Called after every network evaluation (a step; Heun: two per step): done
   * of total (progress bars; with batchSize chunks, total counts every chunk's),
   * and the step itself (its index, t, x_t and the predicted x_0 of the chunk).
   */
  readonly onStep?: (done: number, total: number, step: GenerateStep) => void;
  /** Stops generation before the next network evaluation; generate() then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** What a latent model adds to generation: the latents' shape and the way back to pixels. */
export interface LatentStage {
  /** [side, side, channels] of the latents the sampler works on. */
  readonly shape: readonly [number, number, number];
  /** Latents [n, side, side, channels] in the sampler's space -> images [n, imageSize, imageSize, channels] in [-1, 1]. */
  decode(latents: Float32Array, shape: Shape4): Promise<Float32Array>;
}

/** One sampling step as onStep sees it (in the sampler's space: a latent model's latents, not decoded). */
export interface GenerateStep {
  /** Network-call counter (0-based) within the chunk and the timestep t the model saw. */
  readonly i: number;
  readonly t: number;
  /** x after this step and the predicted clean image, NHWC, for the images of the current chunk. */
  readonly x: Float32Array;
  readonly predX0: Float32Array;
  /** Index of the chunk's first image and its number of images. */
  readonly first: number;
  readonly count: number;
}

export interface ReverseFrame {
  /** Network-call counter (0-based) and the timestep t the model saw. */
  readonly i: number;
  readonly t: number;
  /** x after this step and the predicted clean image, for the recorded samples (NHWC). */
  readonly x: Float32Array;
  readonly predX0: Float32Array;
}

export interface GenerateResult {
  /** The images (decoded, for a latent model), NHWC in [-1, 1]. */
  readonly images: Float32Array;
  readonly shape: Shape4;
  /**
   * Recorded frames, each x right after a step with that step's predicted x_0
   * (the first: after step 0, so one step past the pure noise x_T); empty unless asked.
   * A latent model's are decoded (x_t and predicted x_0 through the decoder).
   */
  readonly frames: ReverseFrame[];
  readonly recordedShape: Shape4;
  /** Seconds of the whole generation (decoding included). */
  readonly seconds: number;
  /** Latent models: what the sampler made, before decoding (the final latents and the recorded frames). */
  readonly latent?: { readonly images: Float32Array; readonly shape: Shape4; readonly frames: ReverseFrame[]; readonly recordedShape: Shape4 };
}

/** Which step indices to record so that `count` frames span the whole run (first and last included). */
export function frameSteps(steps: number, count: number): Set<number> {
  const out = new Set<number>();
  if (count <= 0) return out;
  if (count === 1) return new Set([steps - 1]);
  for (let k = 0; k < count; k++) out.add(Math.round(((steps - 1) * k) / (count - 1)));
  return out;
}

/**
 * The starting noise x_T of a generation: drawn first from the seeded stream
 * (so the same for any batchSize), and the stream the sampler goes on with.
 */
export function startNoise(seed: number, shape: Shape4): { rng: Rng; xT: Float32Array } {
  const rng = new Rng(seed);
  return { rng, xT: rng.normalArray(shape.reduce((a, b) => a * b, 1)) };
}

/** Generate `n` images from pure noise with the chosen sampler and number of steps. */
export async function generate(model: ModelFn, opts: GenerateOptions): Promise<GenerateResult> {
  if (!Number.isInteger(opts.n) || opts.n < 1) throw new DiffuseError(`number of images must be a positive integer, got ${opts.n}`);
  const schedule = makeSchedule(opts.schedule, opts.timesteps, opts);
  const clip = opts.clip ?? opts.latent === undefined;
  const sampler = createSampler(opts.sampler, {
    ...opts.samplerOptions,
    schedule,
    prediction: opts.prediction,
    ...(clip === false ? {} : { clipX0: clip === true ? 1 : clip }),
    ...(opts.eta !== undefined ? { eta: opts.eta } : {}),
  });
  // Heun calls the network twice per step: count the calls for progress and frames.
  sampler.setTimesteps(opts.steps);
  const calls = sampler.timesteps.length;
  // the sampler's space: the images, or a latent model's latents
  const [s, , c] = opts.latent?.shape ?? [opts.imageSize, opts.imageSize, opts.channels];
  const shape: Shape4 = [opts.n, s, s, c];
  const per = s * s * c;
  const chunk = Math.max(1, Math.min(opts.batchSize ?? opts.n, opts.n));
  const recordN = Math.min(opts.recordSamples ?? 0, opts.n);
  const recordAt = frameSteps(calls, opts.recordFrames ?? 0);
  const cond = opts.condition;
  const L = cond?.nullCond.length ?? 0;
  if (cond !== undefined && cond.cond.length !== opts.n * L) {
    throw new DiffuseError(`${cond.cond.length / Math.max(L, 1)} conditions given for ${opts.n} images`);
  }
  const { rng, xT } = startNoise(opts.seed, shape);
  const frames: ReverseFrame[] = [];
  const images = new Float32Array(opts.n * per);
  const total = calls * Math.ceil(opts.n / chunk);
  let done = 0;
  const signal = opts.signal;
  signal?.throwIfAborted();
  const guarded: ModelFn = signal === undefined ? model : (x, t, sh, rows) => {
    signal.throwIfAborted();
    return model(x, t, sh, rows);
  };
  const t0 = performance.now();
  for (let start = 0; start < opts.n; start += chunk) {
    const m = Math.min(chunk, opts.n - start);
    const cShape: Shape4 = [m, s, s, c];
    const rec = Math.max(0, Math.min(recordN - start, m));
    const net = cond === undefined ? guarded : classifierFreeGuidance(guarded, {
      cond: cond.cond.subarray(start * L, (start + m) * L),
      nullCond: cond.nullCond,
      weight: cond.guidance,
    });
    const out = await sample(net, sampler, cShape, {
      rng,
      steps: opts.steps,
      xT: xT.subarray(start * per, (start + m) * per),
      onStep: ({ i, t, x, predX0 }) => {
        done++;
        opts.onStep?.(done, total, { i, t, x, predX0, first: start, count: m });
        if (rec > 0 && recordAt.has(i)) {
          const k = frames.findIndex((f) => f.i === i);
          const frame = k >= 0 ? frames[k]! : { i, t, x: new Float32Array(recordN * per), predX0: new Float32Array(recordN * per) };
          frame.x.set(x.subarray(0, rec * per), start * per);
          frame.predX0.set(predX0.subarray(0, rec * per), start * per);
          if (k < 0) frames.push(frame);
        }
      },
    });
    images.set(out, start * per);
  }
  const recordedShape: Shape4 = [Math.max(recordN, 1), s, s, c];
  if (opts.latent === undefined) return { images, shape, frames, recordedShape, seconds: (performance.now() - t0) / 1000 };
  // Latent model: decode the final latents and (only) the recorded frames.
  const S = opts.imageSize, C = opts.channels;
  const decode = async (z: Float32Array, k: number): Promise<Float32Array> => {
    signal?.throwIfAborted();
    const x = await opts.latent!.decode(z, [k, s, s, c]);
    if (x.length !== k * S * S * C) throw new DiffuseError(`the decoder made ${x.length} values for ${k} images of ${S}x${S}x${C}`);
    return x;
  };
  const pixels = await decode(images, opts.n);
  const decodedFrames: ReverseFrame[] = [];
  for (const f of frames) decodedFrames.push({ i: f.i, t: f.t, x: await decode(f.x, recordN), predX0: await decode(f.predX0, recordN) });
  return {
    images: pixels,
    shape: [opts.n, S, S, C],
    frames: decodedFrames,
    recordedShape: [Math.max(recordN, 1), S, S, C],
    seconds: (performance.now() - t0) / 1000,
    latent: { images, shape, frames, recordedShape },
  };
}

/** What generation needs beyond the model's own config (schedule, prediction, size come from the checkpoint). */
export type SampleRequest = Omit<GenerateOptions, 'schedule' | 'timesteps' | 'prediction' | 'imageSize' | 'channels' | 'steps' | keyof ScheduleOptions> & { readonly steps?: number };

/**
 * Generate from a loaded pipeline: its config fills in the schedule (name, T,
 * β range, zero SNR), prediction type and image shape. A latent model's
 * pipeline decodes (its `latent`): the images are pixels either way.
 */
export async function generateWith(pipe: { readonly config: DiffuseConfig; readonly model: ModelFn; readonly latent?: LatentStage | undefined }, req: SampleRequest): Promise<GenerateResult> {
  const cfg = pipe.config;
  if (cfg.latent !== undefined && pipe.latent === undefined) throw new DiffuseError('a latent model generates latents: give generateWith its pipeline\'s decoder (loadPipeline or createPipeline has it)');
  return generate(pipe.model, {
    ...req,
    ...cfg.diffusion,
    imageSize: cfg.data.imageSize,
    channels: cfg.data.channels,
    steps: req.steps ?? defaultSteps(req.sampler, cfg.diffusion.timesteps),
    ...(cfg.latent !== undefined && pipe.latent !== undefined ? { latent: pipe.latent } : {}),
  });
}
