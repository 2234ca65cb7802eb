/**
 * The native (oneDNN) engine: the fallback when the addon is missing or broken
 * (always tested), and, when the addon is built, its forward convolutions
 * against cpu, its kernel coverage, and training: the same loss curve as wasm
 * within float tolerance, and bit-identical export/import on one and two
 * workers. The native gradients themselves are checked against cpu and float64
 * finite differences by the shared kernel tests (kernels.test.ts, fused.test.ts,
 * test/model/unet.test.ts), which run on every engine in TRAIN_BACKENDS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import { NATIVE_BACKEND, NATIVE_KERNELS, nativeFallbacks } from '../../src/engine/native.js';
import { defaultUNetConfig, type UNetConfig } from '../../src/model/config.js';
import { mulberry32 } from '../../src/rng.js';
import { createTrainer, replicaParams, type TrainBatch, type TrainerState } from '../../src/train/trainer.js';
import { maxRelErr, SKIP_NATIVE } from './helpers.js';

const BACKEND_JS = new URL('../../src/engine/backend.js', import.meta.url).href;

/** initEngine() in a fresh process with `env`; returns what it picked and a conv computed on it. */
function childEngine(env: Record<string, string>): { backend: string; notice: string | null; description: string; sum: number } {
  const script = `const { initEngine } = await import(${JSON.stringify(BACKEND_JS)});
const e = await initEngine();
const tf = e.tf;
const y = tf.conv2d(tf.ones([1, 4, 4, 1]), tf.ones([3, 3, 1, 2]), 1, 'same');
console.log(JSON.stringify({ backend: e.backend, notice: e.notice ?? null, description: e.description, sum: y.sum().dataSync()[0] }));`;
  const base: NodeJS.ProcessEnv = { ...process.env };
  delete base['DIFFUSE_NATIVE'];
  delete base['DIFFUSE_NATIVE_PATH'];
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...base, ...env }, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { backend: string; notice: string | null; description: string; sum: number };
}

// 3x3 ones over a 4x4 ones image, 'same': corners 4, edges 6, inside 9 -> 4*4 + 8*6 + 4*9 = 100 per channel.
const CONV_SUM = 200;

test('without the addon (DIFFUSE_NATIVE=0) the default engine is wasm, with a one-line notice', () => {
  const r = childEngine({ DIFFUSE_NATIVE: '0' });
  assert.equal(r.backend, 'wasm');
  assert.match(r.notice ?? '', /DIFFUSE_NATIVE=0/);
  assert.equal(r.notice?.includes('\n'), false);
  assert.equal(r.sum, CONV_SUM);
});

