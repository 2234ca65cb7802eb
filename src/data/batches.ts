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
 *
 * Balanced by groups (`groups[i]` = the group of image i: an emoji with all
 * its skin tones and art styles, the images that share a caption, a class):
 * an epoch visits every group once instead of every image, in the group
 * order of that epoch's permutation, and takes from group g its member
 * number (epoch + offset_g) mod |g|, offset_g a hash of (seed, g). Each group
 * is then drawn equally often and cycles through its own images in turn, and
 * the state stays { n, batchSize, seed, epoch, cursor } (with the number of
 * groups): the member is a function of (seed, epoch, g).
 */
import { DiffuseError } from '../errors.js';
import { Rng } from '../rng.js';
import type { Dataset } from './dataset.js';

export interface SamplerState {
  n: number;
  batchSize: number;
  seed: number;
  epoch: number;
  /** Position inside the current epoch's permutation, 0 ≤ cursor < n (balanced: < groups). */
  cursor: number;
  /** Balanced by groups: how many (absent: every image once per epoch). */
  groups?: number;
}

/** The members of each group (ids 0..G-1, every id used), in index order; a DiffuseError names a bad id. */
export function groupMembers(groups: ArrayLike<number>): Int32Array[] {
  let G = 0;
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    if (!Number.isInteger(g) || g < 0) throw new DiffuseError(`batch sampler: group of image ${i} must be an integer ≥ 0, got ${g}`);
    if (g + 1 > G) G = g + 1;
  }
  const counts = new Int32Array(G);
  for (let i = 0; i < groups.length; i++) counts[groups[i]!]!++;
  const empty = counts.indexOf(0);
  if (empty >= 0) throw new DiffuseError(`batch sampler: group ${empty} has no images (group ids must be 0..G-1, each used)`);
  const members = Array.from(counts, (c) => new Int32Array(c));
  const fill = new Int32Array(G);
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    members[g]![fill[g]!++] = i;
  }
  return members;
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

/** The member offset of group g (balanced sampling): a 32-bit hash of (seed, g). */
function groupOffset(seed: number, g: number): number {
  return epochSeed(seed ^ 0x5bd1e995, g);
}

export class BatchSampler {
  readonly n: number;
  readonly batchSize: number;
  readonly seed: number;
  /** Balanced sampling: the members of each group (undefined: every image once per epoch). */
  private readonly members: Int32Array[] | undefined;
  private readonly offsets: Uint32Array | undefined;
  private epochNo: number;
  private pos: number;
  private perm: Int32Array;

  /** `groups` (one id per image, 0..G-1): draw every group equally often (see the file's comment). */
  constructor(n: number, batchSize: number, seed: number, at: { epoch?: number; cursor?: number } = {}, groups?: ArrayLike<number>) {
    this.n = checkInt(n, 'data set size n', 1);
    this.batchSize = checkInt(batchSize, 'batchSize', 1);
    this.seed = checkInt(seed, 'seed', 0);
    if (groups !== undefined) {
      if (groups.length !== n) throw new DiffuseError(`batch sampler: ${groups.length} group ids for ${n} images`);
      this.members = groupMembers(groups);
      this.offsets = Uint32Array.from(this.members, (_, g) => groupOffset(this.seed, g));
    }
    this.epochNo = checkInt(at.epoch ?? 0, 'epoch', 0);
    this.pos = checkInt(at.cursor ?? 0, 'cursor', 0);
    if (this.pos >= this.epochLength) throw new DiffuseError(`batch sampler: cursor ${this.pos} must be < ${this.epochLength} (${this.members ? 'groups' : 'n'})`);
    this.perm = epochPermutation(this.epochLength, seed, this.epochNo);
  }

  get epoch(): number { return this.epochNo; }
  get cursor(): number { return this.pos; }
  /** Draws per epoch: the images, or the groups when balanced. */
  get epochLength(): number { return this.members?.length ?? this.n; }

  /** Indices of the next batch (always `batchSize` long). */
  next(): Int32Array {
    const out = new Int32Array(this.batchSize);
    const len = this.epochLength;
    for (let k = 0; k < this.batchSize; k++) {
      const j = this.perm[this.pos]!;
      if (this.members === undefined) {
        out[k] = j;
      } else {
        const m = this.members[j]!;
        out[k] = m[(this.epochNo + this.offsets![j]!) % m.length]!;
      }
      this.pos++;
      if (this.pos === len) {
        this.epochNo++;
        this.pos = 0;
        this.perm = epochPermutation(len, this.seed, this.epochNo);
      }
    }
    return out;
  }

  /** JSON-safe snapshot; `BatchSampler.fromState` resumes exactly. */
  state(): SamplerState {
    return { n: this.n, batchSize: this.batchSize, seed: this.seed, epoch: this.epochNo, cursor: this.pos, ...(this.members ? { groups: this.members.length } : {}) };
  }

  /**
   * Resume from `state()`. If `n` is given it must match the saved size
   * (a different data set would silently give different batches); a balanced
   * sampler's state needs the same `groups` (and only it).
   */
  static fromState(state: unknown, n?: number, groups?: ArrayLike<number>): BatchSampler {
    const s = parseSamplerState(state);
    if (n !== undefined && n !== s.n) throw new DiffuseError(`batch sampler state was saved for a data set of ${s.n} images, this one has ${n}`);
    if (groups === undefined && s.groups !== undefined) throw new DiffuseError(`batch sampler state was saved for sampling balanced over ${s.groups} groups, but no groups were given`);
    if (groups !== undefined && s.groups === undefined) throw new DiffuseError('batch sampler state was saved for sampling every image once per epoch, but groups were given');
    // the cursor is checked against the saved number of groups (parseSamplerState), then that number against these groups
    const sampler = new BatchSampler(s.n, s.batchSize, s.seed, { epoch: s.epoch }, groups);
    if (s.groups !== undefined && sampler.epochLength !== s.groups) throw new DiffuseError(`batch sampler state was saved for ${s.groups} groups, this data set has ${sampler.epochLength}`);
    sampler.pos = s.cursor;
    return sampler;
  }
}

/** Check a saved sampler state (a checkpoint's state.json) on its own; a DiffuseError names what is wrong. */
export function parseSamplerState(state: unknown): SamplerState {
  if (typeof state !== 'object' || state === null) throw new DiffuseError('batch sampler state must be an object');
  const s = state as Record<string, unknown>;
  const n = checkInt(s['n'], 'state.n', 1);
  const groups = s['groups'] === undefined ? undefined : checkInt(s['groups'], 'state.groups', 1);
  if (groups !== undefined && groups > n) throw new DiffuseError(`batch sampler: state.groups ${groups} must be ≤ n=${n}`);
  const out: SamplerState = {
    n,
    batchSize: checkInt(s['batchSize'], 'state.batchSize', 1),
    seed: checkInt(s['seed'], 'state.seed', 0),
    epoch: checkInt(s['epoch'], 'state.epoch', 0),
    cursor: checkInt(s['cursor'], 'state.cursor', 0),
    ...(groups !== undefined ? { groups } : {}),
  };
  if (out.cursor >= (groups ?? n)) throw new DiffuseError(`batch sampler: cursor ${out.cursor} must be < ${groups !== undefined ? `${groups} (groups)` : `n=${n}`}`);
  return out;
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
