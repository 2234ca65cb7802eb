import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHAR_W, LINE_H, captionGrid, drawText, upscaleNearest, wrapText } from '../../bench/caption-grid.js';

test('wrapText: words to lines of at most n characters, long words cut', () => {
  assert.deepEqual(wrapText('arrow pointing rightwards then curving downwards', 16), ['arrow pointing', 'rightwards then', 'curving', 'downwards']);
  assert.deepEqual(wrapText('  a  b ', 5), ['a b']);
  assert.deepEqual(wrapText('abcdefghij', 4), ['abcd', 'efgh', 'ij']);
  assert.deepEqual(wrapText('', 4), []);
  assert.throws(() => wrapText('x', 0), /maxChars/);
});

test('drawText: the glyph bits at their places, scaled; unknown characters are "?"', () => {
  const img = { data: new Uint8Array(20 * 20 * 3).fill(255), width: 20, height: 20 };
  drawText(img, 'i', 0, 0, 2);
  const dark = (x: number, y: number): boolean => img.data[(y * 20 + x) * 3] === 0;
  // 'i' row 0 is .###. : columns 1..3 dark, 0 and 4 light; each font pixel 2×2.
  assert.ok(!dark(0, 0) && !dark(1, 1) && dark(2, 0) && dark(3, 1) && dark(7, 1) && !dark(8, 0));
  // row 1 is ..#..
  assert.ok(dark(4, 2) && dark(5, 3) && !dark(2, 2));
  const a = { data: new Uint8Array(6 * 7 * 3).fill(255), width: 6, height: 7 };
  const b = { data: new Uint8Array(6 * 7 * 3).fill(255), width: 6, height: 7 };
  drawText(a, '€', 0, 0);
  drawText(b, '?', 0, 0);
  assert.deepEqual(a.data, b.data);
});

test('captionGrid: label column, headings, tiles scaled in place, gaps; upscaleNearest repeats pixels', () => {
  const size = 2, cols = 3;
  const red = Float32Array.of(1, -1, -1, 1, -1, -1, 1, -1, -1, 1, -1, -1);
  const img = captionGrid([{ label: 'ab', images: Float32Array.from([...red, ...red]) }], { size, channels: 3, cols, scale: 3, labelChars: 4, headings: ['w'], gapAfter: [0] });
  const pad = 4, tile = size * 3;
  const x0 = pad + 4 * CHAR_W + pad;
  assert.equal(img.width, x0 + 3 * (tile + 2) + 3 * pad + pad);
  assert.equal(img.height, pad + (LINE_H + pad) + Math.max(tile, LINE_H) + pad + pad);
  const px = (x: number, y: number): number[] => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
  const y0 = pad + LINE_H + pad;
  assert.deepEqual(px(x0, y0), [255, 0, 0]);
  assert.deepEqual(px(x0 + tile - 1, y0 + tile - 1), [255, 0, 0]);
  // The second tile starts after the gap; the third column is blank (white).
  const x1 = x0 + tile + 2 + 3 * pad;
  assert.deepEqual(px(x1, y0), [255, 0, 0]);
  assert.deepEqual(px(x1 - 1, y0), [255, 255, 255]);
  assert.deepEqual(px(x1 + tile + 2, y0), [255, 255, 255]);
  assert.throws(() => captionGrid([{ label: 'x', images: new Float32Array(5) }], { size, channels: 3, cols }), /has 0.4166/);
  const up = upscaleNearest({ images: Float32Array.of(0.1, 0.2, 0.3, 0.4), shape: [1, 2, 2, 1] }, 4);
  assert.deepEqual(Array.from(up), [0.1, 0.1, 0.2, 0.2, 0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.3, 0.3, 0.4, 0.4].map((v) => Math.fround(v)));
  assert.throws(() => upscaleNearest({ images: new Float32Array(9), shape: [1, 3, 3, 1] }, 4), /cannot show 3×3/);
});
