/**
 * Distances between two sets of feature vectors (rows of [N, D] Float32Arrays),
 * all computed in Float64, engine-free:
 *
 * - Fréchet distance (FID when the features come from our classifier) between
 *   Gaussians fit to each set (mean, unbiased covariance):
 *     FD = |μ1 − μ2|² + tr C1 + tr C2 − 2 tr sqrt(C1 C2)
 *   where tr sqrt(C1 C2) = tr sqrt(sqrt(C1) C2 sqrt(C1)) (similar matrices, and
 *   the latter is symmetric PSD), so it takes two symmetric eigendecompositions
 *   (cyclic Jacobi) and no general matrix square root.
 * - KID (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel
 *   k(x, y) = (x·y / D + 1)³, averaged over random subsets; reported as mean
 *   and standard deviation over the subsets.
 * - Predicted-class histogram and its entropy (mode coverage).
 */
import { DiffuseError } from '../errors.js';
import { Rng } from '../rng.js';

/** A set of N feature vectors of dimension D, row-major. */
export interface FeatureSet {
  data: Float32Array | Float64Array;
  n: number;
  d: number;
}

function checkFeatures(f: FeatureSet, what: string): void {
  if (!Number.isInteger(f.n) || !Number.isInteger(f.d) || f.n < 0 || f.d < 1) throw new DiffuseError(`${what}: bad size n=${f.n}, d=${f.d}`);
  if (f.data.length !== f.n * f.d) throw new DiffuseError(`${what}: ${f.data.length} values for n=${f.n} × d=${f.d}`);
  for (let i = 0; i < f.data.length; i++) {
    if (!Number.isFinite(f.data[i]!)) throw new DiffuseError(`${what}: value ${i} (row ${Math.floor(i / f.d)}) is ${f.data[i]}`);
  }
}

