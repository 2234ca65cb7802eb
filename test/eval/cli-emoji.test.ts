/**
 * `diffuse train-classifier --dataset emoji` and `diffuse eval --dataset emoji`:
 * bad input is one line before any long compute; the happy paths write what
 * they promise (a classifier folder with groups and area resampling; one JSON
 * line with the floor, and prompt agreement for a caption-trained model).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { command as evalCommand } from '../../src/cli/eval.js';
import { DEFAULT_GUIDANCE } from '../../src/cli/options.js';
import { command as trainClassifierCommand } from '../../src/cli/train-classifier.js';
import { defaultConfig } from '../../src/config.js';
import { datasetCaptions } from '../../src/data/index.js';
import { emojiCatalog, loadEmoji } from '../../src/data/emoji.js';
import { initEngine } from '../../src/engine/backend.js';
import { createClassifier, defaultClassifierConfig, saveClassifier, validateClassifierConfig } from '../../src/eval/classifier.js';
import { EMOJI_EVAL_SIZE, EVAL_DATASETS } from '../../src/eval/splits.js';
import { classifierRecipe } from '../../src/eval/recipes.js';
import { imageGrid, writePng } from '../../src/io/image.js';
import { withCaptionConditioning } from '../../src/text/captions.js';
import { capture, saveUntrainedCheckpoint } from './cli-helpers.js';

const evalRun = (argv: string[]): Promise<number> => evalCommand.execute(argv);
const trainClassifierRun = (argv: string[]): Promise<number> => trainClassifierCommand.execute(argv);

test('diffuse train-classifier / eval --dataset emoji: bad input is one line, naming the flag and the allowed range', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-emoji-bad-'));
  try {
    await assert.rejects(trainClassifierRun(['--dataset', 'emoji', '--size', '100', '--out', join(dir, 'c')]), /--size must be an integer in 8\.\.64, got '100'/);
    await assert.rejects(trainClassifierRun(['--dataset', 'mnist', '--size', '32', '--out', join(dir, 'c')]), /--size applies to --dataset emoji only .*got --size 32 with --dataset mnist/);
    await assert.rejects(trainClassifierRun(['--dataset', 'emojis']), /--dataset must be one of mnist, fashion-mnist, emoji; got 'emojis'/);
    await assert.rejects(evalRun(['--samples', dir, '--dataset', 'emoji', '--guidance', '2']), /--guidance applies to generated samples/);
    await assert.rejects(evalRun(['--samples', dir, '--dataset', 'emoji', '--n', '1']), /--n must be an integer in 2\.\.100000, got '1'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('diffuse train-classifier --help: the defaults are each data set\'s recipe', () => {
  const help = trainClassifierCommand.help();
  for (const d of EVAL_DATASETS) {
    const r = classifierRecipe(d);
    assert.match(help, new RegExp(`--epochs N .*default [^)]*\\b${r.epochs} [^;)]*${d}`), `epochs of ${d}`);
    assert.match(help, new RegExp(`--conv LIST .*default [^)]*${r.config.convChannels.join(',')} [^;)]*${d}`), `conv of ${d}`);
  }
  assert.match(help, new RegExp(`--size N .*default ${EMOJI_EVAL_SIZE} emoji`));
  assert.match(help, /--batch-size N .*default 64\b/);
});

test('diffuse train-classifier --dataset emoji: 32×32 area-resampling classifier with category groups and a validation record', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-emoji-clf-'));
  try {
    const out = join(dir, 'clf');
    const { out: stdout } = await capture(() => trainClassifierRun(['--dataset', 'emoji', '--out', out, '--epochs', '1', '--limit', '128', '--conv', '4,8', '--features', '8']));
    const j = JSON.parse(stdout.trim()) as { testAccuracy: number; validationAccuracy: number; testGroupAccuracy: number };
    assert.ok(j.testAccuracy >= 0 && j.testAccuracy <= 1);
    const cfg = validateClassifierConfig(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')));
    assert.equal(cfg.imageSize, EMOJI_EVAL_SIZE);
    assert.equal(cfg.channels, 3);
    assert.equal(cfg.resize, 'area');
    assert.equal(cfg.numClasses, 98);
    assert.equal(cfg.groups?.name, 'category');
    assert.equal(cfg.groups?.names.length, 9);
    assert.equal(cfg.training?.trainCount, 128);
    assert.equal(cfg.training?.testCount, emojiCatalog().filter((e) => e.split === 'heldout').length);
    assert.match(cfg.training?.validation ?? '', /google images of \d+ training emoji/);
    assert.equal(cfg.training?.validationAccuracy, j.validationAccuracy);
    assert.deepEqual(cfg.training?.augment, { shift: 2, flip: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('diffuse eval --dataset emoji: PNG samples and a caption-trained checkpoint (floor prompts; --class all = prompt agreement)', async () => {
  await initEngine({ backend: 'wasm' });
  const dir = mkdtempSync(join(tmpdir(), 'cli-emoji-eval-'));
  try {
    // A (random) emoji classifier: the plumbing, not the numbers.
    const ho = await loadEmoji({ split: 'heldout', imageSize: 64 });
    const clfDir = join(dir, 'clf');
    const clf = createClassifier(defaultClassifierConfig({ imageSize: 32, channels: 3, numClasses: ho.labelNames.length, labelNames: ho.labelNames, convChannels: [4, 8], featureDim: 8, resize: 'area' }), 1);
    await saveClassifier(clfDir, clf);
    clf.dispose();
    const pngs = join(dir, 'pngs');
    mkdirSync(pngs);
    for (let i = 0; i < 20; i++) await writePng(join(pngs, `${String(i).padStart(2, '0')}.png`), imageGrid(ho.images.subarray(i * 12288, (i + 1) * 12288), [1, 64, 64, 3], { pad: 0 }));
    const r1 = await capture(() => evalRun(['--samples', pngs, '--dataset', 'emoji', '--n', '20', '--classifier', clfDir]));
    const j1 = JSON.parse(r1.out.trim()) as { n: number; fid: number; floor: { fid: number }; classHistogram: number[] };
    assert.equal(j1.n, 20);
    assert.equal(j1.classHistogram.length, 98);
    assert.ok(Number.isFinite(j1.fid) && Number.isFinite(j1.floor.fid));
    await assert.rejects(evalRun(['--samples', pngs, '--dataset', 'emoji', '--n', '400', '--classifier', clfDir]), new RegExp(`--n 400 but the emoji reference set has only ${ho.shape[0]} images`));
    // Without --n: all the held-out emoji (fewer than the usual 1000).
    await assert.rejects(evalRun(['--samples', pngs, '--dataset', 'emoji', '--classifier', clfDir]), new RegExp(`--n ${ho.shape[0]} but samples folder .* has only 20 images`));

    // A tiny untrained text model on the emoji captions.
    const base = defaultConfig({
      data: { dataset: 'emoji', imageSize: 8, channels: 3 },
      diffusion: { schedule: 'linear', timesteps: 50, prediction: 'epsilon' },
      model: { baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [], groups: 4 },
    });
    const ckpt = join(dir, 'ckpt');
    await saveUntrainedCheckpoint(ckpt, withCaptionConditioning(base, datasetCaptions({ name: 'emoji' }), { dim: 8 }));
    const common = ['--checkpoint', ckpt, '--dataset', 'emoji', '--classifier', clfDir, '--sampling-steps', '2', '--n', '8', '--no-floor'];
    const r2 = await capture(() => evalRun([...common, '--guidance', '3']));
    const j2 = JSON.parse(r2.out.trim()) as { n: number; guidance: number; agreement?: unknown };
    assert.equal(j2.n, 8);
    assert.equal(j2.guidance, 3);
    assert.equal(j2.agreement, undefined);
    const r3 = await capture(() => evalRun([...common, '--class', 'all']));
    const j3 = JSON.parse(r3.out.trim()) as { guidance: number; agreement: { overall: number; counts: number[]; group?: { name: string } } };
    assert.equal(j3.guidance, DEFAULT_GUIDANCE, 'a caption-trained model is guided by default, as --prompt is');
    assert.equal(j3.agreement.counts.reduce((a, b) => a + b, 0), 8);
    assert.equal(j3.agreement.group, undefined, 'this classifier has no groups');
    assert.match(r3.err, /classifier agrees with the requested class/);
    await assert.rejects(evalRun([...common, '--class', 'food-fruit']), /was trained on captions: --class takes only 'all'/);

    // A class-conditional model whose classes are not the classifier's: refused, not compared index by index.
    const classCkpt = join(dir, 'class-ckpt');
    await saveUntrainedCheckpoint(classCkpt, defaultConfig({ ...base, data: { ...base.data, labelNames: ['apple', 'pear'] }, model: { ...base.model, numClasses: 2 } }));
    await assert.rejects(evalRun(['--checkpoint', classCkpt, '--dataset', 'emoji', '--classifier', clfDir, '--sampling-steps', '2', '--n', '4', '--class', 'all']), /name their classes differently/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
