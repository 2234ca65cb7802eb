/**
 * One model replica: a described network with its loss (train/objective.ts)
 * on the current tfjs backend, which loads flat parameters and computes the
 * flat gradient of
 *   (sum over its rows of the loss) / denom
 * in micro-batches (gradient accumulation keeps the wasm heap small).
 * Used in-process (workers = 1) and inside each worker thread.
 */
import * as tf from '../engine/tf.js';
import type { BatchArrays, Graph } from '../net/graph.js';
import { type ParamLayout, paramLayout } from '../net/params.js';
import { buildTfjsNetwork, tensorRows, type TfjsNetwork } from '../net/tfjs.js';

/** A shard of a batch, as plain arrays. */
export interface Shard {
  /** Rows in this shard. */
  n: number;
  inputs: BatchArrays;
  /** Divisor of the summed loss (full batch size x the loss's per-row count). */
  denom: number;
  /** Base of the dropout seeds for this shard. */
  dropoutSeed: number;
}

export class Replica {
  readonly layout: ParamLayout;
  readonly net: TfjsNetwork;
  private readonly vars: tf.Variable[];

  constructor(readonly graph: Graph, initial: Float32Array, readonly microBatch: number) {
    this.layout = paramLayout(graph.params);
    const values = new Map<string, Float32Array>();
    this.layout.names.forEach((n, i) => {
      const o = this.layout.offsets[i] as number;
      values.set(n, initial.slice(o, o + (this.layout.sizes[i] as number)));
    });
    this.net = buildTfjsNetwork(graph, values, graph.name);
    this.vars = this.layout.names.map((n) => this.net.params.get(n) as tf.Variable);
  }

  /** Load flat parameters (copied; `flat` may live in a SharedArrayBuffer). */
  setParams(flat: Float32Array): void {
    const L = this.layout;
    tf.tidy(() => {
      this.vars.forEach((v, i) => {
        const o = L.offsets[i] as number;
        v.assign(tf.tensor(flat.slice(o, o + (L.sizes[i] as number)), L.shapes[i], 'float32'));
      });
    });
  }

  /** Current parameters, flat (for replica comparisons and tests). */
  getParams(): Float32Array {
    const out = new Float32Array(this.layout.total);
    this.vars.forEach((v, i) => out.set(v.dataSync() as Float32Array, this.layout.offsets[i] as number));
    return out;
  }

  /** Writes the gradient into `out` (length layout.total); returns the loss contribution. */
  computeGrads(shard: Shard, out: Float32Array): number {
    out.fill(0);
    let loss = 0;
    const mb = Math.max(1, this.microBatch);
    for (let s = 0; s < shard.n; s += mb) {
      const e = Math.min(shard.n, s + mb);
      tf.tidy(() => {
        const inputs = tensorRows(this.graph, shard.inputs, s, e);
        const run = { training: true, dropoutSeed: shard.dropoutSeed + s };
        const { value, grads } = tf.variableGrads(
          () => tf.mul(this.net.run(inputs, run)['loss'] as tf.Scalar, 1 / shard.denom) as tf.Scalar, this.vars);
        loss += (value.dataSync()[0] as number);
        this.vars.forEach((v, i) => {
          const g = grads[v.name];
          if (g === undefined) throw new Error(`no gradient for ${this.layout.names[i]}`);
          const gd = g.dataSync() as Float32Array;
          const o = this.layout.offsets[i] as number;
          for (let j = 0; j < gd.length; j++) out[o + j] = (out[o + j] as number) + (gd[j] as number);
        });
      });
    }
    return loss;
  }

  dispose(): void {
    this.net.dispose();
  }
}
