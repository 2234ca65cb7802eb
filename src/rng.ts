/**
 * Seeded random numbers: xoshiro128** (Blackman & Vigna) seeded by splitmix32.
 * Pure TypeScript, no globals: every `Rng` owns its state, so two instances with
 * the same seed produce bit-identical streams, and `state()` / `Rng.fromState()`
 * let training checkpoint and resume a stream exactly (including the cached
 * second Box–Muller normal).
 */
import { DiffuseError } from './errors.js';

/** Serialisable snapshot of an `Rng`: JSON-safe. */
export interface RngState {
  readonly s: readonly [number, number, number, number];
  /** The second normal of the last Box–Muller pair, not yet handed out. */
  readonly spare: number | null;
}

function splitmix32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x9e3779b9) >>> 0;
    let z = a;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

const TWO_POW_M53 = 1 / 9007199254740992;

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;

  /** `seed`: any integer (uses its low 32 bits and, if larger, the next 21). */
  constructor(seed: number = 0) {
    if (!Number.isFinite(seed) || !Number.isInteger(seed)) {
      throw new DiffuseError(`rng seed must be an integer, got ${seed}`);
    }
    const hi = Math.floor(seed / 4294967296);
    const sm = splitmix32((seed >>> 0) ^ Math.imul(hi | 0, 0x27d4eb2d));
    this.s0 = sm();
    this.s1 = sm();
    this.s2 = sm();
    this.s3 = sm();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next raw 32-bit unsigned integer (xoshiro128**). */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0; this.s1 >>>= 0; this.s2 >>>= 0; this.s3 >>>= 0;
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const a = this.nextUint32() >>> 5; // 27 bits
    const b = this.nextUint32() >>> 6; // 26 bits
    return (a * 67108864 + b) * TWO_POW_M53;
  }

  /** Standard normal N(0, 1) by Box–Muller (pairs; the second one is cached). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const u1 = 1 - this.uniform(); // (0, 1]
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const th = 2 * Math.PI * u2;
    this.spare = r * Math.sin(th);
    return r * Math.cos(th);
  }

  /** Fill `arr` with independent N(0, 1) draws (in place) and return it. */
  fillNormal<A extends Float32Array | Float64Array>(arr: A): A {
    for (let i = 0; i < arr.length; i++) arr[i] = this.normal();
    return arr;
  }

  /** A new Float32Array of `n` standard normals. */
  normalArray(n: number): Float32Array {
    return this.fillNormal(new Float32Array(n));
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296) {
      throw new DiffuseError(`rng.int(n) needs an integer 1 ≤ n ≤ 2^32, got ${n}`);
    }
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Snapshot of the full state (JSON-serialisable). */
  state(): RngState {
    return { s: [this.s0, this.s1, this.s2, this.s3], spare: this.spare };
  }

  /** Resume exactly where `state()` was taken. */
  static fromState(state: RngState): Rng {
    const s = state?.s;
    if (!Array.isArray(s) || s.length !== 4 || !s.every((v) => Number.isInteger(v) && v >= 0 && v < 4294967296)) {
      throw new DiffuseError('rng state must have s: four unsigned 32-bit integers');
    }
    if ((s[0] | s[1] | s[2] | s[3]) === 0) throw new DiffuseError('rng state must not be all zero');
    if (state.spare !== null && typeof state.spare !== 'number') throw new DiffuseError('rng state spare must be a number or null');
    const r = new Rng(0);
    r.s0 = s[0]; r.s1 = s[1]; r.s2 = s[2]; r.s3 = s[3];
    r.spare = state.spare;
    return r;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** 32-bit FNV-1a of a string. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * mulberry32: a small deterministic PRNG, floats in [0, 1). Used where a stream
 * must depend only on a name and a seed (initial weights: `hash32(name) ^ seed`).
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
