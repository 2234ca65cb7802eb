/**
 * Fashion-MNIST (Zalando): 70,000 28×28 grayscale clothing images in 10
 * classes, 60k train / 10k test, as the four standard IDX files (gzipped or
 * not). Debian's `dataset-fashion-mnist` puts them in
 * /usr/share/datasets/fashion-mnist/.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DiffuseError } from '../errors.js';
import type { Dataset } from './dataset.js';
import { readIdx } from './idx.js';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_MNIST_LABEL_NAMES: readonly string[] = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

function findFile(dir: string, base: string): string {
  for (const name of [`${base}.gz`, base, base.replace(/-idx(\d)-/, '.idx$1-')]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new DiffuseError(
    `fashion-mnist: ${join(dir, base)}(.gz) not found` +
      (dir === FASHION_MNIST_DIR ? ' (install the Debian package dataset-fashion-mnist, or pass dir)' : ''),
  );
}

/** Load one split: N×28×28×1 in [-1,1], labels 0..9 with the official class names. */
export function loadFashionMnist(opts: { dir?: string; split?: 'train' | 'test' } = {}): Dataset {
  const dir = opts.dir ?? FASHION_MNIST_DIR;
  const split = opts.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new DiffuseError(`fashion-mnist: split must be "train" or "test", got "${String(split)}"`);
  const prefix = split === 'train' ? 'train' : 't10k';
  const imgFile = findFile(dir, `${prefix}-images-idx3-ubyte`);
  const lblFile = findFile(dir, `${prefix}-labels-idx1-ubyte`);
  const img = readIdx(imgFile);
  const lbl = readIdx(lblFile);
  if (img.type !== 'u8' || img.dims.length !== 3) {
    throw new DiffuseError(`fashion-mnist: ${imgFile} should be u8 N×H×W, got ${img.type} [${img.dims.join('×')}]`);
  }
  if (lbl.type !== 'u8' || lbl.dims.length !== 1) {
    throw new DiffuseError(`fashion-mnist: ${lblFile} should be u8 N, got ${lbl.type} [${lbl.dims.join('×')}]`);
  }
  const [n, h, w] = img.dims as [number, number, number];
  if (lbl.dims[0] !== n) throw new DiffuseError(`fashion-mnist: ${imgFile} has ${n} images but ${lblFile} has ${lbl.dims[0]} labels`);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const l = lbl.data[i]!;
    if (l > 9) throw new DiffuseError(`fashion-mnist: ${lblFile} label #${i} is ${l}, outside 0..9`);
    labels[i] = l;
  }
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = v / 127.5 - 1;
  const px = img.data as Uint8Array;
  const images = new Float32Array(px.length);
  for (let i = 0; i < px.length; i++) images[i] = lut[px[i]!]!;
  return { name: 'fashion-mnist', images, shape: [n, h, w, 1], labels, labelNames: FASHION_MNIST_LABEL_NAMES.slice() };
}
