/**
 * Speed of one network evaluation (NFE), in milliseconds per image, at batch
 * 1, 16 and 64, for the same U-Net and the same weights on
 *   - ONNX Runtime (onnxruntime-node, CPU, 2 intra-op threads) running our export,
 *   - tfjs on the native engine (oneDNN; when the addon is built) as sampling runs
 *     it, the batch split between 2 workers on one thread each (model/parallel-runner.ts),
 *     and in one process on both threads; and on the wasm backend (the library's
 *     own U-Net, model/unet.ts),
 *   - PyTorch (bench/nfe_torch.py: the same architecture, CPU, 2 threads,
 *     OMP_WAIT_POLICY=PASSIVE), with glibc's default allocator and at its best
 *     (glibc keeping large blocks: MALLOC_MMAP/TRIM_THRESHOLD_; pytorch_* figures),
 * plus the wall time of a 50-step DDIM batch of 64 with ORT and native (generate()).
 * ORT, the two native paths and PyTorch (both allocators) are timed in R
 * interleaved rounds (default 3, the order reversed every other round,
 * --budget seconds per measurement split between them), each keeping its best
 * round: the machine is shared, other jobs only slow a path down.
 * Each run also checks that the three agree (max abs difference of outputs).
 *
 *   node dist/bench/nfe.js [--checkpoint DIR] [--weights ema|model] [--budget S] [--rounds R]
 *                          [--no-torch] [--no-tfjs] [--no-native] [--python /usr/bin/python3]
 *
 * Default model: defaultUNetConfig() with random weights (seeded). Last line:
 * one JSON object (ort_ms_per_img_nfe, native_ms_per_img_nfe, pytorch_ms_per_img_nfe,
 * ratio = PyTorch / ORT and native_vs_ort = ORT / native at batch 64, and the details).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '../src/engine/tf.js';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { benchOptions } from './options.js';
import { randomParams } from './random-params.js';
import { initEngine } from '../src/engine/backend.js';
import { describeNative, loadNative } from '../src/engine/native.js';
import { createParallelModelFn } from '../src/model/parallel-runner.js';
import { generate } from '../src/generate.js';
import { defaultUNetConfig, type UNetConfig } from '../src/model/config.js';
import { buildUNet } from '../src/model/unet.js';
import { mulberry32 } from '../src/rng.js';
import { exportUNetToOnnx } from '../src/onnx/export-unet.js';
import { createOrtModelFn } from '../src/onnx/runner.js';
import { encodeSafetensors } from '../src/io/safetensors.js';
import { loadModelWeights } from '../src/train/checkpoint.js';
import type { PredictionType } from '../src/diffusion/types.js';
import type { ScheduleName } from '../src/schedule.js';
import type { Weights } from '../src/tensor.js';

const BATCHES = [1, 16, 64] as const;
const CHECK_N = 4;
const CHECK_T = 637;

type Forward = (x: Float32Array, n: number) => Promise<Float32Array>;

/** Median ms per image over repeated forwards: warm-up, then >= 3 runs and >= budget seconds. */
async function timeForward(f: Forward, x: Float32Array, n: number, budgetS: number): Promise<number> {
  for (let i = 0; i < (n === 1 ? 3 : 1); i++) await f(x, n);
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || performance.now() - start < budgetS * 1000) {
    const t0 = performance.now();
    await f(x, n);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return (times[times.length >> 1] as number) / n;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const fmt = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(3));

