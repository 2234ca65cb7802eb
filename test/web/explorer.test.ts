/**
 * The explorer in a real browser: `diffuse serve` with a tiny checkpoint made
 * here, Debian's chromium driven by playwright-core. Checks the forward view
 * (slider -> x_t equals the library's qSample, pixel for pixel), a 10-step
 * generation (images differ from the starting noise, and equal Node's
 * generate() on onnxruntime-node), that a bad model shows an error in the
 * page, and a latent model (its latent channels and decoded x̂0 while it
 * generates, the decoded images equal to Node's pipeline).
 *
 * Skips when chromium is not installed (CI installs it: .ci/run). Set
 * CHROMIUM=/path/to/chromium to use another build, DIFFUSE_CLI=/path/to/main.js
 * to run another build of the CLI.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BrowserContext, Page } from 'playwright-core';
import { makeSchedule } from '../../src/schedule.js';
import { qSample } from '../../src/diffusion/forward.js';
import { Rng } from '../../src/rng.js';
import { generate } from '../../src/generate.js';
import { loadModelWeights } from '../../src/train/checkpoint.js';
import { exportUNetToOnnx } from '../../src/onnx/export-unet.js';
import { createOrtModelFn, ortAvailable } from '../../src/onnx/runner.js';
import { defaultUNetConfig } from '../../src/model/config.js';
import { initParam, unetParamSpecs } from '../../src/model/unet.js';
import type {} from '../../src/web/explorer-handle.js';
import { encodePng } from '../../src/io/image.js';
import { promptCondition } from '../../src/guidance/condition.js';
import { generateWith, loadPipeline } from '../../src/pipeline.js';
import { randomLatentCheckpoint } from '../latent/helpers.js';
import type { Weights } from '../../src/tensor.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The `diffuse` CLI (DIFFUSE_CLI overrides, e.g. another build). */
const CLI = process.env['DIFFUSE_CLI'] ?? join(ROOT, 'dist', 'src', 'cli', 'main.js');
const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';
const skip = !existsSync(CHROMIUM)
  ? `chromium not found at ${CHROMIUM}: install it (apt-get install chromium; CI does) or set CHROMIUM=/path/to/chromium`
  : !existsSync(join(ROOT, 'dist', 'web', 'index.html'))
    ? 'the explorer page is not built (npm run build:web)'
    : false;
if (skip) console.log(`explorer browser test skipped: ${skip}`);

const run = promisify(execFile);


interface Served {
  proc: ChildProcessWithoutNullStreams;
  url: string;
}

/** Start `diffuse serve` on a free port; resolves with the address it prints. */
function serve(checkpoint: string): Promise<Served> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--checkpoint', checkpoint, '--port', '0'], { cwd: ROOT });
  let out = '';
  let err = '';
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => { proc.kill(); fail(new Error(`diffuse serve printed no address in 60 s\nstdout: ${out}\nstderr: ${err}`)); }, 60_000);
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /http:\/\/localhost:(\d+)\//.exec(out);
      if (m) {
        clearTimeout(timer);
        ok({ proc, url: `http://127.0.0.1:${m[1]}/` });
      }
    });
    proc.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    proc.on('exit', (code) => { clearTimeout(timer); fail(new Error(`diffuse serve exited with ${code}\nstdout: ${out}\nstderr: ${err}`)); });
  });
}

/** RGBA pixels of a canvas. */
async function canvasPixels(page: Page, selector: string): Promise<{ width: number; height: number; data: number[] }> {
  return page.$eval(selector, (c) => {
    const canvas = c as HTMLCanvasElement;
    const ctx = canvas.getContext('2d');
    if (ctx === null) throw new Error('no 2d context');
    return { width: canvas.width, height: canvas.height, data: Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data) };
  });
}

/**
 * The pixels of image `k` (`size`×`size`, drawn at `scale` with `gap`) in a grid canvas (as many columns as its
 * width holds), HWC bytes: the red channel (`channels` 1, a grey image) or red, green and blue (3).
 */
function cellGray(px: { width: number; data: number[] }, k: number, size: number, scale: number, gap: number, channels = 1): number[] {
  const out: number[] = [];
  const cell = size * scale + gap;
  const cols = Math.max(1, Math.floor((px.width + gap) / cell));
  const x0 = (k % cols) * cell;
  const y0 = Math.floor(k / cols) * cell;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const at = ((y0 + y * scale + (scale >> 1)) * px.width + x0 + x * scale + (scale >> 1)) * 4;
      for (let c = 0; c < channels; c++) out.push(px.data[at + c]!);
    }
  }
  return out;
}

function toByte(v: number): number {
  return Math.round(Math.min(255, Math.max(0, (v + 1) * 127.5)));
}

