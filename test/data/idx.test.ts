import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DiffuseError } from '../../src/errors.js';
import { encodeIdxU8, parseIdx, readIdx } from '../../src/data/idx.js';
import { FASHION_MNIST_DIR, FASHION_MNIST_LABEL_NAMES, loadFashionMnist } from '../../src/data/fashion-mnist.js';

const err = (re: RegExp) => (e: unknown) => e instanceof DiffuseError && re.test(e.message);

test('IDX u8 round trip, raw and gzipped', () => {
  const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 7);
  const raw = encodeIdxU8([2, 3, 4], data);
  for (const buf of [raw, gzipSync(raw)]) {
    const a = parseIdx(buf, 'x.idx');
    assert.equal(a.type, 'u8');
    assert.deepEqual(a.dims, [2, 3, 4]);
    assert.deepEqual(Array.from(a.data), Array.from(data));
  }
});

test('IDX big-endian i32 is decoded', () => {
  const buf = new Uint8Array(4 + 4 + 8);
  const v = new DataView(buf.buffer);
  buf[2] = 0x0c; buf[3] = 1;
  v.setUint32(4, 2, false);
  v.setInt32(8, -5, false);
  v.setInt32(12, 70000, false);
  const a = parseIdx(buf, 'i.idx');
  assert.equal(a.type, 'i32');
  assert.deepEqual(Array.from(a.data), [-5, 70000]);
});

test('IDX hardening: wrong magic, unknown type, truncated, trailing, bad gzip', () => {
  const good = encodeIdxU8([2, 2], new Uint8Array(4));
  const bad1 = good.slice(); bad1[0] = 0x42;
  assert.throws(() => parseIdx(bad1, 'm.idx'), err(/m\.idx.*wrong magic/));
  const bad2 = good.slice(); bad2[2] = 0x07;
  assert.throws(() => parseIdx(bad2, 't.idx'), err(/t\.idx.*unknown data type/));
  assert.throws(() => parseIdx(good.subarray(0, good.length - 1), 'tr.idx'), err(/tr\.idx.*truncated.*need 4 data bytes, file has 3/));
  assert.throws(() => parseIdx(good.subarray(0, 6), 'h.idx'), err(/h\.idx.*truncated header/));
  assert.throws(() => parseIdx(new Uint8Array([0, 0]), 's.idx'), err(/s\.idx.*truncated/));
  const extra = new Uint8Array(good.length + 2); extra.set(good);
  assert.throws(() => parseIdx(extra, 'x.idx'), err(/x\.idx.*2 trailing bytes/));
  const gz = gzipSync(good);
  assert.throws(() => parseIdx(gz.subarray(0, gz.length - 6), 'g.idx.gz'), err(/g\.idx\.gz.*gzip/));
  assert.throws(() => readIdx('/nonexistent/q.idx'), err(/q\.idx.*cannot read/));
});

test('fashion-mnist from a dir of IDX files; dims mismatch is named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fm-'));
  try {
    const px = Uint8Array.from({ length: 3 * 28 * 28 }, (_, i) => i % 256);
    writeFileSync(join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(encodeIdxU8([3, 28, 28], px)));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), encodeIdxU8([3], Uint8Array.from([9, 0, 3])));
    const ds = loadFashionMnist({ dir, split: 'test' });
    assert.deepEqual(ds.shape, [3, 28, 28, 1]);
    assert.deepEqual(Array.from(ds.labels!), [9, 0, 3]);
    assert.equal(ds.labelNames![9], 'Ankle boot');
    assert.equal(ds.images[0], -1);
    assert.ok(Math.abs(ds.images[255]! - 1) < 1e-6);
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), encodeIdxU8([2], Uint8Array.from([9, 0])));
    assert.throws(() => loadFashionMnist({ dir, split: 'test' }), err(/3 images but .*t10k-labels.* 2 labels/));
    assert.throws(() => loadFashionMnist({ dir, split: 'train' }), err(/train-images-idx3-ubyte.*not found/));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fashion-mnist test split from the Debian package', { skip: !existsSync(FASHION_MNIST_DIR) && 'dataset-fashion-mnist not installed' }, () => {
  const ds = loadFashionMnist({ split: 'test' });
  assert.deepEqual(ds.shape, [10000, 28, 28, 1]);
  assert.deepEqual(ds.labelNames, [...FASHION_MNIST_LABEL_NAMES]);
  assert.deepEqual(Array.from(ds.labels!.subarray(0, 5)), [9, 2, 1, 1, 6]);
  const counts = new Array<number>(10).fill(0);
  for (const l of ds.labels!) counts[l]!++;
  assert.deepEqual(counts, new Array<number>(10).fill(1000));
});
