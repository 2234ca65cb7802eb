/**
 * Generalisation of an emoji text model, shown honestly (issue #15): the
 * held-out emoji it can be asked for (every word of the name in its
 * vocabulary; the model never saw them) and new combinations of known words
 * ("blue apple", "cat with a hat"). For each prompt a few samples at each
 * guidance weight, what the classifier makes of them, and the nearest
 * training emoji in the classifier's feature space (is it inventing, or
 * recalling something it saw?). Writes docs/emoji-generalisation.md with two
 * captioned PNG grids (held-out emoji, new combinations) and a .json.
 *
 *   node dist/bench/emoji-generalisation.js --checkpoint runs/emoji-latent
 *   options (--help): --weights 0,2,4 --per-weight 2 --sampling-steps 50 --seed 0 --classifier models/classifier-emoji
 *            --out docs/emoji-generalisation
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SAMPLING_STEPS, SEED } from '../src/cli/options.js';
import { loadEmoji } from '../src/data/emoji.js';
import { initEngine } from '../src/engine/backend.js';
import { DiffuseError } from '../src/errors.js';
import { loadClassifier, type Classifier } from '../src/eval/classifier.js';
import { emojiPromptRequests } from '../src/eval/emoji-prompts.js';
import { fitToClassifier } from '../src/eval/evaluate.js';
import { pipelineImages, type PromptImages } from '../src/eval/prompts.js';
import { loadEmojiEvalSplits } from '../src/eval/splits.js';
import { promptCondition } from '../src/guidance/condition.js';
import { writePng } from '../src/io/image.js';
import { ProgressBar } from '../src/io/progress.js';
import { loadPipeline } from '../src/pipeline.js';
import type { ImageBatch } from '../src/tensor.js';
import { captionGrid, upscaleNearest } from './caption-grid.js';
import { markdownTable, reportError, withDiscussion } from './study-common.js';
import { benchOptions, guidanceWeights } from './options.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const rel = (p: string): string => (p.startsWith(ROOT + '/') ? p.slice(ROOT.length + 1) : p);

/** New combinations of known words, and the subcategories a picture of each may fairly land in. */
export const NEW_COMBINATIONS: readonly { prompt: string; expect: readonly string[] }[] = [
  { prompt: 'blue apple', expect: ['food-fruit'] },
  { prompt: 'purple banana', expect: ['food-fruit'] },
  { prompt: 'rainbow apple', expect: ['food-fruit'] },
  { prompt: 'smiling apple', expect: ['food-fruit', 'face-smiling'] },
  { prompt: 'crying pizza', expect: ['food-prepared', 'face-concerned'] },
  { prompt: 'cat with a hat', expect: ['cat-face', 'animal-mammal', 'face-hat'] },
  { prompt: 'green cat', expect: ['cat-face', 'animal-mammal'] },
  { prompt: 'dog with sunglasses', expect: ['animal-mammal', 'face-glasses'] },
  { prompt: 'pink elephant', expect: ['animal-mammal'] },
  { prompt: 'frog with a crown', expect: ['animal-amphibian'] },
  { prompt: 'yellow fish', expect: ['animal-marine'] },
  { prompt: 'red heart with a smile', expect: ['heart', 'face-smiling', 'face-affection'] },
  { prompt: 'car on fire', expect: ['transport-ground'] },
  { prompt: 'happy cloud', expect: ['sky & weather', 'face-smiling'] },
  { prompt: 'angry sun', expect: ['sky & weather', 'face-negative'] },
  { prompt: 'snowman on fire', expect: ['sky & weather'] },
  { prompt: 'robot with a hat', expect: ['face-costume', 'face-hat'] },
  { prompt: 'sad sun', expect: ['sky & weather', 'face-concerned'] },
];

interface Row {
  prompt: string;
  kind: 'held-out emoji' | 'new combination';
  expect: readonly string[];
  /** Why the model cannot be asked (an unknown word), when it cannot. */
  unreadable?: string;
  /** A real image (held-out emoji only, which the model never saw). */
  real?: Float32Array;
  /** Per weight: the samples, the classifier's answers, the nearest training emoji of each. */
  perWeight: { w: number; images: ImageBatch; seen: string[]; nearest: string[] }[];
}

/** The name of the nearest training image (squared distance in the classifier's feature space) of each sample. */
function nearestNames(clf: Classifier, samples: ImageBatch, trainFeatures: Float32Array, trainNames: readonly string[]): string[] {
  const fit = fitToClassifier(clf, samples);
  const f = clf.features(fit.images, fit.shape[0]);
  const D = clf.config.featureDim;
  const N = trainNames.length;
  const out: string[] = [];
  for (let i = 0; i < fit.shape[0]; i++) {
    let best = -1;
    let bestD = Infinity;
    for (let j = 0; j < N; j++) {
      let d = 0;
      for (let k = 0; k < D; k++) { const e = f[i * D + k]! - trainFeatures[j * D + k]!; d += e * e; }
      if (d < bestD) { bestD = d; best = j; }
    }
    out.push(trainNames[best]!);
  }
  return out;
}

