/**
 * The tfjs interpreter of a described network (net/graph.ts): runs its nodes
 * on real tensors (NHWC), with the project's fused GroupNorm(+SiLU) kernel
 * and conv-bias fast path (engine/fused.ts) and seeded dropout in training.
 * Everything it uses has a gradient on the wasm backend with our kernels;
 * nearest upsampling is done by concat+reshape so it needs no
 * ResizeNearestNeighborGrad, and embeddings are one-hot matmuls.
 */
import * as tf from '../engine/tf.js';
import { DiffuseError } from '../errors.js';
import { fusedOpsEnabled, groupNormAct } from '../engine/fused.js';
import { type BatchArrays, convPads, type Graph, type Node, rowSize, sinusoidalFrequencies, sliceRows, type Value } from './graph.js';
import { checkParams, type ParamSource, sourceValues } from './params.js';

export interface RunOptions {
  /** Applies dropout. */
  training?: boolean;
  /** Seed of the dropout masks: the k-th dropout node uses dropoutSeed * 1000 + k. Default 0. */
  dropoutSeed?: number;
  /** Check every produced tensor against the description's shape (tests). */
  checkShapes?: boolean;
}

export type TensorInputs = Record<string, tf.Tensor | undefined>;

/**
 * Run `graph` on `inputs` (by input name; an optional input that is absent
 * takes its declared fill value) with the given parameters; returns every
 * graph output by name. Call inside tf.tidy (or variableGrads).
 */
export function runGraph(graph: Graph, params: ReadonlyMap<string, tf.Tensor>, inputs: TensorInputs, opts: RunOptions = {}): Record<string, tf.Tensor> {
  const vals: (tf.Tensor | undefined)[] = new Array(graph.values.length);
  const get = (id: number): tf.Tensor => {
    const v = vals[id];
    if (v === undefined) throw new Error(`graph ${graph.name}: value ${id} used before it is computed`);
    return v;
  };
  const training = opts.training === true;
  const dseed = opts.dropoutSeed ?? 0;
  let dropouts = 0;
  const n = batchSize(graph, inputs);
  for (const node of graph.nodes) {
    const r = evalNode(node, get, { graph, params, inputs, n, training, nextDropoutSeed: () => dseed * 1000 + dropouts++ });
    if (node.op === 'split') node.outs.forEach((id, i) => { vals[id] = (r as tf.Tensor[])[i]; });
    else vals[node.out] = r as tf.Tensor;
    if (opts.checkShapes === true) {
      const ids = node.op === 'split' ? node.outs : [node.out];
      for (const id of ids) checkShape(graph.values[id] as Value, get(id), n, node);
    }
  }
  return Object.fromEntries(graph.outputs.map((o) => [o.name, get(o.value.id)]));
}

function checkShape(v: Value, t: tf.Tensor, n: number, node: Node): void {
  const want = v.shape.map((d, i) => (i === 0 && d < 0 ? n : d));
  if (want.join(',') !== t.shape.join(',') || (v.dtype === 'int32') !== (t.dtype === 'int32')) {
    throw new Error(`${node.op} ${'hint' in node ? node.hint : ''}: tfjs made ${t.dtype} [${t.shape.join(',')}], the description says ${v.dtype} [${want.join(',')}]`);
  }
}

function batchSize(graph: Graph, inputs: TensorInputs): number {
  let n: number | undefined;
  for (const d of graph.inputs) {
    const t = inputs[d.name];
    if (t === undefined) continue;
    const want = d.shape.slice(1);
    if (t.rank !== d.shape.length || t.shape.slice(1).join(',') !== want.join(',')) {
      throw new DiffuseError(`${graph.name} input '${d.name}' must be [N,${want.join(',')}], got [${t.shape.join(',')}]`);
    }
    if (n !== undefined && t.shape[0] !== n) throw new DiffuseError(`${graph.name} input '${d.name}' has batch ${String(t.shape[0])}, the others ${n}`);
    n = t.shape[0];
  }
  if (n === undefined) throw new DiffuseError(`${graph.name}: no inputs given`);
  return n;
}

interface EvalContext {
  graph: Graph;
  params: ReadonlyMap<string, tf.Tensor>;
  inputs: TensorInputs;
  n: number;
  training: boolean;
  nextDropoutSeed: () => number;
}

