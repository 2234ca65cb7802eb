/**
 * Latent diffusion's speeds, measured in one run (docs/latent.md):
 *
 *   - autoencoder training, img/s (batch 16, 2 workers) for the f = 4 and f = 8 shapes;
 *   - encode and decode, img/s, on ONNX Runtime and tfjs;
 *   - U-Net training, img/s (batch 64, 2 workers) on 16x16x4 latents (the emoji
 *     model's shape) against the same U-Net on 64x64x3 pixels: the baseline
 *     latent diffusion is there to beat;
 *   - sampling one image (DDIM 50 steps, guidance: two U-Net evaluations per
 *     step, then the decoder) on ONNX Runtime, latent vs pixel;
 *   - the latent data: encoding the 7,238 training emoji once vs encoding every
 *     batch, and drawing a batch from the cache.
 *
 * Random weights (speed does not depend on them). Run under the bench lock:
 *   flock -x /tmp/diffuse-bench.lock node dist/bench/latent.js [--steps N] [--only ae|unet|sample|cache]
 * Last line: one JSON object with every figure.
 */
import { initEngine } from '../src/engine/backend.js';
import { defaultConfig, type DiffuseConfig } from '../src/config.js';
import { defaultAutoencoderConfig, latentShape, type AutoencoderConfig } from '../src/model/autoencoder-config.js';
import { autoencoderNetwork, describeAutoencoder } from '../src/model/autoencoder-description.js';
import { describeUNet } from '../src/model/unet.js';
import { networkGraph } from '../src/net/network.js';
import { initParams } from '../src/net/params.js';
import { unetGraph } from '../src/model/unet-description.js';
import { createNetworkTrainer, createTrainer } from '../src/train/trainer.js';
import { createAutoencoderRunner } from '../src/latent/runner.js';
import { createPipeline, generateWith } from '../src/pipeline.js';
import { textEncoderFor } from '../src/text/captions.js';
import { datasetCaptions } from '../src/data/index.js';
import { promptCondition } from '../src/guidance/condition.js';
import { Rng } from '../src/rng.js';
import type { Graph } from '../src/net/graph.js';
import { loadEmoji } from '../src/data/emoji.js';
import { gatherBatch } from '../src/data/batches.js';
import { encodeDataset, latentBatch } from '../src/latent/space.js';
import type { Weights } from '../src/tensor.js';

const argv = process.argv.slice(2);
const num = (name: string, d: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : d;
};
const only = ((): string | undefined => { const i = argv.indexOf('--only'); return i >= 0 ? argv[i + 1] : undefined; })();
const STEPS = num('--steps', 4);
const out: Record<string, number> = {};

function weightsOf(graph: Graph, seed: number): Weights {
  const w: Weights = {};
  for (const [name, data] of initParams(graph.params, seed)) {
    const s = graph.params.find((p) => p.name === name)!;
    w[name] = { shape: [...s.shape], data: data.map((v, i) => (v === 0 ? 1e-3 * Math.sin(i) : v)) };
  }
  return w;
}

