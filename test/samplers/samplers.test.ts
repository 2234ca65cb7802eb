import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSchedule } from '../../src/schedule.js';
import { gaussianOracle } from '../../src/diffusion/gaussian-oracle.js';
import type { Shape4 } from '../../src/diffusion/types.js';
import { createSampler } from '../../src/samplers/factory.js';
import { DdpmSampler } from '../../src/samplers/ddpm.js';
import { DdimSampler } from '../../src/samplers/ddim.js';
import { ddimInvert, sample } from '../../src/samplers/loop.js';
import { clipX0 } from '../../src/samplers/types.js';
import { spacedTimesteps } from '../../src/samplers/spacing.js';
import { Rng } from '../../src/rng.js';
import { DiffuseError } from '../../src/errors.js';

const schedule = makeSchedule('linear', 1000);

test('spacedTimesteps: n descending unique indices from T−1 to 0', () => {
  for (const n of [1, 2, 10, 50, 999, 1000]) {
    const ts = spacedTimesteps(1000, n);
    assert.equal(ts.length, n);
    assert.equal(ts[0], 999);
    if (n > 1) assert.equal(ts[n - 1], 0);
    for (let i = 1; i < n; i++) assert.ok(ts[i]! < ts[i - 1]!);
  }
  assert.throws(() => spacedTimesteps(1000, 0), DiffuseError);
  assert.throws(() => spacedTimesteps(1000, 1001), /\[1, 1000\]/);
});

test('DDPM respacing keeps ᾱ on the kept steps (improved-diffusion)', () => {
  const s = new DdpmSampler({ schedule, prediction: 'epsilon' });
  s.setTimesteps(25);
  const asc = [...s.timesteps].reverse();
  let prod = 1;
  // reconstruct the respaced betas as the sampler defines them and check ᾱ' = ᾱ on the subset
  for (let i = 0; i < asc.length; i++) {
    const beta = 1 - schedule.alphaBar[asc[i]!]! / (i === 0 ? 1 : schedule.alphaBar[asc[i - 1]!]!);
    prod *= 1 - beta;
    assert.ok(Math.abs(prod - schedule.alphaBar[asc[i]!]!) < 1e-12);
  }
  // the step on the full chain equals DDPM's posterior: at t=0 it returns μ̃_0 = x̂_0 with no noise
  const full = new DdpmSampler({ schedule, prediction: 'x0' });
  full.setTimesteps(1000);
  const x0 = Float32Array.of(0.3, -0.2);
  const r = full.step(x0, 0, Float32Array.of(5, 5), new Rng(0));
  assert.deepEqual(r.prev, x0);
});

test('DDIM eta=0 is deterministic (rng-independent); eta=1 is not', async () => {
  const model = gaussianOracle({ schedule, prediction: 'epsilon', mean: 0, std: 0.5 });
  const shape: Shape4 = [16, 1, 1, 1];
  const xT = new Rng(1).normalArray(16);
  const a = await sample(model, new DdimSampler({ schedule, prediction: 'epsilon', eta: 0 }), shape, { rng: new Rng(2), steps: 20, xT });
  const b = await sample(model, new DdimSampler({ schedule, prediction: 'epsilon', eta: 0 }), shape, { rng: new Rng(3), steps: 20, xT });
  assert.deepEqual(a, b);
  const c = await sample(model, new DdimSampler({ schedule, prediction: 'epsilon', eta: 1 }), shape, { rng: new Rng(2), steps: 20, xT });
  const d = await sample(model, new DdimSampler({ schedule, prediction: 'epsilon', eta: 1 }), shape, { rng: new Rng(3), steps: 20, xT });
  assert.notDeepEqual(c, d);
  assert.throws(() => new DdimSampler({ schedule, prediction: 'epsilon', eta: 1.5 }), /eta/);
});

