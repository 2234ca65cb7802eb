/** `diffuse eval`: FID / KID / class histogram of a model's samples (or a folder of PNGs). */
import { Flags, type ParsedArgs } from './args.js';
import { DiffuseError } from '../errors.js';
import { initEngine, parseBackendName } from '../engine/backend.js';
import { readImageFolder } from '../data/folder.js';
import { loadClassifier, type Classifier } from '../eval/classifier.js';
import { classAgreement, evaluateSamples, realFloor, referenceFeatures, type ImageBatch, type SampleScores } from '../eval/evaluate.js';
import { EVAL_DATASETS, loadEvalSplits } from '../eval/splits.js';
import { pipelineImages } from '../eval/prompts.js';
import { evalPrompts } from '../eval/emoji-prompts.js';
import { ProgressBar } from '../io/progress.js';
import { classCondition, classCount, resolveClassFor } from '../guidance/condition.js';

export const HELP = `usage: diffuse eval (--checkpoint DIR | --samples DIR) --dataset mnist|fashion-mnist|emoji [options]

Score generated images against N real held-out images, in the feature space of
a small CNN classifier (see docs/eval.md): FID, KID ± std over subsets, the
histogram of predicted classes and its entropy, and the real-vs-real floor
(N training images vs the same N held-out images: what a perfect generator gets).
Prints one JSON line on stdout and a summary on stderr.

options:
  --checkpoint DIR  generate N samples from this run / checkpoint folder
  --samples DIR     or score the PNG/JPEG files in DIR (sorted by name; the first N)
  --dataset NAME    ${EVAL_DATASETS.join(' | ')} (required): reference images + default classifier
  --n N             images per side (default 1000; emoji: 326, all its held-out images)
  --classifier DIR  (default models/classifier-<dataset>)
  --seed S          seed of the generated noise, the reference subset and KID subsets (default 0)
  --sampler NAME    with --checkpoint: ddpm | ddim | dpm-solver (default ddim)
  --steps K         with --checkpoint: sampling steps (default 50 ddim, 20 dpm-solver, T ddpm)
  --batch N         with --checkpoint: images per network evaluation (default 64)
  --class C|all     with --checkpoint, conditional models: generate for class C (index or name), or
                    'all' (N split evenly over the classes), and report the classifier's agreement
                    with the requested class, per class (default: unconditional samples).
                    Models trained on emoji captions: 'all' asks for N training emoji by name
                    (evenly spaced) and reports how often the sample lands in its subcategory;
                    without --class they are asked for the N training images of the floor by
                    their captions (docs/emoji-eval.md)
  --guidance W      classifier-free guidance weight with --class or a caption-trained model (default 0)
  --no-floor        skip the real-vs-real floor
  --data-dir DIR    fashion-mnist IDX folder (default /usr/share/datasets/fashion-mnist)
  --backend B       wasm | tensorflow | webgpu (default: tensorflow if installed, else wasm)
  --help            show this help`;

function summary(label: string, s: SampleScores): string {
  return `${label.padEnd(22)} FID ${s.fid.toFixed(3).padStart(9)}   KID ${s.kid.toExponential(3)} ± ${s.kidStd.toExponential(2)}   classes covered ${s.classesCovered}, entropy ${s.classEntropy.toFixed(3)} nats (${(100 * s.classEntropyNormalized).toFixed(1)}% of max)`;
}

function histogramLines(s: SampleScores, names: string[] | undefined): string {
  const max = Math.max(1, ...s.classHistogram);
  return s.classHistogram
    .map((c, k) => `  ${(names?.[k] ?? String(k)).padEnd(12)} ${String(c).padStart(6)}  ${'█'.repeat(Math.round((30 * c) / max))}`)
    .join('\n');
}

