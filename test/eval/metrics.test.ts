import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiffuseError } from '../../src/errors.js';
import { Rng } from '../../src/rng.js';
import {
  classHistogram,
  frechetDistance,
  frechetDistanceGaussians,
  kernelInceptionDistance,
  meanAndCovariance,
  sqrtPsd,
  symmetricEigen,
  type FeatureSet,
} from '../../src/eval/metrics.js';

/** Random orthogonal D×D matrix (Gram–Schmidt of a Gaussian matrix), row-major. */
function randomOrthogonal(d: number, rng: Rng): Float64Array {
  const q = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    const v = new Float64Array(d).map(() => rng.normal());
    for (let k = 0; k < j; k++) {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += v[i]! * q[i * d + k]!;
      for (let i = 0; i < d; i++) v[i]! -= dot * q[i * d + k]!;
    }
    const norm = Math.hypot(...v);
    for (let i = 0; i < d; i++) q[i * d + j] = v[i]! / norm;
  }
  return q;
}

/** Q diag(s) Qᵀ. */
function fromEigen(q: Float64Array, s: ArrayLike<number>, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) {
    let a = 0;
    for (let k = 0; k < d; k++) a += q[i * d + k]! * s[k]! * q[j * d + k]!;
    out[i * d + j] = a;
  }
  return out;
}

/** n draws of N(mu, Q diag(s) Qᵀ): x = mu + Q (sqrt(s) ⊙ z). */
function gaussianSamples(n: number, mu: ArrayLike<number>, q: Float64Array, s: ArrayLike<number>, rng: Rng): FeatureSet {
  const d = mu.length;
  const data = new Float64Array(n * d);
  const z = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < d; k++) z[k] = Math.sqrt(s[k]!) * rng.normal();
    for (let i = 0; i < d; i++) {
      let a = mu[i]!;
      for (let k = 0; k < d; k++) a += q[i * d + k]! * z[k]!;
      data[r * d + i] = a;
    }
  }
  return { data, n, d };
}

test('symmetricEigen reconstructs a random symmetric matrix with orthonormal eigenvectors', () => {
  const rng = new Rng(1);
  const d = 24;
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = i; j < d; j++) { const v = rng.normal(); a[i * d + j] = v; a[j * d + i] = v; }
  const { values, vectors: v } = symmetricEigen(a, d);
  const rec = fromEigen(v, values, d);
  for (let i = 0; i < d * d; i++) assert.ok(Math.abs(rec[i]! - a[i]!) < 1e-10, `entry ${i}: ${rec[i]} vs ${a[i]}`);
  const vtv = fromEigen(new Float64Array(d * d).map((_, i) => v[(i % d) * d + Math.floor(i / d)]!), new Float64Array(d).fill(1), d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) assert.ok(Math.abs(vtv[i * d + j]! - (i === j ? 1 : 0)) < 1e-10);
});

test('sqrtPsd squares back to the matrix', () => {
  const rng = new Rng(2);
  const d = 10;
  const q = randomOrthogonal(d, rng);
  const s = Array.from({ length: d }, () => 0.1 + rng.uniform() * 3);
  const c = fromEigen(q, s, d);
  const r = sqrtPsd(c, d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) {
    let a = 0;
    for (let k = 0; k < d; k++) a += r[i * d + k]! * r[k * d + j]!;
    assert.ok(Math.abs(a - c[i * d + j]!) < 1e-10);
  }
});

test('Fréchet distance of 2-D Gaussians matches the closed form tr sqrt(C1 C2) = sqrt(tr(C1C2) + 2 sqrt(det C1 det C2))', () => {
  const rng = new Rng(3);
  for (let trial = 0; trial < 20; trial++) {
    const mk = (): Float64Array => {
      const a = rng.normal(), b = rng.normal(), c = rng.normal(), e = rng.normal();
      // A Aᵀ + 0.1 I: symmetric positive definite, not diagonal.
      return Float64Array.of(a * a + b * b + 0.1, a * c + b * e, a * c + b * e, c * c + e * e + 0.1);
    };
    const c1 = mk(), c2 = mk();
    const mu1 = Float64Array.of(rng.normal(), rng.normal());
    const mu2 = Float64Array.of(rng.normal(), rng.normal());
    const p = [c1[0]! * c2[0]! + c1[1]! * c2[2]!, c1[2]! * c2[1]! + c1[3]! * c2[3]!];
    const det = (m: Float64Array): number => m[0]! * m[3]! - m[1]! * m[2]!;
    const trSqrt = Math.sqrt(p[0]! + p[1]! + 2 * Math.sqrt(det(c1) * det(c2)));
    const expected = (mu1[0]! - mu2[0]!) ** 2 + (mu1[1]! - mu2[1]!) ** 2 + c1[0]! + c1[3]! + c2[0]! + c2[3]! - 2 * trSqrt;
    const got = frechetDistanceGaussians(mu1, c1, mu2, c2);
    assert.ok(Math.abs(got - expected) < 1e-9 * Math.max(1, expected), `trial ${trial}: ${got} vs ${expected}`);
  }
});

