/**
 * Latent against pixel space on emoji (issue #15): the one claim that made
 * stable diffusion, measured here. Two text-to-image checkpoints, trained on
 * the same emoji captions for the same wall-clock, one sampling in a latent
 * space (and decoding) and one in pixel space at 32×32: training img/s and
 * wall-clock (from each run's state.json and log.jsonl), time per sample
 * (measured here, both models in the same run, alternating), FID/KID against
 * the held-out emoji next to the real-vs-real floor, prompt agreement at each
 * guidance weight next to the classifier's own accuracy, and a grid of
 * samples for the same prompts. Writes docs/emoji-latent-vs-pixel.md (+ .json,
 * + .png).
 *
 *   node dist/bench/emoji-compare.js --latent runs/emoji-latent --pixel runs/emoji-pixel32
 *   options (--help): --weights 0,2,4 --fid-weights 2 --fid-seeds 1 --agreement-count 200 --sampling-steps 50 --seed 0
 *            --classifier models/classifier-emoji --grid-prompts 8 --out docs/emoji-latent-vs-pixel
 *
 * Any two text checkpoints work (two pixel ones to try the bench). A latent
 * checkpoint must come out of loadPipeline sampling pixels: either its
 * generateWith returns decoded images, or the pipeline has
 * `decode(latents) -> images`, which is applied after sampling (timed with it).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SAMPLING_STEPS, SEED } from '../src/cli/options.js';
import { subsetDataset } from '../src/data/dataset.js';
import { initEngine } from '../src/engine/backend.js';
import { DiffuseError } from '../src/errors.js';
import { classifierAccuracies, loadClassifier } from '../src/eval/classifier.js';
import { emojiPromptRequests } from '../src/eval/emoji-prompts.js';
import { evaluateSamples, floorIndices, realFloor, referenceFeatures, trainReferenceIndices, type SampleScores } from '../src/eval/evaluate.js';
import { floorPrompts, pipelineImages, promptAgreement, promptReadable, type ImagesFromPrompts, type PromptAgreement } from '../src/eval/prompts.js';
import { loadEmojiEvalSplits } from '../src/eval/splits.js';
import { writePng } from '../src/io/image.js';
import { ProgressBar } from '../src/io/progress.js';
import { loadPipeline, type Pipeline } from '../src/pipeline.js';
import type { ImageBatch } from '../src/tensor.js';
import { checkpointDir, loadModelWeights } from '../src/train/checkpoint.js';
import { readLog } from '../src/train/log.js';
import { captionGrid, upscaleNearest } from './caption-grid.js';
import { fixed, markdownTable, meanSE, reportError, withDiscussion } from './study-common.js';
import { benchOptions, guidanceWeights } from './options.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const rel = (p: string): string => (p.startsWith(ROOT + '/') ? p.slice(ROOT.length + 1) : p);
const pct = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '—' : `${fixed(100 * x, 1)}%`);

/** What a run folder says about its training. */
export interface TrainingRecord {
  steps: number;
  batchSize: number;
  wallSeconds: number;
  /** Images per second over the whole run (steps × batch / wall-clock, checkpoints and sample grids included). */
  imgPerSec: number;
  /** The last log line's img/s (the training loop since the last resume), when the run has a log.jsonl. */
  loggedImgPerSec?: number;
}

/** Read step, batch and wall-clock from a checkpoint's state.json and config.json (and the run's log.jsonl if there). */
export function trainingRecord(dir: string, batchSize: number): TrainingRecord {
  const ck = checkpointDir(dir);
  const file = join(ck, 'state.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DiffuseError(`${file}: cannot read the training state (${(e as Error).message})`, { cause: e });
  }
  const st = raw as { step?: unknown; wallTimeSec?: unknown };
  if (typeof st.step !== 'number' || typeof st.wallTimeSec !== 'number' || !(st.wallTimeSec > 0)) {
    throw new DiffuseError(`${file}: needs step and a positive wallTimeSec to compare training speed`);
  }
  const logFile = [join(dir, 'log.jsonl'), join(dirname(ck), 'log.jsonl')].find((f) => existsSync(f));
  const log = logFile !== undefined ? readLog(logFile) : [];
  const last = log[log.length - 1];
  return {
    steps: st.step,
    batchSize,
    wallSeconds: st.wallTimeSec,
    imgPerSec: (st.step * batchSize) / st.wallTimeSec,
    ...(last !== undefined ? { loggedImgPerSec: last.imgPerSec } : {}),
  };
}

