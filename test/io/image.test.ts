import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import {
  centerCropSquare, decodeImage, imageGrid, readImage, resizeBilinear, toBytes, toFloat, toGrayscale, toRgb, writePng,
  type Channels, type ImageU8,
} from '../../src/io/image.js';
import { encodeGif, writeGif } from '../../src/io/gif.js';
import { writeFileAtomic } from '../../src/io/atomic.js';
import { Rng } from '../../src/rng.js';
import { DiffuseError } from '../../src/errors.js';

const dir = await mkdtemp(join(tmpdir(), 'diffuse-io-'));

function randomImage(w: number, h: number, c: Channels, seed: number): ImageU8 {
  const r = new Rng(seed);
  const data = new Uint8Array(w * h * c);
  for (let i = 0; i < data.length; i++) data[i] = r.int(256);
  return { data, width: w, height: h, channels: c };
}

test('PNG round trip keeps pixels and channel count (gray, RGB, RGBA)', async () => {
  for (const c of [1, 3, 4] as const) {
    const img = randomImage(13, 7, c, c);
    const p = join(dir, `rt${c}.png`);
    await writePng(p, img);
    const back = await readImage(p);
    assert.equal(back.channels, c);
    assert.equal(back.width, 13);
    assert.equal(back.height, 7);
    assert.deepEqual(back.data, img.data);
  }
  assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.tmp')), [], 'no temp files left');
});

test('JPEG is read by magic bytes, whatever the extension', async () => {
  const w = 16; const h = 8;
  const rgba = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) { rgba[i * 4] = 200; rgba[i * 4 + 1] = 100; rgba[i * 4 + 2] = 50; rgba[i * 4 + 3] = 255; }
  const p = join(dir, 'photo.png'); // misleading extension on purpose
  await writeFile(p, jpeg.encode({ data: rgba, width: w, height: h }, 95).data);
  const img = await readImage(p);
  assert.equal(img.channels, 3);
  assert.equal(img.width, w);
  // lossy: a flat colour comes back within a few levels
  for (let i = 0; i < w * h; i++) assert.ok(Math.abs(img.data[i * 3]! - 200) <= 4 && Math.abs(img.data[i * 3 + 2]! - 50) <= 4);
});

test('missing, garbage and truncated files give a DiffuseError naming the file', async () => {
  await assert.rejects(readImage(join(dir, 'nope.png')), (e: unknown) => e instanceof DiffuseError && /nope\.png/.test(e.message) && /no such file/.test(e.message));
  const g = join(dir, 'garbage.jpg');
  await writeFile(g, 'hello, not an image');
  await assert.rejects(readImage(g), (e: unknown) => e instanceof DiffuseError && e.message.includes('garbage.jpg'));
  const png = await readFile(join(dir, 'rt3.png'));
  const cut = join(dir, 'cut.png');
  await writeFile(cut, png.subarray(0, 40));
  await assert.rejects(readImage(cut), (e: unknown) => e instanceof DiffuseError && e.message.includes('cut.png'));
  await assert.rejects(readImage(dir), DiffuseError);
  assert.throws(() => decodeImage(new Uint8Array([0xff, 0xd8, 0xff, 0, 1]), 'bad.jpg'), /bad\.jpg/);
});

test('[0,255] <-> [-1,1] mapping, grayscale/RGB conversion', () => {
  const f = toFloat(Uint8Array.of(0, 255, 128));
  assert.equal(f[0], -1); assert.equal(f[1], 1);
  assert.deepEqual(toBytes(toFloat(Uint8Array.of(0, 1, 127, 128, 254, 255))), Uint8Array.of(0, 1, 127, 128, 254, 255));
  assert.deepEqual(toBytes(Float32Array.of(-5, 5)), Uint8Array.of(0, 255));
  const rgb: ImageU8 = { data: Uint8Array.of(255, 0, 0, 0, 255, 0), width: 2, height: 1, channels: 3 };
  assert.deepEqual(toGrayscale(rgb).data, Uint8Array.of(76, 150));
  assert.deepEqual(toRgb({ data: Uint8Array.of(9, 200), width: 2, height: 1, channels: 1 }).data, Uint8Array.of(9, 9, 9, 200, 200, 200));
});

