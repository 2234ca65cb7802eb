/**
 * The project's U-Net as an ONNX graph, for fast sampling with ONNX Runtime
 * (Node, or the browser through onnxruntime-web): its description
 * (model/unet-description.ts) translated by the ONNX interpreter
 * (onnx/export-graph.ts, which documents the op mapping and the layout).
 *
 * Interface (same layout as the library):
 *   x        float32 [N,H,W,C]   NHWC images x_t
 *   t        float32 [N]         timestep index per image
 *   classes  int64   [N]         class per image, only when numClasses > 0
 *                                (numClasses = "no class")
 *   tokens   int64   [N,L]       prompt token ids, only for text models
 *                                (model.text; 0 = pad, all pads = no prompt)
 *   out      float32 [N,H,W,outC]
 * N is dynamic.
 */
import { type UNetConfig } from '../model/config.js';
import { unetGraph } from '../model/unet-description.js';
import { exportGraphToOnnx, type GraphExportOptions } from './export-graph.js';
import { ONNX_UNET_CONFIG_KEY } from './proto.js';
import type { Weights } from '../tensor.js';
import type { DiffuseConfig } from '../config.js';
import { expertWeights } from '../diffusion/experts.js';

export type OnnxExportOptions = Pick<GraphExportOptions, 'opset' | 'metadata' | 'groupNorm'>;

export { ONNX_UNET_CONFIG_KEY };
export { DEFAULT_OPSET, MIN_OPSET, MAX_OPSET, hwioToOihw } from './export-graph.js';

/** The U-Net with the given weights as ONNX model bytes. */
export function exportUNetToOnnx(config: UNetConfig, params: Weights, opts: OnnxExportOptions = {}): Uint8Array {
  const graph = unetGraph(config);
  const c = config;
  const S = c.imageSize;
  const doc = `diffuse-ts U-Net ${S}x${S}x${c.inChannels} -> ${c.outChannels}ch. Inputs: ` +
    graph.inputs.map((i) => `${i.name} ${i.dtype === 'float32' ? 'float32' : 'int64'} [${i.shape.map((d) => (d < 0 ? 'N' : d)).join(',')}] (${i.doc})`).join(', ') +
    '. Output: out float32 [N,H,W,outC].';
  return exportGraphToOnnx(graph, params, {
    ...opts,
    what: 'exportUNetToOnnx: U-Net',
    graphName: 'diffuse_unet',
    docString: doc,
    metadata: { ...(opts.metadata ?? {}), [ONNX_UNET_CONFIG_KEY]: JSON.stringify(c) },
  });
}

/** Which weights of a checkpoint an export holds, and of which step (written to the metadata). */
export interface CheckpointExportInfo {
  readonly weights: 'ema' | 'model';
  readonly step: number;
  readonly opset?: number;
}

/**
 * A checkpoint's network(s) as ONNX model bytes: the one shared U-Net, or one
 * model per expert (config.experts), in expert order. Each file's metadata
 * holds the diffusion settings (diffuse.schedule, .timesteps, .prediction),
 * the weights and step, the class names, a latent model's scaling factor
 * (diffuse.latent_scaling_factor), and for experts diffuse.expert
 * (its index), diffuse.experts (K) and diffuse.expert_boundaries (JSON: expert
 * k owns b_k ≤ t < b_{k+1}).
 */
export function exportCheckpointToOnnx(config: DiffuseConfig, params: Weights, info: CheckpointExportInfo): Uint8Array[] {
  const ex = config.experts;
  const common: Record<string, string> = {
    'diffuse.schedule': config.diffusion.schedule,
    'diffuse.timesteps': String(config.diffusion.timesteps),
    'diffuse.prediction': config.diffusion.prediction,
    'diffuse.weights': info.weights,
    'diffuse.step': String(info.step),
    ...(config.data.labelNames !== undefined ? { 'diffuse.label_names': JSON.stringify(config.data.labelNames) } : {}),
    ...(config.latent !== undefined ? { 'diffuse.latent_scaling_factor': String(config.latent.scalingFactor) } : {}),
    ...(ex !== undefined ? { 'diffuse.experts': String(ex.count), 'diffuse.expert_boundaries': JSON.stringify(ex.boundaries) } : {}),
  };
  return expertWeights(ex?.count ?? 1, params, `the weights of ${ex?.count ?? 1} network(s)`).map((w, k) => exportUNetToOnnx(config.model, w, {
    ...(info.opset !== undefined ? { opset: info.opset } : {}),
    metadata: { ...common, ...(ex !== undefined ? { 'diffuse.expert': String(k) } : {}) },
  }));
}
