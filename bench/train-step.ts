/**
 * Training-step benchmark, every path in one run, same U-Net, same step (MSE,
 * Adam, global-norm clipping), batch 64:
 *   - ours, native engine (oneDNN): the trainer's default, 2 data-parallel
 *     workers with one oneDNN thread each; and 1 process on both threads
 *   - ours, wasm engine (what runs without the addon): 2 data-parallel workers
 *   - PyTorch 1.13 CPU, 2 threads (bench/train_step_torch.py), with glibc's
 *     default allocator, and "tuned": glibc keeping large blocks
 *     (MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=17179869184),
 *     both with OMP_WAIT_POLICY=PASSIVE
 * The paths run in rounds, the order reversed every other round; each path's
 * figure is its best round (the machine is shared: other jobs only slow a run
 * down). Then the native convolutions inside one worker's training pass (its
 * micro-batch on one thread): GFLOP/s per direction against the core's FMA
 * peak, and with --profile the per-kernel table.
 *
 *   node dist/bench/train-step.js [--big] [--rounds R] [--steps N] [--batch-size N] [--micro N]
 *                                 [--no-torch] [--no-wasm] [--profile]   (--help: the option table)
 *   --big: base 64, mults [1,2,2], 2 res blocks, attention at 8 (6.47M params)
 *
 * Last line: one JSON object; ours_img_s (native, the default), pytorch_img_s
 * (the better PyTorch), ratio = ours / that.
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import * as tf from '../src/engine/tf.js';
import { benchOptions } from './options.js';
import { type BackendName, initEngine } from '../src/engine/backend.js';
import { convInfo } from '../src/engine/kernels.js';
import { loadNative, NATIVE_BACKEND, setNativeThreads } from '../src/engine/native.js';
import { formatKernelStats, profileKernels } from '../src/engine/profile.js';
import { defaultUNetConfig, type UNetConfig } from '../src/model/config.js';
import { createUNet, describeUNet, unetParamCount } from '../src/model/unet.js';
import { createTrainer, DEFAULT_MICRO_BATCH, type TrainBatch } from '../src/train/trainer.js';

const { values: o } = benchOptions('train-step', {
  big: { type: 'flag', help: 'base 64, mults [1,2,2], 2 res blocks, attention at 8 (6.47M params)' },
  rounds: { type: 'int', min: 1, max: 100, arg: 'R', help: 'rounds of every path, the order reversed every other round; each keeps its best', defaultText: '2; 1 with --big' },
  steps: { type: 'int', min: 1, max: 1000, default: 3, arg: 'N', help: 'timed steps per path and round (median)' },
  'batch-size': { type: 'int', min: 1, max: 4096, default: 64, arg: 'N', aliases: ['batch'], help: 'images per training step' },
  micro: { type: 'int', min: 1, max: 4096, default: DEFAULT_MICRO_BATCH, arg: 'N', help: 'images per forward/backward pass inside a replica' },
  'no-torch': { type: 'flag', help: 'skip the PyTorch baselines' },
  'no-wasm': { type: 'flag', help: 'skip the wasm engine' },
  profile: { type: 'flag', help: "per-kernel table of one worker's pass" },
} as const);
const big = o.big;
const rounds = o.rounds ?? (big ? 1 : 2);
const { steps, micro } = o;
const batchSize = o['batch-size'];

const config: UNetConfig = big
  ? defaultUNetConfig({ imageSize: 32, baseChannels: 64, channelMults: [1, 2, 2], numResBlocks: 2, attentionResolutions: [8], groups: 32 })
  : defaultUNetConfig({ imageSize: 32, attentionResolutions: [8] });

function makeBatch(n: number): TrainBatch {
  const s = config.imageSize;
  const size = n * s * s * config.inChannels;
  let seed = 12345;
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296 * 2 - 1; };
  return {
    xt: Float32Array.from({ length: size }, rnd),
    t: Float32Array.from({ length: n }, (_, i) => (i * 37) % 1000),
    target: Float32Array.from({ length: size }, rnd),
    shape: [n, s, s, config.inChannels],
  };
}

/** Median step time of `steps` timed steps after one warm-up step, as img/s. */
async function ours(backend: BackendName, workers: 1 | 2): Promise<number> {
  const tr = await createTrainer(config, { seed: 0, workers, microBatch: micro, backend });
  try {
    const b = makeBatch(batchSize);
    const hp = { lr: 2e-4, clipNorm: 1, emaDecay: 0.999 };
    await tr.step(b, hp); // warm-up: primitive creation, heap growth
    const times: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      await tr.step(b, hp);
      times.push(performance.now() - t0);
    }
    times.sort((p, q) => p - q);
    return batchSize / ((times[times.length >> 1] as number) / 1000);
  } finally {
    await tr.dispose();
  }
}

