/**
 * Screenshots of the explorer for the README: the forward view (an MNIST
 * digit part-way noised) and the reverse view (a generation caught mid-way,
 * x_t above the predicted clean images; for a latent model, the latent's
 * channels and the decoded x̂_0 of the first image). Needs the built page
 * (npm run build) and chromium.
 *
 *   node dist/bench/explorer-screenshots.js [--checkpoint DIR] [--out docs] [--name explorer] [--step 300]
 *       [--sampler ddim] [--sampling-steps 25] [--pause-at 15] [--seed 0] [--prompt TEXT] [--chromium /usr/bin/chromium]
 *
 * Default checkpoint: the shipped model (models/mnist). Writes
 * <out>/<name>-forward.png and <out>/<name>-reverse.png.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { benchOptions } from './options.js';
import { shippedModelDir } from '../src/shipped.js';
import { startExplorerServer } from '../src/web/server.js';
import type {} from '../src/web/explorer-handle.js';


const { values: o } = benchOptions('explorer-screenshots', {
  checkpoint: { type: 'string', help: 'the model', defaultText: 'models/mnist' },
  out: { type: 'string', default: 'docs', help: 'output folder' },
  name: { type: 'string', default: 'explorer', help: 'file names: NAME-forward.png and NAME-reverse.png' },
  prompt: { type: 'string', help: 'reverse view: the prompt of a text model', defaultText: 'none' },
  step: { type: 'int', min: 0, max: 100000, default: 300, help: 'forward view: the step t shown' },
  sampler: { type: 'choice', choices: ['ddim', 'ddpm', 'dpm-solver'], default: 'ddim', help: 'reverse view: the sampler' },
  'sampling-steps': { type: 'int', min: 1, max: 1000, default: 25, aliases: ['steps'], help: 'reverse view: sampling steps' },
  'pause-at': { type: 'int', min: 0, max: 1000, default: 15, help: 'reverse view: the step caught' },
  seed: { type: 'int', min: 0, max: 2 ** 32 - 1, default: 0, help: 'seed' },
  chromium: { type: 'string', default: '/usr/bin/chromium', help: 'the browser' },
} as const);
const checkpoint = o.checkpoint ?? shippedModelDir();
const { out, step, sampler, seed } = o;
const forwardPng = join(out, `${o.name}-forward.png`);
const reversePng = join(out, `${o.name}-reverse.png`);
const steps = o['sampling-steps'];
const pauseAt = o['pause-at'];
const executablePath = o.chromium;

const srv = await startExplorerServer({ checkpoint, port: 0 });
const profile = mkdtempSync(join(tmpdir(), 'diffuse-shots-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1100, height: 900 },
  deviceScaleFactor: 1,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
try {
  const page = await context.newPage();
  await page.goto(srv.url.replace('localhost', '127.0.0.1'));
  await page.waitForFunction(() => ['ready', 'error'].includes(window.explorer?.state ?? ''), null, { timeout: 120_000 });
  const err = await page.evaluate(() => window.explorer.error);
  if (err !== null) throw new Error(`the page shows an error: ${err}`);
  mkdirSync(out, { recursive: true });

  // Forward: a digit other than the first (a 3 reads well), noised to `step`.
  await page.waitForSelector('#thumbs button, #thumbs span');
  const thumbs = await page.$$('#thumbs button');
  await (thumbs[3] ?? thumbs[0])?.click();
  await page.$eval('#fwd-t', (e, v) => {
    const input = e as HTMLInputElement;
    input.value = String(v);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  }, step);
  await (await page.$('#forward'))!.screenshot({ path: forwardPng });

  // Reverse: pause after `pauseAt` of `steps` steps, while x_t is still noisy and x̂_0 already shows digits.
  await page.selectOption('#rev-sampler', sampler);
  await page.fill('#rev-steps', String(steps));
  await page.fill('#rev-seed', String(seed));
  if (o.prompt !== undefined) await page.fill('#rev-prompt', o.prompt);
  await page.evaluate((k) => { window.explorer.pauseAtStep = k; }, Math.min(pauseAt, steps));
  await page.click('#rev-generate');
  await page.waitForFunction(() => ['paused', 'done', 'error'].includes(window.explorer.state), null, { timeout: 300_000 });
  await page.evaluate(() => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok))));
  await (await page.$('#reverse'))!.screenshot({ path: reversePng });
  await page.evaluate(() => window.explorer.resume());
  await page.waitForFunction(() => ['done', 'error'].includes(window.explorer.state), null, { timeout: 300_000 });
  const status = await page.textContent('#rev-status');
  console.log(`wrote ${forwardPng} and ${reversePng} (checkpoint ${checkpoint}); ${status ?? ''}`);
} finally {
  await context.close();
  await srv.close();
  rmSync(profile, { recursive: true, force: true });
}
