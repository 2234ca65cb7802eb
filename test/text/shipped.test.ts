/**
 * The shipped text-conditioned model answers prompts: asked for boots or
 * trousers, the project's Fashion-MNIST classifier sees boots or trousers;
 * an unknown word fails in the CLI with the vocabulary in the message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initEngine } from '../../src/engine/backend.js';
import { loadClassifier } from '../../src/eval/classifier.js';
import { classAgreement } from '../../src/eval/evaluate.js';
import { promptCondition } from '../../src/guidance/condition.js';
import { generateWith, loadPipeline } from '../../src/pipeline.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MODEL = join(ROOT, 'models', 'fashion-mnist-text');

test('models/fashion-mnist-text: "ankle boot" makes boots and "trousers" makes trousers (classifier agrees)', async () => {
  await initEngine({ backend: 'wasm' });
  const clf = loadClassifier(join(ROOT, 'models', 'classifier-fashion-mnist'));
  const pipe = await loadPipeline(MODEL);
  try {
    assert.equal(pipe.config.model.text?.vocab.includes('boot'), true);
    const prompts = [...new Array<string>(8).fill('ankle boot'), ...new Array<string>(8).fill('a photo of the trousers')];
    const r = await generateWith(pipe, { sampler: 'dpm-solver', steps: 20, n: 16, seed: 5, condition: promptCondition(pipe.config, prompts, 4) });
    const want = Int32Array.from(prompts, (p) => (p.includes('boot') ? 9 : 1));
    const a = classAgreement(clf, { images: r.images, shape: r.shape }, want);
    assert.ok(a.perClass[9]! >= 0.75 && a.perClass[1]! >= 0.75, `agreement: boots ${a.perClass[9]}, trousers ${a.perClass[1]}`);
  } finally {
    await pipe.dispose();
    clf.dispose();
  }
});

test('diffuse sample --prompt with an unknown word: exit 1, one line naming it and the closest known words', async () => {
  const cli = join(ROOT, 'dist', 'src', 'cli', 'main.js');
  await assert.rejects(
    promisify(execFile)(process.execPath, [cli, 'sample', '--checkpoint', MODEL, '--prompt', 'a purple bots', '--out', join(tmpdir(), 'diffuse-never-written.png')], { cwd: ROOT }),
    (e: { code?: number; stderr?: string }) => e.code === 1 && /diffuse: unknown word 'purple' in prompt 'a purple bots'; closest known words: purse\n$/.test(e.stderr ?? ''),
  );
});
