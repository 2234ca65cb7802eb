/**
 * Prompt agreement: ask a text-to-image model for things by name and count
 * how often the classifier puts the picture where it was asked.
 *
 * The model comes in as an `ImagesFromPrompts` function that returns images
 * in pixel space, so the same measurement serves a pixel-space pipeline
 * (`pipelineImages`) and a latent one that decodes after sampling (pass its
 * decoder as `decode`, or give any function of this type).
 */
import { DiffuseError } from '../errors.js';
import type { DiffuseConfig } from '../config.js';
import { promptCondition } from '../guidance/condition.js';
import type { ImageBatch } from '../tensor.js';
import type { Pipeline, SampleRequest } from '../pipeline.js';
import { generateWith } from '../pipeline.js';
import type { SamplerName } from '../samplers/factory.js';
import type { Classifier } from './classifier.js';
import { classAgreement, floorIndices, type ClassAgreement } from './evaluate.js';

/** Images made for prompts, in pixel space ([-1, 1], NHWC), and the seconds it took (decoding included). */
export interface PromptImages extends ImageBatch {
  readonly seconds: number;
}

/**
 * One image per prompt, for a guidance weight and a seed: the same seed gives
 * the same starting noise for every weight. A latent model decodes before it
 * returns.
 */
export type ImagesFromPrompts = (prompts: readonly string[], guidance: number, seed: number) => Promise<PromptImages>;

export interface PipelineImagesOptions {
  readonly sampler?: SamplerName;
  /** Default: the sampler's usual count (defaultSteps). */
  readonly steps?: number;
  /** Images per network evaluation (default 64). */
  readonly batchSize?: number;
  /**
   * A latent model's decoder: sampler output (latents) -> images in pixel
   * space. Left out when the pipeline's generateWith already returns pixels.
   */
  readonly decode?: (latents: ImageBatch) => Promise<ImageBatch>;
  /** Progress: network evaluations done of total, per call. */
  readonly onStep?: (done: number, total: number) => void;
}

/** `ImagesFromPrompts` of a loaded checkpoint: promptCondition + generateWith (+ decode). */
export function pipelineImages(pipe: Pick<Pipeline, 'config' | 'model'>, opts: PipelineImagesOptions = {}): ImagesFromPrompts {
  return async (prompts, guidance, seed) => {
    const req: SampleRequest = {
      sampler: opts.sampler ?? 'ddim',
      n: prompts.length,
      seed,
      batchSize: opts.batchSize ?? 64,
      condition: promptCondition(pipe.config, prompts, guidance),
      ...(opts.steps !== undefined ? { steps: opts.steps } : {}),
      ...(opts.onStep !== undefined ? { onStep: opts.onStep } : {}),
    };
    const t0 = performance.now();
    const r = await generateWith(pipe, req);
    const px = opts.decode !== undefined ? await opts.decode({ images: r.images, shape: r.shape }) : { images: r.images, shape: r.shape };
    return { images: px.images, shape: px.shape, seconds: (performance.now() - t0) / 1000 };
  };
}

/** Can this model read the prompt (every word in its vocabulary, not too long)? */
export function promptReadable(config: DiffuseConfig, prompt: string): boolean {
  try {
    promptCondition(config, [prompt], 0);
    return true;
  } catch (e) {
    if (e instanceof DiffuseError) return false;
    throw e;
  }
}

/** A prompt and the classifier class a picture of it should land in. */
export interface PromptRequest {
  readonly prompt: string;
  readonly label: number;
}

export interface PromptAgreement extends ClassAgreement {
  readonly guidance: number;
  /** The images, in request order (each request `samplesPerPrompt` times in a row). */
  readonly samples: PromptImages;
  /** The class each sample was asked for (the requests' labels, repeated). */
  readonly requested: Int32Array;
}

export interface PromptAgreementOptions {
  readonly classifier: Classifier;
  readonly images: ImagesFromPrompts;
  readonly requests: readonly PromptRequest[];
  /** Guidance weights (the same seed, so the same starting noise, for each). */
  readonly weights: readonly number[];
  readonly seed?: number;
  /** Images per prompt (default 1). */
  readonly samplesPerPrompt?: number;
  /** Called after each weight. */
  readonly onWeight?: (r: PromptAgreement) => void;
}

/**
 * For each guidance weight: one image per request (or `samplesPerPrompt`),
 * classified; the share in the requested class overall, per class, the
 * confusion matrix, and at the level of the classifier's groups.
 */
export async function promptAgreement(opts: PromptAgreementOptions): Promise<PromptAgreement[]> {
  const { classifier, requests } = opts;
  const per = opts.samplesPerPrompt ?? 1;
  if (requests.length === 0) throw new DiffuseError('prompt agreement: no prompts');
  if (!Number.isInteger(per) || per < 1) throw new DiffuseError(`prompt agreement: samplesPerPrompt must be a positive integer, got ${per}`);
  if (opts.weights.length === 0 || opts.weights.some((w) => !(Number.isFinite(w) && w >= 0))) throw new DiffuseError(`prompt agreement: guidance weights must be numbers ≥ 0, got ${opts.weights.join(', ')}`);
  const K = classifier.config.numClasses;
  const prompts: string[] = [];
  const requested = new Int32Array(requests.length * per);
  requests.forEach((r, i) => {
    if (!Number.isInteger(r.label) || r.label < 0 || r.label >= K) throw new DiffuseError(`prompt agreement: '${r.prompt}' asks for class ${r.label}, the classifier knows 0..${K - 1}`);
    for (let j = 0; j < per; j++) {
      prompts.push(r.prompt);
      requested[i * per + j] = r.label;
    }
  });
  const out: PromptAgreement[] = [];
  for (const w of opts.weights) {
    const samples = await opts.images(prompts, w, opts.seed ?? 0);
    if (samples.shape[0] !== prompts.length) throw new DiffuseError(`prompt agreement: asked for ${prompts.length} images, got ${samples.shape[0]}`);
    const r: PromptAgreement = { ...classAgreement(classifier, samples, requested), guidance: w, samples, requested };
    opts.onWeight?.(r);
    out.push(r);
  }
  return out;
}

/**
 * The prompts of FID samples for (n, seed) on a captioned data set: the
 * canonical caption of each training image the real-vs-real floor draws
 * (`floorIndices`), in its order. A model that drew exactly the images it
 * was asked for would score the floor.
 */
export function floorPrompts(train: { captions?: string[][]; shape: readonly number[]; name: string }, n: number, seed: number): string[] {
  const caps = train.captions;
  if (caps === undefined) throw new DiffuseError(`data set ${train.name} has no captions to ask for`);
  return Array.from(floorIndices(train.shape[0]!, n, seed), (i) => caps[i]![0]!);
}