async function main(): Promise<void> {
  const { values: o } = benchOptions('nfe', {
    checkpoint: { type: 'string', help: 'the model', defaultText: 'the default U-Net, random weights' },
    weights: { type: 'choice', choices: ['ema', 'model'], default: 'ema', help: 'which weights' },
    budget: { type: 'number', min: 0, max: 3600, exclusive: 'min', default: 2, help: 'seconds per measurement (split between the rounds)' },
    rounds: { type: 'int', min: 1, max: 100, default: 3, help: 'interleaved rounds; each path keeps its best' },
    'no-torch': { type: 'flag', help: 'skip the PyTorch baseline' },
    'no-tfjs': { type: 'flag', help: 'skip tfjs on the wasm backend' },
    'no-native': { type: 'flag', help: 'skip the native engine' },
    python: { type: 'string', default: '/usr/bin/python3', help: 'python with torch' },
  } as const);
  const { checkpoint, budget, rounds, python } = o;
  const which = o.weights;
  const noTorch = o['no-torch'];
  const noTfjs = o['no-tfjs'];
  const noNative = o['no-native'];

  let config: UNetConfig = defaultUNetConfig();
  let params: Weights;
  let schedule: ScheduleName = 'linear';
  let timesteps = 1000;
  let prediction: PredictionType = 'epsilon';
  let source = 'defaultUNetConfig(), random weights (seed 0)';
  if (checkpoint !== undefined) {
    const w = await loadModelWeights(checkpoint, which);
    config = w.config.model;
    params = w.params;
    schedule = w.config.diffusion.schedule;
    timesteps = w.config.diffusion.timesteps;
    prediction = w.config.diffusion.prediction;
    source = `${checkpoint} (${which} weights, step ${w.step})`;
  } else {
    params = randomParams(config, 0);
  }
  const S = config.imageSize;
  const C = config.inChannels;
  const per = S * S * C;
  const load0 = loadavg()[0]!;
  console.log(`model: ${source}`);
  console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average at start ${load0.toFixed(2)}; node ${process.version}`);

  const te = performance.now();
  const onnx = exportUNetToOnnx(config, params);
  console.log(`export: ${(onnx.length / 1e6).toFixed(2)} MB in ${((performance.now() - te) / 1000).toFixed(2)} s`);

  const rnd = mulberry32(42);
  const xBig = Float32Array.from({ length: 64 * per }, () => {
    const u = Math.max(rnd(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd());
  });
  const xCheck = xBig.subarray(0, CHECK_N * per);
  const ms: Record<'ort' | 'native' | 'native1' | 'wasm' | 'pytorch' | 'pytorchDefault', Partial<Record<number, number>>> = {
    ort: {}, native: {}, native1: {}, wasm: {}, pytorch: {}, pytorchDefault: {},
  };
  const diffs: Record<string, number> = {};

  // ---- ONNX Runtime, tfjs on the native engine (oneDNN) as sampling runs it (the batch split
  // between 2 worker threads with one oneDNN thread each) and in one process on both threads,
  // and PyTorch with glibc's default allocator and at its best (glibc keeping large blocks:
  // no fresh pages to fault in): timed in interleaved rounds, each path keeping its best
  // round (the machine is shared; other jobs only slow a path down).
  const ort = await createOrtModelFn(onnx, { threads: 2 });
  const ortCheck = Float32Array.from(await ort(xCheck, CHECK_T, [CHECK_N, S, S, C]));
  const inProcessFwd = async (backend: 'native' | 'wasm'): Promise<{ fwd: Forward; dispose(): void }> => {
    await initEngine({ backend });
    const unet = buildUNet(config, params);
    const run = async (x: Float32Array, n: number, t: number): Promise<Float32Array> => {
      await initEngine({ backend });
      const xt = tf.tensor4d(x.subarray(0, n * per), [n, S, S, C]);
      const tt = tf.fill([n], t) as tf.Tensor1D;
      const y = unet.apply(xt, tt);
      const out = (await y.data()) as Float32Array;
      tf.dispose([xt, tt, y]);
      return out;
    };
    const fwd: Forward = (x, n) => run(x, n, 500);
    diffs[`${backend}${backend === 'native' ? '_1proc' : ''}_vs_ort`] = maxAbsDiff(await run(xCheck, CHECK_N, CHECK_T), ortCheck);
    return { fwd, dispose: () => unet.dispose() };
  };
  const nativeOk = loadNative().ok;
  if (!noNative && !nativeOk) console.log(`native engine: ${describeNative()}`);
  const par = !noNative && nativeOk ? await createParallelModelFn(config, params, { backend: 'native' }) : undefined;
  const one = !noNative && nativeOk ? await inProcessFwd('native') : undefined;
  const torchDir = noTorch ? undefined : mkdtempSync(join(tmpdir(), 'nfe-torch-'));
  let nativeDdimS: number | undefined;
  let torchInfo = '';
  try {
    const paths: Array<['ort' | 'native' | 'native1', Forward]> = [['ort', (x, n) => ort(x.subarray(0, n * per), 500, [n, S, S, C])]];
    if (par !== undefined) {
      diffs['native_vs_ort'] = maxAbsDiff(Float32Array.from(await par.model(xCheck, CHECK_T, [CHECK_N, S, S, C])), ortCheck);
      paths.push(['native', async (x, n) => Float32Array.from(await par.model(x.subarray(0, n * per), 500, [n, S, S, C]))]);
    }
    if (one !== undefined) paths.push(['native1', one.fwd]);
    if (torchDir !== undefined) {
      writeFileSync(join(torchDir, 'w.safetensors'), encodeSafetensors(params));
      writeFileSync(join(torchDir, 'config.json'), JSON.stringify({ model: config, check_n: CHECK_N, check_t: CHECK_T }));
      writeFileSync(join(torchDir, 'x.bin'), new Uint8Array(xCheck.buffer, xCheck.byteOffset, xCheck.byteLength));
    }
    const torchRound = (tuned: boolean): void => {
      if (torchDir === undefined) return;
      const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'nfe_torch.py');
      const r = spawnSync(python, [script, join(torchDir, 'w.safetensors'), join(torchDir, 'config.json'), join(torchDir, 'x.bin'),
        join(torchDir, 'y.bin'), BATCHES.join(','), String(budget / rounds)], {
        encoding: 'utf8', timeout: 300_000,
        env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', ...(tuned ? { MALLOC_MMAP_THRESHOLD_: '1073741824', MALLOC_TRIM_THRESHOLD_: '17179869184' } : {}) },
      });
      if (r.status !== 0) {
        console.log(`PyTorch reference failed (exit ${String(r.status)}): ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' | ')}`);
        return;
      }
      const res = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { torch: string; threads: number; ms_per_img: Record<string, number> };
      const into = tuned ? ms.pytorch : ms.pytorchDefault;
      for (const b of BATCHES) {
        const v = res.ms_per_img[String(b)];
        if (v !== undefined) into[b] = Math.min(into[b] ?? Infinity, v);
      }
      const yb = readFileSync(join(torchDir, 'y.bin'));
      diffs['pytorch_vs_ort'] = maxAbsDiff(new Float32Array(yb.buffer, yb.byteOffset, yb.byteLength / 4), ortCheck);
      torchInfo = `torch ${res.torch}, ${res.threads} threads`;
    };
    const inProcessRound = async (r: number): Promise<void> => {
      for (const b of BATCHES) {
        for (const [name, f] of r % 2 === 0 ? paths : [...paths].reverse()) {
          const v = await timeForward(f, xBig, b, budget / rounds);
          ms[name][b] = Math.min(ms[name][b] ?? Infinity, v);
        }
      }
    };
    for (let r = 0; r < rounds; r++) {
      const steps: Array<() => Promise<void> | void> = [() => inProcessRound(r), () => torchRound(false), () => torchRound(true)];
      for (const step of r % 2 === 0 ? steps : [...steps].reverse()) await step();
    }
    console.log(`ORT      ms/img/NFE: ${BATCHES.map((b) => `b${b} ${fmt(ms.ort[b])}`).join('  ')}  (onnxruntime-node, 2 threads)`);
    if (par !== undefined) {
      console.log(`native   ms/img/NFE: ${BATCHES.map((b) => `b${b} ${fmt(ms.native[b])}`).join('  ')}  (${par.workers} workers x ${describeNative(1)}: how sampling runs it)`);
      console.log(`native   ms/img/NFE: ${BATCHES.map((b) => `b${b} ${fmt(ms.native1[b])}`).join('  ')}  (1 process: ${describeNative()})`);
      nativeDdimS = (await generate(par.model, { schedule, timesteps, prediction, imageSize: S, channels: C, sampler: 'ddim', steps: 50, n: 64, seed: 0 })).seconds;
    }
    if (torchDir !== undefined) {
      console.log(`PyTorch  ms/img/NFE: ${BATCHES.map((b) => `b${b} ${fmt(ms.pytorchDefault[b])}`).join('  ')}  (${torchInfo}, default malloc)`);
      console.log(`PyTorch  ms/img/NFE: ${BATCHES.map((b) => `b${b} ${fmt(ms.pytorch[b])}`).join('  ')}  (${torchInfo}, tuned malloc)`);
    }
  } finally {
    await par?.dispose();
    one?.dispose();
    if (torchDir !== undefined) rmSync(torchDir, { recursive: true, force: true });
  }
  if (!noTfjs) {
    const wasm = await inProcessFwd('wasm');
    for (const b of BATCHES) ms.wasm[b] = await timeForward(wasm.fwd, xBig, b, budget);
    wasm.dispose();
    console.log(`tfjs-wasm ms/img/NFE: ${BATCHES.map((b) => `b${b} ${fmt(ms.wasm[b])}`).join('  ')}  (wasm threads ${getThreadsCount()})`);
  }

  if (Object.keys(diffs).length > 0) {
    console.log(`agreement (batch ${CHECK_N}, t=${CHECK_T}), max abs diff vs ORT: ${Object.entries(diffs).map(([k, v]) => `${k.replace('_vs_ort', '')} ${v.toExponential(2)}`).join(', ')}`);
  }

  // ---- 50-step DDIM, batch 64, ORT
  const gen = await generate(ort, {
    schedule, timesteps, prediction, imageSize: S, channels: C, sampler: 'ddim', steps: 50, n: 64, seed: 0,
  });
  console.log(`DDIM 50 steps x 64 images on ORT: ${gen.seconds.toFixed(2)} s (${((gen.seconds * 1000) / (50 * 64)).toFixed(3)} ms/img/NFE incl. sampler)`);
  if (nativeDdimS !== undefined) console.log(`DDIM 50 steps x 64 images on native: ${nativeDdimS.toFixed(2)} s (${((nativeDdimS * 1000) / (50 * 64)).toFixed(3)} ms/img/NFE incl. sampler)`);
  await ort.dispose();

  const load1 = loadavg()[0]!;
  const ratio = ms.pytorch[64] !== undefined && ms.ort[64] !== undefined ? ms.pytorch[64] / ms.ort[64] : null;
  const rnd3 = (v: number | undefined): number | null => (v === undefined ? null : Math.round(v * 1000) / 1000);
  const byBatch = (m: Partial<Record<number, number>>): Record<string, number | null> =>
    Object.fromEntries(BATCHES.map((b) => [String(b), rnd3(m[b])]));
  console.log(`load average at end ${load1.toFixed(2)} (2 cores; a busy machine inflates every number)`);
  console.log(JSON.stringify({
    ort_ms_per_img_nfe: rnd3(ms.ort[64]),
    pytorch_ms_per_img_nfe: rnd3(ms.pytorch[64]),
    ratio: ratio === null ? null : Math.round(ratio * 100) / 100,
    batch: 64,
    ort_by_batch: byBatch(ms.ort),
    native_ms_per_img_nfe: rnd3(ms.native[64]),
    native_vs_ort: ms.native[64] !== undefined && ms.ort[64] !== undefined ? Math.round((ms.ort[64] / ms.native[64]) * 100) / 100 : null,
    pytorch_vs_native: ms.native[64] !== undefined && ms.pytorch[64] !== undefined ? Math.round((ms.pytorch[64] / ms.native[64]) * 100) / 100 : null,
    native_by_batch: byBatch(ms.native),
    native_1proc_by_batch: byBatch(ms.native1),
    tfjs_wasm_by_batch: byBatch(ms.wasm),
    pytorch_by_batch: byBatch(ms.pytorch),
    pytorch_default_malloc_by_batch: byBatch(ms.pytorchDefault),
    ddim50_batch64_s: Math.round(gen.seconds * 100) / 100,
    native_ddim50_batch64_s: nativeDdimS === undefined ? null : Math.round(nativeDdimS * 100) / 100,
    max_abs_diff_vs_ort: Object.fromEntries(Object.entries(diffs).map(([k, v]) => [k, Number(v.toExponential(2))])),
    model: source,
    loadavg: [Math.round(load0 * 100) / 100, Math.round(load1 * 100) / 100],
  }));
}

await main();
