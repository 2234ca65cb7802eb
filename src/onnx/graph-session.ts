/**
 * Run any described network's ONNX export (onnx/export-graph.ts) on ONNX
 * Runtime for Node with named plain-array inputs: the generic counterpart of
 * runner.ts's U-Net ModelFn, for graphs whose inputs are not just x, t and
 * one integer condition (e.g. a UNet2DConditionModel's float `context`).
 * Inputs are checked against the graph's declaration (names, sizes, integer
 * ranges) before ORT sees them. Engine-free until a session is created.
 */
import type * as Ort from 'onnxruntime-node';
import { DiffuseError } from '../errors.js';
import { BATCH, type Graph, shapeSize } from '../net/graph.js';
import { exportGraphToOnnx, type GraphExportOptions } from './export-graph.js';
import type { Shape4, Weights } from '../tensor.js';
import type { ModelFn } from '../diffusion/types.js';

/** One input: float32 values, or integers (int32 inputs, fed as INT64). */
export type GraphFeed = Float32Array | Int32Array;

export interface OrtGraphSession {
  readonly graph: Graph;
  /** The graph's outputs (float32, their shapes with the batch filled in) for one batch of named inputs. */
  run(inputs: Readonly<Record<string, GraphFeed>>, batch: number): Promise<Record<string, { data: Float32Array; shape: number[] }>>;
  dispose(): Promise<void>;
}

/**
 * Export `graph` with `weights` and open it on ONNX Runtime (CPU, `threads`
 * intra-op threads, default 2). Optional inputs (those with a fill value)
 * are filled when not given.
 */
export async function createOrtGraphSession(graph: Graph, weights: Weights, opts: GraphExportOptions & { threads?: number } = {}): Promise<OrtGraphSession> {
  const threads = opts.threads ?? 2;
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw new DiffuseError(`ORT threads must be an integer in 1..256, got ${String(threads)}`);
  let ort: typeof Ort;
  try {
    ort = await import('onnxruntime-node');
  } catch (err) {
    throw new DiffuseError(`onnxruntime-node cannot be loaded on this platform (npm install onnxruntime-node): ${err instanceof Error ? err.message : String(err)}`);
  }
  const bytes = exportGraphToOnnx(graph, weights, opts);
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', executionProviders: ['cpu'],
  });
  let disposed = false;
  return {
    graph,
    async run(inputs, batch) {
      if (disposed) throw new DiffuseError(`${graph.name}: session used after dispose()`);
      if (!Number.isInteger(batch) || batch < 1) throw new DiffuseError(`${graph.name}: batch must be a positive integer, got ${batch}`);
      for (const name of Object.keys(inputs)) {
        if (!graph.inputs.some((d) => d.name === name)) throw new DiffuseError(`${graph.name} has no input '${name}' (inputs: ${graph.inputs.map((d) => d.name).join(', ')})`);
      }
      const feeds: Record<string, Ort.Tensor> = {};
      for (const d of graph.inputs) {
        const dims = d.shape.map((v) => (v === BATCH ? batch : v));
        const n = shapeSize(dims);
        const given = inputs[d.name];
        if (given === undefined && d.fill === undefined) throw new DiffuseError(`${graph.name}: input '${d.name}' is required (${d.doc})`);
        if (given !== undefined && given.length !== n) throw new DiffuseError(`${graph.name}: input '${d.name}' needs ${n} values for [${dims.join(',')}], got ${given.length}`);
        if (d.dtype === 'float32') {
          if (given !== undefined && !(given instanceof Float32Array)) throw new DiffuseError(`${graph.name}: input '${d.name}' must be a Float32Array`);
          feeds[d.name] = new ort.Tensor('float32', given ?? new Float32Array(n).fill(d.fill ?? 0), dims);
        } else {
          const ids = new BigInt64Array(n);
          for (let i = 0; i < n; i++) {
            const v = given === undefined ? (d.fill ?? 0) : (given[i] as number);
            if (!Number.isInteger(v) || v < 0 || (d.max !== undefined && v > d.max)) {
              throw new DiffuseError(`${graph.name}: input '${d.name}' value ${v} at index ${i} is outside 0..${d.max ?? 'max'} (${d.doc})`);
            }
            ids[i] = BigInt(v);
          }
          feeds[d.name] = new ort.Tensor('int64', ids, dims);
        }
      }
      const result = await session.run(feeds);
      const out: Record<string, { data: Float32Array; shape: number[] }> = {};
      for (const o of graph.outputs) {
        const t = result[o.name];
        if (t === undefined || !(t.data instanceof Float32Array)) throw new Error(`${graph.name}: ORT returned no float32 '${o.name}'`);
        out[o.name] = { data: t.data, shape: t.dims.map(Number) };
      }
      return out;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await session.release();
    },
  };
}

/**
 * A U-Net with an external context (UNet2DConditionModel; `context` input
 * [N, L, D]) as a ModelFn whose condition rows are indices into `contexts`:
 * one hidden-state sequence per entry (e.g. a text encoder's output for each
 * prompt, and for the empty prompt), so generate()'s classifier-free guidance
 * works as it does with class indices: `{ cond: Int32Array of indices,
 * nullCond: Int32Array.of(index of the empty prompt), guidance }`. Without a
 * condition every image gets `contexts[0]`.
 */
export function contextModelFn(session: OrtGraphSession, contexts: readonly Float32Array[]): ModelFn {
  const decl = session.graph.inputs.find((d) => d.name === 'context');
  if (decl === undefined) throw new DiffuseError(`${session.graph.name} takes no context (it is not a cross-attention U-Net)`);
  const per = shapeSize(decl.shape.slice(1));
  contexts.forEach((c, i) => {
    if (!(c instanceof Float32Array) || c.length !== per) throw new DiffuseError(`context ${i} must be a Float32Array of ${decl.shape.slice(1).join('×')} = ${per} values, got ${c.length}`);
  });
  if (contexts.length === 0) throw new DiffuseError('give at least one context');
  return async (x: Float32Array, t: number, shape: Shape4, cond?: Int32Array): Promise<Float32Array> => {
    const n = shape[0];
    const context = new Float32Array(n * per);
    for (let i = 0; i < n; i++) {
      const k = cond === undefined ? 0 : cond[i];
      const c = k === undefined ? undefined : contexts[k];
      if (c === undefined) throw new DiffuseError(`condition ${String(k)} of image ${i} is not one of the ${contexts.length} contexts`);
      context.set(c, i * per);
    }
    return (await session.run({ x, t: new Float32Array(n).fill(t), context }, n))['out']!.data;
  };
}
