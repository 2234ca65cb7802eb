/**
 * Calibration of the measuring stick (docs/eval.md): for each data set and N,
 * the real-vs-real floor (N training images vs N held-out images), and for
 * scale the score of the same training images blurred (one 3×3 box pass) and
 * of uniform noise. Uses the shipped classifiers in models/. N larger than a
 * held-out set is skipped (emoji: 324 held out, so its default N is that).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/eval-floor.js [--datasets mnist,fashion-mnist,emoji] [--n 500,1000,2000]
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initEngine } from '../src/engine/backend.js';
import { classifierAccuracy, loadClassifier } from '../src/eval/classifier.js';
import { evaluateSamples, floorIndices, realFloor, type SampleScores } from '../src/eval/evaluate.js';
import { EVAL_DATASETS, loadEvalSplits } from '../src/eval/splits.js';
import { Rng } from '../src/rng.js';
import { DiffuseError } from '../src/errors.js';
import { benchOptions } from './options.js';
import { boxBlur, reportError } from './study-common.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const fmt = (s: SampleScores): string => `${s.fid.toFixed(2)} | ${s.kid.toFixed(2)} ± ${s.kidStd.toFixed(2)} | ${s.classEntropyNormalized.toFixed(3)}`;

async function main(): Promise<void> {
  const { values: o } = benchOptions('eval-floor', {
    datasets: { type: 'string', arg: 'LIST', default: EVAL_DATASETS.join(','), help: `comma-separated data sets (${EVAL_DATASETS.join(', ')})` },
    n: { type: 'int-list', min: 2, max: 100000, maxLength: 10, default: [500, 1000, 2000], arg: 'LIST', help: 'images per side (N above a held-out set\'s size: that set\'s whole held-out split)' },
  } as const);
  const names = o.datasets.split(',').map((d) => d.trim());
  const unknown = names.filter((d) => !(EVAL_DATASETS as readonly string[]).includes(d));
  if (unknown.length > 0) throw new DiffuseError(`--datasets: unknown data set '${unknown[0]}' (one of ${EVAL_DATASETS.join(', ')})`);
  const sizes = o.n;
  await initEngine({ backend: 'wasm' });
  process.stdout.write('| data set | N | images | FID | KID ± std | class entropy / log K |\n|---|---:|---|---:|---:|---:|\n');
  for (const name of EVAL_DATASETS.filter((d) => names.includes(d))) {
    const clf = loadClassifier(join(root, 'models', `classifier-${name}`));
    const { train, heldOut } = await loadEvalSplits(name, { imageSize: clf.config.imageSize });
    process.stderr.write(`${name}: held-out accuracy ${(100 * classifierAccuracy(clf, heldOut)).toFixed(2)}%\n`);
    const [, s, , c] = train.shape;
    const per = s * s * c;
    const fit = sizes.filter((n) => n <= heldOut.shape[0]);
    for (const n of fit.length > 0 ? fit : [heldOut.shape[0]]) {
      const t0 = performance.now();
      const floor = realFloor({ classifier: clf, train, reference: heldOut, n });
      const idx = floorIndices(train.shape[0], n, 0); // the floor's own training images
      const real = new Float32Array(n * per);
      idx.forEach((i, k) => real.set(train.images.subarray(i * per, (i + 1) * per), k * per));
      const blurred = evaluateSamples({ classifier: clf, samples: { images: boxBlur(real, n, s, c), shape: [n, s, s, c] }, reference: heldOut, n });
      const rng = new Rng(1);
      const noise = evaluateSamples({ classifier: clf, samples: { images: new Float32Array(n * per).map(() => rng.uniform() * 2 - 1), shape: [n, s, s, c] }, reference: heldOut, n });
      process.stdout.write(`| ${name} | ${n} | real train vs held-out (floor) | ${fmt(floor)} |\n`);
      process.stdout.write(`| ${name} | ${n} | same train images, 3×3 box blur | ${fmt(blurred)} |\n`);
      process.stdout.write(`| ${name} | ${n} | uniform noise | ${fmt(noise)} |\n`);
      process.stderr.write(`  N=${n}: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    }
    clf.dispose();
  }
}

main().catch(reportError);
