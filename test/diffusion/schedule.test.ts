import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cosineBetaSchedule, linearBetaSchedule, makeSchedule, sigmoidBetaSchedule, SCHEDULE_NAMES, type ScheduleName,
} from '../../src/schedule.js';
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
