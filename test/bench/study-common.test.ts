import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  configDiff, DISCUSSION_MARKER, markdownTable, meanSE, pairedDiff, paretoFront, perImageMse, selectCells, sig, smoothEma, tailMean, withDiscussion,
} from '../../bench/study-common.js';

const close = (a: number, b: number, eps = 1e-12): void => assert.ok(Math.abs(a - b) <= eps, `${a} vs ${b}`);

test('smoothEma: bias-corrected (a constant stays constant), lags a step, skips non-finite', () => {
  assert.deepEqual(smoothEma([3, 3, 3, 3], 0.9).map((v) => Math.round(v * 1e12) / 1e12), [3, 3, 3, 3]);
  const s = smoothEma([0, 0, 0, 10, 10, 10], 0.5);
  assert.equal(s.length, 6);
  assert.equal(s[2], 0);
  assert.ok(s[3]! > 0 && s[3]! < 10 && s[4]! > s[3]! && s[5]! > s[4]! && s[5]! < 10);
  // By hand: beta 0.5, values 0 then 4: acc = 0.5*0 + 0.5*0 = 0; acc = 0 + 0.5*4 = 2; /(1-0.25) = 8/3.
  close(smoothEma([0, 4], 0.5)[1]!, 8 / 3);
  const n = smoothEma([NaN, 2, NaN, 2], 0.9);
  assert.ok(Number.isNaN(n[0]!));
  close(n[1]!, 2);
  close(n[2]!, 2);
  assert.throws(() => smoothEma([1], 1));
  assert.equal(tailMean([1, 2, 3, NaN, 5], 2), 4);
});

test('meanSE and pairedDiff', () => {
  const m = meanSE([1, 2, 3, 4]);
  close(m.mean, 2.5);
  close(m.se, Math.sqrt(((1.5 ** 2 + 0.5 ** 2) * 2) / 3 / 4));
  assert.ok(Number.isNaN(meanSE([1]).se));
  // Paired: a constant offset has zero SE even if the items vary a lot.
  const d = pairedDiff([10, 20, 30], [9, 19, 29]);
  close(d.mean, 1);
  close(d.se, 0);
  assert.throws(() => pairedDiff([1], [1, 2]));
});

test('perImageMse per image, with optional clipping', () => {
  const a = Float32Array.of(1, 1, 3, -3);
  const b = Float32Array.of(0, 0, 1, -1);
  assert.deepEqual([...perImageMse(a, b, 2)], [1, 4]);
  assert.deepEqual([...perImageMse(a, b, 2, [-1, 1])], [1, 0]);
  assert.throws(() => perImageMse(a, b, 3));
});

test('paretoFront keeps the non-dominated points, sorted by x', () => {
  const pts = [{ x: 1, y: 10 }, { x: 2, y: 5 }, { x: 3, y: 6 }, { x: 4, y: 1 }, { x: 2, y: 5 }];
  // (3, 6) is dominated by (2, 5); the two equal points dominate neither each other.
  assert.deepEqual(paretoFront(pts), [0, 1, 4, 3]);
});

test('markdownTable: alignment row, escaped pipes, row length checked', () => {
  const t = markdownTable(['a', 'b'], [['1', 'x|y']], ['l', 'r']);
  assert.equal(t, '| a | b |\n|---|---:|\n| 1 | x\\|y |\n');
  assert.throws(() => markdownTable(['a', 'b'], [['1']]));
  assert.equal(sig(0.000123456), '1.23e-4');
  assert.equal(sig(12.345), '12.3');
});

test('configDiff names every differing leaf and ignores undefined keys', () => {
  const a = { model: { base: 16, mults: [1, 2, 2] }, train: { steps: 500, extra: undefined } };
  assert.deepEqual(configDiff(a, { model: { base: 16, mults: [1, 2, 2] }, train: { steps: 500 } }), []);
  assert.deepEqual(configDiff(a, { model: { base: 32, mults: [1, 2] }, train: { steps: 500, seed: 1 } }), [
    'model.base: expected 16, found 32',
    'model.mults: expected [1,2,2], found [1,2]',
    'train.seed: expected nothing, found 1',
  ]);
});

test('selectCells matches ids loosely and rejects unknown ones', () => {
  const cells = [{ id: 'ddim10' }, { id: 't50-epsilon' }, { id: 'dpm20' }];
  assert.deepEqual(selectCells(cells, undefined).map((c) => c.id), ['ddim10', 't50-epsilon', 'dpm20']);
  assert.deepEqual(selectCells(cells, 'DDIM-10, t50epsilon').map((c) => c.id), ['ddim10', 't50-epsilon']);
  assert.throws(() => selectCells(cells, 'ddim11'), /unknown cell/);
});

test('withDiscussion keeps the hand-written tail of the previous report', () => {
  const first = withDiscussion('# Report\nFID 1\n', undefined);
  assert.equal(first.keptLines, 0);
  assert.ok(first.text.includes(DISCUSSION_MARKER));
  const edited = first.text + 'My discussion.\nSecond line.\n';
  const second = withDiscussion('# Report\nFID 2\n', edited);
  assert.equal(second.keptLines, 2);
  assert.ok(second.text.startsWith('# Report\nFID 2\n'));
  assert.ok(second.text.endsWith(`${DISCUSSION_MARKER}\nMy discussion.\nSecond line.\n`));
  assert.ok(!second.text.includes('FID 1'));
});
