/**
 * Our checkpoints opened by diffusers: tiny random-weight models of this
 * project (one in its own U-Net style with classes, one UNet2DConditionModel-
 * style with cross-attention) exported with `diffuse export --format
 * diffusers`, each folder with `diffuse-io.json` (fixed inputs, our ONNX
 * Runtime output, our schedule's ᾱ table); then, where Debian's python3-torch
 * and a diffusers checkout are present, test/fixtures/verify_diffusers_export.py
 * loads each folder with diffusers' code and prints the relative errors.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/diffusers-export.js [--diffusers /tmp/diffusers/src/diffusers] [--keep DIR] [--write-expected]
 *
 * --write-expected stores diffusers' outputs and the exported files' digests in
 * test/fixtures/diffusers/export-expected.json (what test/interop/diffusers-
 * export.test.ts checks without torch). Used by that test and by
 * test/interop/diffusers-torch.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultConfig, type DiffuseConfig } from '../src/config.js';
import { BatchSampler } from '../src/data/batches.js';
import { unetGraph } from '../src/model/unet-description.js';
import { createOrtGraphSession } from '../src/onnx/graph-session.js';
import { mulberry32, Rng } from '../src/rng.js';
import { makeSchedule } from '../src/schedule.js';
import type { Weights } from '../src/tensor.js';
import { saveCheckpoint } from '../src/train/checkpoint.js';
import { randomParams } from './random-params.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const EXPECTED = join(ROOT, 'test', 'fixtures', 'diffusers', 'export-expected.json');
export const VERIFY_SCRIPT = join(ROOT, 'test', 'fixtures', 'verify_diffusers_export.py');
export const DEFAULT_DIFFUSERS_SRC = '/tmp/diffusers/src/diffusers';

export interface ExportCase {
  readonly name: string;
  readonly config: DiffuseConfig;
  /** Inputs beyond x and t. */
  readonly classes?: readonly number[];
  readonly contextLength?: number;
}

/** The cases: our own U-Net (attention at 4x4, 3 classes, cosine schedule, v-prediction) and a UNet2DConditionModel-style one. */
export const EXPORT_CASES: readonly ExportCase[] = [
  {
    name: 'ours',
    config: defaultConfig({
      model: { imageSize: 8, baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [4], groups: 4, numClasses: 3 },
      diffusion: { schedule: 'cosine', timesteps: 1000, prediction: 'v' },
      data: { imageSize: 8, channels: 3 },
    }),
    classes: [2, 3],
  },
  {
    name: 'cond',
    config: defaultConfig({
      model: {
        imageSize: 8, baseChannels: 4, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [8, 4], groups: 2, numClasses: 0,
        sinusoid: { flipSinToCos: true, freqShift: 0 }, downsamplePadding: 'symmetric', attentionHeads: [2, 4], normEps: 1e-6,
        crossAttention: { contextDim: 5, contextLength: 3, linearProjection: true },
      },
      diffusion: { schedule: 'scaled-linear', timesteps: 1000, prediction: 'epsilon', betaStart: 0.00085, betaEnd: 0.012 },
      data: { imageSize: 8, channels: 3 },
    }),
    contextLength: 3,
  },
];

export interface CaseInputs {
  readonly shape: [number, number, number, number];
  readonly x: Float32Array;
  readonly t: Float32Array;
  readonly classes?: Int32Array;
  readonly context?: Float32Array;
  readonly contextShape?: [number, number, number];
}

/** Fixed inputs of a case: two images at t = 17 and 733.5. */
export function caseInputs(c: ExportCase): CaseInputs {
  const m = c.config.model;
  const r = mulberry32(4242);
  const shape: [number, number, number, number] = [2, m.imageSize, m.imageSize, m.inChannels];
  const x = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1);
  const ctx = m.crossAttention;
  return {
    shape, x, t: Float32Array.of(17, 733.5),
    ...(c.classes !== undefined ? { classes: Int32Array.from(c.classes) } : {}),
    ...(ctx !== undefined ? { context: Float32Array.from({ length: 2 * ctx.contextLength * ctx.contextDim }, () => r() * 2 - 1), contextShape: [2, ctx.contextLength, ctx.contextDim] as [number, number, number] } : {}),
  };
}

/** Our output for a case's inputs (ONNX Runtime, one thread). */
export async function ourOutput(c: ExportCase, params: Weights, inputs: CaseInputs): Promise<Float32Array> {
  const s = await createOrtGraphSession(unetGraph(c.config.model), params, { threads: 1 });
  try {
    const feeds: Record<string, Float32Array | Int32Array> = { x: inputs.x, t: inputs.t };
    if (inputs.classes !== undefined) feeds['classes'] = inputs.classes;
    if (inputs.context !== undefined) feeds['context'] = inputs.context;
    return (await s.run(feeds, inputs.shape[0]))['out']!.data;
  } finally {
    await s.dispose();
  }
}

