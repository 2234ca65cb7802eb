/**
 * Blocks: compositions of the graph primitives (net/graph.ts) that declare
 * their own parameters. Each is written once; the parameter list, the tfjs
 * forward and the ONNX graph all follow from it. Parameter names are
 * `${name}.<part>`, so a block's weights sit under its name.
 *
 * Engine-free.
 */
import type { GraphBuilder, Padding, SinusoidalOptions, Value } from './graph.js';

/** Last-axis width (channels of an image, features of tokens and vectors). */
export function width(x: Value): number {
  return x.shape[x.shape.length - 1] as number;
}

export interface ConvOptions {
  out: number;
  /** Square kernel side (default 3). */
  k?: number;
  stride?: number;
  pad?: Padding;
  /** 'zeros': a zero-initialised kernel (e.g. the last conv of a network). */
  init?: 'zeros';
}

/** Convolution with bias: `${name}.kernel` [k,k,in,out] (fan-in init), `${name}.bias` [out]. */
export function conv(b: GraphBuilder, name: string, x: Value, o: ConvOptions): Value {
  const k = o.k ?? 3;
  const cin = width(x);
  const w = b.param(`${name}.kernel`, [k, k, cin, o.out], o.init === 'zeros' ? 'zeros' : { fanIn: k * k * cin });
  const bias = b.param(`${name}.bias`, [o.out], 'zeros');
  return b.conv2d(x, w, bias, { ...(o.stride !== undefined ? { stride: o.stride } : {}), ...(o.pad !== undefined ? { pad: o.pad } : {}) }, name);
}

/** Dense layer over the last axis: `${name}.kernel` [in,out], `${name}.bias` [out] (unless `bias: false`). */
export function dense(b: GraphBuilder, name: string, x: Value, out: number, o: { bias?: boolean } = {}): Value {
  const i = width(x);
  const bias = o.bias === false ? undefined : b.param(`${name}.bias`, [out], 'zeros');
  return b.linear(x, b.param(`${name}.kernel`, [i, out], { fanIn: i }), bias, name);
}

export interface NormOptions {
  groups: number;
  eps?: number;
  /** Follow with SiLU (one fused kernel on tfjs wasm/cpu). */
  silu?: boolean;
}

/** GroupNorm with `${name}.gamma` (ones) and `${name}.beta` (zeros). */
export function norm(b: GraphBuilder, name: string, x: Value, o: NormOptions): Value {
  const c = width(x);
  return b.groupNorm(x, b.param(`${name}.gamma`, [c], 'ones'), b.param(`${name}.beta`, [c], 'zeros'), o, name);
}

/** A learned table [rows, dim] (normal init with the given std) looked up by integer ids. */
export function embed(b: GraphBuilder, name: string, ids: Value, rows: number, dim: number, std: number): Value {
  return b.embedding(b.param(`${name}.table`, [rows, dim], { normal: std }), ids, name);
}

/**
 * Timestep embedding MLP: dense1(silu(dense0(sinusoidal(t)))), the sinusoid
 * as wide as `sinusoid.dim`, the result `out` wide (`${name}.dense0`, `.dense1`).
 */
export function timestepMlp(b: GraphBuilder, name: string, t: Value, sinusoid: SinusoidalOptions, out: number): Value {
  const s = b.sinusoidal(t, sinusoid, `${name}/sinusoidal`);
  return dense(b, `${name}.dense1`, b.silu(dense(b, `${name}.dense0`, s, out), `${name}.act0`), out);
}

export interface ResBlockOptions {
  out: number;
  groups: number;
  /** Dropout before the second conv, in training (0 = none). */
  dropout: number;
  eps?: number;
}

/**
 * Residual block:
 *   h = conv1(silu(norm1(x))) [+ temb(embAct) per channel]
 *   out = skip(x) + conv2(dropout(silu(norm2(h))))
 * skip = 1x1 conv when the width changes, else identity. `embAct` (already
 * activated, [N,E]) is optional: without it the block has no `${name}.temb`.
 */
export function resBlock(b: GraphBuilder, name: string, x: Value, embAct: Value | undefined, o: ResBlockOptions): Value {
  const gn = { groups: o.groups, silu: true, ...(o.eps !== undefined ? { eps: o.eps } : {}) };
  let h = conv(b, `${name}.conv1`, norm(b, `${name}.norm1`, x, gn), { out: o.out });
  if (embAct !== undefined) h = b.add(h, b.toPixel(dense(b, `${name}.temb`, embAct, o.out), `${name}.temb`), `${name}/add_temb`);
  const a = b.dropout(norm(b, `${name}.norm2`, h, gn), o.dropout, `${name}/dropout`);
  h = conv(b, `${name}.conv2`, a, { out: o.out });
  const skip = width(x) !== o.out ? conv(b, `${name}.skip`, x, { out: o.out, k: 1 }) : x;
  return b.add(skip, h, name);
}

export interface AttentionOptions {
  /** Keys and values come from here (cross-attention); default: from x itself (self-attention). */
  context?: Value;
  heads?: number;
  /** Biases on the q, k, v projections (default true; diffusers' transformer blocks have none). */
  qkvBias?: boolean;
}

/**
 * Attention over tokens x [N,L,D], written once for self- and cross-attention:
 *   self:  q, k, v = split(`${name}.qkv`(x))
 *   cross: q = `${name}.q`(x); k, v = split(`${name}.kv`(context))
 *   out = `${name}.proj`(softmax(q kᵀ / sqrt(d)) v)          [N,L,D]
 */
