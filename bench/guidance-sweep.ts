/**
 * Guidance sweep (issue #7): does the model make what it is asked for, and at
 * what cost in FID? For each guidance weight W, N samples split evenly over
 * the classes (class models: the class index; text models: the class's
 * canonical prompt, e.g. "ankle boot"), DDIM 50 steps, fixed seed; the
 * project's classifier says which class each sample shows. Writes
 * docs/guidance-<dataset>.md (+ .svg plot, + .json, + one PNG grid per W:
 * a row per class).
 *
 *   node dist/bench/guidance-sweep.js --dataset mnist                                  # models/mnist
 *   node dist/bench/guidance-sweep.js --dataset fashion-mnist --checkpoint models/fashion-mnist-text
 *   options: --n 500 --weights 0,1,2,4,8 --seed 0 --sampling-steps 50 --out docs/guidance-<dataset>
 *            --misses-at W (the weight whose misses the per-class table lists; default 2, or the last swept)
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchOptions, guidanceWeights } from './options.js';
import { DiffuseError } from '../src/errors.js';
import { initEngine } from '../src/engine/backend.js';
import { loadClassifier } from '../src/eval/classifier.js';
import { classAgreement, evaluateSamples, realFloor, referenceFeatures, type ClassAgreement, type SampleScores } from '../src/eval/evaluate.js';
import { EVAL_DATASETS, loadEvalSplits } from '../src/eval/splits.js';
import { classCondition, classCount, classPrompt } from '../src/guidance/condition.js';
import { imageGrid, writePng } from '../src/io/image.js';
import { generateWith, loadPipeline } from '../src/pipeline.js';
import { ProgressBar } from '../src/io/progress.js';
import { fixed, markdownTable, withDiscussion } from './study-common.js';
import { svgPlot } from './study-plot.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Row {
  w: number;
  agreement: ClassAgreement;
  scores: SampleScores;
  seconds: number;
  grid: string;
}

async function main(): Promise<void> {
  const { values: o } = benchOptions('guidance-sweep', {
    dataset: { type: 'choice', choices: EVAL_DATASETS.filter((d) => d !== 'emoji'), default: 'mnist', help: 'data set (and default model, classifier; emoji models: emoji-compare.js)' },
    checkpoint: { type: 'string', help: 'the model', defaultText: 'models/mnist or models/fashion-mnist-text' },
    n: { type: 'int', min: 10, max: 100000, default: 500, help: 'samples per weight' },
    seed: { type: 'int', min: 0, max: 2 ** 32 - 1, default: 0, help: 'seed' },
    'sampling-steps': { type: 'int', min: 1, max: 1000, default: 50, aliases: ['steps'], help: 'DDIM steps' },
    weights: { type: 'string', default: '0,1,2,4,8', help: 'guidance weights to sweep' },
    out: { type: 'string', help: 'output prefix', defaultText: 'docs/guidance-<dataset>' },
    classifier: { type: 'string', help: 'classifier folder', defaultText: 'models/classifier-<dataset>' },
    'misses-at': { type: 'number', min: 0, max: 100, help: 'the weight whose misses the per-class table lists', defaultText: '2, or the last swept' },
  } as const);
  const dataset = o.dataset;
  const checkpoint = o.checkpoint ?? (dataset === 'mnist' ? join(ROOT, 'models', 'mnist') : join(ROOT, 'models', 'fashion-mnist-text'));
  const { n, seed } = o;
  const steps = o['sampling-steps'];
  const weights = guidanceWeights('weights', o.weights);
  const out = o.out ?? join(ROOT, 'docs', `guidance-${dataset}`);
  const classifierDir = o.classifier ?? join(ROOT, 'models', `classifier-${dataset}`);
  const missesAt = o['misses-at'] ?? (weights.includes(2) ? 2 : weights[weights.length - 1]!);
  if (!weights.includes(missesAt)) throw new DiffuseError(`--misses-at ${missesAt} is not one of the swept weights (${weights.join(', ')})`);

  await initEngine({ backend: 'wasm' });
  const clf = loadClassifier(classifierDir);
  const pipe = await loadPipeline(checkpoint);
  const rows: Row[] = [];
  try {
    const cfg = pipe.config;
    const K = classCount(cfg);
    if (K === 0) throw new DiffuseError(`${checkpoint} is unconditional: nothing to guide`);
    const names = cfg.data.labelNames ?? Array.from({ length: K }, (_, k) => String(k));
    const asked = (k: number): string => (cfg.model.text !== undefined ? `"${classPrompt(cfg, k)}"` : names[k]!);
    const requested = Int32Array.from({ length: n }, (_, i) => Math.floor((i * K) / n));
    const splits = await loadEvalSplits(dataset);
    const ref = referenceFeatures(clf, splits.heldOut, n, seed);
    const floor = realFloor({ classifier: clf, train: splits.train, reference: splits.heldOut, referenceFeatures: ref, n, seed });
    // The classifier on real held-out images: the ceiling agreement can be judged against.
    const ho = splits.heldOut;
    if (ho.labels === undefined) throw new DiffuseError(`${dataset} held-out set has no labels`);
    const real = classAgreement(clf, { images: ho.images, shape: ho.shape }, Int32Array.from(ho.labels));
    mkdirSync(dirname(out), { recursive: true });
    for (const w of weights) {
      const bar = new ProgressBar({ total: steps, label: `W=${w}`, unit: 'step' });
      const r = await generateWith(pipe, {
        sampler: 'ddim', steps, n, seed, batchSize: 64,
        condition: classCondition(cfg, requested, w),
        onStep: (done) => bar.update(Math.min(steps, Math.ceil(done / Math.ceil(n / 64))), {}),
      });
      bar.finish();
      const samples = { images: r.images, shape: r.shape };
      const agreement = classAgreement(clf, samples, requested);
      const scores = evaluateSamples({ classifier: clf, samples, reference: ref, n, seed });
      // Grid: one row per class, its first 8 samples.
      const per = r.shape[1] * r.shape[2] * r.shape[3];
      const cols = Math.max(1, Math.min(8, Math.floor(n / K)));
      const pick = new Float32Array(K * cols * per);
      for (let k = 0; k < K; k++) {
        const first = requested.indexOf(k);
        for (let j = 0; j < cols; j++) pick.set(r.images.subarray((first + j) * per, (first + j + 1) * per), (k * cols + j) * per);
      }
      const grid = `${out}-w${w}.png`;
      await writePng(grid, imageGrid(pick, [K * cols, r.shape[1], r.shape[2], r.shape[3]], { cols }));
      rows.push({ w, agreement, scores, seconds: r.seconds, grid });
      process.stderr.write(`W=${w}: agreement ${(100 * agreement.overall).toFixed(1)}% (worst ${(100 * agreement.worst).toFixed(1)}%), FID ${scores.fid.toFixed(2)}, ${r.seconds.toFixed(1)} s\n`);
    }

    const pct = (x: number): string => `${fixed(100 * x, 1)}%`;
    const worstName = (a: ClassAgreement): string => names[a.perClass.indexOf(a.worst)] ?? '?';
    const main = markdownTable(
      ['W', 'agreement (all)', 'worst class', 'FID', 'KID', 'classes covered', 'seconds'],
      [
        ...rows.map((r) => [String(r.w), pct(r.agreement.overall), `${pct(r.agreement.worst)} (${worstName(r.agreement)})`, fixed(r.scores.fid, 2), `${fixed(r.scores.kid, 2)} ± ${fixed(r.scores.kidStd, 2)}`, String(r.scores.classesCovered), fixed(r.seconds, 1)]),
        [`real held-out images (${ho.shape[0]})`, pct(real.overall), `${pct(real.worst)} (${worstName(real)})`, `${fixed(floor.fid, 2)} (floor)`, `${fixed(floor.kid, 2)} ± ${fixed(floor.kidStd, 2)}`, String(floor.classesCovered), '—'],
      ],
      ['r', 'r', 'r', 'r', 'r', 'r', 'r'],
    );
    // Where the misses go, at one W and on real images: the classes the
    // classifier saw instead, most frequent first.
    const at = rows.find((r) => r.w === missesAt)!;
    const misses = (a: ClassAgreement, k: number): string => {
      const row = a.confusion[k]!;
      const total = a.counts[k]!;
      const wrong = row.map((c, j) => ({ c, j })).filter((e) => e.j !== k && e.c > 0).sort((x, y) => y.c - x.c).slice(0, 3);
      return wrong.length === 0 ? '—' : wrong.map((e) => `${names[e.j]} ${pct(e.c / total)}`).join(', ');
    };
    const perClass = markdownTable(
      ['class (asked as)', ...rows.map((r) => `W=${r.w}`), 'real images', `seen instead at W=${at.w}`, 'seen instead, real images'],
      names.map((name, k) => [`${name} (${asked(k)})`, ...rows.map((r) => pct(r.agreement.perClass[k]!)), pct(real.perClass[k]!), misses(at.agreement, k), misses(real, k)]),
      ['l', ...rows.map(() => 'r' as const), 'r', 'l', 'l'],
    );
    const plot = svgPlot({
      title: `Guidance on ${dataset}: agreement and FID vs W (N = ${n}, DDIM ${steps})`,
      xLabel: 'guidance weight W',
      yLabel: 'agreement % / FID',
      xTicks: weights,
      series: [
        { name: 'agreement, all (%)', points: rows.map((r) => ({ x: r.w, y: 100 * r.agreement.overall })) },
        { name: 'agreement, worst class (%)', points: rows.map((r) => ({ x: r.w, y: 100 * r.agreement.worst })), dashed: true },
        { name: 'FID', points: rows.map((r) => ({ x: r.w, y: r.scores.fid, label: fixed(r.scores.fid, 1) })) },
      ],
      refLines: [{ y: floor.fid, label: `real-vs-real FID floor ${fixed(floor.fid, 1)}` }, { y: dataset === 'mnist' ? 95 : 90, label: `target agreement ${dataset === 'mnist' ? 95 : 90}%` }],
    });
    writeFileSync(`${out}.svg`, plot);
    const rel = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
    const md = [
      `# Guidance on ${dataset}: agreement and FID against W`,
      '',
      `Generated by \`node dist/bench/guidance-sweep.js --dataset ${dataset}${checkpoint.endsWith('models/mnist') || checkpoint.endsWith('models/fashion-mnist-text') ? '' : ` --checkpoint ${checkpoint}`}\` on ${new Date().toISOString().slice(0, 10)}.`,
      `Model: \`${checkpoint.replace(ROOT + '/', '')}\` (step ${pipe.step}, ${cfg.model.text !== undefined ? `text-conditioned: each class asked for by its prompt` : `class-conditional`}), engine ${pipe.engine}.`,
      `N = ${n} samples per W (${n / K} per class, classes in order), DDIM ${steps} steps, seed ${seed} (the same starting noise for every W).`,
      `Agreement = the share of samples that the project's classifier (\`${classifierDir.replace(ROOT + '/', '')}\`) assigns to the class that was asked for;`,
      `the last row/column is the same classifier on the ${ho.shape[0]} real held-out images with their true labels (its own accuracy: the ceiling a per-class figure can be judged against).`,
      `FID/KID against ${n} held-out images; the real-vs-real floor at this N is **FID ${fixed(floor.fid, 2)}** (KID ${fixed(floor.kid, 2)}): what a perfect generator would score.`,
      '',
      main,
      `![agreement and FID vs W](${rel(out)}.svg)`,
      '',
      '## Per class',
      '',
      perClass,
      '## Samples (a row per class, 8 samples each)',
      '',
      markdownTable(rows.map((r) => `W = ${r.w}`), [rows.map((r) => `![W=${r.w}](${rel(r.grid)})`)]),
    ].join('\n');
    const report = withDiscussion(md, existsSync(`${out}.md`) ? readFileSync(`${out}.md`, 'utf8') : undefined);
    writeFileSync(`${out}.md`, report.text);
    writeFileSync(`${out}.json`, JSON.stringify({ dataset, checkpoint: checkpoint.replace(ROOT + '/', ''), step: pipe.step, n, seed, steps, floor: { fid: floor.fid, kid: floor.kid }, realAgreement: real, rows: rows.map((r) => ({ w: r.w, agreement: r.agreement, fid: r.scores.fid, kid: r.scores.kid, kidStd: r.scores.kidStd, classHistogram: r.scores.classHistogram, seconds: r.seconds })) }, null, 1) + '\n');
    process.stderr.write(`wrote ${out}.md (kept ${report.keptLines} hand-written lines), .svg, .json and ${rows.length} grids\n`);
  } finally {
    await pipe.dispose();
    clf.dispose();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`guidance-sweep: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
