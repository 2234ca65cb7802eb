/**
 * The input checks and feeds of an exported U-Net, shared by the Node runner
 * (onnxruntime-node) and the browser one (onnxruntime-web). Engine-free and
 * browser-safe: no ORT import here, the caller wraps the arrays in its Tensor.
 */
import { DiffuseError } from '../errors.js';
import type { Shape4 } from '../diffusion/types.js';

export interface UNetFeedArrays {
  /** x as given, and t repeated per image. */
  readonly x: Float32Array;
  readonly t: Float32Array;
  /** int64 class per image for conditional models ("no class" when none given). */
  readonly classes?: BigInt64Array;
}

/**
 * Validate one call (shape against the model's [H, W, C], x length, t, class
 * indices) and build the arrays to feed. `what` names the runner in errors.
 */
export function unetFeeds(
  what: string,
  model: { readonly imageShape: readonly [number, number, number]; readonly conditional: boolean; readonly numClasses: number },
  x: Float32Array,
  t: number,
  shape: Shape4,
  classes?: Int32Array,
): UNetFeedArrays {
  const [H, W, C] = model.imageShape;
  const [n, h, w, ch] = shape;
  if (!Number.isInteger(n) || n < 1 || h !== H || w !== W || ch !== C) {
    throw new DiffuseError(`${what} expects input [N,${H},${W},${C}], got [${shape.join(',')}]`);
  }
  if (!(x instanceof Float32Array) || x.length !== n * H * W * C) {
    throw new DiffuseError(`${what}: x must be a Float32Array of ${n * H * W * C} values for shape [${shape.join(',')}], got ${x.length}`);
  }
  if (typeof t !== 'number' || !Number.isFinite(t)) throw new DiffuseError(`${what}: timestep must be a finite number, got ${String(t)}`);
  const tArr = new Float32Array(n).fill(t);
  if (!model.conditional) {
    if (classes !== undefined) throw new DiffuseError(`${what}: class labels given to an unconditional model`);
    return { x, t: tArr };
  }
  const k = model.numClasses;
  const cls = new BigInt64Array(n);
  if (classes === undefined) {
    cls.fill(BigInt(k));
  } else {
    if (classes.length !== n) throw new DiffuseError(`${what}: ${classes.length} class labels for a batch of ${n}`);
    for (let i = 0; i < n; i++) {
      const c = classes[i]!;
      if (!Number.isInteger(c) || c < 0 || c > k) throw new DiffuseError(`${what}: class ${c} at index ${i} is outside 0..${k} (${k} = no class)`);
      cls[i] = BigInt(c);
    }
  }
  return { x, t: tArr, classes: cls };
}
