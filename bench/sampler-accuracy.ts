/**
 * Sampler accuracy against the closed-form Gaussian denoiser (no training),
 * and parity with diffusers' schedulers. Prints the markdown tables of
 * docs/samplers.md:
 *   npx tsc -p tsconfig.json && node dist/bench/sampler-accuracy.js
 * Data: x_0 ~ N(μ=0.5, σ=0.6²) per dimension, N samples of D dims each,
 * linear schedule, T = 1000, epsilon prediction (v on the zero-terminal-SNR
 * schedule), seed 0. Parity: bench/diffusers-parity.ts over
 * test/fixtures/diffusers-schedulers.json.
 */
import { Rng } from '../src/rng.js';
import { makeSchedule, type Schedule } from '../src/schedule.js';
import { gaussianOracle } from '../src/diffusion/gaussian-oracle.js';
import { createSampler, type SamplerName, type SamplerSettings } from '../src/samplers/factory.js';
import { ddimInvert, sample } from '../src/samplers/loop.js';
import type { PredictionType, Shape4 } from '../src/diffusion/types.js';
import type { TimestepSpacing } from '../src/samplers/spacing.js';
import { loadParityCases, runParityCase } from './diffusers-parity.js';

const MU = 0.5;
const SIGMA = 0.6;
const N = 4000;
const D = 2;

function moments(x: Float32Array): { mean: number; variance: number } {
  let s = 0;
  for (const v of x) s += v;
  const mean = s / x.length;
  let q = 0;
  for (const v of x) q += (v - mean) ** 2;
  return { mean, variance: q / (x.length - 1) };
}

const shape: Shape4 = [N, 1, 1, D];
const linear = makeSchedule('linear', 1000);
const zeroSnr = makeSchedule('linear', 1000, { zeroTerminalSnr: true });

interface Run { sampler: SamplerName; steps: number; settings: SamplerSettings; schedule?: Schedule; prediction?: PredictionType }

async function oracle(r: Run): Promise<{ nfe: number; mean: number; variance: number; ms: number }> {
  const schedule = r.schedule ?? linear;
  const prediction = r.prediction ?? 'epsilon';
  const model = gaussianOracle({ schedule, prediction, mean: MU, std: SIGMA });
  const sampler = createSampler(r.sampler, { ...r.settings, schedule, prediction });
  const t0 = performance.now();
  const x = await sample(model, sampler, shape, { rng: new Rng(0), steps: r.steps });
  const ms = performance.now() - t0;
  const m = moments(x);
  return { nfe: sampler.timesteps.length, mean: m.mean - MU, variance: m.variance - SIGMA ** 2, ms };
}

/** Our label of a parity case: sampler, spacing (or karras/custom), zero SNR. */
function parityKey(sampler: SamplerName, s: SamplerSettings, zsnr: boolean, custom: boolean): string {
  const where = custom ? 'custom' : s.karrasSigmas === true ? 'karras' : s.timestepSpacing ?? 'uniform';
  return `${sampler}/${where}${zsnr ? '/zero-snr' : ''}`;
}

const f = (v: number): string => v.toFixed(4);

