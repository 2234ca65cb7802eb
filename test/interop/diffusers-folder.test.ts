/**
 * diffusers folders as checkpoints: a DDIMPipeline folder samples what
 * diffusers' own DDIMPipeline loop does (same x_T, 10 steps, both engines);
 * `diffuse sample --checkpoint` takes pipeline folders and bare unet/ folders
 * (the scheduler picks the sampler, --sampler overrides it); the explorer
 * serves a pipeline's U-Net; and every malformed folder is one line.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { join } from 'node:path';
import * as ortWeb from 'onnxruntime-web';
import { DiffuseError } from '../../src/errors.js';
import { findDiffusersFolder, loadDiffusersPipeline } from '../../src/interop/diffusers-folder.js';
import { encodeSafetensors, readSafetensors } from '../../src/io/safetensors.js';
import { loadPipeline } from '../../src/pipeline.js';
import { makeSchedule } from '../../src/schedule.js';
import { createSampler } from '../../src/samplers/factory.js';
import { sample } from '../../src/samplers/loop.js';
import { Rng } from '../../src/rng.js';
import { ortAvailable } from '../../src/onnx/runner.js';
import { startExplorerServer } from '../../src/web/server.js';
import { createOrtWebModelFn } from '../../src/web/ort-web-model.js';
import type { ModelFn, Shape4 } from '../../src/diffusion/types.js';
import { cli, tempDir } from '../cli/fixtures.js';
import { FIXTURES, fixtureIO, relErr } from './diffusers-fixtures.js';

const noOrt = !(await ortAvailable()) && 'onnxruntime-node unavailable';
const isDE = (re: RegExp) => (e: unknown): boolean => e instanceof DiffuseError && re.test(e.message) && !e.message.includes('\n');
let root = '';

before(() => {
  root = tempDir('diffusers-folder');
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A copy of a fixture folder to damage. */
function copy(name: string, as: string): string {
  const dir = join(root, as);
  cpSync(join(FIXTURES, name), dir, { recursive: true });
  return dir;
}

/** One line on stderr, exit 1, matching `re`. */
async function fails(argv: string[], re: RegExp): Promise<void> {
  const r = await cli(argv);
  assert.equal(r.code, 1, r.err);
  const lines = r.err.trim().split('\n');
  assert.equal(lines.length, 1, r.err);
  assert.match(lines[0]!, re);
}

for (const engine of ['onnx', 'tfjs'] as const) {
  test(`a DDIMPipeline folder samples what diffusers' DDIMPipeline does (${engine})`, { skip: noOrt }, async () => {
    const dir = join(FIXTURES, 'ddim-class');
    const pipe = await loadPipeline(dir, { engine, batchSize: 2 });
    try {
      const s = pipe.sampling!;
      assert.equal(s.className, 'DDIMScheduler');
      assert.equal(s.sampler, 'ddim');
      assert.equal(pipe.config.diffusion.schedule, 'scaled-linear');
      assert.equal(pipe.config.model.numClasses, 4);
      const want = fixtureIO('ddim-class').pipeline!;
      const cfg = pipe.config;
      const sampler = createSampler(s.sampler, {
        ...s.samplerOptions, schedule: makeSchedule(cfg.diffusion.schedule, cfg.diffusion.timesteps, cfg.diffusion), prediction: cfg.diffusion.prediction,
        ...(s.clip !== false ? { clipX0: s.clip } : {}),
      });
      const seen: number[] = [];
      const model: ModelFn = (x, t, shape) => {
        seen.push(t);
        return pipe.model(x, t, shape, Int32Array.from(want.classes));
      };
      const shape: Shape4 = [2, 8, 8, 1];
      const images = await sample(model, sampler, shape, { rng: new Rng(0), steps: want.steps, xT: Float32Array.from(want.xT) });
      assert.deepEqual(seen, want.timesteps);
      const e = relErr(images, want.images);
      assert.ok(e <= 1e-4, `${engine}: ${e}`);
    } finally {
      await pipe.dispose();
    }
  });
}

