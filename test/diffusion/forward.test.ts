import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSchedule } from '../../src/schedule.js';
import { forwardChain, forwardStep, makeTrainingBatch, qSample, trainingTarget } from '../../src/diffusion/forward.js';
import { toX0AndEps } from '../../src/diffusion/prediction.js';
import { PREDICTION_TYPES } from '../../src/diffusion/types.js';
import { Rng } from '../../src/rng.js';
import { DiffuseError } from '../../src/errors.js';

function moments(x: Float32Array): { mean: number; variance: number } {
  let s = 0; for (const v of x) s += v;
  const mean = s / x.length;
  let q = 0; for (const v of x) q += (v - mean) ** 2;
  return { mean, variance: q / (x.length - 1) };
}

test('step-by-step chain and closed form qSample agree in distribution', () => {
  const s = makeSchedule('linear', 1000);
  const n = 20_000;
  const x0 = new Float32Array(n).fill(0.7);
  const k = 300; // noising steps → training index 299
  const frames = [...forwardChain(s, x0, [0, k], new Rng(11))];
  assert.deepEqual(frames.map((f) => f.step), [0, k]);
  assert.deepEqual(frames[0]!.x, x0);
  const chain = moments(frames[1]!.x);
  const closed = moments(qSample(s, x0, k - 1, new Rng(12).normalArray(n)));
  const mu = s.sqrtAlphaBar[k - 1]! * 0.7;
  const v = 1 - s.alphaBar[k - 1]!;
  // Both are N(mu, v): SE(mean) = sqrt(v/n), SE(var) ≈ v·sqrt(2/(n−1)); allow 5 SE.
  for (const m of [chain, closed]) {
    assert.ok(Math.abs(m.mean - mu) < 5 * Math.sqrt(v / n), `mean ${m.mean} vs ${mu}`);
    assert.ok(Math.abs(m.variance - v) < 5 * v * Math.sqrt(2 / (n - 1)), `var ${m.variance} vs ${v}`);
  }
});

test('forwardStep at t=0 equals qSample at t=0 for the same noise; t out of range throws', () => {
  const s = makeSchedule('cosine', 200);
  const x0 = new Rng(1).normalArray(10);
  const e = new Rng(2).normalArray(10);
  const a = forwardStep(s, x0, 0, e);
  const b = qSample(s, x0, 0, e);
  for (let i = 0; i < 10; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-6);
  assert.throws(() => forwardStep(s, x0, 200, e), DiffuseError);
  assert.throws(() => [...forwardChain(s, x0, [201], new Rng(0))], /forward chain step/);
});

test('qSample with per-sample t uses each sample its own ᾱ', () => {
  const s = makeSchedule('linear', 1000);
  const x0 = new Float32Array(6).fill(1);
  const noise = new Float32Array(6);
  const xt = qSample(s, x0, Int32Array.of(0, 500, 999), noise);
  assert.ok(Math.abs(xt[0]! - s.sqrtAlphaBar[0]!) < 1e-7 && Math.abs(xt[1]! - s.sqrtAlphaBar[0]!) < 1e-7);
  assert.ok(Math.abs(xt[2]! - s.sqrtAlphaBar[500]!) < 1e-7);
  assert.ok(Math.abs(xt[5]! - s.sqrtAlphaBar[999]!) < 1e-7);
});

test('makeTrainingBatch: seeded, t uniform per image, target consistent with x_t for every prediction', () => {
  const s = makeSchedule('linear', 1000);
  const shape = [8, 2, 2, 1] as const;
  const x0 = new Rng(3).normalArray(32);
  for (const p of PREDICTION_TYPES) {
    const a = makeTrainingBatch(s, p, x0, shape, new Rng(99));
    const b = makeTrainingBatch(s, p, x0, shape, new Rng(99));
    assert.deepEqual(a, b);
    assert.equal(a.t.length, 8);
    assert.ok(a.t.every((t) => t >= 0 && t < 1000));
    assert.deepEqual(a.xt, qSample(s, x0, a.t, a.noise));
    assert.deepEqual(a.target, trainingTarget(s, p, x0, a.noise, a.xt, a.t));
    const rec = toX0AndEps(p, a.target, a.xt, a.t, s);
    for (let i = 0; i < 32; i++) assert.ok(Math.abs(rec.x0[i]! - x0[i]!) < 2e-2, `${p} x0 recovered`);
  }
  assert.throws(() => makeTrainingBatch(s, 'epsilon', x0, [8, 2, 2, 2], new Rng(0)), /shape/);
  // t is spread over the whole range: a large batch hits both halves
  const big = makeTrainingBatch(s, 'epsilon', new Float32Array(400), [400, 1, 1, 1], new Rng(4));
  const low = big.t.filter((t) => t < 500).length;
  assert.ok(Math.abs(low - 200) < 5 * Math.sqrt(100), `low half ${low}`);
});
