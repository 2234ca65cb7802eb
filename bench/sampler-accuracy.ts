/**
 * Sampler accuracy against the closed-form Gaussian denoiser (no training).
 * Prints the markdown table of docs/samplers.md:
 *   npx tsc -p tsconfig.json && node dist/bench/sampler-accuracy.js
 * Data: x_0 ~ N(μ=0.5, σ=0.6²) per dimension, N samples of D dims each,
 * linear schedule, T = 1000, epsilon prediction, seed 0.
 */
import { Rng } from '../src/rng.js';
import { makeSchedule } from '../src/schedule.js';
import { gaussianOracle } from '../src/diffusion/gaussian-oracle.js';
import { createSampler, type SamplerName } from '../src/samplers/factory.js';
import { ddimInvert, sample } from '../src/samplers/loop.js';
import type { Shape4 } from '../src/diffusion/types.js';

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

async function main(): Promise<void> {
  const schedule = makeSchedule('linear', 1000);
  const model = gaussianOracle({ schedule, prediction: 'epsilon', mean: MU, std: SIGMA });
  const shape: Shape4 = [N, 1, 1, D];
  const rows: string[] = [];
  const runs: [SamplerName, number][] = [
    ['ddpm', 1000], ['ddpm', 250], ['ddpm', 50],
    ['ddim', 10], ['ddim', 20], ['ddim', 50], ['ddim', 100],
    ['dpm-solver', 10], ['dpm-solver', 15], ['dpm-solver', 20], ['dpm-solver', 25],
  ];
  const n = N * D;
  const seMean = SIGMA / Math.sqrt(n);
  const seVar = SIGMA ** 2 * Math.sqrt(2 / (n - 1));
  for (const [name, steps] of runs) {
    const sampler = createSampler(name, { schedule, prediction: 'epsilon' });
    const t0 = performance.now();
    const x = await sample(model, sampler, shape, { rng: new Rng(0), steps });
    const ms = performance.now() - t0;
    const m = moments(x);
    rows.push(`| ${name} | ${steps} | ${(m.mean - MU).toFixed(4)} | ${(m.variance - SIGMA ** 2).toFixed(4)} | ${ms.toFixed(0)} |`);
  }
  console.log(`Gaussian data N(${MU}, ${SIGMA}²), ${N} samples × ${D} dims (n = ${n}), linear schedule T = 1000, ε-prediction oracle, seed 0.`);
  console.log(`Sampling noise alone: SE(mean) = σ/√n = ${seMean.toFixed(4)}, SE(var) ≈ σ²√(2/(n−1)) = ${seVar.toFixed(4)} (true var ${(SIGMA ** 2).toFixed(2)}).`);
  console.log('');
  console.log('| sampler | steps | mean error | variance error | time (ms) |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
  console.log('');
  console.log('DDIM (eta = 0) inversion: encode x_0 → x_T, decode back with the same steps (same data, 1000 × 2).');
  console.log('');
  console.log('| steps | max abs error | RMS error |');
  console.log('|---:|---:|---:|');
  const small: Shape4 = [1000, 1, 1, D];
  const rng = new Rng(1);
  const x0 = new Float32Array(1000 * D);
  for (let i = 0; i < x0.length; i++) x0[i] = MU + SIGMA * rng.normal();
  for (const steps of [10, 20, 50, 100, 250]) {
    const xT = await ddimInvert(model, schedule, 'epsilon', x0, small, steps);
    const back = await sample(model, createSampler('ddim', { schedule, prediction: 'epsilon', eta: 0 }), small, { rng: new Rng(2), steps, xT });
    let mx = 0;
    let sq = 0;
    for (let i = 0; i < x0.length; i++) { const e = Math.abs(back[i]! - x0[i]!); mx = Math.max(mx, e); sq += e * e; }
    console.log(`| ${steps} | ${mx.toExponential(2)} | ${Math.sqrt(sq / x0.length).toExponential(2)} |`);
  }
}

main().catch((e: unknown) => { console.error(e); process.exitCode = 1; });
