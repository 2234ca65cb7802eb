/**
 * The expert flags of `diffuse train` end to end (in-process, through the
 * executable's error handler): --experts K trains K networks into one
 * checkpoint that samples; --split-from continues a shared run as experts;
 * misuse is one line and exit code 1, before any training.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, imageFolder, tempDir, tinyTrain } from './fixtures.js';

const work = tempDir('experts-cli');
const data = await imageFolder(join(work, 'data'), ['a', 'b'], 4);
const config = (run: string): Record<string, unknown> => JSON.parse(readFileSync(join(run, 'checkpoint', 'config.json'), 'utf8')) as Record<string, unknown>;

test('train --experts 2, sample it, split a shared run into experts', async () => {
  const k2 = join(work, 'k2');
  const r = await cli(tinyTrain(data, '--conditional', '--train-steps', '2', '--experts', '2', '--expert-split', 'snr', '--out', k2));
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /× 2 experts: t 0–\d+, t \d+–49 \(snr split\)/);
  const ex = config(k2)['experts'] as { count: number; split: string; boundaries: number[] };
  assert.equal(ex.count, 2);
  assert.equal(ex.split, 'snr');
  const s = await cli(['sample', '--checkpoint', k2, '--class', 'all', '--n', '4', '--sampling-steps', '5', '--out', join(work, 'k2.png')]);
  assert.equal(s.code, 0, s.err);
  assert.ok(existsSync(join(work, 'k2.png')));

  const shared = join(work, 'shared');
  assert.equal((await cli(tinyTrain(data, '--train-steps', '2', '--out', shared))).code, 0);
  const split = join(work, 'split');
  const sp = await cli(['train', '--split-from', shared, '--experts', '4', '--train-steps', '4', '--workers', '1', '--out', split]);
  assert.equal(sp.code, 0, sp.err);
  assert.match(sp.err, /splitting the shared network of .* \(step 2\) into 4 experts/);
  assert.match(sp.err, /from the shared network at step 2/);
  assert.deepEqual(config(split)['experts'], { count: 4, split: 't', boundaries: [0, 13, 25, 38, 50], init: { kind: 'split', sharedSteps: 2, optimizer: 'copy' } });
  assert.equal((config(split)['train'] as { steps: number }).steps, 4);
  // the split run resumes like any other
  const more = await cli(['train', '--resume', split, '--train-steps', '5']);
  assert.equal(more.code, 0, more.err);
});

test('expert flags: misuse is one line naming the flag, exit 1, nothing trained', async () => {
  const shared = join(work, 'shared-bad');
  assert.equal((await cli(tinyTrain(data, '--train-steps', '2', '--out', shared))).code, 0);
  const rows: [string[], RegExp][] = [
    [['train', '--experts', '0'], /--experts must be an integer in 1\.\.64, got '0'/],
    [['train', '--experts', '2', '--expert-split', 'log'], /--expert-split must be one of t, snr/],
    [tinyTrain(data, '--experts', '5', '--out', join(work, 'x1')), /batchSize \(4\) must be at least experts\.count \(5\)/],
    [['train', '--split-from', shared, '--train-steps', '4', '--out', join(work, 'x2')], /--split-from needs --experts K with K ≥ 2/],
    [['train', '--split-from', shared, '--experts', '2', '--out', join(work, 'x3')], /--split-from needs --train-steps N/],
    [['train', '--split-from', shared, '--experts', '2', '--train-steps', '4'], /--split-from needs --out DIR/],
    [['train', '--split-from', shared, '--experts', '2', '--train-steps', '4', '--lr', '0.1', '--out', join(work, 'x4')], /--split-from takes the config of the shared network's run: --lr cannot change/],
    [['train', '--split-from', shared, '--experts', '2', '--train-steps', '2', '--out', join(work, 'x5')], /the shared network of .*shared-bad is at step 2: give --train-steps above 2/],
    [['train', '--split-from', shared, '--experts', '2', '--train-steps', '4', '--out', shared], /need a run folder of their own/],
    [['train', '--split-optimizer', 'fresh'], /--split-optimizer needs --split-from DIR/],
    [['train', '--resume', shared, '--experts', '2'], /--experts cannot change/],
  ];
  for (const [argv, message] of rows) {
    const r = await cli(argv);
    assert.equal(r.code, 1, `${argv.join(' ')}: ${r.err}`);
    assert.match(r.err, message, argv.join(' '));
    assert.equal(r.err.trim().split('\n').length, 1, `one line: ${r.err}`);
  }
  for (const x of ['x1', 'x2', 'x3', 'x4', 'x5']) assert.equal(existsSync(join(work, x, 'checkpoint')), false, x);
});
