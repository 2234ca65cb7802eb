import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import { DiffuseError } from '../../src/errors.js';
import { defaultUNetConfig } from '../../src/model/config.js';
import { loadUNetFromState, modelFnFromUNet } from '../../src/model/runner.js';
import { createUNet } from '../../src/model/unet.js';
import type { Weights } from '../../src/tensor.js';

const CFG = defaultUNetConfig({ imageSize: 8, baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [4], groups: 2, numClasses: 2 });

before(async () => { await initEngine({ backend: 'wasm' }); });

test('modelFnFromUNet: batching does not change results, no tensors leak, bad shapes throw', async () => {
  const net = createUNet(CFG, 3);
  // Give the zero-initialised output conv weights so outputs are non-trivial.
  net.params.get('out.conv.kernel')?.assign(tf.randomUniform([3, 3, 8, 1], -0.3, 0.3, 'float32', 1));
  try {
    const n = 5;
    const x = Float32Array.from({ length: n * 64 }, (_, i) => Math.sin(i));
    const before = tf.memory().numTensors;
    const big = await modelFnFromUNet(net, tf, { batchSize: 64 })(x, 10, [n, 8, 8, 1]);
    const small = await modelFnFromUNet(net, tf, { batchSize: 2 })(x, 10, [n, 8, 8, 1]);
    assert.equal(tf.memory().numTensors, before);
    assert.equal(big.length, n * 64);
    assert.ok(big.some((v) => v !== 0));
    for (let i = 0; i < big.length; i++) assert.ok(Math.abs((big[i] as number) - (small[i] as number)) < 1e-5);
    const cond = await modelFnFromUNet(net, tf, { classes: 0 })(x, 10, [n, 8, 8, 1]);
    assert.ok(cond.some((v, i) => v !== big[i]), 'class conditioning had no effect');
    await assert.rejects(async () => modelFnFromUNet(net, tf)(x, 10, [n, 8, 8, 3]), DiffuseError);
    await assert.rejects(async () => modelFnFromUNet(net, tf)(x.subarray(1), 10, [n, 8, 8, 1]), DiffuseError);

    const params: Weights = {};
    for (const [k, v] of net.params) params[k] = { shape: v.shape, data: v.dataSync() as Float32Array };
    const copy = loadUNetFromState(CFG, params);
    try {
      const again = await modelFnFromUNet(copy, tf)(x, 10, [n, 8, 8, 1]);
      assert.deepEqual(again, big);
    } finally { copy.dispose(); }
    delete params['out.conv.bias'];
    assert.throws(() => loadUNetFromState(CFG, params), /out\.conv\.bias/);
  } finally { net.dispose(); }
});
