/**
 * Fused ops for training speed on the synchronous backends (wasm, cpu).
 *
 * - `groupNormAct(x, gamma, beta, groups, silu, eps?)`: GroupNorm (eps default 1e-5, biased
 *   variance, as tf.moments) followed optionally by SiLU, as ONE kernel forward
 *   and ONE kernel backward (analytic gradient) via tf.customGrad. The kernels are
 *   plain JS loops over the backend's Float32Arrays (the wasm heap, or the cpu
 *   backend's arrays) with float64 accumulators. The composite version is ~10
 *   elementwise/reduction kernels forward and ~25 backward, each a full pass over
 *   memory plus saved intermediates.
 *   Saved for backward: x, the per-(image, group) mean and 1/std, and with SiLU
 *   the output y (alive anyway as the next conv's input): the normalised value
 *   and the SiLU input v are recomputed, and sigmoid(v) = y / v.
 *
 * Switch: `DIFFUSE_FUSED=0` in the environment (worker threads inherit it) or
 * `setFusedOps(false)` turns every fast path off, so the U-Net runs exactly the
 * ops it ran before; `DIFFUSE_FUSED=groupnorm,convbias` picks some. Unset: the
 * defaults of the current backend (native adds 'convbias'). Used by
 * bench/train-step.ts for before/after in one run.
 */
import * as tf from './tf.js';

type TensorInfo = tf.TensorInfo;
type KernelArgs = Parameters<tf.KernelFunc>[0];

export const GROUP_NORM_KERNEL = 'DiffuseGroupNormAct';
export const GROUP_NORM_GRAD_KERNEL = 'DiffuseGroupNormActGrad';
export const GROUP_NORM_EPS = 1e-5;

/** The fast paths behind the switch: fused GroupNorm(+SiLU), bias inside the conv, dW as one im2col matmul. */
export type FusedFeature = 'groupnorm' | 'convbias' | 'dwgemm';
export const FUSED_FEATURES: readonly FusedFeature[] = ['groupnorm', 'convbias', 'dwgemm'];
/**
 * What is on when DIFFUSE_FUSED is unset. 'convbias' measured neutral (0.97x to
 * 1.05x, within noise) and changes which conv kernel every backend runs, so it
 * is opt-in.
 */
export const DEFAULT_FUSED_FEATURES: readonly FusedFeature[] = ['groupnorm', 'dwgemm'];
/**
 * On the native backend (native.ts) 'convbias' is on by default too: oneDNN adds
 * the bias inside the convolution, which saves one full pass (an Add) per conv.
 */
export const NATIVE_DEFAULT_FUSED_FEATURES: readonly FusedFeature[] = [...DEFAULT_FUSED_FEATURES, 'convbias'];

let override: ReadonlySet<FusedFeature> | undefined;
let fromEnv: { raw: string | undefined; native: boolean; set: ReadonlySet<FusedFeature> } | undefined;

/**
 * Parse a DIFFUSE_FUSED value: unset or '' = the defaults, '0'/'none' = off,
 * '1'/'all' = everything, else a comma list of feature names.
 */
export function parseFusedSpec(raw: string | undefined, defaults: readonly FusedFeature[] = DEFAULT_FUSED_FEATURES): ReadonlySet<FusedFeature> {
  const v = (raw ?? '').trim().toLowerCase();
  if (v === '') return new Set(defaults);
  if (v === '0' || v === 'none' || v === 'off') return new Set();
  if (v === '1' || v === 'all' || v === 'on') return new Set(FUSED_FEATURES);
  const out = new Set<FusedFeature>();
  for (const part of v.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    if (!(FUSED_FEATURES as readonly string[]).includes(part)) {
      throw new Error(`DIFFUSE_FUSED: unknown feature '${part}' (known: ${FUSED_FEATURES.join(', ')}, or 0/1)`);
    }
    out.add(part as FusedFeature);
  }
  return out;
}

