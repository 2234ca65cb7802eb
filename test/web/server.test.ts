/**
 * The explorer's server and its onnxruntime-web ModelFn, without a browser:
 * routes, headers, path safety, and that the served ONNX on onnxruntime-web
 * (run here in Node) generates what onnxruntime-node does; for a latent model,
 * the served decoder, and generation through the same latent stage as the
 * Node pipeline.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as ortWeb from 'onnxruntime-web';
import { defaultConfig } from '../../src/config.js';
import { DiffuseError } from '../../src/errors.js';
import { BatchSampler } from '../../src/data/batches.js';
import { generate, generateWith } from '../../src/generate.js';
import { Rng } from '../../src/rng.js';
import { modelParamShapes, saveCheckpoint } from '../../src/train/checkpoint.js';
import type { TrainerState } from '../../src/train/trainer.js';
import { createOrtModelFn, ortAvailable } from '../../src/onnx/runner.js';
import { hostAllowed, modelDisplayName, startExplorerServer, type ConfigResponse, type ExplorerServer, type SamplesResponse } from '../../src/web/server.js';
import { shippedModelDir } from '../../src/shipped.js';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { hostname } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { createOrtWebDecoder, createOrtWebModelFn } from '../../src/web/ort-web-model.js';
import { latentStage } from '../../src/latent/scaled.js';
import { createPipeline } from '../../src/pipeline.js';
import { createAutoencoderRunner } from '../../src/latent/runner.js';
import { emojiMissing } from '../data/emoji-installed.js';
import { exportUNetToOnnx } from '../../src/onnx/export-unet.js';
import type { Weights } from '../../src/tensor.js';
import { randomLatentCheckpoint, tinyAutoencoder } from '../latent/helpers.js';

const config = defaultConfig({
  model: { imageSize: 8, baseChannels: 8, channelMults: [1, 2], attentionResolutions: [], groups: 4, numResBlocks: 1, numClasses: 10 },
  data: { imageSize: 8, labelNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] },
});

ortWeb.env.wasm.numThreads = 1;
/** A stand-in for onnxruntime-web's wasm runtime: 256 KB that compress well. */
const WASM = Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => (i * 7) % 13));

ortWeb.env.wasm.wasmPaths = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web')) + path.sep;

const noOrt = !(await ortAvailable()) && 'onnxruntime-node unavailable';

