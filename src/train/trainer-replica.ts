/**
 * One model replica: a U-Net on the current tfjs backend that loads flat
 * parameters and computes the flat gradient of
 *   sum over its images of (net(xt, t) - target)^2 / denom
 * in micro-batches (gradient accumulation keeps the wasm heap small).
 * Used in-process (workers = 1) and inside each worker thread.
 */
import * as tf from '@tensorflow/tfjs';
import type { UNetConfig } from '../model/config.js';
import { buildUNet, type UNet, unetParamSpecs } from '../model/unet.js';

export interface ParamLayout {
  names: string[];
  shapes: number[][];
  offsets: number[];
  sizes: number[];
  total: number;
}

export function paramLayout(config: UNetConfig): ParamLayout {
  const specs = unetParamSpecs(config);
  const names: string[] = [], shapes: number[][] = [], offsets: number[] = [], sizes: number[] = [];
  let total = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    names.push(s.name); shapes.push(s.shape); offsets.push(total); sizes.push(n);
    total += n;
  }
  return { names, shapes, offsets, sizes, total };
}

/** A shard of a batch, as plain arrays (NHWC). */
export interface Shard {
  xt: Float32Array;
  t: Float32Array;
  target: Float32Array;
  /** Condition rows [n, L] (class indices, L = 1, or token ids). */
  cond?: Int32Array | undefined;
  /** [n, h, w, c] of xt; target has outChannels instead of c. */
  shape: [number, number, number, number];
  /** Divisor of the summed squared error (all elements of the full batch). */
  denom: number;
  /** Base of the dropout seeds for this shard. */
  dropoutSeed: number;
}

export class Replica {
  readonly layout: ParamLayout;
  readonly unet: UNet;
  private readonly vars: tf.Variable[];

  constructor(readonly config: UNetConfig, initial: Float32Array, readonly microBatch: number) {
    this.layout = paramLayout(config);
    const values = new Map<string, Float32Array>();
    this.layout.names.forEach((n, i) => {
      const o = this.layout.offsets[i] as number;
      values.set(n, initial.slice(o, o + (this.layout.sizes[i] as number)));
    });
    this.unet = buildUNet(config, values);
    this.vars = this.layout.names.map((n) => this.unet.params.get(n) as tf.Variable);
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
    const [n, h, w, c] = shard.shape;
    const oc = this.config.outChannels;
    out.fill(0);
    let loss = 0;
    const mb = Math.max(1, this.microBatch);
    for (let s = 0; s < n; s += mb) {
      const e = Math.min(n, s + mb);
      const k = e - s;
      tf.tidy(() => {
        const x = tf.tensor4d(shard.xt.subarray(s * h * w * c, e * h * w * c), [k, h, w, c]);
        const tgt = tf.tensor4d(shard.target.subarray(s * h * w * oc, e * h * w * oc), [k, h, w, oc]);
        const t = tf.tensor1d(shard.t.subarray(s, e));
        const L = shard.cond !== undefined ? shard.cond.length / n : 0;
        const cond = shard.cond?.subarray(s * L, e * L);
        const opts = {
          training: true,
          dropoutSeed: shard.dropoutSeed + s,
          ...(cond === undefined ? {} : this.config.text !== undefined ? { tokens: tf.tensor2d(cond, [k, L], 'int32') } : { classes: tf.tensor1d(cond, 'int32') }),
        };
        const { value, grads } = tf.variableGrads(
          () => tf.mul(tf.sum(tf.squaredDifference(this.unet.apply(x, t, opts), tgt)), 1 / shard.denom) as tf.Scalar,
          this.vars);
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
    this.unet.dispose();
  }
}
