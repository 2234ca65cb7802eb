/**
 * Calibration of the measuring stick (docs/eval.md): for each data set and N,
 * the real-vs-real floor (N training images vs N held-out images), and for
 * scale the score of the same training images blurred (one 3×3 box pass) and
 * of uniform noise. Uses the shipped classifiers in models/.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/eval-floor.js [mnist|fashion-mnist ...] [N ...]
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initEngine } from '../src/engine/backend.js';
import { classifierAccuracy, loadClassifier } from '../src/eval/classifier.js';
import { evaluateSamples, realFloor, sampleIndices, type SampleScores } from '../src/eval/evaluate.js';
import { EVAL_DATASETS, loadEvalSplits } from '../src/eval/splits.js';
import { Rng } from '../src/rng.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function boxBlur(images: Float32Array, n: number, s: number): Float32Array {
  const dst = new Float32Array(images.length);
  for (let b = 0; b < n; b++) {
    const o = b * s * s;
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
      let acc = 0;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        acc += images[o + Math.min(s - 1, Math.max(0, y + dy)) * s + Math.min(s - 1, Math.max(0, x + dx))]!;
      }
      dst[o + y * s + x] = acc / 9;
    }
  }
  return dst;
}

const fmt = (s: SampleScores): string => `${s.fid.toFixed(2)} | ${s.kid.toFixed(2)} ± ${s.kidStd.toFixed(2)} | ${s.classEntropyNormalized.toFixed(3)}`;

async function main(): Promise<void> {
  await initEngine({ backend: 'wasm' });
  const args = process.argv.slice(2);
  const ns = args.filter((a) => /^\d+$/.test(a)).map(Number);
  const names = EVAL_DATASETS.filter((d) => args.includes(d));
  const sizes = ns.length > 0 ? ns : [500, 1000, 2000];
  process.stdout.write('| data set | N | images | FID | KID ± std | class entropy / log K |\n|---|---:|---|---:|---:|---:|\n');
  for (const name of names.length > 0 ? names : EVAL_DATASETS) {
    const clf = loadClassifier(join(root, 'models', `classifier-${name}`));
    const { train, heldOut } = await loadEvalSplits(name);
    process.stderr.write(`${name}: held-out accuracy ${(100 * classifierAccuracy(clf, heldOut)).toFixed(2)}%\n`);
    const [, s] = train.shape;
    const per = s * s;
    for (const n of sizes) {
      if (n > heldOut.shape[0]) continue;
      const t0 = performance.now();
      const floor = realFloor({ classifier: clf, train, reference: heldOut, n });
      const idx = sampleIndices(train.shape[0], n, 7919);
      const real = new Float32Array(n * per);
      idx.forEach((i, k) => real.set(train.images.subarray(i * per, (i + 1) * per), k * per));
      const blurred = evaluateSamples({ classifier: clf, samples: { images: boxBlur(real, n, s), shape: [n, s, s, 1] }, reference: heldOut, n });
      const rng = new Rng(1);
      const noise = evaluateSamples({ classifier: clf, samples: { images: new Float32Array(n * per).map(() => rng.uniform() * 2 - 1), shape: [n, s, s, 1] }, reference: heldOut, n });
      process.stdout.write(`| ${name} | ${n} | real train vs held-out (floor) | ${fmt(floor)} |\n`);
      process.stdout.write(`| ${name} | ${n} | same train images, 3×3 box blur | ${fmt(blurred)} |\n`);
      process.stdout.write(`| ${name} | ${n} | uniform noise | ${fmt(noise)} |\n`);
      process.stderr.write(`  N=${n}: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    }
    clf.dispose();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
