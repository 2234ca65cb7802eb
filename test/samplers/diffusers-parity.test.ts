/**
 * Parity with diffusers' schedulers: test/fixtures/diffusers-schedulers.json
 * holds trajectories that diffusers' own scheduler code produced (float32,
 * test/fixtures/make_scheduler_fixtures.py) for every sampler and spacing we
 * support. Each case's scheduler_config is translated by
 * samplerFromDiffusersConfig and run from the same starting x with the same
 * dummy model and the same per-step noise (bench/diffusers-parity.ts), on our
 * own trajectory, and compared after every step.
 *
 * Tolerance, per step: max |ours − diffusers| ≤ (1e-4 + d) · max |diffusers|,
 * where d (f32Deviation in the fixture, ~1e-6 for all but one case) is how far
 * diffusers' float32 run is from the same code in float64: the reference's own
 * rounding. Ours works in float64 inside each step. Karras sigmas on the cosine
 * schedule (dpm-karras-cosine) amplify float32 rounding to d = 2.7e-4 at one
 * step, where our error is 2.7e-4 too. Timesteps to 1e-5·T: fractional ones
 * come from diffusers' float32 σ table, whose rounding moves a Karras level's
 * timestep by up to ~1e-3.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadParityCases, runParityCase } from '../../bench/diffusers-parity.js';
import { SAMPLER_NAMES } from '../../src/samplers/factory.js';
import { samplerFromDiffusersConfig } from '../../src/interop/diffusers-scheduler.js';

const cases = loadParityCases();

test('the fixture covers every sampler, and every spacing of each', () => {
  const covered = new Set(cases.map((c) => {
    const s = samplerFromDiffusersConfig(c.config);
    return `${s.sampler}/${c.customTimesteps !== undefined ? 'custom' : s.samplerOptions.karrasSigmas === true ? 'karras' : s.samplerOptions.timestepSpacing}`;
  }));
  for (const name of SAMPLER_NAMES) {
    for (const spacing of ['linspace', 'leading', 'trailing']) assert.ok(covered.has(`${name}/${spacing}`), `${name}/${spacing}`);
  }
  for (const k of ['ddpm/custom', 'euler/custom', 'heun/custom', 'dpm-solver/custom', 'euler/karras', 'heun/karras', 'dpm-solver/karras']) assert.ok(covered.has(k), k);
});

for (const c of cases) {
  test(`diffusers parity: ${c.name}`, () => {
    const r = runParityCase(c);
    assert.equal(r.timesteps.length, c.timesteps.length, 'number of model calls');
    r.timesteps.forEach((t, i) => assert.ok(Math.abs(t - c.timesteps[i]!) <= 1e-5 * r.settings.timesteps, `timestep ${i}: ${t} vs ${c.timesteps[i]}`));
    assert.equal(r.errors.length, c.calls.length);
    r.errors.forEach((err, i) => {
      const tol = 1e-4 + c.f32Deviation[i]!;
      assert.ok(err <= tol, `${c.name} step ${i} (t=${r.timesteps[i]}): relative error ${err.toExponential(2)} > ${tol.toExponential(2)}`);
    });
  });
}
