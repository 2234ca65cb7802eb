import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, type DiffuseConfig } from '../../src/config.js';
import { BatchSampler } from '../../src/data/batches.js';
import { DiffuseError } from '../../src/errors.js';
import { Rng } from '../../src/rng.js';
import { type Checkpoint, loadCheckpoint, loadModelWeights, modelParamShapes, saveCheckpoint } from '../../src/train/checkpoint.js';
import type { TrainerState } from '../../src/train/trainer.js';

const config: DiffuseConfig = defaultConfig({ model: { baseChannels: 8, channelMults: [1, 2], attentionResolutions: [], groups: 4 }, train: { seed: 3 } });

type Named = TrainerState['params'];

async function makeCheckpoint(step: number): Promise<Checkpoint> {
  const shapes = (await modelParamShapes())(config);
  const rng = new Rng(step);
  const fill = (k: number): Named => Object.fromEntries(Object.entries(shapes).map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return [name, { shape: [...shape], data: Float32Array.from({ length: n }, () => rng.normal() * k) }];
  }));
  const sampler = new BatchSampler(100, 16, 3);
  for (let i = 0; i < step; i++) sampler.next();
  rng.normal(); // leave a cached spare normal in the state
  return {
    config,
    state: { params: fill(1), ema: fill(0.5), adam: { step, m: fill(0.1), v: fill(0.01) } },
    trainingState: { step, rng: rng.state(), sampler: sampler.state(), lossHistory: [0.9, 0.5, NaN, 0.25], wallTimeSec: 12.5 },
  };
}

function assertSame(a: Checkpoint, b: Checkpoint): void {
  assert.deepEqual(a.config, b.config);
  assert.equal(a.trainingState.step, b.trainingState.step);
  assert.deepEqual(a.trainingState.rng, b.trainingState.rng);
  assert.deepEqual(a.trainingState.sampler, b.trainingState.sampler);
  assert.deepEqual(a.trainingState.lossHistory, b.trainingState.lossHistory);
  assert.equal(a.state.adam.step, b.state.adam.step);
  for (const key of ['params', 'ema'] as const) {
    for (const [k, t] of Object.entries(a.state[key])) {
      assert.deepEqual(b.state[key][k]!.shape, t.shape);
      assert.deepEqual(b.state[key][k]!.data, t.data, `${key}.${k}`);
    }
  }
  for (const key of ['m', 'v'] as const) {
    for (const [k, t] of Object.entries(a.state.adam[key])) assert.deepEqual(b.state.adam[key][k]!.data, t.data, `adam.${key}.${k}`);
  }
}

const withDir = async (f: (root: string) => Promise<void>): Promise<void> => {
  const root = mkdtempSync(join(tmpdir(), 'ckpt-'));
  try {
    await f(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
};

test('round trip, replace, no leftovers; rng and sampler resume exactly', () => withDir(async (root) => {
  const dir = join(root, 'ckpt');
  const c1 = await makeCheckpoint(3);
  await saveCheckpoint(dir, c1);
  assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'ema.safetensors', 'model.safetensors', 'optimizer.safetensors', 'state.json']);
  const l1 = await loadCheckpoint(dir);
  assertSame(c1, l1);
  // resumed streams equal the uninterrupted ones
  const r = Rng.fromState(l1.trainingState.rng);
  const r0 = Rng.fromState(c1.trainingState.rng);
  assert.equal(r.normal(), r0.normal());
  assert.deepEqual(BatchSampler.fromState(l1.trainingState.sampler).next(), BatchSampler.fromState(c1.trainingState.sampler).next());
  const c2 = await makeCheckpoint(7);
  await saveCheckpoint(dir, c2);
  assertSame(c2, await loadCheckpoint(dir));
  assert.deepEqual(readdirSync(root), ['ckpt']);
  const w = await loadModelWeights(dir, 'ema');
  assert.equal(w.step, 7);
  const anyName = Object.keys(c2.state.ema)[0]!;
  assert.deepEqual(w.params[anyName]!.data, c2.state.ema[anyName]!.data);
  const m = await loadModelWeights(dir, 'model');
  assert.deepEqual(m.params[anyName]!.data, c2.state.params[anyName]!.data);
}));

