/**
 * The ONNX interpreter of a described network (net/graph.ts): translates its
 * nodes into an ONNX graph (onnx/graph.ts) with the given weights as
 * initializers.
 *
 * Layout: the description is NHWC; inside the ONNX graph every image (rank-4
 * value) is NCHW, what ORT's convolutions want, with one Transpose after each
 * rank-4 input and before each rank-4 output, and conv kernels stored OIHW.
 * Graph inputs keep their names; float32 inputs are FLOAT, int32 inputs INT64
 * (ORT's index type); the batch axis is the symbolic dimension 'N'.
 *
 * Mapping of the primitives:
 *   conv2d       Conv with explicit pads (TF 'same': extra pad at the end)
 *   linear       Gemm (2-D) / MatMul + Add (token matrices)
 *   groupNorm    Reshape [N,G,-1] -> InstanceNormalization -> Reshape -> Mul γ, Add β
 *                (works at every opset; GroupNormalization-18 has per-group scale,
 *                per-channel only arrives in opset 21). Option: LayerNormalization
 *                over the last axis instead (opset >= 17), same result and speed.
 *   silu         x * Sigmoid(x)
 *   layerNorm    LayerNormalization over the last axis (opset >= 17), ReduceMean/Sub/Div before
 *   gelu         x/2 · (1 + Erf(x/√2)) (ORT fuses it into its Gelu kernel)
 *   exp, abs     Exp, Abs
 *   scale        Mul by a constant (+ Add of a constant shift)
 *   upsample2x   Resize nearest x2 (asymmetric, floor) = repeat each pixel 2x2
 *   toTokens     Reshape [N,C,HW] + Transpose; toImage the reverse
 *   attention    MatMul / Softmax (heads: Reshape + Transpose around them)
 *   embedding    Gather of the table rows
 *   meanTokens   MatMul with a constant 1/L row (no opset-dependent ReduceMean)
 *   sinusoidal   Mul by a frequency row, Sin, Cos, Concat
 *   dropout      identity
 */
import { DiffuseError } from '../errors.js';
import { BATCH, convPads, type Graph, type Node, sinusoidalFrequencies, type Value } from '../net/graph.js';
import { checkParams } from '../net/params.js';
import type { Weights } from '../tensor.js';
import { attr, OnnxGraph } from './graph.js';
import { OnnxDataType } from './proto.js';

export const DEFAULT_OPSET = 17;
export const MIN_OPSET = 13;
export const MAX_OPSET = 21;

export interface GraphExportOptions {
  /** Default-domain opset, 13..21 (default 17). */
  opset?: number;
  /** metadata_props, string to string. */
  metadata?: Record<string, string>;
  /**
   * How GroupNorm is expressed: 'instance' (default) = Reshape [N,G,-1] +
   * InstanceNormalization (any opset); 'layer' = Reshape + LayerNormalization
   * over the last axis (opset >= 17). Same results (< 1e-5); on ORT 1.30 CPU
   * they measured the same speed (the normalization is ~20% of a forward pass).
   */
  groupNorm?: 'layer' | 'instance';
  /** ONNX graph name (default: the description's name). */
  graphName?: string;
  docString?: string;
  /** Prefix of error messages (default 'ONNX export'). */
  what?: string;
}

/** HWIO [k,k,i,o] (tfjs) -> OIHW [o,i,k,k] (ONNX). */
export function hwioToOihw(data: Float32Array, shape: readonly number[]): Float32Array {
  const [kh, kw, ci, co] = shape as [number, number, number, number];
  const out = new Float32Array(data.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < ci; i++) {
        const src = ((y * kw + x) * ci + i) * co;
        for (let o = 0; o < co; o++) out[((o * ci + i) * kh + y) * kw + x] = data[src + o] as number;
      }
    }
  }
  return out;
}

/** OIHW [o,i,k,k] (ONNX, PyTorch) -> HWIO [k,k,i,o] (tfjs, this project's parameters). */
export function oihwToHwio(data: Float32Array, shape: readonly number[]): Float32Array {
  const [co, ci, kh, kw] = shape as [number, number, number, number];
  const out = new Float32Array(data.length);
  for (let o = 0; o < co; o++) {
    for (let i = 0; i < ci; i++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) out[((y * kw + x) * ci + i) * co + o] = data[((o * ci + i) * kh + y) * kw + x] as number;
      }
    }
  }
  return out;
}

