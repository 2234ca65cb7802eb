/**
 * diffusers' UNet2DModel / UNet2DConditionModel as our U-Net: the tiny random
 * models of test/fixtures/diffusers (made with diffusers' own code by
 * test/fixtures/make_diffusers_fixtures.py) translated by
 * interop/diffusers-unet.ts give diffusers' outputs to 1e-4 relative, on ONNX
 * Runtime and on tfjs, for every supported block type (DownBlock2D,
 * AttnDownBlock2D, UpBlock2D, AttnUpBlock2D, CrossAttnDownBlock2D,
 * CrossAttnUpBlock2D, both mid blocks, with and without attention, class
 * embeddings, 1x1 and linear transformer projections, F16 weights). The
 * translation is exact both ways (import then export gives the files' own
 * tensors and config back), and everything it cannot reproduce is one
 * DiffuseError naming the field or tensor.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/engine/tf.js';
import { initEngine } from '../../src/engine/backend.js';
import { DiffuseError } from '../../src/errors.js';
import { diffusersConfigFromUNet, diffusersParamLinks, unetConfigFromDiffusers, weightsFromDiffusers, weightsToDiffusers } from '../../src/interop/diffusers-unet.js';
import { unetGraph, unetParamSpecs } from '../../src/model/unet-description.js';
import { buildTfjsNetwork } from '../../src/net/tfjs.js';
import { contextModelFn, createOrtGraphSession } from '../../src/onnx/graph-session.js';
import { ortAvailable } from '../../src/onnx/runner.js';
import type { Weights } from '../../src/tensor.js';
import { CASES, fixtureConfigJson, type FixtureIO, fixtureIO, fixtureTensors, relErr } from './diffusers-fixtures.js';

const noOrt = !(await ortAvailable()) && 'onnxruntime-node unavailable';
const isDE = (re: RegExp) => (e: unknown): boolean => e instanceof DiffuseError && re.test(e.message) && !e.message.includes('\n');

before(async () => {
  await initEngine({ backend: 'wasm' });
});

function imported(name: string): { config: ReturnType<typeof unetConfigFromDiffusers>['config']; params: Weights; io: FixtureIO } {
  const io = fixtureIO(name);
  const { config } = unetConfigFromDiffusers(fixtureConfigJson(name), io.contextShape !== undefined ? { contextLength: io.contextShape[1] } : {});
  return { config, params: weightsFromDiffusers(config, fixtureTensors(name)), io };
}

for (const name of CASES) {
  test(`diffusers parity (${name}): ORT and tfjs give diffusers' output to 1e-4`, { skip: noOrt }, async () => {
    const { config, params, io } = imported(name);
    const n = io.shape[0];
    const inputs: Record<string, Float32Array | Int32Array> = { x: Float32Array.from(io.x), t: Float32Array.from(io.t) };
    if (io.classes !== undefined) inputs['classes'] = Int32Array.from(io.classes);
    if (io.context !== undefined) inputs['context'] = Float32Array.from(io.context);
    const graph = unetGraph(config);
    const s = await createOrtGraphSession(graph, params, { threads: 1 });
    const ort = (await s.run(inputs, n))['out']!.data;
    await s.dispose();
    const e = relErr(ort, io.out);
    assert.ok(e <= 1e-4, `ORT vs diffusers: ${e} (diffusers' own f32-vs-f64 deviation ${io.f64Deviation})`);

    const net = buildTfjsNetwork(graph, params, graph.name);
    try {
      const out = tf.tidy(() => Float32Array.from(net.run(Object.fromEntries(graph.inputs.filter((d) => inputs[d.name] !== undefined).map((d) =>
        [d.name, tf.tensor(inputs[d.name]!, [n, ...d.shape.slice(1)], d.dtype)])), { checkShapes: true })['out']!.dataSync()));
      const et = relErr(out, io.out);
      assert.ok(et <= 1e-4, `tfjs vs diffusers: ${et}`);
    } finally {
      net.dispose();
    }
  });

  test(`diffusers round trip (${name}): import then export gives back every tensor and config field`, () => {
    const { config } = imported(name);
    const tensors = fixtureTensors(name);
    const back = weightsToDiffusers(config, weightsFromDiffusers(config, tensors));
    assert.deepEqual(Object.keys(back).sort(), Object.keys(tensors).sort());
    for (const [k, t] of Object.entries(tensors)) {
      assert.deepEqual(back[k]!.shape, t.shape, k);
      assert.ok(back[k]!.data.every((v, i) => v === t.data[i]), `${k}: values differ`);
    }
    const original = fixtureConfigJson(name);
    const { className, config: written } = diffusersConfigFromUNet(config);
    assert.equal(className, original['_class_name']);
    for (const [k, v] of Object.entries(written)) assert.deepEqual(v, original[k], `field ${k}`);
    assert.deepEqual(Object.keys(written).sort(), Object.keys(original).filter((k) => !k.startsWith('_')).sort());
    assert.deepEqual(unetConfigFromDiffusers({ _class_name: className, ...written }, { contextLength: config.crossAttention?.contextLength ?? 77 }).config, config);
  });
}

test('every diffusers tensor maps to exactly one parameter, and every parameter is covered', () => {
  for (const name of CASES) {
    const { config } = imported(name);
    const links = diffusersParamLinks(config);
    assert.deepEqual(links.map((l) => l.ours), unetParamSpecs(config).map((s) => s.name));
    const theirs = links.flatMap((l) => l.theirs);
    assert.equal(new Set(theirs).size, theirs.length, `${name}: a diffusers tensor claimed twice`);
    assert.deepEqual([...theirs].sort(), Object.keys(fixtureTensors(name)).sort());
  }
});

test('pre-0.14 attention names (query/key/value/proj_attn) load as diffusers renames them', () => {
  const { config, params } = imported('ddpm');
  const renamed: Weights = {};
  for (const [k, t] of Object.entries(fixtureTensors('ddpm'))) {
    renamed[k.replace('.to_q.', '.query.').replace('.to_k.', '.key.').replace('.to_v.', '.value.').replace('.to_out.0.', '.proj_attn.')] = t;
  }
  assert.ok(Object.keys(renamed).some((k) => k.includes('.proj_attn.')));
  const again = weightsFromDiffusers(config, renamed);
  for (const [k, t] of Object.entries(params)) assert.ok(again[k]!.data.every((v, i) => v === t.data[i]), k);
});

test('configs diffuse-ts cannot reproduce: one line naming the field', () => {
  const base = fixtureConfigJson('ddpm');
  const cond = fixtureConfigJson('cond');
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...base, down_block_types: ['SkipDownBlock2D', 'AttnDownBlock2D'] }, /field 'down_block_types' has block type "SkipDownBlock2D", which diffuse-ts does not implement \(supported: DownBlock2D, AttnDownBlock2D\)/],
    [{ ...base, up_block_types: ['AttnUpBlock2D'] }, /field 'up_block_types' must list one block type per level \(2/],
    [{ ...base, time_embedding_type: 'fourier' }, /field 'time_embedding_type' = "fourier" is not supported/],
    [{ ...base, resnet_time_scale_shift: 'scale_shift' }, /resnet_time_scale_shift/],
    [{ ...base, in_channels: 4, out_channels: 4 }, /in_channels' = 4 is not supported .*autoencoder/],
    [{ ...base, block_out_channels: [4, 6] }, /block_out_channels' = \[4,6\]: every level must be a multiple of the first/],
    [{ ...base, downsample_padding: 2 }, /downsample_padding' = 2 is not supported/],
    [{ ...base, attention_head_dim: 3 }, /attention_head_dim' = 3 does not divide the 8 channels of level 1/],
    [{ ...base, mid_block_type: null }, /mid_block_type' = null is not supported/],
    [{ ...base, class_embed_type: 'timestep' }, /class_embed_type' = "timestep" is not supported/],
    [{ ...base, norm_num_groups: 3 }, /groups 3 must divide every channel count/],
    [{ ...base, some_future_option: true }, /field 'some_future_option' is not a field diffuse-ts knows/],
    [{ ...base, _class_name: 'UNet1DModel' }, /_class_name "UNet1DModel" is not supported \(supported: UNet2DModel, UNet2DConditionModel\)/],
    [{ ...cond, transformer_layers_per_block: 2 }, /transformer_layers_per_block' must be 1/],
    [{ ...cond, cross_attention_dim: [6, 8] }, /cross_attention_dim' = \[6,8\]: different values per level are not supported/],
    [{ ...cond, addition_embed_type: 'text_time' }, /addition_embed_type' = "text_time" is not supported/],
    [{ ...cond, down_block_types: ['AttnDownBlock2D', 'DownBlock2D'] }, /UNet2DConditionModel field 'down_block_types' has block type "AttnDownBlock2D"/],
  ];
  for (const [json, re] of bad) assert.throws(() => unetConfigFromDiffusers(json, { source: 'unet/config.json' }), isDE(re), re.source);
  assert.throws(() => unetConfigFromDiffusers([1, 2]), isDE(/must be a JSON object/));
});

test('weights whose names or shapes disagree with the config: one line naming the tensor', () => {
  const { config } = imported('ddpm');
  const t = fixtureTensors('ddpm');
  const without = { ...t };
  delete without['mid_block.attentions.0.to_k.weight'];
  assert.throws(() => weightsFromDiffusers(config, without, 'w.safetensors'), isDE(/^w\.safetensors: missing tensor "mid_block\.attentions\.0\.to_k\.weight" \[8,8\], which the config needs$/));
  const wrong = { ...t, 'conv_in.weight': { shape: [4, 3, 1, 1], data: new Float32Array(12) } };
  assert.throws(() => weightsFromDiffusers(config, wrong, 'w.safetensors'), isDE(/tensor "conv_in\.weight" has shape \[4,3,1,1\], the config needs \[4,3,3,3\]/));
  const extra = { ...t, 'class_embedding.weight': { shape: [2, 16], data: new Float32Array(32) } };
  assert.throws(() => weightsFromDiffusers(config, extra, 'w.safetensors'), isDE(/unexpected tensor "class_embedding\.weight" \[2,16\]: the config has no place for it/));
});

test('our own U-Net choices write as UNet2DModel: TF padding 0, sin first with shift 1, one head (attention_head_dim null)', () => {
  const { config: written } = diffusersConfigFromUNet({
    imageSize: 8, inChannels: 1, outChannels: 1, baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [4], groups: 4, dropout: 0, numClasses: 10,
  });
  assert.deepEqual(
    [written['downsample_padding'], written['flip_sin_to_cos'], written['freq_shift'], written['attention_head_dim'], written['num_class_embeds'], written['norm_eps'], written['add_attention']],
    [0, false, 1, null, 11, 1e-5, true],
  );
  assert.deepEqual(written['down_block_types'], ['DownBlock2D', 'AttnDownBlock2D']);
  assert.deepEqual(written['up_block_types'], ['AttnUpBlock2D', 'UpBlock2D']);
  const text = { vocab: ['<pad>', 'boot'], maxTokens: 4, dim: 8 };
  assert.throws(() => diffusersConfigFromUNet({ imageSize: 8, inChannels: 1, outChannels: 1, baseChannels: 8, channelMults: [1, 2], numResBlocks: 1, attentionResolutions: [4], groups: 4, dropout: 0, numClasses: 0, text }),
    isDE(/a text-conditioned model has no diffusers equivalent/));
});

test('a UNet2DConditionModel through the library: hidden states as indexed conditions (contextModelFn) give diffusers\' output', { skip: noOrt }, async () => {
  const { config, params, io } = imported('cond');
  const [n, h, w, c] = io.shape;
  const per = h * w * c;
  const [, L, D] = io.contextShape!;
  const contexts = [0, 1].map((i) => Float32Array.from(io.context!.slice(i * L * D, (i + 1) * L * D)));
  const s = await createOrtGraphSession(unetGraph(config), params, { threads: 1 });
  try {
    // contexts in swapped order, picked back by index: the index is what selects the hidden states
    const fn = contextModelFn(s, [contexts[1]!, contexts[0]!]);
    const got = new Float32Array(n * per);
    for (let i = 0; i < n; i++) {
      got.set(await fn(Float32Array.from(io.x.slice(i * per, (i + 1) * per)), io.t[i]!, [1, h, w, c], Int32Array.of(1 - i)), i * per);
    }
    const e = relErr(got, io.out);
    assert.ok(e <= 1e-4, `${e}`);
    await assert.rejects(async () => fn(new Float32Array(per), 1, [1, h, w, c], Int32Array.of(2)), isDE(/condition 2 of image 0 is not one of the 2 contexts/));
    assert.throws(() => contextModelFn(s, [new Float32Array(3)]), isDE(/context 0 must be a Float32Array of 3×6 = 18 values, got 3/));
  } finally {
    await s.dispose();
  }
});