test('a broken addon (not a shared object) falls back to wasm and says how to rebuild it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-native-'));
  try {
    const bogus = join(dir, 'diffuse_native.node');
    writeFileSync(bogus, 'not an ELF file\n');
    const r = childEngine({ DIFFUSE_NATIVE_PATH: bogus });
    assert.equal(r.backend, 'wasm');
    assert.match(r.notice ?? '', /failed to load .*npm run build:native/);
    assert.equal(r.sum, CONV_SUM);
    const missing = childEngine({ DIFFUSE_NATIVE_PATH: join(dir, 'absent.node') });
    assert.equal(missing.backend, 'wasm');
    assert.match(missing.notice ?? '', /not found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with the addon, the default engine is native (oneDNN)', { skip: SKIP_NATIVE }, () => {
  const r = childEngine({});
  assert.equal(r.backend, 'native');
  assert.equal(r.notice, null);
  assert.match(r.description, /^native \(oneDNN \d+\.\d+/);
  assert.equal(r.sum, CONV_SUM);
});

test('native backend: every wasm kernel is there, the native ones on top; switching keeps tensors', { skip: SKIP_NATIVE }, async () => {
  await initEngine({ backend: 'native' });
  assert.equal(tf.getBackend(), NATIVE_BACKEND);
  const wasmNames = tf.getKernelsForBackend('wasm').map((k) => k.kernelName);
  for (const n of wasmNames) assert.ok(tf.getKernel(n, NATIVE_BACKEND) !== undefined, n);
  for (const [name, fn] of NATIVE_KERNELS) assert.equal(tf.getKernel(name, NATIVE_BACKEND)?.kernelFunc, fn, name);
  // The same instance under two names: a tensor made on one is read on the other without a move.
  const a = tf.tensor1d([1, 2, 3]);
  await initEngine({ backend: 'wasm' });
  const b = tf.add(a, a);
  await initEngine({ backend: 'native' });
  assert.deepEqual([...tf.mul(b, a).dataSync()], [2, 8, 18]);
  tf.dispose([a, b]);
});

function rand(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}


interface FwdCase { n: number; h: number; w: number; cin: number; cout: number; k: number; stride: number; dil: number; pad: 'same' | 'valid' }
const FWD: FwdCase[] = [
  { n: 2, h: 8, w: 8, cin: 3, cout: 5, k: 3, stride: 1, dil: 1, pad: 'same' },
  { n: 3, h: 9, w: 7, cin: 4, cout: 2, k: 3, stride: 2, dil: 1, pad: 'same' },
  { n: 2, h: 8, w: 8, cin: 16, cout: 32, k: 3, stride: 2, dil: 1, pad: 'same' },
  { n: 1, h: 9, w: 9, cin: 2, cout: 3, k: 3, stride: 2, dil: 1, pad: 'valid' },
  { n: 2, h: 9, w: 8, cin: 3, cout: 4, k: 3, stride: 1, dil: 2, pad: 'same' },
  { n: 2, h: 6, w: 6, cin: 8, cout: 16, k: 1, stride: 1, dil: 1, pad: 'valid' },
  { n: 2, h: 7, w: 6, cin: 4, cout: 3, k: 4, stride: 1, dil: 1, pad: 'same' },
  { n: 2, h: 10, w: 10, cin: 32, cout: 1, k: 3, stride: 1, dil: 1, pad: 'same' },
];

test('native Conv2D and FusedConv2D (bias) forward and gradients match cpu, with no fallback to wasm', { skip: SKIP_NATIVE }, async () => {
  for (const c of FWD) {
    const x = rand(c.n * c.h * c.w * c.cin, 1 + c.cin), w = rand(c.k * c.k * c.cin * c.cout, 2 + c.cout), bias = rand(c.cout, 3);
    const go = (): Float32Array[] => tf.tidy(() => {
      const xt = tf.tensor4d(x, [c.n, c.h, c.w, c.cin]), wt = tf.tensor4d(w, [c.k, c.k, c.cin, c.cout]);
      return [
        tf.conv2d(xt, wt, c.stride, c.pad, 'NHWC', c.dil),
        tf.fused.conv2d({ x: xt, filter: wt, strides: c.stride, pad: c.pad, dilations: c.dil, bias: tf.tensor1d(bias) }),
      ].map((t) => Float32Array.from(t.dataSync()));
    });
    await tf.setBackend('cpu');
    const ref = go();
    await initEngine({ backend: 'native' });
    nativeFallbacks(true);
    const ours = go();
    assert.deepEqual([...nativeFallbacks(true)], [], JSON.stringify(c));
    ours.forEach((o, i) => assert.ok(maxRelErr(o, ref[i] as Float32Array) < 1e-5, `${JSON.stringify(c)} output ${i}: ${maxRelErr(o, ref[i] as Float32Array)}`));
  }
  // Gradients of conv + bias: dx, dW and the bias gradient oneDNN sums in the weight-gradient pass.
  for (const c of FWD.filter((f) => f.dil === 1)) {
    const x = rand(c.n * c.h * c.w * c.cin, 7), w = rand(c.k * c.k * c.cin * c.cout, 8), bias = rand(c.cout, 9);
    const go = (): Float32Array[] => tf.tidy(() => {
      const f = (a: tf.Tensor, b: tf.Tensor, e: tf.Tensor): tf.Scalar =>
        tf.sum(tf.square(tf.fused.conv2d({ x: a as tf.Tensor4D, filter: b as tf.Tensor4D, strides: c.stride, pad: c.pad, bias: e })));
      return tf.grads(f)([tf.tensor4d(x, [c.n, c.h, c.w, c.cin]), tf.tensor4d(w, [c.k, c.k, c.cin, c.cout]), tf.tensor1d(bias)])
        .map((t) => Float32Array.from(t.dataSync()));
    });
    await tf.setBackend('cpu');
    const ref = go();
    await initEngine({ backend: 'native' });
    const ours = go();
    ['dx', 'dW', 'dbias'].forEach((name, i) => {
      const e = maxRelErr(ours[i] as Float32Array, ref[i] as Float32Array);
      assert.ok(e < 1e-5, `${JSON.stringify(c)} ${name}: ${e}`);
    });
  }
  // A fused activation the addon does not run goes to the wasm kernel, still correct.
  const x = rand(2 * 5 * 5 * 3, 4), w = rand(9 * 3 * 2, 5);
  const relu = (): Float32Array => tf.tidy(() => Float32Array.from(tf.fused.conv2d({
    x: tf.tensor4d(x, [2, 5, 5, 3]), filter: tf.tensor4d(w, [3, 3, 3, 2]), strides: 1, pad: 'same', activation: 'relu', bias: tf.tensor1d([0.1, -0.2]),
  }).dataSync()));
  await tf.setBackend('cpu');
  const ref = relu();
  await initEngine({ backend: 'native' });
  const ours = relu();
  assert.equal(nativeFallbacks(true).get('FusedConv2D'), 1);
  assert.ok(maxRelErr(ours, ref) < 1e-5);
});

const CFG: UNetConfig = defaultUNetConfig({
  imageSize: 8, baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [4], groups: 2, numClasses: 3,
});
const HP = { lr: 2e-3, clipNorm: 1, emaDecay: 0.9 };

function batch(seed: number, n = 6): TrainBatch {
  const rnd = mulberry32(seed);
  const s = CFG.imageSize;
  const target = Float32Array.from({ length: n * s * s }, () => rnd() * 2 - 1);
  const xt = target.map((v) => v + 0.3 * (rnd() * 2 - 1));
  const t = Float32Array.from({ length: n }, () => Math.floor(rnd() * 1000));
  const cond = Int32Array.from({ length: n }, (_, i) => i % 4);
  return { xt, t, target, shape: [n, s, s, 1], cond };
}

function flat(s: TrainerState): Float32Array[] {
  return [s.params, s.ema, s.adam.m, s.adam.v].flatMap((r) => Object.keys(r).sort().map((k) => (r[k] as { data: Float32Array }).data));
}
function bitIdentical(a: TrainerState, b: TrainerState): boolean {
  const fa = flat(a), fb = flat(b);
  return a.adam.step === b.adam.step && fa.length === fb.length &&
    fa.every((x, i) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from((fb[i] as Float32Array).buffer, (fb[i] as Float32Array).byteOffset, (fb[i] as Float32Array).byteLength)));
}

