/**
 * What a run can allocate, checked before it allocates: a config whose sizes
 * pass validation (config.ts) can still be far beyond this machine (a
 * 4096×4096 U-Net, a batch of a billion images). The estimate counts the
 * U-Net's activations level by level from the config alone (engine-free):
 *
 *   per level l (side r = imageSize / 2^l, channels c = baseChannels · mult_l):
 *     (6 · numResBlocks + 8) feature maps of r·r·c floats kept for the
 *     backward pass (training), (2 · numResBlocks + 6) alive at once when only
 *     running forward (sampling: skips plus working tensors);
 *   each attention block (at the resolutions in attentionResolutions, and the
 *   middle block) holds an (r²)² score matrix;
 *
 * times the batch, times 4 bytes. It is deliberately rough (within a small
 * factor of what tfjs or ONNX Runtime use); its job is to refuse what cannot
 * possibly run, in one line, instead of failing after minutes and gigabytes.
 */
import { totalmem } from 'node:os';
import { DiffuseError } from './errors.js';
import type { UNetConfig } from './model/config.js';
import type { AutoencoderConfig } from './model/autoencoder-config.js';

const GiB = 1024 ** 3;
/** A wasm32 instance (tfjs-wasm) cannot address more than this. */
export const WASM_MEMORY_BYTES = 4 * GiB;

/** Bytes of activations for one pass of `batch` images through the U-Net. */
export function unetActivationBytes(model: UNetConfig, batch: number, purpose: 'train' | 'sample'): number {
  let floats = 0;
  const levels = model.channelMults.length;
  const perLevel = purpose === 'train' ? 6 * model.numResBlocks + 8 : 2 * model.numResBlocks + 6;
  for (let l = 0; l < levels; l++) {
    const r = model.imageSize / 2 ** l;
    const c = model.baseChannels * model.channelMults[l]!;
    floats += perLevel * r * r * c;
    const attnBlocks = (model.attentionResolutions.includes(r) ? 2 * model.numResBlocks + 1 : 0) + (l === levels - 1 ? 1 : 0);
    // training keeps every score matrix for the backward pass; sampling one at a time
    floats += (purpose === 'train' ? attnBlocks : Math.min(1, attnBlocks)) * (r * r) ** 2;
  }
  return floats * batch * 4;
}

/** Where the memory comes from: a wasm instance (tfjs-wasm) or the process (ONNX Runtime, tfjs-node). */
export type MemoryPool = 'wasm' | 'native';

/** Bytes a run may plan to use: 4 GiB in a wasm instance, 3/4 of the machine's memory natively. */
export function memoryBudget(pool: MemoryPool): number {
  const native = 0.75 * totalmem();
  return pool === 'wasm' ? Math.min(WASM_MEMORY_BYTES, native) : native;
}

function gb(bytes: number): string {
  const units = ['GB', 'TB', 'PB', 'EB'];
  let v = bytes / 1e9;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return v >= 1000 ? `${bytes.toExponential(2)} bytes` : `${v.toPrecision(3)} ${units[u]}`;
}

/** Throw a DiffuseError naming `what` when `bytes` exceeds the pool's budget. */
export function checkMemory(bytes: number, pool: MemoryPool, what: string, hint: string): void {
  const budget = memoryBudget(pool);
  if (!(bytes <= budget)) {
    throw new DiffuseError(`${what} needs about ${gb(bytes)} of memory (estimate), more than the ${gb(budget)} available to ${pool === 'wasm' ? 'a wasm instance' : 'this process'}: ${hint}`);
  }
}

/** Sampling `batch` images at once (doubled under classifier-free guidance). */
export function checkSamplingMemory(model: UNetConfig, batch: number, guided: boolean, pool: MemoryPool, source: string): void {
  const n = guided ? 2 * batch : batch;
  checkMemory(unetActivationBytes(model, n, 'sample'), pool, `sampling ${model.imageSize}×${model.imageSize} images ${batch} at a time with the U-Net of ${source}`, 'use a smaller --batch-size, or a smaller model');
}

/**
 * A training step: the batch's arrays (images, x_t, targets, noise: 4 floats
 * per pixel) and one micro-batch's activations in each worker.
 */
export function checkTrainingMemory(model: UNetConfig, batchSize: number, microBatch: number, pool: MemoryPool, source: string): void {
  const pixels = model.imageSize * model.imageSize * model.inChannels;
  checkMemory(4 * batchSize * pixels * 4, 'native', `a training batch of ${batchSize} images of ${model.imageSize}×${model.imageSize}×${model.inChannels} (${source})`, 'use a smaller batch size');
  checkMemory(unetActivationBytes(model, Math.min(batchSize, microBatch), 'train'), pool, `training the ${model.imageSize}×${model.imageSize} U-Net of ${source} (${Math.min(batchSize, microBatch)} images per pass)`, 'use smaller images, fewer channels or attention at lower resolutions');
}

/**
 * An autoencoder's training step: the batch (images, targets, noise) and one
 * micro-batch's activations, estimated as a U-Net of the same levels whose
 * blocks are the decoder's (numResBlocks + 1 per level; the middle attention
 * at the lowest level).
 */
export function checkAutoencoderTrainingMemory(model: AutoencoderConfig, batchSize: number, microBatch: number, pool: MemoryPool, source: string): void {
  const pixels = model.imageSize * model.imageSize * model.channels;
  checkMemory(3 * batchSize * pixels * 4, 'native', `a training batch of ${batchSize} images of ${model.imageSize}×${model.imageSize}×${model.channels} (${source})`, 'use a smaller batch size');
  const asUNet: UNetConfig = {
    imageSize: model.imageSize, inChannels: model.channels, outChannels: model.channels, baseChannels: model.baseChannels, channelMults: model.channelMults,
    numResBlocks: model.numResBlocks + 1, attentionResolutions: [], groups: model.groups, dropout: 0, numClasses: 0,
  };
  checkMemory(unetActivationBytes(asUNet, Math.min(batchSize, microBatch), 'train'), pool, `training the ${model.imageSize}×${model.imageSize} autoencoder of ${source} (${Math.min(batchSize, microBatch)} images per pass)`, 'use smaller images or fewer channels');
}