function evalNode(node: Node, get: (id: number) => tf.Tensor, cx: EvalContext): tf.Tensor | tf.Tensor[] {
  switch (node.op) {
    case 'input': {
      const given = cx.inputs[node.name];
      if (given !== undefined) return given;
      const d = cx.graph.inputs.find((i) => i.name === node.name);
      if (d?.fill === undefined) throw new DiffuseError(`${cx.graph.name}: input '${node.name}' is required (${d?.doc ?? ''})`);
      return tf.fill([cx.n, ...d.shape.slice(1)], d.fill, d.dtype);
    }
    case 'param': {
      const p = cx.params.get(node.name);
      if (p === undefined) throw new DiffuseError(`${cx.graph.name}: parameter '${node.name}' is missing`);
      return p;
    }
    case 'conv2d': {
      const x = get(node.x) as tf.Tensor4D;
      const filter = get(node.w) as tf.Tensor4D;
      const [, h, w] = x.shape;
      const k = filter.shape[0];
      // 'same' stays tfjs's own rule (the same numbers); explicit pads as given.
      const pad = node.pad === 'same' ? 'same' as const : explicit(convPads(node.pad, h, w, k, node.stride));
      if (node.b === undefined) return tf.conv2d(x, filter, node.stride, pad);
      const bias = get(node.b);
      // With the opt-in 'convbias' fast path (DIFFUSE_FUSED, engine/fused.ts) the
      // bias is added inside the convolution (FusedConv2D, whose gradient takes
      // the bias gradient from the same dy).
      return fusedOpsEnabled('convbias')
        ? tf.fused.conv2d({ x, filter, strides: node.stride, pad, bias })
        : tf.add(tf.conv2d(x, filter, node.stride, pad), bias);
    }
    case 'linear': {
      const x = get(node.x);
      const w = get(node.w) as tf.Tensor2D;
      const x2 = x.rank === 2 ? x as tf.Tensor2D : tf.reshape(x, [-1, x.shape[x.rank - 1] as number]) as tf.Tensor2D;
      let y: tf.Tensor = tf.matMul(x2, w);
      if (node.b !== undefined) y = tf.add(y, get(node.b));
      return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), w.shape[1]]);
    }
    case 'groupNorm':
      // One fused kernel each way on wasm/cpu (engine/fused.ts), the composite
      // tfjs ops elsewhere or with DIFFUSE_FUSED=0; the same forward semantics.
      return groupNormAct(get(node.x) as tf.Tensor4D, get(node.gamma) as tf.Tensor1D, get(node.beta) as tf.Tensor1D, node.groups, node.silu, node.eps);
    case 'silu': {
      const x = get(node.x);
      return tf.mul(x, tf.sigmoid(x));
    }
    case 'layerNorm': {
      const x = get(node.x);
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, node.eps))), get(node.gamma)), get(node.beta));
    }
    case 'gelu': {
      const x = get(node.x);
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
    }
    case 'exp': return tf.exp(get(node.x));
    case 'abs': return tf.abs(get(node.x));
    case 'add': return tf.add(get(node.a), get(node.b));
    case 'mul': return tf.mul(get(node.a), get(node.b));
    case 'scale': {
      const y = tf.mul(get(node.x), node.s);
      return node.shift === 0 ? y : tf.add(y, node.shift);
    }
    case 'concat': return tf.concat(node.xs.map(get), -1);
    case 'split': return tf.split(get(node.x), node.sizes, -1);
    case 'upsample2x': {
      const x = get(node.x) as tf.Tensor4D;
      const [n, h, w, c] = x.shape;
      const wide = tf.reshape(tf.concat([x, x], 3), [n, h, 2 * w, c]);
      return tf.reshape(tf.concat([wide, wide], 2), [n, 2 * h, 2 * w, c]);
    }
    case 'toTokens': {
      const [n, h, w, c] = get(node.x).shape as [number, number, number, number];
      return tf.reshape(get(node.x), [n, h * w, c]);
    }
    case 'toImage': {
      const [n, , c] = get(node.x).shape as [number, number, number];
      return tf.reshape(get(node.x), [n, node.h, node.w, c]);
    }
    case 'toPixel': {
      const [n, c] = get(node.x).shape as [number, number];
      return tf.reshape(get(node.x), [n, 1, 1, c]);
    }
    case 'attention': return attend(get(node.q) as tf.Tensor3D, get(node.k) as tf.Tensor3D, get(node.v) as tf.Tensor3D, node.heads);
    case 'embedding': {
      // one-hot @ table: its gradient is a matmul (no scatter kernel needed).
      const ids = get(node.ids);
      const table = get(node.table) as tf.Tensor2D;
      const [rows, d] = table.shape;
      const flat = ids.rank === 1 ? ids as tf.Tensor1D : tf.reshape(ids, [-1]) as tf.Tensor1D;
      const oh = tf.oneHot(tf.cast(flat, 'int32'), rows).toFloat() as tf.Tensor2D;
      const rowsOut = tf.matMul(oh, table);
      return ids.rank === 1 ? rowsOut : tf.reshape(rowsOut, [...ids.shape, d]);
    }
    case 'meanTokens': return tf.mean(get(node.x), 1);
    case 'sinusoidal': {
      const f = sinusoidalFrequencies(node.opts);
      const args = tf.mul(tf.reshape(tf.cast(get(node.t), 'float32'), [-1, 1]), tf.tensor2d(f, [1, f.length]));
      return tf.concat(node.opts.flipSinToCos ? [tf.cos(args), tf.sin(args)] : [tf.sin(args), tf.cos(args)], 1);
    }
    case 'dropout': {
      const x = get(node.x);
      return cx.training ? tf.dropout(x, node.rate, undefined, cx.nextDropoutSeed()) : x;
    }
    case 'squaredDifference': return tf.squaredDifference(get(node.a), get(node.b));
    case 'sum': return tf.sum(get(node.x));
    default: {
      const never: never = node;
      throw new Error(`tfjs: unknown node ${JSON.stringify(never)}`);
    }
  }
}

