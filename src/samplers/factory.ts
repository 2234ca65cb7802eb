/** Build a sampler by name. */
import { DiffuseError } from '../errors.js';
import { DdimSampler, type DdimPrevTimestep } from './ddim.js';
import { DdpmSampler } from './ddpm.js';
import { DpmSolverSampler, type KarrasTimesteps } from './dpm-solver.js';
import { EulerSampler } from './euler.js';
import { HeunSampler } from './heun.js';
import type { Sampler, SamplerOptions } from './types.js';

export type SamplerName = 'ddpm' | 'ddim' | 'dpm-solver' | 'euler' | 'euler-ancestral' | 'heun';
export const SAMPLER_NAMES: readonly SamplerName[] = ['ddpm', 'ddim', 'dpm-solver', 'euler', 'euler-ancestral', 'heun'];

/** The options of a sampler beyond the schedule and prediction type (what `createSampler` takes besides them). */
export interface SamplerSettings extends Omit<SamplerOptions, 'schedule' | 'prediction'> {
  /** DDIM only: 0 = deterministic (default), 1 = ancestral. */
  readonly eta?: number;
  /** DDIM only: after the last timestep land on ᾱ = 1 (default) or on ᾱ_0. */
  readonly setAlphaToOne?: boolean;
  /** DDIM only: with clipping, move along the ε̂ of the clipped x̂_0 (default) or the model's own. */
  readonly useClippedModelOutput?: boolean;
  /** DDIM only: a step lands on the next timestep ('next', default) or t − ⌊T/n⌋ ('stride', diffusers). */
  readonly prevTimestep?: DdimPrevTimestep;
  /** DDPM only: reverse variance β̃ ('small', default) or β ('large'). */
  readonly variance?: 'small' | 'large';
  /** DPM-Solver only: first-order step into the last timestep (default true). */
  readonly lowerOrderFinal?: boolean;
  /** Euler, Euler ancestral, Heun, DPM-Solver: Karras et al. 2022 noise levels (default false). */
  readonly karrasSigmas?: boolean;
  /** DPM-Solver with Karras sigmas: the model's timestep per level, 'exact' (default), 'round' or 'floor'. */
  readonly karrasTimesteps?: KarrasTimesteps;
}

export type CreateSamplerOptions = SamplerOptions & SamplerSettings;

/** Which samplers read each sampler-specific option; the others reject it. */
const ONLY: { readonly [K in keyof SamplerSettings]?: readonly SamplerName[] } = {
  eta: ['ddim'],
  setAlphaToOne: ['ddim'],
  useClippedModelOutput: ['ddim'],
  prevTimestep: ['ddim'],
  variance: ['ddpm'],
  lowerOrderFinal: ['dpm-solver'],
  karrasSigmas: ['euler', 'euler-ancestral', 'heun', 'dpm-solver'],
  karrasTimesteps: ['dpm-solver'],
};

/** Throw if a sampler-specific option is given to a sampler that does not read it (cheap: no schedule needed). */
export function checkSamplerSettings(name: SamplerName, settings: SamplerSettings): void {
  if (!SAMPLER_NAMES.includes(name)) throw new DiffuseError(`unknown sampler '${String(name)}'; expected one of ${SAMPLER_NAMES.join(', ')}`);
  for (const [key, names] of Object.entries(ONLY)) {
    if (settings[key as keyof SamplerSettings] !== undefined && !names.includes(name)) {
      throw new DiffuseError(`sampler option '${key}' applies to ${names.join(', ')}, not ${name}`);
    }
  }
}

export function createSampler(name: SamplerName, opts: CreateSamplerOptions): Sampler {
  checkSamplerSettings(name, opts);
  switch (name) {
    case 'ddpm': return new DdpmSampler(opts);
    case 'ddim': return new DdimSampler(opts);
    case 'dpm-solver': return new DpmSolverSampler(opts);
    case 'euler': return new EulerSampler(opts);
    case 'euler-ancestral': return new EulerSampler({ ...opts, ancestral: true });
    case 'heun': return new HeunSampler(opts);
    default: {
      const n: never = name;
      throw new DiffuseError(`unknown sampler '${String(n)}'; expected one of ${SAMPLER_NAMES.join(', ')}`);
    }
  }
}

/** The usual number of steps per sampler: DDPM all T, DDIM and Euler 50, Heun 25 (49 network evaluations), DPM-Solver++ 20. */
export function defaultSteps(sampler: SamplerName, T: number): number {
  switch (sampler) {
    case 'ddpm': return T;
    case 'ddim': case 'euler': case 'euler-ancestral': return Math.min(50, T);
    case 'heun': return Math.min(25, T);
    case 'dpm-solver': return Math.min(20, T);
    default: {
      const never: never = sampler;
      throw new DiffuseError(`unknown sampler '${String(never)}'`);
    }
  }
}
