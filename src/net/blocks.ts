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

/** Dense layer over the last axis: `${name}.kernel` [in,out], `${name}.bias` [out]. */
export function dense(b: GraphBuilder, name: string, x: Value, out: number): Value {
  const i = width(x);
  return b.linear(x, b.param(`${name}.kernel`, [i, out], { fanIn: i }), b.param(`${name}.bias`, [out], 'zeros'), name);
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
}

/**
 * Attention over tokens x [N,L,D], written once for self- and cross-attention:
 *   self:  q, k, v = split(`${name}.qkv`(x))
 *   cross: q = `${name}.q`(x); k, v = split(`${name}.kv`(context))
 *   out = `${name}.proj`(softmax(q kᵀ / sqrt(d)) v)          [N,L,D]
 */
export function attention(b: GraphBuilder, name: string, x: Value, o: AttentionOptions = {}): Value {
  const d = width(x);
  let q: Value, k: Value, v: Value;
  if (o.context === undefined) {
    [q, k, v] = b.split(dense(b, `${name}.qkv`, x, 3 * d), [d, d, d], `${name}/split`) as [Value, Value, Value];
  } else {
    q = dense(b, `${name}.q`, x, d);
    [k, v] = b.split(dense(b, `${name}.kv`, o.context, 2 * d), [d, d], `${name}/split`) as [Value, Value];
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

/** Stride-2 3x3 conv (halves the image; 'same' padding pads after). */
export function downsample(b: GraphBuilder, name: string, x: Value, pad: Padding = 'same'): Value {
  return conv(b, name, x, { out: width(x), stride: 2, pad });
}

/** Nearest x2 then a 3x3 conv. */
export function upsample(b: GraphBuilder, name: string, x: Value): Value {
  return conv(b, name, b.upsample2x(x, `${name}/nearest`), { out: width(x) });
}