function activeFeatures(): ReadonlySet<FusedFeature> {
  if (override !== undefined) return override;
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const raw = env?.['DIFFUSE_FUSED'];
  const native = tf.getBackend() === 'native';
  if (fromEnv === undefined || fromEnv.raw !== raw || fromEnv.native !== native) {
    fromEnv = { raw, native, set: parseFusedSpec(raw, native ? NATIVE_DEFAULT_FUSED_FEATURES : DEFAULT_FUSED_FEATURES) };
  }
  return fromEnv.set;
}

/** Whether a fast path (or, with no argument, any of them) is on. */
export function fusedOpsEnabled(feature?: FusedFeature): boolean {
  const a = activeFeatures();
  return feature === undefined ? a.size > 0 : a.has(feature);
}

/**
 * Force the fast paths in this thread: true = all, false = none, a list = those;
 * `undefined` goes back to DIFFUSE_FUSED. Worker threads read the environment.
 */
export function setFusedOps(on: boolean | readonly FusedFeature[] | undefined): void {
  override = on === undefined ? undefined : new Set(on === true ? FUSED_FEATURES : on === false ? [] : on);
}

interface WasmIO {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): tf.TypedArray;
}
interface CpuIO {
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.TypedArray): TensorInfo;
  readSync(dataId: tf.DataId): tf.TypedArray | Uint8Array[];
}

function asF32(a: unknown, what: string): Float32Array {
  if (!(a instanceof Float32Array)) throw new Error(`${what}: expected float32 data`);
  return a;
}

/**
 * Allocate outputs, then hand every input and output to `body` as a
 * Float32Array. On wasm the views are taken after all allocations (an
 * allocation may grow the heap and detach earlier views).
 */
function compute(backend: object, inputs: TensorInfo[], outShapes: number[][],
  body: (ins: Float32Array[], outs: Float32Array[]) => void): TensorInfo[] {
  if ('typedArrayFromHeap' in backend) {
    const b = backend as unknown as WasmIO;
    const infos = outShapes.map((s) => b.makeOutput(s, 'float32'));
    const ins = inputs.map((t, i) => asF32(b.typedArrayFromHeap(t), `input ${i}`));
    const outs = infos.map((t, i) => asF32(b.typedArrayFromHeap(t), `output ${i}`));
    body(ins, outs);
    return infos;
  }
  const b = backend as unknown as CpuIO;
  const ins = inputs.map((t, i) => asF32(b.readSync(t.dataId), `input ${i}`));
  const outs = outShapes.map((s) => new Float32Array(s.reduce((p, q) => p * q, 1)));
  body(ins, outs);
  return outs.map((o, i) => b.makeTensorInfo(outShapes[i] as number[], 'float32', o));
}

interface GNDims { N: number; HW: number; C: number; G: number }

function gnDims(x: TensorInfo, groups: number): GNDims {
  const [N, H, W, C] = x.shape;
  if (x.shape.length !== 4 || N === undefined || H === undefined || W === undefined || C === undefined) {
    throw new Error(`group norm: expected a rank-4 NHWC input, got [${x.shape.join(',')}]`);
  }
  if (!Number.isInteger(groups) || groups < 1 || C % groups !== 0) throw new Error(`group norm: ${C} channels not divisible into ${groups} groups`);
  if (x.dtype !== 'float32') throw new Error('group norm: float32 only');
  return { N, HW: H * W, C, G: groups };
}

const POW2 = new Float64Array(256);
for (let k = 0; k < 256; k++) POW2[k] = 2 ** (k - 127);
const LOG2E = 1.4426950408889634;
const LN2_HI = 0.6931471803691238; // ln 2 split in two (Cody-Waite)
const LN2_LO = 1.9082149292705877e-10;

/**
 * exp(v) for v in [-87, 87] (clamped), relative error < 1e-8: 2^k * e^r with
 * |r| <= ln2/2 and a degree-7 Taylor polynomial. About 3x faster than Math.exp.
 */