/** Validates the export options; returns opset and norm choice. */
export function exportSettings(opts: GraphExportOptions): { opset: number; normOp: 'layer' | 'instance' } {
  const opset = opts.opset ?? DEFAULT_OPSET;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new DiffuseError(`ONNX opset must be an integer in ${MIN_OPSET}..${MAX_OPSET}, got ${String(opset)}`);
  }
  const normOp = opts.groupNorm ?? 'instance';
  if (normOp !== 'layer' && normOp !== 'instance') throw new DiffuseError(`groupNorm must be 'layer' or 'instance', got '${String(normOp)}'`);
  if (normOp === 'layer' && opset < 17) throw new DiffuseError(`groupNorm 'layer' needs opset >= 17 (LayerNormalization), got opset ${opset}`);
  return { opset, normOp };
}

/** ONNX dims of a logical shape: the batch axis named 'N'. */
function dims(shape: readonly number[]): Array<number | string> {
  return shape.map((d) => (d === BATCH ? 'N' : d));
}

/** The described network with the given weights as ONNX model bytes. */
export function exportGraphToOnnx(graph: Graph, params: Weights, opts: GraphExportOptions = {}): Uint8Array {
  const { opset, normOp } = exportSettings(opts);
  checkParams(graph.params, params, { what: opts.what ?? `ONNX export: ${graph.name}`, noExtra: true, finite: true });
  const g = new OnnxGraph(opts.graphName ?? graph.name);
  const names: (string | undefined)[] = new Array(graph.values.length);
  const paramOf = new Map<number, string>();
  const info = (id: number): Value => graph.values[id] as Value;
  const isImage = (id: number): boolean => info(id).shape.length === 4;
  const P = (name: string): { shape: number[]; data: Float32Array } => params[name] as { shape: number[]; data: Float32Array };

  /** The ONNX value of `id`: a parameter becomes an initializer (its own layout) on first use. */
  const val = (id: number): string => {
    const known = names[id];
    if (known !== undefined) return known;
    const p = paramOf.get(id);
    if (p === undefined) throw new Error(`ONNX export: value ${id} used before it is defined`);
    const v = P(p);
    const name = g.addInitializer(p, v.data, v.shape);
    names[id] = name;
    return name;
  };
  /**
   * `id` broadcast against an NCHW image: a rank-4 value already is; a lower-rank
   * parameter (e.g. [C] or [W,C]) is stored padded to rank 4 in NCHW order.
   */
  const againstImage = (id: number, hint: string): string => {
    const s = info(id).shape;
    if (s.length === 4) return val(id);
    const p = paramOf.get(id);
    if (p === undefined || s.includes(BATCH)) throw new Error(`ONNX export ${hint}: only parameters broadcast against images (got a [${s.join(',')}] value)`);
    const [a, b, c, d] = [...new Array<number>(4 - s.length).fill(1), ...s] as [number, number, number, number];
    const src = P(p).data;
    const out = new Float32Array(src.length);
    for (let i = 0; i < a; i++) for (let y = 0; y < b; y++) for (let x = 0; x < c; x++) for (let k = 0; k < d; k++) {
      out[((i * d + k) * b + y) * c + x] = src[((i * b + y) * c + x) * d + k] as number;
    }
    return g.addInitializer(p, out, [a, d, b, c]);
  };
  const operands = (a: number, b: number, hint: string): [string, string] =>
    isImage(a) === isImage(b) ? [val(a), val(b)] : isImage(a) ? [val(a), againstImage(b, hint)] : [againstImage(a, hint), val(b)];
  /** Axis of the logical last axis in the stored layout. */
  const lastAxis = (id: number): number => (isImage(id) ? 1 : info(id).shape.length - 1);
  const silu = (x: string, hint: string): string => g.node('Mul', [x, g.node('Sigmoid', [x], {}, `${hint}/sigmoid`)], {}, hint);
  const transposeLast2 = (x: string, hint: string): string => g.node('Transpose', [x], { perm: attr.ints([0, 2, 1]) }, hint);

  const emit = (node: Node): string | string[] => {
    switch (node.op) {
      case 'input': {
        const d = graph.inputs.find((i) => i.name === node.name);
        if (d === undefined) throw new Error(`ONNX export: undeclared input ${node.name}`);
        const name = g.addInput(d.name, d.dtype === 'float32' ? OnnxDataType.FLOAT : OnnxDataType.INT64, dims(d.shape));
        return d.shape.length === 4 ? g.node('Transpose', [name], { perm: attr.ints([0, 3, 1, 2]) }, `${name}_nchw`) : name;
      }
      case 'param':
        paramOf.set(node.out, node.name);
        return '';
      case 'conv2d': {
        const wName = paramOf.get(node.w);
        if (wName === undefined) throw new Error(`ONNX export ${node.hint}: conv kernels must be parameters`);
        const p = P(wName);
        const [k, , ci, co] = p.shape as [number, number, number, number];
        const w = g.addInitializer(wName, hwioToOihw(p.data, p.shape), [co, ci, k, k]);
        const [, h, wd] = info(node.x).shape as [number, number, number, number];
        const [pt, pb, pl, pr] = convPads(node.pad, h, wd, k, node.stride);
        return g.node('Conv', [val(node.x), w, ...(node.b !== undefined ? [val(node.b)] : [])], {
          kernel_shape: attr.ints([k, k]), strides: attr.ints([node.stride, node.stride]), pads: attr.ints([pt, pl, pb, pr]),
          dilations: attr.ints([1, 1]), group: attr.int(1),
        }, node.hint);
      }
      case 'linear': {
        if (info(node.x).shape.length === 2) return g.node('Gemm', [val(node.x), val(node.w), ...(node.b !== undefined ? [val(node.b)] : [])], {}, node.hint);
        const m = g.node('MatMul', [val(node.x), val(node.w)], {}, `${node.hint}/matmul`);
        return node.b === undefined ? m : g.node('Add', [m, val(node.b)], {}, node.hint);
      }
      case 'groupNorm': {
        const [, h, w, ch] = info(node.x).shape as [number, number, number, number];
        const G = node.groups;
        const r = g.node('Reshape', [val(node.x), g.constInt64([0, G, -1])], {}, `${node.hint}/groups`);
        const L = (ch / G) * h * w;
        const n = normOp === 'instance'
          ? g.node('InstanceNormalization', [r, g.constFloat(new Array<number>(G).fill(1)), g.constFloat(new Array<number>(G).fill(0))],
            { epsilon: attr.float(node.eps) }, `${node.hint}/normalize`)
          : g.node('LayerNormalization', [r, g.constFloat(new Array<number>(L).fill(1)), g.constFloat(new Array<number>(L).fill(0))],
            { axis: attr.int(-1), epsilon: attr.float(node.eps) }, `${node.hint}/normalize`);
        const back = g.node('Reshape', [n, g.constInt64([0, ch, h, w])], {}, `${node.hint}/ungroup`);
        const affine = (id: number): string => {
          const p = paramOf.get(id);
          if (p === undefined) throw new Error(`ONNX export ${node.hint}: group norm scale and shift must be parameters`);
          return g.addInitializer(p, P(p).data, [ch, 1, 1]);
        };
        const sc = g.node('Mul', [back, affine(node.gamma)], {}, `${node.hint}/scale`);
        const y = g.node('Add', [sc, affine(node.beta)], {}, node.hint);
        return node.silu ? silu(y, `${node.hint}/silu`) : y;
      }
      case 'silu': return silu(val(node.x), node.hint);
      case 'layerNorm': {
        if (opset >= 17) {
          return g.node('LayerNormalization', [val(node.x), val(node.gamma), val(node.beta)], { axis: attr.int(-1), epsilon: attr.float(node.eps) }, node.hint);
        }
        // opsets 13..16: ReduceMean takes its axes as an attribute there
        const mean = (x: string, h: string): string => g.node('ReduceMean', [x], { axes: attr.ints([-1]), keepdims: attr.int(1) }, h);
        const centred = g.node('Sub', [val(node.x), mean(val(node.x), `${node.hint}/mean`)], {}, `${node.hint}/centred`);
        const variance = mean(g.node('Mul', [centred, centred], {}, `${node.hint}/square`), `${node.hint}/variance`);
        const std = g.node('Sqrt', [g.node('Add', [variance, g.constFloat([node.eps], [])], {}, `${node.hint}/add_eps`)], {}, `${node.hint}/std`);
        const normed = g.node('Div', [centred, std], {}, `${node.hint}/normalize`);
        return g.node('Add', [g.node('Mul', [normed, val(node.gamma)], {}, `${node.hint}/scale`), val(node.beta)], {}, node.hint);
      }
      case 'gelu': {
        // x/2 · (1 + erf(x/√2)); ORT fuses the pattern into its Gelu kernel
        const x = val(node.x);
        const erf = g.node('Erf', [g.node('Mul', [x, g.constFloat([Math.SQRT1_2], [])], {}, `${node.hint}/scaled`)], {}, `${node.hint}/erf`);
        const half = g.node('Mul', [x, g.constFloat([0.5], [])], {}, `${node.hint}/half`);
        return g.node('Mul', [half, g.node('Add', [erf, g.constFloat([1], [])], {}, `${node.hint}/one_plus`)], {}, node.hint);
      }
      case 'add': return g.node('Add', operands(node.a, node.b, node.hint), {}, node.hint);
      case 'mul': return g.node('Mul', operands(node.a, node.b, node.hint), {}, node.hint);
      case 'scale': {
        const y = g.node('Mul', [val(node.x), g.constFloat([node.s], [])], {}, node.shift === 0 ? node.hint : `${node.hint}/mul`);
        return node.shift === 0 ? y : g.node('Add', [y, g.constFloat([node.shift], [])], {}, node.hint);
      }
      case 'exp': return g.node('Exp', [val(node.x)], {}, node.hint);
      case 'abs': return g.node('Abs', [val(node.x)], {}, node.hint);
      case 'concat': return g.node('Concat', node.xs.map(val), { axis: attr.int(lastAxis(node.out)) }, node.hint);
      case 'split':
        return g.nodeN('Split', [val(node.x), g.constInt64(node.sizes)], { axis: attr.int(lastAxis(node.x)) }, { outputs: node.sizes.length, hint: node.hint });
      case 'upsample2x':
        return g.node('Resize', [val(node.x), '', g.constFloat([1, 1, 2, 2])], {
          mode: attr.string('nearest'), coordinate_transformation_mode: attr.string('asymmetric'), nearest_mode: attr.string('floor'),
        }, node.hint);
      case 'toTokens': {
        const [, h, w, c] = info(node.x).shape as [number, number, number, number];
        return transposeLast2(g.node('Reshape', [val(node.x), g.constInt64([0, c, h * w])], {}, `${node.hint}/flatten`), node.hint);
      }
      case 'toImage': {
        const c = info(node.x).shape[2] as number;
        return g.node('Reshape', [transposeLast2(val(node.x), `${node.hint}/channels_first`), g.constInt64([0, c, node.h, node.w])], {}, node.hint);
      }
      case 'toPixel': return g.node('Reshape', [val(node.x), g.constInt64([0, info(node.x).shape[1] as number, 1, 1])], {}, node.hint);
      case 'attention': return attend(g, val(node.q), val(node.k), val(node.v), info(node.q), info(node.v), node.heads, node.hint);
      case 'embedding': return g.node('Gather', [val(node.table), val(node.ids)], { axis: attr.int(0) }, node.hint);
      case 'meanTokens': {
        const [, L, d] = info(node.x).shape as [number, number, number];
        const m = g.node('MatMul', [g.constFloat(new Array<number>(L).fill(1 / L), [1, L]), val(node.x)], {}, `${node.hint}/matmul`);
        return g.node('Reshape', [m, g.constInt64([-1, d])], {}, node.hint);
      }
      case 'sinusoidal': {
        const f = sinusoidalFrequencies(node.opts);
        const col = g.node('Reshape', [val(node.t), g.constInt64([-1, 1])], {}, `${node.hint}/t_column`);
        const args = g.node('Mul', [col, g.addInitializer(`${node.hint}/freqs`, f, [1, f.length])], {}, `${node.hint}/args`);
        const sin = g.node('Sin', [args], {}, `${node.hint}/sin`), cos = g.node('Cos', [args], {}, `${node.hint}/cos`);
        return g.node('Concat', node.opts.flipSinToCos ? [cos, sin] : [sin, cos], { axis: attr.int(1) }, node.hint);
      }
      case 'dropout': return val(node.x);
      case 'squaredDifference': {
        const d = g.node('Sub', operands(node.a, node.b, node.hint), {}, `${node.hint}/sub`);
        return g.node('Mul', [d, d], {}, node.hint);
      }
      case 'sum': return g.node('ReduceSum', [val(node.x)], { keepdims: attr.int(0) }, node.hint);
      default: {
        const never: never = node;
        throw new Error(`ONNX export: unknown node ${JSON.stringify(never)}`);
      }
    }
  };

  for (const o of graph.outputs) g.reserve(o.name);
  for (const node of graph.nodes) {
    const r = emit(node);
    if (node.op === 'split') node.outs.forEach((id, i) => { names[id] = (r as string[])[i]; });
    else if (node.op !== 'param') names[node.out] = r as string;
  }
  for (const o of graph.outputs) {
    const v = o.value;
    const stored = isImage(v.id) ? g.node('Transpose', [val(v.id)], { perm: attr.ints([0, 2, 3, 1]) }, `${o.name}_nhwc`) : val(v.id);
    g.addOutput(stored, v.dtype === 'float32' ? OnnxDataType.FLOAT : OnnxDataType.INT64, dims(v.shape), o.name);
  }
  return g.toBytes({ opset, ...(opts.docString !== undefined ? { docString: opts.docString } : {}), metadata: opts.metadata ?? {} });
}

