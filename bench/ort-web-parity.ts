/**
 * Browser parity on the default config: the same exported ONNX file on
 * onnxruntime-web's wasm build (run here in Node, 1 thread) and on
 * onnxruntime-node; prints the max abs difference and both speeds.
 * (test/onnx/ort-web.test.ts checks the same on a tiny model.)
 *
 *   node dist/bench/ort-web-parity.js [--checkpoint DIR] [--batch-size 16]
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as ortWeb from 'onnxruntime-web';
import { benchOptions } from './options.js';
import { defaultUNetConfig, type UNetConfig } from '../src/model/config.js';
import { initParam, unetParamSpecs } from '../src/model/unet.js';
import { mulberry32 } from '../src/rng.js';
import { exportUNetToOnnx } from '../src/onnx/export-unet.js';
import { createOrtModelFn } from '../src/onnx/runner.js';
import { loadModelWeights } from '../src/train/checkpoint.js';
import type { Weights } from '../src/tensor.js';

const { values: o } = benchOptions('ort-web-parity', {
  checkpoint: { type: 'string', help: 'the model', defaultText: 'the default U-Net, random weights' },
  'batch-size': { type: 'int', min: 1, max: 1024, default: 16, aliases: ['batch'], help: 'images per evaluation' },
} as const);
const checkpoint = o.checkpoint;
const n = o['batch-size'];

let config: UNetConfig = defaultUNetConfig();
let params: Weights = {};
if (checkpoint !== undefined) {
  const w = await loadModelWeights(checkpoint, 'ema');
  config = w.config.model;
  params = w.params;
} else {
  const rnd = mulberry32(1);
  for (const s of unetParamSpecs(config)) {
    // zero-initialised parameters get small random values so the output is not trivial
    const d = initParam(s, 0);
    params[s.name] = { shape: [...s.shape], data: s.init === 'zeros' ? d.map(() => (rnd() * 2 - 1) * 0.05) : d };
  }
}
const onnx = exportUNetToOnnx(config, params);
const S = config.imageSize;
const C = config.inChannels;
const rnd = mulberry32(7);
const x = Float32Array.from({ length: n * S * S * C }, () => rnd() * 2 - 1);

ortWeb.env.wasm.numThreads = 1;
const require = createRequire(import.meta.url);
ortWeb.env.wasm.wasmPaths = path.dirname(require.resolve('onnxruntime-web')) + path.sep;
let t0 = performance.now();
const web = await ortWeb.InferenceSession.create(onnx, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
const createS = (performance.now() - t0) / 1000;
const feeds = {
  x: new ortWeb.Tensor('float32', x, [n, S, S, C]),
  t: new ortWeb.Tensor('float32', new Float32Array(n).fill(250), [n]),
  ...(config.numClasses > 0 ? { classes: new ortWeb.Tensor('int64', new BigInt64Array(n).fill(BigInt(config.numClasses)), [n]) } : {}),
};
let webOut = (await web.run(feeds))['out']?.data as Float32Array;
t0 = performance.now();
webOut = (await web.run(feeds))['out']?.data as Float32Array;
const webMs = (performance.now() - t0) / n;
await web.release();

const node = await createOrtModelFn(onnx, { threads: 1 });
await node(x, 250, [n, S, S, C]);
t0 = performance.now();
const nodeOut = await node(x, 250, [n, S, S, C]);
const nodeMs = (performance.now() - t0) / n;
await node.dispose();

let d = 0;
let scale = 0;
for (let i = 0; i < nodeOut.length; i++) {
  d = Math.max(d, Math.abs(nodeOut[i]! - webOut[i]!));
  scale = Math.max(scale, Math.abs(nodeOut[i]!));
}
console.log(`onnxruntime-web ${ortWeb.env.versions.web ?? ''} (wasm, 1 thread): session ${createS.toFixed(2)} s, ${webMs.toFixed(2)} ms/img at batch ${n}`);
console.log(`onnxruntime-node (1 thread): ${nodeMs.toFixed(2)} ms/img at batch ${n}`);
console.log(`max abs diff web vs node: ${d.toExponential(2)} (output max |y| ${scale.toFixed(3)})`);
console.log(JSON.stringify({ max_abs_diff: Number(d.toExponential(2)), web_ms_per_img: Number(webMs.toFixed(3)), node_1thread_ms_per_img: Number(nodeMs.toFixed(3)), batch: n }));
