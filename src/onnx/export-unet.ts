/**
 * The project's U-Net (model/unet.ts) as an ONNX graph, for fast sampling
 * with ONNX Runtime (Node, or the browser through onnxruntime-web).
 *
 * Interface (same layout as the library):
 *   x        float32 [N,H,W,C]   NHWC images x_t
 *   t        float32 [N]         timestep index per image
 *   classes  int64   [N]         class per image, only when numClasses > 0
 *                                (numClasses = "no class")
 *   tokens   int64   [N,L]       prompt token ids, only for text models
 *                                (model.text; 0 = pad, all pads = no prompt)
 *   out      float32 [N,H,W,outC]
 * N is dynamic. Inside, everything runs NCHW (what ORT's convolutions want),
 * with one Transpose at each end; conv kernels are stored OIHW.
 *
 * Mapping of the tfjs ops:
 *   dense        Gemm (2-D) / MatMul + Add (attention's token matrices)
 *   conv 'same'  Conv with explicit TF-style pads (stride 2: extra pad at the end)
 *   GroupNorm    Reshape [N,G,-1] -> InstanceNormalization(eps 1e-5) -> Reshape -> Mul γ, Add β
 *                (works at every opset; GroupNormalization-18 has per-group scale,
 *                per-channel only arrives in opset 21). Option: LayerNormalization
 *                over the last axis instead (opset >= 17), same result and speed.
 *   SiLU         x * Sigmoid(x)
 *   upsample     Resize nearest x2 (asymmetric, floor) = repeat each pixel 2x2
 *   class emb    Gather of the table row (= one-hot @ table)
 *   text encoder Gather (token table) + positions, self-attention and MLP as
 *                MatMul/Softmax; mean over tokens as a MatMul with a 1/L row
 *   cross-attn   queries from the image tokens, keys/values from the text context
 */
import { DiffuseError } from '../errors.js';
import { type UNetConfig, levelResolutions, validateUNetConfig } from '../model/config.js';
import { unetParamSpecs } from '../model/unet.js';
import { attr, OnnxGraph } from './graph.js';
import { ONNX_UNET_CONFIG_KEY, OnnxDataType } from './proto.js';
import type { Weights } from '../tensor.js';

export interface OnnxExportOptions {
  /** Default-domain opset, 13..21 (default 17). */
  opset?: number;
  /** Extra metadata_props (e.g. the diffusion schedule), string to string. */
  metadata?: Record<string, string>;
  /**
   * How GroupNorm is expressed: 'instance' (default) = Reshape [N,G,-1] +
   * InstanceNormalization (any opset); 'layer' = Reshape + LayerNormalization
   * over the last axis (opset >= 17). Same results (< 1e-5); on ORT 1.30 CPU
   * they measured the same speed (the normalization is ~20% of a forward pass).
   */
  groupNorm?: 'layer' | 'instance';
}


export { ONNX_UNET_CONFIG_KEY };
export const DEFAULT_OPSET = 17;
export const MIN_OPSET = 13;
export const MAX_OPSET = 21;

/** HWIO [k,k,i,o] (tfjs) -> OIHW [o,i,k,k] (ONNX). */
export function hwioToOihw(data: Float32Array, shape: readonly number[]): Float32Array {
  const [kh, kw, ci, co] = shape as [number, number, number, number];
  const out = new Float32Array(data.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < ci; i++) {
        const src = ((y * kw + x) * ci + i) * co;
        for (let o = 0; o < co; o++) out[((o * ci + i) * kh + y) * kw + x] = data[src + o] as number;
      }
    }
  }
  return out;
}

