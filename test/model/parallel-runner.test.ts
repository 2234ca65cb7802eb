import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import { defaultUNetConfig, type UNetConfig } from '../../src/model/config.js';
import { createParallelModelFn, createParallelModelFns } from '../../src/model/parallel-runner.js';
import { modelFnFromUNet, loadUNetFromState } from '../../src/model/runner.js';
import { initParam, unetParamSpecs } from '../../src/model/unet.js';
import { mulberry32 } from '../../src/rng.js';
import { maxRelErr, TRAIN_BACKENDS } from '../engine/helpers.js';

const CFG: UNetConfig = defaultUNetConfig({
  imageSize: 8, baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [4], groups: 2, numClasses: 3,
});

function params(seed = 3): Record<string, { shape: number[]; data: Float32Array }> {
  const rnd = mulberry32(seed);
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const s of unetParamSpecs(CFG)) {
    // Zero-initialised parameters get small random values too, so every path matters.
    const data = initParam(s, 1).map((v) => v + (rnd() * 2 - 1) * 0.05);
    out[s.name] = { shape: [...s.shape], data };
  }
  return out;
}

for (const backend of TRAIN_BACKENDS) {
  test(`parallel ModelFn (${backend}, 2 workers) gives the in-process outputs, conditions included`, async () => {
    const p = params();
    await initEngine({ backend });
    const local = modelFnFromUNet(loadUNetFromState(CFG, p), tf);
    const par = await createParallelModelFn(CFG, p, { backend, workers: 2 });
    try {
      assert.equal(par.workers, 2);
      const rnd = mulberry32(9);
      for (const n of [1, 5]) {
        const x = Float32Array.from({ length: n * 64 }, () => rnd() * 2 - 1);
        const cond = Int32Array.from({ length: n }, (_, i) => i % 4);
        const a = Float32Array.from(await local(x, 321, [n, 8, 8, 1], cond));
        const b = Float32Array.from(await par.model(x, 321, [n, 8, 8, 1], cond));
        assert.ok(maxRelErr(b, a) < 1e-5, `n ${n}: rel err ${maxRelErr(b, a)}`);
      }
      await assert.rejects(Promise.resolve(par.model(new Float32Array(10), 1, [1, 8, 8, 1])), /64/);
    } finally {
      await par.dispose();
    }
  });
}

for (const backend of TRAIN_BACKENDS) {
  test(`parallel ModelFns (${backend}): several weight sets (expert networks) on the same 2 workers, each call on the set it names`, async () => {
    const sets = [params(3), params(4), params(5)];
    await initEngine({ backend });
    const local = sets.map((p) => modelFnFromUNet(loadUNetFromState(CFG, p), tf));
    const par = await createParallelModelFns(CFG, sets, { backend, workers: 2 });
    try {
      assert.equal(par.workers, 2);
      assert.equal(par.models.length, 3);
      const rnd = mulberry32(11);
      const n = 3;
      const x = Float32Array.from({ length: n * 64 }, () => rnd() * 2 - 1);
      const cond = Int32Array.of(0, 2, 3);
      const want = await Promise.all(local.map(async (f) => Float32Array.from(await f(x, 77, [n, 8, 8, 1], cond))));
      // the sets differ, so matching one and not the others shows the routing
      assert.ok(maxRelErr(want[1]!, want[0]!) > 1e-3);
      // interleaved calls, in reverse order, each answered by its own set
      for (const k of [2, 0, 1, 2]) {
        const got = Float32Array.from(await par.models[k]!(x, 77, [n, 8, 8, 1], cond));
        assert.ok(maxRelErr(got, want[k]!) < 1e-5, `set ${k}: rel err ${maxRelErr(got, want[k]!)}`);
      }
    } finally {
      await par.dispose();
    }
  });
}