interface TorchResult { params: number; img_s: number; fwd_ms: number; peak_rss_mb: number }

const TUNED_MALLOC = { MALLOC_MMAP_THRESHOLD_: '1073741824', MALLOC_TRIM_THRESHOLD_: '17179869184' };

function torch(tuned: boolean): TorchResult | undefined {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'train_step_torch.py');
  const args = [script, '--image-size', String(config.imageSize), '--in-ch', String(config.inChannels),
    '--base', String(config.baseChannels), '--mults', config.channelMults.join(','), '--res-blocks', String(config.numResBlocks),
    '--attn', config.attentionResolutions.join(','), '--groups', String(config.groups), '--batch', String(batchSize),
    '--steps', String(Math.max(2, steps)), '--threads', '2'];
  const env = { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', ...(tuned ? TUNED_MALLOC : {}) };
  const r = spawnSync('/usr/bin/python3', args, { env, encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) {
    console.log(`pytorch reference failed: ${r.error?.message ?? r.stderr.slice(-500)}`);
    return undefined;
  }
  const result = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as TorchResult;
  if (result.params !== unetParamCount(config)) console.log(`WARNING: PyTorch model has ${result.params} params, ours ${unetParamCount(config)}`);
  return result;
}

type PathName = 'native' | 'native_1proc' | 'wasm' | 'pytorch_default' | 'pytorch_tuned';
const LABELS: Record<PathName, string> = {
  native: 'ours, native (oneDNN), 2 workers x 1 thread',
  native_1proc: 'ours, native (oneDNN), 1 process x 2 threads',
  wasm: 'ours, wasm, 2 workers',
  pytorch_default: 'PyTorch 1.13, 2 threads, default malloc',
  pytorch_tuned: 'PyTorch 1.13, 2 threads, tuned malloc',
};

const t00 = performance.now();
const load0 = loadavg()[0] as number;
const native = loadNative();
if (!native.ok) {
  console.log(`native engine unavailable: ${native.reason}`);
  process.exit(1);
}
await initEngine({ backend: 'native' });
console.log(describeUNet(config));
console.log(`batch ${batchSize}, micro-batch ${micro}, ${steps} timed steps per path (median), ${rounds} round(s), best round per path; load average at start ${load0.toFixed(2)}`);

const paths: PathName[] = ['native', 'native_1proc', ...(o['no-wasm'] ? [] : ['wasm' as const]),
  ...(o['no-torch'] ? [] : ['pytorch_default' as const, 'pytorch_tuned' as const])];
const results = new Map<PathName, number[]>();
let torchInfo: TorchResult | undefined;
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? paths : [...paths].reverse();
  for (const p of order) {
    let v: number | undefined;
    switch (p) {
      case 'native': v = await ours('native', 2); break;
      case 'native_1proc': v = await ours('native', 1); break;
      case 'wasm': v = await ours('wasm', 2); break;
      case 'pytorch_default': v = torch(false)?.img_s; break;
      case 'pytorch_tuned': { const t = torch(true); torchInfo = t ?? torchInfo; v = t?.img_s; break; }
    }
    if (v === undefined) continue;
    results.set(p, [...(results.get(p) ?? []), v]);
    console.log(`round ${r + 1}: ${LABELS[p].padEnd(46)} ${v.toFixed(2)} img/s`);
  }
}
const best = (p: PathName): number | undefined => {
  const v = results.get(p);
  return v === undefined ? undefined : Math.max(...v);
};

