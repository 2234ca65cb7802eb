import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { command } from '../../src/cli/eval.js';
const run = (argv: string[]): Promise<number> => command.execute(argv);
import { readImageFolder } from '../../src/data/folder.js';
import { DiffuseError } from '../../src/errors.js';
import { imageGrid, writePng } from '../../src/io/image.js';
import { loadEvalSplits } from '../../src/eval/splits.js';
import { capture, saveUntrainedCheckpoint } from './cli-helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('diffuse eval --samples DIR: one JSON line on stdout, a summary with the floor on stderr', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'eval-'));
  try {
    const { heldOut } = await loadEvalSplits('mnist');
    const n = 60;
    for (let i = 0; i < n; i++) {
      const px = heldOut.images.subarray(i * 784, (i + 1) * 784);
      await writePng(join(dir, `${String(i).padStart(3, '0')}.png`), imageGrid(px, [1, 28, 28, 1], { pad: 0 }));
    }
    const batch = await readImageFolder(dir, 1, 10);
    assert.deepEqual(batch.shape, [10, 28, 28, 1]);
    assert.ok(Math.abs(batch.images[300]! - heldOut.images[300]!) < 0.01, 'PNG round trip keeps pixel values');

    const { out, err } = await capture(() => run(['--samples', dir, '--dataset', 'mnist', '--n', '50', '--classifier', join(root, 'models', 'classifier-mnist')]));
    const lines = out.trim().split('\n');
    assert.equal(lines.length, 1);
    const j = JSON.parse(lines[0]!) as { fid: number; kid: number; kidStd: number; n: number; classHistogram: number[]; floor: { fid: number } };
    assert.equal(j.n, 50);
    assert.equal(j.classHistogram.reduce((a, c) => a + c, 0), 50);
    assert.ok(Number.isFinite(j.fid) && j.fid >= 0 && Number.isFinite(j.floor.fid));
    assert.match(err, /real vs real \(floor\)/);
    assert.match(err, /FID/);

    await assert.rejects(run(['--samples', dir, '--dataset', 'mnist', '--n', '61', '--classifier', join(root, 'models', 'classifier-mnist')]), /only 60 images/);
    await assert.rejects(run(['--dataset', 'mnist']), /exactly one of --checkpoint DIR or --samples DIR/);
    await assert.rejects(run(['--samples', dir]), /needs --dataset/);
    await assert.rejects(run(['--samples', dir, '--dataset', 'cifar']), DiffuseError);
    await assert.rejects(run(['--samples', join(dir, 'nope'), '--dataset', 'mnist', '--classifier', join(root, 'models', 'classifier-mnist')]), /cannot read samples folder/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('diffuse eval --checkpoint DIR: generates N samples with the model and scores them', async () => {
  const { defaultConfig } = await import('../../src/config.js');
  const { initEngine } = await import('../../src/engine/backend.js');
  await initEngine({ backend: 'wasm' });
  const dir = mkdtempSync(join(tmpdir(), 'eval-ckpt-'));
  try {
    const config = defaultConfig({ model: { baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [], groups: 4 } });
    const ckpt = join(dir, 'ckpt');
    await saveUntrainedCheckpoint(ckpt, config);
    const { out, err } = await capture(() => run(['--checkpoint', ckpt, '--dataset', 'mnist', '--n', '16', '--sampling-steps', '2', '--no-floor', '--classifier', join(root, 'models', 'classifier-mnist')]));
    const j = JSON.parse(out.trim()) as { fid: number; n: number; steps: number; sampler: string; floor?: unknown };
    assert.equal(j.n, 16);
    assert.equal(j.steps, 2);
    assert.equal(j.sampler, 'ddim');
    assert.equal(j.floor, undefined);
    // An untrained network's 2-step samples are nothing like digits.
    assert.ok(j.fid > 50, `FID of an untrained model ${j.fid}`);
    assert.doesNotMatch(err, /real vs real/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
