/**
 * The training loop end to end on a tiny model: N steps straight and
 * N/2 + resume + N/2 give bit-identical weights (data order, noise, timesteps,
 * Adam and EMA all restored), a crash between checkpoints leaves the last good
 * checkpoint, a class-conditional run works with label dropout, and a text
 * model draws its captions from a captioned data set (resumably).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { train, emaDecayAt, learningRate } from '../../src/train/train.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { readLog } from '../../src/train/log.js';
import type { Dataset } from '../../src/data/dataset.js';
import { syntheticData, tinyConfig } from './fixtures.js';
import { withCaptionConditioning } from '../../src/text/captions.js';

const quiet = { progress: null } as const;

test('N steps straight == N/2 + resume + N/2 (bit-identical weights, EMA, Adam, RNG)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-resume-'));
  try {
    const data = syntheticData(10); // 10 images, batch 4: the resume point falls mid-epoch
    const straight = await train({ config: tinyConfig(), outDir: join(dir, 'a'), dataset: data, ...quiet });
    assert.equal(straight.step, 6);
    const half = await train({ config: tinyConfig(), outDir: join(dir, 'b'), dataset: data, stopAfter: 3, ...quiet });
    assert.equal(half.step, 3);
    const rest = await train({ config: tinyConfig(), outDir: join(dir, 'b'), dataset: data, resume: true, ...quiet });
    assert.equal(rest.step, 6);
    const a = await loadCheckpoint(join(dir, 'a', 'checkpoint'));
    const b = await loadCheckpoint(join(dir, 'b', 'checkpoint'));
    assert.equal(b.trainingState.step, 6);
    assert.deepEqual(b.trainingState.rng, a.trainingState.rng);
    assert.deepEqual(b.trainingState.sampler, a.trainingState.sampler);
    for (const part of ['params', 'ema'] as const) {
      for (const [name, t] of Object.entries(a.state[part])) {
        assert.deepEqual(b.state[part][name]!.data, t.data, `${part} ${name} differs after resume`);
      }
    }
    assert.equal(b.state.adam.step, a.state.adam.step);
    // Training moved the weights, so the equality above is not trivially about untouched initial values.
    const init = await train({ config: tinyConfig(), outDir: join(dir, 'c'), dataset: data, stopAfter: 1, ...quiet });
    assert.equal(init.step, 1);
    const c = await loadCheckpoint(join(dir, 'c', 'checkpoint'));
    const name = Object.keys(a.state.params).find((k) => k.includes('conv_in.kernel'))!;
    assert.notDeepEqual(c.state.params[name]!.data, a.state.params[name]!.data);
    // The log has one line per step, and the losses are finite.
    const log = readLog(join(dir, 'b', 'log.jsonl'));
    assert.equal(log.length, 6);
    assert.ok(log.every((r) => Number.isFinite(r.loss)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a run that dies between checkpoints leaves the last good checkpoint, and resume continues from it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-crash-'));
  try {
    const data = syntheticData(10);
    const cfg = tinyConfig();
    cfg.train.checkpointEvery = 2;
    // Simulate a crash right after step 3 (the sample-grid hook throws); the last checkpoint was at step 2.
    cfg.train.sampleEvery = 3;
    const crash = async (): Promise<void> => { throw new Error('simulated crash'); };
    await assert.rejects(train({ config: cfg, outDir: join(dir, 'run'), dataset: data, sampleGrid: crash, ...quiet }), /simulated crash/);
    const ck = await loadCheckpoint(join(dir, 'run', 'checkpoint'));
    assert.equal(ck.trainingState.step, 2, 'the last checkpoint before the crash is intact');
    // The crashed run logged step 3 after the step-2 checkpoint; resuming redoes it, and the log keeps one line per step.
    assert.equal(readLog(join(dir, 'run', 'log.jsonl')).length, 3);
    const r = await train({ config: cfg, outDir: join(dir, 'run'), dataset: data, resume: true, ...quiet });
    assert.equal(r.step, 6);
    assert.deepEqual(readLog(join(dir, 'run', 'log.jsonl')).map((l) => l.step), [1, 2, 3, 4, 5, 6]);
    assert.ok(existsSync(join(dir, 'run', 'checkpoint', 'model.safetensors')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('class-conditional training stores the label vocabulary in the checkpoint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-cond-'));
  try {
    const data = syntheticData(8);
    const cfg = tinyConfig({ numClasses: 3 });
    cfg.train.steps = 2;
    const r = await train({ config: cfg, outDir: join(dir, 'run'), dataset: data, ...quiet });
    assert.equal(r.step, 2);
    const ck = await loadCheckpoint(join(dir, 'run', 'checkpoint'));
    assert.deepEqual(ck.config.data.labelNames, ['a', 'b', 'c']);
    assert.equal(ck.config.model.numClasses, 3);
    assert.ok(Object.keys(ck.state.params).some((k) => k.startsWith('class_emb')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a text model on a captioned data set: per-image captions feed training, resume is bit-identical, vocabulary saved', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-captioned-'));
  try {
    const base = syntheticData(10);
    const captioned = (caps: string[][]): Dataset => ({ ...base, captions: caps });
    const words = ['red apple', 'green apple', 'a blue whale', 'the blue sky', 'an emoji of a cat'];
    const data = captioned(Array.from({ length: 10 }, (_, i) => [words[i % 5]!, `${words[(i + 1) % 5]!} and more`]));
    const cfg = withCaptionConditioning(tinyConfig(), data.captions!, { dim: 8 });
    assert.equal(cfg.data.captions, undefined);
    assert.equal(cfg.model.text!.maxTokens, 7); // 'an emoji of a cat and more'... is 7 words
    const straight = await train({ config: cfg, outDir: join(dir, 'a'), dataset: data, ...quiet });
    assert.equal(straight.step, 6);
    await train({ config: cfg, outDir: join(dir, 'b'), dataset: data, stopAfter: 3, ...quiet });
    await train({ config: cfg, outDir: join(dir, 'b'), dataset: data, resume: true, ...quiet });
    const a = await loadCheckpoint(join(dir, 'a', 'checkpoint'));
    const b = await loadCheckpoint(join(dir, 'b', 'checkpoint'));
    assert.deepEqual(a.config.model.text, cfg.model.text);
    for (const [name, t] of Object.entries(a.state.params)) assert.deepEqual(b.state.params[name]!.data, t.data, `${name} differs after resume`);
    // The captions reach the model: other captions for the same images give other weights.
    const swapped = captioned(data.captions!.map((c) => [...c].reverse()));
    await train({ config: cfg, outDir: join(dir, 'c'), dataset: swapped, ...quiet });
    const c = await loadCheckpoint(join(dir, 'c', 'checkpoint'));
    const emb = 'text.tok_emb.table';
    assert.ok(a.state.params[emb], 'the text model has token embeddings');
    assert.notDeepEqual(c.state.params[emb]!.data, a.state.params[emb]!.data);
    // A caption the vocabulary cannot read fails before the first step, naming it.
    const stranger = captioned(data.captions!.map((c, i) => (i === 4 ? ['a purple giraffe'] : c)));
    await assert.rejects(train({ config: cfg, outDir: join(dir, 'd'), dataset: stranger, ...quiet }), /training caption of data set synthetic: unknown word 'purple' in prompt 'a purple giraffe'/);
    const uncaptioned = await train({ config: cfg, outDir: join(dir, 'e'), dataset: base, ...quiet }).catch((e: Error) => e);
    assert.match(String(uncaptioned), /data set synthetic has no captions/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('EMA decay warms up from 0.1 to the configured decay; the learning rate warms up linearly', () => {
  assert.equal(emaDecayAt(0, 0.999), 0.1);
  assert.equal(emaDecayAt(90, 0.999), 91 / 100);
  assert.equal(emaDecayAt(100_000, 0.999), 0.999);
  assert.equal(learningRate(0, 1e-3, 100), 1e-5);
  assert.equal(learningRate(99, 1e-3, 100), 1e-3);
  assert.equal(learningRate(5000, 1e-3, 100), 1e-3);
  assert.equal(learningRate(0, 1e-3, 0), 1e-3);
});

test('warm-up, stable, decay: the rate falls linearly to 0 over the last N steps, and the phases multiply where they overlap', () => {
  // 0-based steps of a 10-step run, warm-up 2, decay over the last 4: s = 6..9 take 4/4, 3/4, 2/4, 1/4.
  const got = Array.from({ length: 10 }, (_, s) => learningRate(s, 1, 2, 4, 10));
  assert.deepEqual(got, [0.5, 1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25]);
  assert.equal(learningRate(12, 1, 0, 4, 10), 0, 'past the end the rate stays 0');
  // A 3-step run with warm-up 2 and decay 3: (1/2)(3/3), (2/2)(2/3), (1)(1/3).
  assert.deepEqual([0, 1, 2].map((s) => learningRate(s, 1, 2, 3, 3)), [0.5, 2 / 3, 1 / 3]);
  assert.equal(learningRate(5, 1e-3, 0, 0, 10), 1e-3, 'no decay steps: constant');
});

test('a constant-rate run cooled down on resume (--train-steps + --lr-decay-steps) equals the same schedule trained straight', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-cooldown-'));
  try {
    const data = syntheticData(10);
    const straightCfg = tinyConfig();
    straightCfg.train.steps = 8;
    straightCfg.train.lrDecaySteps = 4;
    await train({ config: straightCfg, outDir: join(dir, 'a'), dataset: data, ...quiet });
    // Constant rate for 3 steps of a 6-step run, then resumed as an 8-step run that decays over its last 4.
    await train({ config: tinyConfig(), outDir: join(dir, 'b'), dataset: data, stopAfter: 3, ...quiet });
    const said: string[] = [];
    await train({ config: tinyConfig(), outDir: join(dir, 'b'), dataset: data, resume: true, overrides: { steps: 8, lrDecaySteps: 4 }, log: (m) => said.push(m), ...quiet });
    assert.ok(said.some((m) => /resuming with lrDecaySteps 4 \(was 0\)/.test(m)), said.join('\n'));
    const lrs = readLog(join(dir, 'b', 'log.jsonl')).map((l) => l.lr);
    assert.deepEqual(lrs, [0.5e-3, 1e-3, 1e-3, 1e-3, 1e-3, 0.75e-3, 0.5e-3, 0.25e-3]);
    const a = await loadCheckpoint(join(dir, 'a', 'checkpoint'));
    const b = await loadCheckpoint(join(dir, 'b', 'checkpoint'));
    assert.equal(b.config.train.lrDecaySteps, 4, 'the cool-down is saved with the run, for its next resume');
    for (const [name, t] of Object.entries(a.state.ema)) assert.deepEqual(b.state.ema[name]!.data, t.data, `ema ${name} differs`);
    // Longer than the run is refused before any training.
    await assert.rejects(train({ config: tinyConfig(), outDir: join(dir, 'b'), dataset: data, resume: true, overrides: { steps: 9, lrDecaySteps: 10 }, ...quiet }), /--lr-decay-steps 10 is longer than the run's 9 steps/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--init-from: a new run starts from another model\'s EMA weights (fresh Adam, step 0), balanced by groups, and resumes bit-identically', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-init-'));
  try {
    const data = syntheticData(10); // classes a, b, c: the groups
    await train({ config: tinyConfig(), outDir: join(dir, 'a'), dataset: data, ...quiet });
    const a = await loadCheckpoint(join(dir, 'a', 'checkpoint'));
    const init = (steps: number, lr?: number) => ({ dir: join(dir, 'a'), balance: 'groups' as const, train: { steps, lrDecaySteps: 0, ...(lr !== undefined ? { lr } : {}) } });
    // a near-zero rate leaves the weights where they started: A's EMA, not A's raw weights
    await train({ config: tinyConfig(), outDir: join(dir, 'still'), dataset: data, initFrom: init(1, 1e-9), ...quiet });
    const still = await loadCheckpoint(join(dir, 'still', 'checkpoint'));
    let fromEma = 0;
    let fromRaw = 0;
    for (const [name, t] of Object.entries(a.state.ema)) {
      const p = still.state.params[name]!.data;
      for (let i = 0; i < p.length; i++) {
        fromEma = Math.max(fromEma, Math.abs(p[i]! - t.data[i]!));
        fromRaw = Math.max(fromRaw, Math.abs(p[i]! - a.state.params[name]!.data[i]!));
      }
    }
    assert.ok(fromEma < 1e-6 && fromRaw > 1e-4, `starts from the EMA (max diff ${fromEma}) not the raw weights (${fromRaw})`);
    assert.equal(still.state.adam.step, 1, 'fresh Adam moments');
    // straight vs half + resume
    const straight = await train({ config: tinyConfig(), outDir: join(dir, 'b'), dataset: data, initFrom: init(4), ...quiet });
    assert.equal(straight.step, 4);
    assert.deepEqual(straight.config.model, a.config.model);
    assert.equal(straight.config.data.balance, 'groups');
    await train({ config: tinyConfig(), outDir: join(dir, 'c'), dataset: data, initFrom: init(4), stopAfter: 2, ...quiet });
    await train({ config: tinyConfig(), outDir: join(dir, 'c'), dataset: data, resume: true, ...quiet });
    const b = await loadCheckpoint(join(dir, 'b', 'checkpoint'));
    const c = await loadCheckpoint(join(dir, 'c', 'checkpoint'));
    assert.deepEqual(b.trainingState.sampler, { ...c.trainingState.sampler });
    assert.equal(b.trainingState.sampler.groups, 3);
    for (const part of ['params', 'ema'] as const) {
      for (const [name, t] of Object.entries(b.state[part])) assert.deepEqual(c.state[part][name]!.data, t.data, `${part} ${name} differs after resume`);
    }
    assert.deepEqual(readLog(join(dir, 'c', 'log.jsonl')).map((r) => r.step), [1, 2, 3, 4]);
    // its own folder, and a model to start from
    await assert.rejects(train({ config: tinyConfig(), outDir: join(dir, 'a'), dataset: data, initFrom: init(4), overwrite: true, ...quiet }), /needs a folder of its own/);
    await assert.rejects(train({ config: tinyConfig(), outDir: join(dir, 'd'), dataset: data, initFrom: { ...init(4), dir: join(dir, 'none') }, ...quiet }), /checkpoint .*none.* does not exist|missing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