function explicit([t, b, l, r]: [number, number, number, number]): [[number, number], [number, number], [number, number], [number, number]] {
  return [[0, 0], [t, b], [l, r], [0, 0]];
}

/** softmax(q kᵀ / sqrt(d)) v, per head (d = the head's width). */
function attend(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number): tf.Tensor3D {
  if (heads === 1) {
    const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(q.shape[2])));
    return tf.matMul(att, v);
  }
  const [n, lq, d] = q.shape;
  const lk = k.shape[1], dv = v.shape[2];
  const split = (x: tf.Tensor3D, l: number, w: number): tf.Tensor3D =>
    tf.reshape(tf.transpose(tf.reshape(x, [n, l, heads, w / heads]), [0, 2, 1, 3]), [n * heads, l, w / heads]);
  const att = tf.softmax(tf.mul(tf.matMul(split(q, lq, d), split(k, lk, d), false, true), 1 / Math.sqrt(d / heads)));
  const o = tf.matMul(att, split(v, lk, dv));
  return tf.reshape(tf.transpose(tf.reshape(o, [n, heads, lq, dv / heads]), [0, 2, 1, 3]), [n, lq, dv]);
}

/** A described network's parameters as tfjs variables, and its forward. */
export interface TfjsNetwork {
  readonly graph: Graph;
  /** Trainable parameters by name, in sorted name order. */
  readonly params: Map<string, tf.Variable>;
  /** The graph's outputs for the given inputs (call inside tf.tidy or variableGrads). */
  run(inputs: TensorInputs, opts?: RunOptions): Record<string, tf.Tensor>;
  paramCount(): number;
  dispose(): void;
}

/**
 * Variables for every parameter of `graph` from given values (checked: all
 * present, right sizes). `what` names the network in messages ('U-Net').
 */
export function buildTfjsNetwork(graph: Graph, values: ParamSource, what: string): TfjsNetwork {
  checkParams(graph.params, values, { what, shapes: false });
  const params = new Map<string, tf.Variable>();
  for (const s of graph.params) {
    params.set(s.name, tf.variable(tf.tensor(sourceValues(values, s.name) as Float32Array, s.shape, 'float32'), true));
  }
  let disposed = false;
  return {
    graph,
    params,
    run: (inputs, opts) => runGraph(graph, params, inputs, opts),
    paramCount: () => [...params.values()].reduce((s, v) => s + v.size, 0),
    dispose: () => {
      if (disposed) return;
      disposed = true;
      for (const v of params.values()) v.dispose();
    },
  };
}

/** Rows [s, e) of a batch given as plain arrays, as input tensors (absent optional inputs stay absent: runGraph fills them). */
export function tensorRows(graph: Graph, inputs: BatchArrays, s: number, e: number): TensorInputs {
  const part = sliceRows(graph, inputs, s, e, false);
  const out: TensorInputs = {};
  for (const d of graph.inputs) {
    const a = part[d.name];
    if (a !== undefined) out[d.name] = tf.tensor(a, [e - s, ...d.shape.slice(1)], d.dtype);
  }
  return out;
}

/**
 * Every output of `net` (float32) for the n rows of `inputs`, evaluated
 * `batchSize` rows at a time inside tf.tidy: no tensor outlives the call.
 */
export async function runRows(net: TfjsNetwork, n: number, inputs: BatchArrays, batchSize: number): Promise<Record<string, Float32Array>> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new DiffuseError(`batchSize must be a positive integer, got ${String(batchSize)}`);
  const outs = net.graph.outputs;
  const result: Record<string, Float32Array> = {};
  for (const o of outs) {
    if (o.value.dtype !== 'float32') throw new DiffuseError(`${net.graph.name} output '${o.name}' is ${o.value.dtype}; runRows reads float32 outputs`);
    result[o.name] = new Float32Array(n * rowSize(o.value));
  }
  for (let s = 0; s < n; s += batchSize) {
    const e = Math.min(n, s + batchSize);
    const ys = tf.tidy(() => net.run(tensorRows(net.graph, inputs, s, e)));
    try {
      for (const o of outs) result[o.name]?.set(await (ys[o.name] as tf.Tensor).data() as Float32Array, s * rowSize(o.value));
    } finally {
      tf.dispose(Object.values(ys));
    }
  }
  return result;
}