async function main(): Promise<void> {
  const { values: o } = benchOptions('emoji-generalisation', {
    checkpoint: { type: 'string', arg: 'DIR', help: 'a text checkpoint trained on emoji (required)' },
    weights: { type: 'string', arg: 'LIST', default: '0,2,4', help: 'guidance weights' },
    'per-weight': { type: 'int', min: 1, max: 100, default: 2, arg: 'N', help: 'samples per prompt at each weight' },
    'sampling-steps': { ...SAMPLING_STEPS, default: 50, defaultText: undefined, help: 'DDIM steps' },
    seed: SEED,
    classifier: { type: 'string', arg: 'DIR', help: 'the emoji classifier', defaultText: 'models/classifier-emoji' },
    out: { type: 'string', arg: 'PREFIX', help: 'writes PREFIX.md, PREFIX.json and the grids PREFIX-*.png', defaultText: 'docs/emoji-generalisation' },
  } as const);
  const { checkpoint, seed } = o;
  const weights = guidanceWeights('weights', o.weights);
  const perWeight = o['per-weight'];
  const steps = o['sampling-steps'];
  const classifierDir = o.classifier ?? join(ROOT, 'models', 'classifier-emoji');
  const out = o.out ?? join(ROOT, 'docs', 'emoji-generalisation');
  if (checkpoint === undefined) throw new DiffuseError('emoji-generalisation needs --checkpoint DIR (a text model trained on emoji)');

  await initEngine({}); // the default engine: native where its addon is built, else wasm
  const clf = loadClassifier(classifierDir);
  const pipe = await loadPipeline(checkpoint);
  try {
    const cfg = pipe.config;
    const names = clf.config.labelNames;
    if (cfg.model.text === undefined) throw new DiffuseError(`${checkpoint}: not a text-conditioned model`);
    if (names === undefined) throw new DiffuseError(`${classifierDir}: the classifier has no label names`);
    const splits = await loadEmojiEvalSplits({ imageSize: clf.config.imageSize });
    const trainFeatures = clf.features(splits.train.images, splits.train.shape[0]);
    const trainNames = splits.train.emoji.map((e) => e.name);
    // Held-out emoji (every identity, so the unreadable ones are counted), shown at the model's display size.
    const heldReq = emojiPromptRequests(splits.heldOut, names);
    const size = Math.max(cfg.data.imageSize, clf.config.imageSize);
    const heldBig = await loadEmoji({ split: 'heldout', imageSize: size });
    const per = size * size * 3;
    const readError = (p: string): string | undefined => {
      try {
        promptCondition(cfg, [p], 0);
        return undefined;
      } catch (e) {
        if (e instanceof DiffuseError) return e.message;
        throw e;
      }
    };
    const rows: Row[] = [
      ...heldReq.map((r): Row => {
        const err = readError(r.prompt);
        return {
          prompt: r.prompt, kind: 'held-out emoji', expect: [r.subcategory], perWeight: [],
          ...(err !== undefined ? { unreadable: err } : {}),
          real: heldBig.images.slice(r.images[0]! * per, (r.images[0]! + 1) * per),
        };
      }),
      ...NEW_COMBINATIONS.map((c): Row => { const err = readError(c.prompt); return { prompt: c.prompt, kind: 'new combination', expect: c.expect, perWeight: [], ...(err !== undefined ? { unreadable: err } : {}) }; }),
    ];
    const asked = rows.filter((r) => r.unreadable === undefined);
    const prompts = asked.flatMap((r) => Array.from({ length: perWeight }, () => r.prompt));
    for (const w of weights) {
      let bar: ProgressBar | undefined;
      const x: PromptImages = await pipelineImages(pipe, { sampler: 'ddim', steps, batchSize: 64, onStep: (d, t) => (bar ??= new ProgressBar({ total: t, label: `W=${w}`, unit: 'nfe' })).update(d, {}) })(prompts, w, seed);
      bar?.finish();
      const fit = fitToClassifier(clf, x);
      const seen = Array.from(clf.predict(fit.images, fit.shape[0]).labels, (k) => names[k]!);
      const nearest = nearestNames(clf, x, trainFeatures, trainNames);
      const [, h, ww, c] = x.shape;
      const p1 = h * ww * c;
      asked.forEach((r, i) => {
        const sl = (a: number, b: number): ImageBatch => ({ images: x.images.slice(a * p1, b * p1), shape: [b - a, h, ww, c] });
        r.perWeight.push({ w, images: sl(i * perWeight, (i + 1) * perWeight), seen: seen.slice(i * perWeight, (i + 1) * perWeight), nearest: nearest.slice(i * perWeight, (i + 1) * perWeight) });
      });
    }

    // Grids: one per kind; columns: (real,) then perWeight samples per weight.
    const files: Record<string, string> = {};
    for (const kind of ['held-out emoji', 'new combination'] as const) {
      const these = asked.filter((r) => r.kind === kind);
      if (these.length === 0) continue;
      const withReal = kind === 'held-out emoji';
      const headings = [...(withReal ? ['real (unseen)'] : []), ...weights.flatMap((w) => Array.from({ length: perWeight }, (_, j) => (j === 0 ? `w=${w}` : '')))];
      const gridRows = these.map((r) => {
        const cells = [...(withReal ? [r.real!] : []), ...r.perWeight.map((p) => upscaleNearest(p.images, size))];
        const imgs = new Float32Array(headings.length * per);
        let o = 0;
        for (const cell of cells) { imgs.set(cell, o); o += cell.length; }
        return { label: r.prompt, images: imgs };
      });
      const gaps = [...(withReal ? [0] : []), ...weights.slice(0, -1).map((_, i) => (withReal ? 1 : 0) + (i + 1) * perWeight - 1)];
      const file = `${out}-${kind === 'held-out emoji' ? 'heldout' : 'combinations'}.png`;
      await writePng(file, captionGrid(gridRows, { size, channels: 3, cols: headings.length, headings, gapAfter: gaps, scale: size >= 64 ? 1 : 2, labelChars: 20, textScale: 2 }));
      files[kind] = file;
    }

    const frac = (r: Row, w: number): string => {
      const p = r.perWeight.find((x) => x.w === w)!;
      return `${p.seen.filter((s) => r.expect.includes(s)).length}/${p.seen.length}`;
    };
    const mostCommon = (xs: string[]): string => {
      const m = new Map<string, number>();
      for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
      const [k, v] = [...m].sort((a, b) => b[1] - a[1])[0]!;
      return v > 1 ? `${k} (${v}/${xs.length})` : k;
    };
    const wTop = weights[weights.length - 1]!;
    const table = (kind: Row['kind']): string => markdownTable(
      ['prompt', kind === 'held-out emoji' ? 'subcategory' : 'fair subcategories', ...weights.map((w) => `in them, W=${w}`), `classifier sees (W=${wTop})`, `nearest training emoji (W=${wTop})`],
      rows.filter((r) => r.kind === kind).map((r) => r.unreadable !== undefined
        ? [r.prompt, r.expect.join(', '), ...weights.map(() => '—'), `cannot be asked: ${r.unreadable.replace(/^[^:]*unknown word/, 'unknown word')}`, '—']
        : [r.prompt, r.expect.join(', '), ...weights.map((w) => frac(r, w)), mostCommon(r.perWeight.find((x) => x.w === wTop)!.seen), mostCommon(r.perWeight.find((x) => x.w === wTop)!.nearest)]),
    );
    const heldRows = rows.filter((r) => r.kind === 'held-out emoji');
    const totals = (kind: Row['kind'], w: number): string => {
      const rs = asked.filter((r) => r.kind === kind);
      const ok = rs.reduce((a, r) => a + Number(frac(r, w).split('/')[0]), 0);
      return `${ok}/${rs.length * perWeight}`;
    };
    const base = out.slice(out.lastIndexOf('/') + 1);
    const md = [
      '# Generalisation on emoji: held-out emoji and new combinations',
      '',
      `Generated by \`node dist/bench/emoji-generalisation.js --checkpoint ${rel(checkpoint)}\` on ${new Date().toISOString().slice(0, 10)}: step ${pipe.step}, engine ${pipe.engine}.`,
      `${perWeight} samples per prompt at each guidance weight W (DDIM ${steps}, seed ${seed}, the same noise at each W), judged by \`${rel(classifierDir)}\` (docs/emoji-eval.md);`,
      '"nearest training emoji" is the training image closest to the sample in the classifier\'s feature space: a name that is not the prompt\'s says the model drew something it knows instead.',
      '',
      `## Held-out emoji (${heldRows.length - heldRows.filter((r) => r.unreadable !== undefined).length} of ${heldRows.length} can be asked for; the model never saw any of them)`,
      '',
      `In their subcategory: ${weights.map((w) => `W=${w}: ${totals('held-out emoji', w)}`).join(', ')}.`,
      '',
      ...(files['held-out emoji'] !== undefined ? [`![held-out emoji](${base}-heldout.png)`, ''] : []),
      table('held-out emoji'),
      '## New combinations of known words',
      '',
      `In a fair subcategory: ${weights.map((w) => `W=${w}: ${totals('new combination', w)}`).join(', ')}.`,
      '',
      ...(files['new combination'] !== undefined ? [`![new combinations](${base}-combinations.png)`, ''] : []),
      table('new combination'),
    ].join('\n');
    const report = withDiscussion(md, existsSync(`${out}.md`) ? readFileSync(`${out}.md`, 'utf8') : undefined);
    writeFileSync(`${out}.md`, report.text);
    writeFileSync(`${out}.json`, JSON.stringify({
      checkpoint: rel(checkpoint), step: pipe.step, weights, perWeight, steps, seed,
      rows: rows.map((r) => ({ prompt: r.prompt, kind: r.kind, expect: r.expect, unreadable: r.unreadable, perWeight: r.perWeight.map((p) => ({ w: p.w, seen: p.seen, nearest: p.nearest })) })),
    }, null, 1) + '\n');
    process.stderr.write(`wrote ${out}.md (kept ${report.keptLines} hand-written lines), .json and ${Object.keys(files).length} grids\n`);
  } finally {
    await pipe.dispose();
    clf.dispose();
  }
}

main().catch(reportError);
