/**
 * Fused ops for training speed on the synchronous backends (wasm, cpu).
 *
 * - `groupNormAct(x, gamma, beta, groups, silu)`: GroupNorm (eps 1e-5, biased
 *   variance, as tf.moments) followed optionally by SiLU, as ONE kernel forward
 *   and ONE kernel backward (analytic gradient) via tf.customGrad. The kernels are
 *   plain JS loops over the backend's Float32Arrays (the wasm heap, or the cpu
 *   backend's arrays) with float64 accumulators. The composite version is ~10
 *   elementwise/reduction kernels forward and ~25 backward, each a full pass over
 *   memory plus saved intermediates.
 *   Saved for backward: x and the per-(image, group) mean and 1/std only; the
 *   normalised value and the SiLU input are recomputed.
 *
 * Switch: `DIFFUSE_FUSED=0` in the environment (read when a worker or process
 * starts) or `setFusedOps(false)` turns every fusion off (the U-Net then runs the
 * composite ops it ran before). Used by bench/train-step.ts for before/after.
 */
import * as tf from '@tensorflow/tfjs';

type TensorInfo = tf.TensorInfo;
type KernelArgs = Parameters<tf.KernelFunc>[0];

export const GROUP_NORM_KERNEL = 'DiffuseGroupNormAct';
export const GROUP_NORM_GRAD_KERNEL = 'DiffuseGroupNormActGrad';
export const GROUP_NORM_EPS = 1e-5;

let override: boolean | undefined;

/** Whether the fused ops (and our other opt-in fast paths) are on. */
export function fusedOpsEnabled(): boolean {
  if (override !== undefined) return override;
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.['DIFFUSE_FUSED'] !== '0';
}

/** Force the fused ops on or off in this thread; `undefined` goes back to the environment. */
export function setFusedOps(on: boolean | undefined): void {
  override = on;
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

/** Per-channel mean and 1/std of image n from stats [N,G,2]. */
function channelStats(stats: Float32Array, n: number, d: GNDims, meanC: Float64Array, rstdC: Float64Array): void {
  const cg = d.C / d.G;
  for (let c = 0; c < d.C; c++) {
    const g = (c / cg) | 0;
    meanC[c] = stats[(n * d.G + g) * 2] as number;
    rstdC[c] = stats[(n * d.G + g) * 2 + 1] as number;
  }
}

/** y = act(GN(x) * gamma + beta); stats[n,g] = (mean, 1/sqrt(var + eps)). */
export function groupNormForward(x: Float32Array, gamma: Float32Array, beta: Float32Array, y: Float32Array, stats: Float32Array,
  d: GNDims, silu: boolean, eps: number): void {
  const { N, HW, C, G } = d;
  const cg = C / G;
  const M = HW * cg;
  const acc = new Float64Array(C);
  const meanC = new Float64Array(C);
  const scale = new Float64Array(C);
  const shift = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const base = n * HW * C;
    const end = base + HW * C;
    acc.fill(0);
    for (let o = base; o < end; o += C) {
      for (let c = 0; c < C; c++) acc[c] = (acc[c] as number) + (x[o + c] as number);
    }
    for (let g = 0; g < G; g++) {
      let s = 0;
      for (let j = 0; j < cg; j++) s += acc[g * cg + j] as number;
      const m = s / M;
      for (let j = 0; j < cg; j++) meanC[g * cg + j] = m;
      stats[(n * G + g) * 2] = m;
    }
    acc.fill(0);
    for (let o = base; o < end; o += C) {
      for (let c = 0; c < C; c++) {
        const v = (x[o + c] as number) - (meanC[c] as number);
        acc[c] = (acc[c] as number) + v * v;
      }
    }
    for (let g = 0; g < G; g++) {
      let s = 0;
      for (let j = 0; j < cg; j++) s += acc[g * cg + j] as number;
      const r = 1 / Math.sqrt(s / M + eps);
      stats[(n * G + g) * 2 + 1] = r;
      for (let j = 0; j < cg; j++) {
        const c = g * cg + j;
        const sc = r * (gamma[c] as number);
        scale[c] = sc;
        shift[c] = (beta[c] as number) - (meanC[c] as number) * sc;
      }
    }
    if (silu) {
      for (let o = base; o < end; o += C) {
        for (let c = 0; c < C; c++) {
          const v = (x[o + c] as number) * (scale[c] as number) + (shift[c] as number);
          y[o + c] = v / (1 + Math.exp(-v));
        }
      }
    } else {
      for (let o = base; o < end; o += C) {
        for (let c = 0; c < C; c++) y[o + c] = (x[o + c] as number) * (scale[c] as number) + (shift[c] as number);
      }
    }
  }
}

