import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readImage, writePng } from '../../src/io/image.js';
import { forwardStrip, stripSteps } from '../../src/diffusion/strip.js';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
const dir = await mkdtemp(join(tmpdir(), 'diffuse-noise-'));
const run = (...args: string[]) => spawnSync(process.execPath, [main, 'noise', ...args], { encoding: 'utf8' });

// a 40×30 RGB gradient
const w = 40; const h = 30;
const data = new Uint8Array(w * h * 3);
for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) { data[(y * w + x) * 3] = x * 6; data[(y * w + x) * 3 + 1] = y * 8; data[(y * w + x) * 3 + 2] = 128; }
const input = join(dir, 'in.png');
await writePng(input, { data, width: w, height: h, channels: 3 });

test('diffuse noise writes a strip of frames from clean to noise', async () => {
  const out = join(dir, 'strip.png');
  const r = run(input, '--steps', '200', '--frames', '5', '--size', '16', '--seed', '3', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  const img = await readImage(out);
  assert.equal(img.width, 5 * (16 + 2) + 2);
  assert.equal(img.height, 16 + 4);
  // frame 0 is the clean (cropped, resized) image: smooth; the last is noise: rough
  const roughness = (k: number): number => {
    let s = 0;
    const ox = 2 + k * 18;
    for (let y = 2; y < 18; y++) for (let x = ox; x < ox + 15; x++) s += Math.abs(img.data[(y * img.width + x) * 3]! - img.data[(y * img.width + x + 1) * 3]!);
    return s / (16 * 15);
  };
  assert.ok(roughness(0) < 15, `clean frame roughness ${roughness(0)}`);
  assert.ok(roughness(4) > 40, `noise frame roughness ${roughness(4)}`);
  // same seed → same file content; different seed → different
  const again = join(dir, 'again.png');
  assert.equal(run(input, '--steps', '200', '--frames', '5', '--size', '16', '--seed', '3', '--out', again).status, 0);
  assert.deepEqual((await readImage(again)).data, img.data);
  const other = join(dir, 'other.png');
  assert.equal(run(input, '--steps', '200', '--frames', '5', '--size', '16', '--seed', '4', '--out', other).status, 0);
  assert.notDeepEqual((await readImage(other)).data, img.data);
});

test('missing, non-image files and bad flags: one-line error naming the problem, exit code 1', async () => {
  const missing = run(join(dir, 'missing.png'), '--out', join(dir, 'x.png'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /missing\.png/);
  assert.equal(missing.stderr.trim().split('\n').length, 1);
  const txt = join(dir, 'notes.png');
  await writeFile(txt, 'not an image at all');
  const bad = run(txt);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /notes\.png/);
  const flag = run(input, '--schedule', 'quadratic');
  assert.equal(flag.status, 1);
  assert.match(flag.stderr, /--schedule/);
  assert.equal(run(input, '--stepz', '10').status, 1);
  assert.equal(run(input, '--steps', '5').status, 1);
});

test('--help prints the options', () => {
  const r = run('--help');
  assert.equal(r.status, 0);
  for (const opt of ['--steps', '--schedule', '--frames', '--size', '--seed', '--out']) assert.ok(r.stdout.includes(opt), opt);
});

test('forwardStrip library: steps evenly spaced, frame 0 equals the resized clean image', () => {
  assert.deepEqual(stripSteps(1000, 5), [0, 250, 500, 750, 1000]);
  const gray = { data: new Uint8Array(8 * 8).fill(200), width: 8, height: 8, channels: 1 as const };
  const s = forwardStrip(gray, { steps: 100, frames: 3, size: 8, pad: 0 });
  assert.equal(s.image.channels, 1);
  assert.equal(s.image.width, 24);
  for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) assert.equal(s.image.data[y * 24 + x], 200);
});
