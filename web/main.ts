/**
 * The explorer page. Everything diffusion-related comes from the library's own
 * engine-free modules (schedule, forward process, samplers, guidance, rng,
 * generateWith and a latent model's stage), the same code the Node CLI runs;
 * only the networks (the U-Net, a latent model's decoder) run on onnxruntime-web.
 */
import * as ort from 'onnxruntime-web/webgpu';
import {
  makeSchedule, MAX_T, MIN_T, SCHEDULE_NAMES, qSample, Rng, SAMPLER_NAMES, classCondition, classCount, classPrompt, promptCondition,
  generateWith, startNoise, latentStage, createOrtWebModelFn, createOrtWebDecoder, routeOrtWebModels, expertRange, resizeAreaFloat,
  type Schedule, type ScheduleName, type SamplerName, type Condition, type ModelFn, type DiffuseConfig, type OrtWebModelFn, type OrtWebDecoder,
  type LatentStage, type WebBackendChoice,
} from 'diffuse-ts/browser';
import type { ConfigResponse, ExplorerHandle, ExplorerState, SamplesResponse } from '../src/web/explorer-handle.js';
import { columnsThatFit, drawBatch, drawChannel, drawOne, drawSchedulePlot } from './draw.js';

// ---------------------------------------------------------------- state for tests and the console

const handle: ExplorerHandle = {
  state: 'loading', backend: null, error: null, lastImages: null, lastShape: null, decodedSteps: [], lastRun: null, step: 0, pauseAtStep: null, resume: () => {},
};
window.explorer = handle;

function setState(s: ExplorerState): void {
  handle.state = s;
  document.body.dataset['state'] = s;
}

// ---------------------------------------------------------------- DOM

function el<T extends HTMLElement>(id: string, type: new () => T): T {
  const e = document.getElementById(id);
  if (!(e instanceof type)) throw new Error(`page is missing #${id}`);
  return e;
}

const fwdError = el('fwd-error', HTMLDivElement);
const revError = el('rev-error', HTMLDivElement);
const revNote = el('rev-note', HTMLParagraphElement);
const revRows = el('rev-rows', HTMLDivElement);
const modelInfo = el('model-info', HTMLParagraphElement);
const thumbs = el('thumbs', HTMLDivElement);
const drop = el('drop', HTMLLabelElement);
const fileInput = el('file', HTMLInputElement);
const fwdSchedule = el('fwd-schedule', HTMLSelectElement);
const fwdT = el('fwd-T', HTMLInputElement);
const fwdSeed = el('fwd-seed', HTMLInputElement);
const fwdSlider = el('fwd-t', HTMLInputElement);
const fwdLabel = el('fwd-t-label', HTMLOutputElement);
const fwdX0 = el('fwd-x0', HTMLCanvasElement);
const fwdXt = el('fwd-xt', HTMLCanvasElement);
const fwdEps = el('fwd-eps', HTMLCanvasElement);
const fwdPlot = el('fwd-plot', HTMLCanvasElement);
const revSampler = el('rev-sampler', HTMLSelectElement);
const revSteps = el('rev-steps', HTMLInputElement);
const revSeed = el('rev-seed', HTMLInputElement);
const revN = el('rev-n', HTMLInputElement);
const revClass = el('rev-class', HTMLSelectElement);
const revGuidance = el('rev-guidance', HTMLInputElement);
const revPrompt = el('rev-prompt', HTMLInputElement);
const revBackendChoice = el('rev-backend-choice', HTMLSelectElement);
const revGenerate = el('rev-generate', HTMLButtonElement);
const revStop = el('rev-stop', HTMLButtonElement);
const revStatus = el('rev-status', HTMLParagraphElement);
const revBackend = el('rev-backend', HTMLSpanElement);
const revX = el('rev-x', HTMLCanvasElement);
const revX0 = el('rev-x0', HTMLCanvasElement);
const revClasses = el('rev-classes', HTMLSpanElement);
const revLatent = el('rev-latent', HTMLDivElement);
const revDecoded = el('rev-decoded', HTMLCanvasElement);
const revDecodedNote = el('rev-decoded-note', HTMLSpanElement);

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Show an error in the page (and the console) in `box`, the error box of the section it concerns; `where` says what failed. */
function showError(box: HTMLElement, where: string, err: unknown): void {
  const text = `${where}: ${message(err)}`;
  console.error(text, err);
  box.textContent = text;
  box.hidden = false;
  handle.error = text;
}

