import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  alphaBarAt, cosineBetaSchedule, linearBetaSchedule, makeSchedule, scaledLinearBetaSchedule, scheduleFromBetas, sigmoidBetaSchedule,
  SCHEDULE_NAMES, ZERO_SNR_ALPHA_BAR, type ScheduleName,
} from '../../src/schedule.js';
import { sigmaToTimestep } from '../../src/samplers/sigmas.js';
import { DiffuseError } from '../../src/errors.js';

const close = (a: number, b: number, tol: number, msg = ''): void => assert.ok(Math.abs(a - b) <= tol, `${msg} ${a} vs ${b}`);

test('linear schedule: DDPM ends at T=1000, scaled by 1000/T otherwise', () => {
  const b = linearBetaSchedule(1000);
  assert.equal(b.length, 1000);
  close(b[0]!, 1e-4, 1e-15); close(b[999]!, 0.02, 1e-15);
  const b2 = linearBetaSchedule(500);
  close(b2[0]!, 2e-4, 1e-15); close(b2[499]!, 0.04, 1e-15);
  const sum = (a: number[]): number => a.reduce((s, v) => s + v, 0);
  close(sum(b2), sum(b), 0.01 * sum(b), 'total noise comparable');
  assert.ok(linearBetaSchedule(10).every((v) => v <= 0.999));
});

test('cosine schedule matches the closed-form ᾱ(t) and clips at 0.999', () => {
  const T = 1000; const s = 0.008;
  const f = (t: number): number => Math.cos(((t / T + s) / (1 + s)) * Math.PI / 2) ** 2;
  const sch = makeSchedule('cosine', T);
  for (const t of [0, 10, 500, 900]) close(sch.alphaBar[t]!, f(t + 1) / f(0), 1e-9, `t=${t}`);
  assert.ok(cosineBetaSchedule(T).every((v) => v > 0 && v <= 0.999));
  close(Math.max(...cosineBetaSchedule(T)), 0.999, 0);
});

test('sigmoid schedule increases from ~start to ~end', () => {
  const b = sigmoidBetaSchedule(1000);
  for (let i = 1; i < b.length; i++) assert.ok(b[i]! > b[i - 1]!);
  assert.ok(b[0]! < 2e-4 && b[999]! > 0.0199);
});

test('T outside [10, 4000] or not an integer is a DiffuseError', () => {
  for (const T of [9, 4001, 10.5, 0, -5, Number.NaN]) {
    for (const name of SCHEDULE_NAMES) assert.throws(() => makeSchedule(name, T), DiffuseError, `${name} T=${T}`);
  }
  assert.throws(() => makeSchedule('quadratic' as ScheduleName, 100), /quadratic/);
});

test('derived tables agree with their formulas for every schedule', () => {
  for (const name of SCHEDULE_NAMES) {
    for (const T of [10, 37, 1000]) {
      const s = makeSchedule(name, T);
      let prod = 1;
      for (let t = 0; t < T; t++) {
        prod *= 1 - s.betas[t]!;
        close(s.alphaBar[t]!, prod, 1e-12);
        const abp = t === 0 ? 1 : s.alphaBar[t - 1]!;
        close(s.alphaBarPrev[t]!, abp, 0);
        close(s.sqrtRecipm1AlphaBar[t]! * s.sqrtAlphaBar[t]!, s.sqrtOneMinusAlphaBar[t]!, 1e-12);
        // posterior mean coefficients: μ̃ of x_{t−1} given x_t and x_0
        close(s.posteriorMeanCoef1[t]!, s.betas[t]! * Math.sqrt(abp) / (1 - s.alphaBar[t]!), 1e-12);
        assert.ok(Number.isFinite(s.posteriorLogVarianceClipped[t]!));
      }
      close(s.posteriorMeanCoef1[0]!, 1, 1e-12, 'μ̃_0 = x_0');
      close(s.posteriorMeanCoef2[0]!, 0, 0);
      close(s.posteriorVariance[0]!, 0, 0);
    }
  }
});

