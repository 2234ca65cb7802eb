import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import { DiffuseError } from '../../src/errors.js';
import { defaultUNetConfig, type UNetConfig } from '../../src/model/config.js';
import { mulberry32 } from '../../src/rng.js';
import { createTrainer, replicaParams, type TrainBatch, type TrainerState } from '../../src/train/trainer.js';

const CFG: UNetConfig = defaultUNetConfig({
  imageSize: 8, baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [4], groups: 2,
});
const HP = { lr: 2e-3, clipNorm: 1, emaDecay: 0.9 };

function batch(seed: number, n = 6, cfg: UNetConfig = CFG): TrainBatch {
  const rnd = mulberry32(seed);
  const s = cfg.imageSize;
  const size = n * s * s * cfg.inChannels;
  const target = Float32Array.from({ length: size }, () => rnd() * 2 - 1);
  // x_t: a noisy copy of the target, so there is something to learn.
  const xt = target.map((v) => v + 0.3 * (rnd() * 2 - 1));
  const t = Float32Array.from({ length: n }, () => Math.floor(rnd() * 1000));
  return { xt, t, target, shape: [n, s, s, cfg.inChannels] };
}

function flat(s: TrainerState): Float32Array[] {
  return [s.params, s.ema, s.adam.m, s.adam.v].flatMap((r) => Object.keys(r).sort().map((k) => (r[k] as { data: Float32Array }).data));
}
function sameState(a: TrainerState, b: TrainerState): boolean {
  const fa = flat(a), fb = flat(b);
  return a.adam.step === b.adam.step && fa.length === fb.length && fa.every((x, i) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(
    Buffer.from((fb[i] as Float32Array).buffer, (fb[i] as Float32Array).byteOffset, (fb[i] as Float32Array).byteLength)));
}

before(async () => {
  await initEngine({ backend: 'wasm' });
});

test('single-worker trainer: tensor count stays flat over 20 steps and the loss falls', async () => {
  const tr = await createTrainer(CFG, { seed: 1, workers: 1, microBatch: 4 });
  try {
    assert.equal(tr.workers, 1);
    const b = batch(3);
    const first = await tr.step(b, HP);
    const tensorsAfterFirst = tf.memory().numTensors;
    let last = first;
    for (let i = 1; i < 20; i++) {
      last = await tr.step(b, HP);
      assert.equal(tf.memory().numTensors, tensorsAfterFirst, `tensor count changed at step ${i + 1}`);
    }
    assert.ok(Number.isFinite(first.gradNorm) && first.gradNorm > 0);
    assert.ok(last.loss < first.loss * 0.8, `loss ${first.loss} -> ${last.loss}`);
  } finally { await tr.dispose(); }
});

test('same seed + same batches -> identical weights; export/import mid-run continues identically', async () => {
  const a = await createTrainer(CFG, { seed: 5, workers: 1, microBatch: 4 });
  const b = await createTrainer(CFG, { seed: 5, workers: 1, microBatch: 4 });
  try {
    for (let i = 0; i < 3; i++) { await a.step(batch(10 + i), HP); await b.step(batch(10 + i), HP); }
    assert.ok(sameState(await a.exportState(), await b.exportState()));
    const mid = await a.exportState();
    for (let i = 3; i < 5; i++) await a.step(batch(10 + i), HP);
    const end = await a.exportState();

    const c = await createTrainer(CFG, { seed: 99, workers: 1, microBatch: 4 });
    try {
      assert.ok(!sameState(await c.exportState(), mid));
      await c.importState(mid);
      assert.ok(sameState(await c.exportState(), mid));
      for (let i = 3; i < 5; i++) await c.step(batch(10 + i), HP);
      assert.ok(sameState(await c.exportState(), end), 'resumed run diverged');
      const [rp] = await replicaParams(c);
      const p = (await c.exportState()).params;
      assert.deepEqual(rp?.subarray(0, 4), p[Object.keys(p).sort()[0] as string]?.data.subarray(0, 4));
    } finally { await c.dispose(); }
  } finally { await a.dispose(); await b.dispose(); }
});

test('bad batches and hyper-parameters throw DiffuseError', async () => {
  const tr = await createTrainer(CFG, { seed: 1, workers: 1 });
  try {
    const b = batch(1);
    await assert.rejects(tr.step({ ...b, shape: [6, 9, 8, 1] }, HP), DiffuseError);
    await assert.rejects(tr.step({ ...b, t: new Float32Array(2) }, HP), DiffuseError);
    await assert.rejects(tr.step({ ...b, target: new Float32Array(3) }, HP), DiffuseError);
    await assert.rejects(tr.step({ ...b, cond: new Int32Array(6) }, HP), /unconditional/);
    await assert.rejects(tr.step(b, { ...HP, lr: Number.NaN }), DiffuseError);
    await assert.rejects(tr.importState({ params: {}, ema: {}, adam: { step: 0, m: {}, v: {} } }), /lacks parameter/);
  } finally { await tr.dispose(); }
  await assert.rejects(createTrainer(defaultUNetConfig({ groups: 7 }), { seed: 1, workers: 1 }), /groups/);
});

test('two workers: loss falls, replicas bit-identical, first step matches one worker', async () => {
  const one = await createTrainer(CFG, { seed: 2, workers: 1, microBatch: 3 });
  const two = await createTrainer(CFG, { seed: 2, workers: 2, microBatch: 3 });
  try {
    assert.equal(two.workers, 2);
    const b = batch(7);
    const r1 = await one.step(b, HP);
    const r2 = await two.step(b, HP);
    // Same maths, split differently: equal up to float rounding.
    assert.ok(Math.abs(r1.loss - r2.loss) < 1e-5 * r1.loss, `${r1.loss} vs ${r2.loss}`);
    assert.ok(Math.abs(r1.gradNorm - r2.gradNorm) < 1e-4 * r1.gradNorm);
    let last = r2;
    for (let i = 0; i < 14; i++) last = await two.step(b, HP);
    assert.ok(last.loss < r2.loss * 0.8, `loss ${r2.loss} -> ${last.loss}`);
    const reps = await replicaParams(two);
    assert.equal(reps.length, 2);
    const [p0, p1] = reps as [Float32Array, Float32Array];
    assert.ok(Buffer.from(p0.buffer).equals(Buffer.from(p1.buffer)), 'replicas differ');
    const st = await two.exportState();
    const names = Object.keys(st.params).sort();
    let off = 0;
    for (const n of names) {
      const d = (st.params[n] as { data: Float32Array }).data;
      assert.deepEqual(p0.subarray(off, off + d.length), d, n);
      off += d.length;
    }
    assert.equal(off, p0.length);
  } finally { await one.dispose(); await two.dispose(); }
});

test('two workers: same seed + batches -> identical state, and export/import resumes identically', async () => {
  const a = await createTrainer(CFG, { seed: 4, workers: 2, microBatch: 4 });
  const b = await createTrainer(CFG, { seed: 4, workers: 2, microBatch: 4 });
  try {
    for (let i = 0; i < 2; i++) { await a.step(batch(20 + i, 5), HP); await b.step(batch(20 + i, 5), HP); }
    const mid = await a.exportState();
    assert.ok(sameState(mid, await b.exportState()));
    await a.step(batch(30, 5), HP);
    await b.importState(mid);
    await b.step(batch(30, 5), HP);
    assert.ok(sameState(await a.exportState(), await b.exportState()));
  } finally { await a.dispose(); await b.dispose(); }
});