function clearError(box: HTMLElement): void {
  box.hidden = true;
  box.textContent = '';
  if (fwdError.hidden && revError.hidden) handle.error = null;
}

function intInput(input: HTMLInputElement, what: string, lo: number, hi: number): number {
  const v = Number(input.value);
  if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`${what} must be an integer in ${lo}..${hi}, got '${input.value}'`);
  return v;
}

// ---------------------------------------------------------------- model config

/** Why a response failed: the server's JSON `error` when it sent one, else the HTTP status. */
async function failureDetail(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: string };
    if (body.error) return body.error;
  } catch { /* not JSON */ }
  return `${res.status} ${res.statusText}`;
}

async function fetchJson<T>(url: string, what: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot load ${what} (${await failureDetail(res)})`);
  return (await res.json()) as T;
}

let config: DiffuseConfig | null = null;
/** Size and channels of the images (a latent model's: decoded). */
let S = 28;
let C = 1;
/** A latent model's latent shape [s, s, L] (null for a pixel model). */
let latentShape: readonly [number, number, number] | null = null;

// ---------------------------------------------------------------- forward view

let x0: Float32Array | null = null;
let fwdNoise: Float32Array = new Float32Array(0);
let fwdNoiseKey = '';
let fwdScheduleTable: Schedule | null = null;
let fwdScheduleKey = '';

function currentSchedule(): Schedule {
  const name = fwdSchedule.value as ScheduleName;
  if (!SCHEDULE_NAMES.includes(name)) throw new Error(`unknown schedule '${name}'`);
  const T = intInput(fwdT, 'T', MIN_T, MAX_T);
  const key = `${name}:${T}`;
  if (fwdScheduleTable === null || key !== fwdScheduleKey) {
    fwdScheduleTable = makeSchedule(name, T);
    fwdScheduleKey = key;
  }
  return fwdScheduleTable;
}

function noiseFor(seed: number): Float32Array {
  const key = `${seed}:${S}:${C}`;
  if (key !== fwdNoiseKey) {
    fwdNoise = new Rng(seed).normalArray(S * S * C);
    fwdNoiseKey = key;
  }
  return fwdNoise;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '∞';
  if (v === 0) return '0';
  return Math.abs(v) >= 0.01 && Math.abs(v) < 1e4 ? v.toFixed(4) : v.toExponential(3);
}

/** Recompute x_t for the slider's step k (0 = clean, k = training index k−1) and redraw. */
function renderForward(): void {
  try {
    const sched = currentSchedule();
    const T = sched.T;
    if (Number(fwdSlider.max) !== T) {
      const frac = Number(fwdSlider.value) / Math.max(1, Number(fwdSlider.max));
      fwdSlider.max = String(T);
      fwdSlider.value = String(Math.round(frac * T));
    }
    const k = Number(fwdSlider.value);
    const seed = intInput(fwdSeed, 'noise seed', 0, 2 ** 31 - 1);
    const eps = noiseFor(seed);
    const abar = k === 0 ? 1 : sched.alphaBar[k - 1]!;
    fwdLabel.value = `${k} / ${T}`;
    el('fwd-stat-t', HTMLTableCellElement).textContent = k === 0 ? '0 (clean)' : `${k} (index ${k - 1})`;
    el('fwd-stat-abar', HTMLTableCellElement).textContent = fmt(abar);
    el('fwd-stat-signal', HTMLTableCellElement).textContent = fmt(Math.sqrt(abar));
    el('fwd-stat-noise', HTMLTableCellElement).textContent = fmt(Math.sqrt(1 - abar));
    el('fwd-stat-snr', HTMLTableCellElement).textContent = k === 0 ? '∞' : `${fmt(abar / (1 - abar))} (${(10 * Math.log10(abar / (1 - abar))).toFixed(1)} dB)`;
    drawSchedulePlot(fwdPlot, sched.alphaBar, k);
    drawOne(fwdEps, eps.map((v) => v / 2), S, C);
    if (x0 === null) return;
    const xt = k === 0 ? x0 : qSample(sched, x0, k - 1, eps);
    drawOne(fwdX0, x0, S, C);
    drawOne(fwdXt, xt, S, C);
  } catch (err) {
    showError(fwdError, 'forward diffusion', err);
  }
}

function selectImage(data: Float32Array, button: HTMLButtonElement | null): void {
  x0 = data;
  for (const b of thumbs.querySelectorAll('button')) b.classList.toggle('selected', b === button);
  renderForward();
}

function addThumbs(samples: SamplesResponse): void {
  thumbs.textContent = '';
  if (samples.imageSize !== S || samples.channels !== C) {
    showError(fwdError, 'data set images', new Error(`images are ${samples.imageSize}×${samples.imageSize}×${samples.channels}, the model wants ${S}×${S}×${C}`));
    return;
  }
  samples.images.forEach((im, i) => {
    const data = Float32Array.from(im.pixels, (p) => p / 127.5 - 1);
    const b = document.createElement('button');
    b.type = 'button';
    b.title = `${samples.dataset} image ${i} (${im.name})`;
    const c = document.createElement('canvas');
    c.width = S;
    c.height = S;
    drawBatch(c, data, 1, S, C, 1, 0);
    b.append(c);
    b.addEventListener('click', () => selectImage(data, b));
    thumbs.append(b);
    if (i === 0) selectImage(data, b);
  });
  if (samples.images.length === 0) {
    const p = document.createElement('span');
    p.textContent = samples.note ?? 'no data set images';
    thumbs.append(p);
  }
}

/** Largest square (in pixels per side) read at full resolution; larger photos are first halved by the canvas (each halving a 2×2 mean). */
const MAX_UPLOAD_SIDE = 2048;

/**
 * A dropped/chosen image file -> S×S×C floats in [-1, 1]: centre-cropped
 * square, then shrunk by area averaging (the library's resizeAreaFloat: every
 * output pixel the mean of the pixels it covers), so fine detail in a large
 * photo averages out instead of aliasing into moiré.
 */
async function imageFileToModelInput(file: Blob): Promise<Float32Array> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (err) {
    throw new Error(`cannot decode the image (${message(err)})`);
  }
  let side = Math.min(bitmap.width, bitmap.height);
  let source: CanvasImageSource = bitmap;
  let sx = (bitmap.width - side) / 2;
  let sy = (bitmap.height - side) / 2;
  let sSide = side;
  while (side > MAX_UPLOAD_SIDE) side = Math.ceil(side / 2);
  const c = document.createElement('canvas');
  c.width = side;
  c.height = side;
  const ctx = c.getContext('2d', { willReadFrequently: true });
  if (ctx === null) throw new Error('no 2D canvas');
  ctx.imageSmoothingQuality = 'high';
  // halve step by step down to `side` (a no-op for photos up to MAX_UPLOAD_SIDE)
  for (let s = sSide; s > side; ) {
    s = Math.max(side, Math.ceil(s / 2));
    ctx.drawImage(source, sx, sy, sSide, sSide, 0, 0, s, s);
    source = c;
    sx = 0;
    sy = 0;
    sSide = s;
  }
  if (source === bitmap) ctx.drawImage(bitmap, sx, sy, sSide, sSide, 0, 0, side, side);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, side, side).data;
  const small = resizeAreaFloat(rgba, side, side, 4, S, S);
  const out = new Float32Array(S * S * C);
  for (let p = 0; p < S * S; p++) {
    const r = small[p * 4]!;
    const g = small[p * 4 + 1]!;
    const b = small[p * 4 + 2]!;
    if (C === 1) out[p] = (0.299 * r + 0.587 * g + 0.114 * b) / 127.5 - 1;
    else for (let k = 0; k < 3; k++) out[p * 3 + k] = [r, g, b][k]! / 127.5 - 1;
  }
  return out;
}

async function useFile(file: File | undefined): Promise<void> {
  if (file === undefined) return;
  try {
    clearError(fwdError);
    selectImage(await imageFileToModelInput(file), null);
  } catch (err) {
    showError(fwdError, `image '${file.name}'`, err);
  }
}

fileInput.addEventListener('change', () => {
  const file = fileInput.files?.[0];
  fileInput.value = ''; // so choosing the same file again is a change too, and reloads it
  void useFile(file);
});
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  void useFile(e.dataTransfer?.files[0]);
});
for (const input of [fwdSchedule, fwdT, fwdSeed, fwdSlider]) input.addEventListener('input', () => { clearError(fwdError); renderForward(); });

// ---------------------------------------------------------------- reverse view

/** The networks on onnxruntime-web: the U-Net, and a latent model's decoder. */
interface Networks {
  readonly net: OrtWebModelFn;
  readonly decoder: OrtWebDecoder | null;
}

let model: Networks | null = null;
let modelLoading: Promise<Networks> | null = null;
/** The class the next "mixed" generation starts at. */
let mixedNext = 0;
/** Stops the running generation (set while one runs). */
let stopGeneration: () => void = () => {};
/** Latent models: decoding the predicted x̂_0 while generating takes at most this share of the network's time (the final images are always decoded). */
const DECODE_SHARE = 0.25;

ort.env.wasm.wasmPaths = new URL('ort/', window.location.href).href;
ort.env.wasm.numThreads = window.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;

async function download(url: string, what: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot download ${what} (${await failureDetail(res)})`);
  return new Uint8Array(await res.arrayBuffer());
}

