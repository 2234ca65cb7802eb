/**
 * Tensors as plain data, shared by every layer (engine-free): the one type for
 * a network's weights, its EMA copy and its optimiser moments, in memory and in
 * safetensors files.
 */

/** A float32 tensor: row-major values and their shape. */
export interface F32Tensor {
  shape: number[];
  data: Float32Array;
}

/** Named float32 tensors, e.g. a network's parameters by their stable names. */
export type Weights = Record<string, F32Tensor>;

/** A copy of `w` that shares no memory with it. */
export function copyWeights(w: Weights): Weights {
  return Object.fromEntries(Object.entries(w).map(([n, t]) => [n, { shape: [...t.shape], data: t.data.slice() }]));
}

/** Zeros of the names and shapes of `w` (fresh optimiser moments). */
export function zeroWeights(w: Weights): Weights {
  return Object.fromEntries(Object.entries(w).map(([n, t]) => [n, { shape: [...t.shape], data: new Float32Array(t.data.length) }]));
}

/** Image batch layout, NHWC: [batch, height, width, channels]. */
export type Shape4 = readonly [n: number, h: number, w: number, c: number];

/** A batch of images as plain data: NHWC values in [-1, 1]. */
export interface ImageBatch {
  images: Float32Array;
  shape: Shape4;
}