/** TensorFlow 'same' padding along one axis: [before, after]. */
function samePads(size: number, k: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + k - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

function checkParams(config: UNetConfig, params: Weights): void {
  if (typeof params !== 'object' || params === null) throw new DiffuseError('exportUNetToOnnx: params must be an object of {shape, data}');
  const specs = unetParamSpecs(config);
  const known = new Set(specs.map((s) => s.name));
  for (const s of specs) {
    const p = params[s.name];
    if (p === undefined) throw new DiffuseError(`exportUNetToOnnx: U-Net parameter '${s.name}' is missing`);
    if (!(p.data instanceof Float32Array)) throw new DiffuseError(`exportUNetToOnnx: parameter '${s.name}' data must be a Float32Array`);
    const want = s.shape.join(',');
    if (!Array.isArray(p.shape) || p.shape.join(',') !== want) {
      throw new DiffuseError(`exportUNetToOnnx: parameter '${s.name}' has shape [${String(p.shape)}], expected [${want}]`);
    }
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (p.data.length !== n) throw new DiffuseError(`exportUNetToOnnx: parameter '${s.name}' has ${p.data.length} values, expected ${n}`);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(p.data[i] as number)) throw new DiffuseError(`exportUNetToOnnx: parameter '${s.name}' has a non-finite value at index ${i}`);
    }
  }
  for (const name of Object.keys(params)) {
    if (!known.has(name)) throw new DiffuseError(`exportUNetToOnnx: unexpected parameter '${name}' (not part of this config's U-Net)`);
  }
}

