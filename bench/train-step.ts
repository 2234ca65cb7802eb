/**
 * Training-step benchmark: our U-Net on tfjs-wasm (1 thread in-process, and 2
 * data-parallel worker threads) vs the same architecture in PyTorch CPU with 2
 * threads (bench/train_step_torch.py), measured in the same run.
 *
 *   node dist/bench/train-step.js            default config at 32x32x1 (attention at 8), batch 64
 *   node dist/bench/train-step.js --big      the 3.6M config (base 64, mults [1,2,2], attention at 8)
 *   options: --steps N (timed steps per path, default 3) --batch N --micro N --no-torch --profile
 *            --no-compare  skip the "before" measurement. By default the run first measures with the
 *                          fast paths off (DIFFUSE_FUSED=0: no fused GroupNorm+SiLU, no conv bias
 *                          fusion, the previous dW kernel), then with them on, and prints both.
 *
 * Last line: one JSON object with ours_img_s, pytorch_img_s, ratio, ...
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { formatKernelStats, profileKernels } from '../src/engine/profile.js';
import { defaultUNetConfig, type UNetConfig } from '../src/model/config.js';
import { createUNet, describeUNet, unetParamCount } from '../src/model/unet.js';
import { createTrainer, DEFAULT_MICRO_BATCH, type TrainBatch } from '../src/train/trainer.js';

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(name);
const num = (name: string, dflt: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? Number(argv[i + 1]) : dflt;
};
const big = flag('--big');
const steps = num('--steps', 3);
const batchSize = num('--batch', 64);
const micro = num('--micro', DEFAULT_MICRO_BATCH);
const compare = !flag('--no-compare');
// The fast-path setting of the "after" figures (DIFFUSE_FUSED as given, usually unset = defaults).
const fusedAfter = process.env['DIFFUSE_FUSED'];
/** Select the fast paths for what runs next (this thread, and workers created from now on). */
function useFused(on: boolean): void {
  if (!on) process.env['DIFFUSE_FUSED'] = '0';
  else if (fusedAfter === undefined) delete process.env['DIFFUSE_FUSED'];
  else process.env['DIFFUSE_FUSED'] = fusedAfter;
}

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

async function trainImgPerSec(workers: 1 | 2): Promise<number> {
  const tr = await createTrainer(config, { seed: 0, workers, microBatch: micro, backend: 'wasm' });
  try {
    const b = makeBatch(batchSize);
    const hp = { lr: 2e-4, clipNorm: 1, emaDecay: 0.999 };
    await tr.step(b, hp); // warm-up (operator caches, heap growth)
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await tr.step(b, hp);
    const sec = (performance.now() - t0) / 1000 / steps;
    return batchSize / sec;
  } finally {
    await tr.dispose();
  }
}

interface TorchResult { params: number; img_s: number; fwd_ms: number; peak_rss_mb: number }