export function attention(b: GraphBuilder, name: string, x: Value, o: AttentionOptions = {}): Value {
  const d = width(x);
  const bias = { bias: o.qkvBias !== false };
  let q: Value, k: Value, v: Value;
  if (o.context === undefined) {
    [q, k, v] = b.split(dense(b, `${name}.qkv`, x, 3 * d, bias), [d, d, d], `${name}/split`) as [Value, Value, Value];
  } else {
    q = dense(b, `${name}.q`, x, d, bias);
    [k, v] = b.split(dense(b, `${name}.kv`, o.context, 2 * d, bias), [d, d], `${name}/split`) as [Value, Value];
  }
  const a = b.attention(q, k, v, o.heads !== undefined ? { heads: o.heads } : {}, name);
  return dense(b, `${name}.proj`, a, d);
}

/**
 * Attention block on an image: x + attention(tokens(norm(x))), keys/values
 * from the image itself or from `context` (e.g. text tokens [N,L,Dc]).
 * Parameters: `${name}.norm` and those of `attention`.
 */
export function attentionBlock(b: GraphBuilder, name: string, x: Value, o: AttentionOptions & { groups: number; eps?: number }): Value {
  const [, h, w] = x.shape as [number, number, number, number];
  const tokens = b.toTokens(norm(b, `${name}.norm`, x, { groups: o.groups, ...(o.eps !== undefined ? { eps: o.eps } : {}) }), `${name}/tokens`);
  const a = attention(b, name, tokens, o);
  return b.add(x, b.toImage(a, h, w, `${name}/unflatten`), name);
}

/** LayerNorm over the last axis with `${name}.gamma` (ones) and `${name}.beta` (zeros). */
export function layerNorm(b: GraphBuilder, name: string, x: Value, o: { eps?: number } = {}): Value {
  const d = width(x);
  return b.layerNorm(x, b.param(`${name}.gamma`, [d], 'ones'), b.param(`${name}.beta`, [d], 'zeros'), o, name);
}

/**
 * GEGLU feed-forward over the last axis: [h, gate] = split(`${name}.proj`(x)),
 * `${name}.out`(h · gelu(gate)); the inner width is `mult` × the input's.
 */
export function gegluFeedForward(b: GraphBuilder, name: string, x: Value, o: { mult?: number } = {}): Value {
  const d = width(x);
  const inner = (o.mult ?? 4) * d;
  const [h, gate] = b.split(dense(b, `${name}.proj`, x, 2 * inner), [inner, inner], `${name}/split`) as [Value, Value];
  return dense(b, `${name}.out`, b.mul(h, b.gelu(gate, `${name}/gelu`), `${name}/gated`), d);
}

/**
 * A transformer block over tokens [N,L,D] (diffusers' BasicTransformerBlock):
 *   x += attn1(norm1(x))                 self-attention, no q/k/v biases
 *   x += attn2(norm2(x), context)        cross-attention to `context` [N,Lc,Dc]
 *   x += ff(norm3(x))                    GEGLU feed-forward, 4x wide
 * LayerNorms with eps 1e-5.
 */
export function transformerBlock(b: GraphBuilder, name: string, x: Value, o: { context: Value; heads: number }): Value {
  const at = { heads: o.heads, qkvBias: false };
  let h = b.add(x, attention(b, `${name}.attn1`, layerNorm(b, `${name}.norm1`, x), at), `${name}/self`);
  h = b.add(h, attention(b, `${name}.attn2`, layerNorm(b, `${name}.norm2`, h), { ...at, context: o.context }), `${name}/cross`);
  return b.add(h, gegluFeedForward(b, `${name}.ff`, layerNorm(b, `${name}.norm3`, h)), name);
}

export interface SpatialTransformerOptions {
  context: Value;
  heads: number;
  groups: number;
  /** Dense projections in and out on the tokens (true) or 1x1 convolutions on the image (false). */
  linearProjection: boolean;
}

/**
 * Transformer blocks on an image (diffusers' Transformer2DModel over continuous
 * input): x + proj_out(transformerBlock(proj_in(GroupNorm(x)))), GroupNorm eps
 * 1e-6, the projections dense on the tokens or 1x1 convolutions on the image.
 */
export function spatialTransformer(b: GraphBuilder, name: string, x: Value, o: SpatialTransformerOptions): Value {
  const [, h, w, c] = x.shape as [number, number, number, number];
  const n = norm(b, `${name}.norm`, x, { groups: o.groups, eps: 1e-6 });
  const tokens = o.linearProjection
    ? dense(b, `${name}.proj_in`, b.toTokens(n, `${name}/tokens`), c)
    : b.toTokens(conv(b, `${name}.proj_in`, n, { out: c, k: 1 }), `${name}/tokens`);
  const t = transformerBlock(b, `${name}.block.0`, tokens, { context: o.context, heads: o.heads });
  const out = o.linearProjection
    ? b.toImage(dense(b, `${name}.proj_out`, t, c), h, w, `${name}/image`)
    : conv(b, `${name}.proj_out`, b.toImage(t, h, w, `${name}/image`), { out: c, k: 1 });
  return b.add(x, out, name);
}

/** Stride-2 3x3 conv (halves the image; 'same' padding pads after). */
export function downsample(b: GraphBuilder, name: string, x: Value, pad: Padding = 'same'): Value {
  return conv(b, name, x, { out: width(x), stride: 2, pad });
}

/** Nearest x2 then a 3x3 conv. */
export function upsample(b: GraphBuilder, name: string, x: Value): Value {
  return conv(b, name, b.upsample2x(x, `${name}/nearest`), { out: width(x) });
}