function stats(v: readonly number[]): { mean: number; std: number; saturated: number } {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  const saturated = v.filter((b) => b <= 1 || b >= 254).length / v.length;
  return { mean, std, saturated };
}

async function setSlider(page: Page, value: number): Promise<void> {
  await page.$eval('#fwd-t', (e, v) => {
    const input = e as HTMLInputElement;
    input.value = String(v);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  }, value);
}

async function waitState(page: Page, states: string[], timeout = 120_000): Promise<string> {
  await page.waitForFunction((s) => s.includes(window.explorer?.state ?? ''), states, { timeout });
  return page.evaluate(() => window.explorer.state);
}


interface Explorer {
  work: string;
  checkpoint: string;
  server: Served;
  context: BrowserContext;
}

/** Train a tiny model with `trainArgs` into a temp folder (the checkpoint folder it made). */
async function trained(work: string, trainArgs: string[]): Promise<string> {
  await run(process.execPath, [CLI, 'train', ...trainArgs, '--out', join(work, 'run'), '--sample-every', '0'], { cwd: ROOT, timeout: 300_000 });
  return join(work, 'run', 'checkpoint');
}

/** Make a model in a temp folder (`make` returns its checkpoint folder), serve it, and open headless chromium. */
async function startExplorer(prefix: string, make: (work: string) => Promise<string>): Promise<Explorer> {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const checkpoint = await make(work);
  const server = await serve(checkpoint);
  const { chromium } = await import('playwright-core');
  const context = await chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  return { work, checkpoint, server, context };
}

async function stopExplorer(e: Explorer | undefined): Promise<void> {
  if (e === undefined) return;
  await e.context.close();
  const exited = new Promise((ok) => e.server.proc.once('exit', ok));
  e.server.proc.kill('SIGTERM');
  await exited;
  rmSync(e.work, { recursive: true, force: true });
}