/** Mean (D) and unbiased covariance (D×D, row-major) of a feature set, in Float64. */
export function meanAndCovariance(f: FeatureSet): { mean: Float64Array; cov: Float64Array } {
  checkFeatures(f, 'meanAndCovariance');
  const { n, d, data } = f;
  if (n < 2) throw new DiffuseError(`meanAndCovariance: needs at least 2 vectors, got ${n}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += data[i * d + j]!;
  for (let j = 0; j < d; j++) mean[j]! /= n;
  const cov = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = data[i * d + j]! - mean[j]!;
    for (let a = 0; a < d; a++) {
      const ra = row[a]!;
      if (ra === 0) continue;
      const o = a * d;
      for (let b = a; b < d; b++) cov[o + b]! += ra * row[b]!;
    }
  }
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = cov[a * d + b]! / (n - 1);
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
  }
  return { mean, cov };
}

/**
 * Eigendecomposition of a symmetric D×D matrix (row-major) by cyclic Jacobi
 * rotations. Returns eigenvalues and eigenvectors as the columns of `vectors`
 * (row-major D×D), so A = V diag(values) Vᵀ. The input is not modified.
 */
export function symmetricEigen(a: Float64Array, d: number, opts: { maxSweeps?: number; tol?: number } = {}): { values: Float64Array; vectors: Float64Array } {
  if (a.length !== d * d) throw new DiffuseError(`symmetricEigen: ${a.length} values is not ${d}×${d}`);
  const A = Float64Array.from(a);
  // Symmetrize (tiny asymmetries from rounding).
  for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) { const m = 0.5 * (A[i * d + j]! + A[j * d + i]!); A[i * d + j] = m; A[j * d + i] = m; }
  const V = new Float64Array(d * d);
  for (let i = 0; i < d; i++) V[i * d + i] = 1;
  const maxSweeps = opts.maxSweeps ?? 60;
  const tol = opts.tol ?? 1e-15;
  let total = 0;
  for (let i = 0; i < d * d; i++) total += A[i]! * A[i]!;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += A[p * d + q]! * A[p * d + q]!;
    if (off <= tol * tol * total || off === 0) break;
    for (let p = 0; p < d - 1; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = A[p * d + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const app = A[p * d + p]!;
        const aqq = A[q * d + q]!;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // A ← Jᵀ A J, touching rows/columns p and q.
        for (let k = 0; k < d; k++) {
          const akp = A[k * d + p]!;
          const akq = A[k * d + q]!;
          A[k * d + p] = c * akp - s * akq;
          A[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = A[p * d + k]!;
          const aqk = A[q * d + k]!;
          A[p * d + k] = c * apk - s * aqk;
          A[q * d + k] = s * apk + c * aqk;
        }
        A[p * d + q] = 0;
        A[q * d + p] = 0;
        for (let k = 0; k < d; k++) {
          const vkp = V[k * d + p]!;
          const vkq = V[k * d + q]!;
          V[k * d + p] = c * vkp - s * vkq;
          V[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(d);
  for (let i = 0; i < d; i++) values[i] = A[i * d + i]!;
  return { values, vectors: V };
}

/** Symmetric PSD square root V diag(sqrt(max(λ, 0))) Vᵀ. */
export function sqrtPsd(a: Float64Array, d: number): Float64Array {
  const { values, vectors: V } = symmetricEigen(a, d);
  const s = values.map((v) => Math.sqrt(Math.max(v, 0)));
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      let acc = 0;
      for (let k = 0; k < d; k++) acc += V[i * d + k]! * s[k]! * V[j * d + k]!;
      out[i * d + j] = acc;
      out[j * d + i] = acc;
    }
  }
  return out;
}

function matmul(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let k = 0; k < d; k++) {
      const aik = a[i * d + k]!;
      if (aik === 0) continue;
      for (let j = 0; j < d; j++) out[i * d + j]! += aik * b[k * d + j]!;
    }
  }
  return out;
}

/** Fréchet distance between N(mu1, c1) and N(mu2, c2) (D-dimensional, row-major covariances). */
export function frechetDistanceGaussians(mu1: Float64Array, c1: Float64Array, mu2: Float64Array, c2: Float64Array): number {
  const d = mu1.length;
  if (mu2.length !== d || c1.length !== d * d || c2.length !== d * d) {
    throw new DiffuseError(`frechetDistance: dimensions disagree (means ${mu1.length} and ${mu2.length}, covariances ${c1.length} and ${c2.length})`);
  }
  let diff = 0;
  for (let i = 0; i < d; i++) diff += (mu1[i]! - mu2[i]!) ** 2;
  let tr1 = 0, tr2 = 0;
  for (let i = 0; i < d; i++) { tr1 += c1[i * d + i]!; tr2 += c2[i * d + i]!; }
  const s1 = sqrtPsd(c1, d);
  const m = matmul(matmul(s1, c2, d), s1, d);
  const { values } = symmetricEigen(m, d);
  let trSqrt = 0;
  for (const v of values) trSqrt += Math.sqrt(Math.max(v, 0));
  // Rounding can make identical inputs come out at -1e-12; FD is never negative.
  return Math.max(0, diff + tr1 + tr2 - 2 * trSqrt);
}

/** Fréchet distance between Gaussians fit to two feature sets (FID on classifier features). */
export function frechetDistance(a: FeatureSet, b: FeatureSet): number {
  if (a.d !== b.d) throw new DiffuseError(`frechetDistance: feature dimensions differ (${a.d} vs ${b.d})`);
  const A = meanAndCovariance(a);
  const B = meanAndCovariance(b);
  return frechetDistanceGaussians(A.mean, A.cov, B.mean, B.cov);
}

export interface KidOptions {
  /** Number of random subsets averaged (default 100). */
  subsets?: number;
  /** Vectors per subset, drawn without replacement from each set (default min(1000, ⌊min(n1, n2)/2⌋), at least 2). */
  subsetSize?: number;
  /** Seed of the subset draws (default 0). */
  seed?: number;
}

export interface KidResult {
  /** Mean over subsets of the unbiased MMD² estimate. */
  kid: number;
  /** Standard deviation over subsets. */
  std: number;
  subsets: number;
  subsetSize: number;
}

const PRECOMPUTE_LIMIT = 2500;

/**
 * KID: unbiased MMD² with k(x, y) = (x·y/D + 1)³, averaged over `subsets`
 * random subsets of `subsetSize` vectors of each set. Unbiased: its
 * expectation is 0 when both sets come from one distribution (so it can be
 * slightly negative).
 */
export function kernelInceptionDistance(a: FeatureSet, b: FeatureSet, opts: KidOptions = {}): KidResult {
  checkFeatures(a, 'kid (first set)');
  checkFeatures(b, 'kid (second set)');
  if (a.d !== b.d) throw new DiffuseError(`kid: feature dimensions differ (${a.d} vs ${b.d})`);
  const d = a.d;
  const subsets = opts.subsets ?? 100;
  const m = opts.subsetSize ?? Math.max(2, Math.min(1000, Math.floor(Math.min(a.n, b.n) / 2)));
  if (!Number.isInteger(subsets) || subsets < 1) throw new DiffuseError(`kid: subsets must be a positive integer, got ${subsets}`);
  if (!Number.isInteger(m) || m < 2) throw new DiffuseError(`kid: subsetSize must be an integer ≥ 2, got ${m}`);
  if (m > a.n || m > b.n) throw new DiffuseError(`kid: subsetSize ${m} is larger than a set (${a.n} and ${b.n} vectors)`);
  const x = Float64Array.from(a.data);
  const y = Float64Array.from(b.data);
  const k = (p: Float64Array, i: number, q: Float64Array, j: number): number => {
    let s = 0;
    const oi = i * d, oj = j * d;
    for (let t = 0; t < d; t++) s += p[oi + t]! * q[oj + t]!;
    const v = s / d + 1;
    return v * v * v;
  };
  // Whole kernel matrices once when small enough; subsets then only sum entries.
  const pre = a.n <= PRECOMPUTE_LIMIT && b.n <= PRECOMPUTE_LIMIT;
  let kxx: Float64Array | undefined, kyy: Float64Array | undefined, kxy: Float64Array | undefined;
  if (pre) {
    kxx = new Float64Array(a.n * a.n);
    for (let i = 0; i < a.n; i++) for (let j = i + 1; j < a.n; j++) { const v = k(x, i, x, j); kxx[i * a.n + j] = v; kxx[j * a.n + i] = v; }
    kyy = new Float64Array(b.n * b.n);
    for (let i = 0; i < b.n; i++) for (let j = i + 1; j < b.n; j++) { const v = k(y, i, y, j); kyy[i * b.n + j] = v; kyy[j * b.n + i] = v; }
    kxy = new Float64Array(a.n * b.n);
    for (let i = 0; i < a.n; i++) for (let j = 0; j < b.n; j++) kxy[i * b.n + j] = k(x, i, y, j);
  }
  const rng = new Rng(opts.seed ?? 0);
  const choose = (n: number): Int32Array => {
    // Partial Fisher–Yates: m distinct indices.
    const idx = new Int32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    for (let i = 0; i < m; i++) {
      const j = i + rng.int(n - i);
      const t = idx[i]!;
      idx[i] = idx[j]!;
      idx[j] = t;
    }
    return idx.subarray(0, m);
  };
  const est = new Float64Array(subsets);
  for (let s = 0; s < subsets; s++) {
    const ix = choose(a.n);
    const iy = choose(b.n);
    let sxx = 0, syy = 0, sxy = 0;
    for (let p = 0; p < m; p++) {
      const i = ix[p]!;
      const ii = iy[p]!;
      for (let q = p + 1; q < m; q++) {
        sxx += pre ? kxx![i * a.n + ix[q]!]! : k(x, i, x, ix[q]!);
        syy += pre ? kyy![ii * b.n + iy[q]!]! : k(y, ii, y, iy[q]!);
      }
      for (let q = 0; q < m; q++) sxy += pre ? kxy![i * b.n + iy[q]!]! : k(x, i, y, iy[q]!);
    }
    // Off-diagonal sums counted once above: the i≠j sums are twice that.
    est[s] = (2 * sxx) / (m * (m - 1)) + (2 * syy) / (m * (m - 1)) - (2 * sxy) / (m * m);
  }
  let mean = 0;
  for (const v of est) mean += v;
  mean /= subsets;
  let varSum = 0;
  for (const v of est) varSum += (v - mean) ** 2;
  const std = subsets > 1 ? Math.sqrt(varSum / (subsets - 1)) : 0;
  return { kid: mean, std, subsets, subsetSize: m };
}

export interface ClassHistogram {
  /** Images predicted as each class. */
  counts: number[];
  /** counts / N. */
  fractions: number[];
  /** Shannon entropy of `fractions`, in nats (log K for a perfectly even spread). */
  entropy: number;
  /** entropy / log K, in [0, 1]: 1 = every class equally often. */
  normalizedEntropy: number;
  /** Classes predicted for at least 1/(4K) of the images (a rough "modes covered"). */
  classesCovered: number;
}

/** Histogram of predicted classes and its entropy: mode coverage of a generator. */
export function classHistogram(labels: ArrayLike<number>, numClasses: number): ClassHistogram {
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new DiffuseError(`classHistogram: numClasses must be an integer ≥ 2, got ${numClasses}`);
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (!Number.isInteger(l) || l < 0 || l >= numClasses) throw new DiffuseError(`classHistogram: label ${l} at ${i} is outside 0..${numClasses - 1}`);
    counts[l]!++;
  }
  const n = labels.length;
  const fractions = counts.map((c) => (n === 0 ? 0 : c / n));
  let entropy = 0;
  for (const p of fractions) if (p > 0) entropy -= p * Math.log(p);
  const classesCovered = fractions.filter((p) => n > 0 && p >= 1 / (4 * numClasses)).length;
  return { counts, fractions, entropy, normalizedEntropy: entropy / Math.log(numClasses), classesCovered };
}