test('diffuse sample: pipeline folders, the scheduler picks the sampler, --sampler overrides, classes', { skip: noOrt }, async () => {
  const out = join(root, 'grid.png');
  let r = await cli(['sample', '--checkpoint', join(FIXTURES, 'ddpm'), '--n', '2', '--sampling-steps', '5', '--out', out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /2 images, ddpm 5 steps, .* \(diffusers folder .*ddpm, its DDPMScheduler\)/);
  assert.ok(existsSync(out));
  r = await cli(['sample', '--checkpoint', join(FIXTURES, 'ddpm'), '--sampler', 'euler', '--n', '2', '--sampling-steps', '4', '--out', out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /euler 4 steps, .*its EulerDiscreteScheduler/);
  r = await cli(['sample', '--checkpoint', join(FIXTURES, 'ddim-class'), '--class', '2', '--guidance', '1', '--n', '2', '--sampling-steps', '3', '--out', out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /ddim 3 steps, guidance 1/);
  // v-prediction, trailing spacing, F16 weights
  r = await cli(['sample', '--checkpoint', join(FIXTURES, 'plain'), '--n', '1', '--sampling-steps', '3', '--out', out]);
  assert.equal(r.code, 0, r.err);
});

test('a bare unet/ folder: the scheduler beside it, or --scheduler-config, or one line', { skip: noOrt }, async () => {
  const out = join(root, 'unet.png');
  let r = await cli(['sample', '--checkpoint', join(FIXTURES, 'ddpm', 'unet'), '--n', '1', '--sampling-steps', '2', '--out', out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /its DDPMScheduler/);
  const lone = join(root, 'lone-unet');
  cpSync(join(FIXTURES, 'ddpm', 'unet'), lone, { recursive: true });
  await fails(['sample', '--checkpoint', lone, '--out', out], /^diffuse: .*lone-unet: no scheduler config \(looked for .*scheduler_config\.json\); the noise schedule is not in unet\/: point --checkpoint at the pipeline folder, or give --scheduler-config FILE$/);
  r = await cli(['sample', '--checkpoint', lone, '--scheduler-config', join(FIXTURES, 'ddim-class', 'scheduler', 'scheduler_config.json'), '--n', '1', '--sampling-steps', '2', '--out', out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /ddim 2 steps/);
  assert.equal(findDiffusersFolder(join(FIXTURES, 'ddpm', 'unet'))?.layout, 'unet');
});

test('malformed diffusers folders: one line each', async () => {
  const out = join(root, 'bad.png');
  // a config with a block type diffuse-ts does not implement
  const blocks = copy('ddpm', 'bad-blocks');
  const cfgFile = join(blocks, 'unet', 'config.json');
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  writeFileSync(cfgFile, JSON.stringify({ ...cfg, up_block_types: ['AttnSkipUpBlock2D', 'UpBlock2D'] }));
  await fails(['sample', '--checkpoint', blocks, '--out', out], /^diffuse: .*config\.json: UNet2DModel field 'up_block_types' has block type "AttnSkipUpBlock2D", which diffuse-ts does not implement/);
  // safetensors whose shapes disagree with the config
  const shapes = copy('ddpm', 'bad-shapes');
  const wfile = join(shapes, 'unet', 'diffusion_pytorch_model.safetensors');
  const t = Object.fromEntries(Object.entries(readSafetensors(wfile).tensors).map(([k, v]) => [k, { shape: v.shape, data: v.data }]));
  t['conv_out.weight'] = { shape: [3, 4, 1, 9], data: t['conv_out.weight']!.data };
  writeFileSync(wfile, encodeSafetensors(t));
  await fails(['sample', '--checkpoint', shapes, '--out', out], /^diffuse: .*diffusion_pytorch_model\.safetensors: tensor "conv_out\.weight" has shape \[3,4,1,9\], the config needs \[3,4,3,3\]$/);
  // ... or whose names do
  delete t['conv_out.weight'];
  writeFileSync(wfile, encodeSafetensors(t));
  await fails(['sample', '--checkpoint', shapes, '--out', out], /missing tensor "conv_out\.weight" \[3,4,3,3\], which the config needs$/);
  // a missing scheduler config
  const nosched = copy('ddpm', 'no-scheduler');
  rmSync(join(nosched, 'scheduler'), { recursive: true });
  await fails(['sample', '--checkpoint', nosched, '--out', out], /no-scheduler: no scheduler config \(looked for .*no-scheduler\/scheduler\/scheduler_config\.json\)/);
  // a pipeline whose images are not the U-Net's (an autoencoder): refused, not sampled as if they were
  const latent = copy('ddpm', 'latent');
  const index = JSON.parse(readFileSync(join(latent, 'model_index.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(latent, 'model_index.json'), JSON.stringify({ ...index, _class_name: 'LDMPipeline', vqvae: ['diffusers', 'VQModel'] }));
  await fails(['sample', '--checkpoint', latent, '--out', out], /model_index\.json: the pipeline LDMPipeline has a 'vqvae' \(VQModel\); only U-Net \+ scheduler pipelines/);
  // weights only as a pickle
  const pickle = copy('ddpm', 'pickle');
  rmSync(join(pickle, 'unet', 'diffusion_pytorch_model.safetensors'));
  writeFileSync(join(pickle, 'unet', 'diffusion_pytorch_model.bin'), 'not read');
  await fails(['sample', '--checkpoint', pickle, '--out', out], /only diffusion_pytorch_model\.bin \(a PyTorch pickle\) is there; diffuse-ts reads safetensors/);
  // a UNet2DConditionModel: needs a text encoder's hidden states
  const cond = join(root, 'cond-unet');
  cpSync(join(FIXTURES, 'cond', 'unet'), cond, { recursive: true });
  await fails(['sample', '--checkpoint', cond, '--scheduler-config', join(FIXTURES, 'ddpm', 'scheduler', 'scheduler_config.json'), '--out', out],
    /a UNet2DConditionModel attends to encoder_hidden_states from a text encoder \(e\.g\. CLIP\), which diffuse-ts does not run/);
  // an unsupported scheduler, unless --sampler reads it as another class
  const pndm = copy('ddpm', 'pndm');
  const sfile = join(pndm, 'scheduler', 'scheduler_config.json');
  writeFileSync(sfile, JSON.stringify({ ...JSON.parse(readFileSync(sfile, 'utf8')) as object, _class_name: 'PNDMScheduler' }));
  await fails(['sample', '--checkpoint', pndm, '--out', out], /_class_name "PNDMScheduler" is not supported .*choose a sampler/);
  assert.equal(loadDiffusersPipeline(findDiffusersFolder(pndm)!, { sampler: 'ddim' }).sampling.sampler, 'ddim');
  // --scheduler-config on one of our checkpoints
  await fails(['sample', '--scheduler-config', sfile, '--out', out], /--scheduler-config is for diffusers folders/);
  await fails(['sample', '--checkpoint', join(FIXTURES, 'ddpm'), '--weights', 'model', '--out', out], /--weights chooses between a checkpoint's EMA and raw weights; a diffusers folder holds one set/);
  mkdirSync(join(root, 'empty'));
  assert.equal(findDiffusersFolder(join(root, 'empty')), undefined);
  const ddpmScheduler = join(FIXTURES, 'ddpm', 'scheduler', 'scheduler_config.json');
  assert.throws(() => loadDiffusersPipeline({ dir: 'x', layout: 'unet', unetDir: join(root, 'nope'), schedulerFile: ddpmScheduler }), isDE(/nope: no such folder/));
});

test('the explorer serves a diffusers pipeline: its ONNX model on onnxruntime-web gives diffusers\' output', { skip: noOrt }, async () => {
  const web = join(root, 'web');
  mkdirSync(web, { recursive: true });
  writeFileSync(join(web, 'index.html'), '<!doctype html><title>explorer</title>');
  const srv = await startExplorerServer({ checkpoint: join(FIXTURES, 'ddim-class'), port: 0, webRoot: web, sampleImages: 0 });
  try {
    const base = srv.url.replace('localhost', '127.0.0.1');
    const cfg = (await (await fetch(new URL('/api/config', base))).json()) as { config: { model: { numClasses: number; downsamplePadding?: string }; diffusion: { schedule: string } } };
    assert.equal(cfg.config.model.numClasses, 4);
    assert.equal(cfg.config.model.downsamplePadding, 'symmetric');
    assert.equal(cfg.config.diffusion.schedule, 'scaled-linear');
    const bytes = new Uint8Array(await (await fetch(new URL('/api/model.onnx', base))).arrayBuffer());
    ortWeb.env.wasm.numThreads = 1;
    ortWeb.env.wasm.wasmPaths = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web')) + path.sep;
    const fn = await createOrtWebModelFn(ortWeb, bytes, { backend: 'wasm' });
    try {
      const io = fixtureIO('ddim-class');
      const per = 8 * 8;
      const got = new Float32Array(io.out.length);
      for (let i = 0; i < 2; i++) {
        got.set(await fn(Float32Array.from(io.x.slice(i * per, (i + 1) * per)), io.t[i]!, [1, 8, 8, 1], Int32Array.of(io.classes![i]!)), i * per);
      }
      const e = relErr(got, io.out);
      assert.ok(e <= 1e-4, `onnxruntime-web vs diffusers: ${e}`);
    } finally {
      await fn.dispose();
    }
  } finally {
    await srv.close();
  }
});