describe('explorer in chromium', { skip }, () => {
  let ex: Explorer | undefined;
  let checkpoint = '';
  let server: Served | undefined;
  let context: BrowserContext | undefined;

  before(async () => {
    ex = await startExplorer('diffuse-explorer-', (work) => trained(work, ['--train-steps', '4', '--workers', '1', '--base-channels', '8', '--res-blocks', '1', '--attention', 'none', '--conditional']));
    ({ checkpoint, server, context } = ex);
  });

  after(async () => stopExplorer(ex));

  async function openPage(): Promise<Page> {
    const page = await context!.newPage();
    page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
    await page.goto(server!.url);
    return page;
  }

  test('forward view: the slider shows x_t = qSample(x_0, t, ε) of the chosen image', async () => {
    const page = await openPage();
    assert.equal(await waitState(page, ['ready', 'error']), 'ready', `page error: ${await page.evaluate(() => window.explorer.error)}`);
    await page.waitForSelector('#thumbs button.selected');
    const samples = (await (await fetch(`${server!.url}api/samples`)).json()) as { images: { pixels: number[] }[] };
    assert.ok(samples.images.length >= 10, `server offers ${samples.images.length} data set images`);

    const S = 28;
    const clean = await canvasPixels(page, '#fwd-xt');
    const scale = clean.width / S;
    assert.equal(scale, 6);
    assert.deepEqual(cellGray(clean, 0, S, scale, 0), samples.images[0]!.pixels, 'at t = 0 x_t is the image itself');

    await setSlider(page, 300);
    const noisy = await canvasPixels(page, '#fwd-xt');
    const got = cellGray(noisy, 0, S, scale, 0);
    const changed = got.filter((v, i) => v !== samples.images[0]!.pixels[i]).length;
    assert.ok(changed > 0.5 * S * S, `slider moved: ${changed} of ${S * S} pixels changed`);
    // Same numbers as the library computes in Node: linear schedule, T = 1000, noise seed 0, step 300 = index 299.
    const x0 = Float32Array.from(samples.images[0]!.pixels, (p) => p / 127.5 - 1);
    const want = qSample(makeSchedule('linear', 1000), x0, 299, new Rng(0).normalArray(S * S)).map(toByte);
    const maxDiff = Math.max(...got.map((v, i) => Math.abs(v - want[i]!)));
    assert.ok(maxDiff <= 1, `x_t in the page matches qSample in Node (max pixel difference ${maxDiff})`);
    const abar = await page.textContent('#fwd-stat-abar');
    assert.equal(Number(abar), Number(makeSchedule('linear', 1000).alphaBar[299]!.toFixed(4)));

    // Another schedule changes x_t at the same step.
    await page.selectOption('#fwd-schedule', 'cosine');
    const cosine = cellGray(await canvasPixels(page, '#fwd-xt'), 0, S, scale, 0);
    assert.notDeepEqual(cosine, got, 'cosine schedule gives another x_t');
    assert.equal(await page.evaluate(() => window.explorer.error), null);

    // Your own image: a 56×40 RGB PNG of one colour, centre-cropped, resized to 28×28 and made gray.
    const png = encodePng({ width: 56, height: 40, channels: 3, data: new Uint8Array(56 * 40 * 3).map((_, i) => [200, 100, 50][i % 3]!) });
    await page.setInputFiles('#file', { name: 'mine.png', mimeType: 'image/png', buffer: Buffer.from(png) });
    await page.waitForFunction(() => document.querySelector('#thumbs button.selected') === null);
    const mine = cellGray(await canvasPixels(page, '#fwd-x0'), 0, S, scale, 0);
    const gray = 0.299 * 200 + 0.587 * 100 + 0.114 * 50;
    assert.ok(mine.every((v) => Math.abs(v - gray) <= 3), `dropped image shown as gray ${gray.toFixed(1)}: got ${Math.min(...mine)}..${Math.max(...mine)}`);
    await page.setInputFiles('#file', { name: 'broken.png', mimeType: 'image/png', buffer: Buffer.from('not a png') });
    await page.waitForSelector('#fwd-error:not([hidden])');
    assert.match((await page.textContent('#fwd-error')) ?? '', /image 'broken\.png': cannot decode the image/);

    // The same file chosen twice is loaded twice (after a data set image was picked in between).
    await page.click('#thumbs button:nth-child(2)');
    assert.notDeepEqual(cellGray(await canvasPixels(page, '#fwd-x0'), 0, S, scale, 0), mine);
    await page.setInputFiles('#file', { name: 'mine.png', mimeType: 'image/png', buffer: Buffer.from(png) });
    await page.waitForFunction(() => document.querySelector('#thumbs button.selected') === null);
    assert.deepEqual(cellGray(await canvasPixels(page, '#fwd-x0'), 0, S, scale, 0), mine, 'the same file, chosen again, is shown again');

    // A large photo of 1-pixel stripes is shrunk by area averaging: uniform mid-gray, no moiré.
    const side = 1450;
    const stripes = encodePng({ width: side, height: side, channels: 1, data: new Uint8Array(side * side).map((_, i) => ((i % side) % 2 === 0 ? 0 : 255)) });
    await page.setInputFiles('#file', { name: 'stripes.png', mimeType: 'image/png', buffer: Buffer.from(stripes) });
    await page.waitForFunction(() => document.querySelector('#thumbs button.selected') === null && window.explorer.error === null);
    let shrunk: number[] = [];
    for (let tries = 0; tries < 50; tries++) {
      shrunk = cellGray(await canvasPixels(page, '#fwd-x0'), 0, S, scale, 0);
      if (!shrunk.every((v, i) => v === mine[i])) break;
      await page.waitForTimeout(100);
    }
    const [lo, hi] = [Math.min(...shrunk), Math.max(...shrunk)];
    console.log(`${side}×${side} stripes shrunk to ${S}×${S}: pixels ${lo}..${hi} (area mean 127.5)`);
    assert.ok(lo >= 124 && hi <= 131, `stripes average to gray, no moiré: pixels ${lo}..${hi}`);
    await page.close();
  });

  test('reverse view: Stop aborts a generation after the step it is at, and the page can generate again', async () => {
    const page = await openPage();
    assert.equal(await waitState(page, ['ready', 'error']), 'ready', `page error: ${await page.evaluate(() => window.explorer.error)}`);
    await page.selectOption('#rev-sampler', 'ddim');
    await page.fill('#rev-steps', '10');
    await page.evaluate(() => { window.explorer.pauseAtStep = 3; });
    await page.click('#rev-generate');
    assert.equal(await waitState(page, ['paused', 'error']), 'paused');
    await page.click('#rev-stop');
    await page.evaluate(() => window.explorer.resume());
    assert.equal(await waitState(page, ['ready', 'done', 'error']), 'ready');
    assert.equal((await page.textContent('#rev-status'))?.trim(), 'stopped');
    assert.equal(await page.evaluate(() => window.explorer.step), 3, 'no step ran after Stop');
    assert.equal(await page.evaluate(() => window.explorer.error), null);
    await page.fill('#rev-steps', '2');
    await page.click('#rev-generate');
    assert.equal(await waitState(page, ['done', 'error']), 'done');
    assert.equal(await page.evaluate(() => window.explorer.step), 2);
    await page.close();
  });

  test('reverse view: a 10-step generation runs in the page and ends far from noise', async () => {
    const page = await openPage();
    assert.equal(await waitState(page, ['ready', 'error']), 'ready', `page error: ${await page.evaluate(() => window.explorer.error)}`);
    await page.selectOption('#rev-sampler', 'ddim');
    await page.fill('#rev-steps', '10');
    await page.fill('#rev-seed', '3');
    await page.click('#rev-generate');
    assert.equal(await waitState(page, ['done', 'error']), 'done', `page error: ${await page.evaluate(() => window.explorer.error)}`);
    const status = (await page.textContent('#rev-status')) ?? '';
    const backend = (await page.textContent('#rev-backend')) ?? '';
    console.log(`${status}\nbackend: ${backend}`);
    assert.match(status, /done: 8 images, 10 ddim steps .* ms\/step\) on onnxruntime-web (wasm|webgpu)/);
    assert.match(backend, /onnxruntime-web (wasm|webgpu)/);

    const S = 28;
    const n = 8;
    const px = await canvasPixels(page, '#rev-x');
    const scale = px.height / S;
    // The starting noise x_T of seed 3, drawn the same way.
    const xT = new Rng(3).normalArray(n * S * S);
    let meanAbsDiff = 0;
    const finals: number[] = [];
    const noises: number[] = [];
    for (let k = 0; k < n; k++) {
      const cell = cellGray(px, k, S, scale, 4);
      const noise = Array.from(xT.subarray(k * S * S, (k + 1) * S * S), toByte);
      meanAbsDiff += cell.reduce((a, v, i) => a + Math.abs(v - noise[i]!), 0) / (n * S * S);
      finals.push(...cell);
      noises.push(...noise);
    }
    const f = stats(finals);
    const z = stats(noises);
    console.log(`final images: mean ${f.mean.toFixed(1)} std ${f.std.toFixed(1)} saturated ${(100 * f.saturated).toFixed(0)}%; ` +
      `starting noise: mean ${z.mean.toFixed(1)} std ${z.std.toFixed(1)} saturated ${(100 * z.saturated).toFixed(0)}%; mean |final − noise| ${meanAbsDiff.toFixed(1)}`);
    assert.ok(meanAbsDiff > 30, `final images differ from the starting noise (mean abs pixel difference ${meanAbsDiff.toFixed(1)})`);
    assert.ok(Math.abs(f.std - z.std) > 10 || Math.abs(f.mean - z.mean) > 10 || Math.abs(f.saturated - z.saturated) > 0.2,
      'final pixel statistics differ from pure noise');

    // The page's result is the library's generate() (same seed, same recipe), here on onnxruntime-node.
    if (await ortAvailable()) {
      const images = await page.evaluate(() => window.explorer.lastImages);
      assert.ok(images !== null && images.length === n * S * S);
      const { config, params } = await loadModelWeights(checkpoint, 'ema');
      const fn = await createOrtModelFn(exportUNetToOnnx(config.model, params), { threads: 1 });
      try {
        const classes = Int32Array.from({ length: n }, (_, i) => i % 10);
        const ref = await generate(fn, {
          schedule: 'linear', timesteps: 1000, prediction: 'epsilon', imageSize: S, channels: 1, sampler: 'ddim', steps: 10, n, seed: 3,
          condition: { cond: classes, nullCond: Int32Array.of(10), guidance: 2 },
        });
        const d = Math.max(...images.map((v, i) => Math.abs(v - ref.images[i]!)));
        console.log(`page vs generate() on onnxruntime-node: max abs difference ${d.toExponential(2)}`);
        assert.ok(d < 1e-3, `browser generation equals Node generate() (max abs difference ${d})`);
      } finally {
        await fn.dispose();
      }
    }
    await page.close();
  });

  test('a diffusers pipeline folder (test/fixtures/diffusers/ddpm, RGB 8×8) generates in the page as loadPipeline + generate() in Node', async () => {
    const dir = join(ROOT, 'test', 'fixtures', 'diffusers', 'ddpm');
    const served = await serve(dir);
    const exited = new Promise((ok) => served.proc.once('exit', ok));
    try {
      const page = await context!.newPage();
      await page.goto(served.url);
      assert.equal(await waitState(page, ['ready', 'error']), 'ready', `page error: ${await page.evaluate(() => window.explorer.error)}`);
      await page.selectOption('#rev-sampler', 'ddim');
      await page.fill('#rev-steps', '3');
      await page.fill('#rev-seed', '5');
      await page.click('#rev-generate');
      assert.equal(await waitState(page, ['done', 'error']), 'done', `page error: ${await page.evaluate(() => window.explorer.error)}`);
      const images = await page.evaluate(() => window.explorer.lastImages);
      assert.ok(images !== null && images.length % (8 * 8 * 3) === 0);
      if (await ortAvailable()) {
        const { loadPipeline, generateWith } = await import('../../src/pipeline.js');
        const pipe = await loadPipeline(dir, { engine: 'onnx', threads: 1 });
        try {
          const ref = await generateWith(pipe, { sampler: 'ddim', steps: 3, n: images.length / 192, seed: 5 });
          const d = Math.max(...images.map((v, i) => Math.abs(v - ref.images[i]!)));
          assert.ok(d < 1e-3, `page vs Node on the diffusers folder: max abs difference ${d}`);
        } finally {
          await pipe.dispose();
        }
      }
      await page.close();
    } finally {
      served.proc.kill('SIGTERM');
      await exited;
    }
  });

  test('a failed Generate shows its message next to the button and hides the old images', async () => {
    const page = await openPage();
    assert.equal(await waitState(page, ['ready', 'error']), 'ready');
    await page.fill('#rev-steps', '2');
    await page.click('#rev-generate');
    assert.equal(await waitState(page, ['done', 'error']), 'done');
    await page.fill('#rev-steps', '0');
    await page.click('#rev-generate');
    assert.equal(await waitState(page, ['done', 'error']), 'error');
    assert.ok(await page.isVisible('#rev-error'));
    assert.match((await page.textContent('#rev-error')) ?? '', /generation: steps must be an integer in 1\.\.1000, got '0'/);
    const button = (await page.locator('#rev-generate').boundingBox())!;
    const box = (await page.locator('#rev-error').boundingBox())!;
    const viewport = page.viewportSize()!;
    console.log(`Generate at y ${button.y.toFixed(0)}, its error at y ${box.y.toFixed(0)} (viewport ${viewport.height} high)`);
    assert.ok(box.y > button.y && box.y - (button.y + button.height) < 80, 'the error is just below the button');
    assert.ok(await page.locator('#rev-error').evaluate((e) => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; }), 'the error is on screen while the button is');
    assert.equal((await page.textContent('#rev-status'))?.trim(), 'failed (above)');
    assert.equal(await page.isVisible('#rev-x'), false, 'the previous images are not shown as if they were this run\'s');
    await page.fill('#rev-steps', '2');
    await page.click('#rev-generate');
    assert.equal(await waitState(page, ['done', 'error']), 'done');
    assert.equal(await page.isVisible('#rev-error'), false, 'a good run clears the error');
    assert.ok(await page.isVisible('#rev-x'));
    await page.close();
  });

  test('WebGPU chosen where there is no GPU: the page runs on wasm and says so', async () => {
    const page = await openPage();
    assert.equal(await waitState(page, ['ready', 'error']), 'ready');
    const hasGpu = await page.evaluate(async () => {
      const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
      return gpu !== undefined && (await gpu.requestAdapter().catch(() => null)) !== null;
    });
    if (hasGpu) {
      console.log('this chromium has a WebGPU adapter: the fallback is not exercised');
      await page.close();
      return;
    }
    await page.selectOption('#rev-backend-choice', 'webgpu');
    await page.waitForFunction(() => !(document.getElementById('rev-note') as HTMLElement).hidden);
    assert.match((await page.textContent('#rev-note')) ?? '', /WebGPU is not usable in this browser .*running on wasm instead/);
    assert.equal(await waitState(page, ['ready', 'error']), 'ready');
    assert.equal(await page.evaluate(() => window.explorer.backend), 'wasm');
    assert.equal(await page.isVisible('#rev-error'), false, 'no error');
    await page.fill('#rev-steps', '2');
    await page.click('#rev-generate');
    assert.equal(await waitState(page, ['done', 'error']), 'done', 'Generate works after the fallback');
    await page.close();
  });

  test('"mixed" classes cycle through every class across generations', async () => {
    const page = await openPage();
    assert.equal(await waitState(page, ['ready', 'error']), 'ready');
    await page.selectOption('#rev-class', 'mixed');
    await page.fill('#rev-steps', '1');
    await page.fill('#rev-n', '4');
    const seen: number[][] = [];
    for (let k = 0; k < 3; k++) {
      await page.click('#rev-generate');
      assert.equal(await waitState(page, ['done', 'error']), 'done');
      seen.push((await page.evaluate(() => window.explorer.lastRun?.classes)) ?? []);
    }
    assert.deepEqual(seen, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]);
    await page.close();
  });

  test('layout: 32 images fit the card, and a 390 px window does not scroll sideways', async () => {
    for (const width of [1280, 390]) {
      const page = await context!.newPage();
      await page.setViewportSize({ width, height: 844 });
      await page.goto(server!.url);
      assert.equal(await waitState(page, ['ready', 'error']), 'ready');
      await page.fill('#rev-steps', '1');
      await page.fill('#rev-n', '32');
      await page.click('#rev-generate');
      assert.equal(await waitState(page, ['done', 'error']), 'done');
      const m = await page.evaluate(() => {
        const card = document.getElementById('reverse')!.getBoundingClientRect();
        const canvas = document.getElementById('rev-x0')!.getBoundingClientRect();
        return { scrollWidth: document.documentElement.scrollWidth, cardRight: card.right, canvasRight: canvas.right, canvasWidth: canvas.width };
      });
      console.log(`${width} px: page ${m.scrollWidth} px wide, card right edge ${m.cardRight.toFixed(0)}, images' right edge ${m.canvasRight.toFixed(0)}`);
      assert.ok(m.scrollWidth <= width, `no sideways scrolling at ${width} px (page is ${m.scrollWidth} px wide)`);
      assert.ok(m.canvasRight <= m.cardRight, `the 32 images fit the card at ${width} px`);
      const px = await canvasPixels(page, '#rev-x0');
      assert.ok(px.height > 28 * 2, 'the images wrap onto several rows');
      await page.close();
    }
  });

  test('a model that cannot load, or has the wrong input size, shows an error in the page', async () => {
    // 1. Not an ONNX file.
    let page = await context!.newPage();
    await page.route('**/api/model.onnx', (route) => route.fulfill({ status: 200, contentType: 'application/octet-stream', body: Buffer.from('this is not an onnx model') }));
    await page.goto(server!.url);
    assert.equal(await waitState(page, ['ready', 'error']), 'error');
    assert.ok(await page.isVisible('#rev-error'), 'the error box of the reverse view is shown');
    const text1 = (await page.textContent('#rev-error')) ?? '';
    console.log(`shown: ${text1}`);
    assert.match(text1, /model/i);
    await page.close();

    // 2. A valid U-Net for 16×16 images where the config says 28×28.
    const cfg = defaultUNetConfig({ imageSize: 16, inChannels: 1, outChannels: 1, baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [], groups: 4, numClasses: 10 });
    const params: Weights = {};
    for (const s of unetParamSpecs(cfg)) params[s.name] = { shape: [...s.shape], data: initParam(s, 0) };
    const small = exportUNetToOnnx(cfg, params);
    page = await context!.newPage();
    await page.route('**/api/model.onnx', (route) => route.fulfill({ status: 200, contentType: 'application/octet-stream', body: Buffer.from(small) }));
    await page.goto(server!.url);
    assert.equal(await waitState(page, ['ready', 'error']), 'error');
    const text2 = (await page.textContent('#rev-error')) ?? '';
    console.log(`shown: ${text2}`);
    assert.match(text2, /wrong input size: the ONNX model takes 16×16×1 images but its config says 28×28×1/);
    // The forward view still works without a model.
    await setSlider(page, 500);
    assert.match((await page.textContent('#fwd-t-label')) ?? '', /500 \/ 1000/);
    await page.close();
  });
});