/** Gradients of groupNormForward: dx, dgamma, dbeta from dz (the gradient of its output). */
export function groupNormBackward(dz: Float32Array, x: Float32Array, gamma: Float32Array, beta: Float32Array, stats: Float32Array,
  dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array, d: GNDims, silu: boolean): void {
  const { N, HW, C, G } = d;
  const cg = C / G;
  const M = HW * cg;
  const meanC = new Float64Array(C), rstdC = new Float64Array(C);
  const dg = new Float64Array(C), db = new Float64Array(C);
  const s1 = new Float64Array(C), s2 = new Float64Array(C);
  const a = new Float64Array(C), b = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const base = n * HW * C;
    const end = base + HW * C;
    channelStats(stats, n, d, meanC, rstdC);
    s1.fill(0); s2.fill(0);
    // Pass 1: gradient at the normalised value (into dx), and its group sums.
    for (let o = base; o < end; o += C) {
      for (let c = 0; c < C; c++) {
        const i = o + c;
        const xn = ((x[i] as number) - (meanC[c] as number)) * (rstdC[c] as number);
        let g = dz[i] as number;
        if (silu) {
          const v = xn * (gamma[c] as number) + (beta[c] as number);
          const sg = 1 / (1 + Math.exp(-v));
          g *= sg * (1 + v * (1 - sg));
        }
        dg[c] = (dg[c] as number) + g * xn;
        db[c] = (db[c] as number) + g;
        const dxn = g * (gamma[c] as number);
        s1[c] = (s1[c] as number) + dxn;
        s2[c] = (s2[c] as number) + dxn * xn;
        dx[i] = dxn;
      }
    }
    for (let gi = 0; gi < G; gi++) {
      let t1 = 0, t2 = 0;
      for (let j = 0; j < cg; j++) { t1 += s1[gi * cg + j] as number; t2 += s2[gi * cg + j] as number; }
      for (let j = 0; j < cg; j++) { a[gi * cg + j] = t1 / M; b[gi * cg + j] = t2 / M; }
    }
    // Pass 2: dx = rstd * (dxn - mean(dxn) - xn * mean(dxn * xn)).
    for (let o = base; o < end; o += C) {
      for (let c = 0; c < C; c++) {
        const i = o + c;
        const r = rstdC[c] as number;
        const xn = ((x[i] as number) - (meanC[c] as number)) * r;
        dx[i] = r * ((dx[i] as number) - (a[c] as number) - xn * (b[c] as number));
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
  const attrs = args.attrs ?? {};
  const d = gnDims(x, attrs['groups'] as number);
  const silu = attrs['silu'] === true;
  return compute(args.backend, [dy, x, gamma, beta, stats], [x.shape, [d.C], [d.C]], ([dyv, xv, gv, bv, sv], [dxv, dgv, dbv]) => {
    groupNormBackward(dyv as Float32Array, xv as Float32Array, gv as Float32Array, bv as Float32Array, sv as Float32Array,
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
  if (!fusedOpsEnabled()) return false;
  registerFusedKernels();
  return tf.getKernel(GROUP_NORM_KERNEL, tf.getBackend()) !== undefined;
}

const fusedFns = new Map<string, (x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D) => tf.Tensor4D>();

function fusedFn(groups: number, silu: boolean): (x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D) => tf.Tensor4D {
  const key = `${groups}/${silu}`;
  let fn = fusedFns.get(key);
  if (fn === undefined) {
    const attrs = { groups, silu, eps: GROUP_NORM_EPS };
    const cg = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [x, gamma, beta, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
      const [y, stats] = tf.engine().runKernel(GROUP_NORM_KERNEL, { x, gamma, beta }, attrs) as tf.Tensor[];
      if (y === undefined || stats === undefined) throw new Error('group norm kernel returned too few outputs');
      save([x, gamma, beta, stats]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
          const [sx, sg, sb, ss] = saved;
          if (sx === undefined || sg === undefined || sb === undefined || ss === undefined) throw new Error('group norm: saved tensors missing');
          return tf.engine().runKernel(GROUP_NORM_GRAD_KERNEL, { dy, x: sx, gamma: sg, beta: sb, stats: ss }, attrs) as tf.Tensor[];
        },
      };
    });
    fn = cg as unknown as (x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D) => tf.Tensor4D;
    fusedFns.set(key, fn);
  }
  return fn;
}

/**
 * act(GroupNorm(x) * gamma + beta), act = SiLU or identity; x NHWC.
 * Fused (one kernel each way) on wasm and cpu when fusion is on; otherwise the
 * composite ops (any backend). Same forward semantics either way.
 */
export function groupNormAct(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, groups: number, silu: boolean): tf.Tensor4D {
  if (fusedGroupNormAvailable()) return fusedFn(groups, silu)(x, gamma, beta);
  return groupNormComposite(x, gamma, beta, groups, silu);
}

/** The composite reference (tfjs ops; what the U-Net ran before the fused kernel). Call inside a tidy. */
export function groupNormComposite(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, groups: number, silu: boolean): tf.Tensor4D {
  const [n, h, w, ch] = x.shape;
  const xr = tf.reshape(x, [n, h * w, groups, ch / groups]);
  const { mean, variance } = tf.moments(xr, [1, 3], true);
  const xn = tf.mul(tf.sub(xr, mean), tf.rsqrt(tf.add(variance, GROUP_NORM_EPS)));
  const y = tf.add(tf.mul(tf.reshape(xn, [n, h, w, ch]), gamma), beta) as tf.Tensor4D;
  return silu ? tf.mul(y, tf.sigmoid(y)) as tf.Tensor4D : y;
}
