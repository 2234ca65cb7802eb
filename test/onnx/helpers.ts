/** Shared by the ONNX tests: random-weight U-Nets (every parameter non-trivial). */
import * as tf from '../../src/engine/tf.js';
import type { UNetConfig } from '../../src/model/config.js';
import { createUNet, unetParamSpecs, type UNet } from '../../src/model/unet.js';
import { mulberry32, Rng } from '../../src/rng.js';
import type { DiffuseConfig } from '../../src/config.js';
import { BatchSampler } from '../../src/data/batches.js';
import { modelParamShapes, saveCheckpoint } from '../../src/train/checkpoint.js';
import type { TrainerState } from '../../src/train/trainer.js';
import type { Weights } from '../../src/tensor.js';
import type { Graph } from '../../src/net/graph.js';

/**
 * createUNet(config, seed), then the parameters its initialiser leaves trivial
 * (zero biases, unit γ, zero β, the zero output conv) get random values too,
 * so that every weight is exercised. Returns the tfjs model and the weights.
 */
export async function randomUNet(config: UNetConfig, seed: number): Promise<{ unet: UNet; params: Weights }> {
  const unet = createUNet(config, seed);
  const rnd = mulberry32(seed * 7919 + 13);
  const params: Weights = {};
  for (const spec of unetParamSpecs(config)) {
    const v = unet.params.get(spec.name);
    if (v === undefined) throw new Error(`no variable ${spec.name}`);
    let data = Float32Array.from(await v.data());
    if (spec.init === 'zeros' || spec.init === 'ones') {
      const base = spec.init === 'ones' ? 1 : 0;
      const fanIn = spec.shape.length === 4 ? spec.shape[0]! * spec.shape[1]! * spec.shape[2]! : 0;
      const scale = fanIn > 0 ? Math.sqrt(3 / fanIn) : 0.3;
      data = data.map(() => base + (rnd() * 2 - 1) * scale);
      v.assign(tf.tensor(data, spec.shape, 'float32'));
    }
    params[spec.name] = { shape: [...spec.shape], data };
  }
  return { unet, params };
}

/** Random values for every parameter of a described network (none trivial: γ near 1, the rest around 0). */
export function randomWeights(graph: Graph, seed: number): Weights {
  const rnd = mulberry32(seed);
  const w: Weights = {};
  for (const s of graph.params) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const fan = s.shape.length > 1 ? s.shape.slice(0, -1).reduce((a, b) => a * b, 1) : 4;
    const base = s.init === 'ones' ? 1 : 0;
    w[s.name] = { shape: [...s.shape], data: Float32Array.from({ length: n }, () => base + (rnd() * 2 - 1) * Math.sqrt(3 / fan)) };
  }
  return w;
}

/** Deterministic uniform [-a, a) test data. */
export function uniform(n: number, seed: number, a = 1.5): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * a);
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

/** A checkpoint in `dir` of `config` whose every tensor is random (normal × scale; EMA at 3/4 of it), step 4. */
export async function saveRandomCheckpoint(dir: string, config: DiffuseConfig, seed: number, scale = 0.2): Promise<void> {
  const shapes = (await modelParamShapes())(config);
  const rng = new Rng(seed);
  const fill = (k: number): TrainerState['params'] => Object.fromEntries(Object.entries(shapes).map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return [name, { shape: [...shape], data: Float32Array.from({ length: n }, () => rng.normal() * k) }];
  }));
  await saveCheckpoint(dir, {
    config,
    state: { params: fill(scale), ema: fill(0.75 * scale), adam: { step: 4, m: fill(0), v: fill(0) } },
    trainingState: { step: 4, rng: rng.state(), sampler: new BatchSampler(10, 2, 1).state(), lossHistory: [], wallTimeSec: 1 },
  });
}