interface Side {
  readonly key: 'latent' | 'pixel';
  readonly dir: string;
  readonly pipe: Pipeline;
  /** Its images from prompts, reporting network evaluations to `onStep`. */
  readonly images: (onStep?: (done: number, total: number) => void) => ImagesFromPrompts;
  readonly params: number;
  readonly training: TrainingRecord;
  readonly space: string;
}

async function openSide(key: Side['key'], dir: string, steps: number): Promise<Side> {
  const pipe = await loadPipeline(dir);
  try {
    if (pipe.config.model.text === undefined) throw new DiffuseError(`${dir}: not a text-conditioned model (train it with --text)`);
    const decoder = (pipe as Partial<{ decode: (latents: ImageBatch) => Promise<ImageBatch> }>).decode;
    const { params } = await loadModelWeights(pipe.checkpoint);
    const count = Object.values(params).reduce((a, t) => a + t.data.length, 0);
    const d = pipe.config.data;
    return {
      key, dir, pipe, params: count,
      images: (onStep) => pipelineImages(pipe, { sampler: 'ddim', steps, batchSize: 64, ...(decoder !== undefined ? { decode: decoder.bind(pipe) } : {}), ...(onStep !== undefined ? { onStep } : {}) }),
      training: trainingRecord(dir, pipe.config.train.batchSize),
      space: `${pipe.config.model.imageSize}×${pipe.config.model.imageSize}×${pipe.config.model.inChannels}${decoder !== undefined ? ', decoded after sampling' : ''} (data ${d.dataset} ${d.imageSize}×${d.imageSize}×${d.channels})`,
    };
  } catch (e) {
    await pipe.dispose();
    throw e;
  }
}

