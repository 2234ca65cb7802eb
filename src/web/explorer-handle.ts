/**
 * What the explorer's server (server.ts) and page (web/main.ts) share: the
 * JSON the server sends, and what the page exposes as `window.explorer` (its
 * state and last result, for the browser test, the screenshot script and the
 * console). Types only: the page imports this file and nothing else of src/
 * but the browser entry.
 */
import type { DiffuseConfig } from '../config.js';

/** One data set image of /api/samples. */
export interface SampleImage {
  readonly label: number | null;
  readonly name: string;
  /** H·W·C bytes, HWC order. */
  readonly pixels: number[];
}

/** GET /api/samples: a few data set images for the forward view; an empty list (and a note) when the data set is unavailable. */
export interface SamplesResponse {
  readonly dataset: string;
  readonly imageSize: number;
  readonly channels: number;
  readonly images: SampleImage[];
  /** Why there are no images, when the data set could not be loaded. */
  readonly note?: string;
}

/** GET /api/config: the model's (public) config and what the page shows about it. */
export interface ConfigResponse {
  readonly config: DiffuseConfig;
  readonly step: number;
  /** The model's name: a shipped model's name, else its folder's name (never a path). */
  readonly checkpoint: string;
  readonly labelNames: string[] | null;
  /** A latent model's [side, side, channels] of the latents it diffuses (config.latent holds its scaling factor); null for a pixel model. */
  readonly latentShape: readonly [number, number, number] | null;
}

/** The page's `window.explorer`. */
export type ExplorerState = 'loading' | 'ready' | 'running' | 'paused' | 'done' | 'error';

export interface ExplorerHandle {
  state: ExplorerState;
  /** 'wasm' or 'webgpu' once the model is loaded. */
  backend: string | null;
  /** The error shown in the page, if any. */
  error: string | null;
  /** Final images of the last generation (NHWC floats in [-1, 1]; a latent model's decoded) and their shape [n, H, W, C]. */
  lastImages: number[] | null;
  lastShape: [number, number, number, number] | null;
  /** Latent models: the steps (1-based) whose predicted x̂_0 of image 1 the last generation decoded and showed while it ran. */
  decodedSteps: number[];
  lastRun: { sampler: string; steps: number; seed: number; n: number; classes: number[] | null; guidance: number; msPerStep: number } | null;
  /** Steps done so far in the current generation. */
  step: number;
  /** Pause a generation after this many steps (state 'paused') until resume() — for screenshots. */
  pauseAtStep: number | null;
  resume: () => void;
}

declare global {
  interface Window {
    explorer: ExplorerHandle;
  }
}
