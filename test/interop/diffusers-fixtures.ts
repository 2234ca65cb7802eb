/** The fixtures of test/fixtures/diffusers (made by test/fixtures/make_diffusers_fixtures.py with diffusers' own code), read. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.js';
import type { Weights } from '../../src/tensor.js';
import { ROOT } from '../cli/fixtures.js';

export const FIXTURES = join(ROOT, 'test', 'fixtures', 'diffusers');
export const CASES = ['ddpm', 'ddim-class', 'plain', 'cond', 'cond-linear'] as const;

export interface FixtureIO {
  case: string;
  class: string;
  shape: [number, number, number, number];
  x: number[];
  t: number[];
  classes?: number[];
  context?: number[];
  contextShape?: [number, number, number];
  out: number[];
  f64Deviation: number;
  pipeline?: { steps: number; classes: number[]; timesteps: number[]; xT: number[]; images: number[] };
}

export function fixtureIO(name: string): FixtureIO {
  return JSON.parse(readFileSync(join(FIXTURES, `${name}.io.json`), 'utf8')) as FixtureIO;
}

export function fixtureTensors(name: string): Weights {
  const st = readSafetensors(join(FIXTURES, name, 'unet', 'diffusion_pytorch_model.safetensors'));
  return Object.fromEntries(Object.entries(st.tensors).map(([k, t]) => [k, { shape: t.shape, data: t.data }]));
}

export function fixtureConfigJson(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(FIXTURES, name, 'unet', 'config.json'), 'utf8')) as Record<string, unknown>;
}

/** max |a - b| / max |b|. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0, r = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
    r = Math.max(r, Math.abs(b[i]!));
  }
  return m / r;
}

