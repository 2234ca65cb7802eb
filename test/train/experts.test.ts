/**
 * Training K expert networks (src/train/experts-trainer.ts, train.ts): a step
 * is exactly each expert's own trainer stepping on the rows of its t range;
 * a K = 2 run saves one checkpoint of prefixed tensors that loads back and
 * resumes bit-identically; eDiff-I's shared-then-split recipe copies the
 * shared network (weights, EMA, Adam or fresh moments) and continues its run
 * (data order, step, log); and sampling routes through both engines.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { withExperts, type DiffuseConfig } from '../../src/config.js';
import { syntheticData, tinyConfig as tinyFixture } from './fixtures.js';
import { expertWeights } from '../../src/diffusion/experts.js';
import { DiffuseError } from '../../src/errors.js';
import { loadPipeline } from '../../src/pipeline.js';
import { Rng } from '../../src/rng.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { createRunTrainer, splitSharedState } from '../../src/train/experts-trainer.js';
import { readLog } from '../../src/train/log.js';
import { train } from '../../src/train/train.js';
import { createTrainer, type TrainBatch, type TrainerState } from '../../src/train/trainer.js';
import { ortAvailable } from '../../src/onnx/runner.js';
import { TRAIN_BACKENDS } from '../engine/helpers.js';

/** The training tests' tiny U-Net (no attention), as K experts (1 = one shared network). */
function tinyConfig(experts = 1, numClasses = 0): DiffuseConfig {
  const c = tinyFixture({ numClasses });
  return withExperts({ ...c, model: { ...c.model, attentionResolutions: [] } }, experts, 't');
}

const quiet = { progress: null } as const;

