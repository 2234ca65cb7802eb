/**
 * Issue #6, study 1: how many sampling steps? One trained model (the shipped
 * models/mnist, sampled unconditionally), DDPM over all T steps, DDIM at
 * 10/20/50/100/250 steps and DPM-Solver++ at 10/20: FID and KID against wall
 * time per image, same N, seed and reference images for every cell. Writes
 * docs/study-sampling-steps.{md,json,svg} and -samples.png.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/study-steps.js
 *   node dist/bench/study-steps.js --n 16 --only ddim10,dpm10 --out /tmp/smoke/steps   # smoke test
 *
 * Flags: --n N (300), --seed S (0), --checkpoint DIR (models/mnist), --batch B (64),
 * --threads K (ONNX Runtime threads, 2), --engine onnx|tfjs (onnx), --only IDS,
 * --out PREFIX (docs/study-sampling-steps), --floor-seeds K (5).
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { ENGINE_NAMES, loadPipeline } from '../src/pipeline.js';
import type { SamplerName } from '../src/samplers/factory.js';
import type { SampleScores } from '../src/eval/evaluate.js';
import { fixed, markdownTable, paretoFront, pm, selectCells, reportError } from './study-common.js';
import { svgPlot, type PlotSeries } from './study-plot.js';
import { commandFlags, generateTimed, machineDescription, minutes, prepareEval, ROOT, say, scoreImages, sibling, warmUp, writeReport, writeSampleRows, type TimedSamples } from './study-run.js';
import { benchOptions } from './options.js';

interface StepCell {
  readonly id: string;
  readonly label: string;
  readonly family: string;
  readonly sampler: SamplerName;
  /** Sampling steps; 0 = all T (DDPM). */
  readonly steps: number;
}

const CELLS: readonly StepCell[] = [
  ...[10, 20, 50, 100, 250].map((k) => ({ id: `ddim${k}`, label: `DDIM ${k}`, family: 'DDIM', sampler: 'ddim' as const, steps: k })),
  ...[10, 20].map((k) => ({ id: `dpm${k}`, label: `DPM-Solver++ ${k}`, family: 'DPM-Solver++', sampler: 'dpm-solver' as const, steps: k })),
  { id: 'ddpm', label: 'DDPM (all T)', family: 'DDPM', sampler: 'ddpm', steps: 0 },
];

interface Result {
  readonly cell: StepCell;
  readonly steps: number;
  readonly seconds: number;
  readonly secPerImage: number;
  readonly scores: SampleScores;
  readonly load: readonly [number, number];
}

const scoreCols = (s: SampleScores): string[] => [fixed(s.fid, 2), pm(s.kid, s.kidStd, 2), fixed(s.classEntropyNormalized, 3), String(s.classesCovered)];

