/**
 * Issue #6, study 2: how many training timesteps T? The same budget of
 * training images (500 steps × 64) at T = 50, 100, 250 and 1000, ε-prediction,
 * each scored with one fixed sampler setting (DDIM 50 steps, N = 500, seed 0).
 * Trains any cell whose run folder (runs/study/t<T>-epsilon) lacks a finished
 * checkpoint, refuses one trained with another config, then evaluates.
 * Writes docs/study-timesteps.{md,json,svg}, -loss.svg and -samples.png.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/study-timesteps.js
 *   node dist/bench/study-timesteps.js --n 16 --runs /tmp/smoke/runs --train-steps 4 --only t50-epsilon --out /tmp/smoke/timesteps
 *
 * Flags: --n N (500), --seed S (0), --runs DIR (runs/study), --train-steps K (500),
 * --ddim-steps K (50), --batch B (64), --threads K (2), --engine onnx|tfjs,
 * --only IDS, --no-train, --out PREFIX (docs/study-timesteps), --floor-seeds K (5).
 */
import { join } from 'node:path';
import { makeSchedule } from '../src/schedule.js';
import { fixed, markdownTable, pm, selectCells, sig, smoothEma, tailMean, reportError } from './study-common.js';
import { svgPlot } from './study-plot.js';
import { cellStudyOptions, cellStudySetup, commandFlags, floorParagraph, machineDescription, minutes, ROOT, say, sibling, CELL_STUDY_OPTIONS, trainAndEvaluate, writeReport, writeSampleRows, type TrainCell } from './study-run.js';
import { benchOptions } from './options.js';

const CELLS: readonly TrainCell[] = [50, 100, 250, 1000].map((T) => ({ id: `t${T}-epsilon`, timesteps: T, prediction: 'epsilon' as const }));

