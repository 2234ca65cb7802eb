import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiffuseError } from '../../src/errors.js';
import { BatchSampler, epochPermutation, gatherBatch } from '../../src/data/batches.js';
import { type Dataset, samplingGroups } from '../../src/data/dataset.js';

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

test('balanced by groups: each epoch draws every group once, members in turn, and a saved state resumes exactly', () => {
  // groups of sizes 3, 1, 2, 4 (ids in any order of the images)
  const groups = [2, 0, 3, 0, 1, 3, 0, 2, 3, 3];
  const members = new Map<number, number[]>();
  groups.forEach((g, i) => members.set(g, [...(members.get(g) ?? []), i]));
  const s = new BatchSampler(10, 3, 5, {}, groups);
  assert.equal(s.epochLength, 4);
  const draws: number[] = [];
  for (let i = 0; i < 48; i++) draws.push(...s.next()); // 144 draws = 36 epochs of 4
  assert.equal(s.epoch, 36);
  const perMember = new Array<number>(10).fill(0);
  for (let e = 0; e < 36; e++) {
    const epoch = draws.slice(4 * e, 4 * e + 4);
    assert.deepEqual(epoch.map((i) => groups[i]!).sort(), [0, 1, 2, 3], `epoch ${e} draws every group once`);
    for (const i of epoch) perMember[i]!++;
  }
  // 36 epochs: each group 36 times, shared evenly by its members (36 is a multiple of 1, 2, 3 and 4)
  for (const [g, m] of members) for (const i of m) assert.equal(perMember[i], 36 / m.length, `member ${i} of group ${g}`);
  // not just the first member: consecutive epochs give a group's members in turn
  const of3 = draws.filter((i) => groups[i] === 3).slice(0, 4);
  assert.deepEqual([...of3].sort((a, b) => a - b), members.get(3));
  // resume mid-epoch through JSON
  const a = new BatchSampler(10, 3, 5, {}, groups);
  for (let i = 0; i < 7; i++) a.next();
  const saved = JSON.parse(JSON.stringify(a.state())) as unknown;
  assert.equal((saved as { groups: number }).groups, 4);
  const b = BatchSampler.fromState(saved, 10, groups);
  for (let i = 0; i < 20; i++) assert.deepEqual(b.next(), a.next());
  // a state needs its groups, and only its groups
  assert.throws(() => BatchSampler.fromState(saved, 10), /balanced over 4 groups, but no groups were given/);
  assert.throws(() => BatchSampler.fromState(new BatchSampler(10, 3, 5).state(), 10, groups), /every image once per epoch, but groups were given/);
  assert.throws(() => BatchSampler.fromState(saved, 10, [0, 0, 1, 1, 2, 2, 0, 0, 1, 1]), /saved for 4 groups, this data set has 3/);
  assert.throws(() => BatchSampler.fromState({ ...(saved as object), cursor: 4 }), /cursor 4 must be < 4 \(groups\)/);
  assert.throws(() => new BatchSampler(4, 2, 0, {}, [0, 2, 2, 0]), /group 1 has no images/);
  assert.throws(() => new BatchSampler(4, 2, 0, {}, [0, 1]), /2 group ids for 4 images/);
});

test('samplingGroups: the data set\'s own groups, else shared canonical captions, else classes, else refused', () => {
  const base = { name: 't', images: new Float32Array(4), shape: [4, 1, 1, 1] as [number, number, number, number] };
  assert.deepEqual([...samplingGroups({ ...base, groups: Int32Array.from([7, 3, 7, 9]), captions: [['a'], ['b'], ['c'], ['d']] })], [0, 1, 0, 2]);
  assert.deepEqual([...samplingGroups({ ...base, captions: [['cat', 'a cat'], ['dog'], ['cat', 'feline'], ['eel']], labels: Int32Array.from([0, 0, 0, 0]) })], [0, 1, 0, 2]);
  assert.deepEqual([...samplingGroups({ ...base, labels: Int32Array.from([1, 1, 0, 2]) })], [0, 0, 1, 2]);
  assert.throws(() => samplingGroups(base), /data set t has no groups to balance/);
});