async function inTemp(prefix: string, f: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `diffuse-${prefix}-`));
  try {
    await f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function assertSameState(a: TrainerState, b: TrainerState, what: string): void {
  for (const part of ['params', 'ema'] as const) {
    assert.deepEqual(Object.keys(b[part]).sort(), Object.keys(a[part]).sort());
    for (const [n, t] of Object.entries(a[part])) assert.deepEqual(b[part][n]!.data, t.data, `${what}: ${part} ${n}`);
  }
  for (const [n, t] of Object.entries(a.adam.m)) assert.deepEqual(b.adam.m[n]!.data, t.data, `${what}: adam.m ${n}`);
  assert.equal(b.adam.step, a.adam.step);
}

test('a step of K = 2 experts is each expert\'s own trainer stepping on the rows of its t range', async () => {
  const config = tinyConfig(2, 3);
  const n = 6;
  const rng = new Rng(9);
  // rows interleaved across the two ranges (t < 50 and t >= 50), so routing must gather
  const t = Float32Array.of(3, 70, 49, 50, 99, 10);
  const batch = (): TrainBatch => ({ xt: rng.normalArray(n * 64), t, target: rng.normalArray(n * 64), shape: [n, 8, 8, 1], cond: Int32Array.of(0, 1, 2, 3, 0, 1) });
  const b1 = batch();
  const b2 = batch();
  const hp = { lr: 1e-3, clipNorm: 1, emaDecay: 0.9 };
  const experts = await createRunTrainer(config, { seed: 1, workers: 1 });
  const alone = [await createTrainer(config.model, { seed: 1, workers: 1 }), await createTrainer(config.model, { seed: 1, workers: 1 })];
  try {
    const rows = [[0, 2, 5], [1, 3, 4]];
    const pick = (b: TrainBatch, r: number[]): TrainBatch => ({
      xt: Float32Array.from(r.flatMap((i) => Array.from(b.xt.subarray(i * 64, (i + 1) * 64)))),
      t: Float32Array.from(r.map((i) => b.t[i]!)),
      target: Float32Array.from(r.flatMap((i) => Array.from(b.target.subarray(i * 64, (i + 1) * 64)))),
      shape: [r.length, 8, 8, 1],
      cond: Int32Array.from(r.map((i) => b.cond![i]!)),
    });
    // before training every expert holds the initial weights a single network of the same seed starts from
    const init = expertWeights(2, (await experts.exportState()).params);
    const single = (await alone[0]!.exportState()).params;
    for (const [name, v] of Object.entries(single)) for (const e of init) assert.deepEqual(e[name]!.data, v.data);
    for (const b of [b1, b2]) {
      const r = await experts.step(b, hp);
      const parts = [await alone[0]!.step(pick(b, rows[0]!), hp), await alone[1]!.step(pick(b, rows[1]!), hp)];
      assert.deepEqual(r.experts.map((e) => e.rows), [3, 3]);
      r.experts.forEach((e, k) => assert.equal(e.loss, parts[k]!.loss));
      assert.ok(Math.abs(r.loss - (3 * parts[0]!.loss + 3 * parts[1]!.loss) / 6) < 1e-12, 'loss: mean over all rows');
    }
    const joined = await experts.exportState();
    assert.ok(Object.keys(joined.params).every((k) => /^expert\.[01]\./.test(k)));
    const split = expertWeights(2, joined.params);
    for (let k = 0; k < 2; k++) {
      const own = await alone[k]!.exportState();
      for (const [name, v] of Object.entries(own.params)) assert.deepEqual(split[k]![name]!.data, v.data, `expert ${k} ${name}`);
    }
    // the two experts trained on different rows, so they differ
    const name = Object.keys(split[0]!).find((k) => k.includes('conv_in.kernel'))!;
    assert.notDeepEqual(split[0]![name]!.data, split[1]![name]!.data);
    // a batch that leaves an expert without rows is refused, naming it
    await assert.rejects(experts.step({ ...b1, t: new Float32Array(n).fill(10) }, hp), (e: unknown) => e instanceof DiffuseError && /no image for expert 1 \(t 50–99\)/.test(e.message));
  } finally {
    await experts.dispose();
    await Promise.all(alone.map((a) => a.dispose()));
  }
});

test('K = 2 run: one checkpoint folder of prefixed tensors; N straight == N/2 + resume + N/2; per-expert losses logged', () => inTemp('experts-resume', async (dir) => {
  const data = syntheticData(10);
  const straight = await train({ config: tinyConfig(2), outDir: join(dir, 'a'), dataset: data, ...quiet });
  assert.equal(straight.step, 6);
  await train({ config: tinyConfig(2), outDir: join(dir, 'b'), dataset: data, stopAfter: 3, ...quiet });
  await train({ config: tinyConfig(2), outDir: join(dir, 'b'), dataset: data, resume: true, ...quiet });
  const a = await loadCheckpoint(join(dir, 'a', 'checkpoint'));
  const b = await loadCheckpoint(join(dir, 'b', 'checkpoint'));
  assert.deepEqual(a.config.experts, { count: 2, split: 't', boundaries: [0, 50, 100], init: { kind: 'scratch' } });
  assert.ok(Object.keys(a.state.params).every((k) => /^expert\.[01]\./.test(k)));
  assert.ok(Object.keys(a.state.adam.v).every((k) => /^expert\.[01]\./.test(k)));
  assertSameState(a.state, b.state, 'resumed');
  assert.deepEqual(b.trainingState.rng, a.trainingState.rng);
  // a K = 1 run of the same config has the unprefixed names of today's checkpoints and twice fewer tensors
  await train({ config: tinyConfig(1), outDir: join(dir, 'one'), dataset: data, stopAfter: 1, ...quiet });
  const one = await loadCheckpoint(join(dir, 'one', 'checkpoint'));
  assert.deepEqual(readdirSync(join(dir, 'a', 'checkpoint')).sort(), readdirSync(join(dir, 'one', 'checkpoint')).sort(), 'the same files as one network');
  assert.equal(one.config.experts, undefined);
  assert.equal(2 * Object.keys(one.state.params).length, Object.keys(a.state.params).length);
  assert.ok(Object.keys(one.state.params).every((k) => !k.startsWith('expert.')));
  const log = readLog(join(dir, 'a', 'log.jsonl'));
  assert.equal(log.length, 6);
  for (const r of log) {
    assert.ok(Number.isFinite(r['expert0Loss']) && Number.isFinite(r['expert1Loss']));
    // stratified batch of 4: 2 rows each, so the step's loss is the plain mean of the two
    assert.ok(Math.abs(r.loss - ((r['expert0Loss'] as number) + (r['expert1Loss'] as number)) / 2) < 1e-6);
  }
}));

test('shared-then-split: experts copy the shared network and continue its run (data order, step, log); resume is exact', () => inTemp('experts-split', async (dir) => {
  const data = syntheticData(10);
  const shared = join(dir, 'shared');
  await train({ config: tinyConfig(1), outDir: shared, dataset: data, stopAfter: 3, ...quiet });
  const src = await loadCheckpoint(join(shared, 'checkpoint'));
  // the experts' state at the hand-off: copies of the shared weights and EMA, Adam copied or fresh
  const cfg2 = withExperts(src.config, 2, 't', { kind: 'split', sharedSteps: 3, optimizer: 'copy' });
  for (const optimizer of ['copy', 'fresh'] as const) {
    const s = splitSharedState(cfg2, src.state, optimizer);
    const parts = { params: expertWeights(2, s.params), ema: expertWeights(2, s.ema), m: expertWeights(2, s.adam.m) };
    for (let k = 0; k < 2; k++) {
      for (const [n, t] of Object.entries(src.state.params)) {
        assert.deepEqual(parts.params[k]![n]!.data, t.data);
        assert.notEqual(parts.params[k]![n]!.data, t.data, 'a copy, not the same array');
        assert.deepEqual(parts.ema[k]![n]!.data, src.state.ema[n]!.data);
        assert.deepEqual(parts.m[k]![n]!.data, optimizer === 'copy' ? src.state.adam.m[n]!.data : new Float32Array(t.data.length));
      }
    }
    assert.equal(s.adam.step, optimizer === 'copy' ? src.state.adam.step : 0);
  }
  const split = { dir: shared, experts: 2, split: 't', optimizer: 'copy' } as const;
  const r = await train({ config: tinyConfig(1), outDir: join(dir, 'k2'), dataset: data, splitFrom: split, overrides: { steps: 6 }, ...quiet });
  assert.equal(r.step, 6);
  const k2 = await loadCheckpoint(join(dir, 'k2', 'checkpoint'));
  assert.deepEqual(k2.config.experts, { count: 2, split: 't', boundaries: [0, 50, 100], init: { kind: 'split', sharedSteps: 3, optimizer: 'copy' } });
  assert.equal(k2.config.train.steps, 6);
  // the log carries on the shared run's: steps 1..3 are its lines, 4..6 the experts'
  const sharedLog = readLog(join(shared, 'log.jsonl'));
  const log = readLog(join(dir, 'k2', 'log.jsonl'));
  assert.deepEqual(log.map((l) => l.step), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(log.slice(0, 3).map((l) => l.loss), sharedLog.map((l) => l.loss));
  assert.ok(log.slice(3).every((l) => Number.isFinite(l['expert1Loss'])));
  // the data order continues: the shared network trained on to step 6 reaches the same sampler state
  await train({ config: tinyConfig(1), outDir: shared, dataset: data, resume: true, ...quiet });
  const one = await loadCheckpoint(join(shared, 'checkpoint'));
  assert.deepEqual(k2.trainingState.sampler, one.trainingState.sampler);
  // resuming the experts' run is exact
  await train({ config: tinyConfig(1), outDir: join(dir, 'k2b'), dataset: data, splitFrom: { ...split, dir: join(dir, 'k2-src') }, overrides: { steps: 6 }, ...quiet }).then(
    () => assert.fail('no such shared run'), (e: unknown) => assert.ok(e instanceof DiffuseError));
  await train({ config: tinyConfig(1), outDir: join(dir, 'k2c'), dataset: data, splitFrom: { ...split, dir: join(dir, 'k2') }, overrides: { steps: 8 }, ...quiet }).then(
    () => assert.fail('split of a split'), (e: unknown) => assert.ok(e instanceof DiffuseError && /holds 2 expert networks already/.test(e.message)));
  assert.equal(existsSync(join(dir, 'k2c', 'checkpoint')), false, 'nothing written for a refused split');
}));

test('shared-then-split, resumed mid-way, equals the straight run', () => inTemp('experts-split-resume', async (dir) => {
  const data = syntheticData(10);
  const shared = join(dir, 'shared');
  await train({ config: tinyConfig(1), outDir: shared, dataset: data, stopAfter: 2, ...quiet });
  const split = { dir: shared, experts: 2, split: 't', optimizer: 'fresh' } as const;
  await train({ config: tinyConfig(1), outDir: join(dir, 'a'), dataset: data, splitFrom: split, overrides: { steps: 6 }, ...quiet });
  await train({ config: tinyConfig(1), outDir: join(dir, 'b'), dataset: data, splitFrom: split, overrides: { steps: 6 }, stopAfter: 2, ...quiet });
  assert.equal((await loadCheckpoint(join(dir, 'b', 'checkpoint'))).trainingState.step, 4);
  await train({ config: tinyConfig(1), outDir: join(dir, 'b'), dataset: data, resume: true, ...quiet });
  const a = await loadCheckpoint(join(dir, 'a', 'checkpoint'));
  const b = await loadCheckpoint(join(dir, 'b', 'checkpoint'));
  assertSameState(a.state, b.state, 'split run resumed');
  assert.equal(a.state.adam.step, 4, 'fresh moments: Adam counts only the experts\' 4 steps');
}));

test('sampling a K = 2 checkpoint routes each t to its expert, on tfjs (on the native engine, its workers) and on ONNX Runtime', () => inTemp('experts-sample', async (dir) => {
  const data = syntheticData(10);
  await train({ config: tinyConfig(2), outDir: join(dir, 'k2'), dataset: data, ...quiet });
  const ck = await loadCheckpoint(join(dir, 'k2', 'checkpoint'));
  const [e0, e1] = expertWeights(2, ck.state.ema);
  // each expert alone, as a one-network pipeline of the same config without experts
  const { tfjsModelFn } = await import('../../src/pipeline.js');
  const single = { ...ck.config };
  delete single.experts;
  const solo = [await tfjsModelFn(single, e0!), await tfjsModelFn(single, e1!)];
  const x = new Rng(5).normalArray(2 * 64);
  const engines = ['tfjs', ...((await ortAvailable()) ? ['onnx'] as const : [])] as const;
  try {
    for (const engine of engines) {
      const pipe = await loadPipeline(join(dir, 'k2'), { engine });
      try {
        // with the native addon, tfjs runs the experts on the model workers (every worker holds both)
        if (engine === 'tfjs' && TRAIN_BACKENDS.includes('native') && availableParallelism() >= 2) assert.match(pipe.engine, /native.*2 workers/);
        for (const [t, k] of [[0, 0], [49, 0], [49.5, 0], [50, 1], [99, 1]] as const) {
          const got = await pipe.model(x, t, [2, 8, 8, 1]);
          const want = await solo[k]!.model(x, t, [2, 8, 8, 1]);
          const other = await solo[1 - k]!.model(x, t, [2, 8, 8, 1]);
          let d = 0;
          let dOther = 0;
          for (let i = 0; i < want.length; i++) {
            d = Math.max(d, Math.abs(got[i]! - want[i]!));
            dOther = Math.max(dOther, Math.abs(got[i]! - other[i]!));
          }
          assert.ok(d < 1e-4, `${engine} t=${t}: expert ${k} (max diff ${d})`);
          assert.ok(dOther > 1e-3, `${engine} t=${t}: not expert ${1 - k} (max diff ${dOther})`);
        }
      } finally {
        await pipe.dispose();
      }
    }
  } finally {
    await Promise.all(solo.map((s) => s.dispose()));
  }
}));
