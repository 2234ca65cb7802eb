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
import { spacedTimesteps, timestepGrid } from '../../src/samplers/spacing.js';
import { Rng } from '../../src/rng.js';
import { DiffuseError } from '../../src/errors.js';

const schedule = makeSchedule('linear', 1000);

test('a respaced DDPM step is the forward process posterior q(x_s | x_t, x_0) between the kept levels', () => {
  // Independent closed form (Gaussian conditioning of the forward process, from ᾱ alone):
  //   mean = sqrt(ᾱ_s)(1 − ᾱ_t/ᾱ_s)/(1 − ᾱ_t) x_0 + sqrt(ᾱ_t/ᾱ_s)(1 − ᾱ_s)/(1 − ᾱ_t) x_t
  //   var  = (1 − ᾱ_s)/(1 − ᾱ_t) (1 − ᾱ_t/ᾱ_s)
  // With an x0 network that outputs the true x_0 and the step's noise fixed at 0 and 1, the step
  // must give the mean and the mean plus one standard deviation.
  class FixedRng extends Rng {
    constructor(private readonly z: number) { super(0); }
    override normal(): number { return this.z; }
  }
  for (const spacing of ['uniform', 'leading', 'trailing'] as const) {
    const s = new DdpmSampler({ schedule, prediction: 'x0', timestepSpacing: spacing });
    s.setTimesteps(25);
    const ts = s.timesteps;
    for (const i of [0, 7, ts.length - 2]) {
      const t = ts[i]!;
      const prevT = ts[i + 1]!;
      const at = schedule.alphaBar[t]!;
      const as = schedule.alphaBar[prevT]!;
      const x0 = Float32Array.of(0.3, -0.7);
      const xt = Float32Array.of(1.2, -0.4);
      const mean = [0, 1].map((k) => Math.sqrt(as) * (1 - at / as) / (1 - at) * x0[k]! + Math.sqrt(at / as) * (1 - as) / (1 - at) * xt[k]!);
      const sd = Math.sqrt((1 - as) / (1 - at) * (1 - at / as));
      const m = s.step(x0, t, xt, new FixedRng(0)).prev;
      const p = s.step(x0, t, xt, new FixedRng(1)).prev;
      for (const k of [0, 1]) {
        assert.ok(Math.abs(m[k]! - mean[k]!) < 1e-6, `${spacing} t=${t}: mean ${m[k]} vs ${mean[k]}`);
        assert.ok(Math.abs(p[k]! - m[k]! - sd) < 1e-6, `${spacing} t=${t}: sd ${p[k]! - m[k]!} vs ${sd}`);
      }
    }
    // after the last timestep: x̂_0 itself, no noise
    const last = ts[ts.length - 1]!;
    assert.deepEqual(s.step(Float32Array.of(0.3, -0.2), last, Float32Array.of(5, 5), new FixedRng(1)).prev, Float32Array.of(0.3, -0.2));
  }
});