export function fastExp(v: number): number {
  const t = v < -87 ? -87 : v > 87 ? 87 : v;
  const k = Math.floor(t * LOG2E + 0.5);
  const r = t - k * LN2_HI - k * LN2_LO;
  const p = 1 + r * (1 + r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r * (1 / 5040)))))));
  return p * (POW2[(k + 127) | 0] as number);
}

// The loops below run channel by channel over an image (stride C): per-channel
// constants and accumulators then live in locals, which V8 runs ~1.3x faster
// than channel-innermost loops over per-channel arrays.

/** y = act(GN(x) * gamma + beta); stats[n,g] = (mean, 1/sqrt(var + eps)). */
export function groupNormForward(x: Float32Array, gamma: Float32Array, beta: Float32Array, y: Float32Array, stats: Float32Array,
  d: GNDims, silu: boolean, eps: number): void {
  const { N, HW, C, G } = d;
  const cg = C / G;
  const M = HW * cg;
  for (let n = 0; n < N; n++) {
    const base = n * HW * C;
    const end = base + HW * C;
    for (let g = 0; g < G; g++) {
      // One pass: sum and sum of squares in float64 (E[x^2] - E[x]^2 then loses
      // nothing that matters for float32 data).
      let s = 0, s2 = 0;
      for (let c = g * cg; c < (g + 1) * cg; c++) {
        for (let i = base + c; i < end; i += C) {
          const v = x[i] as number;
          s += v;
          s2 += v * v;
        }
      }
      // Rounded to float32 here, so the backward pass (which reads them back from
      // stats) recomputes exactly the same SiLU input v.
      const m = Math.fround(s / M);
      const r = Math.fround(1 / Math.sqrt(Math.max(0, s2 / M - (s / M) * (s / M)) + eps));
      stats[(n * G + g) * 2] = m;
      stats[(n * G + g) * 2 + 1] = r;
      for (let c = g * cg; c < (g + 1) * cg; c++) {
        const sc = r * (gamma[c] as number);
        const sh = (beta[c] as number) - m * sc;
        if (silu) {
          for (let i = base + c; i < end; i += C) {
            const v = (x[i] as number) * sc + sh;
            y[i] = v / (1 + fastExp(-v));
          }
        } else {
          for (let i = base + c; i < end; i += C) y[i] = (x[i] as number) * sc + sh;
        }
      }
    }
  }
}

/**
 * Gradients of groupNormForward: dx, dgamma, dbeta from dz (the gradient of its
 * output). With SiLU, `y` is the forward output: sigmoid(v) = y / v, with v
 * recomputed bit-identically from x and the float32 stats, so no exp is needed.
 */
