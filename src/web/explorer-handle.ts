/**
 * What the explorer page (web/main.ts) exposes as `window.explorer`: its state
 * and last result, for the browser test, the screenshot script and the console.
 */
export type ExplorerState = 'loading' | 'ready' | 'running' | 'paused' | 'done' | 'error';

export interface ExplorerHandle {
  state: ExplorerState;
  /** 'wasm' or 'webgpu' once the model is loaded. */
  backend: string | null;
  /** The error shown in the page, if any. */
  error: string | null;
  /** Final images of the last generation (NHWC floats in [-1, 1]). */
  lastImages: number[] | null;
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
