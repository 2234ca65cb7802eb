/**
 * Bridges a tfjs U-Net to the engine-free sampler interface (ModelFn): the
 * call's arrays become the description's named inputs, run in this thread
 * (modelFnFromUNet) or split between worker threads (parallel-runner.ts).
 */
import type * as tfType from '../engine/tf.js';
import type { ModelFn, Shape4 } from '../diffusion/types.js';
import { DiffuseError } from '../errors.js';
import type { UNetConfig } from './config.js';
import { buildUNet, type UNet } from './unet.js';
import type { BatchArrays } from '../net/graph.js';
import { runRows } from '../net/tfjs.js';
import type { Weights } from '../tensor.js';

export interface ModelFnOptions {
  /** Images per network evaluation (memory bound). Default 64. */
  batchSize?: number;
  /**
   * Class conditioning for class-conditional models: one index for all images,
   * or one per image of each call. Default: "no class" (index numClasses).
   */
  classes?: number | Int32Array;
}

/** The U-Net's named input rows -> its output 'out' (in this thread: modelFnFromUNet; on worker threads: parallel-runner.ts). */
export type UNetRows = (n: number, inputs: BatchArrays) => Promise<Float32Array>;

/**
 * The U-Net as a ModelFn over plain arrays: checks a call against the config
 * and turns (x, t, shape, condition) into the description's named inputs
 * (x, t, classes or tokens), which `rows` evaluates.
 */
export function unetModelFn(c: UNetConfig, rows: UNetRows, opts: Pick<ModelFnOptions, 'classes'> = {}): ModelFn {
  return async (x: Float32Array, t: number, shape: Shape4, perCall?: Int32Array): Promise<Float32Array> => {
    const [n, h, w, ch] = shape;
    if (h !== c.imageSize || w !== c.imageSize || ch !== c.inChannels) {
      throw new DiffuseError(`model input shape [${shape.join(',')}] does not fit the U-Net (${c.imageSize}x${c.imageSize}x${c.inChannels})`);
    }
    if (x.length !== n * h * w * ch) throw new DiffuseError(`model input has ${x.length} values, shape [${shape.join(',')}] needs ${n * h * w * ch}`);
    if (!Number.isFinite(t)) throw new DiffuseError(`model timestep must be finite, got ${t}`);
    // Conditions given with the call (guidance) win over the classes fixed at creation.
    // Text models take rows of L token ids per image; class models one class each.
    const L = c.text !== undefined ? c.text.maxTokens : 1;
    const cls = perCall ?? opts.classes;
    if (cls instanceof Int32Array && cls.length !== n * L) throw new DiffuseError(`condition has ${cls.length} entries for ${n} images (${L} per image)`);
    if (typeof cls === 'number' && c.text !== undefined) throw new DiffuseError('a text model takes token rows, not a class index');
    const inputs: BatchArrays = { x, t: new Float32Array(n).fill(t) };
    if (c.text !== undefined) {
      if (cls instanceof Int32Array) inputs['tokens'] = cls;
    } else if (c.numClasses > 0 && cls !== undefined) {
      inputs['classes'] = typeof cls === 'number' ? new Int32Array(n).fill(cls) : cls;
    }
    return rows(n, inputs);
  };
}

/**
 * `(x, t, shape) => net(x, t)` over plain arrays on this thread's engine,
 * evaluated in batches inside tf.tidy (no tensors outlive a call). `_tf`, the
 * engine's module, is no longer read (every tfjs module shares engine/tf.ts);
 * it stays so existing calls keep compiling.
 */
export function modelFnFromUNet(unet: UNet, _tf: typeof tfType, opts: ModelFnOptions = {}): ModelFn {
  const bs = opts.batchSize ?? 64;
  if (!Number.isInteger(bs) || bs < 1) throw new DiffuseError(`batchSize must be a positive integer, got ${String(bs)}`);
  return unetModelFn(unet.config, async (n, inputs) => (await runRows(unet.net, n, inputs, bs))['out'] as Float32Array, opts);
}

/** A U-Net holding the given parameters (e.g. TrainerState.ema or .params). */
export function loadUNetFromState(config: UNetConfig, params: Weights): UNet {
  for (const [name, v] of Object.entries(params)) {
    if (!(v?.data instanceof Float32Array)) throw new DiffuseError(`parameter '${name}' must hold a Float32Array`);
  }
  return buildUNet(config, params);
}