export function groupNormBackward(dz: Float32Array, x: Float32Array, gamma: Float32Array, beta: Float32Array, stats: Float32Array,
  y: Float32Array | undefined, dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array, d: GNDims, silu: boolean): void {
  if (silu && y === undefined) throw new Error('group norm backward: SiLU needs the forward output');
  const { N, HW, C, G } = d;
  const cg = C / G;
  const M = HW * cg;
  const dg = new Float64Array(C), db = new Float64Array(C); // totals over images
  const pg = new Float64Array(C), pb = new Float64Array(C); // this image: sum g*xn, sum g
  for (let n = 0; n < N; n++) {
    const base = n * HW * C;
    const end = base + HW * C;
    for (let gi = 0; gi < G; gi++) {
      const m = stats[(n * G + gi) * 2] as number;
      const r = stats[(n * G + gi) * 2 + 1] as number;
      // Pass 1: g = dL/d(gamma*xn + beta) (through SiLU), its per-channel sums, and g*gamma into dx.
      let t1 = 0, t2 = 0;
      for (let c = gi * cg; c < (gi + 1) * cg; c++) {
        const ga = gamma[c] as number, be = beta[c] as number;
        const sc = r * ga, sh = be - m * sc; // as in the forward pass
        let sgx = 0, sg = 0;
        if (silu && y !== undefined) {
          for (let i = base + c; i < end; i += C) {
            const xi = x[i] as number;
            const xn = (xi - m) * r;
            const v = xi * sc + sh;
            // y = fround(v * sigmoid(v)); |v| tiny: sigmoid(v) = 0.5 to 1e-10.
            const sig = v > 1e-10 || v < -1e-10 ? (y[i] as number) / v : 0.5;
            const g = (dz[i] as number) * sig * (1 + v * (1 - sig));
            sgx += g * xn;
            sg += g;
            dx[i] = g * ga;
          }
        } else {
          for (let i = base + c; i < end; i += C) {
            const g = dz[i] as number;
            sgx += g * ((x[i] as number) - m) * r;
            sg += g;
            dx[i] = g * ga;
          }
        }
        pg[c] = sgx;
        pb[c] = sg;
        // sum(dxn) = gamma*sum(g) and sum(dxn*xn) = gamma*sum(g*xn), dxn = g*gamma.
        t1 += ga * sg;
        t2 += ga * sgx;
      }
      // Pass 2: dx = r * (dxn - mean(dxn) - xn * mean(dxn * xn)) = r*dxn + x*k1 + k0.
      const a = t1 / M, b = t2 / M;
      const k1 = -r * r * b;
      const k0 = -r * a + r * r * b * m;
      for (let c = gi * cg; c < (gi + 1) * cg; c++) {
        for (let i = base + c; i < end; i += C) dx[i] = r * (dx[i] as number) + (x[i] as number) * k1 + k0;
        dg[c] = (dg[c] as number) + (pg[c] as number);
        db[c] = (db[c] as number) + (pb[c] as number);
      }
    }
  }
  for (let c = 0; c < C; c++) { dgamma[c] = dg[c] as number; dbeta[c] = db[c] as number; }
}

function input(args: KernelArgs, name: string): TensorInfo {
  const t = args.inputs[name];
  if (t === undefined) throw new Error(`missing input ${name}`);
  return t;
}

function groupNormKernel(args: KernelArgs): TensorInfo[] {
  const x = input(args, 'x'), gamma = input(args, 'gamma'), beta = input(args, 'beta');
  const attrs = args.attrs ?? {};
  const d = gnDims(x, attrs['groups'] as number);
  const silu = attrs['silu'] === true;
  const eps = (attrs['eps'] as number | undefined) ?? GROUP_NORM_EPS;
  return compute(args.backend, [x, gamma, beta], [x.shape, [d.N, d.G, 2]], ([xv, gv, bv], [yv, sv]) => {
    groupNormForward(xv as Float32Array, gv as Float32Array, bv as Float32Array, yv as Float32Array, sv as Float32Array, d, silu, eps);
  });
}

function groupNormGradKernel(args: KernelArgs): TensorInfo[] {
  const dy = input(args, 'dy'), x = input(args, 'x'), gamma = input(args, 'gamma'), beta = input(args, 'beta'), stats = input(args, 'stats');
  const yIn = args.inputs['y'];
  const attrs = args.attrs ?? {};
  const d = gnDims(x, attrs['groups'] as number);
  const silu = attrs['silu'] === true;
  const ins = yIn !== undefined ? [dy, x, gamma, beta, stats, yIn] : [dy, x, gamma, beta, stats];
  return compute(args.backend, ins, [x.shape, [d.C], [d.C]], ([dyv, xv, gv, bv, sv, yv], [dxv, dgv, dbv]) => {
    groupNormBackward(dyv as Float32Array, xv as Float32Array, gv as Float32Array, bv as Float32Array, sv as Float32Array, yv,
      dxv as Float32Array, dgv as Float32Array, dbv as Float32Array, d, silu);
  });
}

/** Backends our fused kernels are registered for. */
export const FUSED_BACKENDS: readonly string[] = ['wasm', 'cpu'];

