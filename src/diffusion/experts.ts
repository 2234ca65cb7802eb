/**
 * Expert denoisers (eDiff-I, Balaji et al. 2022): instead of one network
 * shared by every step of the reverse process, K networks, each owning a
 * contiguous range of training timesteps. Engine-free: the ranges, the
 * routing of a timestep to its expert, and how a training batch is shared
 * among the experts.
 *
 * Ranges. Expert k owns the training timesteps b_k ≤ t < b_{k+1}, with
 * b_0 = 0 < b_1 < … < b_K = T (the boundaries are stored in config.json, so
 * routing never depends on recomputing them). Two ways to place them:
 * - 't' (the default): equal widths in t, b_k = round(k·T/K);
 * - 'snr': equal widths in log-SNR, log(ᾱ_t/(1−ᾱ_t)), the noise level
 *   eDiff-I splits by. On the linear schedule (log-SNR 9.2 at t = 0, −10.1 at
 *   t = 999) this gives the low-noise experts few timesteps: at T = 1000,
 *   K = 2 splits at t = 303, K = 4 at 31, 303 and 722.
 *
 * Training batches are stratified: every step, each expert gets a share of
 * the batch proportional to its number of timesteps, with t drawn uniformly
 * within its range. So the training distribution of (x_0, t) is the shared
 * network's (uniform t; exactly so for the 't' split, up to rounding of the
 * shares for 'snr'), the same images are seen in total, and the only
 * difference from K = 1 is which network sees which t.
 *
 * Routing. A sampler calls the network at one t per call (ModelFn): the call
 * goes to the one expert whose range holds t. Fractional t (σ-space samplers,
 * Karras sigmas) go to the expert of floor(t), i.e. b_k ≤ t < b_{k+1}; t is
 * clamped to [0, T) first.
 */
import { DiffuseError } from '../errors.js';
import type { Rng } from '../rng.js';
import type { Schedule } from '../schedule.js';
import type { ModelFn } from './types.js';
import type { Weights } from '../tensor.js';

/** How the timestep ranges are placed: equal widths in t, or in log-SNR. */
export type ExpertSplit = 't' | 'snr';
export const EXPERT_SPLITS: readonly ExpertSplit[] = ['t', 'snr'];

/** Most experts a run may have. */
export const MAX_EXPERTS = 64;

/**
 * How the experts were made:
 * - 'scratch': K networks trained from the start;
 * - 'split': eDiff-I's cheaper recipe: a shared network trained for
 *   `sharedSteps` steps, then copied into every expert and fine-tuned on its
 *   range for the remaining steps; `optimizer` says whether the experts
 *   inherited the shared network's Adam moments ('copy') or started with
 *   fresh ones ('fresh').
 */
export type ExpertsInit =
  | { readonly kind: 'scratch' }
  | { readonly kind: 'split'; readonly sharedSteps: number; readonly optimizer: SplitOptimizer };
export type SplitOptimizer = 'copy' | 'fresh';
export const SPLIT_OPTIMIZERS: readonly SplitOptimizer[] = ['copy', 'fresh'];

/** The `experts` section of config.json (absent = one shared network, K = 1). */
export interface ExpertsConfig {
  /** K ≥ 2. */
  count: number;
  split: ExpertSplit;
  /** K + 1 training timesteps: expert k owns b_k ≤ t < b_{k+1}; b_0 = 0, b_K = T. */
  boundaries: number[];
  init: ExpertsInit;
}

/** log(ᾱ_t / (1 − ᾱ_t)) for t = 0 … T−1 (ᾱ = 0 counted as the schedule's σ table does). */
export function logSnr(schedule: Schedule): number[] {
  return schedule.sigmas.map((s) => -2 * Math.log(s));
}

/** The K + 1 boundaries of K experts over the schedule's T timesteps. */
export function expertBoundaries(schedule: Schedule, count: number, split: ExpertSplit): number[] {
  const T = schedule.T;
  if (!Number.isInteger(count) || count < 1 || count > Math.min(MAX_EXPERTS, T)) {
    throw new DiffuseError(`the number of experts must be an integer in 1..${Math.min(MAX_EXPERTS, T)} (at most T = ${T}), got ${count}`);
  }
  switch (split) {
    case 't':
      return Array.from({ length: count + 1 }, (_, k) => Math.round((k * T) / count));
    case 'snr': {
      const l = logSnr(schedule);
      const hi = l[0]!;
      const lo = l[T - 1]!;
      const b = [0];
      for (let k = 1; k < count; k++) {
        const level = hi + (k / count) * (lo - hi);
        // first t at or below the level (log-SNR falls with t), at least one t per expert on each side
        let t = l.findIndex((x) => x <= level);
        if (t < 0) t = T - 1;
        b.push(Math.min(Math.max(t, b[k - 1]! + 1), T - (count - k)));
      }
      b.push(T);
      return b;
    }
    default: {
      const never: never = split;
      throw new DiffuseError(`unknown expert split '${String(never)}' (expected ${EXPERT_SPLITS.join(' or ')})`);
    }
  }
}