describe('explorer in chromium, text model', { skip }, () => {
  let ex: Explorer | undefined;
  let checkpoint = '';
  let server: Served | undefined;
  let context: BrowserContext | undefined;

  before(async () => {
    ex = await startExplorer('diffuse-explorer-text-', (work) => trained(work, ['--train-steps', '3', '--workers', '1', '--base-channels', '8', '--attention', 'none', '--text', '--text-dim', '16']));
    ({ checkpoint, server, context } = ex);
  });

  after(async () => stopExplorer(ex));

  test('a prompt steers generation in the page exactly as promptCondition + generate() in Node; unknown words show an error', async () => {
    const page = await context!.newPage();
    page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
    await page.goto(server!.url);
    assert.equal(await waitState(page, ['ready', 'error']), 'ready', `page error: ${await page.evaluate(() => window.explorer.error)}`);
    assert.ok(await page.isVisible('#rev-prompt'), 'the prompt box is shown for a text model');
    assert.match((await page.textContent('#model-info')) ?? '', /text prompts/);
    await page.selectOption('#rev-sampler', 'ddim');
    await page.fill('#rev-steps', '5');
    await page.fill('#rev-n', '4');
    await page.fill('#rev-seed', '2');
    await page.fill('#rev-guidance', '3');
    await page.fill('#rev-prompt', 'a photo of a seven');
    await page.click('#rev-generate');
    assert.equal(await waitState(page, ['done', 'error']), 'done', `page error: ${await page.evaluate(() => window.explorer.error)}`);
    assert.match((await page.textContent('#rev-classes')) ?? '', /prompt "a photo of a seven", guidance w = 3/);
    const images = await page.evaluate(() => window.explorer.lastImages);
    const { config, params } = await loadModelWeights(checkpoint, 'ema');
    if (await ortAvailable()) {
      const fn = await createOrtModelFn(exportUNetToOnnx(config.model, params), { threads: 1 });
      try {
        const ref = await generate(fn, {
          schedule: 'linear', timesteps: 1000, prediction: 'epsilon', imageSize: 28, channels: 1, sampler: 'ddim', steps: 5, n: 4, seed: 2,
          condition: promptCondition(config, new Array<string>(4).fill('a photo of a seven'), 3),
        });
        const d = Math.max(...images!.map((v, i) => Math.abs(v - ref.images[i]!)));
        assert.ok(d < 1e-3, `page equals Node generate() with the prompt (max abs difference ${d})`);
        const other = await generate(fn, {
          schedule: 'linear', timesteps: 1000, prediction: 'epsilon', imageSize: 28, channels: 1, sampler: 'ddim', steps: 5, n: 4, seed: 2,
          condition: promptCondition(config, new Array<string>(4).fill('zero'), 3),
        });
        assert.ok(Math.max(...images!.map((v, i) => Math.abs(v - other.images[i]!))) > 1e-3, 'another prompt gives other images');
      } finally {
        await fn.dispose();
      }
    }
    await page.fill('#rev-prompt', 'a purple seven');
    await page.click('#rev-generate');
    assert.equal(await waitState(page, ['done', 'error']), 'error');
    assert.match((await page.textContent('#rev-error')) ?? '', /unknown word 'purple' in prompt 'a purple seven'; (closest known words: |no known word is close)/);
    await page.close();
  });
});

