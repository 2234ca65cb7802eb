import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSchedule, SCHEDULE_NAMES } from '../../src/schedule.js';
import { convertPrediction, fromX0AndEps, toX0AndEps } from '../../src/diffusion/prediction.js';
import { PREDICTION_TYPES } from '../../src/diffusion/types.js';
import { qSample } from '../../src/diffusion/forward.js';
import { Rng } from '../../src/rng.js';
import { DiffuseError } from '../../src/errors.js';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('toX0AndEps ∘ fromX0AndEps is the identity for every prediction type and t (incl. t=0)', () => {
  const rng = new Rng(5);
  for (const name of SCHEDULE_NAMES) {
    const s = makeSchedule(name, 1000);
    for (const t of [0, 1, 250, 999]) {
      const x0 = rng.normalArray(64);
      const eps = rng.normalArray(64);
      const xt = qSample(s, x0, t, eps);
      // float32 rounding of the output is amplified by the inverse map's largest
      // coefficient: 1/sqrt(ᾱ), 1/sqrt(1−ᾱ) or 1/c1 (mean).
      const cond = Math.max(1 / s.sqrtAlphaBar[t]!, 1 / s.sqrtOneMinusAlphaBar[t]!, 1 / s.posteriorMeanCoef1[t]!);
      for (const p of PREDICTION_TYPES) {
        const out = fromX0AndEps(p, x0, eps, xt, t, s);
        const back = toX0AndEps(p, out, xt, t, s);
        const tolX0 = 1e-6 * 8 * cond;
        assert.ok(maxAbsDiff(back.x0, x0) <= tolX0 * (1 + 1 / s.sqrtOneMinusAlphaBar[t]!), `${name} ${p} t=${t} x0 err ${maxAbsDiff(back.x0, x0)}`);
        if (t > 0 || p === 'epsilon') {
          assert.ok(maxAbsDiff(back.eps, eps) <= tolX0 / s.sqrtOneMinusAlphaBar[t]!, `${name} ${p} t=${t} eps err ${maxAbsDiff(back.eps, eps)}`);
        }
      }
    }
  }
});

test('convertPrediction round-trips every ordered pair', () => {
  const s = makeSchedule('cosine', 1000);
  const rng = new Rng(9);
  const t = 400;
  const x0 = rng.normalArray(32);
  const eps = rng.normalArray(32);
  const xt = qSample(s, x0, t, eps);
  for (const a of PREDICTION_TYPES) {
    const outA = fromX0AndEps(a, x0, eps, xt, t, s);
    for (const b of PREDICTION_TYPES) {
      const outB = convertPrediction(a, b, outA, xt, t, s);
      assert.ok(maxAbsDiff(outB, fromX0AndEps(b, x0, eps, xt, t, s)) < 1e-4, `${a}->${b}`);
      assert.ok(maxAbsDiff(convertPrediction(b, a, outB, xt, t, s), outA) < 1e-4, `${a}->${b}->${a}`);
    }
  }
});

test('mean prediction at t=0 is x0 itself; v matches its definition', () => {
  const s = makeSchedule('linear', 1000);
  const x0 = Float32Array.of(0.25, -0.5);
  const eps = Float32Array.of(1, -1);
  const xt = qSample(s, x0, 0, eps);
  assert.deepEqual(fromX0AndEps('mean', x0, eps, xt, 0, s), x0);
  const v = fromX0AndEps('v', x0, eps, xt, 10, s);
  const expect = s.sqrtAlphaBar[10]! * 1 - s.sqrtOneMinusAlphaBar[10]! * 0.25;
  assert.ok(Math.abs(v[0]! - expect) < 1e-6);
});

test('inputs are not mutated; bad lengths or t give DiffuseError', () => {
  const s = makeSchedule('linear', 100);
  const out = Float32Array.of(1, 2, 3, 4);
  const xt = Float32Array.of(0.5, 0.5, 0.5, 0.5);
  const copy = out.slice();
  toX0AndEps('v', out, xt, 3, s);
  assert.deepEqual(out, copy);
  assert.throws(() => toX0AndEps('x0', out, Float32Array.of(1), 3, s), DiffuseError);
  assert.throws(() => toX0AndEps('x0', out, xt, 100, s), /timestep/);
  assert.throws(() => toX0AndEps('x0', out, xt, Int32Array.of(1, 2, 3), s), /per-sample/);
});
