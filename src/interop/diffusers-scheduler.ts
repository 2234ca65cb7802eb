/**
 * diffusers' `scheduler/scheduler_config.json` -> the project's schedule,
 * prediction type and sampler settings: a pure translation at the edge
 * (engine-free, no file access), so that a diffusers model samples here as it
 * does there (test/samplers/diffusers-parity.test.ts runs diffusers' own
 * trajectories through it).
 *
 * Supported classes and the sampler each becomes:
 *   DDPMScheduler -> ddpm, DDIMScheduler -> ddim, EulerDiscreteScheduler -> euler,
 *   EulerAncestralDiscreteScheduler -> euler-ancestral, HeunDiscreteScheduler -> heun,
 *   DPMSolverMultistepScheduler -> dpm-solver (DPM-Solver++(2M) only).
 * Each class reads the fields its diffusers constructor reads, with that
 * class's defaults for missing ones (Heun's β range differs); fields a class
 * does not read are ignored, as diffusers' `from_config` ignores them. A field
 * value we do not implement is a DiffuseError naming the field and the value.
 *
 * Choices made to reproduce diffusers rather than this project's defaults:
 * DDIM lands each step on t − ⌊T/n⌋ (prevTimestep 'stride') and moves along
 * the model's own ε̂ under clipping (useClippedModelOutput false); DPM-Solver's
 * step into its last timestep is second order (lowerOrderFinal false: the final
 * step to σ = 0 is the first-order one there) and, with Karras sigmas, calls
 * the model at rounded timesteps (truncated for the cosine schedule).
 */
import { DiffuseError } from '../errors.js';
import { makeSchedule, MAX_T, MIN_T, type ScheduleName } from '../schedule.js';
import type { PredictionType } from '../diffusion/types.js';
import { createSampler, type SamplerName, type SamplerSettings } from '../samplers/factory.js';
import type { TimestepSpacing } from '../samplers/spacing.js';

export type DiffusersSchedulerClass =
  | 'DDPMScheduler'
  | 'DDIMScheduler'
  | 'EulerDiscreteScheduler'
  | 'EulerAncestralDiscreteScheduler'
  | 'HeunDiscreteScheduler'
  | 'DPMSolverMultistepScheduler';

/** The diffusers class each sampler reproduces. */
export const DIFFUSERS_SCHEDULER_CLASS: { readonly [S in SamplerName]: DiffusersSchedulerClass } = {
  ddpm: 'DDPMScheduler',
  ddim: 'DDIMScheduler',
  euler: 'EulerDiscreteScheduler',
  'euler-ancestral': 'EulerAncestralDiscreteScheduler',
  heun: 'HeunDiscreteScheduler',
  'dpm-solver': 'DPMSolverMultistepScheduler',
};

/** What a scheduler config becomes: the fields generate() takes for schedule, prediction and sampler. */
export interface DiffusersSampling {
  readonly className: DiffusersSchedulerClass;
  readonly sampler: SamplerName;
  readonly schedule: ScheduleName;
  /** Number of training timesteps T. */
  readonly timesteps: number;
  readonly prediction: PredictionType;
  readonly betaStart?: number;
  readonly betaEnd?: number;
  readonly zeroTerminalSnr?: boolean;
  readonly samplerOptions: SamplerSettings;
  /** Clip x̂_0 to [−c, c] (clip_sample with clip_sample_range c), or not at all. */
  readonly clip: false | number;
}

/**
 * Parse a scheduler_config.json as Python's json module writes it: bare
 * NaN, Infinity and -Infinity (e.g. DPMSolverMultistepScheduler's
 * lambda_min_clipped) are allowed outside strings.
 */