let registered = false;
/** Register the fused kernels for wasm and cpu (idempotent; no backend needs to be initialised). */
export function registerFusedKernels(): void {
  if (registered) return;
  for (const backendName of FUSED_BACKENDS) {
    for (const [kernelName, kernelFunc] of [[GROUP_NORM_KERNEL, groupNormKernel], [GROUP_NORM_GRAD_KERNEL, groupNormGradKernel]] as const) {
      if (tf.getKernel(kernelName, backendName) === undefined) {
        tf.registerKernel({ kernelName, backendName, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
      }
    }
  }
  registered = true;
}

/** True when groupNormAct runs fused on the current backend (fusion on, kernel registered). */
export function fusedGroupNormAvailable(): boolean {
  if (!fusedOpsEnabled('groupnorm')) return false;
  registerFusedKernels();
  return tf.getKernel(GROUP_NORM_KERNEL, tf.getBackend()) !== undefined;
}

const fusedFns = new Map<string, (x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D) => tf.Tensor4D>();

function fusedFn(groups: number, silu: boolean, eps: number): (x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D) => tf.Tensor4D {
  const key = `${groups}/${silu}/${eps}`;
  let fn = fusedFns.get(key);
  if (fn === undefined) {
    const attrs = { groups, silu, eps };
    const cg = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [x, gamma, beta, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
      const [y, stats] = tf.engine().runKernel(GROUP_NORM_KERNEL, { x, gamma, beta }, attrs) as tf.Tensor[];
      if (y === undefined || stats === undefined) throw new Error('group norm kernel returned too few outputs');
      // With SiLU the output is saved too (it is alive anyway as the next conv's input).
      save(silu ? [x, gamma, beta, stats, y] : [x, gamma, beta, stats]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
          const [sx, sg, sb, ss, sy] = saved;
          if (sx === undefined || sg === undefined || sb === undefined || ss === undefined || (silu && sy === undefined)) {
            throw new Error('group norm: saved tensors missing');
          }
          const ins: tf.NamedTensorMap = { dy, x: sx, gamma: sg, beta: sb, stats: ss };
          if (sy !== undefined) ins['y'] = sy;
          return tf.engine().runKernel(GROUP_NORM_GRAD_KERNEL, ins, attrs) as tf.Tensor[];
        },
      };
    });
    fn = cg as unknown as (x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D) => tf.Tensor4D;
    fusedFns.set(key, fn);
  }
  return fn;
}

/**
 * act(GroupNorm(x) * gamma + beta), act = SiLU or identity; x NHWC; eps added
 * to the variance (default 1e-5).
 * Fused (one kernel each way) on wasm and cpu when fusion is on; otherwise the
 * composite ops (any backend). Same forward semantics either way.
 */
export function groupNormAct(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, groups: number, silu: boolean, eps = GROUP_NORM_EPS): tf.Tensor4D {
  if (fusedGroupNormAvailable()) return fusedFn(groups, silu, eps)(x, gamma, beta);
  return groupNormComposite(x, gamma, beta, groups, silu, eps);
}

/** The composite reference (tfjs ops; what the U-Net ran before the fused kernel). Call inside a tidy. */
export function groupNormComposite(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, groups: number, silu: boolean, eps = GROUP_NORM_EPS): tf.Tensor4D {
  const [n, h, w, ch] = x.shape;
  const xr = tf.reshape(x, [n, h * w, groups, ch / groups]);
  const { mean, variance } = tf.moments(xr, [1, 3], true);
  const xn = tf.mul(tf.sub(xr, mean), tf.rsqrt(tf.add(variance, eps)));
  const y = tf.add(tf.mul(tf.reshape(xn, [n, h, w, ch]), gamma), beta) as tf.Tensor4D;
  return silu ? tf.mul(y, tf.sigmoid(y)) as tf.Tensor4D : y;
}