test('timestep spacings: uniform stays the old rule, linspace rounds as numpy, leading/trailing as diffusers, custom lists', () => {
  // 7 steps put a tie at 999/6 = 166.5: uniform (the default) rounds it up, numpy's linspace to even
  assert.deepEqual(timestepGrid(1000, 7, {}), [999, 833, 666, 500, 333, 167, 0]);
  assert.deepEqual(timestepGrid(1000, 7, { timestepSpacing: 'linspace' }), [999, 832, 666, 500, 333, 166, 0]);
  assert.deepEqual(timestepGrid(1000, 4, { timestepSpacing: 'linspace' }, true), [999, 666, 333, 0]);
  assert.deepEqual(timestepGrid(1000, 5, { timestepSpacing: 'leading', stepsOffset: 1 }), [801, 601, 401, 201, 1]);
  assert.deepEqual(timestepGrid(1000, 3, { timestepSpacing: 'trailing' }), [999, 666, 332]);
  assert.deepEqual(timestepGrid(1000, 3, { customTimesteps: [900, 10, 0] }), [900, 10, 0]);
  for (const n of [1, 2, 10, 50, 999, 1000]) {
    const ts = spacedTimesteps(1000, n);
    assert.equal(ts.length, n);
    assert.equal(ts[0], 999);
    if (n > 1) assert.equal(ts[n - 1], 0);
    for (let i = 1; i < n; i++) assert.ok(ts[i]! < ts[i - 1]!);
  }
  assert.throws(() => spacedTimesteps(1000, 0), DiffuseError);
  assert.throws(() => spacedTimesteps(1000, 1001), /\[1, 1000\]/);
  assert.throws(() => timestepGrid(1000, 1000, { timestepSpacing: 'leading', stepsOffset: 1 }), /1000 is not an integer in \[0, 999\]/);
  assert.throws(() => timestepGrid(1000, 3, { timestepSpacing: 'trailing', stepsOffset: 1 }), /'leading' spacing only/);
  assert.throws(() => timestepGrid(1000, 3, { customTimesteps: [900, 900, 0] }), /strictly descending/);
  assert.throws(() => timestepGrid(1000, 2, { customTimesteps: [900, 0.5] }), /not an integer/);
  assert.throws(() => timestepGrid(1000, 4, { customTimesteps: [900, 10, 0] }), /3 custom timesteps given but 4 steps/);
  assert.throws(() => createSampler('ddim', { schedule, prediction: 'epsilon', timestepSpacing: 'even' as 'uniform' }), /unknown timestep spacing 'even'/);
});

test('DDIM: diffusers choices (set_alpha_to_one, use_clipped_model_output, stride) change what they should', () => {
  const x = Float32Array.of(0.4, -2.5);
  const out = Float32Array.of(3, -3); // x0 prediction outside [-1, 1]: clipping matters
  const run = (o: Parameters<typeof createSampler>[1]): Float32Array => {
    const s = createSampler('ddim', o);
    s.setTimesteps(7);
    return s.step(out, s.timesteps[5]!, x, new Rng(0)).prev;
  };
  const base = { schedule, prediction: 'x0' as const, clipX0: 1 };
  const a = run(base);
  assert.notDeepEqual(run({ ...base, useClippedModelOutput: false }), a);
  // stride: from t = 167 (uniform, 7 steps) diffusers lands on 167 − ⌊1000/7⌋ = 25, not on 0
  const s = run({ ...base, prevTimestep: 'stride' });
  const ab = schedule.alphaBar[167]!;
  const abPrev = schedule.alphaBar[25]!;
  for (const k of [0, 1]) {
    const x0 = Math.max(-1, Math.min(1, out[k]!));
    const eps = (x[k]! - Math.sqrt(ab) * x0) / Math.sqrt(1 - ab);
    assert.ok(Math.abs(s[k]! - (Math.sqrt(abPrev) * x0 + Math.sqrt(1 - abPrev) * eps)) < 1e-6);
  }
  // set_alpha_to_one = false: the last step lands on ᾱ_0, not on the clean image
  const last = (setAlphaToOne: boolean): Float32Array => {
    const d = createSampler('ddim', { ...base, setAlphaToOne });
    d.setTimesteps(4);
    return d.step(Float32Array.of(0.5), d.timesteps[3]!, Float32Array.of(0.9), new Rng(0)).prev;
  };
  assert.equal(last(true)[0], 0.5);
  assert.ok(Math.abs(last(false)[0]! - 0.9) < 1e-6, 'at t = 0 landing on ᾱ_0 leaves x where it is');
  assert.throws(() => createSampler('ddim', { ...base, prevTimestep: 'previous' as 'next' }), /prevTimestep/);
});