/** A checkpoint folder holding `params` as its EMA (and raw) weights, for `diffuse export`. */
export async function saveCaseCheckpoint(dir: string, config: DiffuseConfig, params: Weights): Promise<void> {
  const zeros = Object.fromEntries(Object.entries(params).map(([k, t]) => [k, { shape: t.shape, data: new Float32Array(t.data.length) }]));
  await saveCheckpoint(dir, {
    config,
    state: { params, ema: params, adam: { step: 1, m: zeros, v: zeros } },
    trainingState: { step: 1, rng: new Rng(0).state(), sampler: new BatchSampler(4, 2, 1).state(), lossHistory: [], wallTimeSec: 0 },
  });
}

/** sha256 of the files of an export folder (relative path -> hex). */
export function exportDigests(dir: string, files: readonly string[]): Record<string, string> {
  return Object.fromEntries(files.map((f) => [f, createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')]));
}

export const EXPORT_FILES = ['unet/config.json', 'unet/diffusion_pytorch_model.safetensors', 'scheduler/scheduler_config.json'] as const;

/** Write `diffuse-io.json` beside an export: the inputs, our output and our ᾱ table. */
export function writeCaseIO(dir: string, c: ExportCase, inputs: CaseInputs, out: Float32Array): void {
  const d = c.config.diffusion;
  const abar = makeSchedule(d.schedule, d.timesteps, d).alphaBar;
  writeFileSync(join(dir, 'diffuse-io.json'), JSON.stringify({
    case: c.name, shape: inputs.shape, x: [...inputs.x], t: [...inputs.t],
    ...(inputs.classes !== undefined ? { classes: [...inputs.classes] } : {}),
    ...(inputs.context !== undefined ? { context: [...inputs.context], contextShape: inputs.contextShape } : {}),
    out: [...out], alphaBar: [...abar],
  }));
}

/** Whether diffusers can be run here: Debian's python3 with torch and numpy, and a diffusers checkout. */
export function torchAvailable(src: string): string | undefined {
  if (!existsSync(join(src, 'models', 'unets', 'unet_2d.py'))) return `no diffusers checkout at ${src} (set DIFFUSERS_SRC to its src/diffusers folder)`;
  const r = spawnSync('/usr/bin/python3', ['-c', 'import torch, numpy'], { encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } });
  if (r.status !== 0) return '/usr/bin/python3 cannot import torch and numpy';
  return undefined;
}

/** Run the verifier on export folders; its stdout lines and exit status. */
export function runVerifier(src: string, dirs: readonly string[], json?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('/usr/bin/python3', [VERIFY_SCRIPT, src, ...dirs, ...(json !== undefined ? ['--json', json] : [])], {
    encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' }, timeout: 300_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Export every case into `root/<name>` through the CLI and write its diffuse-io.json; returns the folders. */
export async function exportCases(root: string): Promise<string[]> {
  const { command } = await import('../src/cli/export.js');
  const dirs: string[] = [];
  for (const [i, c] of EXPORT_CASES.entries()) {
    const params = randomParams(c.config.model, 100 + i);
    const ckpt = join(root, `${c.name}-checkpoint`);
    await saveCaseCheckpoint(ckpt, c.config, params);
    const dir = join(root, c.name);
    const code = await command.execute(['--checkpoint', ckpt, '--format', 'diffusers', '--out', dir]);
    if (code !== 0) throw new Error(`export of ${c.name} failed`);
    const inputs = caseInputs(c);
    writeCaseIO(dir, c, inputs, await ourOutput(c, params, inputs));
    dirs.push(dir);
  }
  return dirs;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const src = at('--diffusers') ?? process.env['DIFFUSERS_SRC'] ?? DEFAULT_DIFFUSERS_SRC;
  const keep = at('--keep');
  const root = keep ?? mkdtempSync(join(tmpdir(), 'diffuse-export-'));
  try {
    const dirs = await exportCases(root);
    for (const d of dirs) process.stdout.write(`exported ${d}\n`);
    const why = torchAvailable(src);
    if (why !== undefined) {
      process.stdout.write(`skipping the diffusers check: ${why}\n`);
      return;
    }
    const json = join(root, 'diffusers-out.json');
    const r = runVerifier(src, dirs, json);
    process.stdout.write(r.stdout);
    if (r.status !== 0) {
      process.stderr.write(r.stderr);
      process.exitCode = 1;
      return;
    }
    if (args.includes('--write-expected')) {
      const outs = JSON.parse(readFileSync(json, 'utf8')) as Record<string, { class: string; out: number[] }>;
      const expected = Object.fromEntries(EXPORT_CASES.map((c, i) => [c.name, { ...outs[c.name]!, files: exportDigests(dirs[i]!, EXPORT_FILES) }]));
      writeFileSync(EXPECTED, JSON.stringify(expected, null, 1) + '\n');
      process.stdout.write(`wrote ${EXPECTED}\n`);
    }
  } finally {
    if (keep === undefined) rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