/** A latent model's decoder, on the backend the U-Net got (WebGPU falling back to wasm), checked against the config. */
async function loadDecoder(backend: OrtWebModelFn['backend']): Promise<OrtWebDecoder> {
  const bytes = await download('api/decoder.onnx', 'the decoder');
  const dec = await createOrtWebDecoder(ort, bytes, { backend: backend === 'wasm' ? 'wasm' : 'auto' });
  const want = latentShape!;
  const [ls, , lc] = dec.latentShape;
  const [h, , c] = dec.imageShape;
  if (ls !== want[0] || lc !== want[2] || h !== S || c !== C) {
    await dec.dispose();
    throw new Error(`wrong decoder: it turns ${ls}×${ls}×${lc} latents into ${h}×${h}×${c} images, but the config says ${want.join('×')} latents and ${S}×${S}×${C} images`);
  }
  return dec;
}

/** The networks: the U-Net, and a latent model's decoder (config.latent; never together with experts). */
async function loadModel(): Promise<Networks> {
  const net = await loadUNet();
  if (latentShape === null) return { net, decoder: null };
  try {
    return { net, decoder: await loadDecoder(net.backend) };
  } catch (err) {
    await net.dispose();
    throw err;
  }
}

/** The U-Net: its one network, or one session per expert (config.experts) routed by t. */
async function loadUNet(): Promise<OrtWebModelFn> {
  if (config === null) throw new Error('no model config');
  const ex = config.experts;
  if (ex === undefined) return loadNetwork('api/model.onnx', 'the model');
  const nets: OrtWebModelFn[] = [];
  try {
    for (let k = 0; k < ex.count; k++) nets.push(await loadNetwork(`api/model.onnx?expert=${k}`, `expert ${k} (${expertRange(ex.boundaries, k)})`));
    return routeOrtWebModels(nets, ex.boundaries);
  } catch (err) {
    await Promise.all(nets.map((n) => n.dispose()));
    throw err;
  }
}