test('on the same levels Euler is deterministic DDIM, and Euler ancestral is DDPM (noise for noise)', async () => {
  const model = gaussianOracle({ schedule, prediction: 'v', mean: 0.3, std: 0.5 });
  const shape: Shape4 = [64, 1, 1, 1];
  const xT = new Rng(4).normalArray(64);
  const maxDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
  for (const timestepSpacing of ['uniform', 'trailing'] as const) {
    const run = (name: 'euler' | 'ddim' | 'euler-ancestral' | 'ddpm'): Promise<Float32Array> =>
      sample(model, createSampler(name, { schedule, prediction: 'v', timestepSpacing }), shape, { rng: new Rng(0), steps: 12, xT });
    const e = maxDiff(await run('euler'), await run('ddim'));
    assert.ok(e < 1e-5, `${timestepSpacing}: euler vs ddim ${e}`);
    const a = maxDiff(await run('euler-ancestral'), await run('ddpm'));
    assert.ok(a < 1e-5, `${timestepSpacing}: euler-ancestral vs ddpm ${a}`);
  }
});

test('Heun calls the model twice per level, in order; σ-space samplers hand the model fractional t and reject mean there', async () => {
  const heun = createSampler('heun', { schedule, prediction: 'epsilon', timestepSpacing: 'linspace' });
  heun.setTimesteps(4);
  assert.equal(heun.timesteps.length, 7);
  assert.deepEqual(heun.timesteps.map((t) => Math.round(t * 10) / 10), [999, 666, 666, 333, 333, 0, 0]);
  const seen: number[] = [];
  const model = gaussianOracle({ schedule, prediction: 'epsilon', mean: 0, std: 1 });
  await sample((x, t, sh) => { seen.push(t); return model(x, t, sh); }, heun, [4, 1, 1, 1], { rng: new Rng(0), steps: 4 });
  assert.deepEqual(seen, heun.timesteps);
  heun.setTimesteps(4);
  const x = new Float32Array(4);
  heun.step(x, 999, x, new Rng(0));
  assert.throws(() => heun.step(x, 333, x, new Rng(0)), /in order; expected t=666/);
  const euler = createSampler('euler', { schedule, prediction: 'epsilon', timestepSpacing: 'linspace' });
  euler.setTimesteps(8);
  assert.ok(euler.timesteps.some((t) => !Number.isInteger(t)), 'linspace keeps fractional timesteps');
  const karras = createSampler('euler', { schedule, prediction: 'epsilon', karrasSigmas: true });
  karras.setTimesteps(10);
  assert.equal(karras.timesteps[0], 999);
  assert.equal(karras.timesteps[9], 0);
  assert.throws(() => createSampler('euler', { schedule, prediction: 'mean', karrasSigmas: true }).setTimesteps(10), /'mean' needs integer timesteps/);
  assert.throws(() => createSampler('dpm-solver', { schedule, prediction: 'mean', karrasSigmas: true }), /'mean' is undefined/);
  assert.throws(() => createSampler('ddim', { schedule, prediction: 'epsilon', karrasSigmas: true }), /'karrasSigmas' applies to euler, euler-ancestral, heun, dpm-solver, not ddim/);
  assert.throws(() => createSampler('euler', { schedule, prediction: 'epsilon', eta: 1 }), /'eta' applies to ddim/);
});

test('Euler ancestral draws fresh noise of σ_up each step and lands on the right level', () => {
  const s = createSampler('euler-ancestral', { schedule, prediction: 'x0' });
  s.setTimesteps(5);
  const t = s.timesteps[1]!;
  const sig = (k: number): number => schedule.sigmas[s.timesteps[k]!]!;
  const [sf, st] = [sig(1), sig(2)];
  const up = Math.sqrt(st ** 2 * (sf ** 2 - st ** 2) / sf ** 2);
  const down = Math.sqrt(st ** 2 - up ** 2);
  class FixedRng extends Rng { constructor(private readonly z: number) { super(0); } override normal(): number { return this.z; } }
  const x = Float32Array.of(0.8);
  const x0 = Float32Array.of(0.1);
  const ve = 0.8 * Math.sqrt(1 + sf ** 2);
  for (const z of [0, 1]) {
    const want = (0.1 + (down / sf) * (ve - 0.1) + up * z) / Math.sqrt(1 + st ** 2);
    assert.ok(Math.abs(s.step(x0, t, x, new FixedRng(z)).prev[0]! - want) < 1e-6, `z=${z}`);
  }
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
