import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/rng.js';
import { DiffuseError } from '../../src/errors.js';

test('same seed gives bit-identical noise; different seeds differ', () => {
  const a = new Rng(42).normalArray(1000);
  const b = new Rng(42).normalArray(1000);
  const c = new Rng(43).normalArray(1000);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test('state()/fromState() resumes exactly, including a cached Box–Muller spare', () => {
  const r = new Rng(7);
  r.normal(); r.normal(); r.normal(); // odd count: a spare is cached
  r.uniform();
  const snap = JSON.parse(JSON.stringify(r.state())) as ReturnType<Rng['state']>;
  assert.notEqual(snap.spare, null);
  const expected = [r.normal(), r.uniform(), r.int(10), r.normal()];
  const resumed = Rng.fromState(snap);
  assert.deepEqual([resumed.normal(), resumed.uniform(), resumed.int(10), resumed.normal()], expected);
  assert.throws(() => Rng.fromState({ s: [0, 0, 0, 0], spare: null }), DiffuseError);
});

test('normal() has mean 0 and variance 1 within 5 standard errors', () => {
  const n = 200_000;
  const x = new Rng(1).normalArray(n);
  let s = 0; let q = 0;
  for (const v of x) { s += v; q += v * v; }
  const mean = s / n;
  const variance = q / n - mean * mean;
  assert.ok(Math.abs(mean) < 5 / Math.sqrt(n), `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 5 * Math.sqrt(2 / n), `variance ${variance}`);
});

test('int(n) stays in range and is roughly uniform; uniform() in [0,1)', () => {
  const r = new Rng(3);
  const counts = new Array<number>(7).fill(0);
  const N = 70_000;
  for (let i = 0; i < N; i++) {
    const k = r.int(7);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 7);
    counts[k]!++;
  }
  // each count ~ Binomial(N, 1/7): sd = sqrt(N·(1/7)(6/7)) ≈ 92.6
  for (const c of counts) assert.ok(Math.abs(c - N / 7) < 5 * Math.sqrt(N * (1 / 7) * (6 / 7)), `count ${c}`);
  for (let i = 0; i < 1000; i++) { const u = r.uniform(); assert.ok(u >= 0 && u < 1); }
  assert.throws(() => r.int(0), DiffuseError);
  assert.throws(() => new Rng(1.5), DiffuseError);
});