async function loadNetwork(url: string, what: string): Promise<OrtWebModelFn> {
  if (config === null) throw new Error('no model config');
  const bytes = await download(url, what);
  const choice = revBackendChoice.value as WebBackendChoice;
  let fn: OrtWebModelFn;
  try {
    fn = await createOrtWebModelFn(ort, bytes, { backend: choice });
    revNote.hidden = true;
  } catch (err) {
    if (choice !== 'webgpu') throw err;
    // WebGPU asked for where there is none (or it fails): run on wasm and say so, rather than fail every Generate.
    fn = await createOrtWebModelFn(ort, bytes, { backend: 'wasm' });
    revNote.textContent = `WebGPU is not usable in this browser (${message(err)}): running on wasm instead.`;
    revNote.hidden = false;
  }
  const [h, w, c] = fn.imageShape;
  const [ih, ic] = latentShape === null ? [S, C] : [latentShape[0], latentShape[2]];
  if (h !== ih || w !== ih || c !== ic) {
    await fn.dispose();
    throw new Error(`wrong input size: the ONNX model takes ${h}×${w}×${c} ${latentShape === null ? 'images' : 'latents'} but its config says ${ih}×${ih}×${ic}`);
  }
  const nc = config.model.numClasses;
  if (fn.numClasses !== nc) {
    await fn.dispose();
    throw new Error(`the ONNX model has ${fn.numClasses} classes but its config says ${nc}`);
  }
  const L = config.model.text?.maxTokens ?? 0;
  if (fn.tokenLength !== L) {
    await fn.dispose();
    throw new Error(`the ONNX model reads prompts of ${fn.tokenLength} tokens but its config says ${L}`);
  }
  return fn;
}