async function main(): Promise<void> {
  const { values: o } = benchOptions('emoji-compare', {
    latent: { type: 'string', arg: 'DIR', help: 'the latent text checkpoint trained on emoji (required)' },
    pixel: { type: 'string', arg: 'DIR', help: 'the pixel text checkpoint trained on emoji (required)' },
    weights: { type: 'string', arg: 'LIST', default: '0,2,4', help: 'guidance weights of prompt agreement and the grid' },
    'fid-weights': { type: 'string', arg: 'LIST', default: '2', help: 'guidance weights FID/KID is computed at' },
    'fid-seeds': { type: 'int', min: 1, max: 100, default: 1, arg: 'K', help: 'sample seeds per FID weight' },
    'fid-n': { type: 'int', min: 20, max: 100000, arg: 'N', help: 'samples per FID/KID (and real images per floor draw): fewer is faster and noisier; the floor is measured at the same N', defaultText: 'all held-out emoji (324)' },
    'agreement-count': { type: 'int', min: 1, max: 100000, default: 200, arg: 'N', help: 'training emoji asked for by name (evenly spaced)' },
    'sampling-steps': { ...SAMPLING_STEPS, default: 50, defaultText: undefined, help: 'DDIM steps' },
    seed: SEED,
    'grid-prompts': { type: 'int', min: 1, max: 1000, default: 8, arg: 'N', help: 'prompts (rows) of the sample grid' },
    classifier: { type: 'string', arg: 'DIR', help: 'the emoji classifier', defaultText: 'models/classifier-emoji' },
    out: { type: 'string', arg: 'PREFIX', help: 'writes PREFIX.md, PREFIX.json and PREFIX.png', defaultText: 'docs/emoji-latent-vs-pixel' },
  } as const);
  const latentDir = o.latent;
  const pixelDir = o.pixel;
  const weights = guidanceWeights('weights', o.weights);
  const fidWeights = guidanceWeights('fid-weights', o['fid-weights']);
  const fidSeeds = o['fid-seeds'];
  const agreementCount = o['agreement-count'];
  const steps = o['sampling-steps'];
  const { seed } = o;
  const gridPrompts = o['grid-prompts'];
  const classifierDir = o.classifier ?? join(ROOT, 'models', 'classifier-emoji');
  const out = o.out ?? join(ROOT, 'docs', 'emoji-latent-vs-pixel');
  if (latentDir === undefined || pixelDir === undefined) throw new DiffuseError('emoji-compare needs --latent DIR and --pixel DIR (two text checkpoints trained on emoji)');
  for (const d of [latentDir, pixelDir]) if (!existsSync(d)) throw new DiffuseError(`checkpoint ${d}: no such folder`);

  await initEngine({ backend: 'wasm' });
  const clf = loadClassifier(classifierDir);
  const sides: Side[] = [];
  try {
    const cfg = clf.config;
    if (cfg.labelNames === undefined) throw new DiffuseError(`${classifierDir}: the classifier has no label names`);
    const splits = await loadEmojiEvalSplits({ imageSize: cfg.imageSize });
    const { train, heldOut } = splits;
    const n = Math.min(o['fid-n'] ?? heldOut.shape[0], heldOut.shape[0]);
    sides.push(await openSide('latent', latentDir, steps), await openSide('pixel', pixelDir, steps));
    // Both models must read every prompt asked (the same vocabulary of training captions).
    const readable = (p: string): boolean => sides.every((s) => promptReadable(s.pipe.config, p));
    const requests = emojiPromptRequests(train, cfg.labelNames, { count: agreementCount, readable });
    const ceiling = classifierAccuracies(clf, subsetDataset(train, requests.flatMap((r) => r.images)));
    const validation = classifierAccuracies(clf, splits.validation.data);
    const held = classifierAccuracies(clf, heldOut);

    // Warm-up (ONNX sessions, kernels), then prompt agreement: for each W, one model then the other.
    for (const s of sides) await s.images()([requests[0]!.prompt], 1, seed);
    const agreement = new Map<string, PromptAgreement[]>(sides.map((s) => [s.key, []]));
    for (const w of weights) {
      for (const s of sides) {
        let bar: ProgressBar | undefined;
        const [r] = await promptAgreement({
          classifier: clf, requests, weights: [w], seed,
          images: s.images((done, total) => (bar ??= new ProgressBar({ total, label: `${s.key} W=${w}`, unit: 'nfe' })).update(done, {})),
        });
        bar?.finish();
        agreement.get(s.key)!.push(r!);
        process.stderr.write(`${s.key} W=${w}: agreement ${pct(r!.overall)} (category ${pct(r!.group?.overall)}), ${fixed((1000 * r!.samples.seconds) / requests.length, 0)} ms/sample\n`);
      }
    }

    // FID/KID: samples for the floor's prompts, against all held-out images and against n other training images.
    const ref = referenceFeatures(clf, heldOut, n, 0);
    const floorSeeds = Math.max(fidSeeds, 2);
    const trainRefs = Array.from({ length: floorSeeds }, (_, sd) => {
      const d = subsetDataset(train, trainReferenceIndices(train.shape[0], n, sd));
      return { ...referenceFeatures(clf, d, n, sd), name: 'training images' };
    });
    const floors: { held: SampleScores; train: SampleScores }[] = [];
    for (let sd = 0; sd < floorSeeds; sd++) {
      const real = subsetDataset(train, floorIndices(train.shape[0], n, sd));
      floors.push({
        held: realFloor({ classifier: clf, train, reference: heldOut, referenceFeatures: sd === 0 ? ref : { ...ref, seed: sd }, n, seed: sd }),
        train: evaluateSamples({ classifier: clf, samples: { images: real.images, shape: real.shape }, reference: trainRefs[sd]!, n, seed: sd }),
      });
    }
    const fid = new Map<string, { w: number; held: SampleScores[]; train: SampleScores[]; seconds: number }[]>(sides.map((s) => [s.key, []]));
    for (const w of fidWeights) {
      for (const s of sides) {
        const held: SampleScores[] = [];
        const trained: SampleScores[] = [];
        let seconds = 0;
        for (let sd = 0; sd < fidSeeds; sd++) {
          let bar: ProgressBar | undefined;
          const x = await s.images((done, total) => (bar ??= new ProgressBar({ total, label: `${s.key} FID W=${w}`, unit: 'nfe' })).update(done, {}))(floorPrompts(train, n, sd), w, seed + sd);
          bar?.finish();
          seconds += x.seconds;
          held.push(evaluateSamples({ classifier: clf, samples: x, reference: sd === 0 ? ref : { ...ref, seed: sd }, n, seed: sd }));
          trained.push(evaluateSamples({ classifier: clf, samples: x, reference: trainRefs[sd]!, n, seed: sd }));
        }
        fid.get(s.key)!.push({ w, held, train: trained, seconds });
        process.stderr.write(`${s.key} W=${w}: FID vs held-out ${held.map((x) => fixed(x.fid, 2)).join(', ')}; vs training images ${trained.map((x) => fixed(x.fid, 2)).join(', ')}\n`);
      }
    }

    // --- report
    const meanSd = (v: number[], d: number): string => {
      const m = meanSE(v);
      return v.length > 1 ? `${fixed(m.mean, d)} ± ${fixed(m.se * Math.sqrt(m.n), d)}` : fixed(m.mean, d);
    };
    const floorFid = meanSd(floors.map((x) => x.held.fid), 2);
    const trainFloorFid = meanSd(floors.map((x) => x.train.fid), 2);
    const perSample = (s: Side, w: number): number => { const r = agreement.get(s.key)!.find((a) => a.guidance === w)!; return r.samples.seconds / r.samples.shape[0]; };
    const timingW = weights.includes(2) ? 2 : weights[weights.length - 1]!;
    const header = ['', ...sides.map((s) => s.key), `${sides[0]!.key} / ${sides[1]!.key}`];
    const ratio = (f: (s: Side) => number, d = 2): string => fixed(f(sides[0]!) / f(sides[1]!), d);
    const classifierRows: [string, { accuracy: number; groupAccuracy?: number }][] = [
      ['the classifier on real images of the emoji asked for', ceiling],
      ['the classifier on the other art style of training emoji', validation],
      ['the classifier on held-out emoji', held],
    ];
    const rows: string[][] = [
      ['checkpoint', ...sides.map((s) => `\`${rel(s.dir)}\` (step ${s.pipe.step})`), ''],
      ['diffusion space', ...sides.map((s) => s.space), ''],
      ['U-Net parameters', ...sides.map((s) => s.params.toLocaleString('en-US')), ratio((s) => s.params)],
      ['training wall-clock', ...sides.map((s) => `${fixed(s.training.wallSeconds / 60, 1)} min (${s.training.steps} steps of ${s.training.batchSize})`), ratio((s) => s.training.wallSeconds, 3)],
      ['training img/s (whole run)', ...sides.map((s) => fixed(s.training.imgPerSec, 1)), ratio((s) => s.training.imgPerSec)],
      ['training img/s (log, since the last resume)', ...sides.map((s) => fixed(s.training.loggedImgPerSec ?? NaN, 1)), ratio((s) => s.training.loggedImgPerSec ?? NaN)],
      [`time per sample (DDIM ${steps}, W = ${timingW}, batch 64; both measured here, alternating)`, ...sides.map((s) => `${fixed(1000 * perSample(s, timingW), 0)} ms`), ratio((s) => perSample(s, timingW))],
      ...fidWeights.flatMap((w) => {
        const at = (s: Side): { held: SampleScores[]; train: SampleScores[] } => fid.get(s.key)!.find((x) => x.w === w)!;
        return [
          [`FID vs held-out emoji, W = ${w} (floor ${floorFid})`, ...sides.map((s) => meanSd(at(s).held.map((x) => x.fid), 2)), ''],
          [`KID vs held-out emoji, W = ${w} (floor ${meanSd(floors.map((x) => x.held.kid), 2)})`, ...sides.map((s) => meanSd(at(s).held.map((x) => x.kid), 2)), ''],
          [`FID vs other training images, W = ${w} (floor ${trainFloorFid})`, ...sides.map((s) => meanSd(at(s).train.map((x) => x.fid), 2)), ''],
        ];
      }),
      ...weights.map((w) => [`prompt agreement, W = ${w} (subcategory / category)`, ...sides.map((s) => { const r = agreement.get(s.key)!.find((a) => a.guidance === w)!; return `${pct(r.overall)} / ${pct(r.group?.overall)}`; }), '']),
      ...classifierRows.map(([label, a]) => {
        const v = `${pct(a.accuracy)} / ${pct(a.groupAccuracy)}`;
        return [`${label} (subcategory / category)`, v, v, ''];
      }),
    ];
    const wallRatio = sides[0]!.training.wallSeconds / sides[1]!.training.wallSeconds;

    // Grid: the same prompts, a real image, then each model at each W.
    const pick = Array.from({ length: Math.min(gridPrompts, requests.length) }, (_, i) => Math.floor((i * requests.length) / Math.min(gridPrompts, requests.length)));
    const size = Math.max(...sides.map((s) => agreement.get(s.key)![0]!.samples.shape[1]), cfg.imageSize);
    const realBig = await (await import('../src/data/emoji.js')).loadEmoji({ split: 'train', imageSize: size });
    const per = size * size * 3;
    const gridRows = pick.map((k) => {
      const r = requests[k]!;
      const cells: Float32Array[] = [realBig.images.subarray(r.images[0]! * per, (r.images[0]! + 1) * per)];
      for (const s of sides) for (const a of agreement.get(s.key)!) {
        const sp = a.samples.shape;
        const one = { images: a.samples.images.subarray(k * sp[1] * sp[2] * sp[3], (k + 1) * sp[1] * sp[2] * sp[3]), shape: [1, sp[1], sp[2], sp[3]] as [number, number, number, number] };
        cells.push(upscaleNearest(one, size));
      }
      const imgs = new Float32Array(cells.length * per);
      cells.forEach((c, j) => imgs.set(c, j * per));
      return { label: `${r.prompt} (${r.subcategory})`, images: imgs };
    });
    const headings = ['real', ...sides.flatMap((s) => weights.map((w) => `${s.key} w=${w}`))];
    await writePng(`${out}.png`, captionGrid(gridRows, { size, channels: 3, cols: headings.length, headings, gapAfter: [0, weights.length], scale: size >= 64 ? 1 : 2, labelChars: 20, textScale: 2 }));

    const md = [
      '# Latent against pixel space on emoji',
      '',
      `Generated by \`node dist/bench/emoji-compare.js --latent ${rel(latentDir)} --pixel ${rel(pixelDir)}\` on ${new Date().toISOString().slice(0, 10)}, engine ${sides.map((s) => `${s.key}: ${s.pipe.engine}`).join(', ')}.`,
      `Classifier \`${rel(classifierDir)}\` (judges every sample at ${cfg.imageSize}×${cfg.imageSize}, larger ones area-averaged; docs/emoji-eval.md).`,
      `Prompt agreement: ${requests.length} training emoji (evenly spaced over the ${new Set(train.emoji.map((e) => e.identity)).size}, both models can read every name) asked for by name, one sample each, DDIM ${steps}, seed ${seed} (the same noise at each W).`,
      `FID/KID: ${n} samples asked for by the captions of the floor's ${n} training images, against all ${n} held-out images (new emoji) and against ${n} other training images;`,
      `the floors are those ${n} real training images scored the same way, mean ± sd over ${floors.length} draws${fidSeeds > 1 ? `; samples over ${fidSeeds} seeds (mean ± sd)` : ''}. At N = ${n} one draw moves FID by about the sd (docs/emoji-eval.md).`,
      `Training wall-clocks differ by ${fixed(100 * Math.abs(wallRatio - 1), 1)}% (latent / pixel = ${fixed(wallRatio, 3)})${Math.abs(wallRatio - 1) > 0.05 ? ': **not the same budget**, read the comparison with that in mind' : ''}.`,
      '',
      markdownTable(header, rows, ['l', 'r', 'r', 'r']),
      `![the same prompts, both models](${out.slice(out.lastIndexOf('/') + 1)}.png)`,
      '',
      'Left: a real training image of the emoji asked for; then each model at each guidance weight (the first samples of the agreement run).',
    ].join('\n');
    const report = withDiscussion(md, existsSync(`${out}.md`) ? readFileSync(`${out}.md`, 'utf8') : undefined);
    writeFileSync(`${out}.md`, report.text);
    writeFileSync(`${out}.json`, JSON.stringify({
      steps, seed, weights, fidWeights, fidSeeds, n, identities: requests.length,
      classifier: { realOfAsked: ceiling.accuracy, validation: validation.accuracy, heldOut: held.accuracy },
      floor: floors.map((x) => ({ heldOut: { fid: x.held.fid, kid: x.held.kid }, train: { fid: x.train.fid, kid: x.train.kid } })),
      models: sides.map((s) => ({
        key: s.key, checkpoint: rel(s.dir), step: s.pipe.step, params: s.params, training: s.training, engine: s.pipe.engine,
        secondsPerSample: Object.fromEntries(weights.map((w) => [w, perSample(s, w)])),
        agreement: agreement.get(s.key)!.map((a) => ({ w: a.guidance, overall: a.overall, category: a.group?.overall, worst: a.worst })),
        fid: fid.get(s.key)!.map((x) => ({ w: x.w, heldOut: x.held.map((y) => ({ fid: y.fid, kid: y.kid })), train: x.train.map((y) => ({ fid: y.fid, kid: y.kid })), seconds: x.seconds })),
      })),
    }, null, 1) + '\n');
    process.stderr.write(`wrote ${out}.md (kept ${report.keptLines} hand-written lines), .json and .png\n`);
  } finally {
    for (const s of sides) await s.pipe.dispose();
    clf.dispose();
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main().catch(reportError);
