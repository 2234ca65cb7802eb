import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
await initEngine({ backend: 'wasm' });
function time(f: () => void, reps = 5): number { f(); const t0 = performance.now(); for (let i = 0; i < reps; i++) f(); return (performance.now() - t0) / reps; }
for (const [N, H, ci, co, s] of [[16, 28, 32, 32, 1], [64, 28, 32, 32, 1], [16, 14, 64, 64, 1], [64, 14, 64, 64, 1], [64, 7, 64, 64, 1], [64, 28, 32, 32, 2]] as const) {
  const x = tf.randomNormal([N, H, H, ci]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, ci, co]) as tf.Tensor4D;
  const OH = Math.ceil(H / s);
  const dy = tf.randomNormal([N, OH, OH, co]) as tf.Tensor4D;
  const attrs = { strides: [s, s], pad: 'same', dataFormat: 'NHWC' };
  const flop = 2 * N * OH * OH * 9 * ci * co;
  const tf_ = time(() => tf.tidy(() => { tf.conv2d(x, w, s, 'same').dataSync(); }));
  const tb = time(() => tf.tidy(() => { (tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: [3, 3, ci, co] }) as tf.Tensor).dataSync(); }));
  const ti = time(() => tf.tidy(() => { (tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...attrs, inputShape: [N, H, H, ci] }) as tf.Tensor).dataSync(); }));
  const tt = time(() => tf.tidy(() => { tf.transpose(x, [3, 1, 2, 0]).dataSync(); }));
  console.log(`N${N} ${H}x${H} ${ci}->${co} s${s}: fwd ${tf_.toFixed(1)}ms ${(flop / tf_ / 1e6).toFixed(1)}GF/s | dW ${tb.toFixed(1)}ms ${(flop / tb / 1e6).toFixed(1)}GF/s | dX ${ti.toFixed(1)}ms ${(flop / ti / 1e6).toFixed(1)}GF/s | transpose x ${tt.toFixed(1)}ms`);
  tf.dispose([x, w, dy]);
}