function runTorch(): TorchResult | undefined {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'train_step_torch.py');
  const args = [script, '--image-size', String(config.imageSize), '--in-ch', String(config.inChannels),
    '--base', String(config.baseChannels), '--mults', config.channelMults.join(','), '--res-blocks', String(config.numResBlocks),
    '--attn', config.attentionResolutions.join(','), '--groups', String(config.groups), '--batch', String(batchSize),
    '--steps', String(Math.max(2, steps)), '--threads', '2'];
  const r = spawnSync('/usr/bin/python3', args, { env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' }, encoding: 'utf8', timeout: 170_000 });
  if (r.status !== 0) {
    console.log(`pytorch reference failed: ${r.error?.message ?? r.stderr.slice(-500)}`);
    return undefined;
  }
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as TorchResult;
}

const t00 = performance.now();
const { backend } = await initEngine({ backend: 'wasm' });
console.log(describeUNet(config));
console.log(`backend ${backend}, batch ${batchSize}, micro-batch ${micro}, ${steps} timed steps per path`);

interface Measured { fwdMs: number; one: number; two: number }

/** Forward time at batch 64, then 1-thread and 2-worker training throughput, with the current fast-path setting. */
async function measure(label: string): Promise<Measured> {
  // Forward-only time per network evaluation at batch 64 (in-process, one thread).
  const net = createUNet(config, 0);
  let fwdMs: number;
  {
    const b = makeBatch(batchSize);
    const run = (): void => tf.tidy(() => {
      const y = net.apply(tf.tensor4d(b.xt, b.shape), tf.tensor1d(b.t));
      y.dataSync();
    });
    run();
    const t0 = performance.now();
    const reps = 3;
    for (let i = 0; i < reps; i++) run();
    fwdMs = (performance.now() - t0) / reps;
  }
  if (flag('--profile')) {
    const b = makeBatch(micro);
    const fb = (): void => tf.tidy(() => {
      const x = tf.tensor4d(b.xt, b.shape), tt = tf.tensor1d(b.t), tgt = tf.tensor4d(b.target, b.shape);
      const { value, grads } = tf.variableGrads(() => tf.mean(tf.squaredDifference(net.apply(x, tt, { training: true }), tgt)) as tf.Scalar, [...net.params.values()]);
      value.dataSync();
      for (const g of Object.values(grads)) g.dataSync();
    });
    fb(); // warm-up (JIT of the JS kernels, operator caches)
    const prof = profileKernels('wasm');
    fb();
    console.log(`[${label}] kernel profile, one forward+backward at micro-batch ${micro}:`);
    console.log(formatKernelStats(prof.stats(), 25));
    prof.stop();
  }
  net.dispose();
  console.log(`[${label}] forward (batch ${batchSize}): ${fwdMs.toFixed(0)} ms`);
  const one = await trainImgPerSec(1);
  console.log(`[${label}] train, 1 thread (in-process): ${one.toFixed(2)} img/s`);
  const two = await trainImgPerSec(2);
  console.log(`[${label}] train, 2 workers (data parallel): ${two.toFixed(2)} img/s  (x${(two / one).toFixed(2)} over 1 thread)`);
  return { fwdMs, one, two };
}

let before: Measured | undefined;
if (compare) {
  useFused(false);
  before = await measure('before: DIFFUSE_FUSED=0');
  useFused(true);
}
const { fwdMs, one, two } = await measure(`after: DIFFUSE_FUSED=${fusedAfter ?? '(default)'}`);
if (before !== undefined) {
  console.log(`speed-up from the fast paths: 2 workers x${(two / before.two).toFixed(2)}, 1 thread x${(one / before.one).toFixed(2)}, forward x${(before.fwdMs / fwdMs).toFixed(2)}`);
}
const rssMb = process.resourceUsage().maxRSS / 1024;
console.log(`peak RSS (this process incl. workers): ${rssMb.toFixed(0)} MB`);

const torch = flag('--no-torch') ? undefined : runTorch();
if (torch !== undefined) {
  if (torch.params !== unetParamCount(config)) console.log(`WARNING: PyTorch model has ${torch.params} params, ours ${unetParamCount(config)}`);
  console.log(`pytorch 2 threads: ${torch.img_s.toFixed(2)} img/s, forward ${torch.fwd_ms.toFixed(0)} ms, peak RSS ${torch.peak_rss_mb.toFixed(0)} MB, params ${torch.params}`);
  console.log(`ratio ours(2 workers)/pytorch: ${(two / torch.img_s).toFixed(2)}x`);
  if (before !== undefined) console.log(`ratio before (DIFFUSE_FUSED=0): ${(before.two / torch.img_s).toFixed(2)}x`);
}
console.log(JSON.stringify({
  config: big ? 'issue-3.6M' : 'default-32x32', params: unetParamCount(config), batch: batchSize, micro_batch: micro,
  ours_img_s: +two.toFixed(3), ours_1thread_img_s: +one.toFixed(3), ours_fwd_ms: +fwdMs.toFixed(1), ours_peak_rss_mb: +rssMb.toFixed(0),
  pytorch_img_s: torch !== undefined ? +torch.img_s.toFixed(3) : null,
  pytorch_fwd_ms: torch !== undefined ? +torch.fwd_ms.toFixed(1) : null,
  pytorch_peak_rss_mb: torch !== undefined ? +torch.peak_rss_mb.toFixed(0) : null,
  ratio: torch !== undefined ? +(two / torch.img_s).toFixed(3) : null,
  fused: fusedAfter ?? 'default',
  ...(before !== undefined ? {
    before_img_s: +before.two.toFixed(3), before_1thread_img_s: +before.one.toFixed(3), before_fwd_ms: +before.fwdMs.toFixed(1),
    before_ratio: torch !== undefined ? +(before.two / torch.img_s).toFixed(3) : null,
  } : {}),
  wall_s: +((performance.now() - t00) / 1000).toFixed(1),
}));
