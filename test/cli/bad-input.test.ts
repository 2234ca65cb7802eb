/**
 * Issue #13, one row per case: each bad input gets one line naming the value
 * and what is allowed, exit code 1, before any long compute (never a stack
 * trace, a hang or a silently wrong picture); the behaviour fixes (classes from
 * the data, --class all, JPEG output, checkpoint recovery) get exit 0 and the
 * line that says what happened. Rows run in-process through the executable's
 * own error handler (cli.ts report); a few are also spawned to check the
 * executable itself prints exactly one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { cli, copyOf, imageFolder, MAIN, ROOT, tempDir, tinyTrain } from './fixtures.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { decodeSafetensors, encodeSafetensors } from '../../src/io/safetensors.js';

const work = tempDir('bad-input');
const data3 = await imageFolder(join(work, 'data3'), ['a', 'b', 'c'], 4);
const data11 = await imageFolder(join(work, 'data11'), Array.from({ length: 11 }, (_, i) => `class${i}`), 1);
const base = join(work, 'base');
const made = await cli([...tinyTrain(data3, '--train-steps', '2', '--out', base)]);
assert.equal(made.code, 0, made.err);
const SHIPPED = join(ROOT, 'models', 'mnist');

/** A PNG that declares 20000×20000 pixels in a few bytes (signature + IHDR + IEND). */
function hugePng(): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(20000, 0);
  ihdr.writeUInt32BE(20000, 4);
  ihdr[8] = 8; // bit depth; colour type 0 (gray)
  const chunk = (type: string, body: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, body.length]), Buffer.from(type), body, Buffer.alloc(4)]);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.alloc(64)), chunk('IEND', Buffer.alloc(0))]);
}

const json = (file: string): Record<string, unknown> => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
const ckpt = (d: string): string => join(d, 'checkpoint');

interface Row {
  /** What the issue lists. */
  readonly name: string;
  /** Prepare the row's own folder `d` (a copy of the base run, damaged files ...). */
  readonly setup?: (d: string) => void | Promise<void>;
  readonly argv: (d: string) => string[];
  readonly code: number;
  /** On stderr (the one line, for exit code 1). */
  readonly message: RegExp;
  /** Further checks on the row's folder. */
  readonly check?: (d: string) => void;
}

