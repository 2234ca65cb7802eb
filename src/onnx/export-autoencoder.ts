/**
 * The autoencoder's halves as ONNX graphs (its description,
 * model/autoencoder-description.ts, through the ONNX interpreter):
 *
 *   decoder  z     float32 [N,s,s,L]  latents (unscaled)  ->  image  float32 [N,S,S,C]
 *   encoder  x     float32 [N,S,S,C]  images in [-1, 1]   ->  mean, logvar  float32 [N,s,s,L]
 *
 * NHWC like the rest of the library; N is dynamic. The metadata holds the
 * autoencoder's config and, for a latent model's, the scaling factor: a
 * sampler's latents are divided by it before the decoder.
 */
import type { AutoencoderConfig } from '../model/autoencoder-config.js';
import { decoderNetwork, encoderNetwork } from '../model/autoencoder-description.js';
import { networkGraph } from '../net/network.js';
import { graphWeights } from '../latent/runner.js';
import type { Weights } from '../tensor.js';
import { exportGraphToOnnx, type GraphExportOptions } from './export-graph.js';
import { ONNX_AUTOENCODER_CONFIG_KEY } from './proto.js';

export type AutoencoderPart = 'decoder' | 'encoder';
export const AUTOENCODER_PARTS: readonly AutoencoderPart[] = ['decoder', 'encoder'];
export { ONNX_AUTOENCODER_CONFIG_KEY };

/** One half of the autoencoder, with the given (whole autoencoder's) weights, as ONNX model bytes. */
export function exportAutoencoderToOnnx(config: AutoencoderConfig, weights: Weights, part: AutoencoderPart, opts: Pick<GraphExportOptions, 'opset' | 'metadata' | 'groupNorm'> = {}): Uint8Array {
  const graph = networkGraph(part === 'decoder' ? decoderNetwork : encoderNetwork, config);
  const io = graph.inputs.map((i) => `${i.name} [${i.shape.map((d) => (d < 0 ? 'N' : d)).join(',')}]`).join(', ');
  const out = graph.outputs.map((o) => `${o.name} [${o.value.shape.map((d) => (d < 0 ? 'N' : d)).join(',')}]`).join(', ');
  return exportGraphToOnnx(graph, graphWeights(graph, weights), {
    ...opts,
    what: `export: the autoencoder's ${part}`,
    graphName: `diffuse_${part}`,
    docString: `diffuse-ts autoencoder ${part}, NHWC float32: ${io} -> ${out}`,
    metadata: { ...(opts.metadata ?? {}), [ONNX_AUTOENCODER_CONFIG_KEY]: JSON.stringify(config) },
  });
}