export function parseDiffusersJson(text: string, source = 'scheduler_config.json'): unknown {
  const marked = text.replace(/"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g, (m) => (m.startsWith('"') ? m : `"__py_float__${m}"`));
  try {
    return JSON.parse(marked, (_k, v: unknown) => (typeof v === 'string' && v.startsWith('__py_float__') ? Number(v.slice(12)) : v));
  } catch (e) {
    throw new DiffuseError(`${source}: not valid JSON (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
}

type Json = Record<string, unknown>;

const show = (v: unknown): string => (typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v));

/** Reads one class's fields with its defaults; every complaint names the field. */
class Fields {
  constructor(
    private readonly cfg: Json,
    private readonly source: string,
    private readonly cls: DiffusersSchedulerClass,
  ) {}

  fail(field: string, what: string): never {
    throw new DiffuseError(`${this.source}: ${this.cls} field '${field}' ${what}`);
  }

  private raw(field: string): unknown {
    return this.cfg[field];
  }

  num(field: string, fallback: number): number {
    const v = this.raw(field) ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(field, `must be a number, got ${show(v)}`);
    return v;
  }

  int(field: string, fallback: number, min: number, max: number): number {
    const v = this.num(field, fallback);
    if (!Number.isInteger(v) || v < min || v > max) this.fail(field, `must be an integer in [${min}, ${max}], got ${v}`);
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.raw(field) ?? fallback;
    if (typeof v !== 'boolean') this.fail(field, `must be true or false, got ${show(v)}`);
    return v;
  }

  /** A string field whose value must be one of `supported` (diffusers may know more). */
  oneOf<T extends string>(field: string, fallback: T, supported: readonly T[]): T {
    const v = this.raw(field) ?? fallback;
    if (typeof v !== 'string' || !(supported as readonly string[]).includes(v)) {
      this.fail(field, `= ${show(v)} is not supported (supported: ${supported.map((s) => JSON.stringify(s)).join(', ')})`);
    }
    return v as T;
  }

  /** A field that must keep one value (missing = that value). */
  only(field: string, value: unknown, why = ''): void {
    const v = this.raw(field);
    if (v === undefined || v === value) return;
    this.fail(field, `= ${show(v)} is not supported (only ${show(value)}${why})`);
  }
}

/** diffusers' prediction_type values and ours. */
export const PREDICTIONS: { readonly [k: string]: PredictionType } = { epsilon: 'epsilon', sample: 'x0', v_prediction: 'v' };
/** diffusers' beta_schedule values and ours. */
export const BETA_SCHEDULES: { readonly [k: string]: ScheduleName } = {
  linear: 'linear',
  scaled_linear: 'scaled-linear',
  squaredcos_cap_v2: 'cosine',
  sigmoid: 'sigmoid',
};
const SPACINGS: readonly TimestepSpacing[] = ['linspace', 'leading', 'trailing'];

/**
 * Translate a diffusers scheduler config (parsed JSON) into a sampler and the
 * schedule it runs on. `opts.sampler` reads the config as that sampler's
 * diffusers class instead of its `_class_name` (diffusers' `from_config`: e.g.
 * DDIM on a Stable Diffusion PNDMScheduler config).
 */
export function samplerFromDiffusersConfig(
  json: unknown,
  opts: { readonly sampler?: SamplerName; readonly source?: string } = {},
): DiffusersSampling {
  const source = opts.source ?? 'scheduler_config.json';
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new DiffuseError(`${source}: must be a JSON object`);
  const cfg = json as Json;
  const named = cfg['_class_name'];
  const classes = Object.values(DIFFUSERS_SCHEDULER_CLASS);
  let cls: DiffusersSchedulerClass;
  if (opts.sampler !== undefined) {
    cls = DIFFUSERS_SCHEDULER_CLASS[opts.sampler];
    if (cls === undefined) throw new DiffuseError(`unknown sampler '${String(opts.sampler)}'`);
  } else if (typeof named === 'string' && (classes as string[]).includes(named)) {
    cls = named as DiffusersSchedulerClass;
  } else {
    throw new DiffuseError(`${source}: _class_name ${JSON.stringify(named)} is not supported (supported: ${classes.join(', ')}); choose a sampler to use its schedule`);
  }
  const f = new Fields(cfg, source, cls);
  const sampler = (Object.keys(DIFFUSERS_SCHEDULER_CLASS) as SamplerName[]).find((s) => DIFFUSERS_SCHEDULER_CLASS[s] === cls)!;
  const heun = cls === 'HeunDiscreteScheduler';

  // The schedule: every class
  const T = f.int('num_train_timesteps', 1000, MIN_T, MAX_T);
  f.only('trained_betas', null, ': give beta_schedule instead');
  const betaNames = cls === 'DDPMScheduler' ? Object.keys(BETA_SCHEDULES) : Object.keys(BETA_SCHEDULES).filter((k) => k !== 'sigmoid');
  const schedule = BETA_SCHEDULES[f.oneOf('beta_schedule', 'linear', betaNames)]!;
  const ranged = schedule !== 'cosine';
  const betaStart = ranged ? f.num('beta_start', heun ? 0.00085 : 0.0001) : undefined;
  const betaEnd = ranged ? f.num('beta_end', heun ? 0.012 : 0.02) : undefined;
  if (betaStart !== undefined && betaEnd !== undefined && !(betaStart > 0 && betaStart <= betaEnd && betaEnd < 1)) {
    f.fail('beta_start', `and beta_end must satisfy 0 < beta_start ≤ beta_end < 1, got ${betaStart} and ${betaEnd}`);
  }
  const zeroTerminalSnr = heun ? (f.only('rescale_betas_zero_snr', false, ': HeunDiscreteScheduler has no zero-SNR rescaling'), false) : f.bool('rescale_betas_zero_snr', false);
  const prediction = PREDICTIONS[f.oneOf('prediction_type', 'epsilon', Object.keys(PREDICTIONS))]!;

  // Timesteps
  const spacing = f.oneOf<TimestepSpacing>('timestep_spacing', cls === 'DDPMScheduler' || cls === 'DDIMScheduler' ? 'leading' : 'linspace', SPACINGS);
  const offset = f.int('steps_offset', 0, 0, T - 1);
  const karras = cls === 'EulerDiscreteScheduler' || heun || cls === 'DPMSolverMultistepScheduler' ? f.bool('use_karras_sigmas', false) : false;
  if (cls === 'EulerDiscreteScheduler' || heun || cls === 'DPMSolverMultistepScheduler') {
    f.only('use_exponential_sigmas', false);
    f.only('use_beta_sigmas', false);
  }
  if (zeroTerminalSnr && prediction === 'epsilon') {
    f.fail('rescale_betas_zero_snr', 'needs prediction_type "v_prediction" or "sample": at zero terminal SNR an ε-prediction says nothing about x_0');
  }

  // Clipping and thresholding
  const clipped = cls === 'DDPMScheduler' || cls === 'DDIMScheduler' || heun;
  const clip = clipped && f.bool('clip_sample', !heun) ? f.num('clip_sample_range', 1) : false;
  if (clip !== false && !(clip > 0)) f.fail('clip_sample_range', `must be > 0, got ${clip}`);
  if (cls === 'DDPMScheduler' || cls === 'DDIMScheduler' || cls === 'DPMSolverMultistepScheduler') f.only('thresholding', false);

  const options: { -readonly [K in keyof SamplerSettings]: SamplerSettings[K] } = {};
  if (!(cls === 'DPMSolverMultistepScheduler' && karras)) options.timestepSpacing = spacing;
  if (spacing === 'leading' && offset !== 0 && options.timestepSpacing !== undefined) options.stepsOffset = offset;
  if (karras) options.karrasSigmas = true;
  switch (cls) {
    case 'DDPMScheduler':
      f.oneOf('variance_type', 'fixed_small', ['fixed_small']);
      break;
    case 'DDIMScheduler':
      options.setAlphaToOne = f.bool('set_alpha_to_one', true);
      options.prevTimestep = 'stride';
      if (clip !== false) options.useClippedModelOutput = false;
      break;
    case 'EulerDiscreteScheduler':
      f.oneOf('interpolation_type', 'linear', ['linear']);
      f.oneOf('timestep_type', 'discrete', ['discrete']);
      f.oneOf('final_sigmas_type', 'zero', ['zero']);
      f.only('sigma_min', null);
      f.only('sigma_max', null);
      break;
    case 'EulerAncestralDiscreteScheduler':
      break;
    case 'HeunDiscreteScheduler':
      break;
    case 'DPMSolverMultistepScheduler':
      f.only('solver_order', 2, ': DPM-Solver++(2M)');
      f.oneOf('algorithm_type', 'dpmsolver++', ['dpmsolver++']);
      f.oneOf('solver_type', 'midpoint', ['midpoint']);
      f.oneOf('final_sigmas_type', 'zero', ['zero']);
      f.bool('lower_order_final', true); // no effect on 2M with a final step to σ = 0
      f.only('euler_at_final', false);
      f.only('use_lu_lambdas', false);
      f.only('use_flow_sigmas', false);
      f.only('use_dynamic_shifting', false);
      f.only('variance_type', null);
      f.only('lambda_min_clipped', -Infinity);
      options.lowerOrderFinal = false;
      if (karras) options.karrasTimesteps = schedule === 'cosine' ? 'floor' : 'round';
      break;
    default: {
      const never: never = cls;
      throw new DiffuseError(`unhandled scheduler class ${String(never)}`);
    }
  }

  const out: DiffusersSampling = {
    className: cls,
    sampler,
    schedule,
    timesteps: T,
    prediction,
    ...(betaStart !== undefined ? { betaStart } : {}),
    ...(betaEnd !== undefined ? { betaEnd } : {}),
    ...(zeroTerminalSnr ? { zeroTerminalSnr } : {}),
    samplerOptions: options,
    clip,
  };
  // Everything downstream must accept it now, not at the first sampling step.
  try {
    const sch = makeSchedule(out.schedule, out.timesteps, out);
    createSampler(out.sampler, { ...out.samplerOptions, schedule: sch, prediction: out.prediction, ...(clip !== false ? { clipX0: clip } : {}) });
  } catch (e) {
    if (e instanceof DiffuseError) throw new DiffuseError(`${source}: ${cls}: ${e.message}`, { cause: e });
    throw e;
  }
  return out;
}