const ROWS: readonly Row[] = [
  // ---- values out of range, before any work
  { name: 'sample --sampling-steps -3', argv: () => ['sample', '--sampling-steps', '-3'], code: 1, message: /--sampling-steps must be an integer in 1\.\.100000, got '-3'/ },
  { name: 'sample --batch-size 0', argv: () => ['sample', '--batch-size', '0'], code: 1, message: /--batch-size must be an integer in 1\.\.4096, got '0'/ },
  { name: 'sample --batch-size -1', argv: () => ['sample', '--batch-size', '-1'], code: 1, message: /--batch-size must be an integer in 1\.\.4096, got '-1'/ },
  { name: 'sample --n 1e12', argv: () => ['sample', '--n', '1e12'], code: 1, message: /--n must be an integer in 1\.\.100000, got '1e12'/ },
  { name: 'sample --sampling-steps above the model\'s T', setup: (d) => { mkdirSync(d); }, argv: (d) => ['sample', '--checkpoint', base, '--sampling-steps', '51', '--out', join(d, 'x.png')], code: 1, message: /--sampling-steps 51 is more than the model's T = 50/ },
  { name: 'train --lr -1', argv: () => ['train', '--lr', '-1'], code: 1, message: /--lr must be a number in \(0, 10\), got '-1'/ },
  { name: 'train --workers 3', argv: () => ['train', '--workers', '3'], code: 1, message: /--workers must be an integer in 1\.\.2, got '3'/ },
  { name: 'serve --host 999.1.1.1', argv: () => ['serve', '--host', '999.1.1.1'], code: 1, message: /host '999\.1\.1\.1' is not an IP address/ },
  { name: 'serve --host 8.8.8.8', argv: () => ['serve', '--host', '8.8.8.8'], code: 1, message: /host 8\.8\.8\.8 is not an address of this machine/ },
  { name: 'unknown option, with a suggestion', argv: () => ['sample', '--sampling-stepz', '3'], code: 1, message: /unknown option --sampling-stepz for diffuse sample \(did you mean --sampling-steps\?\)/ },
  { name: 'an option given twice', argv: () => ['sample', '--n', '2', '--n', '3'], code: 1, message: /--n is given twice/ },

  // ---- files that cannot be run or read
  {
    name: 'resume: state.json with an absurd batch size',
    setup: (d) => {
      copyOf(base, d);
      const f = join(ckpt(d), 'state.json');
      const s = json(f);
      (s['sampler'] as Record<string, unknown>)['batchSize'] = 1e9;
      writeFileSync(f, JSON.stringify(s));
    },
    argv: (d) => ['train', '--resume', d],
    code: 1,
    message: /state\.json: the data sampler's batch size 1000000000 differs from the config's train\.batchSize 4/,
  },
  {
    name: 'config.json whose sizes pass validation but cannot run (imageSize 4096)',
    setup: (d) => {
      copyOf(base, d);
      const f = join(ckpt(d), 'config.json');
      const c = json(f) as { data: { imageSize: number }; model: { imageSize: number } };
      c.data.imageSize = 4096;
      c.model.imageSize = 4096;
      writeFileSync(f, JSON.stringify(c));
    },
    argv: (d) => ['sample', '--checkpoint', d, '--out', join(d, 'x.png')],
    code: 1,
    message: /sampling 4096×4096 images 64 at a time .* needs about [\d.]+ [GTPE]B of memory \(estimate\), more than/,
  },
  {
    name: 'a PNG declaring 20000x20000 pixels: noise',
    setup: (d) => { mkdirSync(d); writeFileSync(join(d, 'huge.png'), hugePng()); },
    argv: (d) => ['noise', join(d, 'huge.png'), '--out', join(d, 'strip.png')],
    code: 1,
    message: /declares 20000×20000 pixels \(400 megapixels\), more than the limit of 50 megapixels/,
  },
  {
    name: 'a PNG declaring 20000x20000 pixels: train',
    setup: async (d) => { await imageFolder(d, ['a', 'b'], 2); writeFileSync(join(d, 'a', 'huge.png'), hugePng()); },
    argv: (d) => tinyTrain(d, '--out', join(d, 'run')),
    code: 1,
    message: /huge\.png' declares 20000×20000 pixels/,
  },
  {
    name: 'a PNG declaring 20000x20000 pixels: eval --samples',
    setup: (d) => { mkdirSync(d); writeFileSync(join(d, '0.png'), hugePng()); writeFileSync(join(d, '1.png'), hugePng()); },
    argv: (d) => ['eval', '--samples', d, '--dataset', 'mnist', '--n', '2', '--no-floor'],
    code: 1,
    message: /declares 20000×20000 pixels/,
  },
  {
    name: 'a FIFO as config.json (would hang)',
    setup: (d) => { copyOf(base, d); unlinkSync(join(ckpt(d), 'config.json')); execFileSync('mkfifo', [join(ckpt(d), 'config.json')]); },
    argv: (d) => ['sample', '--checkpoint', d, '--out', join(d, 'x.png')],
    code: 1,
    message: /config\.json': it is a FIFO \(named pipe\), not a regular file/,
  },
  {
    name: 'ema.safetensors symlinked to /dev/zero (would be read until memory runs out)',
    setup: (d) => { copyOf(base, d); unlinkSync(join(ckpt(d), 'ema.safetensors')); symlinkSync('/dev/zero', join(ckpt(d), 'ema.safetensors')); },
    argv: (d) => ['sample', '--checkpoint', d, '--out', join(d, 'x.png')],
    code: 1,
    message: /ema\.safetensors': it is a device, not a regular file/,
  },
  {
    name: 'weights relabelled as I32 (an all-black image before)',
    setup: (d) => {
      copyOf(base, d);
      const f = join(ckpt(d), 'ema.safetensors');
      writeFileSync(f, Buffer.from(readFileSync(f).toString('latin1').replace(/"dtype":"F32"/g, '"dtype":"I32"'), 'latin1'));
    },
    argv: (d) => ['sample', '--checkpoint', d, '--out', join(d, 'x.png')],
    code: 1,
    message: /ema\.safetensors: tensor ".*" is stored as I32; weights must be floating point/,
  },
  {
    name: 'model output with NaN or Inf (weights that overflow): nothing written',
    setup: (d) => {
      copyOf(base, d);
      const f = join(ckpt(d), 'ema.safetensors');
      const st = decodeSafetensors(readFileSync(f), f);
      const w = Object.fromEntries(Object.entries(st.tensors).map(([k, t]) => [k, { shape: t.shape, data: k.startsWith('out') ? t.data.map((v, j) => (j % 2 === 0 ? 3e38 : -3e38)) : t.data }]));
      writeFileSync(f, encodeSafetensors(w, st.metadata));
    },
    argv: (d) => ['sample', '--checkpoint', d, '--n', '2', '--sampling-steps', '2', '--out', join(d, 'x.png')],
    code: 1,
    message: /produced NaN or infinite values .*nothing was written/,
    check: (d) => assert.throws(() => readFileSync(join(d, 'x.png')), /ENOENT/),
  },

  // ---- outputs: checked before any compute
  { name: 'sample --dir pointing at a file', setup: (d) => { mkdirSync(d); writeFileSync(join(d, 'f'), 'x'); }, argv: (d) => ['sample', '--dir', join(d, 'f')], code: 1, message: /--dir '.*f' is a file, not a folder/ },
  { name: 'sample --out with an extension it does not write', argv: () => ['sample', '--out', 'x.bmp'], code: 1, message: /--out 'x\.bmp': the file name must end in \.png, \.jpg, \.jpeg/ },
  { name: 'sample --gif that is not a .gif', argv: () => ['sample', '--gif', 'anim.png'], code: 1, message: /--gif 'anim\.png': the file name must end in \.gif/ },
  { name: 'sample --out a FIFO is never replaced', setup: (d) => { mkdirSync(d); execFileSync('mkfifo', [join(d, 'p.png')]); }, argv: (d) => ['sample', '--out', join(d, 'p.png')], code: 1, message: /is a FIFO \(named pipe\): refusing to replace it/ },
  { name: 'sample --out a symlink is never replaced', setup: (d) => { mkdirSync(d); symlinkSync('/dev/null', join(d, 'l.png')); }, argv: (d) => ['sample', '--out', join(d, 'l.png')], code: 1, message: /is a symbolic link: refusing to replace it/ },
  { name: 'sample --out into a missing folder', argv: (d) => ['sample', '--out', join(d, 'no', 'x.png')], code: 1, message: /folder '.*no' does not exist/ },
  {
    name: 'sample --out x.jpg writes JPEG',
    setup: (d) => { mkdirSync(d); },
    argv: (d) => ['sample', '--checkpoint', base, '--n', '2', '--sampling-steps', '2', '--out', join(d, 'x.jpg')],
    code: 0,
    message: /wrote .*x\.jpg/,
    check: (d) => assert.deepEqual([...readFileSync(join(d, 'x.jpg')).subarray(0, 3)], [0xff, 0xd8, 0xff]),
  },

  // ---- runs: work is never lost
  { name: 'train --out over a finished run', setup: (d) => { copyOf(base, d); }, argv: (d) => tinyTrain(data3, '--train-steps', '3', '--out', d), code: 1, message: /already holds a run: a checkpoint .*--resume .*--overwrite/ },
  {
    name: 'train-classifier --out over a classifier',
    setup: (d) => { copyOf(join(ROOT, 'models', 'classifier-mnist'), d); },
    argv: (d) => ['train-classifier', '--dataset', 'mnist', '--out', d],
    code: 1,
    message: /already holds a classifier \(config\.json, weights\.safetensors\); give --overwrite/,
  },
  {
    name: 'a second run on a locked folder',
    setup: (d) => { mkdirSync(d); writeFileSync(join(d, '.lock'), JSON.stringify({ pid: process.pid, host: hostname(), started: 'now' })); },
    argv: (d) => tinyTrain(data3, '--out', d),
    code: 1,
    message: /is in use by another training run \(pid \d+/,
  },
  { name: 'train --resume of a missing folder', argv: (d) => ['train', '--resume', join(d, 'nope')], code: 1, message: /cannot resume .*nope: no such folder/ },
  { name: 'train --resume with flags a resumed run does not take', setup: (d) => { copyOf(base, d); }, argv: (d) => ['train', '--resume', d, '--lr', '0.1', '--batch-size', '8', '--base-channels', '16'], code: 1, message: /--lr, --batch-size, --base-channels cannot change \(a resumed run takes --data-dir, .*--train-steps, --lr-decay-steps, --workers/ },
  { name: 'train --resume with a cool-down longer than the run', setup: (d) => { copyOf(base, d); }, argv: (d) => ['train', '--resume', d, '--lr-decay-steps', '50'], code: 1, message: /--lr-decay-steps 50 is longer than the run's \d+ steps \(--train-steps\): give at most \d+/ },
  { name: 'train --init-from with a model flag', argv: (d) => ['train', '--init-from', base, '--out', d, '--train-steps', '2', '--base-channels', '16'], code: 1, message: /--init-from takes the model of .*base: --base-channels cannot be given \(it takes --dataset, --data-dir, .*--balance/ },
  { name: 'train --init-from without --train-steps', argv: (d) => ['train', '--init-from', base, '--out', d], code: 1, message: /--init-from needs --train-steps N: the new run's steps, from 0/ },
  { name: 'train --init-from without --out', argv: () => ['train', '--init-from', base, '--train-steps', '2'], code: 1, message: /--init-from needs --out DIR: the new run's folder/ },
  { name: 'train --init-from a folder that holds no model', argv: (d) => ['train', '--init-from', join(d, 'nothing'), '--out', join(d, 'new'), '--train-steps', '2'], code: 1, message: /nothing: no such folder, and not a shipped model/ },
  { name: 'train --balance with a bad value', argv: (d) => ['train', '--out', d, '--balance', 'tones'], code: 1, message: /--balance.*tones.*images, groups|--balance must be one of/ },
  {
    name: 'sample recovers a checkpoint left between the two renames of a save',
    setup: (d) => { copyOf(base, d); renameSync(ckpt(d), `${ckpt(d)}.old-1-1`); },
    argv: (d) => ['sample', '--checkpoint', d, '--n', '1', '--sampling-steps', '1', '--out', join(d, 'x.png')],
    code: 0,
    message: /1 images, ddim 1 steps/,
    check: (d) => { readFileSync(join(ckpt(d), 'config.json')); },
  },

  // ---- conditions
  {
    name: '--conditional on a folder of 3 classes',
    argv: (d) => tinyTrain(data3, '--conditional', '--train-steps', '2', '--out', d),
    code: 0,
    message: /3 classes from the data set: a, b, c/,
    check: (d) => assert.equal((json(join(ckpt(d), 'config.json'))['model'] as { numClasses: number }).numClasses, 3),
  },
  {
    name: '--conditional on a folder of 11 classes',
    argv: (d) => tinyTrain(data11, '--conditional', '--train-steps', '2', '--out', d),
    code: 0,
    message: /11 classes from the data set: class0, class1, class10/,
    check: (d) => assert.equal((json(join(ckpt(d), 'config.json'))['model'] as { numClasses: number }).numClasses, 11),
  },
  { name: 'sample --class all --n 64 (10 classes)', argv: (d) => ['sample', '--checkpoint', SHIPPED, '--class', 'all', '--n', '64', '--sampling-steps', '1', '--out', join(d, 'x.png')], setup: (d) => { mkdirSync(d); }, code: 0, message: /--class all: 10 classes, so --n 64 becomes 60 \(6 per class\)/ },
  { name: 'sample --class all --n 1', argv: (d) => ['sample', '--checkpoint', SHIPPED, '--class', 'all', '--n', '1', '--sampling-steps', '1', '--out', join(d, 'x.png')], setup: (d) => { mkdirSync(d); }, code: 0, message: /--n 1 becomes 10 \(1 per class\)/ },
  {
    name: 'eval --class all --n 15 says the same',
    argv: () => ['eval', '--checkpoint', SHIPPED, '--dataset', 'mnist', '--class', 'all', '--n', '15', '--sampling-steps', '1', '--no-floor', '--classifier', join(ROOT, 'models', 'classifier-mnist')],
    code: 0,
    message: /--class all: 10 classes, so --n 15 becomes 20 \(2 per class\)/,
  },
];

for (const [i, row] of ROWS.entries()) {
  test(`#13 row ${i + 1}: ${row.name} -> exit ${row.code}`, async () => {
    const d = join(work, `row${i + 1}`);
    await row.setup?.(d);
    const r = await cli(row.argv(d));
    assert.equal(r.code, row.code, `exit code; stderr:\n${r.err}`);
    assert.match(r.err, row.message);
    if (row.code === 1) {
      // one line for the problem (a run that got as far as computing may have drawn progress lines before it)
      const lines = r.err.split('\n').filter((l) => l !== '' && !/^(sample|train) +\d+\/\d+ \[/.test(l));
      assert.equal(lines.length, 1, `exactly one line: ${r.err}`);
      assert.match(lines[0]!, /^diffuse: /);
      assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
    }
    row.check?.(d);
  });
}

test('the executable itself: one line on stderr, exit 1, nothing on stdout', async () => {
  for (const argv of [['sample', '--sampling-steps', '-3'], ['serve', '--host', '8.8.8.8'], ['train', '--lr', '-1'], ['bogus']]) {
    await assert.rejects(promisify(execFile)(process.execPath, [MAIN, ...argv], { cwd: work }), (e: { code?: number; stderr?: string; stdout?: string }) => {
      assert.equal(e.code, 1, argv.join(' '));
      assert.match(e.stderr ?? '', /^diffuse: [^\n]+\n$/);
      assert.equal(e.stdout, '');
      return true;
    });
  }
});

test.after(() => rmSync(work, { recursive: true, force: true }));
