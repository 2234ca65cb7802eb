/**
 * The project's one TensorFlow.js import: @tensorflow/tfjs-core with the cpu
 * backend registered and every gradient and chained op (`x.sum()`) registered
 * (dist/vendor/tfjs-gradients.js, made by scripts/vendor-tfjs-gradients.mjs at
 * build time). The wasm backend registers itself when backend.ts imports it.
 * Not the @tensorflow/tfjs bundle: that adds layers, converter, data and webgl
 * (~250 MB installed) that nothing here uses.
 */
export * from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '../../vendor/tfjs-gradients.js';
// The chained ops' types (`x.sum()`): their registration is in the vendored file above.
import type {} from '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';
