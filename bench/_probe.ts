import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { defaultUNetConfig } from '../src/model/config.js';
import { createUNet, describeUNet } from '../src/model/unet.js';
const { backend } = await initEngine({ backend: (process.argv[2] as 'wasm' | 'cpu') ?? 'wasm' });
const cfg = defaultUNetConfig(JSON.parse(process.argv[3] ?? '{}'));
console.log(backend, describeUNet(cfg));
const net = createUNet(cfg, 1);
const N = Number(process.argv[4] ?? 16);
const x = tf.randomNormal([N, cfg.imageSize, cfg.imageSize, cfg.inChannels]) as tf.Tensor4D;
const t = tf.randomUniform([N], 0, 1000) as tf.Tensor1D;
const vars = [...net.params.values()];
for (let it = 0; it < 3; it++) {
  let t0 = performance.now();
  const y = net.apply(x, t); y.dataSync(); y.dispose();
  const fwd = performance.now() - t0;
  t0 = performance.now();
  const { value, grads } = tf.variableGrads(() => tf.tidy(() => tf.mean(tf.square(net.apply(x, t, { training: true })))) as tf.Scalar, vars);
  for (const g of Object.values(grads)) g.dataSync();
  const tr = performance.now() - t0;
  console.log(`fwd ${fwd.toFixed(0)} ms, train ${tr.toFixed(0)} ms (${(N / tr * 1000).toFixed(1)} img/s), loss ${value.dataSync()[0]}, tensors ${tf.memory().numTensors}`);
  value.dispose(); tf.dispose(grads);
}
import { profileKernels, formatKernelStats } from '../src/engine/profile.js';
const prof = profileKernels('wasm', { byShape: process.env['BYSHAPE'] === '1' });
{
  const t0 = performance.now();
  const { value, grads } = tf.variableGrads(() => tf.tidy(() => tf.mean(tf.square(net.apply(x, t, { training: true })))) as tf.Scalar, vars);
  for (const g of Object.values(grads)) g.dataSync();
  console.log('profiled step', (performance.now() - t0).toFixed(0), 'ms');
  value.dispose(); tf.dispose(grads);
}
console.log(formatKernelStats(prof.stats(), 25));
prof.stop();
