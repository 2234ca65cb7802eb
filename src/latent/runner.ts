/**
 * The autoencoder as plain-array functions on an engine: encode (images ->
 * the posterior's mean and log-variance) and decode (latents -> images), on
 * tfjs or on ONNX Runtime (the encoder and decoder graphs of
 * model/autoencoder-description.ts, exported on the fly). Engines load lazily:
 * importing this module loads neither.
 *
 * Latents here are the autoencoder's own (unscaled); the latent diffusion
 * stage multiplies by the scaling factor (latent/space.ts).
 */
import { DiffuseError } from '../errors.js';
import type { BackendName } from '../engine/backend.js';
import type { AutoencoderConfig } from '../model/autoencoder-config.js';
import { latentShape } from '../model/autoencoder-config.js';
import { decoderNetwork, encoderNetwork } from '../model/autoencoder-description.js';
import type { Graph } from '../net/graph.js';
import { networkGraph } from '../net/network.js';
import type { Weights } from '../tensor.js';

export type AutoencoderEngine = 'tfjs' | 'onnx';

export interface AutoencoderRunner {
  readonly config: AutoencoderConfig;
  /** What runs it, in words ('onnxruntime-node', 'tfjs-wasm'). */
  readonly engine: string;
  /** n images [n,S,S,C] in [-1, 1] -> the posterior's mean and log-variance, each [n,s,s,L]. */
  encode(x: Float32Array, n: number): Promise<{ mean: Float32Array; logvar: Float32Array }>;
  /** n latents [n,s,s,L] -> images [n,S,S,C] (not clamped). */
  decode(z: Float32Array, n: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export interface AutoencoderRunnerOptions {
  /** Default: onnx when onnxruntime-node loads, else tfjs. */
  readonly engine?: AutoencoderEngine;
  /** ONNX Runtime threads (default 2). */
  readonly threads?: number;
  /** tfjs backend (default: what initEngine picks). */
  readonly backend?: BackendName;
  /** Images per evaluation (default 64). */
  readonly batchSize?: number;
  /** Which halves to build (default both). */
  readonly parts?: 'both' | 'encoder' | 'decoder';
}

/** The weights of a graph's parameters, out of the whole autoencoder's. */
export function graphWeights(graph: Graph, weights: Weights): Weights {
  const out: Weights = {};
  for (const s of graph.params) {
    const w = weights[s.name];
    if (w === undefined) throw new DiffuseError(`autoencoder weights lack parameter '${s.name}'`);
    out[s.name] = w;
  }
  return out;
}

/** A function over batches of rows: calls `f` on chunks of at most `bs` rows and concatenates. */
async function chunked(n: number, bs: number, inPer: number, outPer: readonly number[], x: Float32Array,
  f: (part: Float32Array, k: number) => Promise<Float32Array[]>): Promise<Float32Array[]> {
  if (!Number.isInteger(n) || n < 1) throw new DiffuseError(`autoencoder: batch size must be a positive integer, got ${String(n)}`);
  if (!(x instanceof Float32Array) || x.length !== n * inPer) throw new DiffuseError(`autoencoder: expected ${n * inPer} values for ${n} rows, got ${x.length}`);
  const outs = outPer.map((p) => new Float32Array(n * p));
  for (let s = 0; s < n; s += bs) {
    const e = Math.min(n, s + bs);
    const r = await f(x.subarray(s * inPer, e * inPer), e - s);
    r.forEach((a, i) => (outs[i] as Float32Array).set(a, s * (outPer[i] as number)));
  }
  return outs;
}

/** Encode and decode with the given (whole autoencoder's) weights. */
export async function createAutoencoderRunner(config: AutoencoderConfig, weights: Weights, opts: AutoencoderRunnerOptions = {}): Promise<AutoencoderRunner> {
  const bs = opts.batchSize ?? 64;
  if (!Number.isInteger(bs) || bs < 1) throw new DiffuseError(`autoencoder batchSize must be a positive integer, got ${String(bs)}`);
  let engine = opts.engine;
  if (engine === undefined) {
    const { ortAvailable } = await import('../onnx/runner.js');
    engine = (await ortAvailable()) ? 'onnx' : 'tfjs';
  }
  const parts = opts.parts ?? 'both';
  const enc = parts !== 'decoder' ? networkGraph(encoderNetwork, config) : undefined;
  const dec = parts !== 'encoder' ? networkGraph(decoderNetwork, config) : undefined;
  const S = config.imageSize, C = config.channels;
  const [s, , L] = latentShape(config);
  const pix = S * S * C, lat = s * s * L;
  const missing = (what: string): never => { throw new DiffuseError(`this autoencoder runner was built without its ${what}`); };

  switch (engine) {
    case 'tfjs': {
      const { initEngine } = await import('../engine/backend.js');
      const { buildTfjsNetwork } = await import('../net/tfjs.js');
      const e = await initEngine(opts.backend !== undefined ? { backend: opts.backend } : {});
      const tf = e.tf;
      const encNet = enc !== undefined ? buildTfjsNetwork(enc, weights, 'encoder') : undefined;
      const decNet = dec !== undefined ? buildTfjsNetwork(dec, weights, 'decoder') : undefined;
      const run = async (net: typeof encNet, input: string, dims: number[], outputs: string[], part: Float32Array, k: number): Promise<Float32Array[]> => {
        if (net === undefined) return missing(input === 'x' ? 'encoder' : 'decoder');
        const ys = tf.tidy(() => {
          const r = net.run({ [input]: tf.tensor(part, [k, ...dims], 'float32') });
          return outputs.map((o) => r[o] as import('../engine/tf.js').Tensor);
        });
        try {
          return await Promise.all(ys.map(async (y) => (await y.data()) as Float32Array));
        } finally {
          for (const y of ys) y.dispose();
        }
      };
      return {
        config,
        engine: `tfjs-${e.backend}`,
        encode: async (x, n) => {
          const [mean, logvar] = await chunked(n, bs, pix, [lat, lat], x, (p, k) => run(encNet, 'x', [S, S, C], ['mean', 'logvar'], p, k));
          return { mean: mean as Float32Array, logvar: logvar as Float32Array };
        },
        decode: async (z, n) => (await chunked(n, bs, lat, [pix], z, (p, k) => run(decNet, 'z', [s, s, L], ['image'], p, k)))[0] as Float32Array,
        dispose: async () => { encNet?.dispose(); decNet?.dispose(); },
      };
    }
    case 'onnx': {
      const { exportGraphToOnnx } = await import('../onnx/export-graph.js');
      const { openOrtSession } = await import('../onnx/runner.js');
      const threads = opts.threads !== undefined ? { threads: opts.threads } : {};
      const open = async (g: Graph | undefined, name: string) => (g === undefined ? undefined
        : openOrtSession(exportGraphToOnnx(g, graphWeights(g, weights), { graphName: name, what: `ONNX export: ${g.name}` }), threads));
      const encS = await open(enc, 'diffuse_encoder');
      const decS = await open(dec, 'diffuse_decoder');
      const run = async (os: typeof encS, input: string, dims: number[], outputs: string[], part: Float32Array, k: number): Promise<Float32Array[]> => {
        if (os === undefined) return missing(input === 'x' ? 'encoder' : 'decoder');
        const r = await os.session.run({ [input]: new os.ort.Tensor('float32', part, [k, ...dims]) });
        return outputs.map((o) => {
          const t = r[o];
          if (t === undefined || !(t.data instanceof Float32Array)) throw new Error(`ORT ${os.source}: no float32 '${o}' in the results`);
          return t.data;
        });
      };
      return {
        config,
        engine: 'onnxruntime-node',
        encode: async (x, n) => {
          const [mean, logvar] = await chunked(n, bs, pix, [lat, lat], x, (p, k) => run(encS, 'x', [S, S, C], ['mean', 'logvar'], p, k));
          return { mean: mean as Float32Array, logvar: logvar as Float32Array };
        },
        decode: async (z, n) => (await chunked(n, bs, lat, [pix], z, (p, k) => run(decS, 'z', [s, s, L], ['image'], p, k)))[0] as Float32Array,
        dispose: async () => { await encS?.session.release(); await decS?.session.release(); },
      };
    }
    default: {
      const never: never = engine;
      throw new DiffuseError(`unknown autoencoder engine '${String(never)}' (tfjs or onnx)`);
    }
  }
}