// ---- The native convolutions inside one worker's training pass, per direction.
const peak1 = Math.max(native.addon.peakGflops(1), native.addon.peakGflops(1));
const CONV_KERNELS = { Conv2D: 'forward', FusedConv2D: 'forward', Conv2DBackpropInput: 'backward data', Conv2DBackpropFilter: 'backward weights' } as const;
type Direction = (typeof CONV_KERNELS)[keyof typeof CONV_KERNELS];
const dirStats = new Map<Direction, { calls: number; ms: number; gflop: number }>();
const originals: tf.KernelConfig[] = [];
for (const [name, dir] of Object.entries(CONV_KERNELS) as Array<[keyof typeof CONV_KERNELS, Direction]>) {
  const k = tf.getKernel(name, NATIVE_BACKEND);
  if (k === undefined) continue;
  originals.push(k);
  tf.unregisterKernel(name, NATIVE_BACKEND);
  tf.registerKernel({ ...k, kernelFunc: (args) => {
    const attrs = args.attrs ?? {};
    const x = name === 'Conv2DBackpropInput' ? attrs['inputShape'] as number[] : (args.inputs['x'] as tf.TensorInfo).shape;
    const f = name === 'Conv2DBackpropFilter' ? attrs['filterShape'] as number[] : (args.inputs['filter'] as tf.TensorInfo).shape;
    const info = convInfo(x, f, attrs);
    const t0 = performance.now();
    const out = k.kernelFunc(args);
    const ms = performance.now() - t0;
    const e = dirStats.get(dir) ?? { calls: 0, ms: 0, gflop: 0 };
    e.calls++;
    e.ms += ms;
    e.gflop += 2 * info.batchSize * info.outHeight * info.outWidth * info.outChannels * info.inChannels * info.filterHeight * info.filterWidth / 1e9;
    dirStats.set(dir, e);
    return out;
  } });
}
await initEngine({ backend: 'native' }); // the wasm path may have switched this thread's engine
setNativeThreads(1);
const net = createUNet(config, 0);
const mb = makeBatch(micro);
const pass = (): void => tf.tidy(() => {
  const x = tf.tensor4d(mb.xt, mb.shape), tt = tf.tensor1d(mb.t), tgt = tf.tensor4d(mb.target, mb.shape);
  const { value, grads } = tf.variableGrads(() => tf.mean(tf.squaredDifference(net.apply(x, tt, { training: true }), tgt)) as tf.Scalar, [...net.params.values()]);
  value.dataSync();
  for (const g of Object.values(grads)) g.dataSync();
});
pass();
pass();
const passTimes: number[] = [];
const prof = o.profile ? profileKernels(NATIVE_BACKEND) : undefined;
for (let i = 0; i < 3; i++) {
  dirStats.clear();
  prof?.reset();
  const t0 = performance.now();
  pass();
  passTimes.push(performance.now() - t0);
}
const passMs = Math.min(...passTimes);
for (const k of originals) { tf.unregisterKernel(k.kernelName, NATIVE_BACKEND); tf.registerKernel(k); }
net.dispose();
console.log(`\nnative convolutions in one worker's pass (micro-batch ${micro}, 1 thread; forward+backward ${passMs.toFixed(0)} ms), core peak ${peak1.toFixed(0)} GFLOP/s (FMA, 1 core):`);
const convJson: Record<string, { calls: number; ms: number; gflop: number; gflop_s: number; pct_of_peak: number }> = {};
let convMs = 0;
for (const dir of ['forward', 'backward data', 'backward weights'] as const) {
  const e = dirStats.get(dir);
  if (e === undefined) continue;
  const gs = e.gflop / (e.ms / 1000);
  convMs += e.ms;
  convJson[dir.replace(' ', '_')] = { calls: e.calls, ms: +e.ms.toFixed(1), gflop: +e.gflop.toFixed(2), gflop_s: +gs.toFixed(1), pct_of_peak: +(100 * gs / peak1).toFixed(1) };
  console.log(`  ${dir.padEnd(17)} ${String(e.calls).padStart(3)} calls ${e.ms.toFixed(1).padStart(7)} ms ${e.gflop.toFixed(2).padStart(6)} GFLOP ${gs.toFixed(1).padStart(6)} GFLOP/s  ${(100 * gs / peak1).toFixed(0).padStart(3)}% of peak`);
}
console.log(`  convolutions: ${(100 * convMs / passMs).toFixed(0)}% of the pass`);
if (prof !== undefined) {
  console.log(`\nkernel profile, one pass (micro-batch ${micro}, 1 thread):`);
  console.log(formatKernelStats(prof.stats(), 25));
  prof.stop();
}

