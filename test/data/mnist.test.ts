import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiffuseError } from '../../src/errors.js';
import { loadMnist, parseDigitFile } from '../../src/data/mnist.js';

test('mnist: 10,000 28x28 digits in [-1,1], interleaved labels, cached', () => {
  const t0 = performance.now();
  const ds = loadMnist();
  const ms = performance.now() - t0;
  assert.deepEqual(ds.shape, [10000, 28, 28, 1]);
  assert.equal(ds.images.length, 10000 * 784);
  assert.equal(ds.labels!.length, 10000);
  assert.deepEqual(ds.labelNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  assert.deepEqual(Array.from(ds.labels!.subarray(0, 10)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  let min = Infinity, max = -Infinity, sum = 0;
  for (const v of ds.images) { if (v < min) min = v; if (v > max) max = v; sum += v; }
  assert.equal(min, -1);
  assert.equal(max, 1);
  const mean = sum / ds.images.length; // mostly black background
  assert.ok(mean < -0.6 && mean > -0.9, `mean ${mean}`);
  // every class present
  const counts = new Array<number>(10).fill(0);
  for (const l of ds.labels!) counts[l]!++;
  assert.ok(counts.every((c) => c > 800), counts.join(','));
  // second load: from the in-memory cache, a fresh copy
  const t1 = performance.now();
  const again = loadMnist();
  const ms2 = performance.now() - t1;
  assert.notEqual(again.images, ds.images);
  assert.equal(again.images[400], ds.images[400]);
  assert.ok(ms2 < ms || ms2 < 200, `cached load ${ms2} ms vs first ${ms} ms`);
});

test('mnist digit-file parser: fast path equals JSON.parse; bad data is named', () => {
  const text = '{ "data": [0,0.2,1,0.624' + ',0'.repeat(780) + ']}';
  const px = parseDigitFile(Buffer.from(text), 'd.json');
  assert.equal(px.length, 784);
  assert.deepEqual(Array.from(px.subarray(0, 4)), [0, Math.round(0.2 * 255), 255, Math.round(0.624 * 255)]);
  // exponent form goes through the slow path and agrees
  const px2 = parseDigitFile(Buffer.from(text.replace('0.2,', '2e-1,')), 'd.json');
  assert.deepEqual(Array.from(px2), Array.from(px));
  assert.throws(() => parseDigitFile(Buffer.from('{ "data": [0,1,0]}'), 'short.json'), (e: unknown) => e instanceof DiffuseError && /short\.json.*multiple of 784/.test(e.message));
  assert.throws(() => parseDigitFile(Buffer.from('{ "data": [0,1,'), 'trunc.json'), (e: unknown) => e instanceof DiffuseError && /trunc\.json/.test(e.message));
});
