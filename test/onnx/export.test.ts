/**
 * The ONNX export must compute what the tfjs U-Net (model/unet.ts, wasm
 * backend) computes: max |ORT - tfjs| < 1e-4 for small random-weight configs
 * covering grayscale/RGB, attention on/off (also at an odd 3x3 resolution),
 * 2 and 3 levels, 1 and 2 res blocks, conditional models, outC != inC.
 * If unet.ts changes, these fail.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import { DiffuseError } from '../../src/errors.js';
import { defaultUNetConfig, type UNetConfig } from '../../src/model/config.js';
import { exportUNetToOnnx, hwioToOihw, ONNX_UNET_CONFIG_KEY } from '../../src/onnx/export-unet.js';
import { decodeOnnxModel, OnnxDataType } from '../../src/onnx/proto.js';
import { createOrtModelFn, ortAvailable } from '../../src/onnx/runner.js';
import { maxAbs, maxAbsDiff, randomUNet, uniform } from './helpers.js';

const TOL = 1e-4;

before(async () => {
  await initEngine({ backend: 'wasm' });
});

const CONFIGS: Array<[string, UNetConfig]> = [
  ['gray, 2 levels, attention at 4x4', defaultUNetConfig({
    imageSize: 8, inChannels: 1, outChannels: 1, baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [4], groups: 2,
  })],
  ['RGB, 3 levels, no attention', defaultUNetConfig({
    imageSize: 8, inChannels: 3, outChannels: 3, baseChannels: 8, channelMults: [1, 2, 2], numResBlocks: 1, attentionResolutions: [], groups: 4,
  })],
  ['RGB, 12px -> 3x3 attention, 2 res blocks, outC 6', defaultUNetConfig({
    imageSize: 12, inChannels: 3, outChannels: 6, baseChannels: 8, channelMults: [1, 1, 2], numResBlocks: 2, attentionResolutions: [3], groups: 4,
  })],
  ['gray, conditional (3 classes), attention at both levels', defaultUNetConfig({
    imageSize: 8, inChannels: 1, outChannels: 1, baseChannels: 16, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [8, 4], groups: 8, numClasses: 3,
  })],
];

async function tfjsForward(unet: Awaited<ReturnType<typeof randomUNet>>['unet'], x: Float32Array, shape: [number, number, number, number], t: number, classes?: Int32Array): Promise<Float32Array> {
  const xt = tf.tensor4d(x, shape);
  const tt = tf.fill([shape[0]], t) as tf.Tensor1D;
  const ct = classes === undefined ? undefined : tf.tensor1d(classes, 'int32');
  const y = unet.apply(xt, tt, ct === undefined ? {} : { classes: ct });
  const out = (await y.data()) as Float32Array;
  tf.dispose([xt, tt, y, ...(ct ? [ct] : [])]);
  return out;
}

const skip = !(await ortAvailable()) && 'onnxruntime-node unavailable';

for (const [label, config] of CONFIGS) {
  test(`ORT matches tfjs: ${label}`, { skip }, async () => {
    const { unet, params } = await randomUNet(config, 5);
    const onnx = exportUNetToOnnx(config, params);
    const fn = await createOrtModelFn(onnx, { threads: 1 });
    try {
      const S = config.imageSize;
      // 523.199: a fractional timestep (Euler 'linspace', Karras sigmas) reaches both engines unrounded
      for (const [n, t] of [[3, 999], [1, 0], [2, 417], [2, 523.199]] as const) {
        const shape: [number, number, number, number] = [n, S, S, config.inChannels];
        const x = uniform(n * S * S * config.inChannels, 100 + n);
        const classes = config.numClasses > 0 ? Int32Array.from({ length: n }, (_, i) => i % (config.numClasses + 1)) : undefined;
        const want = await tfjsForward(unet, x, shape, t, classes);
        const got = await fn(x, t, shape, classes);
        assert.equal(got.length, n * S * S * config.outChannels);
        const d = maxAbsDiff(got, want);
        assert.ok(maxAbs(want) > 0.05, `reference output is trivial (${maxAbs(want)})`);
        assert.ok(d < TOL, `${label}, batch ${n}, t=${t}: max abs diff ${d.toExponential(2)} (output scale ${maxAbs(want).toFixed(3)})`);
        if (!Number.isInteger(t)) assert.ok(maxAbsDiff(got, await fn(x, Math.round(t), shape, classes)) > 1e-6, 'fractional t is not rounded');
      }
      if (config.numClasses > 0) {
        // no labels = "no class" row, exactly as the tfjs model
        const x = uniform(2 * S * S, 7);
        const shape: [number, number, number, number] = [2, S, S, 1];
        const d = maxAbsDiff(await fn(x, 500, shape), await tfjsForward(unet, x, shape, 500));
        assert.ok(d < TOL, `no-class default: ${d}`);
      }
    } finally {
      await fn.dispose();
      unet.dispose();
    }
  });
}

test('GroupNorm as LayerNormalization, and opsets 13 / 21, compute the same', { skip }, async () => {
  const [, config] = CONFIGS[3]!;
  const { unet, params } = await randomUNet(config, 9);
  try {
    const x = uniform(2 * 64, 3);
    const shape: [number, number, number, number] = [2, 8, 8, 1];
    const classes = Int32Array.from([1, 3]);
    const want = await tfjsForward(unet, x, shape, 250, classes);
    for (const opts of [{ groupNorm: 'layer' as const }, { opset: 13 }, { opset: 21, groupNorm: 'layer' as const }]) {
      const fn = await createOrtModelFn(exportUNetToOnnx(config, params, opts), { threads: 1 });
      try {
        const d = maxAbsDiff(await fn(x, 250, shape, classes), want);
        assert.ok(d < TOL, `${JSON.stringify(opts)}: max abs diff ${d.toExponential(2)}`);
      } finally {
        await fn.dispose();
      }
    }
    assert.throws(() => exportUNetToOnnx(config, params, { opset: 13, groupNorm: 'layer' }), (e: unknown) => e instanceof DiffuseError && /opset >= 17/.test(e.message));
  } finally {
    unet.dispose();
  }
});

test('exported graph: inputs, outputs, dynamic batch, OIHW kernels, metadata, opset', async () => {
  const [, config] = CONFIGS[3]!;
  const { unet, params } = await randomUNet(config, 1);
  unet.dispose();
  const m = decodeOnnxModel(exportUNetToOnnx(config, params, { opset: 13, metadata: { 'diffuse.prediction': 'epsilon' } }));
  assert.equal(m.irVersion, 7);
  assert.deepEqual(m.opsetImports, [{ domain: '', version: 13 }]);
  assert.deepEqual(m.graph.inputs.map((v) => [v.name, v.elemType, v.dims]), [
    ['x', OnnxDataType.FLOAT, ['N', 8, 8, 1]],
    ['t', OnnxDataType.FLOAT, ['N']],
    ['classes', OnnxDataType.INT64, ['N']],
  ]);
  assert.deepEqual(m.graph.outputs.map((v) => [v.name, v.dims]), [['out', ['N', 8, 8, 1]]]);
  assert.equal(m.metadata['diffuse.prediction'], 'epsilon');
  assert.deepEqual(JSON.parse(m.metadata[ONNX_UNET_CONFIG_KEY]!), config);
  const k = m.graph.initializers.find((t) => t.name === 'down.0.res.0.conv1.kernel')!;
  const p = params['down.0.res.0.conv1.kernel']!;
  assert.deepEqual(k.dims, [p.shape[3], p.shape[2], p.shape[0], p.shape[1]]);
  assert.deepEqual(k.data, hwioToOihw(p.data, p.shape));
  // every node input is defined before use (topological order)
  const defined = new Set<string>([...m.graph.inputs.map((v) => v.name), ...m.graph.initializers.map((t) => t.name), '']);
  for (const n of m.graph.nodes) {
    for (const i of n.inputs) assert.ok(defined.has(i), `${n.name}: input '${i}' used before it is defined`);
    for (const o of n.outputs) {
      assert.ok(!defined.has(o), `'${o}' defined twice`);
      defined.add(o);
    }
  }
  assert.ok(defined.has('out'));
});

test('hwioToOihw moves [y][x][i][o] to [o][i][y][x]', () => {
  const shape = [2, 3, 4, 5];
  const data = Float32Array.from({ length: 120 }, (_, i) => i);
  const out = hwioToOihw(data, shape);
  for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) for (let i = 0; i < 4; i++) for (let o = 0; o < 5; o++) {
    assert.equal(out[((o * 4 + i) * 2 + y) * 3 + x], data[((y * 3 + x) * 4 + i) * 5 + o]);
  }
});

test('bad input to the exporter and the runner: DiffuseError naming the problem', { skip }, async () => {
  const [, config] = CONFIGS[0]!;
  const { unet, params } = await randomUNet(config, 2);
  unet.dispose();
  const isDE = (re: RegExp) => (e: unknown) => e instanceof DiffuseError && re.test(e.message);
  const { ['mid.attn.0.qkv.kernel']: _gone, ...missing } = params;
  assert.throws(() => exportUNetToOnnx(config, missing), isDE(/mid\.attn\.0\.qkv\.kernel.*missing/));
  assert.throws(() => exportUNetToOnnx(config, { ...params, 'conv_in.bias': { shape: [3], data: new Float32Array(3) } }), isDE(/conv_in\.bias.*shape/));
  assert.throws(() => exportUNetToOnnx(config, { ...params, extra: { shape: [1], data: new Float32Array(1) } }), isDE(/unexpected parameter 'extra'/));
  const nan = Float32Array.from(params['conv_in.bias']!.data);
  nan[1] = NaN;
  assert.throws(() => exportUNetToOnnx(config, { ...params, 'conv_in.bias': { shape: [8], data: nan } }), isDE(/conv_in\.bias.*non-finite/));
  assert.throws(() => exportUNetToOnnx(config, params, { opset: 9 }), isDE(/opset/));
  assert.throws(() => exportUNetToOnnx({ ...config, groups: 3 }, params), isDE(/groups/));

  const fn = await createOrtModelFn(exportUNetToOnnx(config, params), { threads: 1 });
  try {
    await assert.rejects(fn(new Float32Array(64), 1, [1, 8, 8, 3]), isDE(/expects input \[N,8,8,1\]/));
    await assert.rejects(fn(new Float32Array(63), 1, [1, 8, 8, 1]), isDE(/64 values/));
    await assert.rejects(fn(new Float32Array(64), NaN, [1, 8, 8, 1]), isDE(/timestep/));
    await assert.rejects(fn(new Float32Array(64), 1, [1, 8, 8, 1], new Int32Array([0])), isDE(/unconditional/));
    assert.equal(fn.numClasses, 0);
    assert.deepEqual(fn.imageShape, [8, 8, 1]);
  } finally {
    await fn.dispose();
  }
  await assert.rejects(fn(new Float32Array(64), 1, [1, 8, 8, 1]), isDE(/dispose/));
  await assert.rejects(createOrtModelFn(new Uint8Array([0x0a, 0xff, 0xff])), isDE(/ONNX/));
  await assert.rejects(createOrtModelFn('/nonexistent/model.onnx'), isDE(/cannot read ONNX model/));
  await assert.rejects(createOrtModelFn(new Uint8Array(0), { threads: 0 }), isDE(/threads/));

  const [, cond] = CONFIGS[3]!;
  const c = await randomUNet(cond, 3);
  c.unet.dispose();
  const cf = await createOrtModelFn(exportUNetToOnnx(cond, c.params), { threads: 1 });
  try {
    assert.equal(cf.numClasses, 3);
    await assert.rejects(cf(new Float32Array(128), 1, [2, 8, 8, 1], new Int32Array([0, 4])), isDE(/class 4 at index 1 is outside 0\.\.3/));
    await assert.rejects(cf(new Float32Array(128), 1, [2, 8, 8, 1], new Int32Array([0])), isDE(/1 class labels for a batch of 2/));
  } finally {
    await cf.dispose();
  }
});
