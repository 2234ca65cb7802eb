/**
 * `diffuse export --format diffusers`, checked without torch: the exports of
 * bench/diffusers-export.ts's tiny models are the very files diffusers was run
 * on (their digests in test/fixtures/diffusers/export-expected.json, made by
 * `node dist/bench/diffusers-export.js --write-expected` where torch is), so
 * our outputs equal to 1e-4 what diffusers' own UNet2DModel /
 * UNet2DConditionModel computed from them. The folder reads back as the same
 * model; the scheduler config gives back our schedule; a folder already
 * holding an export is replaced only with --overwrite; and what has no
 * diffusers equivalent (text, latent and expert models, mean prediction) is
 * one line.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig, withExperts } from '../../src/config.js';
import { withTextConditioning } from '../../src/text/captions.js';
import { diffusersPipelineFiles, findDiffusersFolder, loadDiffusersPipeline, diffusersSchedulerConfig } from '../../src/interop/diffusers-folder.js';
import { defaultAutoencoderConfig } from '../../src/model/autoencoder-config.js';
import { DiffuseError } from '../../src/errors.js';
import { samplerFromDiffusersConfig } from '../../src/interop/diffusers-scheduler.js';
import { ortAvailable } from '../../src/onnx/runner.js';
import { makeSchedule } from '../../src/schedule.js';
import { caseInputs, EXPECTED, EXPORT_CASES, EXPORT_FILES, exportDigests, ourOutput, saveCaseCheckpoint } from '../../bench/diffusers-export.js';
import { randomParams } from '../../bench/random-params.js';
import { cli, tempDir } from '../cli/fixtures.js';
import { relErr } from './diffusers-fixtures.js';

const noOrt = !(await ortAvailable()) && 'onnxruntime-node unavailable';
let root = '';
before(() => {
  root = tempDir('diffusers-export');
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

const expected = JSON.parse(readFileSync(EXPECTED, 'utf8')) as Record<string, { class: string; out: number[]; files: Record<string, string> }>;

for (const [i, c] of EXPORT_CASES.entries()) {
  test(`export (${c.name}): the files diffusers ran on, our output equals diffusers' to 1e-4, and they read back`, { skip: noOrt }, async () => {
    const params = randomParams(c.config.model, 100 + i);
    const ckpt = join(root, `${c.name}-ckpt`);
    await saveCaseCheckpoint(ckpt, c.config, params);
    const dir = join(root, c.name);
    const r = await cli(['export', '--checkpoint', ckpt, '--format', 'diffusers', '--out', dir]);
    assert.equal(r.code, 0, r.err);
    const want = expected[c.name]!;
    assert.deepEqual(exportDigests(dir, EXPORT_FILES), want.files, 'the exported files are the ones diffusers was run on (regenerate with --write-expected where torch is)');
    const unet = JSON.parse(readFileSync(join(dir, 'unet', 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(unet['_class_name'], want.class);
    assert.equal(existsSync(join(dir, 'model_index.json')), want.class === 'UNet2DModel');
    const e = relErr(await ourOutput(c, params, caseInputs(c)), want.out);
    assert.ok(e <= 1e-4, `ours vs diffusers on our export: ${e}`);
    // and back: the same network, weights, schedule and prediction
    const back = loadDiffusersPipeline(findDiffusersFolder(dir)!, {
      schedulerConfig: join(dir, 'scheduler', 'scheduler_config.json'),
      ...(c.contextLength !== undefined ? { contextLength: c.contextLength } : {}),
    });
    assert.deepEqual(back.config, c.config.model);
    for (const [k, t] of Object.entries(params)) assert.ok(back.params[k]!.data.every((v, j) => v === t.data[j]), k);
    assert.equal(back.diffuse.diffusion.prediction, c.config.diffusion.prediction);
    const ours = makeSchedule(c.config.diffusion.schedule, c.config.diffusion.timesteps, c.config.diffusion).alphaBar;
    const theirs = makeSchedule(back.diffuse.diffusion.schedule, back.diffuse.diffusion.timesteps, back.diffuse.diffusion).alphaBar;
    assert.ok(ours.every((a, j) => Math.abs(a - theirs[j]!) <= 1e-12), 'schedule round trip');
  });
}

test('every schedule and prediction writes a DDPMScheduler that reads back as the same schedule', () => {
  for (const schedule of ['linear', 'scaled-linear', 'cosine', 'sigmoid'] as const) {
    for (const prediction of ['epsilon', 'x0', 'v'] as const) {
      const d = { schedule, timesteps: 500, prediction, ...(schedule === 'sigmoid' ? { betaStart: 0.0002, betaEnd: 0.03 } : {}) };
      const s = samplerFromDiffusersConfig(diffusersSchedulerConfig(d));
      assert.equal(s.sampler, 'ddpm');
      assert.equal(s.prediction, prediction);
      const a = makeSchedule(schedule, 500, d).alphaBar, b = makeSchedule(s.schedule, s.timesteps, s).alphaBar;
      assert.ok(a.every((v, j) => Math.abs(v - b[j]!) <= 1e-12), `${schedule}/${prediction}`);
    }
  }
  const zsnr = samplerFromDiffusersConfig(diffusersSchedulerConfig({ schedule: 'linear', timesteps: 1000, prediction: 'v', zeroTerminalSnr: true }));
  assert.equal(zsnr.zeroTerminalSnr, true);
});

test('export refuses what it cannot write, and replaces an export only with --overwrite', { skip: noOrt }, async () => {
  const c = EXPORT_CASES[0]!;
  const ckpt = join(root, 'ow-ckpt');
  await saveCaseCheckpoint(ckpt, c.config, randomParams(c.config.model, 1));
  const dir = join(root, 'ow');
  let r = await cli(['export', '--checkpoint', ckpt, '--format', 'diffusers', '--out', dir]);
  assert.equal(r.code, 0, r.err);
  writeFileSync(join(dir, 'NOTES.md'), 'mine');
  r = await cli(['export', '--checkpoint', ckpt, '--format', 'diffusers', '--out', dir]);
  assert.equal(r.code, 1);
  assert.match(r.err.trim(), /^diffuse: --out '.*ow' already holds model_index\.json, unet, scheduler: give --overwrite to replace them \(the folder's other files are kept\)$/);
  r = await cli(['export', '--checkpoint', ckpt, '--format', 'diffusers', '--out', dir, '--overwrite']);
  assert.equal(r.code, 0, r.err);
  assert.equal(readFileSync(join(dir, 'NOTES.md'), 'utf8'), 'mine');
  r = await cli(['export', '--checkpoint', ckpt, '--format', 'diffusers']);
  assert.match(r.err.trim(), /^diffuse: --format diffusers needs --out DIR/);
  r = await cli(['export', '--checkpoint', ckpt, '--out', join(root, 'model.png')]);
  assert.match(r.err.trim(), /^diffuse: --out '.*model\.png': the file name must end in \.onnx/);
  // a text model and a posterior-mean model have no diffusers equivalent
  const text = withTextConditioning(defaultConfig({ model: { imageSize: 8, baseChannels: 8, channelMults: [1, 2], attentionResolutions: [4], groups: 4 }, data: { dataset: 'fashion-mnist', imageSize: 8 } }), ['boot', 'bag'], { dim: 8 });
  const tck = join(root, 'text-ckpt');
  await saveCaseCheckpoint(tck, text, randomParams(text.model, 2));
  r = await cli(['export', '--checkpoint', tck, '--format', 'diffusers', '--out', join(root, 'text')]);
  assert.equal(r.code, 1);
  assert.match(r.err.trim(), /^diffuse: a text-conditioned model has no diffusers equivalent/);
  const mean = defaultConfig({ ...c.config, diffusion: { ...c.config.diffusion, prediction: 'mean' } });
  const mck = join(root, 'mean-ckpt');
  await saveCaseCheckpoint(mck, mean, randomParams(mean.model, 3));
  r = await cli(['export', '--checkpoint', mck, '--format', 'diffusers', '--out', join(root, 'mean')]);
  assert.match(r.err.trim(), /^diffuse: prediction type 'mean' has no diffusers prediction_type/);
  // a latent model: DDPMPipeline samples pixels and has no place for our autoencoder; --part is for ONNX
  const latent = defaultConfig({ data: { dataset: 'squares', imageSize: 8, channels: 3 }, latent: { autoencoder: defaultAutoencoderConfig({ imageSize: 8, channels: 3, latentChannels: 2 }), scalingFactor: 1, posterior: 'mean' }, model: { channelMults: [1, 2], groups: 4, baseChannels: 8 } });
  assert.throws(() => diffusersPipelineFiles(latent, randomParams(latent.model, 4)), (e: unknown) => e instanceof DiffuseError && /^a latent diffusion model has no diffusers pipeline here/.test(e.message));
  // a checkpoint of experts: K networks, where a DDPMPipeline holds one
  const experts = withExperts(c.config, 2, 't');
  assert.throws(() => diffusersPipelineFiles(experts, {}), (e: unknown) => e instanceof DiffuseError && /^a checkpoint of 2 expert networks has no diffusers pipeline/.test(e.message));
  r = await cli(['export', '--checkpoint', ckpt, '--format', 'diffusers', '--part', 'decoder', '--out', join(root, 'part')]);
  assert.equal(r.code, 1);
  assert.match(r.err.trim(), /^diffuse: --part decoder is for --format onnx/);
  assert.ok(!existsSync(join(root, 'mean')) && !existsSync(join(root, 'text')) && !existsSync(join(root, 'part')), 'nothing written');
});