test('crash between the two renames: newest complete sibling is recovered into place', () => withDir(async (root) => {
  const dir = join(root, 'ckpt');
  await saveCheckpoint(dir, await makeCheckpoint(1));
  await saveCheckpoint(join(root, 'scratch'), await makeCheckpoint(2));
  renameSync(dir, `${dir}.old-4242-1`); // step 1 moved aside
  renameSync(join(root, 'scratch'), `${dir}.tmp-4242`); // complete step 2 not yet renamed in
  const l = await loadCheckpoint(dir);
  assert.equal(l.trainingState.step, 2);
  assert.ok(existsSync(join(dir, 'state.json')), 'recovered into place');
  // only an old folder left (tmp lost): that one loads
  rmSync(dir, { recursive: true });
  assert.equal((await loadModelWeights(dir, 'ema')).step, 1);
  // the next save cleans old siblings up
  await saveCheckpoint(dir, await makeCheckpoint(3));
  assert.deepEqual(readdirSync(root).sort(), ['ckpt']);
}));

test('crash while writing the temp folder: previous checkpoint loads; stale tmp removed on next save', () => withDir(async (root) => {
  const dir = join(root, 'ckpt');
  await saveCheckpoint(dir, await makeCheckpoint(4));
  const stale = `${dir}.tmp-999999999`; // a pid that cannot be alive
  mkdirSync(stale);
  const good = readFileSync(join(dir, 'model.safetensors'));
  writeFileSync(join(stale, 'model.safetensors'), good.subarray(0, 100));
  assert.equal((await loadCheckpoint(dir)).trainingState.step, 4);
  await saveCheckpoint(dir, await makeCheckpoint(5));
  assert.ok(!existsSync(stale));
  // no dir and only a broken tmp: clear error
  rmSync(dir, { recursive: true });
  mkdirSync(stale);
  writeFileSync(join(stale, 'config.json'), '{');
  await assert.rejects(loadCheckpoint(dir), (e: unknown) => e instanceof DiffuseError && /ckpt does not exist/.test(e.message) && /no usable backup/.test(e.message));
}));

test('damaged checkpoint files give clear errors naming the file', () => withDir(async (root) => {
  const dir = join(root, 'ckpt');
  await saveCheckpoint(dir, await makeCheckpoint(2));
  const mf = join(dir, 'model.safetensors');
  const good = readFileSync(mf);
  writeFileSync(mf, good.subarray(0, good.length - 10));
  await assert.rejects(loadCheckpoint(dir), (e: unknown) => e instanceof DiffuseError && e.message.includes(mf));
  writeFileSync(mf, good);
  rmSync(join(dir, 'optimizer.safetensors'));
  await assert.rejects(loadCheckpoint(dir), (e: unknown) => e instanceof DiffuseError && /missing optimizer\.safetensors/.test(e.message));
  assert.equal((await loadModelWeights(dir)).step, 2); // sampling does not need the optimizer
  await saveCheckpoint(dir, await makeCheckpoint(2));
  // config describes a different model than the weights
  const cf = join(dir, 'config.json');
  const cfg = JSON.parse(readFileSync(cf, 'utf8')) as DiffuseConfig;
  cfg.model.baseChannels = 16;
  writeFileSync(cf, JSON.stringify(cfg));
  await assert.rejects(loadCheckpoint(dir), (e: unknown) => e instanceof DiffuseError && e.message.includes(mf) && /expects/.test(e.message));
  cfg.train.lr = -1;
  writeFileSync(cf, JSON.stringify(cfg));
  await assert.rejects(loadModelWeights(dir), (e: unknown) => e instanceof DiffuseError && e.message.includes(cf) && /train\.lr/.test(e.message));
  await saveCheckpoint(dir, await makeCheckpoint(2));
  writeFileSync(join(dir, 'state.json'), '{"step": 2, "rng": {"s": [0,0,0,0], "spare": null}}');
  await assert.rejects(loadCheckpoint(dir), (e: unknown) => e instanceof DiffuseError && /state\.json: field rng/.test(e.message));
}));

test('refuses to replace a folder that is not a checkpoint', () => withDir(async (root) => {
  const dir = join(root, 'photos');
  mkdirSync(dir);
  writeFileSync(join(dir, 'holiday.jpg'), 'x');
  await assert.rejects(saveCheckpoint(dir, await makeCheckpoint(1)), (e: unknown) => e instanceof DiffuseError && /not a checkpoint folder/.test(e.message));
  assert.ok(existsSync(join(dir, 'holiday.jpg')));
}));