/** The U-Net with the given weights as ONNX model bytes. */
export function exportUNetToOnnx(config: UNetConfig, params: Weights, opts: OnnxExportOptions = {}): Uint8Array {
  const c = validateUNetConfig(config);
  const opset = opts.opset ?? DEFAULT_OPSET;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new DiffuseError(`ONNX opset must be an integer in ${MIN_OPSET}..${MAX_OPSET}, got ${String(opset)}`);
  }
  if (c.baseChannels % 2 !== 0) throw new DiffuseError(`exportUNetToOnnx: baseChannels must be even (sinusoidal embedding), got ${c.baseChannels}`);
  checkParams(c, params);
  const normOp = opts.groupNorm ?? 'instance';
  if (normOp !== 'layer' && normOp !== 'instance') throw new DiffuseError(`groupNorm must be 'layer' or 'instance', got '${String(normOp)}'`);
  if (normOp === 'layer' && opset < 17) throw new DiffuseError(`groupNorm 'layer' needs opset >= 17 (LayerNormalization), got opset ${opset}`);

  const g = new OnnxGraph('diffuse_unet');
  const P = (name: string): { shape: number[]; data: Float32Array } => params[name] as { shape: number[]; data: Float32Array };
  const weight = (name: string): string => {
    const p = P(name);
    return g.addInitializer(name, p.data, p.shape);
  };
  const chans = c.channelMults.map((m) => m * c.baseChannels);
  const resos = levelResolutions(c);
  const G = c.groups;

  const silu = (x: string, hint: string): string => g.node('Mul', [x, g.node('Sigmoid', [x], {}, `${hint}/sigmoid`)], {}, `${hint}/silu`);
  const dense = (x: string, name: string): string => g.node('Gemm', [x, weight(`${name}.kernel`), weight(`${name}.bias`)], {}, name);
  const conv = (x: string, name: string, size: number, stride = 1): string => {
    const p = P(`${name}.kernel`);
    const [k, , ci, co] = p.shape as [number, number, number, number];
    const w = g.addInitializer(`${name}.kernel`, hwioToOihw(p.data, p.shape), [co, ci, k, k]);
    const [pb, pa] = samePads(size, k, stride);
    return g.node('Conv', [x, w, weight(`${name}.bias`)], {
      kernel_shape: attr.ints([k, k]), strides: attr.ints([stride, stride]), pads: attr.ints([pb, pb, pa, pa]),
      dilations: attr.ints([1, 1]), group: attr.int(1),
    }, name);
  };
  const groupNorm = (x: string, name: string, ch: number, size: number): string => {
    const r = g.node('Reshape', [x, g.constInt64([0, G, -1])], {}, `${name}/groups`);
    const L = (ch / G) * size * size;
    const n = normOp === 'instance'
      ? g.node('InstanceNormalization', [r, g.constFloat(new Array<number>(G).fill(1)), g.constFloat(new Array<number>(G).fill(0))],
        { epsilon: attr.float(1e-5) }, `${name}/normalize`)
      : g.node('LayerNormalization', [r, g.constFloat(new Array<number>(L).fill(1)), g.constFloat(new Array<number>(L).fill(0))],
        { axis: attr.int(-1), epsilon: attr.float(1e-5) }, `${name}/normalize`);
    const back = g.node('Reshape', [n, g.constInt64([0, ch, size, size])], {}, `${name}/ungroup`);
    const gamma = P(`${name}.gamma`);
    const beta = P(`${name}.beta`);
    const sc = g.node('Mul', [back, g.addInitializer(`${name}.gamma`, gamma.data, [ch, 1, 1])], {}, `${name}/scale`);
    return g.node('Add', [sc, g.addInitializer(`${name}.beta`, beta.data, [ch, 1, 1])], {}, name);
  };
  const resBlock = (x: string, embAct: string, name: string, inCh: number, outCh: number, size: number): string => {
    let h = conv(silu(groupNorm(x, `${name}.norm1`, inCh, size), `${name}.act1`), `${name}.conv1`, size);
    const e = g.node('Reshape', [dense(embAct, `${name}.temb`), g.constInt64([0, outCh, 1, 1])], {}, `${name}.temb/reshape`);
    h = g.node('Add', [h, e], {}, `${name}/add_temb`);
    h = conv(silu(groupNorm(h, `${name}.norm2`, outCh, size), `${name}.act2`), `${name}.conv2`, size);
    const skip = inCh !== outCh ? conv(x, `${name}.skip`, size) : x;
    return g.node('Add', [skip, h], {}, name);
  };
  const attention = (x: string, name: string, ch: number, size: number): string => {
    const hn = groupNorm(x, `${name}.norm`, ch, size);
    const tokens = g.node('Transpose', [g.node('Reshape', [hn, g.constInt64([0, ch, size * size])], {}, `${name}/flatten`)],
      { perm: attr.ints([0, 2, 1]) }, `${name}/tokens`);
    const qkvW = P(`${name}.qkv.kernel`);
    const qkvB = P(`${name}.qkv.bias`);
    const qkv = g.node('Add', [
      g.node('MatMul', [tokens, g.addInitializer(`${name}.qkv.kernel`, qkvW.data, qkvW.shape)], {}, `${name}.qkv/matmul`),
      g.addInitializer(`${name}.qkv.bias`, qkvB.data, qkvB.shape),
    ], {}, `${name}.qkv`);
    const [q, k, v] = g.nodeN('Split', [qkv, g.constInt64([ch, ch, ch])], { axis: attr.int(2) }, { outputs: 3, hint: `${name}/split` }) as [string, string, string];
    const kt = g.node('Transpose', [k], { perm: attr.ints([0, 2, 1]) }, `${name}/kT`);
    const scores = g.node('Mul', [g.node('MatMul', [q, kt], {}, `${name}/qk`), g.constFloat([1 / Math.sqrt(ch)], [])], {}, `${name}/scores`);
    const att = g.node('Softmax', [scores], { axis: attr.int(-1) }, `${name}/softmax`);
    const o = g.node('MatMul', [att, v], {}, `${name}/attend`);
    const pW = P(`${name}.proj.kernel`);
    const pB = P(`${name}.proj.bias`);
    const proj = g.node('Add', [
      g.node('MatMul', [o, g.addInitializer(`${name}.proj.kernel`, pW.data, pW.shape)], {}, `${name}.proj/matmul`),
      g.addInitializer(`${name}.proj.bias`, pB.data, pB.shape),
    ], {}, `${name}.proj`);
    const back = g.node('Reshape', [g.node('Transpose', [proj], { perm: attr.ints([0, 2, 1]) }, `${name}/channels_first`), g.constInt64([0, ch, size, size])], {}, `${name}/unflatten`);
    return g.node('Add', [x, back], {}, name);
  };
  const dense3 = (x: string, name: string): string => {
    const w = P(`${name}.kernel`);
    const b = P(`${name}.bias`);
    return g.node('Add', [
      g.node('MatMul', [x, g.addInitializer(`${name}.kernel`, w.data, w.shape)], {}, `${name}/matmul`),
      g.addInitializer(`${name}.bias`, b.data, b.shape),
    ], {}, name);
  };
  /** softmax(q kᵀ / sqrt(d)) v over [N, *, d] token matrices. */
  const attend = (q: string, k: string, v: string, d: number, name: string): string => {
    const kt = g.node('Transpose', [k], { perm: attr.ints([0, 2, 1]) }, `${name}/kT`);
    const scores = g.node('Mul', [g.node('MatMul', [q, kt], {}, `${name}/qk`), g.constFloat([1 / Math.sqrt(d)], [])], {}, `${name}/scores`);
    return g.node('MatMul', [g.node('Softmax', [scores], { axis: attr.int(-1) }, `${name}/softmax`), v], {}, `${name}/attend`);
  };
  const crossAttention = (x: string, context: string, name: string, ch: number, size: number): string => {
    const hn = groupNorm(x, `${name}.norm`, ch, size);
    const tokens = g.node('Transpose', [g.node('Reshape', [hn, g.constInt64([0, ch, size * size])], {}, `${name}/flatten`)],
      { perm: attr.ints([0, 2, 1]) }, `${name}/tokens`);
    const q = dense3(tokens, `${name}.q`);
    const [k, v] = g.nodeN('Split', [dense3(context, `${name}.kv`), g.constInt64([ch, ch])], { axis: attr.int(2) }, { outputs: 2, hint: `${name}/split` }) as [string, string];
    const proj = dense3(attend(q, k, v, ch, name), `${name}.proj`);
    const back = g.node('Reshape', [g.node('Transpose', [proj], { perm: attr.ints([0, 2, 1]) }, `${name}/channels_first`), g.constInt64([0, ch, size, size])], {}, `${name}/unflatten`);
    return g.node('Add', [x, back], {}, name);
  };
  const upsample = (x: string, name: string): string => g.node('Resize', [x, '', g.constFloat([1, 1, 2, 2])], {
    mode: attr.string('nearest'), coordinate_transformation_mode: attr.string('asymmetric'), nearest_mode: attr.string('floor'),
  }, name);

  // ---- inputs
  const S = c.imageSize;
  g.addInput('x', OnnxDataType.FLOAT, ['N', S, S, c.inChannels]);
  g.addInput('t', OnnxDataType.FLOAT, ['N']);
  if (c.numClasses > 0) g.addInput('classes', OnnxDataType.INT64, ['N']);
  if (c.text !== undefined) g.addInput('tokens', OnnxDataType.INT64, ['N', c.text.maxTokens]);

  // ---- time (and class) embedding
  const half = c.baseChannels / 2;
  const freqs = new Array<number>(half);
  for (let i = 0; i < half; i++) freqs[i] = Math.exp((-Math.log(10000) * i) / Math.max(half - 1, 1));
  const tcol = g.node('Reshape', ['t', g.constInt64([-1, 1])], {}, 'temb/t_column');
  const args = g.node('Mul', [tcol, g.addInitializer('temb.freqs', Float32Array.from(freqs), [1, half])], {}, 'temb/args');
  const sinus = g.node('Concat', [g.node('Sin', [args], {}, 'temb/sin'), g.node('Cos', [args], {}, 'temb/cos')], { axis: attr.int(1) }, 'temb/sinusoidal');
  let emb = dense(sinus, 'temb.dense0');
  emb = dense(silu(emb, 'temb.act0'), 'temb.dense1');
  if (c.numClasses > 0) {
    const table = P('class_emb.table');
    const rows = g.node('Gather', [g.addInitializer('class_emb.table', table.data, table.shape), 'classes'], { axis: attr.int(0) }, 'class_emb');
    emb = g.node('Add', [emb, rows], {}, 'temb/add_class');
  }
  let context: string | undefined;
  if (c.text !== undefined) {
    const { maxTokens: L, dim: d } = c.text;
    const tok = P('text.tok_emb.table');
    const pos = P('text.pos_emb.table');
    let e = g.node('Add', [
      g.node('Gather', [g.addInitializer('text.tok_emb.table', tok.data, tok.shape), 'tokens'], { axis: attr.int(0) }, 'text/tok_emb'),
      g.addInitializer('text.pos_emb.table', pos.data, pos.shape),
    ], {}, 'text/embed');
    const [q, k, v] = g.nodeN('Split', [dense3(e, 'text.attn.qkv'), g.constInt64([d, d, d])], { axis: attr.int(2) }, { outputs: 3, hint: 'text.attn/split' }) as [string, string, string];
    e = g.node('Add', [e, dense3(attend(q, k, v, d, 'text.attn'), 'text.attn.proj')], {}, 'text/attn_residual');
    const m = dense3(silu(dense3(e, 'text.mlp.dense0'), 'text.mlp.act'), 'text.mlp.dense1');
    context = g.node('Add', [e, m], {}, 'text/context');
    const pooled = g.node('Reshape', [
      g.node('MatMul', [g.constFloat(new Array<number>(L).fill(1 / L), [1, L]), context], {}, 'text/mean'),
      g.constInt64([-1, d]),
    ], {}, 'text/pooled');
    emb = g.node('Add', [emb, dense(pooled, 'text.pool')], {}, 'temb/add_text');
  }
  const xattn = (x: string, name: string, ch: number, sz: number): string => (context !== undefined ? crossAttention(x, context, name, ch, sz) : x);
  const embAct = silu(emb, 'temb.act');

  // ---- U-Net body, NCHW
  let h = g.node('Transpose', ['x'], { perm: attr.ints([0, 3, 1, 2]) }, 'x_nchw');
  let size = S;
  h = conv(h, 'conv_in', size);
  const skips: { v: string; ch: number }[] = [{ v: h, ch: c.baseChannels }];
  let ch = c.baseChannels;
  chans.forEach((lc, l) => {
    for (let i = 0; i < c.numResBlocks; i++) {
      h = resBlock(h, embAct, `down.${l}.res.${i}`, ch, lc, size);
      ch = lc;
      if (c.attentionResolutions.includes(resos[l] as number)) h = xattn(attention(h, `down.${l}.attn.${i}`, ch, size), `down.${l}.xattn.${i}`, ch, size);
      skips.push({ v: h, ch });
    }
    if (l < chans.length - 1) {
      h = conv(h, `down.${l}.downsample`, size, 2);
      size = Math.ceil(size / 2);
      skips.push({ v: h, ch });
    }
  });
  h = resBlock(h, embAct, 'mid.res.0', ch, ch, size);
  h = xattn(attention(h, 'mid.attn.0', ch, size), 'mid.xattn.0', ch, size);
  h = resBlock(h, embAct, 'mid.res.1', ch, ch, size);
  for (let l = chans.length - 1; l >= 0; l--) {
    const lc = chans[l] as number;
    for (let i = 0; i <= c.numResBlocks; i++) {
      const s = skips.pop();
      if (s === undefined) throw new Error('skip stack underflow');
      const cat = g.node('Concat', [h, s.v], { axis: attr.int(1) }, `up.${l}.res.${i}/concat`);
      h = resBlock(cat, embAct, `up.${l}.res.${i}`, ch + s.ch, lc, size);
      ch = lc;
      if (c.attentionResolutions.includes(resos[l] as number)) h = xattn(attention(h, `up.${l}.attn.${i}`, ch, size), `up.${l}.xattn.${i}`, ch, size);
    }
    if (l > 0) {
      h = upsample(h, `up.${l}.upsample/nearest`);
      size *= 2;
      h = conv(h, `up.${l}.upsample`, size);
    }
  }
  h = silu(groupNorm(h, 'out.norm', ch, size), 'out.act');
  h = conv(h, 'out.conv', size);
  const out = g.node('Transpose', [h], { perm: attr.ints([0, 2, 3, 1]) }, 'out_nhwc');
  g.addOutput(out, OnnxDataType.FLOAT, ['N', S, S, c.outChannels], 'out');

  const doc = `diffuse-ts U-Net ${S}x${S}x${c.inChannels} -> ${c.outChannels}ch. Inputs: x float32 [N,H,W,C] (NHWC), ` +
    `t float32 [N] (timestep index)` + (c.numClasses > 0 ? `, classes int64 [N] (0..${c.numClasses}; ${c.numClasses} = no class)` : '') +
    (c.text !== undefined ? `, tokens int64 [N,${c.text.maxTokens}] (prompt token ids, 0 = pad)` : '') +
    '. Output: out float32 [N,H,W,outC].';
  return g.toBytes({
    opset,
    docString: doc,
    metadata: { ...(opts.metadata ?? {}), [ONNX_UNET_CONFIG_KEY]: JSON.stringify(c) },
  });
}
