/**
 * Parity with diffusers' schedulers: test/fixtures/diffusers-schedulers.json
 * holds trajectories that diffusers' own scheduler code produced (float32,
 * test/fixtures/make_scheduler_fixtures.py) for every sampler and spacing we
 * support. Each case's scheduler_config is translated by
 * samplerFromDiffusersConfig, run from the same starting x with the same
 * dummy model and the same per-step noise, and compared after every step.
 *
 * Tolerance, per step: max |ours − diffusers| ≤ (1e-4 + d) · max |diffusers|,
 * where d (f32Deviation in the fixture, ~1e-6 for all but one case) is how far
 * diffusers' float32 run is from the same code in float64: the reference's own
 * rounding. Ours works in float64 inside each step. Karras sigmas on the cosine
 * schedule (dpm-karras-cosine) amplify float32 rounding to d = 2.7e-4 at one
 * step, where our error is 2.7e-4 too. Timesteps
 * to 1e-5·T: fractional timesteps come from diffusers' float32 σ table, whose
 * rounding moves a Karras level's timestep by up to ~1e-3.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { makeSchedule } from '../../src/schedule.js';
import { createSampler } from '../../src/samplers/factory.js';
import { samplerFromDiffusersConfig } from '../../src/interop/diffusers-scheduler.js';
import { Rng } from '../../src/rng.js';
import type { Shape4 } from '../../src/diffusion/types.js';

interface Call { t: number; prev: number[]; noise?: number[] }
interface Case {
  name: string;
  config: Record<string, unknown>;
  steps: number;
  shape: [number, number, number, number];
  timesteps: number[];
  x: number[];
  calls: Call[];
  customTimesteps?: number[];
  eta?: number;
  use_clipped_model_output?: boolean;
  f32Deviation: number[];
}

const fixture = JSON.parse(readFileSync(new URL('../../../test/fixtures/diffusers-schedulers.json', import.meta.url), 'utf8')) as { cases: Case[] };

/** The fixture's dummy model: out_i = 0.9 x_i + 0.1 cos(0.5 i + t/100). */
function dummyModel(x: Float32Array, t: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = 0.9 * x[i]! + 0.1 * Math.cos(0.5 * i + t / 100);
  return out;
}

/** An Rng whose normals are the noise diffusers drew during one step. */
class ReplayRng extends Rng {
  private k = 0;
  constructor(private readonly values: readonly number[]) { super(0); }
  override normal(): number {
    const v = this.values[this.k++];
    if (v === undefined) throw new Error(`replay: step asked for more than the ${this.values.length} stored normals`);
    return v;
  }
  get used(): number { return this.k; }
}

function relErr(ours: Float32Array, ref: readonly number[]): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num = Math.max(num, Math.abs(ours[i]! - ref[i]!));
    den = Math.max(den, Math.abs(ref[i]!));
  }
  return num / den;
}

test('the fixture covers every sampler and spacing', () => {
  const seen = new Set(fixture.cases.map((c) => c.config['_class_name']));
  assert.equal(seen.size, 6);
  assert.ok(fixture.cases.length >= 30);
});

for (const c of fixture.cases) {
  test(`diffusers parity: ${c.name}`, () => {
    const s = samplerFromDiffusersConfig(c.config);
    const schedule = makeSchedule(s.schedule, s.timesteps, s);
    const sampler = createSampler(s.sampler, {
      ...s.samplerOptions,
      schedule,
      prediction: s.prediction,
      ...(s.clip !== false ? { clipX0: s.clip } : {}),
      ...(c.customTimesteps !== undefined ? { customTimesteps: c.customTimesteps } : {}),
      ...(c.eta !== undefined ? { eta: c.eta } : {}),
      ...(c.use_clipped_model_output !== undefined ? { useClippedModelOutput: c.use_clipped_model_output } : {}),
    });
    sampler.setTimesteps(c.steps);
    assert.equal(sampler.timesteps.length, c.timesteps.length, 'number of model calls');
    sampler.timesteps.forEach((t, i) => assert.ok(Math.abs(t - c.timesteps[i]!) <= 1e-5 * s.timesteps, `timestep ${i}: ${t} vs ${c.timesteps[i]}`));
    const shape: Shape4 = c.shape;
    let x: Float32Array = Float32Array.from(c.x);
    let worst = 0;
    c.calls.forEach((call, i) => {
      const t = sampler.timesteps[i]!;
      const rng = new ReplayRng(call.noise ?? []);
      const { prev } = sampler.step(dummyModel(x, t), t, x, rng, shape);
      const err = relErr(prev, call.prev);
      worst = Math.max(worst, err);
      const tol = 1e-4 + c.f32Deviation[i]!;
      assert.ok(err <= tol, `${c.name} step ${i} (t=${t}): relative error ${err.toExponential(2)} > ${tol.toExponential(2)}`);
      x = prev;
    });
    assert.ok(Number.isFinite(worst));
  });
}