async function ensureModel(): Promise<Networks> {
  if (model !== null) return model;
  modelLoading ??= loadModel();
  try {
    model = await modelLoading;
  } finally {
    modelLoading = null;
  }
  const { net, decoder } = model;
  handle.backend = net.backend;
  const decoderNote = decoder !== null && decoder.backend !== net.backend ? `, its decoder on ${decoder.backend}` : '';
  revBackend.textContent = `onnxruntime-web ${net.backend}${net.backend === 'wasm' ? ` (${ort.env.wasm.numThreads} thread${ort.env.wasm.numThreads === 1 ? '' : 's'})` : ''}${decoderNote}${net.fallbackReason ? ` — ${net.fallbackReason}` : ''}`;
  return model;
}

async function disposeModel(): Promise<void> {
  const old = model;
  model = null;
  await old?.net.dispose();
  await old?.decoder?.dispose();
}

const nextFrame = (): Promise<void> => new Promise((ok) => {
  const done = (): void => ok();
  const timer = setTimeout(done, 50);
  requestAnimationFrame(() => { clearTimeout(timer); setTimeout(done, 0); });
});

/** Latent models: one small grey canvas per latent channel, labelled (made when the config arrives). */
const channelViews: { canvas: HTMLCanvasElement; label: HTMLElement }[] = [];

function makeChannelViews(channels: number): void {
  revLatent.textContent = '';
  channelViews.length = 0;
  for (let k = 0; k < channels; k++) {
    const fig = document.createElement('figure');
    const canvas = document.createElement('canvas');
    canvas.id = `rev-z${k}`;
    canvas.width = 10;
    canvas.height = 10;
    const label = document.createElement('figcaption');
    label.textContent = `channel ${k + 1}`;
    fig.append(canvas, label);
    revLatent.append(fig);
    channelViews.push({ canvas, label });
  }
}

/** The latent channels of image 1 of `z` ([n, s, s, L]), each normalised to its own range. */
function drawLatentChannels(z: Float32Array, s: number, L: number): void {
  const scale = Math.max(1, Math.round(64 / s));
  channelViews.forEach(({ canvas, label }, k) => {
    const { min, max } = drawChannel(canvas, z, 0, s, L, k, scale);
    label.textContent = `channel ${k + 1}\n${min.toPrecision(3)} … ${max.toPrecision(3)}`;
  });
}

