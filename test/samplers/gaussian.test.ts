/**
 * Proof without training: with the closed-form Gaussian denoiser, every sampler
 * must reproduce the data distribution.
 *
 * Tolerances: N samples of 1 dimension from N(μ, σ²). Pure sampling noise has
 * SE(mean) = σ/√N and SE(var) ≈ σ²·sqrt(2/(N−1)); we allow 5 SE of each, plus a
 * discretisation allowance on the variance that covers the bias measured with
 * 8000 samples in docs/samplers.md (rounded up ~1.5×): DDPM-1000 0.005 (measured
 * −0.002), DDIM-50 0.04 (−0.026), DPM-Solver++-20 0.015 (−0.010). The mean
 * bias of all three is within sampling noise, so no mean allowance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSchedule } from '../../src/schedule.js';
import { gaussianMixtureOracle, gaussianOracle } from '../../src/diffusion/gaussian-oracle.js';
import { PREDICTION_TYPES, type Shape4 } from '../../src/diffusion/types.js';
import { createSampler, type SamplerName } from '../../src/samplers/factory.js';
import { sample } from '../../src/samplers/loop.js';
import { Rng } from '../../src/rng.js';

const MU = 0.5;
const SIGMA = 0.6;
const N = 3000;
const SE_MEAN = SIGMA / Math.sqrt(N);
const SE_VAR = SIGMA ** 2 * Math.sqrt(2 / (N - 1));
const schedule = makeSchedule('linear', 1000);

function moments(x: Float32Array): { mean: number; variance: number } {
  let s = 0; for (const v of x) s += v;
  const mean = s / x.length;
  let q = 0; for (const v of x) q += (v - mean) ** 2;
  return { mean, variance: q / (x.length - 1) };
}

const cases: [SamplerName, number, number][] = [
  ['ddpm', 1000, 0.005],
  ['ddim', 50, 0.04],
  ['dpm-solver', 20, 0.015],
];

for (const [name, steps, allowance] of cases) {
  test(`${name} ${steps} steps reproduces N(μ, σ²) for every prediction type`, async () => {
    for (const prediction of PREDICTION_TYPES) {
      const model = gaussianOracle({ schedule, prediction, mean: MU, std: SIGMA });
      const sampler = createSampler(name, { schedule, prediction });
      const x = await sample(model, sampler, [N, 1, 1, 1], { rng: new Rng(123), steps });
      const m = moments(x);
      assert.ok(Math.abs(m.mean - MU) < 5 * SE_MEAN, `${name}/${prediction}: mean ${m.mean} vs ${MU} (tol ${5 * SE_MEAN})`);
      const tolV = 5 * SE_VAR + allowance;
      assert.ok(Math.abs(m.variance - SIGMA ** 2) < tolV, `${name}/${prediction}: var ${m.variance} vs ${SIGMA ** 2} (tol ${tolV})`);
    }
  });
}

test('a two-Gaussian mixture: both modes found in the right proportions (DDPM, DDIM, DPM-Solver++)', async () => {
  // 2-D data: 30% at (−1, −0.5), 70% at (1, 0.5), std 0.2 — well separated.
  const components = [
    { weight: 0.3, mean: [-1, -0.5], std: 0.2 },
    { weight: 0.7, mean: [1, 0.5], std: 0.2 },
  ];
  const n = 2000;
  const shape: Shape4 = [n, 1, 1, 2];
  for (const [name, steps] of [['ddpm', 1000], ['ddim', 50], ['dpm-solver', 20]] as const) {
    const prediction = name === 'ddim' ? 'v' : 'epsilon';
    const model = gaussianMixtureOracle({ schedule, prediction, components });
    const x = await sample(model, createSampler(name, { schedule, prediction }), shape, { rng: new Rng(7), steps });
    let right = 0;
    const modeX: number[] = [];
    for (let i = 0; i < n; i++) {
      if (x[2 * i]! > 0) { right++; modeX.push(x[2 * i]!); }
    }
    const frac = right / n;
    // fraction ~ Binomial: SE = sqrt(p(1−p)/n) ≈ 0.0102; allow 5 SE
    assert.ok(Math.abs(frac - 0.7) < 5 * Math.sqrt(0.21 / n), `${name}: right-mode fraction ${frac}`);
    const mm = moments(Float32Array.from(modeX));
    assert.ok(Math.abs(mm.mean - 1) < 0.05, `${name}: right mode at ${mm.mean}`);
    assert.ok(Math.abs(Math.sqrt(mm.variance) - 0.2) < 0.05, `${name}: right mode std ${Math.sqrt(mm.variance)}`);
  }
});
