/** Build a sampler by name. */
import { DiffuseError } from '../errors.js';
import { DdimSampler } from './ddim.js';
import { DdpmSampler } from './ddpm.js';
import { DpmSolverSampler } from './dpm-solver.js';
import type { Sampler, SamplerOptions } from './types.js';

export type SamplerName = 'ddpm' | 'ddim' | 'dpm-solver';
export const SAMPLER_NAMES: readonly SamplerName[] = ['ddpm', 'ddim', 'dpm-solver'];

export interface CreateSamplerOptions extends SamplerOptions {
  /** DDIM only: 0 = deterministic (default), 1 = ancestral. */
  readonly eta?: number;
  /** DDPM only: reverse variance β̃ ('small', default) or β ('large'). */
  readonly variance?: 'small' | 'large';
  /** DPM-Solver only: first-order step into the last timestep (default true). */
  readonly lowerOrderFinal?: boolean;
}

export function createSampler(name: SamplerName, opts: CreateSamplerOptions): Sampler {
  switch (name) {
    case 'ddpm': return new DdpmSampler(opts);
    case 'ddim': return new DdimSampler(opts);
    case 'dpm-solver': return new DpmSolverSampler(opts);
    default: {
      const n: never = name;
      throw new DiffuseError(`unknown sampler '${String(n)}'; expected one of ${SAMPLER_NAMES.join(', ')}`);
    }
  }
}
