/**
 * First load of the explorer as a user meets it: `diffuse serve` started
 * fresh, headless chromium with an empty profile opens the page and waits
 * until the model is loaded and the page is ready to generate (cold load);
 * then the same browser reloads it (warm: what its cache keeps). Prints the
 * time to ready and the bytes the browser received, per load, for each
 * network speed asked for (--mbps, emulated by chromium; 0 = no limit).
 *
 *   node dist/bench/first-load.js [--cli dist/src/cli/main.js] [--checkpoint mnist] [--mbps 0,100] [--runs 2]
 *
 * --cli runs another build of the CLI (e.g. the main branch's, to compare);
 * its server must print its address as `diffuse serve` does.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { benchOptions } from './options.js';
import type {} from '../src/web/explorer-handle.js';

const { values: o } = benchOptions('first-load', {
  cli: { type: 'string', default: 'dist/src/cli/main.js', help: 'the diffuse CLI to serve with' },
  checkpoint: { type: 'string', default: 'mnist', help: 'the model' },
  mbps: { type: 'string', default: '0,100', help: 'comma-separated download speeds in Mbit/s to emulate (0 = unthrottled)' },
  runs: { type: 'int', min: 1, max: 10, default: 2, help: 'cold+warm load pairs per speed (each with a fresh server and profile); the median is printed' },
  chromium: { type: 'string', default: '/usr/bin/chromium', help: 'the browser' },
} as const);
const speeds = o.mbps.split(',').map(Number);
if (speeds.some((s) => !Number.isFinite(s) || s < 0)) throw new Error(`--mbps: numbers ≥ 0, got '${o.mbps}'`);

interface Load { ms: number; bytes: number }

function serve(): Promise<{ url: string; stop(): Promise<void> }> {
  const proc = spawn(process.execPath, [resolve(o.cli), 'serve', '--checkpoint', o.checkpoint, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((ok, fail) => {
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /http:\/\/localhost:(\d+)\//.exec(out);
      if (m) ok({ url: `http://127.0.0.1:${m[1]}/`, stop: () => new Promise((done) => { proc.once('exit', () => done()); proc.kill('SIGTERM'); }) });
    });
    proc.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    proc.on('exit', (code) => fail(new Error(`serve exited with ${code}: ${out}`)));
  });
}

async function timedLoad(page: Page, url: string, reload: boolean): Promise<Load> {
  const t0 = Date.now();
  if (reload) await page.reload();
  else await page.goto(url);
  await page.waitForFunction(() => ['ready', 'error'].includes(window.explorer?.state ?? ''), null, { timeout: 300_000, polling: 20 });
  const ms = Date.now() - t0;
  const err = await page.evaluate(() => window.explorer.error);
  if (err !== null) throw new Error(`the page shows an error: ${err}`);
  const bytes = await page.evaluate(() => (performance.getEntriesByType('navigation') as PerformanceResourceTiming[])
    .concat(performance.getEntriesByType('resource') as PerformanceResourceTiming[])
    .reduce((a, e) => a + e.transferSize, 0));
  return { ms, bytes };
}

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

console.log(`first load of the explorer (${o.cli}, model ${o.checkpoint}), median of ${o.runs}`);
for (const mbps of speeds) {
  const cold: Load[] = [];
  const warm: Load[] = [];
  for (let r = 0; r < o.runs; r++) {
    const srv = await serve();
    const profile = mkdtempSync(join(tmpdir(), 'diffuse-first-load-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: o.chromium,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    });
    try {
      const page = await context.newPage();
      if (mbps > 0) {
        const cdp = await context.newCDPSession(page);
        await cdp.send('Network.enable');
        await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: (mbps * 1e6) / 8, uploadThroughput: (mbps * 1e6) / 8 });
      }
      cold.push(await timedLoad(page, srv.url, false));
      warm.push(await timedLoad(page, srv.url, true));
    } finally {
      await context.close();
      await srv.stop();
      rmSync(profile, { recursive: true, force: true });
    }
  }
  const fmt = (l: Load[]): string => `${(median(l.map((x) => x.ms)) / 1000).toFixed(2)} s to ready, ${(median(l.map((x) => x.bytes)) / 2 ** 20).toFixed(2)} MiB received`;
  console.log(`${mbps === 0 ? 'unthrottled' : `${mbps} Mbit/s, 20 ms latency`}: cold ${fmt(cold)}; warm reload ${fmt(warm)}`);
}