/** Throws unless `b` is K + 1 strictly increasing integers from 0 to T. */
export function checkBoundaries(b: readonly number[], T: number, what = 'expert boundaries'): void {
  if (!Array.isArray(b) || b.length < 2) throw new DiffuseError(`${what} must be a list of at least 2 timesteps (0 … T), got ${JSON.stringify(b)}`);
  if (b[0] !== 0 || b[b.length - 1] !== T) throw new DiffuseError(`${what} must start at 0 and end at T = ${T}, got ${JSON.stringify(b)}`);
  for (let k = 1; k < b.length; k++) {
    if (!Number.isInteger(b[k]) || b[k]! <= b[k - 1]!) throw new DiffuseError(`${what} must be strictly increasing integers, got ${JSON.stringify(b)}`);
  }
}

/** The expert whose range holds t (fractional t: floor; t is clamped to [0, T)). */
export function expertIndex(boundaries: readonly number[], t: number): number {
  if (!Number.isFinite(t)) throw new DiffuseError(`timestep must be a finite number, got ${t}`);
  const K = boundaries.length - 1;
  for (let k = 1; k < K; k++) if (t < boundaries[k]!) return k - 1;
  return K - 1;
}

/** "t 0–499" (inclusive training indices) for expert k. */
export function expertRange(boundaries: readonly number[], k: number): string {
  return `t ${boundaries[k]}–${boundaries[k + 1]! - 1}`;
}

/**
 * One ModelFn over K expert ModelFns: each call goes to the expert owning its
 * t (expertIndex). The experts must take the same inputs (shape, condition).
 */
export function routeByTimestep(experts: readonly ModelFn[], boundaries: readonly number[]): ModelFn {
  if (experts.length !== boundaries.length - 1) {
    throw new DiffuseError(`${experts.length} expert networks for ${boundaries.length - 1} timestep ranges`);
  }
  return (x, t, shape, cond) => experts[expertIndex(boundaries, t)]!(x, t, shape, cond);
}

/**
 * Each expert's share of a training batch of `batchSize` images: proportional
 * to its number of timesteps (largest remainders), at least one image each.
 */
export function expertBatchSizes(boundaries: readonly number[], batchSize: number): number[] {
  const K = boundaries.length - 1;
  const T = boundaries[K]!;
  if (!Number.isInteger(batchSize) || batchSize < K) {
    throw new DiffuseError(`a batch of ${batchSize} image(s) cannot give each of ${K} experts at least one (use a batch size of at least ${K})`);
  }
  // one image each, the rest by largest remainder of width·rest/T
  const rest = batchSize - K;
  const quota = Array.from({ length: K }, (_, k) => ((boundaries[k + 1]! - boundaries[k]!) * rest) / T);
  const sizes = quota.map((q) => 1 + Math.floor(q));
  let left = batchSize - sizes.reduce((a, b) => a + b, 0);
  const order = quota.map((q, k) => ({ r: q - Math.floor(q), k })).sort((a, b) => b.r - a.r || a.k - b.k);
  for (let i = 0; left > 0; i++, left--) sizes[order[i % K]!.k]!++;
  return sizes;
}

/**
 * Training timesteps of a stratified batch: the first sizes[0] images get
 * t ~ U{b_0 … b_1 − 1}, the next sizes[1] t ~ U{b_1 … b_2 − 1}, and so on.
 */
export function stratifiedTimesteps(boundaries: readonly number[], sizes: readonly number[], rng: Rng): Int32Array {
  const K = boundaries.length - 1;
  if (sizes.length !== K) throw new DiffuseError(`${sizes.length} batch shares for ${K} experts`);
  const t = new Int32Array(sizes.reduce((a, b) => a + b, 0));
  let i = 0;
  for (let k = 0; k < K; k++) {
    const lo = boundaries[k]!;
    const width = boundaries[k + 1]! - lo;
    for (let j = 0; j < sizes[k]!; j++) t[i++] = lo + rng.int(width);
  }
  return t;
}

// ------------------------------------------------------------------ the experts' weights in one set

/** The tensor-name prefix of expert k in the weights (and checkpoint files) of several experts. */
export function expertPrefix(k: number): string {
  return `expert.${k}.`;
}

/** One set of weights for K experts: each expert's tensors under its prefix (K = 1: the names unchanged). */
export function joinExpertWeights(experts: readonly Weights[]): Weights {
  if (experts.length === 1) return { ...experts[0]! };
  const out: Weights = {};
  experts.forEach((w, k) => {
    for (const [n, t] of Object.entries(w)) out[`${expertPrefix(k)}${n}`] = t;
  });
  return out;
}

/**
 * The weights of each of `count` experts (count = 1: the one shared network,
 * names unchanged), prefixes removed. A tensor outside every expert's prefix
 * is an error naming it and `source`.
 */
export function expertWeights(count: number, weights: Weights, source = 'weights'): Weights[] {
  if (count === 1) return [weights];
  const out: Weights[] = Array.from({ length: count }, () => ({}));
  for (const [n, t] of Object.entries(weights)) {
    const m = /^expert\.(\d+)\.(.+)$/.exec(n);
    const k = m === null ? -1 : Number(m[1]);
    if (m === null || k >= count) throw new DiffuseError(`${source}: tensor "${n}" belongs to none of the ${count} experts (expected names expert.<0..${count - 1}>.<param>)`);
    out[k]![m[2]!] = t;
  }
  out.forEach((w, k) => {
    if (Object.keys(w).length === 0) throw new DiffuseError(`${source}: no tensors for expert ${k} of ${count}`);
  });
  return out;
}