async function main(): Promise<void> {
  const parity = new Map<string, { worst: number; cases: number }>();
  for (const c of loadParityCases()) {
    const r = runParityCase(c);
    const key = parityKey(r.settings.sampler, r.settings.samplerOptions, r.settings.zeroTerminalSnr === true, c.customTimesteps !== undefined);
    const p = parity.get(key) ?? { worst: 0, cases: 0 };
    parity.set(key, { worst: Math.max(p.worst, ...r.errors), cases: p.cases + 1 });
  }
  const parityCell = (key: string): string => {
    const p = parity.get(key);
    return p === undefined ? '—' : `${p.worst.toExponential(1)} (${p.cases})`;
  };

  const n = N * D;
  console.log(`Gaussian data N(${MU}, ${SIGMA}²), ${N} samples × ${D} dims (n = ${n}), linear schedule T = 1000, ε-prediction oracle, seed 0.`);
  console.log(`Sampling noise alone: SE(mean) = σ/√n = ${(SIGMA / Math.sqrt(n)).toFixed(4)}, SE(var) ≈ σ²√(2/(n−1)) = ${(SIGMA ** 2 * Math.sqrt(2 / (n - 1))).toFixed(4)} (true var ${(SIGMA ** 2).toFixed(2)}).`);
  // The exact probability-flow ODE from t = T−1 maps the same x_T (seed 0: sample() draws it first) to
  // x_0 = μ + σ (x_T − sqrt(ᾱ)μ)/sqrt(ᾱσ² + 1 − ᾱ): where every deterministic sampler converges.
  const ab = linear.alphaBar[999]!;
  const xT = new Rng(0).normalArray(n);
  const exact = xT.map((v) => MU + (SIGMA * (v - Math.sqrt(ab) * MU)) / Math.sqrt(ab * SIGMA ** 2 + 1 - ab));
  const em = moments(exact);
  console.log(`The exact probability-flow ODE from the same x_T gives mean error ${f(em.mean - MU)}, variance error ${f(em.variance - SIGMA ** 2)}: this seed's own sampling noise, where every deterministic sampler converges.`);
  console.log('');
  console.log('Every sampler and spacing at its usual number of steps. Parity: the largest per-step relative error against');
  console.log("diffusers' own trajectory over the fixture's cases of that sampler and spacing (their number in brackets).");
  console.log('');
  console.log('| sampler | spacing | steps | NFE | mean error | variance error | diffusers parity | time (ms) |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  const spacings: TimestepSpacing[] = ['uniform', 'linspace', 'leading', 'trailing'];
  const usual: [SamplerName, number][] = [['ddpm', 250], ['ddim', 50], ['euler', 50], ['euler-ancestral', 50], ['heun', 25], ['dpm-solver', 20]];
  const karrasOk = new Set<SamplerName>(['euler', 'euler-ancestral', 'heun', 'dpm-solver']);
  for (const [sampler, steps] of usual) {
    const rows: [string, SamplerSettings, string][] = spacings.map((sp) => [
      sp === 'leading' ? 'leading, offset 1' : sp,
      { timestepSpacing: sp, ...(sp === 'leading' ? { stepsOffset: 1 } : {}) },
      parityKey(sampler, { timestepSpacing: sp }, false, false),
    ]);
    if (karrasOk.has(sampler)) rows.push(['Karras σ', { karrasSigmas: true }, parityKey(sampler, { karrasSigmas: true }, false, false)]);
    rows.push(['custom', {}, parityKey(sampler, {}, false, true)]);
    for (const [label, settings, key] of rows) {
      if (label === 'custom') {
        if (parity.has(key)) console.log(`| ${sampler} | custom list | | | | | ${parityCell(key)} | |`);
        continue;
      }
      const r = await oracle({ sampler, steps, settings });
      console.log(`| ${sampler} | ${label} | ${steps} | ${r.nfe} | ${f(r.mean)} | ${f(r.variance)} | ${parityCell(key)} | ${r.ms.toFixed(0)} |`);
    }
  }
  console.log('');
  console.log('Zero terminal SNR (Lin et al. 2023): the linear schedule rescaled so that ᾱ_{T−1} = 0, a v-prediction oracle, trailing spacing.');
  console.log('');
  console.log('| sampler | steps | NFE | mean error | variance error | diffusers parity | time (ms) |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const [sampler, steps] of usual) {
    const r = await oracle({ sampler, steps, settings: { timestepSpacing: 'trailing' }, schedule: zeroSnr, prediction: 'v' });
    console.log(`| ${sampler} | ${steps} | ${r.nfe} | ${f(r.mean)} | ${f(r.variance)} | ${parityCell(parityKey(sampler, { timestepSpacing: 'trailing' }, true, false))} | ${r.ms.toFixed(0)} |`);
  }
  console.log('');
  console.log('Step counts, default (uniform) spacing unless noted.');
  console.log('');
  console.log('| sampler | steps | NFE | mean error | variance error | time (ms) |');
  console.log('|---|---:|---:|---:|---:|---:|');
  const sweep: [SamplerName, number, SamplerSettings, string][] = [
    ['ddpm', 1000, {}, ''], ['ddpm', 250, {}, ''], ['ddpm', 50, {}, ''],
    ['ddim', 10, {}, ''], ['ddim', 20, {}, ''], ['ddim', 50, {}, ''], ['ddim', 100, {}, ''],
    ['euler', 10, {}, ''], ['euler', 20, {}, ''], ['euler', 50, {}, ''],
    ['euler', 10, { karrasSigmas: true }, ' (Karras)'], ['euler', 20, { karrasSigmas: true }, ' (Karras)'],
    ['euler-ancestral', 20, {}, ''], ['euler-ancestral', 50, {}, ''], ['euler-ancestral', 100, {}, ''],
    ['heun', 5, {}, ''], ['heun', 10, {}, ''], ['heun', 25, {}, ''],
    ['heun', 5, { karrasSigmas: true }, ' (Karras)'], ['heun', 10, { karrasSigmas: true }, ' (Karras)'],
    ['dpm-solver', 10, {}, ''], ['dpm-solver', 15, {}, ''], ['dpm-solver', 20, {}, ''], ['dpm-solver', 25, {}, ''],
    ['dpm-solver', 10, { karrasSigmas: true }, ' (Karras)'], ['dpm-solver', 20, { karrasSigmas: true }, ' (Karras)'],
    ['dpm-solver', 50, { karrasSigmas: true }, ' (Karras)'], ['dpm-solver', 200, { karrasSigmas: true }, ' (Karras)'],
    ['heun', 100, { karrasSigmas: true }, ' (Karras)'],
  ];
  for (const [sampler, steps, settings, note] of sweep) {
    const r = await oracle({ sampler, steps, settings });
    console.log(`| ${sampler}${note} | ${steps} | ${r.nfe} | ${f(r.mean)} | ${f(r.variance)} | ${r.ms.toFixed(0)} |`);
  }
  console.log('');
  console.log('DDIM (eta = 0) inversion: encode x_0 → x_T, decode back with the same steps (same data, 1000 × 2).');
  console.log('');
  console.log('| steps | max abs error | RMS error |');
  console.log('|---:|---:|---:|');
  const model = gaussianOracle({ schedule: linear, prediction: 'epsilon', mean: MU, std: SIGMA });
  const small: Shape4 = [1000, 1, 1, D];
  const rng = new Rng(1);
  const x0 = new Float32Array(1000 * D);
  for (let i = 0; i < x0.length; i++) x0[i] = MU + SIGMA * rng.normal();
  for (const steps of [10, 20, 50, 100, 250]) {
    const xT = await ddimInvert(model, linear, 'epsilon', x0, small, steps);
    const back = await sample(model, createSampler('ddim', { schedule: linear, prediction: 'epsilon', eta: 0 }), small, { rng: new Rng(2), steps, xT });
    let mx = 0;
    let sq = 0;
    for (let i = 0; i < x0.length; i++) { const e = Math.abs(back[i]! - x0[i]!); mx = Math.max(mx, e); sq += e * e; }
    console.log(`| ${steps} | ${mx.toExponential(2)} | ${Math.sqrt(sq / x0.length).toExponential(2)} |`);
  }
}

main().catch((e: unknown) => { console.error(e); process.exitCode = 1; });
