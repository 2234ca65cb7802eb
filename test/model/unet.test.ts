import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import { DiffuseError } from '../../src/errors.js';
import { defaultUNetConfig, MAX_IN_CHANNELS, validateUNetConfig, type UNetConfig } from '../../src/model/config.js';
import { buildUNet, createUNet, describeUNet, unetParamCount, unetParamSpecs } from '../../src/model/unet.js';
import { mulberry32 } from '../../src/rng.js';
import { TRAIN_BACKENDS } from '../engine/helpers.js';

const TINY: UNetConfig = defaultUNetConfig({
  imageSize: 8, inChannels: 1, outChannels: 1, baseChannels: 8, channelMults: [1, 2],
  numResBlocks: 1, attentionResolutions: [4], groups: 2, dropout: 0, numClasses: 3,
});

before(async () => {
  await initEngine({ backend: 'wasm' });
});

test('default config: 28x28 -> 14 -> 7, attention in the middle block only, validates, param count printed', () => {
  const c = defaultUNetConfig();
  assert.equal(c.imageSize, 28);
  assert.deepEqual(c.channelMults, [1, 2, 2]);
  assert.deepEqual(c.attentionResolutions, []);
  validateUNetConfig(c);
  const n = unetParamCount(c);
  assert.ok(n > 300_000 && n < 2_000_000, `param count ${n}`);
  assert.match(describeUNet(c), new RegExp(n.toLocaleString('en-US')));
});

test('validateUNetConfig names the bad field', () => {
  const bad: Array<[Partial<UNetConfig>, RegExp]> = [
    [{ imageSize: 30 }, /imageSize/],
    [{ groups: 5 }, /groups/],
    [{ channelMults: [] }, /channelMults/],
    [{ attentionResolutions: [5] }, /attentionResolutions/],
    [{ dropout: 1 }, /dropout/],
    [{ numClasses: -1 }, /numClasses/],
    [{ baseChannels: 0 }, /baseChannels/],
    [{ inChannels: 0 }, /inChannels/],
    [{ inChannels: MAX_IN_CHANNELS + 1 }, /inChannels/],
    [{ numResBlocks: 0 }, /numResBlocks/],
  ];
  for (const [o, re] of bad) {
    assert.throws(() => validateUNetConfig(defaultUNetConfig(o)), (e: unknown) => e instanceof DiffuseError && re.test(e.message), JSON.stringify(o));
  }
});

test('param names are sorted and stable; init is deterministic in the seed', () => {
  const names = unetParamSpecs(TINY).map((s) => s.name);
  assert.deepEqual(names, [...names].sort());
  assert.ok(names.includes('down.0.res.0.conv1.kernel'));
  assert.ok(names.includes('class_emb.table'));
  const a = createUNet(TINY, 7), b = createUNet(TINY, 7), c = createUNet(TINY, 8);
  try {
    assert.deepEqual([...a.params.keys()], names);
    const k = 'down.0.res.0.conv1.kernel';
    assert.deepEqual(a.params.get(k)?.dataSync(), b.params.get(k)?.dataSync());
    assert.notDeepEqual(a.params.get(k)?.dataSync(), c.params.get(k)?.dataSync());
    assert.equal(a.paramCount(), unetParamCount(TINY));
  } finally { a.dispose(); b.dispose(); c.dispose(); }
});

test('default U-Net maps [N,28,28,1] to [N,28,28,1] without leaking tensors', () => {
  const net = createUNet(defaultUNetConfig(), 1);
  try {
    const before = tf.memory().numTensors;
    const y = tf.tidy(() => net.apply(tf.zeros([2, 28, 28, 1]) as tf.Tensor4D, tf.tensor1d([0, 999])));
    assert.deepEqual(y.shape, [2, 28, 28, 1]);
    y.dispose();
    assert.equal(tf.memory().numTensors, before);
    assert.throws(() => net.apply(tf.zeros([2, 32, 32, 1]) as tf.Tensor4D, tf.tensor1d([0, 1])), DiffuseError);
  } finally { net.dispose(); }
});

/** Randomised parameters (the real init zeroes the output conv, which would zero most gradients). */
function randomParams(cfg: UNetConfig, seed: number): Map<string, Float32Array> {
  const rnd = mulberry32(seed);
  const m = new Map<string, Float32Array>();
  for (const s of unetParamSpecs(cfg)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const fan = s.shape.length > 1 ? s.shape.slice(0, -1).reduce((a, b) => a * b, 1) : 4;
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = (rnd() * 2 - 1) * Math.sqrt(3 / fan) + (s.name.endsWith('gamma') ? 1 : 0);
    m.set(s.name, d);
  }
  return m;
}

