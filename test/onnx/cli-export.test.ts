/** `diffuse export` (src/cli/export.ts), driven through its run(args). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { command } from '../../src/cli/export.js';
const run = (argv: string[]): Promise<number> => command.execute(argv);
import { defaultConfig } from '../../src/config.js';
import { DiffuseError } from '../../src/errors.js';
import { BatchSampler } from '../../src/data/batches.js';
import { Rng } from '../../src/rng.js';
import { modelParamShapes, saveCheckpoint } from '../../src/train/checkpoint.js';
import type { TrainerState } from '../../src/train/trainer.js';
import { ONNX_UNET_CONFIG_KEY } from '../../src/onnx/export-unet.js';
import { decodeOnnxModel } from '../../src/onnx/proto.js';
import { createOrtModelFn, ortAvailable } from '../../src/onnx/runner.js';

const config = defaultConfig({ model: { imageSize: 8, baseChannels: 8, channelMults: [1, 2], attentionResolutions: [4], groups: 4, numResBlocks: 1 }, data: { imageSize: 8 } });

async function withCheckpoint(f: (dir: string, root: string) => Promise<void>): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'diffuse-export-'));
  try {
    const shapes = (await modelParamShapes())(config);
    const rng = new Rng(4);
    const fill = (k: number): TrainerState['params'] => Object.fromEntries(Object.entries(shapes).map(([name, shape]) => {
      const n = shape.reduce((a, b) => a * b, 1);
      return [name, { shape: [...shape], data: Float32Array.from({ length: n }, () => rng.normal() * k) }];
    }));
    const dir = join(root, 'ckpt');
    await saveCheckpoint(dir, {
      config,
      state: { params: fill(0.2), ema: fill(0.1), adam: { step: 7, m: fill(0), v: fill(0) } },
      trainingState: { step: 7, rng: rng.state(), sampler: new BatchSampler(10, 2, 1).state(), lossHistory: [], wallTimeSec: 1 },
    });
    await f(dir, root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const quiet = async (fn: () => Promise<unknown>): Promise<string> => {
  const orig = process.stdout.write.bind(process.stdout);
  let text = '';
  process.stdout.write = ((chunk: string | Uint8Array): boolean => {
    text += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = orig;
  }
  return text;
};

test('diffuse export writes an ONNX file of the EMA (default) or raw weights, with metadata', () => withCheckpoint(async (dir, root) => {
  const ema = join(root, 'ema.onnx');
  const raw = join(root, 'raw.onnx');
  const said = await quiet(() => run(['--checkpoint', dir, '--format', 'onnx', '--out', ema]));
  assert.match(said, /wrote .*ema\.onnx: ONNX opset 17, ema weights of step 7/);
  await quiet(() => run(['--checkpoint', dir, '--weights', 'model', '--out', raw, '--opset', '13']));
  const m = decodeOnnxModel(readFileSync(ema));
  assert.equal(m.metadata['diffuse.weights'], 'ema');
  assert.equal(m.metadata['diffuse.schedule'], 'linear');
  assert.equal(m.metadata['diffuse.timesteps'], '1000');
  assert.equal(m.metadata['diffuse.prediction'], 'epsilon');
  assert.deepEqual(JSON.parse(m.metadata[ONNX_UNET_CONFIG_KEY]!), config.model);
  const r = decodeOnnxModel(readFileSync(raw));
  assert.equal(r.opsetImports[0]!.version, 13);
  assert.equal(r.metadata['diffuse.weights'], 'model');
  if (await ortAvailable()) {
    const a = await createOrtModelFn(ema, { threads: 1 });
    const b = await createOrtModelFn(raw, { threads: 1 });
    const x = new Float32Array(2 * 64).fill(0.5);
    const ya = await a(x, 10, [2, 8, 8, 1]);
    const yb = await b(x, 10, [2, 8, 8, 1]);
    assert.notDeepEqual(ya, yb, 'ema and raw weights differ');
    await a.dispose();
    await b.dispose();
  }
}));

test('diffuse export: bad flags are DiffuseErrors naming the flag', () => withCheckpoint(async (dir, root) => {
  const isDE = (re: RegExp) => (e: unknown) => e instanceof DiffuseError && re.test(e.message);
  await assert.rejects(run(['--out', join(root, 'x.onnx')]), isDE(/--checkpoint/));
  await assert.rejects(run(['--checkpoint', dir, '--format', 'tflite']), isDE(/--format must be one of onnx/));
  await assert.rejects(run(['--checkpoint', dir, '--weights', 'best']), isDE(/--weights must be one of ema, model/));
  await assert.rejects(run(['--checkpoint', dir, '--opset', '99', '--out', join(root, 'y.onnx')]), isDE(/opset/));
  await assert.rejects(run(['--checkpoint', dir, '--bogus', '1']), isDE(/unknown option --bogus/));
  await assert.rejects(run(['--checkpoint', join(root, 'nope')]), isDE(/nope/));
}));
