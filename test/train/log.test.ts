import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiffuseError } from '../../src/errors.js';
import { JsonlLog, readLog } from '../../src/train/log.js';

test('JSON-lines log: append, read back, NaN as null, torn last line ignored, bad middle line named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'log-'));
  try {
    const f = join(dir, 'sub', 'train.jsonl');
    const log = new JsonlLog(f);
    log.append({ step: 1, loss: 0.5, lr: 1e-4, imgPerSec: 100, time: 1000 });
    log.append({ step: 2, loss: NaN, lr: 2e-4, imgPerSec: 110, gradNorm: 3 });
    const lines = readFileSync(f, 'utf8').trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[1]!, /"loss":null/);
    appendFileSync(f, '{"step": 3, "lo'); // crash mid-write
    const recs = readLog(f);
    assert.equal(recs.length, 2);
    assert.equal(recs[0]!.time, 1000);
    assert.ok(Number.isNaN(recs[1]!.loss));
    assert.equal(recs[1]!['gradNorm'], 3);
    assert.ok(recs[1]!.time > 1.6e9);
    appendFileSync(f, '\n{"step": 4}\n');
    assert.throws(() => readLog(f), (e: unknown) => e instanceof DiffuseError && e.message.includes(`${f}:3`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