test('Fréchet distance from large samples of two known Gaussians approaches the exact value', () => {
  const rng = new Rng(4);
  const d = 6;
  const q = randomOrthogonal(d, rng);
  const s1 = [1, 2, 0.5, 1.5, 3, 0.8];
  const s2 = [2, 0.5, 0.5, 1, 1, 2];
  const mu1 = [0, 0, 0, 0, 0, 0];
  const mu2 = [0.5, -0.3, 0, 0.2, 0, 0.1];
  // Same eigenvectors (not axis-aligned): FD = |Δμ|² + Σ (√s1 − √s2)².
  let exact = 0;
  for (let i = 0; i < d; i++) exact += (mu1[i]! - mu2[i]!) ** 2 + (Math.sqrt(s1[i]!) - Math.sqrt(s2[i]!)) ** 2;
  const exactViaMatrices = frechetDistanceGaussians(Float64Array.from(mu1), fromEigen(q, s1, d), Float64Array.from(mu2), fromEigen(q, s2, d));
  assert.ok(Math.abs(exactViaMatrices - exact) < 1e-9, `${exactViaMatrices} vs ${exact}`);
  const a = gaussianSamples(20000, mu1, q, s1, rng);
  const b = gaussianSamples(20000, mu2, q, s2, rng);
  const fd = frechetDistance(a, b);
  assert.ok(Math.abs(fd - exact) < 0.08 * exact, `sampled FD ${fd} vs exact ${exact}`);
});

test('Fréchet distance: identical sets give 0, it is symmetric, a mean shift adds |Δμ|²', () => {
  const rng = new Rng(5);
  const d = 16, n = 300;
  const a: FeatureSet = { data: new Float32Array(n * d).map(() => rng.normal()), n, d };
  const b: FeatureSet = { data: new Float32Array(n * d).map(() => rng.normal() * 1.3 + 0.2), n, d };
  assert.ok(frechetDistance(a, a) < 1e-8);
  const ab = frechetDistance(a, b), ba = frechetDistance(b, a);
  assert.ok(ab > 0.5);
  assert.ok(Math.abs(ab - ba) < 1e-9 * ab, `${ab} vs ${ba}`);
  const shifted: FeatureSet = { data: a.data.map((v, i) => v + (i % d === 0 ? 2 : 0)), n, d };
  assert.ok(Math.abs(frechetDistance(a, shifted) - 4) < 1e-4);
});

test('meanAndCovariance is the unbiased estimate', () => {
  const f: FeatureSet = { data: Float32Array.of(1, 2, 3, 6, 5, 1), n: 3, d: 2 };
  const { mean, cov } = meanAndCovariance(f);
  assert.deepEqual([...mean], [3, 3]);
  // x: 1,3,5 -> var 4; y: 2,6,1 -> var 7; cov: ((-2)(-1) + 0 + 2(-2))/2 = -1
  assert.deepEqual([...cov], [4, -1, -1, 7]);
});

function naiveMmd2(x: FeatureSet, y: FeatureSet): number {
  const d = x.d;
  const k = (p: FeatureSet, i: number, q: FeatureSet, j: number): number => {
    let s = 0;
    for (let t = 0; t < d; t++) s += p.data[i * d + t]! * q.data[j * d + t]!;
    return (s / d + 1) ** 3;
  };
  let xx = 0, yy = 0, xy = 0;
  for (let i = 0; i < x.n; i++) for (let j = 0; j < x.n; j++) if (i !== j) xx += k(x, i, x, j);
  for (let i = 0; i < y.n; i++) for (let j = 0; j < y.n; j++) if (i !== j) yy += k(y, i, y, j);
  for (let i = 0; i < x.n; i++) for (let j = 0; j < y.n; j++) xy += k(x, i, y, j);
  return xx / (x.n * (x.n - 1)) + yy / (y.n * (y.n - 1)) - (2 * xy) / (x.n * y.n);
}