function inputs(cfg: UNetConfig, n: number): { x: Float32Array; t: Float32Array; y: Float32Array; cls: Int32Array } {
  const rnd = mulberry32(99);
  const size = n * cfg.imageSize * cfg.imageSize;
  const x = Float32Array.from({ length: size * cfg.inChannels }, () => rnd() * 2 - 1);
  const y = Float32Array.from({ length: size * cfg.outChannels }, () => rnd() * 2 - 1);
  const t = Float32Array.from({ length: n }, (_, i) => 17 + 300 * i);
  const cls = Int32Array.from({ length: n }, (_, i) => i % (cfg.numClasses + 1));
  return { x, t, y, cls };
}

for (const backend of TRAIN_BACKENDS) test(`tiny U-Net gradients on ${backend} match the cpu backend and finite differences`, async () => {
  const cfg = TINY;
  const n = 3;
  const vals = randomParams(cfg, 5);
  const d = inputs(cfg, n);
  const lossAndGrads = (): { loss: number; grads: Map<string, Float32Array> } => {
    const net = buildUNet(cfg, vals);
    try {
      let r: { loss: number; grads: Map<string, Float32Array> } | undefined;
      tf.tidy(() => {
        const x = tf.tensor4d(d.x, [n, cfg.imageSize, cfg.imageSize, cfg.inChannels]);
        const tgt = tf.tensor4d(d.y, [n, cfg.imageSize, cfg.imageSize, cfg.outChannels]);
        const t = tf.tensor1d(d.t);
        const classes = tf.tensor1d(d.cls, 'int32');
        const { value, grads } = tf.variableGrads(
          () => tf.mean(tf.squaredDifference(net.apply(x, t, { classes, training: true }), tgt)) as tf.Scalar,
          [...net.params.values()]);
        const names = [...net.params.keys()];
        const vars = [...net.params.values()];
        const out = new Map<string, Float32Array>();
        names.forEach((nm, i) => {
          const g = grads[(vars[i] as tf.Variable).name];
          assert.ok(g !== undefined, `no gradient for ${nm}`);
          out.set(nm, g.dataSync() as Float32Array);
        });
        r = { loss: value.dataSync()[0] as number, grads: out };
      });
      assert.ok(r !== undefined);
      return r;
    } finally { net.dispose(); }
  };
  const lossAt = (name: string, idx: number, delta: number): number => {
    const v = new Map(vals);
    const arr = (vals.get(name) as Float32Array).slice();
    arr[idx] = (arr[idx] as number) + delta;
    v.set(name, arr);
    const net = buildUNet(cfg, v);
    try {
      return tf.tidy(() => {
        const x = tf.tensor4d(d.x, [n, cfg.imageSize, cfg.imageSize, cfg.inChannels]);
        const tgt = tf.tensor4d(d.y, [n, cfg.imageSize, cfg.imageSize, cfg.outChannels]);
        const y = net.apply(x, tf.tensor1d(d.t), { classes: tf.tensor1d(d.cls, 'int32') });
        // Sum in float64 to keep the finite difference precise.
        const a = y.dataSync(), b = tgt.dataSync();
        let s = 0;
        for (let i = 0; i < a.length; i++) s += ((a[i] as number) - (b[i] as number)) ** 2;
        return s / a.length;
      });
    } finally { net.dispose(); }
  };

  await initEngine({ backend });
  const ours = lossAndGrads();
  await tf.setBackend('cpu');
  const ref = lossAndGrads();
  await initEngine({ backend });
  assert.equal(tf.getBackend(), backend);

  assert.ok(Math.abs(ours.loss - ref.loss) < 1e-4 * Math.abs(ref.loss));
  for (const [name, g] of ours.grads) {
    const r = ref.grads.get(name) as Float32Array;
    let scale = 1e-3, err = 0;
    for (let i = 0; i < g.length; i++) {
      scale = Math.max(scale, Math.abs(r[i] as number));
      err = Math.max(err, Math.abs((g[i] as number) - (r[i] as number)));
    }
    assert.ok(err / scale < 2e-3, `${name}: ${backend} vs cpu rel err ${err / scale}`);
  }

  // Finite differences at the largest-gradient coordinate of a spread of parameters.
  const probe = ['conv_in.kernel', 'down.0.res.0.conv1.kernel', 'down.0.downsample.kernel', 'down.1.attn.0.qkv.kernel',
    'mid.attn.0.proj.kernel', 'up.1.upsample.kernel', 'up.0.res.1.norm1.gamma', 'temb.dense0.kernel', 'class_emb.table', 'out.conv.bias'];
  const eps = 3e-3;
  for (const name of probe) {
    const g = ours.grads.get(name);
    assert.ok(g !== undefined, name);
    let idx = 0;
    for (let i = 1; i < g.length; i++) if (Math.abs(g[i] as number) > Math.abs(g[idx] as number)) idx = i;
    const fd = (lossAt(name, idx, eps) - lossAt(name, idx, -eps)) / (2 * eps);
    const an = g[idx] as number;
    assert.ok(Math.abs(fd - an) <= 0.03 * Math.abs(an) + 2e-4, `${name}[${idx}]: analytic ${an} vs finite difference ${fd}`);
  }
});