/** softmax(q kᵀ / sqrt(d)) v over [N, L, D] token matrices, per head. */
function attend(g: OnnxGraph, q: string, k: string, v: string, qi: Value, vi: Value, heads: number, hint: string): string {
  const d = qi.shape[2] as number;
  const dh = d / heads;
  if (heads === 1) {
    const kt = g.node('Transpose', [k], { perm: attr.ints([0, 2, 1]) }, `${hint}/kT`);
    const scores = g.node('Mul', [g.node('MatMul', [q, kt], {}, `${hint}/qk`), g.constFloat([1 / Math.sqrt(dh)], [])], {}, `${hint}/scores`);
    return g.node('MatMul', [g.node('Softmax', [scores], { axis: attr.int(-1) }, `${hint}/softmax`), v], {}, `${hint}/attend`);
  }
  // [N,L,D] -> [N,heads,L,D/heads] (k transposed to [N,heads,D/heads,L]).
  const heads4 = (x: string, w: number, perm: number[], name: string): string =>
    g.node('Transpose', [g.node('Reshape', [x, g.constInt64([0, 0, heads, w / heads])], {}, `${hint}/${name}_heads`)], { perm: attr.ints(perm) }, `${hint}/${name}_t`);
  const dv = vi.shape[2] as number;
  const scores = g.node('Mul', [g.node('MatMul', [heads4(q, d, [0, 2, 1, 3], 'q'), heads4(k, d, [0, 2, 3, 1], 'k')], {}, `${hint}/qk`),
    g.constFloat([1 / Math.sqrt(dh)], [])], {}, `${hint}/scores`);
  const o = g.node('MatMul', [g.node('Softmax', [scores], { axis: attr.int(-1) }, `${hint}/softmax`), heads4(v, dv, [0, 2, 1, 3], 'v')], {}, `${hint}/attend_heads`);
  return g.node('Reshape', [g.node('Transpose', [o], { perm: attr.ints([0, 2, 1, 3]) }, `${hint}/merge`), g.constInt64([0, 0, dv])], {}, `${hint}/attend`);
}