/** The explorer of a describe block: started before its tests, stopped after them. */
function explorerFor(prefix: string, make: (work: string) => Promise<string>): () => Explorer {
  let ex: Explorer | undefined;
  before(async () => { ex = await startExplorer(prefix, make); });
  after(async () => stopExplorer(ex));
  return () => ex!;
}

describe('explorer in chromium, latent model', { skip }, () => {
  // 8x8x3 images through 4x4x4 latents (f = 2), random weights, prompt-conditioned on the squares' captions
  const ex = explorerFor('diffuse-explorer-latent-', async (work) => {
    const dir = join(work, 'latent');
    await randomLatentCheckpoint(dir, { text: true });
    return dir;
  });

  async function openPage(width?: number): Promise<Page> {
    const page = await ex().context.newPage();
    page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
    if (width !== undefined) await page.setViewportSize({ width, height: 844 });
    await page.goto(ex().server.url);
    assert.equal(await waitState(page, ['ready', 'error']), 'ready', `page error: ${await page.evaluate(() => window.explorer.error)}`);
    return page;
  }

  test('the server serves it, and the page generates through its decoder: latent channels every step, decoded x̂0 as it goes, the decoded images at the end, equal to Node\'s pipeline', async () => {
    const page = await openPage();
    assert.match((await page.textContent('#model-info')) ?? '', /8×8×3 · latent diffusion on 4×4×4 latents \(scaling factor 0\.5000\)/);
    assert.ok(await page.isVisible('#rev-prompt'), 'the prompt box is shown for a text model');
    assert.equal(await page.isVisible('#rev-x'), false, 'no pixel x_t row for a latent model');
    assert.equal(await page.locator('#rev-latent canvas').count(), 4, 'one canvas per latent channel');
    const [S, C, s, L, n, steps] = [8, 3, 4, 4, 3, 6];
    await page.selectOption('#rev-sampler', 'ddim');
    await page.fill('#rev-steps', String(steps));
    await page.fill('#rev-n', String(n));
    await page.fill('#rev-seed', '4');
    await page.fill('#rev-guidance', '2');
    await page.fill('#rev-prompt', 'red square');
    await page.evaluate(() => { window.explorer.pauseAtStep = 3; });
    await page.click('#rev-generate');
    assert.equal(await waitState(page, ['paused', 'error']), 'paused', `page error: ${await page.evaluate(() => window.explorer.error)}`);

    // Paused at step 3: the 4 channels of the current latent of image 1, each normalised to 0..255, drawn and unlike each other.
    const channels: number[][] = [];
    for (let k = 0; k < L; k++) {
      const px = await canvasPixels(page, `#rev-z${k}`);
      assert.equal(px.width, s * 16, `channel ${k + 1} drawn at 16x`);
      const grey = cellGray(px, 0, s, 16, 0);
      assert.ok(Math.min(...grey) <= 1 && Math.max(...grey) >= 254, `channel ${k + 1} spans black to white: ${Math.min(...grey)}..${Math.max(...grey)}`);
      channels.push(grey);
      assert.match((await page.locator('#rev-latent figcaption').nth(k).textContent()) ?? '', new RegExp(`^channel ${k + 1}\\n-?[\\d.e+-]+ … -?[\\d.e+-]+$`));
    }
    assert.equal(new Set(channels.map((c) => c.join(','))).size, L, 'the channels differ');
    assert.deepEqual(await page.evaluate(() => window.explorer.decodedSteps.at(-1)), 3, 'the paused step\'s x̂0 is decoded');
    assert.match((await page.textContent('#rev-decoded-note')) ?? '', /\(step 3\)/);
    const decoded = await canvasPixels(page, '#rev-decoded');
    assert.equal(decoded.width, S * 16, 'the decoded x̂0 is an 8x8 image at 16x');
    assert.ok(new Set(cellGray(decoded, 0, S, 16, 0, 3)).size > 3, 'the decoded x̂0 is not blank');
    await page.evaluate(() => window.explorer.resume());
    assert.equal(await waitState(page, ['done', 'error']), 'done', `page error: ${await page.evaluate(() => window.explorer.error)}`);

    const status = (await page.textContent('#rev-status')) ?? '';
    console.log(status);
    assert.match(status, new RegExp(`done: ${n} images, ${steps} ddim steps .* on onnxruntime-web (wasm|webgpu) · x̂0 decoded at (\\d+) of ${steps} steps`));
    const decodedSteps = await page.evaluate(() => window.explorer.decodedSteps);
    assert.ok(decodedSteps.length >= 2 && decodedSteps.length <= steps && decodedSteps.every((k, i) => k >= 1 && k <= steps && (i === 0 || k > decodedSteps[i - 1]!)), `decoded at steps ${decodedSteps.join(', ')}`);
    // The final images have the decoder's size, and the page shows them.
    assert.deepEqual(await page.evaluate(() => window.explorer.lastShape), [n, S, S, C]);
    const images = (await page.evaluate(() => window.explorer.lastImages))!;
    assert.equal(images.length, n * S * S * C);
    const finals = await canvasPixels(page, '#rev-x0');
    const scale = finals.height / S;
    assert.equal(scale, 14);
    for (let k = 0; k < n; k++) {
      const want = images.slice(k * S * S * C, (k + 1) * S * S * C).map(toByte);
      const got = cellGray(finals, k, S, scale, 4, 3);
      assert.ok(got.every((v, i) => Math.abs(v - want[i]!) <= 1), `image ${k + 1} is drawn as generated`);
    }
    assert.deepEqual(cellGray(await canvasPixels(page, '#rev-decoded'), 0, S, 16, 0, 3), cellGray(finals, 0, S, scale, 4, 3), 'the decoded view ends on the final image 1');
    assert.equal((await page.textContent('#rev-decoded-note'))?.trim(), '(the final image)');

    // The same generation in Node: loadPipeline decodes with the same stage.
    if (await ortAvailable()) {
      const pipe = await loadPipeline(ex().checkpoint, { engine: 'onnx', threads: 1 });
      try {
        const ref = await generateWith(pipe, { sampler: 'ddim', steps, n, seed: 4, condition: promptCondition(pipe.config, new Array<string>(n).fill('red square'), 2) });
        const d = Math.max(...images.map((v, i) => Math.abs(v - ref.images[i]!)));
        console.log(`latent page vs generateWith() on onnxruntime-node: max abs difference ${d.toExponential(2)}`);
        assert.ok(d < 1e-3, `the page's decoded images equal Node's (max abs difference ${d})`);
      } finally {
        await pipe.dispose();
      }
    }
    await page.close();
  });

  test('a 390 px window does not scroll sideways, and WebGPU chosen without a GPU runs both networks on wasm', async () => {
    const page = await openPage(390);
    await page.fill('#rev-steps', '2');
    await page.fill('#rev-n', '8');
    const hasGpu = await page.evaluate(async () => {
      const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
      return gpu !== undefined && (await gpu.requestAdapter().catch(() => null)) !== null;
    });
    if (!hasGpu) {
      await page.selectOption('#rev-backend-choice', 'webgpu');
      await page.waitForFunction(() => !(document.getElementById('rev-note') as HTMLElement).hidden);
      assert.equal(await waitState(page, ['ready', 'error']), 'ready');
      assert.match((await page.textContent('#rev-backend')) ?? '', /^onnxruntime-web wasm/);
    }
    await page.click('#rev-generate');
    assert.equal(await waitState(page, ['done', 'error']), 'done', `page error: ${await page.evaluate(() => window.explorer.error)}`);
    const m = await page.evaluate(() => {
      const card = document.getElementById('reverse')!.getBoundingClientRect();
      const right = Math.max(...['rev-latent', 'rev-decoded', 'rev-x0'].map((id) => document.getElementById(id)!.getBoundingClientRect().right));
      return { scrollWidth: document.documentElement.scrollWidth, cardRight: card.right, right };
    });
    assert.ok(m.scrollWidth <= 390, `no sideways scrolling at 390 px (page is ${m.scrollWidth} px wide)`);
    assert.ok(m.right <= m.cardRight, 'the latent channels, the decoded image and the images fit the card');
    await page.close();
  });
});