test('centerCropSquare and resizeBilinear', () => {
  // 4×2 image, values = x: crop keeps columns 1..2
  const img = { data: Float32Array.of(0, 1, 2, 3, 0, 1, 2, 3), width: 4, height: 2, channels: 1 };
  const sq = centerCropSquare(img);
  assert.equal(sq.width, 2);
  assert.deepEqual(sq.data, Float32Array.of(1, 2, 1, 2));
  // a linear ramp stays a ramp when upsampled (interior), constant stays constant
  const up = resizeBilinear({ data: Float32Array.of(0, 1), width: 2, height: 1, channels: 1 }, 4, 1);
  assert.deepEqual(Array.from(up.data), [0, 0.25, 0.75, 1]);
  const flat = resizeBilinear({ data: new Float32Array(5 * 3 * 3).fill(0.3), width: 5, height: 3, channels: 3 }, 7, 2);
  assert.ok(flat.data.every((v) => Math.abs(v - 0.3) < 1e-6) && flat.data.length === 7 * 2 * 3);
  assert.throws(() => resizeBilinear(img, 0, 3), DiffuseError);
});

test('imageGrid layout: size, tile positions, padding', () => {
  const n = 5; const h = 2; const w = 3;
  const images = new Float32Array(n * h * w);
  for (let b = 0; b < n; b++) images.fill(-1 + (2 * (b + 1)) / 10, b * h * w, (b + 1) * h * w);
  const g = imageGrid(images, [n, h, w, 1], { cols: 3, pad: 1, padValue: 1 });
  assert.equal(g.width, 3 * (w + 1) + 1);
  assert.equal(g.height, 2 * (h + 1) + 1);
  const px = (x: number, y: number): number => g.data[y * g.width + x]!;
  const expect = (b: number): number => toBytes(Float32Array.of(-1 + (2 * (b + 1)) / 10))[0]!;
  assert.equal(px(0, 0), 255, 'padding');
  assert.equal(px(1, 1), expect(0));
  assert.equal(px(1 + 2 * (w + 1), 1), expect(2), 'third tile, first row');
  assert.equal(px(1 + (w + 1), 1 + (h + 1)), expect(4), 'fifth tile, second row');
  assert.equal(px(1 + 2 * (w + 1), 1 + (h + 1)), 255, 'empty sixth slot is padding');
  assert.throws(() => imageGrid(images, [n, h, w, 2], {}), DiffuseError);
});

test('GIF: GIF89a header, right frame count, gray and RGB', async () => {
  const countFrames = (b: Uint8Array): number => {
    // count image descriptors (0x2C) that follow a graphic control extension (21 F9 04 .. .. .. .. 00)
    let n = 0;
    for (let i = 0; i + 8 < b.length; i++) if (b[i] === 0x21 && b[i + 1] === 0xf9 && b[i + 2] === 0x04 && b[i + 7] === 0x00 && b[i + 8] === 0x2c) n++;
    return n;
  };
  for (const c of [1, 3] as const) {
    const frames = [0, 1, 2, 3, 4].map((k) => randomImage(6, 5, c, 10 + k));
    const p = join(dir, `anim${c}.gif`);
    await writeGif(p, frames, { delayMs: 50, scale: 2 });
    const bytes = new Uint8Array(await readFile(p));
    assert.equal(Buffer.from(bytes.subarray(0, 6)).toString('ascii'), 'GIF89a');
    assert.equal(bytes[6]! | (bytes[7]! << 8), 12, 'width scaled ×2');
    assert.equal(countFrames(bytes), 5);
    assert.equal(bytes[bytes.length - 1], 0x3b, 'trailer');
  }
  assert.equal(countFrames(encodeGif([randomImage(4, 4, 3, 1), randomImage(4, 4, 3, 2)])), 2);
  assert.throws(() => encodeGif([randomImage(4, 4, 1, 1), randomImage(5, 4, 1, 2)]), /frame 1/);
  assert.throws(() => encodeGif([]), DiffuseError);
});

test('writeFileAtomic replaces content and reports unwritable paths', async () => {
  const p = join(dir, 'a.txt');
  await writeFileAtomic(p, 'one');
  await writeFileAtomic(p, 'two');
  assert.equal(await readFile(p, 'utf8'), 'two');
  await assert.rejects(writeFileAtomic(join(dir, 'no', 'such', 'x.txt'), 'x'), (e: unknown) => e instanceof DiffuseError && /x\.txt/.test(e.message));
});
