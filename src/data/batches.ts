/**
 * Seeded epoch shuffler / batch sampler with an exactly restorable state.
 *
 * Each epoch visits every index once, in a permutation that depends only on
 * (seed, epoch): epoch e's order is a Fisher–Yates shuffle driven by
 * `new Rng(epochSeed(seed, e))`. The whole state is therefore
 * { n, batchSize, seed, epoch, cursor }: saving it in a checkpoint and
 * restoring it gives the identical stream of batches as an uninterrupted run.
 * Batches are always full: a batch that runs past the end of an epoch takes
 * its remaining indices from the start of the next epoch's permutation.
 */
import { DiffuseError } from '../errors.js';
import { Rng } from '../rng.js';
import type { Dataset } from './dataset.js';

export interface SamplerState {
  n: number;
  batchSize: number;
  seed: number;
  epoch: number;
  /** Position inside the current epoch's permutation, 0 ≤ cursor < n. */
  cursor: number;
}

/** 32-bit mix of (seed, epoch) → a seed for that epoch's shuffle. */
export function epochSeed(seed: number, epoch: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.floor(seed / 4294967296)) >>> 0;
  h = (h ^ Math.imul(epoch + 1, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  h = Math.imul(h ^ (h >>> 12), 0x297a2d39) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}

/** The permutation of 0..n-1 used in `epoch`. */
export function epochPermutation(n: number, seed: number, epoch: number): Int32Array {
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  const rng = new Rng(epochSeed(seed, epoch));
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  return perm;
}

function checkInt(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new DiffuseError(`batch sampler: ${what} must be an integer ≥ ${min}, got ${String(v)}`);
  return v;
}

export class BatchSampler {
  readonly n: number;
  readonly batchSize: number;
  readonly seed: number;
  private epochNo: number;
  private pos: number;
  private perm: Int32Array;

  constructor(n: number, batchSize: number, seed: number, at: { epoch?: number; cursor?: number } = {}) {
    this.n = checkInt(n, 'data set size n', 1);
    this.batchSize = checkInt(batchSize, 'batchSize', 1);
    this.seed = checkInt(seed, 'seed', 0);
    this.epochNo = checkInt(at.epoch ?? 0, 'epoch', 0);
    this.pos = checkInt(at.cursor ?? 0, 'cursor', 0);
    if (this.pos >= n) throw new DiffuseError(`batch sampler: cursor ${this.pos} must be < n=${n}`);
    this.perm = epochPermutation(n, seed, this.epochNo);
  }

  get epoch(): number { return this.epochNo; }
  get cursor(): number { return this.pos; }

  /** Indices of the next batch (always `batchSize` long). */
  next(): Int32Array {
    const out = new Int32Array(this.batchSize);
    for (let k = 0; k < this.batchSize; k++) {
      out[k] = this.perm[this.pos]!;
      this.pos++;
      if (this.pos === this.n) {
        this.epochNo++;
        this.pos = 0;
        this.perm = epochPermutation(this.n, this.seed, this.epochNo);
      }
    }
    return out;
  }

  /** JSON-safe snapshot; `BatchSampler.fromState` resumes exactly. */
  state(): SamplerState {
    return { n: this.n, batchSize: this.batchSize, seed: this.seed, epoch: this.epochNo, cursor: this.pos };
  }

  /**
   * Resume from `state()`. If `n` is given it must match the saved size
   * (a different data set would silently give different batches).
   */
  static fromState(state: unknown, n?: number): BatchSampler {
    if (typeof state !== 'object' || state === null) throw new DiffuseError('batch sampler state must be an object');
    const s = state as Record<string, unknown>;
    const sn = checkInt(s['n'], 'state.n', 1);
    if (n !== undefined && n !== sn) throw new DiffuseError(`batch sampler state was saved for a data set of ${sn} images, this one has ${n}`);
    return new BatchSampler(sn, checkInt(s['batchSize'], 'state.batchSize', 1), checkInt(s['seed'], 'state.seed', 0), {
      epoch: checkInt(s['epoch'], 'state.epoch', 0),
      cursor: checkInt(s['cursor'], 'state.cursor', 0),
    });
  }
}

/** Copy the images (and labels) at `indices` into one batch, NHWC. */
export function gatherBatch(ds: Dataset, indices: ArrayLike<number>): { x: Float32Array; labels?: Int32Array; shape: [number, number, number, number] } {
  const [n, h, w, c] = ds.shape;
  const per = h * w * c;
  const x = new Float32Array(indices.length * per);
  const labels = ds.labels ? new Int32Array(indices.length) : undefined;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    if (i < 0 || i >= n) throw new DiffuseError(`gatherBatch: index ${i} out of range 0..${n - 1} of ${ds.name}`);
    x.set(ds.images.subarray(i * per, (i + 1) * per), k * per);
    if (labels) labels[k] = ds.labels![i]!;
  }
  const out: { x: Float32Array; labels?: Int32Array; shape: [number, number, number, number] } = { x, shape: [indices.length, h, w, c] };
  if (labels) out.labels = labels;
  return out;
}
