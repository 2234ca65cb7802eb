/**
 * Bridges a tfjs U-Net to the engine-free sampler interface (ModelFn).
 */
import type * as tfType from '../engine/tf.js';
import type { ModelFn, Shape4 } from '../diffusion/types.js';
import { DiffuseError } from '../errors.js';
import type { UNetConfig } from './config.js';
import { buildUNet, type UNet } from './unet.js';
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

/**
 * `(x, t, shape) => net(x, t)` over plain arrays, evaluated in batches inside
 * tf.tidy (no tensors outlive a call).
 */
export function modelFnFromUNet(unet: UNet, tf: typeof tfType, opts: ModelFnOptions = {}): ModelFn {
  const c = unet.config;
  const bs = opts.batchSize ?? 64;
  if (!Number.isInteger(bs) || bs < 1) throw new DiffuseError(`batchSize must be a positive integer, got ${String(bs)}`);
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
    const oc = c.outChannels;
    const out = new Float32Array(n * h * w * oc);
    for (let s = 0; s < n; s += bs) {
      const e = Math.min(n, s + bs);
      const k = e - s;
      const y = tf.tidy(() => {
        const xt = tf.tensor4d(x.subarray(s * h * w * ch, e * h * w * ch), [k, h, w, ch]);
        const tt = tf.fill([k], t, 'float32') as tfType.Tensor1D;
        if (c.text !== undefined) {
          const tokens = cls instanceof Int32Array ? tf.tensor2d(cls.subarray(s * L, e * L), [k, L], 'int32') : undefined;
          return unet.apply(xt, tt, tokens !== undefined ? { tokens } : {});
        }
        const classes = c.numClasses === 0 || cls === undefined ? undefined
          : typeof cls === 'number' ? tf.fill([k], cls, 'int32') as tfType.Tensor1D
          : tf.tensor1d(cls.subarray(s, e), 'int32');
        return unet.apply(xt, tt, classes !== undefined ? { classes } : {});
      });
      try {
        out.set(await y.data() as Float32Array, s * h * w * oc);
      } finally {
        y.dispose();
      }
    }
    return out;
  };
}

/** A U-Net holding the given parameters (e.g. TrainerState.ema or .params). */
export function loadUNetFromState(config: UNetConfig, params: Weights): UNet {
  for (const [name, v] of Object.entries(params)) {
    if (!(v?.data instanceof Float32Array)) throw new DiffuseError(`parameter '${name}' must hold a Float32Array`);
  }
  return buildUNet(config, params);
}