/**
 * Generate with the library's own generateWith() (src/generate.ts): the same
 * seeded x_T, sampler, guidance and loop as the CLI, and for a latent model
 * the same stage (latentStage: the decoder behind the scaling factor), so the
 * same seed gives the same images; the page draws every step (onStep), pauses
 * for screenshots and lets the page paint between network evaluations (a
 * wrapper around the network, where a latent model's x̂_0 is also decoded,
 * throttled to DECODE_SHARE of the network's time), and Stop aborts it (an
 * AbortSignal).
 */
async function runGeneration(): Promise<void> {
  if (config === null) return;
  clearError(revError);
  setState('running');
  revGenerate.disabled = true;
  revStop.disabled = false;
  const abort = new AbortController();
  stopGeneration = () => abort.abort(new Error('stopped'));
  try {
    const sampler = revSampler.value as SamplerName;
    if (!SAMPLER_NAMES.includes(sampler)) throw new Error(`unknown sampler '${sampler}'`);
    const T = config.diffusion.timesteps;
    const steps = intInput(revSteps, 'steps', 1, T);
    const n = intInput(revN, 'images', 1, 32);
    const seed = intInput(revSeed, 'seed', 0, 2 ** 31 - 1);
    // Class models take a class index, text models a prompt (a class's own
    // prompt when a class is picked; a text model without classes and an
    // empty prompt generates unconditionally); the library builds the condition rows.
    const nc = classCount(config);
    let condition: Condition | null = null;
    let classes: Int32Array | null = null;
    let guidance = 0;
    const prompt = revPrompt.value.trim();
    if (nc > 0 || (config.model.text !== undefined && prompt !== '')) {
      const v = revClass.value;
      guidance = v === 'none' && prompt === '' ? 0 : Number(revGuidance.value);
      if (!(Number.isFinite(guidance) && guidance >= 0)) throw new Error(`guidance weight must be a number ≥ 0, got '${revGuidance.value}'`);
      if (config.model.text !== undefined && prompt !== '') {
        condition = promptCondition(config, new Array<string>(n).fill(prompt), guidance);
      } else {
        classes = new Int32Array(n);
        if (v === 'mixed') {
          // cycle through every class: each mixed generation goes on where the last one stopped
          classes.forEach((_, i) => { classes![i] = (mixedNext + i) % nc; });
          mixedNext = (mixedNext + n) % nc;
        } else {
          classes.fill(v === 'none' ? -1 : Number(v));
        }
        condition = classCondition(config, classes, guidance);
      }
    }
    const names = config.data.labelNames;
    const asked = (k: number): string => (k < 0 ? '∅' : config!.model.text !== undefined ? `"${classPrompt(config!, k)}"` : names?.[k] ?? String(k));
    revClasses.textContent = condition === null ? ''
      : `— ${classes === null ? `prompt "${prompt}"` : `classes ${Array.from(classes, asked).join(', ')}`}${guidance > 0 ? `, guidance w = ${guidance}` : ''}`;
    revStatus.textContent = 'loading the model…';
    const { net: net0, decoder } = await ensureModel();
    const stage: LatentStage | undefined = decoder !== null && config.latent !== undefined ? latentStage(config.latent, decoder) : undefined;
    // the sampler's space: the images, or a latent model's latents
    const [s, , L] = stage?.shape ?? [S, S, C];
    let modelMs = 0;
    let networkMs = 0;
    // Latent models: the newest predicted x̂_0 of image 1 not yet decoded, and the time decoding took so far.
    let pending: { step: number; z: Float32Array } | null = null;
    let decodeMs = 0;
    handle.step = 0;
    handle.decodedSteps = [];
    const decScale = Math.max(1, Math.floor(128 / S));
    const showDecoded = async (): Promise<void> => {
      if (pending === null || stage === undefined) return;
      const { step, z } = pending;
      pending = null;
      const t0 = performance.now();
      const img = await stage.decode(z, [1, s, s, L]);
      decodeMs += performance.now() - t0;
      drawBatch(revDecoded, img, 1, S, C, decScale, 0);
      revDecodedNote.textContent = `(step ${step})`;
      handle.decodedSteps.push(step);
    };
    const timed: ModelFn = async (x, t, sh, cls) => {
      await nextFrame(); // let the page paint the last step
      if (handle.pauseAtStep !== null && handle.step === handle.pauseAtStep) {
        await showDecoded(); // a paused page shows the step it is at
        setState('paused');
        await new Promise<void>((ok) => { handle.resume = ok; });
        handle.pauseAtStep = null;
        setState('running');
      }
      abort.signal.throwIfAborted();
      if (decodeMs <= DECODE_SHARE * networkMs) await showDecoded();
      const t0 = performance.now();
      const out = await net0(x, t, sh, cls);
      modelMs = performance.now() - t0;
      networkMs += modelMs;
      return out;
    };
    const scale = Math.max(1, Math.round((n > 8 ? 56 : 112) / S));
    const xT = startNoise(seed, [n, s, s, L]).xT;
    revRows.hidden = false;
    const cols = columnsThatFit(n, S * scale, 4, revRows.clientWidth);
    if (stage === undefined) {
      drawBatch(revX, xT, n, S, C, scale, 4, cols);
    } else {
      drawLatentChannels(xT, s, L);
      drawBatch(revDecoded, new Float32Array(S * S * C), 1, S, C, decScale, 0);
      revDecodedNote.textContent = '';
    }
    drawBatch(revX0, new Float32Array(n * S * S * C), n, S, C, scale, 4, cols);
    const started = performance.now();
    let last = started;
    let totalMs = 0;
    let calls = steps;
    const result = await generateWith({ config, model: timed, latent: stage }, {
      sampler,
      steps,
      n,
      seed,
      ...(condition !== null ? { condition } : {}),
      signal: abort.signal,
      onStep: (_done, total, { i, t, x, predX0 }) => {
        const now = performance.now();
        const stepMs = now - last;
        last = now;
        totalMs = now - started;
        calls = total;
        handle.step = i + 1;
        let network = `network ${modelMs.toFixed(0)} ms`;
        if (stage === undefined) {
          drawBatch(revX, x, n, S, C, scale, 4, cols);
          drawBatch(revX0, predX0, n, S, C, scale, 4, cols);
        } else {
          drawLatentChannels(x, s, L);
          pending = { step: i + 1, z: predX0.slice(0, s * s * L) };
          network += `, decoding x̂0 ${decodeMs.toFixed(0)} ms in all`;
        }
        revStatus.textContent = `step ${i + 1}/${total} · t = ${Number.isInteger(t) ? t : t.toFixed(1)} · ${stepMs.toFixed(0)} ms this step (${network}) · ${(totalMs / (i + 1)).toFixed(0)} ms/step on average · ${handle.backend ?? ''}`;
      },
    });
    totalMs = performance.now() - started;
    const msPerStep = totalMs / calls;
    const callNote = calls === steps ? '' : ` (${calls} network calls)`;
    const latentNote = stage === undefined ? '' : ` · x̂0 decoded at ${handle.decodedSteps.length} of ${calls} steps, every image at the end`;
    revStatus.textContent = `done: ${n} images, ${steps} ${sampler} steps${callNote} in ${(totalMs / 1000).toFixed(2)} s (${msPerStep.toFixed(0)} ms/step) on onnxruntime-web ${handle.backend ?? ''}${latentNote}`;
    if (stage !== undefined) {
      drawBatch(revX0, result.images, n, S, C, scale, 4, cols);
      drawBatch(revDecoded, result.images, 1, S, C, decScale, 0);
      revDecodedNote.textContent = '(the final image)';
    }
    handle.lastImages = Array.from(result.images);
    handle.lastShape = [...result.shape];
    handle.lastRun = { sampler, steps, seed, n, classes: classes === null ? null : Array.from(classes), guidance, msPerStep };
    setState('done');
  } catch (err) {
    if (abort.signal.aborted) {
      revStatus.textContent = 'stopped';
      setState('ready');
    } else {
      showError(revError, 'generation', err);
      revStatus.textContent = 'failed (above)';
      revRows.hidden = true; // the images there are not this run's
      setState('error');
    }
  } finally {
    stopGeneration = () => {};
    revGenerate.disabled = false;
    revStop.disabled = true;
  }
}

