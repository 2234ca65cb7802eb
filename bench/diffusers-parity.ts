/**
 * Replays diffusers' scheduler trajectories (test/fixtures/diffusers-schedulers.json,
 * made by test/fixtures/make_scheduler_fixtures.py) through our samplers:
 * each case's scheduler_config goes through samplerFromDiffusersConfig, then
 * the sampler runs from the same x with the same dummy model and per-step
 * noise. Used by test/samplers/diffusers-parity.test.ts (which asserts) and
 * bench/sampler-accuracy.ts (which tabulates). Prints a per-case summary:
 *   npx tsc -p tsconfig.json && node dist/bench/diffusers-parity.js
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { makeSchedule } from '../src/schedule.js';
import { createSampler } from '../src/samplers/factory.js';
import { samplerFromDiffusersConfig, type DiffusersSampling } from '../src/interop/diffusers-scheduler.js';
import { Rng } from '../src/rng.js';
import type { Shape4 } from '../src/diffusion/types.js';

export interface ParityCall { readonly t: number; readonly prev: readonly number[]; readonly noise?: readonly number[] }
export interface ParityCase {
  readonly name: string;
  readonly config: Record<string, unknown>;
  readonly steps: number;
  readonly shape: [number, number, number, number];
  readonly timesteps: readonly number[];
  readonly x: readonly number[];
  readonly calls: readonly ParityCall[];
  readonly customTimesteps?: readonly number[];
  readonly eta?: number;
  readonly use_clipped_model_output?: boolean;
  /** Per step: how far diffusers' float32 run is from the same code in float64 (relative, max norm). */
  readonly f32Deviation: readonly number[];
}

export const PARITY_FIXTURE = fileURLToPath(new URL('../../test/fixtures/diffusers-schedulers.json', import.meta.url));

export function loadParityCases(): ParityCase[] {
  return (JSON.parse(readFileSync(PARITY_FIXTURE, 'utf8')) as { cases: ParityCase[] }).cases;
}

/** The fixture's dummy model: out_i = 0.9 x_i + 0.1 cos(0.5 i + t/100). */
export function parityModel(x: Float32Array, t: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = 0.9 * x[i]! + 0.1 * Math.cos(0.5 * i + t / 100);
  return out;
}

/** An Rng whose normals are the noise diffusers drew during one step. */
export class ReplayRng extends Rng {
  private k = 0;
  constructor(private readonly values: readonly number[]) { super(0); }
  override normal(): number {
    const v = this.values[this.k++];
    if (v === undefined) throw new Error(`replay: the step asked for more than the ${this.values.length} stored normals`);
    return v;
  }
}

/** max |a − b| / max |b|. */
export function maxRelError(ours: Float32Array, ref: readonly number[]): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num = Math.max(num, Math.abs(ours[i]! - ref[i]!));
    den = Math.max(den, Math.abs(ref[i]!));
  }
  return num / den;
}

export interface ParityRun {
  readonly settings: DiffusersSampling;
  /** Our model-call timesteps. */
  readonly timesteps: readonly number[];
  /** Per step: max relative error of our sample after the step against diffusers'. */
  readonly errors: readonly number[];
}

/** Run one case: translate its config, step through its calls (our own trajectory), compare every step. */
export function runParityCase(c: ParityCase): ParityRun {
  const settings = samplerFromDiffusersConfig(c.config, { source: c.name });
  const schedule = makeSchedule(settings.schedule, settings.timesteps, settings);
  const sampler = createSampler(settings.sampler, {
    ...settings.samplerOptions,
    schedule,
    prediction: settings.prediction,
    ...(settings.clip !== false ? { clipX0: settings.clip } : {}),
    ...(c.customTimesteps !== undefined ? { customTimesteps: c.customTimesteps } : {}),
    ...(c.eta !== undefined ? { eta: c.eta } : {}),
    ...(c.use_clipped_model_output !== undefined ? { useClippedModelOutput: c.use_clipped_model_output } : {}),
  });
  sampler.setTimesteps(c.steps);
  const shape: Shape4 = c.shape;
  let x: Float32Array = Float32Array.from(c.x);
  const errors = c.calls.map((call, i) => {
    const t = sampler.timesteps[i] ?? Number.NaN;
    const { prev } = sampler.step(parityModel(x, t), t, x, new ReplayRng(call.noise ?? []), shape);
    x = prev;
    return maxRelError(prev, call.prev);
  });
  return { settings, timesteps: sampler.timesteps, errors };
}

function main(): void {
  for (const c of loadParityCases()) {
    const r = runParityCase(c);
    const worst = Math.max(...r.errors);
    console.log(`${c.name.padEnd(26)} ${r.settings.sampler.padEnd(16)} ${String(r.errors.length).padStart(3)} steps  max rel error ${worst.toExponential(1)}  (diffusers float32 vs float64: ${Math.max(...c.f32Deviation).toExponential(1)})`);
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main();
