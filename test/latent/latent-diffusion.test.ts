/**
 * Latent diffusion (issue #15) on tiny models: the same training loop on the
 * autoencoder's scaled latents resumes bit-identically (the encoded training
 * set cached, posterior samples from the run's Rng), the checkpoint holds its
 * autoencoder, the pipeline decodes for every sampler on tfjs and ONNX Runtime
 * (frames included, the latents kept), and the command line end to end:
 * train-autoencoder, train --latent, sample --gif, export --part decoder, and
 * one clear line for each bad input.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, truncateSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine } from '../../src/engine/backend.js';
import { DiffuseError } from '../../src/errors.js';
import { defaultAutoencoderRunConfig, defaultConfig, parseAutoencoderRunConfig, parseConfig, stringifyConfig, withExperts, type DiffuseConfig } from '../../src/config.js';
import { latentConfigOf, loadAutoencoder, trainAutoencoder } from '../../src/latent/autoencoder.js';
import { LATENT_CACHE_FILE, train } from '../../src/train/train.js';
import { checkpointKind, loadCheckpoint } from '../../src/train/checkpoint.js';
import { withCaptionConditioning } from '../../src/text/captions.js';
import { generateWith, loadPipeline } from '../../src/pipeline.js';
import { SAMPLER_NAMES } from '../../src/samplers/factory.js';
import { promptCondition } from '../../src/guidance/condition.js';
import { ortAvailable, openOrtSession } from '../../src/onnx/runner.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { maxAbsDiff } from '../onnx/helpers.js';
import { cli, copyOf, imageFolder, tempDir, tinyTrain } from '../cli/fixtures.js';
import { squares, tinyAutoencoder } from './helpers.js';

const hasOrt = await ortAvailable();
const work = tempDir('latent');
const data = squares(10, 7);
let aeDir: string;

before(async () => {
  await initEngine({ backend: 'wasm' });
  aeDir = join(work, 'vae');
  await trainAutoencoder({
    config: defaultAutoencoderRunConfig({
      data: { dataset: 'squares', imageSize: 8, channels: 3 },
      model: tinyAutoencoder(),
      train: { batchSize: 4, steps: 3, workers: 1, seed: 1, sampleEvery: 0, checkpointEvery: 0 },
    }),
    outDir: aeDir, dataset: data, heldout: data, progress: null,
  });
});

after(() => rmSync(work, { recursive: true, force: true }));

async function latentConfig(): Promise<DiffuseConfig> {
  const ae = await loadAutoencoder(aeDir);
  const config = defaultConfig({
    data: { dataset: 'squares', imageSize: 8, channels: 3 },
    latent: latentConfigOf(ae, aeDir),
    diffusion: { schedule: 'linear', timesteps: 50, prediction: 'epsilon' },
    model: { baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, groups: 4 },
    train: { batchSize: 4, steps: 6, lr: 1e-3, warmupSteps: 2, workers: 1, seed: 3, sampleEvery: 0, checkpointEvery: 0 },
  });
  return withCaptionConditioning(config, data.captions!);
}

test('config: a latent model\'s U-Net takes the latent shape; data and autoencoder must agree; the two kinds of config.json are told apart', async () => {
  const ae = await loadAutoencoder(aeDir);
  const latent = latentConfigOf(ae, 'runs/vae');
  const c = defaultConfig({ data: { dataset: 'squares', imageSize: 8, channels: 3 }, latent, model: { channelMults: [1, 2] } });
  assert.deepEqual([c.model.imageSize, c.model.inChannels, c.model.outChannels, c.model.attentionResolutions], [4, 2, 2, [2]]);
  assert.deepEqual(parseConfig(JSON.parse(stringifyConfig(c)), 'x'), c);
  assert.throws(() => parseConfig({ ...c, data: { ...c.data, imageSize: 16 } }, 'cfg.json'), (e: unknown) => e instanceof DiffuseError && /cfg\.json: config field latent\.autoencoder encodes 8x8x3 images, the data are 16x16x3/.test(e.message));
  assert.throws(() => parseConfig({ ...c, model: { ...c.model, inChannels: 3, outChannels: 3 } }, 'cfg.json'), /model\.inChannels \(3\) must equal the autoencoder's 2 latent channels/);
  assert.throws(() => parseConfig({ ...c, latent: { ...c.latent, scalingFactor: 0 } }, 'cfg.json'), /latent\.scalingFactor must be > 0, got 0/);
  // expert denoisers are for pixel models: the combination is refused in one line naming the field
  assert.throws(() => withExperts(c, 2, 't'), (e: unknown) => e instanceof DiffuseError && /config field experts cannot be combined with latent/.test(e.message) && !e.message.includes('\n'));
  assert.throws(() => parseConfig(ae.config, 'ae.json'), /ae\.json: is an autoencoder's config/);
  assert.throws(() => parseAutoencoderRunConfig(c, 'd.json'), /d\.json: is not an autoencoder's config/);
  assert.equal(checkpointKind(aeDir), 'autoencoder');
});

test('latent training: the U-Net works on the scaled 4x4x2 latents, the checkpoint holds the autoencoder, N steps straight == N/2 + resume + N/2 (the encoded set read back from its cache)', async () => {
  const ae = await loadAutoencoder(aeDir);
  const config = await latentConfig();
  assert.deepEqual([config.model.imageSize, config.model.inChannels, config.model.outChannels], [4, 2, 2]);
  assert.equal(config.latent?.scalingFactor, ae.stats.scalingFactor);
  const quiet = { dataset: data, progress: null, autoencoder: ae.weights } as const;
  const said: string[] = [];
  await train({ config, outDir: join(work, 'a'), ...quiet });
  await train({ config, outDir: join(work, 'b'), ...quiet, stopAfter: 3 });
  await train({ config, outDir: join(work, 'b'), ...quiet, resume: true, log: (m) => said.push(m) });
  assert.ok(!said.some((m) => m.startsWith('encoded')), `the resumed run encoded again: ${said.join(' | ')}`);
  const a = await loadCheckpoint(join(work, 'a', 'checkpoint'));
  const b = await loadCheckpoint(join(work, 'b', 'checkpoint'));
  assert.equal(b.trainingState.step, 6);
  assert.deepEqual(b.trainingState.rng, a.trainingState.rng);
  for (const part of ['params', 'ema'] as const) {
    for (const [name, t] of Object.entries(a.state[part])) assert.deepEqual(b.state[part][name]!.data, t.data, `${part} ${name} differs after resume`);
  }
  // self-contained: the autoencoder's EMA weights are in the checkpoint
  for (const [name, t] of Object.entries(ae.weights)) assert.deepEqual(a.parts?.autoencoder?.[name]?.data, t.data, name);
  assert.ok(existsSync(join(work, 'a', 'checkpoint', 'autoencoder.safetensors')));
  const cache = readSafetensors(join(work, 'a', LATENT_CACHE_FILE));
  assert.deepEqual(cache.tensors['mean']?.shape, [10, 4, 4, 2]);
  // the posterior sample is drawn per step: 'mean' training differs from 'sample' training
  await train({ config: { ...config, latent: { ...config.latent!, posterior: 'mean' } }, outDir: join(work, 'm'), ...quiet });
  const m = await loadCheckpoint(join(work, 'm', 'checkpoint'));
  const k = Object.keys(a.state.params).find((n) => n.includes('conv_in.kernel'))!;
  assert.notDeepEqual(m.state.params[k]!.data, a.state.params[k]!.data);
  await assert.rejects(train({ config, outDir: join(work, 'c'), dataset: data, progress: null }), /needs its autoencoder's weights/);
});

test('a latent pipeline returns pixels for every sampler (tfjs and ONNX Runtime), decoded frames, and keeps the latents', async () => {
  const dir = join(work, 'a');
  const engines = hasOrt ? (['tfjs', 'onnx'] as const) : (['tfjs'] as const);
  const results = new Map<string, Float32Array>();
  for (const engine of engines) {
    const pipe = await loadPipeline(dir, { engine });
    try {
      assert.deepEqual(pipe.latent?.shape, [4, 4, 2]);
      const condition = promptCondition(pipe.config, ['red square', 'blue square', ''], 2);
      for (const sampler of SAMPLER_NAMES) {
        const seen: number[] = [];
        const r = await generateWith(pipe, { sampler, steps: 4, n: 3, seed: 5, condition, recordFrames: 2, recordSamples: 2, onStep: (_d, _t, st) => seen.push(st.x.length) });
        assert.deepEqual(r.shape, [3, 8, 8, 3], sampler);
        assert.ok(r.images.every((v) => v >= -1 && v <= 1 && Number.isFinite(v)), sampler);
        assert.deepEqual(r.latent?.shape, [3, 4, 4, 2]);
        assert.ok(seen.every((l) => l === 3 * 32), 'onStep sees latents');
        assert.equal(r.frames.length, 2);
        assert.equal(r.frames[0]!.predX0.length, 2 * 8 * 8 * 3);
        assert.deepEqual(r.recordedShape, [2, 8, 8, 3]);
        assert.deepEqual(r.latent?.recordedShape, [2, 4, 4, 2]);
        // the images are the decoder's picture of the latents
        assert.deepEqual(await pipe.latent!.decode(r.latent!.images, r.latent!.shape), r.images);
        if (sampler === 'ddim') results.set(engine, r.images);
      }
      await assert.rejects(generateWith({ config: pipe.config, model: pipe.model }, { sampler: 'ddim', steps: 2, n: 1, seed: 0 }), (e: unknown) => e instanceof DiffuseError && /give generateWith its pipeline's decoder/.test(e.message));
    } finally {
      await pipe.dispose();
    }
  }
  if (hasOrt) assert.ok(maxAbsDiff(results.get('tfjs')!, results.get('onnx')!) < 1e-3, `tfjs vs ORT ${maxAbsDiff(results.get('tfjs')!, results.get('onnx')!)}`);
});

test('command line: train-autoencoder, train --latent, sample --gif, export --part decoder; bad input gets one line', async () => {
  const folder = await imageFolder(join(work, 'folder'), ['a', 'b'], 4);
  const vae = join(work, 'cli-vae');
  const tiny = ['--size', '8', '--batch-size', '4', '--workers', '1', '--train-steps', '2'];
  const made = await cli(['train-autoencoder', '--dataset', 'folder', '--data-dir', folder, '--out', vae, ...tiny, '--base-channels', '8', '--channel-mults', '1,2', '--latent-channels', '2', '--groups', '4', '--sample-every', '2']);
  assert.equal(made.code, 0, made.err);
  assert.match(made.err, /autoencoder 8x8x3 -> 4x4x2 \(f = 2\)/);
  assert.match(made.err, /held-out PSNR [\d.]+ dB \(8 images\), latents: mean -?[\d.]+, std [\d.]+, scaling factor [\d.]+/);
  assert.ok(existsSync(join(vae, 'samples', 'step-000002.png')));
  const run = join(work, 'cli-run');
  const trained = await cli(['train', '--latent', vae, '--dataset', 'folder', '--data-dir', folder, '--conditional', '--out', run, ...tiny.slice(2),
    '--base-channels', '8', '--channel-mults', '1,2', '--attention', 'none', '--timesteps', '50', '--sample-every', '2']);
  assert.equal(trained.code, 0, trained.err);
  assert.match(trained.err, /U-Net 4x4x2 -> 2ch/);
  assert.match(trained.err, /latent diffusion: autoencoder 8x8x3 -> 4x4x2/);
  assert.ok(existsSync(join(run, 'samples', 'step-000002.png')) && existsSync(join(run, 'checkpoint', 'autoencoder.safetensors')));
  const gif = join(work, 'r.gif'), png = join(work, 's.png');
  const sampled = await cli(['sample', '--checkpoint', run, '--class', 'all', '--n', '4', '--sampling-steps', '3', '--out', png, '--gif', gif]);
  assert.equal(sampled.code, 0, sampled.err);
  assert.match(sampled.err, /latent 4x4x2, decoding included/);
  assert.ok(existsSync(png) && existsSync(gif));
  if (hasOrt) {
    const onnx = join(work, 'decoder.onnx');
    const exported = await cli(['export', '--checkpoint', run, '--part', 'decoder', '--out', onnx]);
    assert.equal(exported.code, 0, exported.err);
    const s = await openOrtSession(onnx);
    try {
      assert.deepEqual([...s.session.inputNames], ['z']);
      assert.deepEqual([...s.session.outputNames], ['image']);
      assert.ok(Number(s.metadata['diffuse.scaling_factor']) > 0);
    } finally {
      await s.session.release();
    }
  }

  // ---- bad input: one line, exit 1
  const pixel = join(work, 'pixel');
  assert.equal((await cli([...tinyTrain(folder, '--train-steps', '1', '--out', pixel)])).code, 0);
  const rows: { name: string; argv: string[]; message: RegExp; setup?: () => void }[] = [
    { name: 'a latent checkpoint whose autoencoder is missing', setup: () => { copyOf(run, join(work, 'no-ae')); unlinkSync(join(work, 'no-ae', 'checkpoint', 'autoencoder.safetensors')); },
      argv: ['sample', '--checkpoint', join(work, 'no-ae'), '--n', '1'], message: /is a latent diffusion model \(config\.json has a latent section\) but its autoencoder is missing: .*autoencoder\.safetensors/ },
    { name: 'a latent checkpoint whose autoencoder is damaged', setup: () => { copyOf(run, join(work, 'bad-ae')); truncateSync(join(work, 'bad-ae', 'checkpoint', 'autoencoder.safetensors'), 100); },
      argv: ['sample', '--checkpoint', join(work, 'bad-ae'), '--n', '1'], message: /bad-ae\/checkpoint\/autoencoder\.safetensors/ },
    { name: '--latent pointing at a diffusion checkpoint', argv: ['train', '--latent', run, '--dataset', 'folder', '--data-dir', folder, '--out', join(work, 'x1')], message: /is not an autoencoder's config .*diffuse train-autoencoder/ },
    { name: '--latent at a folder that does not exist', argv: ['train', '--latent', join(work, 'nope'), '--out', join(work, 'x2')], message: /autoencoder checkpoint .*nope: no such folder/ },
    { name: 'image size differs from the autoencoder\'s', argv: ['train', '--latent', vae, '--dataset', 'folder', '--data-dir', folder, '--size', '16', '--out', join(work, 'x3')], message: /the autoencoder encodes 8x8x3 images, but --size 16 --channels 3 were given/ },
    { name: 'sampling an autoencoder checkpoint', argv: ['sample', '--checkpoint', vae, '--n', '1'], message: /is an autoencoder's config \(kind "autoencoder"\), not a diffusion model's/ },
    { name: 'the U-Net of an autoencoder', argv: ['export', '--checkpoint', vae, '--part', 'unet', '--out', join(work, 'u.onnx')], message: /is an autoencoder checkpoint: it has no U-Net/ },
    { name: 'the decoder of a pixel model', argv: ['export', '--checkpoint', pixel, '--part', 'decoder', '--out', join(work, 'd.onnx')], message: /is not a latent model: it has no autoencoder/ },
    { name: '--latent-posterior without --latent', argv: ['train', '--latent-posterior', 'mean', '--out', join(work, 'x4')], message: /--latent-posterior needs --latent DIR/ },
  ];
  for (const r of rows) {
    r.setup?.();
    const o = await cli(r.argv);
    assert.equal(o.code, 1, `${r.name}: exit ${o.code}, ${o.err}`);
    assert.match(o.err, r.message, r.name);
    assert.equal(o.err.trim().split('\n').length, 1, `${r.name}: more than one line: ${o.err}`);
  }
  // the damaged latent checkpoint left the run's own folders alone
  assert.ok(existsSync(join(run, 'checkpoint', 'autoencoder.safetensors')));
  assert.ok(readFileSync(join(run, 'checkpoint', 'config.json'), 'utf8').includes('"latent"'));
});
