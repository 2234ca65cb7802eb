/**
 * A checkpoint of K = 2 expert networks on the ONNX side: `diffuse export`
 * writes one ONNX file per expert, each matching that expert's tfjs U-Net;
 * the explorer's server offers one model per expert, and onnxruntime-web,
 * one session per expert routed by t, generates what onnxruntime-node does.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as ortWeb from 'onnxruntime-web';
import { command as exportCommand, expertOnnxFile } from '../../src/cli/export.js';
import { defaultConfig, withExperts } from '../../src/config.js';
import { expertWeights } from '../../src/diffusion/experts.js';
import { generate } from '../../src/generate.js';
import { exportCheckpointToOnnx, ONNX_UNET_CONFIG_KEY } from '../../src/onnx/export-unet.js';
import { decodeOnnxModel } from '../../src/onnx/proto.js';
import { createOrtModelFn, ortAvailable } from '../../src/onnx/runner.js';
import { loadPipeline, tfjsModelFn } from '../../src/pipeline.js';
import { loadModelWeights } from '../../src/train/checkpoint.js';
import { createOrtWebModelFn, routeOrtWebModels } from '../../src/web/ort-web-model.js';
import { startExplorerServer, type ConfigResponse, type ExplorerServer } from '../../src/web/server.js';
import { maxAbsDiff, saveRandomCheckpoint, uniform } from './helpers.js';

const config = withExperts(defaultConfig({
  model: { imageSize: 8, baseChannels: 8, channelMults: [1, 2], attentionResolutions: [4], groups: 4, numResBlocks: 1, numClasses: 3 },
  data: { imageSize: 8, labelNames: ['a', 'b', 'c'] },
}), 2, 't');

ortWeb.env.wasm.numThreads = 1;
ortWeb.env.wasm.wasmPaths = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web')) + path.sep;
const noOrt = !(await ortAvailable()) && 'onnxruntime-node unavailable';

describe('expert networks on ONNX', () => {
  let root = '';
  let ckpt = '';
  let web = '';
  let srv: ExplorerServer | undefined;

  before(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'diffuse-onnx-experts-'));
    ckpt = path.join(root, 'ckpt');
    await saveRandomCheckpoint(ckpt, config, 11);
    web = path.join(root, 'web');
    mkdirSync(web, { recursive: true });
    writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>explorer</title>');
    srv = await startExplorerServer({ checkpoint: ckpt, port: 0, webRoot: web, sampleImages: 0 });
  });

  after(async () => {
    await srv?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('diffuse export writes one ONNX file per expert, each matching that expert\'s tfjs U-Net', { skip: noOrt }, async () => {
    const out = path.join(root, 'model.onnx');
    const orig = process.stdout.write.bind(process.stdout);
    let said = '';
    process.stdout.write = ((c: string | Uint8Array): boolean => { said += String(c); return true; }) as typeof process.stdout.write;
    try {
      assert.equal(await exportCommand.execute(['--checkpoint', ckpt, '--out', out]), 0);
    } finally {
      process.stdout.write = orig;
    }
    assert.match(said, /model-expert0\.onnx: ONNX opset 17, expert 0 of 2 \(t 0–499\), ema weights of step 4/);
    assert.match(said, /model-expert1\.onnx: .*expert 1 of 2 \(t 500–999\)/);
    const { params } = await loadModelWeights(ckpt, 'ema');
    const nets = expertWeights(2, params);
    const { experts: _, ...single } = config;
    const x = uniform(3 * 64, 5);
    const classes = Int32Array.of(0, 2, 3);
    const outputs: Float32Array[] = [];
    for (let k = 0; k < 2; k++) {
      const file = expertOnnxFile(out, k);
      const meta = decodeOnnxModel(readFileSync(file)).metadata;
      assert.equal(meta['diffuse.expert'], String(k));
      assert.equal(meta['diffuse.experts'], '2');
      assert.deepEqual(JSON.parse(meta['diffuse.expert_boundaries']!), [0, 500, 1000]);
      assert.deepEqual(JSON.parse(meta[ONNX_UNET_CONFIG_KEY]!), config.model);
      const ort = await createOrtModelFn(file, { threads: 1 });
      const tfjs = await tfjsModelFn(single, nets[k]!);
      try {
        for (const t of [0, 321, 777]) {
          const got = await ort(x, t, [3, 8, 8, 1], classes);
          const want = await tfjs.model(x, t, [3, 8, 8, 1], classes);
          const d = maxAbsDiff(got, want);
          assert.ok(d < 1e-4, `expert ${k} t=${t}: ONNX vs tfjs max abs diff ${d}`);
        }
        outputs.push(await ort(x, 321, [3, 8, 8, 1], classes));
      } finally {
        await ort.dispose();
        await tfjs.dispose();
      }
    }
    assert.ok(maxAbsDiff(outputs[0]!, outputs[1]!) > 1e-3, 'the two experts are different networks');
  });

  test('the server offers one ONNX model per expert; the page\'s routed sessions generate what onnxruntime-node does', { skip: noOrt }, async () => {
    const get = (p: string): Promise<Response> => fetch(new URL(p, srv!.url.replace('localhost', '127.0.0.1')));
    const cfg = (await (await get('/api/config')).json()) as ConfigResponse;
    assert.deepEqual(cfg.config.experts, config.experts);
    const plain = await get('/api/model.onnx');
    assert.equal(plain.status, 404);
    assert.match(((await plain.json()) as { error: string }).error, /2 expert networks: ask for api\/model\.onnx\?expert=0\.\.1/);
    for (const bad of ['2', '-1', '1x', '']) {
      const r = await get(`/api/model.onnx?expert=${bad}`);
      assert.equal(r.status, 404, bad);
      await r.arrayBuffer();
    }
    const { params, step } = await loadModelWeights(ckpt, 'ema');
    const files = exportCheckpointToOnnx(config, params, { weights: 'ema', step });
    const served: Uint8Array[] = [];
    for (let k = 0; k < 2; k++) {
      const bytes = new Uint8Array(await (await get(`/api/model.onnx?expert=${k}`)).arrayBuffer());
      assert.deepEqual(bytes, files[k], `expert ${k}`);
      served.push(bytes);
    }
    const web = routeOrtWebModels([await createOrtWebModelFn(ortWeb, served[0]!), await createOrtWebModelFn(ortWeb, served[1]!)], config.experts!.boundaries);
    const pipe = await loadPipeline(ckpt, { engine: 'onnx', threads: 1 });
    try {
      assert.equal(web.numClasses, 3);
      const opts = {
        schedule: 'linear', timesteps: 1000, prediction: 'epsilon', imageSize: 8, channels: 1, sampler: 'dpm-solver', steps: 8, n: 3, seed: 2,
        condition: { cond: Int32Array.of(0, 1, 2), nullCond: Int32Array.of(3), guidance: 1 },
      } as const;
      const a = await generate(web, opts);
      const b = await generate(pipe.model, opts);
      const d = maxAbsDiff(a.images, b.images);
      assert.ok(d < 1e-4, `web vs node max abs diff ${d}`);
    } finally {
      await web.dispose();
      await pipe.dispose();
    }
  });
});