async function timed<T>(label: string, n: number, f: () => Promise<T>): Promise<number> {
  await f(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await f();
  const s = (performance.now() - t0) / 1000 / n;
  process.stderr.write(`${label}: ${s.toFixed(3)} s\n`);
  return s;
}

const AE: Record<string, AutoencoderConfig> = {
  f4: defaultAutoencoderConfig({ baseChannels: 16, channelMults: [1, 2, 4] }),
  f8: defaultAutoencoderConfig({ baseChannels: 16, channelMults: [1, 2, 4, 4] }),
};

/** The emoji text model's U-Net on latents of `ae`, and the same U-Net on pixels. */
function unetConfigs(ae: AutoencoderConfig, model: Partial<DiffuseConfig['model']>): { latent: DiffuseConfig; pixel: DiffuseConfig } {
  const text = textEncoderFor(datasetCaptions({ name: 'emoji' }).flat());
  const [s] = latentShape(ae);
  const base = { data: { dataset: 'emoji', imageSize: 64, channels: 3 as const } };
  const attentionResolutions = model.attentionResolutions ?? [s / 2];
  const latent = defaultConfig({ ...base, latent: { autoencoder: ae, scalingFactor: 1, posterior: 'sample' }, model: { ...model, attentionResolutions } });
  const pixel = defaultConfig({ ...base, model: { ...model, channelMults: [...(model.channelMults ?? [1, 2, 2]), 2, 2], attentionResolutions } });
  for (const c of [latent, pixel]) c.model.text = text;
  return { latent, pixel };
}

async function main(): Promise<void> {
  await initEngine({ backend: 'wasm' });
  if (only === undefined || only === 'ae') {
    for (const [name, c] of Object.entries(AE)) {
      process.stderr.write(`${describeAutoencoder(c)}\n`);
      const B = 16;
      const tr = await createNetworkTrainer({ network: autoencoderNetwork, config: c, loss: { kind: 'vae', recon: 'l1', klWeight: 1e-6 } }, { seed: 0, workers: 2 });
      const rng = new Rng(1);
      const [s, , l] = latentShape(c);
      const x = rng.normalArray(B * 64 * 64 * 3).map((v) => Math.tanh(v));
      try {
        const sec = await timed(`autoencoder ${name} training step (batch ${B}, 2 workers)`, STEPS, () => tr.step({ n: B, inputs: { x, target: x, noise: rng.normalArray(B * s * s * l) } }, { lr: 1e-4, clipNorm: 1, emaDecay: 0.99 }));
        out[`ae_${name}_train_img_s`] = B / sec;
      } finally {
        await tr.dispose();
      }
      const w = weightsOf(networkGraph(autoencoderNetwork, c), 1);
      for (const engine of ['onnx', 'tfjs'] as const) {
        const r = await createAutoencoderRunner(c, w, { engine, batchSize: 64 });
        const n = 64;
        const img = rng.normalArray(n * 64 * 64 * 3).map((v) => Math.tanh(v));
        const z = rng.normalArray(n * s * s * l);
        try {
          out[`ae_${name}_encode_${engine}_img_s`] = n / (await timed(`${name} encode ${n} on ${engine}`, 2, () => r.encode(img, n)));
          out[`ae_${name}_decode_${engine}_img_s`] = n / (await timed(`${name} decode ${n} on ${engine}`, 2, () => r.decode(z, n)));
        } finally {
          await r.dispose();
        }
      }
    }
  }
  const unets: Record<string, Partial<DiffuseConfig['model']>> = {
    b64: { baseChannels: 64, channelMults: [1, 2, 2], numResBlocks: 1 },
    b48: { baseChannels: 48, channelMults: [1, 2, 2], numResBlocks: 1 },
    b48a16: { baseChannels: 48, channelMults: [1, 2, 2], numResBlocks: 1, attentionResolutions: [8, 16] },
  };
  if (only === undefined || only === 'unet') {
    for (const [name, m] of Object.entries(unets)) {
      const { latent, pixel } = unetConfigs(AE['f4']!, m);
      for (const [space, cfg] of [['latent', latent], ['pixel', pixel]] as const) {
        if (space === 'pixel' && name !== 'b64') continue;
        process.stderr.write(`${describeUNet(cfg.model)}\n`);
        // the pixel U-Net at 64x64 does not fit a wasm heap 32 images at a time: 8 per pass
        const B = space === 'pixel' ? 16 : 64;
        const tr = await createTrainer(cfg.model, { seed: 0, workers: 2, ...(space === 'pixel' ? { microBatch: 8 } : {}) });
        const rng = new Rng(2);
        const S = cfg.model.imageSize, C = cfg.model.inChannels;
        const xt = rng.normalArray(B * S * S * C);
        const cond = Int32Array.from({ length: B * cfg.model.text!.maxTokens }, (_, i) => (i % 17 < 4 ? 1 + (i % 50) : 0));
        try {
          const sec = await timed(`U-Net ${name} on ${space} ${S}x${S}x${C}: training step (batch ${B}, 2 workers)`, space === 'pixel' ? 1 : STEPS,
            () => tr.step({ xt, t: new Float32Array(B).fill(500), target: xt, shape: [B, S, S, C], cond }, { lr: 1e-4, clipNorm: 1, emaDecay: 0.99 }));
          out[`unet_${name}_${space}_train_img_s`] = B / sec;
        } finally {
          await tr.dispose();
        }
      }
    }
  }
  if (only === undefined || only === 'sample') {
    const ae = AE['f4']!;
    const { latent, pixel } = unetConfigs(ae, unets['b64']!);
    for (const [space, cfg] of [['latent', latent], ['pixel', pixel]] as const) {
      const w = weightsOf(unetGraph(cfg.model), 3);
      const pipe = await createPipeline(cfg, w, space === 'latent' ? weightsOf(networkGraph(autoencoderNetwork, ae), 4) : undefined, { engine: 'onnx' });
      const n = space === 'latent' ? 16 : 4;
      try {
        const condition = promptCondition(cfg, new Array<string>(n).fill('red apple'), 2);
        const sec = await timed(`sampling ${n} images on ${space} (DDIM 50, guidance 2, ORT${space === 'latent' ? ', decoding included' : ''})`, 1,
          () => generateWith(pipe, { sampler: 'ddim', steps: 50, n, seed: 1, condition, batchSize: n }));
        out[`sample_${space}_s_per_image`] = sec / n;
      } finally {
        await pipe.dispose();
      }
    }
  }
  if (only === undefined || only === 'cache') {
    // the latent stage's two ways: encode every batch, or encode the training set once and draw from the cache
    const ae = AE['f4']!;
    const data = await loadEmoji({ imageSize: 64 });
    const runner = await createAutoencoderRunner(ae, weightsOf(networkGraph(autoencoderNetwork, ae), 5), { engine: 'onnx' });
    try {
      const t0 = performance.now();
      const latents = await encodeDataset(runner, data, { progress: null });
      const enc = (performance.now() - t0) / 1000;
      process.stderr.write(`encoding the ${data.shape[0]} training emoji once (ORT): ${enc.toFixed(1)} s\n`);
      out['cache_encode_all_s'] = enc;
      const rng = new Rng(7);
      const B = 64;
      const idx = Int32Array.from({ length: B }, (_, i) => (i * 113) % data.shape[0]);
      out['cache_batch_s'] = await timed('a batch of 64 drawn from the cache (posterior samples, scaled)', 20, async () => latentBatch(latents, idx, 'sample', 0.5, rng));
      const x = gatherBatch(data, idx).x;
      out['encode_batch_s'] = await timed('encoding a batch of 64 (ORT)', 3, () => runner.encode(x, B));
    } finally {
      await runner.dispose();
    }
  }
  for (const [k, v] of Object.entries(out)) process.stdout.write(`${k.padEnd(36)} ${v.toFixed(3)}\n`);
  if (out['unet_b64_latent_train_img_s'] !== undefined && out['unet_b64_pixel_train_img_s'] !== undefined) {
    process.stdout.write(`latent / pixel training speed: ${(out['unet_b64_latent_train_img_s'] / out['unet_b64_pixel_train_img_s']).toFixed(1)}x\n`);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

await main();
