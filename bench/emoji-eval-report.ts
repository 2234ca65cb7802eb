/**
 * The measuring instruments for emoji models, measured (docs/emoji-eval.md):
 * the emoji classifier's accuracy (held-out emoji, the other art style of
 * training emoji, training images, by category), the ceiling of prompt
 * agreement (its accuracy on the real images of the emoji a model is asked
 * for), and the FID/KID floor at N = 324 with its spread over subsets, next
 * to blurred images and noise for scale. No diffusion model needed.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/emoji-eval-report.js
 *   options (--help): --classifier models/classifier-emoji --seeds 10 --agreement-count 300 --out docs/emoji-eval
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { subsetDataset, type Dataset } from '../src/data/dataset.js';
import { initEngine } from '../src/engine/backend.js';
import { DiffuseError } from '../src/errors.js';
import { classifierParamCount, loadClassifier, type Classifier } from '../src/eval/classifier.js';
import { classAgreement, evaluateSamples, fitToClassifier, floorIndices, realFloor, referenceFeatures, trainReferenceIndices, type ClassAgreement, type SampleScores } from '../src/eval/evaluate.js';
import { emojiPromptRequests } from '../src/eval/emoji-prompts.js';
import { loadEmojiEvalSplits } from '../src/eval/splits.js';
import { loadEmoji } from '../src/data/emoji.js';
import { Rng } from '../src/rng.js';
import { boxBlur, fixed, markdownTable, meanSE, reportError, withDiscussion } from './study-common.js';
import { benchOptions } from './options.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const rel = (p: string): string => (p.startsWith(ROOT + '/') ? p.slice(ROOT.length + 1) : p);
const pct = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '—' : `${fixed(100 * x, 1)}%`);

function agreementOn(clf: Classifier, ds: Dataset): ClassAgreement {
  return classAgreement(clf, { images: ds.images, shape: ds.shape }, Int32Array.from(ds.labels!));
}

/** Mean over identities of the per-identity accuracy (each emoji counts once, whatever its number of skin tones). */
function identityMean(labels: Int32Array, predicted: Int32Array, ids: readonly string[]): number {
  const per = new Map<string, { ok: number; n: number }>();
  ids.forEach((id, i) => {
    const e = per.get(id) ?? { ok: 0, n: 0 };
    e.n++;
    if (predicted[i] === labels[i]) e.ok++;
    per.set(id, e);
  });
  const v = [...per.values()].map((e) => e.ok / e.n);
  return v.reduce((x, y) => x + y, 0) / v.length;
}

