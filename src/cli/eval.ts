/** `diffuse eval`: FID / KID / class histogram of a model's samples (or a folder of PNGs). */
import { defineCommand } from './command.js';
import { BACKEND, CHECKPOINT, DATA_DIR, DEFAULT_GUIDANCE, GUIDANCE, SAMPLER, SAMPLING_BATCH, SAMPLING_STEPS, SEED } from './options.js';
import { allClassLabels, requireFinite, samplingSteps } from './common.js';
import { DiffuseError } from '../errors.js';
import { initEngine } from '../engine/backend.js';
import { readImageFolder } from '../data/folder.js';
import { loadClassifier, type Classifier } from '../eval/classifier.js';
import { classAgreement, evaluateSamples, realFloor, referenceFeatures, type ImageBatch, type SampleScores } from '../eval/evaluate.js';
import { EVAL_DATASETS, loadEvalSplits } from '../eval/splits.js';
import { pipelineImages } from '../eval/prompts.js';
import { evalPrompts } from '../eval/emoji-prompts.js';
import { ProgressBar } from '../io/progress.js';
import { classCondition, classCount, resolveClassFor } from '../guidance/condition.js';
import { resolveModelDir, shippedModelDir } from '../shipped.js';

/** Images per side when --n is not given (or all the held-out images, when fewer: emoji 324). */
const DEFAULT_N = 1000;

export const OPTIONS = {
  checkpoint: { ...CHECKPOINT, help: 'generate N samples from this run or checkpoint folder' },
  samples: { type: 'string', arg: 'DIR', help: 'or score the PNG/JPEG files in DIR (sorted by name; the first N)' },
  dataset: { type: 'choice', choices: EVAL_DATASETS, arg: 'NAME', help: 'the real images to compare with, and the default classifier (required)' },
  n: { type: 'int', min: 2, max: 100000, arg: 'N', help: 'images per side', defaultText: `${DEFAULT_N}, or all the held-out images when fewer (emoji: 324)` },
  classifier: { type: 'string', arg: 'DIR', help: 'the feature classifier: a folder, or a shipped one by name', defaultText: 'the shipped classifier-<dataset>' },
  seed: { ...SEED, help: 'seed of the generated noise, the reference subset and the KID subsets' },
  sampler: { ...SAMPLER, help: 'with --checkpoint: the sampler' },
  'sampling-steps': { ...SAMPLING_STEPS, help: 'with --checkpoint: sampling steps (network evaluations per image)' },
  'batch-size': { ...SAMPLING_BATCH, help: 'with --checkpoint: images per network evaluation' },
  class: { type: 'string', arg: 'C', help: "with --checkpoint, conditional models: generate for class C (index or name), or 'all' (N split evenly over the classes), and report the classifier's agreement with the requested class, per class (default: unconditional samples). Caption-trained models: only 'all', N training emoji asked for by name" },
  guidance: { ...GUIDANCE, defaultText: `${DEFAULT_GUIDANCE} with --class or a caption-trained model` },
  'no-floor': { type: 'flag', help: 'skip the real-vs-real floor' },
  'data-dir': { ...DATA_DIR, help: 'fashion-mnist IDX folder (default /usr/share/datasets/fashion-mnist)' },
  backend: BACKEND,
} as const;

function summary(label: string, s: SampleScores): string {
  return `${label.padEnd(22)} FID ${s.fid.toFixed(3).padStart(9)}   KID ${s.kid.toExponential(3)} ± ${s.kidStd.toExponential(2)}   classes covered ${s.classesCovered}, entropy ${s.classEntropy.toFixed(3)} nats (${(100 * s.classEntropyNormalized).toFixed(1)}% of max)`;
}

function histogramLines(s: SampleScores, names: string[] | undefined): string {
  const max = Math.max(1, ...s.classHistogram);
  return s.classHistogram
    .map((c, k) => `  ${(names?.[k] ?? String(k)).padEnd(12)} ${String(c).padStart(6)}  ${'█'.repeat(Math.round((30 * c) / max))}`)
    .join('\n');
}