export async function run(args: ParsedArgs): Promise<void> {
  const f = new Flags(args);
  const checkpoint = f.string('checkpoint');
  const samplesDir = f.string('samples');
  const datasetFlag = f.string('dataset');
  const dataset = f.choice('dataset', EVAL_DATASETS, 'mnist');
  const nFlag = f.int('n');
  const classifierDir = f.string('classifier', `models/classifier-${dataset}`);
  const seed = f.int('seed', 0);
  const samplerFlag = f.string('sampler');
  const stepsFlag = f.int('steps');
  const batch = f.int('batch', 64);
  const noFloor = f.bool('no-floor');
  const classFlag = f.string('class');
  const guidanceFlag = f.number('guidance');
  const dataDir = f.string('data-dir');
  const backendFlag = f.string('backend');
  f.rejectUnknown();
  if (args.positional.length > 0) throw new DiffuseError(`unexpected argument '${args.positional[0]}' (see diffuse eval --help)`);
  if (datasetFlag === undefined) throw new DiffuseError('eval needs --dataset mnist|fashion-mnist (the real images to compare with)');
  if ((checkpoint === undefined) === (samplesDir === undefined)) throw new DiffuseError('eval needs exactly one of --checkpoint DIR or --samples DIR');
  if (samplesDir !== undefined && (samplerFlag !== undefined || stepsFlag !== undefined)) throw new DiffuseError('--sampler and --steps only apply with --checkpoint');
  if (nFlag !== undefined && nFlag < 2) throw new DiffuseError(`--n must be at least 2, got ${nFlag}`);
  if (classFlag !== undefined && checkpoint === undefined) throw new DiffuseError('--class applies to generated samples: use it with --checkpoint');
  if (guidanceFlag !== undefined && checkpoint === undefined) throw new DiffuseError('--guidance applies to generated samples: use it with --checkpoint');
  if (seed < 0) throw new DiffuseError(`--seed must be ≥ 0, got ${seed}`);

  const backend = backendFlag !== undefined ? parseBackendName(backendFlag) : undefined;
  await initEngine(backend !== undefined ? { backend } : {});
  const clf: Classifier = loadClassifier(classifierDir);
  try {
    const imageSize = clf.config.imageSize;
    const splits = await loadEvalSplits(dataset, { ...(dataDir !== undefined ? { dir: dataDir } : {}), ...(dataset === 'emoji' ? { imageSize } : {}) });
    const n = nFlag ?? Math.min(1000, splits.heldOut.shape[0]);
    if (n > splits.heldOut.shape[0]) throw new DiffuseError(`--n ${n} but the ${dataset} reference set has only ${splits.heldOut.shape[0]} images`);
    let samples: ImageBatch;
    let source: Record<string, unknown>;
    let requested: Int32Array | undefined;
    if (samplesDir !== undefined) {
      samples = await readImageFolder(samplesDir, clf.config.channels, n);
      if (samples.shape[0] < n) throw new DiffuseError(`--n ${n} but samples folder '${samplesDir}' has only ${samples.shape[0]} images`);
      source = { samples: samplesDir };
    } else {
      const { loadPipeline, defaultSteps, generateWith } = await import('../pipeline.js');
      const { SAMPLER_NAMES } = await import('../samplers/factory.js');
      const sampler = SAMPLER_NAMES.find((s) => s === (samplerFlag ?? 'ddim'));
      if (sampler === undefined) throw new DiffuseError(`--sampler must be one of ${SAMPLER_NAMES.join(', ')}; got '${samplerFlag}'`);
      const pipe = await loadPipeline(checkpoint!, { batchSize: batch, ...(backend !== undefined ? { backend } : {}) });
      try {
        const cfg = pipe.config;
        const steps = stepsFlag ?? defaultSteps(sampler, cfg.diffusion.timesteps);
        const k = classCount(cfg);
        // Models trained on a data set's own captions (emoji): asked by prompt.
        const captioned = cfg.model.text !== undefined && k === 0;
        if (classFlag !== undefined && k === 0 && !captioned) throw new DiffuseError(`checkpoint ${pipe.checkpoint} is unconditional: --class needs a conditional model`);
        if (classFlag === undefined && guidanceFlag !== undefined && !captioned) throw new DiffuseError('--guidance needs --class (the condition to guide towards)');
        if (captioned && classFlag !== undefined && classFlag !== 'all') throw new DiffuseError(`checkpoint ${pipe.checkpoint} was trained on captions: --class takes only 'all' (each emoji asked for by name)`);
        const guidance = guidanceFlag ?? 0;
        const bar = new ProgressBar({ total: steps * Math.ceil(n / batch), label: 'sample', unit: 'nfe' });
        const onStep = (done: number): void => bar.update(done, {});
        let r: ImageBatch & { seconds: number };
        if (captioned) {
          const asked = evalPrompts(splits, clf, { n, seed, agreement: classFlag === 'all' });
          requested = asked.requested;
          r = await pipelineImages(pipe, { sampler, steps, batchSize: batch, onStep })(asked.prompts, guidance, seed);
        } else {
          if (classFlag !== undefined && cfg.data.labelNames !== undefined && clf.config.labelNames !== undefined && cfg.data.labelNames.join('\n') !== clf.config.labelNames.join('\n')) {
            throw new DiffuseError(`checkpoint ${pipe.checkpoint} and classifier ${classifierDir} name their classes differently: agreement would compare unrelated indices`);
          }
          if (classFlag !== undefined) {
            requested = classFlag === 'all'
              ? Int32Array.from({ length: n }, (_, i) => Math.floor((i * k) / n))
              : new Int32Array(n).fill(resolveClassFor(cfg, classFlag));
          }
          r = await generateWith(pipe, {
            sampler,
            steps,
            n,
            seed,
            batchSize: batch,
            // Conditional models: the requested classes, else unconditional samples ("no class" / no prompt).
            ...(k > 0 ? { condition: classCondition(cfg, requested ?? new Int32Array(n).fill(-1), requested !== undefined ? guidance : 0) } : {}),
            onStep,
          });
        }
        bar.finish();
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
}
