import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiffuseError } from '../../src/errors.js';
import { BatchSampler, epochPermutation, gatherBatch } from '../../src/data/batches.js';
import type { Dataset } from '../../src/data/dataset.js';

test('each epoch is a permutation; epochs differ; seeds differ', () => {
  const p0 = epochPermutation(100, 7, 0);
  const p1 = epochPermutation(100, 7, 1);
  assert.deepEqual(Array.from(p0).sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
  assert.notDeepEqual(Array.from(p0), Array.from(p1));
  assert.notDeepEqual(Array.from(p0), Array.from(epochPermutation(100, 8, 0)));
  assert.deepEqual(Array.from(p0), Array.from(epochPermutation(100, 7, 0)));
});

test('batches are full, cross epoch boundaries, and cover each epoch exactly once', () => {
  const s = new BatchSampler(10, 4, 1);
  const seen: number[] = [];
  for (let i = 0; i < 5; i++) seen.push(...s.next()); // 20 = two epochs
  assert.equal(s.epoch, 2);
  assert.equal(s.cursor, 0);
  assert.deepEqual(seen.slice(0, 10).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(seen.slice(10).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test('state save/restore (through JSON) reproduces the exact stream', () => {
  const a = new BatchSampler(37, 8, 123);
  for (let i = 0; i < 6; i++) a.next();
  const saved = JSON.parse(JSON.stringify(a.state())) as unknown;
  const b = BatchSampler.fromState(saved, 37);
  for (let i = 0; i < 20; i++) assert.deepEqual(Array.from(b.next()), Array.from(a.next()));
  assert.deepEqual(b.state(), a.state());
  assert.throws(() => BatchSampler.fromState(saved, 36), (e: unknown) => e instanceof DiffuseError && /37 images.*36/.test(e.message));
  assert.throws(() => BatchSampler.fromState({ n: 10, batchSize: 2, seed: 0, epoch: 0, cursor: 10 }), (e: unknown) => e instanceof DiffuseError && /cursor 10/.test(e.message));
  assert.throws(() => BatchSampler.fromState({ n: 10, batchSize: 'x', seed: 0, epoch: 0, cursor: 0 }), (e: unknown) => e instanceof DiffuseError && /batchSize/.test(e.message));
});

test('gatherBatch copies images and labels', () => {
  const ds: Dataset = { name: 't', images: Float32Array.from({ length: 3 * 2 * 2 }, (_, i) => i), shape: [3, 2, 2, 1], labels: Int32Array.from([5, 6, 7]) };
  const b = gatherBatch(ds, [2, 0]);
  assert.deepEqual(b.shape, [2, 2, 2, 1]);
  assert.deepEqual(Array.from(b.x), [8, 9, 10, 11, 0, 1, 2, 3]);
  assert.deepEqual(Array.from(b.labels!), [7, 5]);
  assert.throws(() => gatherBatch(ds, [3]), DiffuseError);
});

test('balancedIndices: round robin over classes, ascending; evenly spaced without labels', async () => {
  const { balancedIndices } = await import('../../src/data/dataset.js');
  const labels = [0, 0, 0, 0, 1, 1, 2, 0, 0, 0];
  assert.deepEqual(Array.from(balancedIndices(10, 5, labels)), [0, 1, 4, 5, 6]);
  assert.deepEqual(Array.from(balancedIndices(10, 4)), [0, 2, 5, 7]);
});
