/**
 * Proof without training: with the closed-form Gaussian denoiser, every sampler
 * must reproduce the data distribution.
 *
 * Tolerances: N samples of 1 dimension from N(μ, σ²). Pure sampling noise has
 * SE(mean) = σ/√N and SE(var) ≈ σ²·sqrt(2/(N−1)); we allow 5 SE of each, plus a
 * discretisation allowance on the variance that covers the bias measured with
 * 8000 samples in docs/samplers.md (rounded up ~1.5×): DDPM-1000 0.005 (measured
 * −0.002), DDIM-50 0.04 (−0.026), DPM-Solver++-20 0.015 (−0.010), Euler-50
 * 0.04 (−0.026, also with fractional 'linspace' timesteps), Euler ancestral-100
 * 0.04 (−0.027), Heun-25 0.03 (+0.017), DPM-Solver++ Karras-50 0.025 (+0.015),
 * and on the zero-terminal-SNR schedule (v, x0 and mean networks; trailing
 * spacing) DDIM-50 0.04 (−0.026) and DPM-Solver++-20 0.06 (−0.038). The mean
 * bias of all is within sampling noise, so no mean allowance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSchedule } from '../../src/schedule.js';
import { gaussianMixtureOracle, gaussianOracle } from '../../src/diffusion/gaussian-oracle.js';
import { PREDICTION_TYPES, type PredictionType, type Shape4 } from '../../src/diffusion/types.js';
import { createSampler, type SamplerName, type SamplerSettings } from '../../src/samplers/factory.js';
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

const zeroSnr = makeSchedule('linear', 1000, { zeroTerminalSnr: true });
const noEps = PREDICTION_TYPES.filter((p) => p !== 'epsilon');

interface Case { name: SamplerName; steps: number; allowance: number; settings?: SamplerSettings; label?: string; zeroSnr?: boolean; predictions?: readonly PredictionType[] }
const cases: Case[] = [
  { name: 'ddpm', steps: 1000, allowance: 0.005 },
  { name: 'ddim', steps: 50, allowance: 0.04 },
  { name: 'dpm-solver', steps: 20, allowance: 0.015 },
  { name: 'euler', steps: 50, allowance: 0.04 },
  { name: 'euler', steps: 50, allowance: 0.04, settings: { timestepSpacing: 'linspace' }, label: "'linspace' (fractional t)", predictions: ['epsilon', 'x0', 'v'] },
  { name: 'euler-ancestral', steps: 100, allowance: 0.04 },
  { name: 'heun', steps: 25, allowance: 0.03 },
  { name: 'dpm-solver', steps: 50, allowance: 0.025, settings: { karrasSigmas: true }, label: 'Karras σ', predictions: ['epsilon', 'x0', 'v'] },
  { name: 'ddim', steps: 50, allowance: 0.04, settings: { timestepSpacing: 'trailing' }, label: 'zero terminal SNR, trailing', zeroSnr: true, predictions: noEps },
  { name: 'dpm-solver', steps: 20, allowance: 0.06, settings: { timestepSpacing: 'trailing' }, label: 'zero terminal SNR, trailing', zeroSnr: true, predictions: noEps },
];

for (const c of cases) {
  const predictions = c.predictions ?? PREDICTION_TYPES;
  test(`${c.name} ${c.steps} steps${c.label !== undefined ? `, ${c.label},` : ''} reproduces N(μ, σ²) for ${predictions.length === 4 ? 'every prediction type' : predictions.join(', ')}`, async () => {
    const sch = c.zeroSnr === true ? zeroSnr : schedule;
    for (const prediction of predictions) {
      const model = gaussianOracle({ schedule: sch, prediction, mean: MU, std: SIGMA });
      const sampler = createSampler(c.name, { ...c.settings, schedule: sch, prediction });
      const x = await sample(model, sampler, [N, 1, 1, 1], { rng: new Rng(123), steps: c.steps });
      const m = moments(x);
      assert.ok(Math.abs(m.mean - MU) < 5 * SE_MEAN, `${c.name}/${prediction}: mean ${m.mean} vs ${MU} (tol ${5 * SE_MEAN})`);
      const tolV = 5 * SE_VAR + c.allowance;
      assert.ok(Math.abs(m.variance - SIGMA ** 2) < tolV, `${c.name}/${prediction}: var ${m.variance} vs ${SIGMA ** 2} (tol ${tolV})`);
    }
  });
}

test('zero terminal SNR: ε-prediction is refused; x_T ~ N(0, I) is exactly the last level, and the first x̂_0 is the data mean', async () => {
  assert.equal(zeroSnr.alphaBar[999], 0);
  assert.throws(() => createSampler('ddim', { schedule: zeroSnr, prediction: 'epsilon' }), /zero terminal SNR/);
  const model = gaussianOracle({ schedule: zeroSnr, prediction: 'v', mean: MU, std: SIGMA });
  const s = createSampler('ddim', { schedule: zeroSnr, prediction: 'v', timestepSpacing: 'trailing' });
  let first: Float32Array | undefined;
  await sample(model, s, [8, 1, 1, 1], { rng: new Rng(1), steps: 10, onStep: ({ i, predX0 }) => { if (i === 0) first = predX0; } });
  for (const v of first!) assert.ok(Math.abs(v - MU) < 1e-6, `x̂_0 at SNR 0 is E[x_0] = ${MU}, got ${v}`);
});

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
