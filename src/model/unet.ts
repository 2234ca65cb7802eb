/**
 * A DDPM-style U-Net, written functionally over explicitly named parameters.
 *
 * x [N,H,W,inC] (NHWC), t [N] (float timestep index)
 *   temb = dense(silu(dense(sinusoidal(t))))            (+ class embedding, or + dense(mean(context)))
 *   text models: context = TextEncoder(tokens) [N, L, D] (token + position
 *         embeddings, one self-attention layer, a token-wise MLP); a
 *         cross-attention block (queries: image positions, keys/values: the
 *         context) follows the middle self-attention and every other one
 *   h = conv3x3(x)
 *   down: per level, numResBlocks x (ResBlock [+ Attention]); then a stride-2 conv3x3
 *   mid:  ResBlock, Attention, ResBlock
 *   up:   per level, (numResBlocks+1) x (concat skip, ResBlock [+ Attention]);
 *         then nearest x2 + conv3x3
 *   out = conv3x3(silu(GroupNorm(h)))                  (zero-initialised)
 * ResBlock(x) = skip(x) + conv3x3(dropout(silu(GN(conv3x3(silu(GN(x))) + dense(silu(temb))))))
 *
 * Parameter names are stable and sorted, e.g. 'down.0.res.1.conv1.kernel'.
 * Everything used here has a gradient on the wasm backend with our kernels
 * (kernels.ts); nearest upsampling is done by concat+reshape so it needs no
 * ResizeNearestNeighborGrad.
 */
import * as tf from '@tensorflow/tfjs';
import { DiffuseError } from '../errors.js';
import { type UNetConfig, levelResolutions, validateUNetConfig } from './config.js';
import { fusedOpsEnabled, groupNormAct } from '../engine/fused.js';
import type { Weights } from '../tensor.js';
import { hash32, mulberry32 } from '../rng.js';

export interface UNetApplyOptions {
  /** Enables dropout (when config.dropout > 0). */
  training?: boolean;
  /** Class index per image (0..numClasses; numClasses = "no class"). Default: "no class". */
  classes?: tf.Tensor1D;
  /** Text models: token ids [N, maxTokens] (0 = pad; all pads = no prompt). Default: no prompt. */
  tokens?: tf.Tensor2D;
  /** Seed of the dropout masks (deterministic training). Default 0. */
  dropoutSeed?: number;
}

export interface UNet {
  config: UNetConfig;
  /** Trainable parameters, keyed by stable names, in sorted name order. */
  params: Map<string, tf.Variable>;
  apply(x: tf.Tensor4D, t: tf.Tensor1D, opts?: UNetApplyOptions): tf.Tensor4D;
  paramCount(): number;
  dispose(): void;
}

export type InitKind = 'zeros' | 'ones' | { fanIn: number } | { normal: number };

export interface ParamSpec {
  name: string;
  shape: number[];
  init: InitKind;
}

/** Channels of each level. */
function levelChannels(c: UNetConfig): number[] {
  return c.channelMults.map((m) => m * c.baseChannels);
}