test('schedules are frozen and computed independently', () => {
  const s = makeSchedule('linear', 100);
  assert.ok(Object.isFrozen(s) && Object.isFrozen(s.betas));
  assert.throws(() => { (s.betas as number[])[0] = 0.5; }, TypeError);
  assert.notEqual(makeSchedule('linear', 100).betas, s.betas);
});

test('scaled-linear: sqrt(β) linear between the ends (Stable Diffusion 0.00085 → 0.012)', () => {
  const b = scaledLinearBetaSchedule(1000, 0.00085, 0.012);
  close(b[0]!, 0.00085, 1e-15); close(b[999]!, 0.012, 1e-15);
  for (let i = 1; i < 1000; i++) close(Math.sqrt(b[i]!) - Math.sqrt(b[i - 1]!), (Math.sqrt(0.012) - Math.sqrt(0.00085)) / 999, 1e-12);
  assert.deepEqual(linearBetaSchedule(1000, 0.001, 0.01).slice(0, 2), [0.001, 0.001 + 0.009 / 999]);
  assert.throws(() => makeSchedule('linear', 1000, { betaStart: 0.02, betaEnd: 0.01 }), /must not exceed/);
  assert.throws(() => makeSchedule('linear', 1000, { betaEnd: 1.5 }), /betaEnd must be in \(0, 1\)/);
  assert.throws(() => makeSchedule('cosine', 1000, { betaStart: 0.001 }), /cosine schedule has no betaStart/);
});

test('zero terminal SNR (Lin et al. 2023): ᾱ_{T−1} = 0, ᾱ_0 kept, sqrt(ᾱ) an affine map of the original', () => {
  for (const name of SCHEDULE_NAMES) {
    const orig = makeSchedule(name, 1000);
    const z = makeSchedule(name, 1000, { zeroTerminalSnr: true });
    assert.equal(z.alphaBar[999], 0, name);
    assert.equal(z.betas[999], 1);
    close(z.alphaBar[0]!, orig.alphaBar[0]!, 1e-12, name);
    // sqrt(ᾱ') = (sqrt(ᾱ) − sqrt(ᾱ_{T−1})) · sqrt(ᾱ_0)/(sqrt(ᾱ_0) − sqrt(ᾱ_{T−1})): check at a middle index
    const a0 = orig.sqrtAlphaBar[0]!;
    const aT = orig.sqrtAlphaBar[999]!;
    close(z.sqrtAlphaBar[500]!, (orig.sqrtAlphaBar[500]! - aT) * a0 / (a0 - aT), 1e-9, name);
    for (let t = 1; t < 1000; t++) assert.ok(z.alphaBar[t]! < z.alphaBar[t - 1]!, `${name}: ᾱ decreasing at ${t}`);
    assert.equal(z.sigmas[999], Math.sqrt((1 - ZERO_SNR_ALPHA_BAR) / ZERO_SNR_ALPHA_BAR));
  }
  assert.throws(() => scheduleFromBetas([0.5, 1, 0.5]), /only the last may be 1/);
});

test('alphaBarAt: the table at integers, log σ interpolated between; sigmaToTimestep inverts it', () => {
  const s = makeSchedule('linear', 1000);
  for (const t of [0, 17, 999]) assert.equal(alphaBarAt(s, t), s.alphaBar[t]);
  const t = 417.3;
  const sig = Math.sqrt((1 - alphaBarAt(s, t)) / alphaBarAt(s, t));
  close(Math.log(sig), 0.7 * Math.log(s.sigmas[417]!) + 0.3 * Math.log(s.sigmas[418]!), 1e-12);
  close(sigmaToTimestep(s, sig), t, 1e-9);
  assert.throws(() => alphaBarAt(s, 999.5), /\[0, 999\]/);
});