console.log(`\nload average at end ${(loadavg()[0] as number).toFixed(2)} (2 cores: other jobs slow every path down)`);
for (const p of paths) {
  const v = best(p);
  if (v !== undefined) console.log(`${LABELS[p].padEnd(46)} ${v.toFixed(2).padStart(7)} img/s   (rounds: ${(results.get(p) ?? []).map((x) => x.toFixed(1)).join(', ')})`);
}
const oursBest = best('native') as number;
const pd = best('pytorch_default'), pt = best('pytorch_tuned');
const torchBest = pd === undefined ? pt : pt === undefined ? pd : Math.max(pd, pt);
if (torchBest !== undefined) {
  console.log(`ratio ours (native) / PyTorch at its best: ${(oursBest / torchBest).toFixed(2)}x` +
    (pd !== undefined ? `; / PyTorch default: ${(oursBest / pd).toFixed(2)}x` : '') +
    (best('wasm') !== undefined ? `; wasm / PyTorch at its best: ${((best('wasm') as number) / torchBest).toFixed(2)}x` : ''));
}
const fix = (v: number | undefined, d = 3): number | null => (v === undefined ? null : +v.toFixed(d));
console.log(JSON.stringify({
  config: big ? 'big-6.5M' : 'default-32x32', params: unetParamCount(config), batch: batchSize, micro_batch: micro, rounds, steps,
  ours_img_s: fix(oursBest), ours_native_1proc_img_s: fix(best('native_1proc')), ours_wasm_img_s: fix(best('wasm')),
  pytorch_default_img_s: fix(pd), pytorch_tuned_img_s: fix(pt), pytorch_img_s: fix(torchBest),
  ratio: torchBest !== undefined ? +(oursBest / torchBest).toFixed(3) : null,
  ratio_vs_pytorch_default: pd !== undefined ? +(oursBest / pd).toFixed(3) : null,
  wasm_ratio: torchBest !== undefined && best('wasm') !== undefined ? +((best('wasm') as number) / torchBest).toFixed(3) : null,
  pytorch_fwd_ms: torchInfo !== undefined ? +torchInfo.fwd_ms.toFixed(1) : null,
  native_pass_ms: +passMs.toFixed(1), conv: convJson, core_peak_gflop_s: +peak1.toFixed(1),
  peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024), pytorch_peak_rss_mb: torchInfo !== undefined ? Math.round(torchInfo.peak_rss_mb) : null,
  engine: native.info, loadavg: [+load0.toFixed(2), +(loadavg()[0] as number).toFixed(2)], wall_s: +((performance.now() - t00) / 1000).toFixed(1),
}));