/** Every parameter of the network: name, shape and initialiser, sorted by name. */
export function unetParamSpecs(config: UNetConfig): ParamSpec[] {
  const c = validateUNetConfig(config);
  const specs: ParamSpec[] = [];
  const tdim = 4 * c.baseChannels;
  const dense = (name: string, i: number, o: number): void => {
    specs.push({ name: `${name}.kernel`, shape: [i, o], init: { fanIn: i } });
    specs.push({ name: `${name}.bias`, shape: [o], init: 'zeros' });
  };
  const conv = (name: string, k: number, i: number, o: number, zero = false): void => {
    specs.push({ name: `${name}.kernel`, shape: [k, k, i, o], init: zero ? 'zeros' : { fanIn: k * k * i } });
    specs.push({ name: `${name}.bias`, shape: [o], init: 'zeros' });
  };
  const norm = (name: string, ch: number): void => {
    specs.push({ name: `${name}.gamma`, shape: [ch], init: 'ones' });
    specs.push({ name: `${name}.beta`, shape: [ch], init: 'zeros' });
  };
  const res = (name: string, i: number, o: number): void => {
    norm(`${name}.norm1`, i);
    conv(`${name}.conv1`, 3, i, o);
    dense(`${name}.temb`, tdim, o);
    norm(`${name}.norm2`, o);
    conv(`${name}.conv2`, 3, o, o);
    if (i !== o) conv(`${name}.skip`, 1, i, o);
  };
  const attn = (name: string, ch: number): void => {
    norm(`${name}.norm`, ch);
    dense(`${name}.qkv`, ch, 3 * ch);
    dense(`${name}.proj`, ch, ch);
  };
  const xattn = (name: string, ch: number): void => {
    if (c.text === undefined) return;
    norm(`${name}.norm`, ch);
    dense(`${name}.q`, ch, ch);
    dense(`${name}.kv`, c.text.dim, 2 * ch);
    dense(`${name}.proj`, ch, ch);
  };
  dense('temb.dense0', c.baseChannels, tdim);
  dense('temb.dense1', tdim, tdim);
  if (c.numClasses > 0) specs.push({ name: 'class_emb.table', shape: [c.numClasses + 1, tdim], init: { normal: 1 } });
  if (c.text !== undefined) {
    const d = c.text.dim;
    specs.push({ name: 'text.tok_emb.table', shape: [c.text.vocab.length, d], init: { normal: 1 } });
    specs.push({ name: 'text.pos_emb.table', shape: [c.text.maxTokens, d], init: { normal: 0.1 } });
    dense('text.attn.qkv', d, 3 * d);
    dense('text.attn.proj', d, d);
    dense('text.mlp.dense0', d, 2 * d);
    dense('text.mlp.dense1', 2 * d, d);
    dense('text.pool', d, tdim);
  }
  conv('conv_in', 3, c.inChannels, c.baseChannels);
  const chans = levelChannels(c);
  const resos = levelResolutions(c);
  const skipCh: number[] = [c.baseChannels];
  let ch = c.baseChannels;
  chans.forEach((lc, l) => {
    for (let i = 0; i < c.numResBlocks; i++) {
      res(`down.${l}.res.${i}`, ch, lc);
      ch = lc;
      if (c.attentionResolutions.includes(resos[l] as number)) {
        attn(`down.${l}.attn.${i}`, ch);
        xattn(`down.${l}.xattn.${i}`, ch);
      }
      skipCh.push(ch);
    }
    if (l < chans.length - 1) {
      conv(`down.${l}.downsample`, 3, ch, ch);
      skipCh.push(ch);
    }
  });
  res('mid.res.0', ch, ch);
  attn('mid.attn.0', ch);
  xattn('mid.xattn.0', ch);
  res('mid.res.1', ch, ch);
  for (let l = chans.length - 1; l >= 0; l--) {
    const lc = chans[l] as number;
    for (let i = 0; i <= c.numResBlocks; i++) {
      const sc = skipCh.pop() as number;
      res(`up.${l}.res.${i}`, ch + sc, lc);
      ch = lc;
      if (c.attentionResolutions.includes(resos[l] as number)) {
        attn(`up.${l}.attn.${i}`, ch);
        xattn(`up.${l}.xattn.${i}`, ch);
      }
    }
    if (l > 0) conv(`up.${l}.upsample`, 3, ch, ch);
  }
  norm('out.norm', ch);
  conv('out.conv', 3, ch, c.outChannels, true);
  return specs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** One-line-per-part summary with the parameter count. */
export function describeUNet(config: UNetConfig): string {
  const specs = unetParamSpecs(config);
  const total = specs.reduce((s, p) => s + size(p.shape), 0);
  const groups = new Map<string, number>();
  for (const s of specs) {
    const parts = s.name.split('.');
    const key = parts[0] === 'down' || parts[0] === 'up' ? `${parts[0]}.${parts[1]}` : (parts[0] as string);
    groups.set(key, (groups.get(key) ?? 0) + size(s.shape));
  }
  const c = config;
  const lines = [
    `U-Net ${c.imageSize}x${c.imageSize}x${c.inChannels} -> ${c.outChannels}ch, base ${c.baseChannels}, ` +
      `mults [${c.channelMults.join(',')}], ${c.numResBlocks} res blocks/level, attention at [${c.attentionResolutions.join(',')}], ` +
      `groups ${c.groups}, dropout ${c.dropout}, classes ${c.numClasses}` +
      (c.text !== undefined ? `, text ${c.text.vocab.length - 1} words x ${c.text.maxTokens} tokens, dim ${c.text.dim}` : ''),
    `  levels: ${levelResolutions(c).map((r, i) => `${r}x${r}:${(c.channelMults[i] as number) * c.baseChannels}ch`).join(' -> ')}`,
    ...[...groups].map(([k, n]) => `  ${k.padEnd(12)} ${n.toLocaleString('en-US')}`),
    `  total params: ${total.toLocaleString('en-US')} (${(total / 1e6).toFixed(2)}M)`,
  ];
  return lines.join('\n');
}

/** Parameter count of a config without building it. */
export function unetParamCount(config: UNetConfig): number {
  return unetParamSpecs(config).reduce((s, p) => s + size(p.shape), 0);
}

/** Deterministic initial values of one parameter (depends on seed and name only). */
export function initParam(spec: ParamSpec, seed: number): Float32Array {
  const n = size(spec.shape);
  const out = new Float32Array(n);
  const init = spec.init;
  if (init === 'zeros') return out;
  if (init === 'ones') return out.fill(1);
  const rnd = mulberry32(hash32(spec.name) ^ Math.imul(seed >>> 0, 0x9e3779b1));
  if ('fanIn' in init) {
    const bound = Math.sqrt(3 / init.fanIn); // variance 1/fanIn
    for (let i = 0; i < n; i++) out[i] = (rnd() * 2 - 1) * bound;
  } else {
    for (let i = 0; i < n; i += 2) {
      const u = Math.max(rnd(), 1e-12), v = rnd();
      const r = Math.sqrt(-2 * Math.log(u)) * init.normal;
      out[i] = r * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
    }
  }
  return out;
}

/** Build a U-Net with deterministic initial weights. */
export function createUNet(config: UNetConfig, seed: number): UNet {
  const specs = unetParamSpecs(config);
  const values = new Map<string, Float32Array>();
  for (const s of specs) values.set(s.name, initParam(s, seed));
  return buildUNet(config, values);
}

/** Build a U-Net from given parameter values (names and shapes must match the config). */
export function buildUNet(config: UNetConfig, values: Map<string, Float32Array> | Weights): UNet {
  const specs = unetParamSpecs(config);
  const get = (name: string): Float32Array | undefined => {
    if (values instanceof Map) return values.get(name);
    const v = values[name];
    return v?.data;
  };
  const params = new Map<string, tf.Variable>();
  try {
    for (const s of specs) {
      const data = get(s.name);
      if (data === undefined) throw new DiffuseError(`U-Net parameter '${s.name}' is missing`);
      if (data.length !== size(s.shape)) {
        throw new DiffuseError(`U-Net parameter '${s.name}' has ${data.length} values, expected ${size(s.shape)} for shape [${s.shape.join(',')}]`);
      }
      params.set(s.name, tf.variable(tf.tensor(data, s.shape, 'float32'), true));
    }
  } catch (err) {
    for (const v of params.values()) v.dispose();
    throw err;
  }
  return makeUNet(config, params);
}

function makeUNet(config: UNetConfig, params: Map<string, tf.Variable>): UNet {
  const c = config;
  const chans = levelChannels(c);
  const resos = levelResolutions(c);
  const P = (name: string): tf.Variable => {
    const v = params.get(name);
    if (v === undefined) throw new Error(`missing parameter ${name}`);
    return v;
  };
  const silu = (x: tf.Tensor): tf.Tensor => tf.mul(x, tf.sigmoid(x));
  const dense2d = (x: tf.Tensor2D, name: string): tf.Tensor2D =>
    tf.add(tf.matMul(x, P(`${name}.kernel`) as tf.Tensor2D), P(`${name}.bias`));
  // conv + bias; with the opt-in 'convbias' fast path (DIFFUSE_FUSED, engine/fused.ts)
  // the bias is added inside the convolution (FusedConv2D, whose gradient takes the
  // bias gradient from the same dy).
  const conv = (x: tf.Tensor4D, name: string, stride = 1): tf.Tensor4D =>
    fusedOpsEnabled('convbias')
      ? tf.fused.conv2d({ x, filter: P(`${name}.kernel`) as tf.Tensor4D, strides: stride, pad: 'same', bias: P(`${name}.bias`) })
      : tf.add(tf.conv2d(x, P(`${name}.kernel`) as tf.Tensor4D, stride, 'same'), P(`${name}.bias`));
  // GroupNorm (eps 1e-5), optionally followed by SiLU. One fused kernel each way
  // on wasm/cpu (engine/fused.ts), the composite tfjs ops elsewhere or with
  // DIFFUSE_FUSED=0; the forward semantics are the same.
  const groupNorm = (x: tf.Tensor4D, name: string, act = false): tf.Tensor4D =>
    groupNormAct(x, P(`${name}.gamma`) as tf.Tensor1D, P(`${name}.beta`) as tf.Tensor1D, c.groups, act);
  let dropoutCounter = 0;
  const resBlock = (x: tf.Tensor4D, embAct: tf.Tensor2D, name: string, outCh: number, training: boolean, dseed: number): tf.Tensor4D => {
    const [n, , , inCh] = x.shape;
    let h = conv(groupNorm(x, `${name}.norm1`, true), `${name}.conv1`);
    h = tf.add(h, tf.reshape(dense2d(embAct, `${name}.temb`), [n, 1, 1, outCh]));
    let a = groupNorm(h, `${name}.norm2`, true);
    if (training && c.dropout > 0) {
      a = tf.dropout(a, c.dropout, undefined, dseed * 1000 + dropoutCounter++) as tf.Tensor4D;
    }
    h = conv(a, `${name}.conv2`);
    const skip = inCh !== outCh ? conv(x, `${name}.skip`) : x;
    return tf.add(skip, h);
  };
  const attention = (x: tf.Tensor4D, name: string): tf.Tensor4D => {
    const [n, h, w, ch] = x.shape;
    const hn = tf.reshape(groupNorm(x, `${name}.norm`), [n * h * w, ch]) as tf.Tensor2D;
    const qkv = tf.reshape(dense2d(hn, `${name}.qkv`), [n, h * w, 3 * ch]);
    const [q, k, v] = tf.split(qkv, 3, 2) as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
    const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(ch));
    const att = tf.softmax(scores);
    const o = tf.reshape(tf.matMul(att, v), [n * h * w, ch]) as tf.Tensor2D;
    return tf.add(x, tf.reshape(dense2d(o, `${name}.proj`), [n, h, w, ch]));
  };
  // Cross-attention: image positions (queries) attend to the text tokens (keys, values).
  const crossAttention = (x: tf.Tensor4D, context: tf.Tensor3D, name: string): tf.Tensor4D => {
    const [n, h, w, ch] = x.shape;
    const [, L, d] = context.shape;
    const hn = tf.reshape(groupNorm(x, `${name}.norm`), [n * h * w, ch]) as tf.Tensor2D;
    const q = tf.reshape(dense2d(hn, `${name}.q`), [n, h * w, ch]) as tf.Tensor3D;
    const kv = tf.reshape(dense2d(tf.reshape(context, [n * L, d]) as tf.Tensor2D, `${name}.kv`), [n, L, 2 * ch]);
    const [k, v] = tf.split(kv, 2, 2) as [tf.Tensor3D, tf.Tensor3D];
    const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(ch)));
    const o = tf.reshape(tf.matMul(att, v), [n * h * w, ch]) as tf.Tensor2D;
    return tf.add(x, tf.reshape(dense2d(o, `${name}.proj`), [n, h, w, ch]));
  };
  // Text encoder: token + position embeddings, one self-attention layer and a
  // token-wise MLP (both residual). Returns the context [N, L, D].
  const encodeText = (tokens: tf.Tensor2D): tf.Tensor3D => {
    const t = c.text!;
    const [n, L] = tokens.shape;
    const d = t.dim;
    const oh = tf.oneHot(tf.reshape(tf.cast(tokens, 'int32'), [n * L]) as tf.Tensor1D, t.vocab.length).toFloat() as tf.Tensor2D;
    let e = tf.add(tf.reshape(tf.matMul(oh, P('text.tok_emb.table') as tf.Tensor2D), [n, L, d]), P('text.pos_emb.table')) as tf.Tensor3D;
    const qkv = tf.reshape(dense2d(tf.reshape(e, [n * L, d]) as tf.Tensor2D, 'text.attn.qkv'), [n, L, 3 * d]);
    const [q, k, v] = tf.split(qkv, 3, 2) as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
    const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(d)));
    const o = tf.reshape(tf.matMul(att, v), [n * L, d]) as tf.Tensor2D;
    e = tf.add(e, tf.reshape(dense2d(o, 'text.attn.proj'), [n, L, d]));
    const m = dense2d(silu(dense2d(tf.reshape(e, [n * L, d]) as tf.Tensor2D, 'text.mlp.dense0')) as tf.Tensor2D, 'text.mlp.dense1');
    return tf.add(e, tf.reshape(m, [n, L, d]));
  };
  const upsample = (x: tf.Tensor4D): tf.Tensor4D => {
    const [n, h, w, ch] = x.shape;
    const wide = tf.reshape(tf.concat([x, x], 3), [n, h, 2 * w, ch]);
    return tf.reshape(tf.concat([wide, wide], 2), [n, 2 * h, 2 * w, ch]);
  };
  const timestepEmbedding = (t: tf.Tensor1D): tf.Tensor2D => {
    const half = c.baseChannels / 2;
    const freqs = new Float32Array(half);
    for (let i = 0; i < half; i++) freqs[i] = Math.exp((-Math.log(10000) * i) / Math.max(half - 1, 1));
    const args = tf.mul(tf.reshape(tf.cast(t, 'float32'), [-1, 1]), tf.tensor2d(freqs, [1, half]));
    return tf.concat([tf.sin(args), tf.cos(args)], 1) as tf.Tensor2D;
  };

  const apply = (x: tf.Tensor4D, t: tf.Tensor1D, opts: UNetApplyOptions = {}): tf.Tensor4D => {
    const [n, hh, ww, cc] = x.shape;
    if (x.rank !== 4 || hh !== c.imageSize || ww !== c.imageSize || cc !== c.inChannels) {
      throw new DiffuseError(`U-Net input must be [N,${c.imageSize},${c.imageSize},${c.inChannels}], got [${x.shape.join(',')}]`);
    }
    if (t.rank !== 1 || t.shape[0] !== n) throw new DiffuseError(`U-Net timesteps must be [${n}], got [${t.shape.join(',')}]`);
    if (opts.classes !== undefined && (opts.classes.rank !== 1 || opts.classes.shape[0] !== n)) {
      throw new DiffuseError(`U-Net classes must be [${n}], got [${opts.classes.shape.join(',')}]`);
    }
    if (opts.tokens !== undefined) {
      if (c.text === undefined) throw new DiffuseError('U-Net got prompt tokens but has no text encoder (config.text)');
      if (opts.tokens.rank !== 2 || opts.tokens.shape[0] !== n || opts.tokens.shape[1] !== c.text.maxTokens) {
        throw new DiffuseError(`U-Net tokens must be [${n},${c.text.maxTokens}], got [${opts.tokens.shape.join(',')}]`);
      }
    }
    const training = opts.training === true;
    const dseed = opts.dropoutSeed ?? 0;
    dropoutCounter = 0;
    return tf.tidy(() => {
      let emb = dense2d(timestepEmbedding(t), 'temb.dense0');
      emb = dense2d(silu(emb) as tf.Tensor2D, 'temb.dense1');
      if (c.numClasses > 0) {
        const cls = opts.classes !== undefined
          ? tf.cast(opts.classes, 'int32') as tf.Tensor1D
          : tf.fill([n], c.numClasses, 'int32') as tf.Tensor1D;
        const oh = tf.oneHot(cls, c.numClasses + 1).toFloat() as tf.Tensor2D;
        emb = tf.add(emb, tf.matMul(oh, P('class_emb.table') as tf.Tensor2D));
      }
      let context: tf.Tensor3D | undefined;
      if (c.text !== undefined) {
        const tokens = opts.tokens ?? (tf.zeros([n, c.text.maxTokens], 'int32') as tf.Tensor2D);
        context = encodeText(tokens);
        const pooled = tf.mean(context, 1) as tf.Tensor2D;
        emb = tf.add(emb, dense2d(pooled, 'text.pool'));
      }
      const xattn = (hh: tf.Tensor4D, name: string): tf.Tensor4D => (context !== undefined ? crossAttention(hh, context, name) : hh);
      const embAct = silu(emb) as tf.Tensor2D;

      let h = conv(x, 'conv_in');
      const skips: tf.Tensor4D[] = [h];
      chans.forEach((lc, l) => {
        for (let i = 0; i < c.numResBlocks; i++) {
          h = resBlock(h, embAct, `down.${l}.res.${i}`, lc, training, dseed);
          if (c.attentionResolutions.includes(resos[l] as number)) h = xattn(attention(h, `down.${l}.attn.${i}`), `down.${l}.xattn.${i}`);
          skips.push(h);
        }
        if (l < chans.length - 1) {
          h = conv(h, `down.${l}.downsample`, 2);
          skips.push(h);
        }
      });
      const midCh = chans[chans.length - 1] as number;
      h = resBlock(h, embAct, 'mid.res.0', midCh, training, dseed);
      h = xattn(attention(h, 'mid.attn.0'), 'mid.xattn.0');
      h = resBlock(h, embAct, 'mid.res.1', midCh, training, dseed);
      for (let l = chans.length - 1; l >= 0; l--) {
        for (let i = 0; i <= c.numResBlocks; i++) {
          const s = skips.pop();
          if (s === undefined) throw new Error('skip stack underflow');
          h = resBlock(tf.concat([h, s], 3), embAct, `up.${l}.res.${i}`, chans[l] as number, training, dseed);
          if (c.attentionResolutions.includes(resos[l] as number)) h = xattn(attention(h, `up.${l}.attn.${i}`), `up.${l}.xattn.${i}`);
        }
        if (l > 0) h = conv(upsample(h), `up.${l}.upsample`);
      }
      h = groupNorm(h, 'out.norm', true);
      return conv(h, 'out.conv');
    });
  };

  let disposed = false;
  return {
    config: c,
    params,
    apply,
    paramCount: () => [...params.values()].reduce((s, v) => s + v.size, 0),
    dispose: () => {
      if (disposed) return;
      disposed = true;
      for (const v of params.values()) v.dispose();
    },
  };
}
