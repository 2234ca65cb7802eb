import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { DiffuseError } from '../../src/errors.js';
import { loadImageFolder } from '../../src/data/folder.js';
import { loadDataset } from '../../src/data/index.js';

function png(w: number, h: number, rgba: [number, number, number, number]): Buffer {
  const p = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h; i++) p.data.set(rgba, i * 4);
  return PNG.sync.write(p);
}

function jpg(w: number, h: number, v: number): Buffer {
  const data = Buffer.alloc(w * h * 4, v);
  return jpeg.encode({ data, width: w, height: h }, 95).data;
}

function makeFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'imgs-'));
  mkdirSync(join(dir, 'cats'));
  mkdirSync(join(dir, 'dogs', 'nested'), { recursive: true });
  writeFileSync(join(dir, 'cats', 'a.png'), png(8, 4, [255, 0, 0, 255])); // wide red → cropped
  writeFileSync(join(dir, 'cats', 'b.PNG'), png(4, 4, [0, 0, 0, 0])); // transparent → white
  writeFileSync(join(dir, 'dogs', 'nested', 'c.jpg'), jpg(6, 6, 0));
  writeFileSync(join(dir, 'dogs', 'notes.txt'), 'ignored');
  return dir;
}

test('folder: recursive, cropped, resized, labels from subfolders', async () => {
  const dir = makeFolder();
  try {
    const ds = await loadImageFolder(dir, { imageSize: 2, channels: 3 });
    assert.deepEqual(ds.shape, [3, 2, 2, 3]);
    assert.deepEqual(ds.labelNames, ['cats', 'dogs']);
    assert.deepEqual(Array.from(ds.labels!), [0, 0, 1]);
    assert.deepEqual(Array.from(ds.images.subarray(0, 3)), [1, -1, -1]); // red
    assert.deepEqual(Array.from(ds.images.subarray(12, 15)), [1, 1, 1]); // transparent over white
    assert.ok(ds.images[24]! < -0.9); // black jpeg
    assert.equal(ds.skipped.length, 0);
    const gray = await loadImageFolder(dir, { imageSize: 3, channels: 1 });
    assert.deepEqual(gray.shape, [3, 3, 3, 1]);
    assert.ok(Math.abs(gray.images[0]! - (0.299 * 255 / 127.5 - 1)) < 1e-5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('folder: bad file is an error naming it, or skipped and counted with skipBad', async () => {
  const dir = makeFolder();
  try {
    writeFileSync(join(dir, 'cats', 'broken.png'), 'this is not a png');
    await assert.rejects(loadImageFolder(dir, { imageSize: 4 }), (e: unknown) => e instanceof DiffuseError && /broken\.png/.test(e.message) && /not a PNG or JPEG/.test(e.message));
    const ds = await loadDataset({ name: 'folder', dir, imageSize: 4, skipBad: true });
    assert.equal(ds.shape[0], 3);
    assert.equal(ds.skipped!.length, 1);
    assert.match(ds.skipped![0]!.file, /broken\.png$/);
    // truncated real PNG
    const full = png(16, 16, [1, 2, 3, 255]);
    writeFileSync(join(dir, 'cats', 'broken.png'), full.subarray(0, full.length >> 1));
    await assert.rejects(loadImageFolder(dir, { imageSize: 4 }), (e: unknown) => e instanceof DiffuseError && /broken\.png/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('folder: empty folder, missing folder, file instead of folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'empty-'));
  try {
    writeFileSync(join(dir, 'readme.txt'), 'x');
    await assert.rejects(loadImageFolder(dir), (e: unknown) => e instanceof DiffuseError && e.message.includes(dir) && /empty/.test(e.message));
    await assert.rejects(loadImageFolder(join(dir, 'nope')), (e: unknown) => e instanceof DiffuseError && /nope.*does not exist/.test(e.message));
    await assert.rejects(loadImageFolder(join(dir, 'readme.txt')), (e: unknown) => e instanceof DiffuseError && /not a directory/.test(e.message));
    writeFileSync(join(dir, 'bad.jpg'), 'nope');
    await assert.rejects(loadImageFolder(dir, { skipBad: true }), (e: unknown) => e instanceof DiffuseError && /no readable images/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loadDataset: mnist with limit, resize and channels; bad specs', async () => {
  const ds = await loadDataset({ name: 'mnist', limit: 20, imageSize: 32, channels: 3 });
  assert.deepEqual(ds.shape, [20, 32, 32, 3]);
  assert.equal(ds.labels!.length, 20);
  assert.equal(new Set(ds.labels).size, 10); // evenly spaced over interleaved classes → all present
  assert.equal(ds.images[0], ds.images[1]); // gray replicated
  let max = -Infinity;
  for (const v of ds.images) if (v > max) max = v;
  assert.ok(max <= 1 && max > 0.5);
  await assert.rejects(loadDataset({ name: 'cifar' as 'mnist' }), (e: unknown) => e instanceof DiffuseError && /unknown data set "cifar"/.test(e.message));
  await assert.rejects(loadDataset({ name: 'mnist', imageSize: 0 }), (e: unknown) => e instanceof DiffuseError && /imageSize/.test(e.message));
  await assert.rejects(loadDataset({ name: 'folder' }), (e: unknown) => e instanceof DiffuseError && /needs dir/.test(e.message));
});