async function main(): Promise<void> {
  const { values: o } = benchOptions('study-timesteps', {
    ...CELL_STUDY_OPTIONS,
    only: { type: 'string', help: 'comma-separated cell ids to run' },
    out: { type: 'string', help: 'report prefix', defaultText: 'docs/study-timesteps' },
  } as const);
  const opts = cellStudyOptions(o);
  const only = o.only;
  const out = o.out ?? join(ROOT, 'docs', 'study-timesteps');
  const cells = selectCells(CELLS, only);
  const tStart = performance.now();
  say(`study 2 (training timesteps T): ${cells.map((c) => c.id).join(', ')}; N = ${opts.n}, seed ${opts.seed}`);
  const { results, ctx } = await trainAndEvaluate(cells, opts, async () => undefined);
  try {
    const wall = (performance.now() - tStart) / 1000;
    const floor = ctx.floor;
    const lastK = Math.min(50, opts.trainSteps);
    const rows = results.map((r) => {
      const T = r.run.config.diffusion.timesteps;
      const sch = makeSchedule(r.run.config.diffusion.schedule, T);
      return [
        String(T), sig(sch.alphaBar[T - 1]!, 2), String(r.samplerSteps), minutes(r.run.trainSeconds), fixed(r.samples.seconds, 1),
        fixed(r.scores.fid, 2), pm(r.scores.kid, r.scores.kidStd, 2), fixed(r.scores.classEntropyNormalized, 3), String(r.scores.classesCovered), sig(tailMean(r.losses, lastK), 3),
      ];
    });
    rows.push(['real vs real (floor)', '—', '—', '—', '—', fixed(floor.fid, 2), pm(floor.kid, floor.kidStd, 2), fixed(floor.classEntropyNormalized, 3), String(floor.classesCovered), '—']);
    const table = markdownTable(
      ['T', 'ᾱ at t = T−1', 'DDIM steps', 'training time', 'sampling s (N)', 'FID', 'KID ± std', 'class entropy / log 10', 'classes covered', `loss (mean of last ${lastK} steps)`],
      rows,
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    );
    const fidSvg = svgPlot({
      title: `FID vs training timesteps T (same ${(opts.trainSteps * 64).toLocaleString('en-US')} training images, DDIM ${opts.ddimSteps}, N = ${opts.n})`,
      xLabel: 'training timesteps T',
      yLabel: 'FID (lower is better)',
      logX: true,
      xTicks: results.map((r) => r.run.config.diffusion.timesteps),
      series: [{ name: 'ε-prediction', points: results.map((r) => ({ x: r.run.config.diffusion.timesteps, y: r.scores.fid, label: r.scores.fid.toFixed(1) })) }],
      refLines: [{ y: floor.fid, label: `real-vs-real floor ${floor.fid.toFixed(1)}` }],
    });
    const beta = 0.95;
    const lossSvg = svgPlot({
      title: `Training loss (ε-MSE), smoothed (EMA ${beta})`,
      xLabel: 'training step',
      yLabel: 'loss',
      logY: true,
      series: results.map((r) => ({ name: `T = ${r.run.config.diffusion.timesteps}`, markers: false, points: smoothEma(r.losses, beta).map((y, i) => ({ x: i + 1, y })) })),
    });

    const findings: string[] = [];
    const sorted = [...results].sort((a, b) => a.scores.fid - b.scores.fid);
    const spread = Math.max(...ctx.floorSpread.fids) - Math.min(...ctx.floorSpread.fids);
    if (sorted.length > 0) {
      findings.push(`FID from best to worst: ${sorted.map((r) => `T = ${r.run.config.diffusion.timesteps} (${r.scores.fid.toFixed(2)})`).join(', ')}.`);
      const b = sorted[0]!;
      findings.push(`The best cell, T = ${b.run.config.diffusion.timesteps}, is at ${(b.scores.fid / floor.fid).toFixed(1)}× the floor (${floor.fid.toFixed(2)}).`);
      const byT = [...results].sort((a, c) => a.run.config.diffusion.timesteps - c.run.config.diffusion.timesteps);
      const diffs = byT.slice(1).map((r, i) => r.scores.fid - byT[i]!.scores.fid);
      if (diffs.length > 0) {
        const mono = diffs.every((d) => d < 0) ? 'falls with every increase of T' : diffs.every((d) => d > 0) ? 'rises with every increase of T' : 'is not monotonic in T';
        findings.push(`FID ${mono} (${byT.map((r) => r.scores.fid.toFixed(2)).join(' → ')} for T = ${byT.map((r) => r.run.config.diffusion.timesteps).join(', ')}).`);
      }
      if (sorted.length > 1) {
        const gap = sorted[1]!.scores.fid - sorted[0]!.scores.fid;
        findings.push(`The gap between the best two cells (${gap.toFixed(2)}) is ${gap < spread ? 'smaller' : 'larger'} than the spread of the floor over ${ctx.floorSpread.seeds.length} draws of real images (${spread.toFixed(2)}).`);
      }
      const losses = byT.map((r) => `T = ${r.run.config.diffusion.timesteps}: ${sig(tailMean(r.losses, lastK), 3)}`);
      findings.push(`Final training loss (ε-MSE, mean of the last ${lastK} steps; the same target for every cell, averaged over each model's own t ~ U{0..T−1}): ${losses.join(', ')}.`);
    }

    const md = `# Study: number of training timesteps T (issue #6, study 2)

The explainer says T is "50 to 1000". Here: the same budget of training images at T = ${results.map((r) => r.run.config.diffusion.timesteps).join(', ')}, scored with one fixed sampler setting.
Regenerate everything on this page with one command (it trains any cell whose checkpoint is missing, then evaluates; this run took ${minutes(wall)}):

\`\`\`sh
npx tsc -p tsconfig.json && node dist/bench/study-timesteps.js${commandFlags()}
\`\`\`

${cellStudySetup(results, opts, ctx, 'the number of timesteps T (`--timesteps`)')}

**Schedule.** The linear schedule scales both ends of β by 1000/T (src/schedule.ts), so every T ends at a similar ᾱ (column 2): fewer, larger steps over the same noise range.

## Results (N = ${opts.n}, seed ${opts.seed}, DDIM ${opts.ddimSteps})

${table}
${floorParagraph(ctx)}

![FID vs T](${sibling(out, '.svg')})

## Loss curves

All cells predict ε, so their losses are on one scale (each is averaged over that model's own timesteps, so a different T also changes which noise levels the average covers).

![loss curves](${sibling(out, '-loss.svg')})

## Findings (generated from the numbers)

${findings.map((s) => `- ${s}`).join('\n')}

## Samples

The first 12 samples of each cell, one row per cell in table order; every row starts from the same noise.

![samples](${sibling(out, '-samples.png')})
`;
    const json = {
      study: 'timesteps', n: opts.n, seed: opts.seed, ddimSteps: opts.ddimSteps, engine: results[0]?.engine, machine: machineDescription(), wallSeconds: wall, floor, floorSpread: ctx.floorSpread,
      cells: results.map((r) => ({
        id: r.run.cell.id, timesteps: r.run.config.diffusion.timesteps, prediction: r.run.config.diffusion.prediction, action: r.run.action, trainSteps: r.run.step, trainSeconds: r.run.trainSeconds,
        samplerSteps: r.samplerSteps, samplingSeconds: r.samples.seconds, loadAvg1m: r.samples.load, finalLoss: tailMean(r.losses, lastK), ...r.scores,
      })),
    };
    const files = writeReport(out, md, json, { '.svg': fidSvg, '-loss.svg': lossSvg });
    await writeSampleRows(`${out}-samples.png`, results.map((r) => r.samples), 12);
    say(`wrote ${[...files, `${out}-samples.png`].join(', ')} (${minutes(wall)})`);
  } finally {
    ctx.dispose();
  }
}

main().catch(reportError);