test('KID with one full-size subset equals the naive unbiased MMD² with the cubic kernel', () => {
  const rng = new Rng(6);
  const d = 5, n = 40;
  const x: FeatureSet = { data: new Float64Array(n * d).map(() => rng.normal()), n, d };
  const y: FeatureSet = { data: new Float64Array(n * d).map(() => rng.normal() + 0.3), n, d };
  const r = kernelInceptionDistance(x, y, { subsets: 1, subsetSize: n });
  const expected = naiveMmd2(x, y);
  assert.ok(Math.abs(r.kid - expected) < 1e-9 * Math.abs(expected), `${r.kid} vs ${expected}`);
});

test('KID is unbiased: ≈ 0 on two samples of one distribution, clearly positive for different ones', () => {
  const rng = new Rng(7);
  const d = 8, n = 200;
  const draw = (shift: number): FeatureSet => ({ data: new Float32Array(n * d).map(() => rng.normal() + shift), n, d });
  const same: number[] = [];
  const diff: number[] = [];
  for (let r = 0; r < 12; r++) {
    same.push(kernelInceptionDistance(draw(0), draw(0), { subsets: 10, subsetSize: 100, seed: r }).kid);
    diff.push(kernelInceptionDistance(draw(0), draw(0.3), { subsets: 10, subsetSize: 100, seed: r }).kid);
  }
  const mean = (a: number[]): number => a.reduce((s, v) => s + v, 0) / a.length;
  const sd = (a: number[]): number => Math.sqrt(a.reduce((s, v) => s + (v - mean(a)) ** 2, 0) / (a.length - 1));
  const se = sd(same) / Math.sqrt(same.length);
  assert.ok(Math.abs(mean(same)) < 3 * se, `mean KID of same-distribution pairs ${mean(same)} (standard error ${se})`);
  assert.ok(same.some((v) => v < 0), 'an unbiased estimator of a zero MMD² must sometimes be negative');
  assert.ok(mean(diff) > 10 * se, `different distributions: ${mean(diff)} vs noise ${se}`);
});

test('KID: seeded, reports std over subsets, rejects bad options', () => {
  const rng = new Rng(8);
  const d = 4, n = 60;
  const x: FeatureSet = { data: new Float32Array(n * d).map(() => rng.normal()), n, d };
  const y: FeatureSet = { data: new Float32Array(n * d).map(() => rng.normal()), n, d };
  const a = kernelInceptionDistance(x, y, { seed: 3, subsets: 20 });
  const b = kernelInceptionDistance(x, y, { seed: 3, subsets: 20 });
  assert.deepEqual(a, b);
  assert.equal(a.subsetSize, 30);
  assert.ok(a.std > 0);
  assert.throws(() => kernelInceptionDistance(x, y, { subsetSize: n + 1 }), DiffuseError);
  assert.throws(() => kernelInceptionDistance(x, { data: y.data, n: 20, d: 12 }), DiffuseError);
  assert.throws(() => frechetDistance(x, { data: new Float32Array(n * 3), n, d: 3 }), DiffuseError);
  const bad: FeatureSet = { data: Float32Array.from(x.data), n, d };
  bad.data[5] = NaN;
  assert.throws(() => frechetDistance(bad, y), /row 1/);
});

test('classHistogram counts classes and measures mode coverage by entropy', () => {
  const even = classHistogram([0, 1, 2, 3, 0, 1, 2, 3], 4);
  assert.deepEqual(even.counts, [2, 2, 2, 2]);
  assert.ok(Math.abs(even.entropy - Math.log(4)) < 1e-12);
  assert.ok(Math.abs(even.normalizedEntropy - 1) < 1e-12);
  assert.equal(even.classesCovered, 4);
  const collapsed = classHistogram([2, 2, 2, 2, 2], 4);
  assert.equal(collapsed.entropy, 0);
  assert.equal(collapsed.classesCovered, 1);
  const partial = classHistogram([0, 0, 1, 1], 4);
  assert.ok(Math.abs(partial.entropy - Math.log(2)) < 1e-12);
  assert.throws(() => classHistogram([0, 4], 4), DiffuseError);
});