async function main(): Promise<void> {
  const { values: o } = benchOptions('emoji-eval-report', {
    classifier: { type: 'string', arg: 'DIR', help: 'the emoji classifier to report on', defaultText: 'models/classifier-emoji' },
    seeds: { type: 'int', min: 2, max: 1000, default: 10, arg: 'K', help: 'subset seeds of the floor and train-vs-train spreads (a spread needs two)' },
    'agreement-count': { type: 'int', min: 1, max: 100000, default: 300, arg: 'N', help: 'training emoji of the prompt-agreement ceiling (evenly spaced)' },
    out: { type: 'string', arg: 'PREFIX', help: 'writes PREFIX.md and PREFIX.json', defaultText: 'docs/emoji-eval' },
  } as const);
  const classifierDir = o.classifier ?? join(ROOT, 'models', 'classifier-emoji');
  const { seeds } = o;
  const agreementCount = o['agreement-count'];
  const out = o.out ?? join(ROOT, 'docs', 'emoji-eval');
  await initEngine({ backend: 'wasm' });
  const clf = loadClassifier(classifierDir);
  try {
    const cfg = clf.config;
    const t = cfg.training;
    if (t === undefined || cfg.groups === undefined || cfg.labelNames === undefined) throw new DiffuseError(`${classifierDir}: not an emoji classifier (no training record, groups or label names)`);
    const t0 = performance.now();
    const splits = await loadEmojiEvalSplits({ imageSize: cfg.imageSize });
    const { train, heldOut } = splits;
    const val = splits.validation!.data;
    const clfTrain = splits.classifierTrain!;
    const n = heldOut.shape[0];

    // --- the classifier
    const ho = agreementOn(clf, heldOut);
    const hoPred = clf.predict(heldOut.images, n).labels;
    const va = agreementOn(clf, val);
    const tr = agreementOn(clf, clfTrain);
    const hoIdMean = identityMean(heldOut.labels, hoPred, heldOut.emoji.map((e) => e.identity));
    const catNames = cfg.groups.names;
    const perCat = catNames.map((name, g) => {
      const idx: number[] = [];
      heldOut.categories.forEach((c, i) => { if (c === g) idx.push(i); });
      if (idx.length === 0) return [name, '0', '—', '—'];
      const a = agreementOn(clf, subsetDataset(heldOut, idx));
      return [name, String(idx.length), pct(a.overall), pct(a.group?.overall)];
    });
    // Held-out emoji one by one: what the classifier makes of each.
    const byId = new Map<string, { name: string; sub: string; ok: number; n: number; seen: Map<string, number> }>();
    heldOut.emoji.forEach((e, i) => {
      const r = byId.get(e.identity) ?? { name: e.name, sub: e.subcategory, ok: 0, n: 0, seen: new Map<string, number>() };
      r.n++;
      const p = cfg.labelNames![hoPred[i]!]!;
      if (p === e.subcategory) r.ok++;
      r.seen.set(p, (r.seen.get(p) ?? 0) + 1);
      byId.set(e.identity, r);
    });
    const idRows = [...byId.values()].map((r) => {
      const top = [...r.seen].sort((a, b) => b[1] - a[1])[0]!;
      return [r.name, r.sub, `${r.ok}/${r.n}`, top[0] === r.sub ? '✓' : `${top[0]} (${top[1]}/${r.n})`];
    });

    // --- the ceiling of prompt agreement: real images of the emoji a model is asked for
    const requests = emojiPromptRequests(train, cfg.labelNames, { count: agreementCount });
    const reqImages = requests.flatMap((r) => r.images);
    const reqReal = agreementOn(clf, subsetDataset(train, reqImages));
    const valIds = new Set(val.emoji.map((e) => e.identity));
    const reqVal: number[] = [];
    val.emoji.forEach((e, i) => { if (requests.some((r) => r.identity === e.identity)) reqVal.push(i); });
    const reqValAcc = reqVal.length > 0 ? agreementOn(clf, subsetDataset(val, reqVal)) : undefined;

    // --- FID / KID at N = all held-out images
    const ref = referenceFeatures(clf, heldOut, n, 0);
    const floors: SampleScores[] = [];
    const trainVsTrain: SampleScores[] = [];
    for (let s = 0; s < seeds; s++) {
      // The reference is all n held-out images whatever the seed; the seed draws the training images and KID subsets.
      const refS = s === 0 ? ref : { ...ref, seed: s };
      floors.push(realFloor({ classifier: clf, train, reference: heldOut, referenceFeatures: refS, n, seed: s }));
      // The floor's images against n other training images: the training distribution, without the gap to new emoji.
      const a = subsetDataset(train, floorIndices(train.shape[0], n, s));
      const b = subsetDataset(train, trainReferenceIndices(train.shape[0], n, s));
      trainVsTrain.push(evaluateSamples({ classifier: clf, samples: { images: a.images, shape: a.shape }, reference: b, n, seed: s }));
    }
    const real0 = subsetDataset(train, floorIndices(train.shape[0], n, 0));
    const [, S, , C] = train.shape;
    const trainRef0 = referenceFeatures(clf, subsetDataset(train, trainReferenceIndices(train.shape[0], n, 0)), n, 0);
    const blurImgs = { images: boxBlur(real0.images, n, S, C), shape: real0.shape };
    const rng = new Rng(1);
    const noiseImgs = { images: new Float32Array(real0.images.length).map(() => rng.uniform() * 2 - 1), shape: real0.shape };
    const both = (b: { images: Float32Array; shape: [number, number, number, number] }): { held: SampleScores; train: SampleScores } => ({
      held: evaluateSamples({ classifier: clf, samples: b, reference: ref, n }),
      train: evaluateSamples({ classifier: clf, samples: b, reference: trainRef0, n }),
    });
    const blurred = both(blurImgs);
    const noise = both(noiseImgs);
    // The 64×64 held-out images, brought to the classifier's size by fitToClassifier, are the data set's own 32×32 images.
    const big = await loadEmoji({ split: 'heldout', imageSize: 64 });
    const fitted = fitToClassifier(clf, { images: big.images, shape: big.shape });
    let maxDiff = 0;
    for (let i = 0; i < fitted.images.length; i++) maxDiff = Math.max(maxDiff, Math.abs(fitted.images[i]! - heldOut.images[i]!));
    const secs = (performance.now() - t0) / 1000;

    const spread = (xs: SampleScores[], k: 'fid' | 'kid'): string => {
      const v = xs.map((x) => x[k]);
      const m = meanSE(v);
      const sd = m.se * Math.sqrt(m.n);
      return `${fixed(m.mean, 2)} ± ${fixed(sd, 2)} (${fixed(Math.min(...v), 2)}–${fixed(Math.max(...v), 2)})`;
    };
    const aug = t.augment === false ? 'none' : t.augment === true ? '±2 px shifts' : `±${t.augment.shift} px shifts${t.augment.flip ? ', left-right flips' : ''}`;
    const md = [
      '# Measuring emoji models: the classifier and the floor',
      '',
      `Generated by \`node dist/bench/emoji-eval-report.js\` on ${new Date().toISOString().slice(0, 10)} (${fixed(secs, 0)} s) from \`${rel(classifierDir)}\`.`,
      'How these instruments are built and why, and how to read them: below the tables.',
      '',
      '## The classifier',
      '',
      markdownTable(['', 'value'], [
        ['input', `${cfg.imageSize}×${cfg.imageSize}×${cfg.channels}; larger images are shrunk by ${cfg.resize === 'area' ? 'area averages (the data set\'s own downsampling)' : 'bilinear resampling'}`],
        ['architecture', `conv ${cfg.convChannels.join(' → ')} (3×3, the first stride 1, then stride 2), dense ${cfg.featureDim} (the FID/KID features), dense ${cfg.numClasses} (subcategories); ${cfg.groups.names.length} ${cfg.groups.name} groups read off the subcategory`],
        ['parameters', `${classifierParamCount(cfg).toLocaleString('en-US')} (${fixed((classifierParamCount(cfg) * 4) / 1024, 0)} kB of float32)`],
        ['training', `${t.trainCount} images, ${t.epochs} epochs of batch ${t.batchSize}, Adam lr ${t.lr} cosine-decayed, ${aug}, seed ${t.seed}; ${fixed(t.seconds, 0)} s (models/classifier-emoji/README.md)`],
      ]),
      markdownTable(['images', 'count', 'subcategory accuracy', `${cfg.groups.name} accuracy`], [
        [`held-out emoji (${byId.size} emoji never trained on, every image)`, String(n), pct(ho.overall), pct(ho.group?.overall)],
        ['held-out emoji, each emoji weighted equally', String(byId.size), pct(hoIdMean), '—'],
        [`validation: the other art style of ${valIds.size} training emoji`, String(val.shape[0]), pct(va.overall), pct(va.group?.overall)],
        ['training images (what the classifier trained on, no augmentation)', String(clfTrain.shape[0]), pct(tr.overall), pct(tr.group?.overall)],
        [`real images of the ${requests.length} emoji prompt agreement asks for (all styles and tones)`, String(reqImages.length), pct(reqReal.overall), pct(reqReal.group?.overall)],
        ['… of which the validation images (the style the classifier did not see)', String(reqVal.length), pct(reqValAcc?.overall), pct(reqValAcc?.group?.overall)],
      ], ['l', 'r', 'r', 'r']),
      'Held-out emoji by category (subcategory and category accuracy):',
      '',
      markdownTable(['category', 'held-out images', 'subcategory', 'category'], perCat, ['l', 'r', 'r', 'r']),
      '<details><summary>Each held-out emoji: images whose subcategory the classifier gets right, and its most common answer</summary>',
      '',
      markdownTable(['emoji', 'subcategory', 'right', 'most common answer'], idRows, ['l', 'l', 'r', 'l']),
      '</details>',
      '',
      `## FID/KID at N = ${n}: the floor and its spread`,
      '',
      `Held-out reference: all ${n} held-out images (every seed). Each seed draws another ${n} training images to score, another ${n} other training images as the second reference, and the KID subsets (${floors[0]!.kidSubsetSize} images); mean ± standard deviation over ${seeds} seeds (min–max).`,
      '',
      markdownTable(['images scored', 'FID vs held-out', 'KID vs held-out', `FID vs ${n} other training images`, 'KID vs them'], [
        [`${n} real training images (**the floors**)`, spread(floors, 'fid'), spread(floors, 'kid'), spread(trainVsTrain, 'fid'), spread(trainVsTrain, 'kid')],
        [`the seed-0 training images (FID ${fixed(floors[0]!.fid, 2)} / ${fixed(trainVsTrain[0]!.fid, 2)}) after one 3×3 box blur`, fixed(blurred.held.fid, 2), fixed(blurred.held.kid, 2), fixed(blurred.train.fid, 2), fixed(blurred.train.kid, 2)],
        ['uniform noise', fixed(noise.held.fid, 2), fixed(noise.held.kid, 2), fixed(noise.train.fid, 2), fixed(noise.train.kid, 2)],
      ], ['l', 'r', 'r', 'r', 'r']),
      `"Other training images": ${n} training images none of which is among the floor's (\`trainReferenceIndices\`): the training distribution without the gap between known and new emoji.`,
      '',
      `The held-out images at 64×64, brought to the classifier by \`fitToClassifier\` (area averages), differ from the data set's own ${cfg.imageSize}×${cfg.imageSize} images by at most ${maxDiff.toExponential(1)}: a 64×64 sample and a ${cfg.imageSize}×${cfg.imageSize} one are judged alike.`,
      '',
    ].join('\n');
    const report = withDiscussion(md, existsSync(`${out}.md`) ? readFileSync(`${out}.md`, 'utf8') : undefined);
    writeFileSync(`${out}.md`, report.text);
    writeFileSync(`${out}.json`, JSON.stringify({
      classifier: rel(classifierDir), n, seeds,
      heldOut: { accuracy: ho.overall, group: ho.group?.overall, identityMean: hoIdMean },
      validation: { n: val.shape[0], accuracy: va.overall, group: va.group?.overall },
      train: { n: clfTrain.shape[0], accuracy: tr.overall },
      agreementCeiling: { identities: requests.length, images: reqImages.length, accuracy: reqReal.overall, validationImages: reqVal.length, validationAccuracy: reqValAcc?.overall },
      floor: floors.map((s) => ({ fid: s.fid, kid: s.kid })), trainVsTrain: trainVsTrain.map((s) => ({ fid: s.fid, kid: s.kid })),
      blurred: { heldOut: { fid: blurred.held.fid, kid: blurred.held.kid }, train: { fid: blurred.train.fid, kid: blurred.train.kid } },
      noise: { heldOut: { fid: noise.held.fid, kid: noise.held.kid }, train: { fid: noise.train.fid, kid: noise.train.kid } }, maxDiff64: maxDiff,
    }, null, 1) + '\n');
    process.stderr.write(`held-out ${pct(ho.overall)} (category ${pct(ho.group?.overall)}), validation ${pct(va.overall)}, floor FID ${spread(floors, 'fid')}, train-vs-train ${spread(trainVsTrain, 'fid')}; wrote ${out}.md (kept ${report.keptLines} hand-written lines) and .json\n`);
  } finally {
    clf.dispose();
  }
}

main().catch(reportError);
