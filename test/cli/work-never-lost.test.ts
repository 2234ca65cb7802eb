/**
 * Issue #13, "work is never lost": each case here fails on the code before
 * the fix (a second run replaced a finished one, a save deleted the user's
 * files in checkpoint/, two runs interleaved their steps, Ctrl-C lost every
 * step since the last checkpoint, the resume rewrite truncated the log in
 * place and a damaged log line blocked resuming).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { cli, copyOf, imageFolder, ROOT, spawnCli, tempDir, tinyTrain } from './fixtures.js';
import { readLog } from '../../src/train/log.js';

const work = tempDir('never-lost');
const data = await imageFolder(join(work, 'data'), ['a', 'b'], 4);
const stateStep = (run: string): number => (JSON.parse(readFileSync(join(run, 'checkpoint', 'state.json'), 'utf8')) as { step: number }).step;
const logSteps = (run: string): number[] => readLog(join(run, 'log.jsonl')).map((r) => r.step);

/** Resolves when the run has logged `n` steps. */
async function loggedSteps(run: string, n: number, timeoutMs = 60_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    try {
      if (readFileSync(join(run, 'log.jsonl'), 'utf8').split('\n').filter((l) => l.trim() !== '').length >= n) return;
    } catch { /* not yet */ }
    if (Date.now() - t0 > timeoutMs) throw new Error(`${run}: fewer than ${n} steps logged after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('train --out over a finished run refuses and leaves it as it was; --overwrite replaces it', async () => {
  const run = join(work, 'finished');
  assert.equal((await cli(tinyTrain(data, '--train-steps', '4', '--out', run))).code, 0);
  const again = await cli(tinyTrain(data, '--train-steps', '2', '--out', run));
  assert.equal(again.code, 1);
  assert.match(again.err, /already holds a run/);
  assert.equal(stateStep(run), 4);
  assert.deepEqual(logSteps(run), [1, 2, 3, 4]);
  const over = await cli(tinyTrain(data, '--train-steps', '2', '--out', run, '--overwrite'));
  assert.equal(over.code, 0, over.err);
  assert.equal(stateStep(run), 2);
  assert.deepEqual(logSteps(run), [1, 2], 'a new run gets a new log, not a second 1..N appended');
});

test('a copy of the shipped model: refused by default; with --overwrite its README stays', async () => {
  const copy = copyOf(join(ROOT, 'models', 'mnist'), join(work, 'mnist-copy'));
  const before = readFileSync(join(copy, 'ema.safetensors'));
  const r = await cli(tinyTrain(data, '--train-steps', '2', '--out', copy));
  assert.equal(r.code, 1);
  assert.match(r.err, /already holds a run: a checkpoint/);
  assert.deepEqual(readFileSync(join(copy, 'ema.safetensors')), before);
  assert.equal((await cli(tinyTrain(data, '--train-steps', '2', '--out', copy, '--overwrite'))).code, 0);
  assert.equal((JSON.parse(readFileSync(join(copy, 'state.json'), 'utf8')) as { step: number }).step, 2, 'the copy is a checkpoint folder: saved in place');
  assert.ok(existsSync(join(copy, 'README.md')), 'the README is not the checkpoint\'s to delete');
});

test('a save replaces only the files the checkpoint owns: notes and subfolders in checkpoint/ survive', async () => {
  const run = join(work, 'owned');
  assert.equal((await cli(tinyTrain(data, '--train-steps', '2', '--out', run))).code, 0);
  writeFileSync(join(run, 'checkpoint', 'NOTES.md'), 'lr sweep, run 3\n');
  mkdirSync(join(run, 'checkpoint', 'plots'));
  writeFileSync(join(run, 'checkpoint', 'plots', 'loss.svg'), '<svg/>');
  assert.equal((await cli(['train', '--resume', run, '--train-steps', '4'])).code, 0);
  assert.equal(stateStep(run), 4);
  assert.equal(readFileSync(join(run, 'checkpoint', 'NOTES.md'), 'utf8'), 'lr sweep, run 3\n');
  assert.equal(readFileSync(join(run, 'checkpoint', 'plots', 'loss.svg'), 'utf8'), '<svg/>');
  assert.deepEqual(readdirSync(run).filter((n) => n.startsWith('checkpoint.')), [], 'no temp or old folders left');
});

test('one run per folder: a live lock refuses, a dead owner\'s lock is taken over with a warning, the lock goes at exit', async () => {
  const run = join(work, 'locked');
  mkdirSync(run);
  writeFileSync(join(run, '.lock'), JSON.stringify({ pid: process.pid, host: hostname(), started: 'earlier' }));
  const live = await cli(tinyTrain(data, '--train-steps', '2', '--out', run));
  assert.equal(live.code, 1);
  assert.match(live.err, new RegExp(`in use by another training run \\(pid ${process.pid}`));
  // a lock whose owner has created it but not yet written its pid: after a short wait, the same kind of line
  writeFileSync(join(run, '.lock'), '');
  const fresh = await cli(tinyTrain(data, '--train-steps', '2', '--out', run));
  assert.equal(fresh.code, 1);
  assert.match(fresh.err, /^diffuse: .*in use by another training run \(its lock .*\.lock is still being written\)[^\n]*\n$/);
  // a pid that cannot be running: beyond the kernel's pid_max
  writeFileSync(join(run, '.lock'), JSON.stringify({ pid: 2 ** 22 + 1, host: hostname(), started: 'earlier' }));
  const stale = await cli(tinyTrain(data, '--train-steps', '2', '--out', run));
  assert.equal(stale.code, 0, stale.err);
  assert.match(stale.err, /taking over the lock of pid 4194305, which is no longer running/);
  assert.equal(existsSync(join(run, '.lock')), false, 'the lock is removed when the run ends');
});

test('two runs started together on one folder: one trains, the other gets one line; every step is logged once', async () => {
  const run = join(work, 'race');
  const args = tinyTrain(data, '--train-steps', '30', '--out', run);
  const a = spawnCli(args);
  const b = spawnCli(args);
  const [ra, rb] = await Promise.all([a.done, b.done]);
  const codes = [ra.code, rb.code].sort();
  assert.deepEqual(codes, [0, 1], `exit codes ${ra.code} ${rb.code}\n${ra.err}\n${rb.err}`);
  const loser = ra.code === 1 ? ra : rb;
  assert.match(loser.err, /^diffuse: .*(in use by another training run|already holds a run)[^\n]*\n$/);
  assert.deepEqual(logSteps(run), Array.from({ length: 30 }, (_, i) => i + 1));
});

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${signal} finishes the step, saves a checkpoint, says where and exits ${code}; --resume continues`, async () => {
    const run = join(work, `signal-${signal}`);
    const p = spawnCli(tinyTrain(data, '--train-steps', '100000', '--checkpoint-every', '0', '--out', run));
    await loggedSteps(run, 1);
    p.kill(signal);
    const r = await p.done;
    assert.equal(r.code, code, r.err);
    assert.match(r.err, /finishing this step, then saving a checkpoint/);
    assert.match(r.err, new RegExp(`stopped at step \\d+ of 100000 .*\\ncheckpoint: ${run}/checkpoint .*continue: diffuse train --resume ${run}`));
    const saved = stateStep(run);
    assert.ok(saved >= 1);
    assert.deepEqual(logSteps(run), Array.from({ length: saved }, (_, i) => i + 1));
    assert.equal(existsSync(join(run, '.lock')), false);
    const more = await cli(['train', '--resume', run, '--train-steps', String(saved + 2)]);
    assert.equal(more.code, 0, more.err);
    assert.equal(stateStep(run), saved + 2);
  });
}

test('a second Ctrl-C quits at once, leaving the last checkpoint as it was', async () => {
  const run = join(work, 'double');
  // a bigger model, so that a step takes long enough for the second signal to arrive inside it
  const p = spawnCli(['train', '--dataset', 'folder', '--data-dir', data, '--size', '32', '--base-channels', '32', '--batch-size', '16',
    '--workers', '1', '--sample-every', '0', '--checkpoint-every', '1', '--train-steps', '100000', '--out', run]);
  await loggedSteps(run, 1);
  p.kill('SIGINT');
  await new Promise((r) => setTimeout(r, 20));
  const t0 = Date.now();
  p.kill('SIGINT');
  const r = await p.done;
  assert.equal(r.code, 130, r.err);
  assert.match(r.err, /SIGINT again: quitting now; the last saved checkpoint is intact/);
  assert.ok(Date.now() - t0 < 5000, 'without waiting for the step or a save');
  assert.ok(stateStep(run) >= 1, 'the checkpoint of step 1 loads');
});

test('resume rewrites log.jsonl atomically (never in place) and keeps what it can read past a damaged line', async () => {
  const run = join(work, 'log');
  assert.equal((await cli(tinyTrain(data, '--train-steps', '3', '--out', run))).code, 0);
  const log = join(run, 'log.jsonl');
  // a run killed after its checkpoint logged a step that will be redone, plus a damaged line in the middle
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  writeFileSync(log, `${lines[0]}\n{"step": 2, "loss": oops\n${lines.slice(1).join('\n')}\n`);
  appendFileSync(log, `${JSON.stringify({ step: 4, loss: 1, lr: 1, imgPerSec: 1, time: 1 })}\n`);
  const keep = join(run, 'log.before');
  linkSync(log, keep); // a second name for the old file: an in-place rewrite would change it too
  const before = readFileSync(keep, 'utf8');
  const r = await cli(['train', '--resume', run, '--train-steps', '5']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /warning: .*log\.jsonl: 1 damaged line\(s\) dropped; the rest of the log is kept/);
  assert.equal(readFileSync(keep, 'utf8'), before, 'the old log file was replaced by a rename, not truncated');
  assert.deepEqual(logSteps(run), [1, 2, 3, 4, 5]);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