async function lossCurve(backend: 'wasm' | 'native', workers: 1 | 2, steps: number): Promise<{ losses: number[]; state: TrainerState }> {
  const tr = await createTrainer(CFG, { seed: 7, workers, microBatch: 3, backend });
  try {
    const losses: number[] = [];
    for (let i = 0; i < steps; i++) losses.push((await tr.step(batch(20 + i), HP)).loss);
    return { losses, state: await tr.exportState() };
  } finally { await tr.dispose(); }
}

test('a tiny U-Net trains to the same loss curve on native and wasm (1 and 2 workers)', { skip: SKIP_NATIVE }, async () => {
  const steps = 12;
  const wasm = await lossCurve('wasm', 1, steps);
  for (const workers of [1, 2] as const) {
    const native = await lossCurve('native', workers, steps);
    native.losses.forEach((l, i) => {
      const w = wasm.losses[i] as number;
      assert.ok(Math.abs(l - w) <= 1e-3 * w, `workers ${workers} step ${i + 1}: native ${l} vs wasm ${w}`);
    });
    assert.ok((native.losses[steps - 1] as number) < (native.losses[0] as number) * 0.8, `loss falls: ${native.losses.join(', ')}`);
    const pn = flat(native.state)[0] as Float32Array;
    assert.ok(pn.every(Number.isFinite));
  }
});

test('the trainer says what it runs on: native on every core, or one thread per data-parallel worker', { skip: SKIP_NATIVE }, async () => {
  for (const workers of [1, 2] as const) {
    const tr = await createTrainer(CFG, { seed: 1, workers, backend: 'native' });
    try {
      assert.equal(tr.notice, undefined);
      assert.match(tr.engine, workers === 1 ? /^native \(oneDNN [\d.]+, \w+, \d+ threads?\)$/ : /^native \(oneDNN [\d.]+, \w+, 1 thread\) x 2 data-parallel workers$/);
    } finally { await tr.dispose(); }
  }
});

test('native training is deterministic and export/import mid-run continues bit-identically (1 and 2 workers)', { skip: SKIP_NATIVE }, async () => {
  for (const workers of [1, 2] as const) {
    const a = await createTrainer(CFG, { seed: 5, workers, microBatch: 4, backend: 'native' });
    const b = await createTrainer(CFG, { seed: 5, workers, microBatch: 4, backend: 'native' });
    try {
      for (let i = 0; i < 3; i++) { await a.step(batch(10 + i), HP); await b.step(batch(10 + i), HP); }
      assert.ok(bitIdentical(await a.exportState(), await b.exportState()), `workers ${workers}: same seed, same batches`);
      const mid = await a.exportState();
      const c = await createTrainer(CFG, { seed: 99, workers, microBatch: 4, backend: 'native' });
      try {
        await c.importState(mid);
        for (let i = 3; i < 6; i++) { await a.step(batch(10 + i), HP); await c.step(batch(10 + i), HP); }
        assert.ok(bitIdentical(await a.exportState(), await c.exportState()), `workers ${workers}: resumed run`);
        if (workers === 2) {
          const [r0, r1] = await replicaParams(c);
          assert.ok(r0 !== undefined && r1 !== undefined && Buffer.from(r0.buffer).equals(Buffer.from(r1.buffer)), 'replicas bit-identical');
        }
      } finally { await c.dispose(); }
    } finally { await a.dispose(); await b.dispose(); }
  }
});

