/** Canvas helpers of the explorer: float images in [-1, 1] (NHWC) onto canvases, nearest-neighbour upscaled. */

/** One image (H·W·C floats in [-1, 1], HWC) as RGBA bytes. */
export function toRgba(data: Float32Array, offset: number, size: number, channels: number): Uint8ClampedArray<ArrayBuffer> {
  const out = new Uint8ClampedArray(new ArrayBuffer(size * size * 4));
  for (let p = 0; p < size * size; p++) {
    const b = offset + p * channels;
    const r = data[b]!;
    const g = channels >= 3 ? data[b + 1]! : r;
    const bl = channels >= 3 ? data[b + 2]! : r;
    out[p * 4] = (r + 1) * 127.5;
    out[p * 4 + 1] = (g + 1) * 127.5;
    out[p * 4 + 2] = (bl + 1) * 127.5;
    out[p * 4 + 3] = 255;
  }
  return out;
}

const scratch = document.createElement('canvas');

/**
 * Draw `count` images of a batch (NHWC, `size`×`size`×`channels`) on
 * `canvas` in a grid of `cols` columns (default: one row), each scaled by
 * `scale`, with `gap` pixels between them. The canvas is resized to fit.
 */
export function drawBatch(canvas: HTMLCanvasElement, data: Float32Array, count: number, size: number, channels: number, scale: number, gap = 4, cols = count): void {
  const c = Math.max(1, Math.min(cols, count));
  const rows = Math.max(1, Math.ceil(count / c));
  const cell = size * scale;
  const w = c * cell + (c - 1) * gap;
  const h = rows * cell + (rows - 1) * gap;
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext('2d');
  if (ctx === null) return;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  scratch.width = size;
  scratch.height = size;
  const sctx = scratch.getContext('2d');
  if (sctx === null) return;
  ctx.imageSmoothingEnabled = false;
  const per = size * size * channels;
  for (let i = 0; i < count; i++) {
    sctx.putImageData(new ImageData(toRgba(data, i * per, size, channels), size, size), 0, 0);
    ctx.drawImage(scratch, (i % c) * (cell + gap), Math.floor(i / c) * (cell + gap), cell, cell);
  }
}

/** How many cells of `cell` pixels (with `gap` between) fit in `width` pixels: at least 1, at most `count`. */
export function columnsThatFit(count: number, cell: number, gap: number, width: number): number {
  return Math.max(1, Math.min(count, Math.floor((width + gap) / (cell + gap))));
}

/**
 * Channel `k` of image `index` of a batch (NHWC, `size`×`size`×`channels`) as
 * a grey image scaled to the channel's own min … max (a flat channel is mid
 * grey), each pixel drawn `scale`×`scale`. Returns the range shown.
 */
export function drawChannel(canvas: HTMLCanvasElement, data: Float32Array, index: number, size: number, channels: number, k: number, scale: number): { min: number; max: number } {
  const per = size * size;
  const base = index * per * channels + k;
  let min = Infinity;
  let max = -Infinity;
  for (let p = 0; p < per; p++) {
    const v = data[base + p * channels]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const grey = new Float32Array(per);
  if (max > min) for (let p = 0; p < per; p++) grey[p] = (2 * (data[base + p * channels]! - min)) / (max - min) - 1;
  drawBatch(canvas, grey, 1, size, 1, scale, 0);
  return { min, max };
}

/** One image filling the whole canvas. */
export function drawOne(canvas: HTMLCanvasElement, data: Float32Array, size: number, channels: number): void {
  const scale = Math.max(1, Math.floor(Math.min(canvas.width, canvas.height) / size));
  canvas.width = size * scale;
  canvas.height = size * scale;
  drawBatch(canvas, data, 1, size, channels, scale, 0);
}

/** ᾱ_t (blue, 0..1) and log SNR (orange, scaled to its range) over t, with a marker at step k (0..T). */
export function drawSchedulePlot(canvas: HTMLCanvasElement, alphaBar: readonly number[], k: number): void {
  const ctx = canvas.getContext('2d');
  if (ctx === null) return;
  const { width: w, height: h } = canvas;
  const pad = 6;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  const T = alphaBar.length;
  const x = (i: number): number => pad + ((w - 2 * pad) * i) / T;
  const y = (v: number): number => h - pad - (h - 2 * pad) * v;
  const logSnr = alphaBar.map((a) => Math.log(a / (1 - a)));
  const lo = Math.min(...logSnr);
  const hi = Math.max(...logSnr);
  const line = (vals: readonly number[], color: string, at: (v: number) => number): void => {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    vals.forEach((v, i) => (i === 0 ? ctx.moveTo(x(1), at(v)) : ctx.lineTo(x(i + 1), at(v))));
    ctx.stroke();
  };
  line(alphaBar, '#2a6df4', y);
  line(logSnr, '#f08c2a', (v) => y(hi > lo ? (v - lo) / (hi - lo) : 0.5));
  ctx.strokeStyle = '#222';
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(x(k), pad);
  ctx.lineTo(x(k), h - pad);
  ctx.stroke();
}