describe('explorer server', () => {
  let root = '';
  let ckpt = '';
  let web = '';
  let srv: ExplorerServer | undefined;

  before(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'diffuse-serve-'));
    const shapes = (await modelParamShapes())(config);
    const rng = new Rng(5);
    const fill = (k: number): TrainerState['params'] => Object.fromEntries(Object.entries(shapes).map(([name, shape]) => {
      const n = shape.reduce((a, b) => a * b, 1);
      return [name, { shape: [...shape], data: Float32Array.from({ length: n }, () => rng.normal() * k) }];
    }));
    ckpt = path.join(root, 'ckpt');
    await saveCheckpoint(ckpt, {
      config,
      state: { params: fill(0.1), ema: fill(0.1), adam: { step: 7, m: fill(0), v: fill(0) } },
      trainingState: { step: 7, rng: rng.state(), sampler: new BatchSampler(10, 2, 1).state(), lossHistory: [], wallTimeSec: 1 },
    });
    web = path.join(root, 'web');
    mkdirSync(path.join(web, 'assets'), { recursive: true });
    writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>explorer</title>');
    writeFileSync(path.join(web, 'assets', 'app.js'), 'export {};');
    mkdirSync(path.join(web, 'ort'));
    writeFileSync(path.join(web, 'ort', 'ort-wasm-test.wasm'), WASM);
    srv = await startExplorerServer({ checkpoint: ckpt, port: 0, webRoot: web, sampleImages: 12, allowedHosts: ['diffuse.example'] });
  });

  after(async () => {
    await srv?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const get = (p: string): Promise<Response> => fetch(new URL(p, srv!.url.replace('localhost', '127.0.0.1')));

  /** A raw GET (node:http, so the Host and Accept-Encoding headers are ours): status, headers and the bytes as sent. */
  const raw = (p: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> =>
    new Promise((ok, fail) => {
      const req = httpRequest({ host: '127.0.0.1', port: srv!.port, path: p, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', fail);
      req.end();
    });

  test('prints a localhost address and serves the page with cross-origin isolation headers', async () => {
    assert.match(srv!.url, /^http:\/\/localhost:\d+\/$/);
    const res = await get('/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.equal(res.headers.get('cross-origin-opener-policy'), 'same-origin');
    assert.equal(res.headers.get('cross-origin-embedder-policy'), 'require-corp');
    assert.match(await res.text(), /<title>explorer/);
    const js = await get('/assets/app.js');
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
  });

  test('serves the config, data set images and onnxruntime-web files; refuses paths outside', async () => {
    const cfg = (await (await get('/api/config')).json()) as ConfigResponse;
    assert.equal(cfg.step, 7);
    assert.deepEqual(cfg.config.model, config.model);
    assert.deepEqual(cfg.labelNames, config.data.labelNames);
    const samples = (await (await get('/api/samples')).json()) as SamplesResponse;
    assert.equal(samples.imageSize, 8);
    assert.equal(samples.channels, 1);
    assert.equal(samples.images.length, 12, samples.note);
    assert.deepEqual(samples.images.slice(0, 10).map((im) => im.label), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'first images show every class');
    for (const im of samples.images) {
      assert.equal(im.pixels.length, 64);
      assert.ok(im.pixels.every((p) => Number.isInteger(p) && p >= 0 && p <= 255));
    }
    const wasm = await get('/ort/ort-wasm-test.wasm');
    assert.equal(wasm.status, 200);
    assert.equal(wasm.headers.get('content-type'), 'application/wasm');
    assert.deepEqual(Buffer.from(await wasm.arrayBuffer()), WASM);
    for (const bad of ['/ort/../package.json', '/ort/%2e%2e%2fpackage.json', '/%2e%2e/package.json', '/../../package.json', '/nope.html']) {
      const res = await get(bad);
      assert.equal(res.status, 404, bad);
      await res.arrayBuffer();
    }
  });

  test('compresses text and wasm with gzip for browsers that accept it, and only for them', async () => {
    const gz = await raw('/ort/ort-wasm-test.wasm', { 'Accept-Encoding': 'gzip, deflate, br' });
    assert.equal(gz.status, 200);
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers['vary'], 'Accept-Encoding');
    assert.ok(gz.body.length < WASM.length / 4, `gzip sent ${gz.body.length} bytes for ${WASM.length}`);
    assert.deepEqual(gunzipSync(gz.body), WASM);
    const plain = await raw('/ort/ort-wasm-test.wasm', {});
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.deepEqual(plain.body, WASM);
    const refused = await raw('/ort/ort-wasm-test.wasm', { 'Accept-Encoding': 'gzip;q=0, deflate' });
    assert.equal(refused.headers['content-encoding'], undefined, 'gzip;q=0 means no gzip');
    const model = await raw('/api/model.onnx', { 'Accept-Encoding': 'gzip' });
    assert.equal(model.headers['content-encoding'], undefined, 'ONNX weights are sent as they are');
  });

  test('a pixel model has no decoder: /api/decoder.onnx is 404 with a reason, and the config says so', async () => {
    const r = await get('/api/decoder.onnx');
    assert.equal(r.status, 404);
    assert.match(((await r.json()) as { error: string }).error, /not a latent model/);
    const cfg = (await (await get('/api/config')).json()) as ConfigResponse;
    assert.equal(cfg.latentShape, null);
    assert.equal(cfg.config.latent, undefined);
  });

  test('caching: content-hashed assets for a year, the rest revalidated by ETag (304 when unchanged)', async () => {
    const asset = await raw('/assets/app.js', {});
    assert.match(String(asset.headers['cache-control']), /max-age=31536000.*immutable/);
    for (const p of ['/', '/ort/ort-wasm-test.wasm', '/api/config', '/api/model.onnx', '/api/samples']) {
      const first = await raw(p, {});
      assert.equal(first.status, 200, p);
      assert.equal(first.headers['cache-control'], 'no-cache', p);
      const etag = first.headers['etag'];
      assert.ok(typeof etag === 'string' && etag.length > 2, `${p} has an ETag`);
      const again = await raw(p, { 'If-None-Match': etag });
      assert.equal(again.status, 304, `${p} unchanged -> 304`);
      assert.equal(again.body.length, 0);
      const other = await raw(p, { 'If-None-Match': '"something-else"' });
      assert.equal(other.status, 200, `${p} with another ETag -> 200`);
    }
    // A rebuilt file gets a new ETag.
    const before = (await raw('/assets/app.js', {})).headers['etag'];
    writeFileSync(path.join(web, 'assets', 'app.js'), 'export const rebuilt = 1;');
    const after = await raw('/assets/app.js', { 'If-None-Match': String(before) });
    assert.equal(after.status, 200);
    assert.equal(after.body.toString(), 'export const rebuilt = 1;');
  });

  test('refuses a Host header that is not this machine (DNS rebinding), accepts addresses, localhost, its name and --allow-host names', async () => {
    for (const host of ['evil.example', 'evil.example:80', '127.0.0.1.evil.example', 'localhost.evil.example']) {
      const r = await raw('/api/config', { Host: host });
      assert.equal(r.status, 403, host);
      assert.match(JSON.parse(r.body.toString()).error as string, /is not this server's.*--allow-host/);
    }
    for (const host of [`127.0.0.1:${srv!.port}`, `localhost:${srv!.port}`, 'LOCALHOST', `[::1]:${srv!.port}`, 'app.localhost', '192.168.1.20:8080', 'diffuse.example', hostname()]) {
      assert.equal((await raw('/api/config', { Host: host })).status, 200, host);
    }
    assert.equal(hostAllowed(undefined), false);
  });

  test('no response names a folder of this machine: the model is named by its folder', async () => {
    const text = await (await get('/api/config')).text();
    const cfg = JSON.parse(text) as ConfigResponse;
    assert.equal(cfg.checkpoint, 'ckpt');
    assert.ok(!text.includes(root), '/api/config mentions no absolute path');
    assert.equal(modelDisplayName(path.join(root, 'run', 'checkpoint')), 'run');
    assert.equal(modelDisplayName(shippedModelDir('mnist')), 'mnist');
  });

  test('the served ONNX model on onnxruntime-web generates what onnxruntime-node does', { skip: noOrt }, async () => {
    const bytes = new Uint8Array(await (await get('/api/model.onnx')).arrayBuffer());
    const webFn = await createOrtWebModelFn(ortWeb, bytes, { backend: 'auto' });
    const nodeFn = await createOrtModelFn(bytes, { threads: 1 });
    try {
      assert.equal(webFn.backend, 'wasm');
      assert.match(webFn.fallbackReason ?? '', /WebGPU/);
      assert.deepEqual(webFn.imageShape, [8, 8, 1]);
      assert.equal(webFn.numClasses, 10);
      assert.equal(webFn.metadata['diffuse.timesteps'], '1000');
      const opts = {
        schedule: 'linear', timesteps: 1000, prediction: 'epsilon', imageSize: 8, channels: 1, sampler: 'ddpm', steps: 6, n: 3, seed: 9,
        condition: { cond: Int32Array.from([1, 2, 10]), nullCond: Int32Array.of(10), guidance: 1.5 },
      } as const;
      const a = await generate(webFn, opts);
      const b = await generate(nodeFn, opts);
      const d = a.images.reduce((m, v, i) => Math.max(m, Math.abs(v - b.images[i]!)), 0);
      assert.ok(d < 1e-4, `max abs difference ${d}`);
      await assert.rejects(webFn(new Float32Array(16 * 16), 5, [1, 16, 16, 1]), /expects input \[N,8,8,1\]/);
    } finally {
      await webFn.dispose();
      await nodeFn.dispose();
    }
  });

  test('bad input is a DiffuseError', async () => {
    await assert.rejects(createOrtWebModelFn(ortWeb, new Uint8Array([1, 2, 3, 4, 5])), (e: unknown) => e instanceof DiffuseError && /not a valid ONNX file|cannot load/.test(e.message));
    await assert.rejects(createOrtWebModelFn(ortWeb, new Uint8Array(0)), DiffuseError);
    await assert.rejects(createOrtWebModelFn(ortWeb, new Uint8Array(8), { backend: 'webgpu' }), DiffuseError);
    await assert.rejects(startExplorerServer({ checkpoint: path.join(root, 'missing'), webRoot: web }), DiffuseError);
    await assert.rejects(startExplorerServer({ checkpoint: ckpt, webRoot: path.join(root, 'no-page') }), /not built.*npm run build/);
    await assert.rejects(startExplorerServer({ checkpoint: ckpt, webRoot: web, port: 70000 }), DiffuseError);
    await assert.rejects(startExplorerServer({ checkpoint: ckpt, webRoot: web, port: srv!.port }), /already in use/);
  });
});

describe('explorer server, latent model', () => {
  // 8x8x3 images, 4x4x4 latents (f = 2), random weights; its data set is emoji (at 8 px) and its autoencoder came from a folder of this machine
  const aeConfig = tinyAutoencoder({ latentChannels: 4 });
  let root = '';
  let lconfig = defaultConfig();
  let params: Weights = {};
  let autoencoder: Weights = {};
  let srv: ExplorerServer | undefined;
  const get = (p: string): Promise<Response> => fetch(new URL(p, srv!.url.replace('localhost', '127.0.0.1')));

  before(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'diffuse-serve-latent-'));
    const ckpt = path.join(root, 'latent');
    ({ config: lconfig, params, autoencoder } = await randomLatentCheckpoint(ckpt, { autoencoder: aeConfig, dataset: 'emoji', source: path.join(root, 'runs', 'vae') }));
    const web = path.join(root, 'web');
    mkdirSync(web);
    writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>explorer</title>');
    srv = await startExplorerServer({ checkpoint: ckpt, port: 0, webRoot: web, sampleImages: 6 });
  });

  after(async () => {
    await srv?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('serves a latent model: the config has its latent shape and scaling factor, and names no folder of this machine', async () => {
    const text = await (await get('/api/config')).text();
    const cfg = JSON.parse(text) as ConfigResponse;
    assert.deepEqual(cfg.latentShape, [4, 4, 4]);
    assert.equal(cfg.config.latent?.scalingFactor, 0.5);
    assert.deepEqual(cfg.config.latent?.autoencoder, aeConfig);
    assert.deepEqual([cfg.config.model.imageSize, cfg.config.model.inChannels], [4, 4], 'the U-Net works on the latents');
    assert.deepEqual(cfg.config.latent?.source, { checkpoint: 'vae', step: 3 }, 'the autoencoder is named by its folder');
    assert.ok(!text.includes(root), '/api/config mentions no absolute path');
  });

  test('serves the decoder as ONNX (cached, with an ETag) that decodes as the Node runner does', { skip: noOrt }, async () => {
    const res = await get('/api/decoder.onnx');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    const etag = res.headers.get('etag');
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.equal((await get('/api/decoder.onnx')).headers.get('etag'), etag, 'exported once');
    const dec = await createOrtWebDecoder(ortWeb, bytes);
    const node = await createAutoencoderRunner(aeConfig, autoencoder, { engine: 'onnx', threads: 1, parts: 'decoder' });
    try {
      assert.equal(dec.backend, 'wasm');
      assert.deepEqual([dec.latentShape, dec.imageShape], [[4, 4, 4], [8, 8, 3]]);
      assert.deepEqual(dec.config, aeConfig);
      assert.equal(dec.metadata['diffuse.scaling_factor'], '0.5');
      const z = new Rng(2).normalArray(3 * 4 * 4 * 4);
      const a = await dec.decode(z, 3);
      const b = await node.decode(z, 3);
      assert.equal(a.length, 3 * 8 * 8 * 3);
      const d = a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
      assert.ok(d < 1e-4, `decoder on onnxruntime-web vs the Node runner: max abs difference ${d}`);
      assert.ok(Math.max(...a) - Math.min(...a) > 0.01, 'the decoder makes images that are not flat');
      await assert.rejects(dec.decode(z, 2), (e: unknown) => e instanceof DiffuseError && /expects 2·4·4·4 latent values/.test(e.message));
    } finally {
      await dec.dispose();
      await node.dispose();
    }
    // The U-Net's file is not a decoder.
    const unet = exportUNetToOnnx(lconfig.model, params);
    await assert.rejects(createOrtWebDecoder(ortWeb, unet), (e: unknown) => e instanceof DiffuseError && /not a diffuse-ts decoder export/.test(e.message));
  });

  test('generation with the served U-Net and decoder on onnxruntime-web (generateWith + latentStage) equals the Node pipeline\'s', { skip: noOrt }, async () => {
    const cfg = ((await (await get('/api/config')).json()) as ConfigResponse).config;
    const net = await createOrtWebModelFn(ortWeb, new Uint8Array(await (await get('/api/model.onnx')).arrayBuffer()));
    const dec = await createOrtWebDecoder(ortWeb, new Uint8Array(await (await get('/api/decoder.onnx')).arrayBuffer()));
    const pipe = await createPipeline(lconfig, params, autoencoder, { engine: 'onnx', threads: 1 });
    try {
      assert.deepEqual(net.imageShape, [4, 4, 4]);
      const req = { sampler: 'ddim', steps: 4, n: 2, seed: 8 } as const;
      const web = await generateWith({ config: cfg, model: net, latent: latentStage(cfg.latent!, dec) }, req);
      const ref = await generateWith(pipe, req);
      assert.deepEqual(web.shape, [2, 8, 8, 3]);
      assert.ok(web.images.every((v) => v >= -1 && v <= 1));
      const d = web.images.reduce((m, v, i) => Math.max(m, Math.abs(v - ref.images[i]!)), 0);
      assert.ok(d < 1e-4, `browser-side generation vs the Node pipeline: max abs difference ${d}`);
    } finally {
      await net.dispose();
      await dec.dispose();
      await pipe.dispose();
    }
  });

  test('offers emoji images at the model\'s size for the forward view', { skip: emojiMissing }, async () => {
    const samples = (await (await get('/api/samples')).json()) as SamplesResponse;
    assert.equal(samples.dataset, 'emoji');
    assert.equal(samples.images.length, 6, samples.note);
    for (const im of samples.images) assert.equal(im.pixels.length, 8 * 8 * 3);
    assert.ok(samples.images.some((im) => new Set(im.pixels).size > 2), 'the images are not blank');
  });
});