revGenerate.addEventListener('click', () => void runGeneration());
revStop.addEventListener('click', () => stopGeneration());
revBackendChoice.addEventListener('change', () => {
  void disposeModel();
  clearError(revError);
  ensureModel().then(() => setState('ready'), (err: unknown) => { showError(revError, 'model', err); setState('error'); });
});

// ---------------------------------------------------------------- start

async function start(): Promise<void> {
  try {
    const cfg = await fetchJson<ConfigResponse>('api/config', 'the model config');
    config = cfg.config;
    S = cfg.config.data.imageSize;
    C = cfg.config.data.channels;
    latentShape = cfg.latentShape;
    const d = cfg.config.diffusion;
    const nc = classCount(cfg.config);
    const text = cfg.config.model.text;
    const latent = cfg.config.latent;
    const latentInfo = latentShape === null || latent === undefined ? '' : ` · latent diffusion on ${latentShape.join('×')} latents (scaling factor ${latent.scalingFactor.toPrecision(4)})`;
    const ex = cfg.config.experts;
    modelInfo.textContent = `model: ${cfg.checkpoint} · step ${cfg.step} · ${S}×${S}×${C}${latentInfo} · ${d.schedule} schedule, T = ${d.timesteps}, predicts ${d.prediction}` +
      (text !== undefined ? ` · text prompts (${text.vocab.length - 1} words)` : nc > 0 ? ` · ${nc} classes` : ' · unconditional') +
      (ex !== undefined ? ` · ${ex.count} expert networks (${ex.boundaries.slice(0, -1).map((_, k) => expertRange(ex.boundaries, k)).join(', ')})` : '');
    document.body.dataset['latent'] = String(latentShape !== null);
    if (latentShape !== null) {
      for (const e of document.querySelectorAll('.latent-shape')) e.textContent = latentShape.join('×');
      makeChannelViews(latentShape[2]);
    }
    document.body.dataset['text'] = String(text !== undefined);
    if (text !== undefined) revPrompt.title = `words this model knows: ${text.vocab.slice(1).join(', ')}`;
    fwdSchedule.value = d.schedule;
    fwdT.value = String(d.timesteps);
    // guidance for class and text models; the class menu when the model has classes (a text model: the prompts of its data set's classes)
    document.body.dataset['conditional'] = String(nc > 0 || text !== undefined);
    document.body.dataset['classes'] = String(nc > 0);
    if (text !== undefined && nc === 0) revPrompt.placeholder = 'e.g. red apple (empty: unconditional)';
    if (nc > 0) {
      const names = cfg.labelNames ?? Array.from({ length: nc }, (_, i) => String(i));
      const opts: [string, string][] = [['mixed', `mixed (${names[0]}…${names[nc - 1]})`], ...names.slice(0, nc).map((n, i): [string, string] => [String(i), n]), ['none', 'none (unconditional)']];
      for (const [value, label] of opts) revClass.append(new Option(label, value));
    }
    renderForward();
    fetchJson<SamplesResponse>('api/samples', 'data set images').then(addThumbs, (err: unknown) => showError(fwdError, 'data set images', err));
    revGenerate.disabled = false;
    await ensureModel();
    setState('ready');
  } catch (err) {
    showError(revError, 'model', err);
    revBackend.textContent = 'nothing (the model did not load)';
    setState('error');
  }
}

void start();