export const command = defineCommand({
  name: 'eval',
  usage: `(--checkpoint DIR | --samples DIR) --dataset ${EVAL_DATASETS.join('|')} [options]`,
  description: `Score generated images against N real held-out images, in the feature space of
a small CNN classifier (see docs/eval.md): FID, KID ± std over subsets, the
histogram of predicted classes and its entropy, and the real-vs-real floor
(N training images vs the same N held-out images: what a perfect generator gets).
Prints one JSON line on stdout and a summary on stderr.
Models trained on a data set's captions (emoji, docs/emoji-eval.md) are asked
for the N training images of the floor by their captions; with --class all,
for N training emoji by name (evenly spaced), and the agreement is how often
the sample lands in the emoji's subcategory.`,
  options: OPTIONS,
  async run({ values: o, given }) {
    const { checkpoint, seed, backend } = o;
    const samplesDir = o.samples;
    const classFlag = o.class;
    const dataDir = o['data-dir'];
    const batch = o['batch-size'];
    if (o.dataset === undefined) throw new DiffuseError(`eval needs --dataset ${EVAL_DATASETS.join('|')} (the real images to compare with)`);
    const dataset = o.dataset;
    const classifierDir = o.classifier !== undefined ? resolveModelDir(o.classifier, '--classifier') : shippedModelDir(`classifier-${dataset}`);
    if ((checkpoint === undefined) === (samplesDir === undefined)) throw new DiffuseError('eval needs exactly one of --checkpoint DIR or --samples DIR');
    if (samplesDir !== undefined && (given.has('sampler') || given.has('sampling-steps'))) throw new DiffuseError('--sampler and --sampling-steps only apply with --checkpoint');
    if (classFlag !== undefined && checkpoint === undefined) throw new DiffuseError('--class applies to generated samples: use it with --checkpoint');
    if (o.guidance !== undefined && checkpoint === undefined) throw new DiffuseError('--guidance applies to generated samples: use it with --checkpoint');
    const noFloor = o['no-floor'];

    await initEngine(backend !== undefined ? { backend } : {});
    const clf: Classifier = loadClassifier(classifierDir);
    try {
      // The classifier's size: the emoji images are loaded at it (the others have one size).
      const splits = await loadEvalSplits(dataset, { ...(dataDir !== undefined ? { dir: dataDir } : {}), ...(dataset === 'emoji' ? { imageSize: clf.config.imageSize } : {}) });
      const available = splits.heldOut.shape[0];
      let n = o.n ?? Math.min(DEFAULT_N, available);
      const checkN = (): void => {
        if (n > available) throw new DiffuseError(`--n ${n} but the ${dataset} reference set has only ${available} images`);
      };
      checkN();
      let samples: ImageBatch;
      let source: Record<string, unknown>;
      let requested: Int32Array | undefined;
      if (samplesDir !== undefined) {
        samples = await readImageFolder(samplesDir, clf.config.channels, n);
        if (samples.shape[0] < n) throw new DiffuseError(`--n ${n} but samples folder '${samplesDir}' has only ${samples.shape[0]} images`);
        source = { samples: samplesDir };
      } else {
        const { loadPipeline, generateWith } = await import('../pipeline.js');
        const sampler = o.sampler;
        const pipe = await loadPipeline(checkpoint!, { batchSize: batch, ...(backend !== undefined ? { backend } : {}) });
        try {
          const cfg = pipe.config;
          const steps = samplingSteps(o['sampling-steps'], sampler, cfg.diffusion.timesteps);
          const k = classCount(cfg);
          // Models trained on a data set's own captions (emoji): asked by prompt.
          const captioned = cfg.model.text !== undefined && k === 0;
          if (classFlag !== undefined && k === 0 && !captioned) throw new DiffuseError(`checkpoint ${pipe.checkpoint} is unconditional: --class needs a conditional model`);
          if (classFlag === undefined && o.guidance !== undefined && !captioned) throw new DiffuseError('--guidance needs --class (the condition to guide towards)');
          if (captioned && classFlag !== undefined && classFlag !== 'all') throw new DiffuseError(`checkpoint ${pipe.checkpoint} was trained on captions: --class takes only 'all' (each emoji asked for by name)`);
          if (!captioned && classFlag !== undefined && cfg.data.labelNames !== undefined && clf.config.labelNames !== undefined && cfg.data.labelNames.join('\n') !== clf.config.labelNames.join('\n')) {
            throw new DiffuseError(`checkpoint ${pipe.checkpoint} and classifier ${classifierDir} name their classes differently: agreement would compare unrelated indices`);
          }
          const guidance = o.guidance ?? DEFAULT_GUIDANCE;
          let prompts: string[] | undefined;
          if (captioned) {
            const asked = evalPrompts(splits, clf, { n, seed, agreement: classFlag === 'all' });
            prompts = asked.prompts;
            requested = asked.requested;
          } else if (classFlag === 'all') {
            const all = allClassLabels(n, k);
            n = all.n;
            checkN();
            requested = all.labels;
          } else if (classFlag !== undefined) {
            requested = new Int32Array(n).fill(resolveClassFor(cfg, classFlag));
          }
          const bar = new ProgressBar({ total: steps * Math.ceil(n / batch), label: 'sample', unit: 'nfe' });
          const onStep = (done: number): void => bar.update(done, {});
          const r = prompts !== undefined
            ? await pipelineImages(pipe, { sampler, steps, batchSize: batch, onStep })(prompts, guidance, seed)
            : await generateWith(pipe, {
              sampler,
              steps,
              n,
              seed,
              batchSize: batch,
              // Conditional models: the requested classes, else unconditional samples ("no class" / no prompt).
              ...(k > 0 ? { condition: classCondition(cfg, requested ?? new Int32Array(n).fill(-1), requested !== undefined ? guidance : 0) } : {}),
              onStep,
            });
          bar.finish();
          requireFinite(r.images, `the model of ${pipe.checkpoint}`);
          samples = { images: r.images, shape: r.shape };
          source = {
            checkpoint: pipe.checkpoint, step: pipe.step, sampler, steps, seconds: Math.round(r.seconds * 10) / 10,
            ...(requested !== undefined || captioned ? { ...(classFlag !== undefined ? { class: classFlag } : {}), guidance } : {}),
          };
        } finally {
          await pipe.dispose();
        }
      }
      if (clf.config.training !== undefined && clf.config.training.dataset !== splits.train.name) {
        process.stderr.write(`warning: classifier ${classifierDir} was trained on ${clf.config.training.dataset}, evaluating against ${splits.train.name}\n`);
      }
      const t0 = performance.now();
      const ref = referenceFeatures(clf, splits.heldOut, n, seed);
      const scores = evaluateSamples({ classifier: clf, samples, reference: ref, n, seed });
      const floor = noFloor ? undefined : realFloor({ classifier: clf, train: splits.train, reference: splits.heldOut, referenceFeatures: ref, n, seed });
      const agreement = requested !== undefined ? classAgreement(clf, samples, requested) : undefined;
      const secs = (performance.now() - t0) / 1000;
      const names = clf.config.labelNames ?? splits.heldOut.labelNames;
      process.stdout.write(JSON.stringify({ dataset, classifier: classifierDir, seed, ...source, ...scores, ...(agreement ? { agreement } : {}), ...(floor ? { floor } : {}) }) + '\n');
      process.stderr.write(
        `${dataset}, N = ${n} per side, reference: ${splits.heldOutDescription}, classifier ${classifierDir}\n` +
          summary('samples', scores) + '\n' +
          (floor ? summary('real vs real (floor)', floor) + '\n' : '') +
          `predicted classes of the samples:\n${histogramLines(scores, names)}\n` +
          (agreement ? `classifier agrees with the requested class: ${(100 * agreement.overall).toFixed(1)}% overall, worst class ${(100 * agreement.worst).toFixed(1)}%` +
            (agreement.group !== undefined ? `; with its ${agreement.group.name}: ${(100 * agreement.group.overall).toFixed(1)}%` : '') + '\n' +
            agreement.perClass.map((a, c) => (agreement.counts[c]! > 0 ? `  ${(names?.[c] ?? String(c)).padEnd(12)} ${(100 * a).toFixed(1).padStart(5)}% of ${agreement.counts[c]}` : '')).filter((l) => l !== '').join('\n') + '\n' : '') +
          `(scoring took ${secs.toFixed(1)} s; FID/KID are only comparable at the same N, classifier and data set)\n`,
      );
    } finally {
      clf.dispose();
    }
  },
});