async function main(): Promise<void> {
  const { values: o } = benchOptions('study-steps', {
    n: { type: 'int', min: 10, max: 100000, default: 300, help: 'images per side' },
    seed: { type: 'int', min: 0, max: 2 ** 32 - 1, default: 0, help: 'seed' },
    checkpoint: { type: 'string', help: 'the model', defaultText: 'models/mnist' },
    'batch-size': { type: 'int', min: 1, max: 4096, default: 64, aliases: ['batch'], help: 'images per network evaluation' },
    threads: { type: 'int', min: 1, max: 64, default: 2, help: 'ONNX Runtime threads' },
    engine: { type: 'choice', choices: ENGINE_NAMES, default: 'onnx', help: 'what runs the network' },
    only: { type: 'string', help: 'comma-separated cells to run' },
    out: { type: 'string', help: 'report prefix', defaultText: 'docs/study-sampling-steps' },
    'floor-seeds': { type: 'int', min: 1, max: 100, default: 5, help: 'seeds of the real-vs-real floor' },
  } as const);
  const { n, seed, threads, engine, only } = o;
  const checkpoint = o.checkpoint ?? join(ROOT, 'models', 'mnist');
  const checkpointName = o.checkpoint ?? 'models/mnist';
  const batch = o['batch-size'];
  const out = o.out ?? join(ROOT, 'docs', 'study-sampling-steps');
  const floorSeeds = o['floor-seeds'];
  const cells = selectCells(CELLS, only);
  const tStart = performance.now();

  say(`study 1 (sampling steps): N = ${n}, seed ${seed}, ${cells.length} cells, ${checkpointName}, engine ${engine}`);
  say('measuring stick: classifier features of the reference images, real-vs-real floor …');
  const ctx = await prepareEval(n, seed, floorSeeds);
  say(`floor at N = ${n}: FID ${ctx.floor.fid.toFixed(2)} (over seeds ${ctx.floorSpread.seeds.join(',')}: ${ctx.floorSpread.fids.map((x) => x.toFixed(1)).join(', ')})`);
  const pipe = await loadPipeline(checkpoint, { engine, threads, batchSize: batch });
  const results: Result[] = [];
  const samples: TimedSamples[] = [];
  try {
    const T = pipe.config.diffusion.timesteps;
    await warmUp(pipe, batch);
    for (const cell of cells) {
      const steps = cell.steps === 0 ? T : cell.steps;
      const g = await generateTimed(pipe, { sampler: cell.sampler, steps, n, seed, batch, label: cell.id });
      const scores = scoreImages(ctx, g.images, g.shape);
      results.push({ cell, steps, seconds: g.seconds, secPerImage: g.seconds / n, scores, load: g.load });
      samples.push(g);
      say(`${cell.label}: ${steps} NFE, ${g.seconds.toFixed(1)} s (${(1000 * g.seconds / n).toFixed(1)} ms/image), FID ${scores.fid.toFixed(2)}, KID ${scores.kid.toFixed(2)} ± ${scores.kidStd.toFixed(2)}`);
    }
    const cfg = pipe.config;
    const wall = (performance.now() - tStart) / 1000;

    // ---- report
    const floor = ctx.floor;
    const spread = ctx.floorSpread.fids;
    const rows = results.map((r) => [r.cell.label, String(r.steps), fixed(1000 * r.secPerImage, 1), fixed(r.seconds, 1), ...scoreCols(r.scores)]);
    rows.push(['real vs real (floor)', '—', '—', '—', ...scoreCols(floor)]);
    const table = markdownTable(['sampler', 'NFE / image', 'wall ms / image', 'wall s (all N)', 'FID', 'KID ± std', 'class entropy / log 10', 'classes covered'], rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r']);

    const families = [...new Set(results.map((r) => r.cell.family))];
    const series: PlotSeries[] = families.map((fam) => ({
      name: fam,
      line: fam !== 'DDPM',
      points: results.filter((r) => r.cell.family === fam).map((r) => ({ x: r.secPerImage, y: r.scores.fid, label: r.cell.family === 'DDPM' ? `DDPM ${r.steps}` : String(r.steps) })),
    }));
    const svg = svgPlot({
      title: `FID vs wall time per image (${checkpointName}, N = ${n})`,
      xLabel: 'wall seconds per image',
      yLabel: 'FID (lower is better)',
      logX: true,
      series,
      refLines: [{ y: floor.fid, label: `real-vs-real floor ${floor.fid.toFixed(1)}` }],
    });

    const findings: string[] = [];
    const best = results.reduce((a, b) => (b.scores.fid < a.scores.fid ? b : a), results[0]!);
    if (best !== undefined) {
      findings.push(`Lowest FID: **${best.cell.label}** at ${best.scores.fid.toFixed(2)} (${(best.scores.fid / floor.fid).toFixed(1)}× the floor of ${floor.fid.toFixed(2)}), ${(1000 * best.secPerImage).toFixed(1)} ms per image.`);
      const front = paretoFront(results.map((r) => ({ x: r.secPerImage, y: r.scores.fid }))).map((i) => results[i]!);
      findings.push(`Pareto front (no other cell is both faster and lower in FID), fastest first: ${front.map((r) => `${r.cell.label} (${(1000 * r.secPerImage).toFixed(1)} ms, FID ${r.scores.fid.toFixed(2)})`).join(' → ')}.`);
      const ddpm = results.find((r) => r.cell.id === 'ddpm');
      const ddim50 = results.find((r) => r.cell.id === 'ddim50');
      if (ddpm !== undefined && ddim50 !== undefined) {
        findings.push(`DDPM over all ${ddpm.steps} steps took ${(ddpm.seconds / ddim50.seconds).toFixed(1)}× the wall time of DDIM 50, for FID ${ddpm.scores.fid.toFixed(2)} vs ${ddim50.scores.fid.toFixed(2)}.`);
      }
      for (const fam of families.filter((x) => x !== 'DDPM')) {
        const rs = results.filter((r) => r.cell.family === fam);
        if (rs.length > 1) findings.push(`${fam}, FID by steps: ${rs.map((r) => `${r.steps} → ${r.scores.fid.toFixed(2)}`).join(', ')}.`);
      }
      for (const k of [10, 20]) {
        const a = results.find((r) => r.cell.id === `dpm${k}`);
        const b = results.find((r) => r.cell.id === `ddim${k}`);
        if (a !== undefined && b !== undefined) findings.push(`At ${k} steps: DPM-Solver++ FID ${a.scores.fid.toFixed(2)} vs DDIM ${b.scores.fid.toFixed(2)} (wall ${(1000 * a.secPerImage).toFixed(1)} vs ${(1000 * b.secPerImage).toFixed(1)} ms per image).`);
      }
    }
    const msPerNfe = results.map((r) => (1000 * r.seconds) / (r.steps * n));
    const loads = results.flatMap((r) => r.load);

    const md = `# Study: number of sampling steps (issue #6, study 1)

Regenerate everything on this page (numbers, plot, samples) with one command
(this run took ${minutes(wall)} on the machine below):

\`\`\`sh
npx tsc -p tsconfig.json && node dist/bench/study-steps.js${commandFlags()}
\`\`\`

**Setup.** One trained model: \`${checkpointName}\` (${cfg.model.numClasses > 0 ? 'class-conditional' : 'unconditional'} U-Net, base ${cfg.model.baseChannels} channels, trained ${pipe.step} steps; EMA weights), ${cfg.model.numClasses > 0 ? 'sampled **unconditionally** (every image gets the "no class" input, no guidance)' : 'sampled unconditionally'}; T = ${T}, ${cfg.diffusion.schedule} schedule, ${cfg.diffusion.prediction}-prediction. Samplers as shipped: DDIM with η = 0, DDPM with the posterior variance β̃, DPM-Solver++(2M); x̂₀ clipped to [−1, 1]. Network on ${pipe.engine} (${threads} threads), batches of ${batch}.

**Budget.** N = ${n} images per cell, seed ${seed} for every cell: the same starting noise x_T (it is drawn first from the seeded stream), the same ${n} held-out reference digits and the same KID subsets. FID/KID in the feature space of \`${ctx.classifierDir}\` (see docs/eval.md: these numbers compare only with each other, at this N). Wall time is the generation call alone (scoring excluded), after one warm-up network evaluation; "NFE" is network evaluations per image.

**Machine.** ${machineDescription()}. 1-minute load average read before and after each cell: ${fixed(Math.min(...loads), 2)}–${fixed(Math.max(...loads), 2)} (ONNX Runtime runs ${threads} threads on the ${cpus().length} cores). Wall time per image and network evaluation, sampler arithmetic included: ${fixed(Math.min(...msPerNfe), 2)}–${fixed(Math.max(...msPerNfe), 2)} ms.

## Results (N = ${n}, seed ${seed})

${table}
Real-vs-real floor at N = ${n} (${n} training digits vs the same ${n} reference digits): **FID ${floor.fid.toFixed(2)}**, KID ${pm(floor.kid, floor.kidStd, 2)}. Drawing other real images (seeds ${ctx.floorSpread.seeds.join(', ')}) moves the floor's FID over ${Math.min(...spread).toFixed(2)}–${Math.max(...spread).toFixed(2)}: a rough scale of FID's own sampling noise at N = ${n} (the cells share their reference images and starting noise, so differences between cells are less noisy than that).

![FID vs wall time per image](${sibling(out, '.svg')})

## Findings (generated from the table)

${findings.map((s) => `- ${s}`).join('\n')}

## Samples

The first 12 samples of each cell, one row per cell in table order (${results.map((r) => r.cell.label).join(', ')}); every row starts from the same noise.

![samples](${sibling(out, '-samples.png')})
`;
    const json = {
      study: 'sampling-steps', checkpoint: checkpointName, step: pipe.step, engine: pipe.engine, threads, batch, n, seed, machine: machineDescription(),
      wallSeconds: wall, floor, floorSpread: ctx.floorSpread,
      cells: results.map((r) => ({ id: r.cell.id, label: r.cell.label, sampler: r.cell.sampler, nfe: r.steps, seconds: r.seconds, secPerImage: r.secPerImage, loadAvg1m: r.load, ...r.scores })),
    };
    const files = writeReport(out, md, json, { '.svg': svg });
    await writeSampleRows(`${out}-samples.png`, samples, 12);
    say(`wrote ${[...files, `${out}-samples.png`].join(', ')} (${minutes(wall)})`);
  } finally {
    await pipe.dispose();
    ctx.dispose();
  }
}

main().catch(reportError);