test('DDIM inversion: x_0 → x_T → x_0 recovers the data; x_T looks like N(0, 1)', async () => {
  const mu = 0.5; const sd = 0.6;
  const n = 1000;
  const shape: Shape4 = [n, 1, 1, 2];
  const model = gaussianOracle({ schedule, prediction: 'epsilon', mean: mu, std: sd });
  const rng = new Rng(1);
  const x0 = new Float32Array(2 * n);
  for (let i = 0; i < x0.length; i++) x0[i] = mu + sd * rng.normal();
  const x0copy = x0.slice();
  const xT = await ddimInvert(model, schedule, 'epsilon', x0, shape, 50);
  assert.deepEqual(x0, x0copy, 'input not mutated');
  let s = 0; let q = 0;
  for (const v of xT) { s += v; q += v * v; }
  const m = s / xT.length;
  assert.ok(Math.abs(m) < 0.1 && Math.abs(q / xT.length - m * m - 1) < 0.15, `x_T mean ${m}`);
  const back = await sample(model, createSampler('ddim', { schedule, prediction: 'epsilon' }), shape, { rng: new Rng(9), steps: 50, xT });
  let sq = 0;
  for (let i = 0; i < x0.length; i++) sq += (back[i]! - x0[i]!) ** 2;
  const rms = Math.sqrt(sq / x0.length);
  // measured RMS 0.057 at 50 steps (docs/samplers.md); error is first order in 1/steps
  assert.ok(rms < 0.08, `inversion RMS ${rms}`);
  const xT250 = await ddimInvert(model, schedule, 'epsilon', x0, shape, 250);
  const back250 = await sample(model, createSampler('ddim', { schedule, prediction: 'epsilon' }), shape, { rng: new Rng(9), steps: 250, xT: xT250 });
  let sq2 = 0;
  for (let i = 0; i < x0.length; i++) sq2 += (back250[i]! - x0[i]!) ** 2;
  assert.ok(Math.sqrt(sq2 / x0.length) < rms / 2, 'more steps, smaller inversion error');
});

test('step() errors: unknown t, before setTimesteps, wrong output length, dpm out of order', () => {
  const x = new Float32Array(4);
  const ddim = createSampler('ddim', { schedule, prediction: 'epsilon' });
  assert.throws(() => ddim.step(x, 999, x, new Rng(0)), /setTimesteps/);
  ddim.setTimesteps(10);
  assert.throws(() => ddim.step(x, 998, x, new Rng(0)), /not one of the 10/);
  assert.throws(() => ddim.step(new Float32Array(3), 999, x, new Rng(0)), /model output/);
  const dpm = createSampler('dpm-solver', { schedule, prediction: 'epsilon' });
  dpm.setTimesteps(10);
  assert.throws(() => dpm.step(x, dpm.timesteps[2]!, x, new Rng(0)), /in order/);
  assert.throws(() => createSampler('ddpm', { schedule, prediction: 'score' as 'x0' }), /prediction type/);
  assert.throws(() => createSampler('ddpm', { schedule, prediction: 'x0', clipX0: -1 }), /clipX0/);
});

test('samplers do not mutate inputs and instances do not share state', () => {
  const a = createSampler('dpm-solver', { schedule, prediction: 'x0' });
  const b = createSampler('dpm-solver', { schedule, prediction: 'x0' });
  a.setTimesteps(10);
  b.setTimesteps(20);
  assert.equal(a.timesteps.length, 10);
  assert.equal(b.timesteps.length, 20);
  const out = Float32Array.of(0.1, 0.2);
  const x = Float32Array.of(1, -1);
  const outCopy = out.slice(); const xCopy = x.slice();
  const r1 = a.step(out, 999, x, new Rng(0));
  assert.deepEqual(out, outCopy); assert.deepEqual(x, xCopy);
  // a fresh instance given the same history gives the same answer
  const c = createSampler('dpm-solver', { schedule, prediction: 'x0' });
  c.setTimesteps(10);
  assert.deepEqual(c.step(out, 999, x, new Rng(0)), r1);
});

test('clipX0: static clip and dynamic thresholding', () => {
  const x = Float32Array.of(-3, -0.5, 0.5, 3);
  assert.deepEqual(clipX0(x, 1), Float32Array.of(-1, -0.5, 0.5, 1));
  // dynamic, per sample: sample 0 is within [-1,1] (s = 1, unchanged); sample 1 scaled by its max 4
  const y = Float32Array.of(0.5, -0.25, 4, -2);
  const d = clipX0(y, 'dynamic', [2, 1, 1, 2], 1);
  assert.deepEqual(d, Float32Array.of(0.5, -0.25, 1, -0.5));
  assert.deepEqual(y, Float32Array.of(0.5, -0.25, 4, -2));
  const clipped = createSampler('ddim', { schedule, prediction: 'x0', clipX0: 1 });
  clipped.setTimesteps(5);
  const r = clipped.step(Float32Array.of(5, -5), 999, Float32Array.of(0, 0), new Rng(0));
  assert.deepEqual(r.predX0, Float32Array.of(1, -1));
});
