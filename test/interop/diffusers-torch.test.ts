/**
 * Where Debian's python3-torch and a diffusers checkout are present
 * (DIFFUSERS_SRC, default /tmp/diffusers/src/diffusers): our exports loaded
 * by diffusers' own UNet2DModel / UNet2DConditionModel and DDPMScheduler code
 * (test/fixtures/verify_diffusers_export.py) compute our outputs to 1e-4 and
 * our ᾱ table to 1e-6. Skipped, with the reason, elsewhere (CI has the stored
 * expectation instead: diffusers-export.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_DIFFUSERS_SRC, EXPORT_CASES, exportCases, runVerifier, torchAvailable } from '../../bench/diffusers-export.js';
import { ortAvailable } from '../../src/onnx/runner.js';

const src = process.env['DIFFUSERS_SRC'] ?? DEFAULT_DIFFUSERS_SRC;
const why = !(await ortAvailable()) ? 'onnxruntime-node unavailable' : torchAvailable(src);
if (why !== undefined) process.stderr.write(`diffusers-torch.test: skipped: ${why}\n`);

test('diffusers loads our exports and computes our outputs (torch)', { skip: why ?? false }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'diffuse-torch-'));
  try {
    const dirs = await exportCases(root);
    const r = runVerifier(src, dirs);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, EXPORT_CASES.length, r.stdout);
    for (const [i, c] of EXPORT_CASES.entries()) {
      const m = /^(\S+): diffusers (\S+) vs diffuse-ts, max rel err (\S+); DDPMScheduler alphas_cumprod vs ours (\S+) ok$/.exec(lines[i]!);
      assert.ok(m !== null, lines[i]);
      assert.equal(m[1], c.name);
      assert.ok(Number(m[3]) <= 1e-4 && Number(m[4]) <= 1e-6, lines[i]);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
