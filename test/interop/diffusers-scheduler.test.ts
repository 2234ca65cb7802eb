/**
 * samplerFromDiffusersConfig on the scheduler configs real diffusers models
 * ship, on each class's defaults, and on every unsupported value (one
 * DiffuseError naming the field). Trajectory parity with diffusers is
 * test/samplers/diffusers-parity.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiffuseError } from '../../src/errors.js';
import { parseDiffusersJson, samplerFromDiffusersConfig } from '../../src/interop/diffusers-scheduler.js';
import { generate } from '../../src/generate.js';
import { makeSchedule } from '../../src/schedule.js';
import { gaussianOracle } from '../../src/diffusion/gaussian-oracle.js';

// Stable Diffusion 1.5's scheduler/scheduler_config.json
const SD15_PNDM = {
  _class_name: 'PNDMScheduler', _diffusers_version: '0.6.0', beta_end: 0.012, beta_schedule: 'scaled_linear', beta_start: 0.00085,
  num_train_timesteps: 1000, set_alpha_to_one: false, skip_prk_steps: true, steps_offset: 1, trained_betas: null, clip_sample: false,
};
// Stable Diffusion XL base 1.0's
const SDXL_EULER = {
  _class_name: 'EulerDiscreteScheduler', _diffusers_version: '0.19.0.dev0', beta_end: 0.012, beta_schedule: 'scaled_linear', beta_start: 0.00085,
  clip_sample: false, interpolation_type: 'linear', num_train_timesteps: 1000, prediction_type: 'epsilon', sample_max_value: 1.0,
  set_alpha_to_one: false, skip_prk_steps: true, steps_offset: 1, timestep_spacing: 'leading', trained_betas: null, use_karras_sigmas: false,
};
// A DPMSolverMultistepScheduler config as diffusers' save_config writes it (Python json: -Infinity)
const DPM_TEXT = `{
  "_class_name": "DPMSolverMultistepScheduler", "_diffusers_version": "0.27.0", "algorithm_type": "dpmsolver++",
  "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "dynamic_thresholding_ratio": 0.995,
  "euler_at_final": false, "final_sigmas_type": "zero", "lambda_min_clipped": -Infinity, "lower_order_final": true,
  "num_train_timesteps": 1000, "prediction_type": "v_prediction", "rescale_betas_zero_snr": true, "sample_max_value": 1.0,
  "solver_order": 2, "solver_type": "midpoint", "steps_offset": 1, "thresholding": false, "timestep_spacing": "trailing",
  "trained_betas": null, "use_karras_sigmas": false, "use_lu_lambdas": false, "variance_type": null, "note": "NaN in a string"
}`;

const isDE = (re: RegExp) => (e: unknown): boolean => e instanceof DiffuseError && re.test(e.message);

test('Stable Diffusion 1.5 (PNDMScheduler): refused by name, or read as DDIM on request', () => {
  assert.throws(() => samplerFromDiffusersConfig(SD15_PNDM), isDE(/_class_name "PNDMScheduler" is not supported \(supported: DDPMScheduler, DDIMScheduler/));
  const s = samplerFromDiffusersConfig(SD15_PNDM, { sampler: 'ddim' });
  assert.deepEqual(s, {
    className: 'DDIMScheduler', sampler: 'ddim', schedule: 'scaled-linear', timesteps: 1000, prediction: 'epsilon', betaStart: 0.00085, betaEnd: 0.012,
    samplerOptions: { timestepSpacing: 'leading', stepsOffset: 1, setAlphaToOne: false, prevTimestep: 'stride' },
    clip: false,
  });
});

test('SDXL (EulerDiscreteScheduler): leading spacing with offset 1, no clipping; foreign fields ignored', () => {
  const s = samplerFromDiffusersConfig(SDXL_EULER);
  assert.equal(s.sampler, 'euler');
  assert.deepEqual(s.samplerOptions, { timestepSpacing: 'leading', stepsOffset: 1 });
  assert.equal(s.clip, false);
  const k = samplerFromDiffusersConfig({ ...SDXL_EULER, use_karras_sigmas: true, timestep_spacing: 'trailing' });
  assert.deepEqual(k.samplerOptions, { timestepSpacing: 'trailing', karrasSigmas: true });
});

test('DPMSolverMultistepScheduler from save_config text (-Infinity): v, zero SNR, trailing, 2M as diffusers steps it', () => {
  const s = samplerFromDiffusersConfig(parseDiffusersJson(DPM_TEXT));
  assert.equal(s.sampler, 'dpm-solver');
  assert.equal(s.prediction, 'v');
  assert.equal(s.zeroTerminalSnr, true);
  assert.deepEqual(s.samplerOptions, { timestepSpacing: 'trailing', lowerOrderFinal: false });
  const k = samplerFromDiffusersConfig({ _class_name: 'DPMSolverMultistepScheduler', use_karras_sigmas: true, beta_schedule: 'squaredcos_cap_v2' });
  assert.deepEqual(k.samplerOptions, { karrasSigmas: true, lowerOrderFinal: false, karrasTimesteps: 'floor' });
  assert.equal(k.schedule, 'cosine');
  assert.equal(k.betaStart, undefined);
  assert.equal((parseDiffusersJson('{"a": "NaN Infinity", "b": NaN}') as { a: string; b: number }).a, 'NaN Infinity');
  assert.throws(() => parseDiffusersJson('{"a": }', 'x/scheduler_config.json'), isDE(/x\/scheduler_config\.json: not valid JSON/));
});

test("each class's own defaults: DDPM/DDIM leading and clipped, Heun's β range, Euler linspace", () => {
  const ddpm = samplerFromDiffusersConfig({ _class_name: 'DDPMScheduler' });
  assert.deepEqual([ddpm.schedule, ddpm.betaStart, ddpm.betaEnd, ddpm.clip, ddpm.samplerOptions.timestepSpacing], ['linear', 0.0001, 0.02, 1, 'leading']);
  const ddim = samplerFromDiffusersConfig({ _class_name: 'DDIMScheduler', clip_sample_range: 2 });
  assert.deepEqual(ddim.samplerOptions, { timestepSpacing: 'leading', setAlphaToOne: true, prevTimestep: 'stride', useClippedModelOutput: false });
  assert.equal(ddim.clip, 2);
  const heun = samplerFromDiffusersConfig({ _class_name: 'HeunDiscreteScheduler' });
  assert.deepEqual([heun.betaStart, heun.betaEnd, heun.clip], [0.00085, 0.012, false]);
  assert.equal(samplerFromDiffusersConfig({ _class_name: 'EulerAncestralDiscreteScheduler' }).samplerOptions.timestepSpacing, 'linspace');
  assert.equal(samplerFromDiffusersConfig({ _class_name: 'DDPMScheduler', beta_schedule: 'sigmoid' }).schedule, 'sigmoid');
});

test('unsupported fields and values: one DiffuseError naming the field and the value', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ _class_name: 'DDIMScheduler', thresholding: true }, /DDIMScheduler field 'thresholding' = true is not supported \(only false\)/],
    [{ _class_name: 'DDPMScheduler', variance_type: 'fixed_large' }, /'variance_type' = "fixed_large" is not supported \(supported: "fixed_small"\)/],
    [{ _class_name: 'DDPMScheduler', trained_betas: [0.1, 0.2] }, /'trained_betas' = \[0.1,0.2\] is not supported \(only null: give beta_schedule instead\)/],
    [{ _class_name: 'HeunDiscreteScheduler', beta_schedule: 'exp' }, /'beta_schedule' = "exp" is not supported/],
    [{ _class_name: 'EulerDiscreteScheduler', beta_schedule: 'sigmoid' }, /'beta_schedule' = "sigmoid" is not supported/],
    [{ _class_name: 'EulerDiscreteScheduler', prediction_type: 'flow_prediction' }, /'prediction_type' = "flow_prediction"/],
    [{ _class_name: 'EulerDiscreteScheduler', interpolation_type: 'log_linear' }, /'interpolation_type' = "log_linear"/],
    [{ _class_name: 'EulerDiscreteScheduler', use_exponential_sigmas: true }, /'use_exponential_sigmas' = true/],
    [{ _class_name: 'EulerDiscreteScheduler', sigma_min: 0.1 }, /'sigma_min' = 0.1 is not supported \(only null\)/],
    [{ _class_name: 'DPMSolverMultistepScheduler', solver_order: 3 }, /'solver_order' = 3 is not supported \(only 2: DPM-Solver\+\+\(2M\)\)/],
    [{ _class_name: 'DPMSolverMultistepScheduler', algorithm_type: 'sde-dpmsolver++' }, /'algorithm_type' = "sde-dpmsolver\+\+"/],
    [{ _class_name: 'DPMSolverMultistepScheduler', final_sigmas_type: 'sigma_min' }, /'final_sigmas_type' = "sigma_min"/],
    [{ _class_name: 'DPMSolverMultistepScheduler', lambda_min_clipped: -5.1 }, /'lambda_min_clipped' = -5.1 is not supported \(only -Infinity\)/],
    [{ _class_name: 'DDIMScheduler', rescale_betas_zero_snr: true }, /'rescale_betas_zero_snr' needs prediction_type "v_prediction" or "sample"/],
    [{ _class_name: 'HeunDiscreteScheduler', rescale_betas_zero_snr: true, prediction_type: 'v_prediction' }, /Heun.*no zero-SNR rescaling/],
    [{ _class_name: 'DDIMScheduler', timestep_spacing: 'even' }, /'timestep_spacing' = "even" is not supported \(supported: "linspace", "leading", "trailing"\)/],
    [{ _class_name: 'DDIMScheduler', num_train_timesteps: 5 }, /'num_train_timesteps' must be an integer in \[10, 4000\], got 5/],
    [{ _class_name: 'DDIMScheduler', steps_offset: -1 }, /'steps_offset' must be an integer/],
    [{ _class_name: 'DDIMScheduler', set_alpha_to_one: 'no' }, /'set_alpha_to_one' must be true or false, got "no"/],
    [{ _class_name: 'DDIMScheduler', beta_start: 0.03, beta_end: 0.02 }, /'beta_start' and beta_end must satisfy 0 < beta_start ≤ beta_end < 1, got 0.03 and 0.02/],
    [{ _class_name: 'DDIMScheduler', clip_sample_range: 0 }, /'clip_sample_range' must be > 0/],
  ];
  for (const [cfg, re] of cases) assert.throws(() => samplerFromDiffusersConfig(cfg, { source: 'm/scheduler_config.json' }), isDE(new RegExp(`^m/scheduler_config\\.json: .*${re.source}`)), `${JSON.stringify(cfg)}`);
  assert.throws(() => samplerFromDiffusersConfig([1]), isDE(/must be a JSON object/));
  assert.throws(() => samplerFromDiffusersConfig({}), isDE(/_class_name undefined is not supported/));
});

test('the translation drives generate() as it is: Euler ancestral from an SD config on the closed-form denoiser', async () => {
  const s = samplerFromDiffusersConfig({ ...SDXL_EULER, _class_name: 'EulerAncestralDiscreteScheduler' });
  const model = gaussianOracle({ schedule: makeSchedule(s.schedule, s.timesteps, s), prediction: s.prediction, mean: 0.2, std: 0.3 });
  const r = await generate(model, { ...s, imageSize: 2, channels: 1, steps: 30, n: 500, seed: 3 });
  let m = 0;
  for (const v of r.images) m += v / r.images.length;
  assert.ok(Math.abs(m - 0.2) < 0.03, `mean ${m}`);
});
