/**
 * Browser parity: the same exported file on onnxruntime-web's wasm build (what
 * a web page would run), here in Node, gives the outputs of onnxruntime-node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as ortWeb from 'onnxruntime-web';
import { defaultUNetConfig } from '../../src/model/config.js';
import { exportUNetToOnnx } from '../../src/onnx/export-unet.js';
import { createOrtModelFn, ortAvailable } from '../../src/onnx/runner.js';
import { maxAbs, maxAbsDiff, randomUNet, uniform } from './helpers.js';

const skip = !(await ortAvailable()) && 'onnxruntime-node unavailable';

test('onnxruntime-web (wasm) gives the outputs of onnxruntime-node', { skip }, async () => {
  const config = defaultUNetConfig({
    imageSize: 8, inChannels: 1, outChannels: 1, baseChannels: 16, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [4], groups: 4, numClasses: 2,
  });
  const { unet, params } = await randomUNet(config, 11);
  unet.dispose();
  const onnx = exportUNetToOnnx(config, params);

  ortWeb.env.wasm.numThreads = 1;
  // Node: load the .wasm from node_modules by file path (no network, any cwd).
  const require = createRequire(import.meta.url);
  ortWeb.env.wasm.wasmPaths = path.dirname(require.resolve('onnxruntime-web')) + path.sep;
  const web = await ortWeb.InferenceSession.create(onnx, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const node = await createOrtModelFn(onnx, { threads: 1 });
  try {
    const n = 3;
    const x = uniform(n * 64, 21);
    const classes = Int32Array.from([0, 1, 2]);
    const res = await web.run({
      x: new ortWeb.Tensor('float32', x, [n, 8, 8, 1]),
      t: new ortWeb.Tensor('float32', new Float32Array(n).fill(321), [n]),
      classes: new ortWeb.Tensor('int64', BigInt64Array.from(classes, (k) => BigInt(k)), [n]),
    });
    const webOut = res['out']?.data;
    assert.ok(webOut instanceof Float32Array);
    const nodeOut = await node(x, 321, [n, 8, 8, 1], classes);
    const d = maxAbsDiff(webOut, nodeOut);
    assert.ok(maxAbs(nodeOut) > 0.05);
    assert.ok(d < 1e-4, `onnxruntime-web vs onnxruntime-node: max abs diff ${d.toExponential(2)}`);
  } finally {
    await web.release();
    await node.dispose();
  }
});
