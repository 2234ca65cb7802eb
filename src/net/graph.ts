/**
 * One description per network: a network is written once as a function over
 * a `GraphBuilder` (its blocks walked once), which records a small typed graph
 * of primitives. Everything else is read off that graph:
 *   - the parameter list (names, shapes, initialisers): `graph.params`;
 *   - the tfjs forward and gradients: net/tfjs.ts runs the nodes;
 *   - the ONNX model: onnx/export-graph.ts translates the nodes.
 * The builder is the shape interpreter: every value carries its (logical,
 * NHWC) shape, and each primitive checks its operands, so a description that
 * does not fit together fails here, before any engine is loaded.
 *
 * Shapes: the first axis of a batched value is BATCH (-1, the batch size is
 * dynamic); parameters and constants have no batch axis. Images are
 * [N, H, W, C], token sequences [N, L, D], vectors [N, D].
 *
 * Adding a primitive: a member of `Node`, a builder method here (its shape
 * rule), and a case in each interpreter's exhaustive switch (the compiler
 * lists the ones missing). Adding a block: a function over the builder
 * (net/blocks.ts), nothing else.
 *
 * Engine-free: no tfjs, no ONNX Runtime.
 */

export type DType = 'float32' | 'int32';

/** The dynamic batch axis in a shape. */
export const BATCH = -1;

/** A value in a graph under construction: its id, logical shape and element type. */
export interface Value {
  readonly id: number;
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** How a parameter starts (net/params.ts initParam), by name and seed. */
export type InitKind = 'zeros' | 'ones' | { fanIn: number } | { normal: number };

export interface ParamSpec {
  name: string;
  shape: number[];
  init: InitKind;
}

/** 'same' (TensorFlow's rule: extra padding after) or explicit [top, bottom, left, right]. */
export type Padding = 'same' | readonly [number, number, number, number];

/** Sinusoidal timestep embedding: sin(t f_i), cos(t f_i), f_i = maxPeriod^(-i / (half - freqShift)). */
export interface SinusoidalOptions {
  /** Output width (even). */
  dim: number;
  /** Default 10000. */
  maxPeriod?: number;
  /** diffusers' downscale_freq_shift; ours is 1. */
  freqShift?: number;
  /** cos first (diffusers' flip_sin_to_cos). Default false: sin first. */
  flipSinToCos?: boolean;
}

/** A graph input: batched, its logical shape (BATCH first). */
export interface InputDecl {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Integer inputs: the largest allowed value (0..max). */
  readonly max?: number;
  /** Optional inputs: the value every element takes when the caller gives none (e.g. "no class"). */
  readonly fill?: number;
  /** One line for error messages and the ONNX doc string. */
  readonly doc: string;
}

export interface GraphOutput {
  readonly name: string;
  readonly value: Value;
}

/**
 * The primitives. Every node names its operands and result by value id;
 * `hint` is a readable name (ONNX node names, error messages).
 */
export type Node =
  | { op: 'input'; out: number; name: string }
  | { op: 'param'; out: number; name: string }
  | { op: 'conv2d'; out: number; x: number; w: number; b: number | undefined; stride: number; pad: Padding; hint: string }
  | { op: 'linear'; out: number; x: number; w: number; b: number | undefined; hint: string }
  | { op: 'groupNorm'; out: number; x: number; gamma: number; beta: number; groups: number; eps: number; silu: boolean; hint: string }
  | { op: 'silu'; out: number; x: number; hint: string }
  | { op: 'layerNorm'; out: number; x: number; gamma: number; beta: number; eps: number; hint: string }
  | { op: 'gelu'; out: number; x: number; hint: string }
  | { op: 'exp'; out: number; x: number; hint: string }
  | { op: 'abs'; out: number; x: number; hint: string }
  | { op: 'add'; out: number; a: number; b: number; hint: string }
  | { op: 'mul'; out: number; a: number; b: number; hint: string }
  | { op: 'scale'; out: number; x: number; s: number; shift: number; hint: string }
  | { op: 'concat'; out: number; xs: number[]; hint: string }
  | { op: 'split'; outs: number[]; x: number; sizes: number[]; hint: string }
  | { op: 'upsample2x'; out: number; x: number; hint: string }
  | { op: 'toTokens'; out: number; x: number; hint: string }
  | { op: 'toImage'; out: number; x: number; h: number; w: number; hint: string }
  | { op: 'toPixel'; out: number; x: number; hint: string }
  | { op: 'attention'; out: number; q: number; k: number; v: number; heads: number; hint: string }
  | { op: 'embedding'; out: number; table: number; ids: number; hint: string }
  | { op: 'meanTokens'; out: number; x: number; hint: string }
  | { op: 'sinusoidal'; out: number; t: number; opts: Required<SinusoidalOptions>; hint: string }
  | { op: 'dropout'; out: number; x: number; rate: number; hint: string }
  | { op: 'squaredDifference'; out: number; a: number; b: number; hint: string }
  | { op: 'sum'; out: number; x: number; hint: string };

export type Op = Node['op'];

/** A finished description: what the interpreters read. */
export interface Graph {
  readonly name: string;
  readonly inputs: readonly InputDecl[];
  readonly outputs: readonly GraphOutput[];
  readonly nodes: readonly Node[];
  /** Value id -> shape and type. */
  readonly values: readonly Value[];
  /** Every parameter, sorted by name (the checkpoint and optimizer layout). */
  readonly params: readonly ParamSpec[];
}

/** A batch as plain arrays by input name, row-major with the batch axis first (trainer shards, model workers). */
export type BatchArrays = Record<string, Float32Array | Int32Array | undefined>;

/** Values per row of a batched input or value (its shape without the batch axis). */
export function rowSize(d: { readonly shape: readonly number[] }): number {
  return d.shape.slice(1).reduce((a, b) => a * b, 1);
}

/** Rows [s, e) of every input (copies when `copy`, views otherwise). */
export function sliceRows(graph: Graph, inputs: BatchArrays, s: number, e: number, copy: boolean): BatchArrays {
  const out: BatchArrays = {};
  for (const d of graph.inputs) {
    const a = inputs[d.name];
    if (a === undefined) continue;
    const r = rowSize(d);
    out[d.name] = copy ? a.slice(s * r, e * r) : a.subarray(s * r, e * r);
  }
  return out;
}

/** Frequencies of the sinusoidal embedding (shared by every interpreter). */
export function sinusoidalFrequencies(o: Required<SinusoidalOptions>): Float32Array {
  const half = o.dim / 2;
  const f = new Float32Array(half);
  for (let i = 0; i < half; i++) f[i] = Math.exp((-Math.log(o.maxPeriod) * i) / Math.max(half - o.freqShift, 1));
  return f;
}

/** TensorFlow 'same' padding along one axis: [before, after]. */
export function samePads(size: number, k: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + k - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/** Explicit [top, bottom, left, right] padding of a conv over an h x w input. */
export function convPads(pad: Padding, h: number, w: number, k: number, stride: number): [number, number, number, number] {
  if (pad !== 'same') return [pad[0], pad[1], pad[2], pad[3]];
  const [t, b] = samePads(h, k, stride);
  const [l, r] = samePads(w, k, stride);
  return [t, b, l, r];
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function fmt(shape: readonly number[]): string {
  return `[${shape.map((d) => (d === BATCH ? 'N' : String(d))).join(',')}]`;
}

/** numpy-style broadcast of two shapes (BATCH against BATCH or 1). */
function broadcast(a: readonly number[], b: readonly number[], what: string): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else throw new Error(`${what}: shapes ${fmt(a)} and ${fmt(b)} do not broadcast`);
  }
  return out;
}

/**
 * Records a description. Block functions (net/blocks.ts) call `param` and the
 * primitive methods; `finish()` returns the graph.
 */
export class GraphBuilder {
  private readonly nodes: Node[] = [];
  private readonly values: Value[] = [];
  private readonly inputs: InputDecl[] = [];
  private readonly outputs: GraphOutput[] = [];
  private readonly params = new Map<string, { spec: ParamSpec; value: Value }>();

  constructor(readonly name: string) {}

  private value(shape: readonly number[], dtype: DType = 'float32'): Value {
    const v: Value = { id: this.values.length, shape: [...shape], dtype };
    this.values.push(v);
    return v;
  }

  private float(v: Value, what: string): void {
    if (v.dtype !== 'float32') throw new Error(`${what}: expected a float32 value, got ${v.dtype}`);
  }

  private rank(v: Value, r: number, what: string, layout: string): void {
    if (v.shape.length !== r) throw new Error(`${what}: expected ${layout}, got ${fmt(v.shape)}`);
  }

  /** A batched graph input. */
  input(decl: Omit<InputDecl, 'shape'> & { shape: readonly number[] }): Value {
    if (this.inputs.some((i) => i.name === decl.name)) throw new Error(`graph ${this.name}: input '${decl.name}' declared twice`);
    if (decl.shape[0] !== BATCH) throw new Error(`graph ${this.name}: input '${decl.name}' must start with the batch axis`);
    this.inputs.push({ ...decl, shape: [...decl.shape] });
    const v = this.value(decl.shape, decl.dtype);
    this.nodes.push({ op: 'input', out: v.id, name: decl.name });
    return v;
  }

  /** Mark a value as a named graph output. */
  output(name: string, v: Value): void {
    if (this.outputs.some((o) => o.name === name)) throw new Error(`graph ${this.name}: output '${name}' declared twice`);
    this.outputs.push({ name, value: v });
  }

  /**
   * A trainable parameter. Declaring a name again returns the same value
   * (shared weights) when shape and initialiser agree.
   */
  param(name: string, shape: readonly number[], init: InitKind): Value {
    const old = this.params.get(name);
    if (old !== undefined) {
      if (old.spec.shape.join(',') !== shape.join(',') || JSON.stringify(old.spec.init) !== JSON.stringify(init)) {
        throw new Error(`parameter '${name}' declared as ${fmt(old.spec.shape)} and again as ${fmt(shape)}`);
      }
      return old.value;
    }
    if (shape.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`parameter '${name}': bad shape ${fmt(shape)}`);
    const v = this.value(shape);
    this.params.set(name, { spec: { name, shape: [...shape], init }, value: v });
    this.nodes.push({ op: 'param', out: v.id, name });
    return v;
  }

  /** 2-D convolution of an image with an HWIO kernel [k, k, in, out] (+ bias [out]). */
  conv2d(x: Value, w: Value, b: Value | undefined, opts: { stride?: number; pad?: Padding }, hint: string): Value {
    const what = `conv2d ${hint}`;
    this.float(x, what);
    this.rank(x, 4, what, 'an image [N,H,W,C]');
    const [kh, kw, ci, co] = w.shape as [number, number, number, number];
    if (w.shape.length !== 4 || kh !== kw) throw new Error(`${what}: kernel must be [k,k,in,out], got ${fmt(w.shape)}`);
    const [, h, wd, c] = x.shape as [number, number, number, number];
    if (c !== ci) throw new Error(`${what}: input has ${c} channels, the kernel takes ${ci}`);
    if (b !== undefined && (b.shape.length !== 1 || b.shape[0] !== co)) throw new Error(`${what}: bias must be [${co}], got ${fmt(b.shape)}`);
    const stride = opts.stride ?? 1;
    const pad = opts.pad ?? 'same';
    const [pt, pb, pl, pr] = convPads(pad, h, wd, kh, stride);
    const oh = Math.floor((h + pt + pb - kh) / stride) + 1;
    const ow = Math.floor((wd + pl + pr - kw) / stride) + 1;
    if (oh < 1 || ow < 1) throw new Error(`${what}: ${h}x${wd} input too small for a ${kh}x${kw} kernel`);
    const out = this.value([BATCH, oh, ow, co]);
    this.nodes.push({ op: 'conv2d', out: out.id, x: x.id, w: w.id, b: b?.id, stride, pad, hint });
    return out;
  }

  /** x @ w (+ b) over the last axis; x is [N, D] or [N, L, D], w [D, out]. */
  linear(x: Value, w: Value, b: Value | undefined, hint: string): Value {
    const what = `linear ${hint}`;
    this.float(x, what);
    if (x.shape.length !== 2 && x.shape.length !== 3) throw new Error(`${what}: expected [N,D] or [N,L,D], got ${fmt(x.shape)}`);
    const d = x.shape[x.shape.length - 1];
    const [wi, wo] = w.shape as [number, number];
    if (w.shape.length !== 2 || wi !== d) throw new Error(`${what}: weight ${fmt(w.shape)} does not take width ${String(d)}`);
    if (b !== undefined && (b.shape.length !== 1 || b.shape[0] !== wo)) throw new Error(`${what}: bias must be [${wo}], got ${fmt(b.shape)}`);
    const out = this.value([...x.shape.slice(0, -1), wo]);
    this.nodes.push({ op: 'linear', out: out.id, x: x.id, w: w.id, b: b?.id, hint });
    return out;
  }

  /** GroupNorm over an image (biased variance), per-channel gamma/beta, optionally followed by SiLU. */
  groupNorm(x: Value, gamma: Value, beta: Value, opts: { groups: number; eps?: number; silu?: boolean }, hint: string): Value {
    const what = `groupNorm ${hint}`;
    this.float(x, what);
    this.rank(x, 4, what, 'an image [N,H,W,C]');
    const c = x.shape[3] as number;
    if (!Number.isInteger(opts.groups) || opts.groups < 1 || c % opts.groups !== 0) throw new Error(`${what}: ${c} channels do not split into ${opts.groups} groups`);
    for (const p of [gamma, beta]) if (p.shape.length !== 1 || p.shape[0] !== c) throw new Error(`${what}: scale/shift must be [${c}], got ${fmt(p.shape)}`);
    const out = this.value(x.shape);
    this.nodes.push({ op: 'groupNorm', out: out.id, x: x.id, gamma: gamma.id, beta: beta.id, groups: opts.groups, eps: opts.eps ?? 1e-5, silu: opts.silu ?? false, hint });
    return out;
  }

  silu(x: Value, hint: string): Value {
    this.float(x, `silu ${hint}`);
    const out = this.value(x.shape);
    this.nodes.push({ op: 'silu', out: out.id, x: x.id, hint });
    return out;
  }

  /**
   * LayerNorm over the last axis of a vector [N,D] or token sequence [N,L,D]
   * (biased variance), per-feature gamma and beta [D].
   */
  layerNorm(x: Value, gamma: Value, beta: Value, opts: { eps?: number }, hint: string): Value {
    const what = `layerNorm ${hint}`;
    this.float(x, what);
    if (x.shape.length !== 2 && x.shape.length !== 3) throw new Error(`${what}: expected [N,D] or [N,L,D], got ${fmt(x.shape)}`);
    const d = x.shape[x.shape.length - 1] as number;
    for (const p of [gamma, beta]) if (p.shape.length !== 1 || p.shape[0] !== d) throw new Error(`${what}: scale/shift must be [${d}], got ${fmt(p.shape)}`);
    const eps = opts.eps ?? 1e-5;
    if (!(eps > 0)) throw new Error(`${what}: eps must be > 0, got ${eps}`);
    const out = this.value(x.shape);
    this.nodes.push({ op: 'layerNorm', out: out.id, x: x.id, gamma: gamma.id, beta: beta.id, eps, hint });
    return out;
  }

  /** GELU, the exact form: x · Φ(x) = x/2 · (1 + erf(x/√2)). */
  gelu(x: Value, hint: string): Value {
    this.float(x, `gelu ${hint}`);
    const out = this.value(x.shape);
    this.nodes.push({ op: 'gelu', out: out.id, x: x.id, hint });
    return out;
  }

  /** a + b with numpy broadcasting. */
  add(a: Value, b: Value, hint: string): Value {
    const out = this.value(broadcast(a.shape, b.shape, `add ${hint}`));
    this.nodes.push({ op: 'add', out: out.id, a: a.id, b: b.id, hint });
    return out;
  }

  /** a * b with numpy broadcasting. */
  mul(a: Value, b: Value, hint: string): Value {
    const out = this.value(broadcast(a.shape, b.shape, `mul ${hint}`));
    this.nodes.push({ op: 'mul', out: out.id, a: a.id, b: b.id, hint });
    return out;
  }

  /** x * s + shift for constants s and shift (default 0). */
  scale(x: Value, s: number, hint: string, shift = 0): Value {
    if (!Number.isFinite(s) || !Number.isFinite(shift)) throw new Error(`scale ${hint}: factor and shift must be finite, got ${s} and ${shift}`);
    const out = this.value(x.shape);
    this.nodes.push({ op: 'scale', out: out.id, x: x.id, s, shift, hint });
    return out;
  }

  /** e^x elementwise. */
  exp(x: Value, hint: string): Value {
    this.float(x, `exp ${hint}`);
    const out = this.value(x.shape);
    this.nodes.push({ op: 'exp', out: out.id, x: x.id, hint });
    return out;
  }

  /** |x| elementwise (L1 losses). */
  abs(x: Value, hint: string): Value {
    this.float(x, `abs ${hint}`);
    const out = this.value(x.shape);
    this.nodes.push({ op: 'abs', out: out.id, x: x.id, hint });
    return out;
  }

  /** Concatenation along the last axis (channels of images, features of vectors and tokens). */
  concat(xs: readonly Value[], hint: string): Value {
    const first = xs[0];
    if (first === undefined) throw new Error(`concat ${hint}: nothing to concatenate`);
    const lead = first.shape.slice(0, -1).join(',');
    for (const x of xs) {
      if (x.shape.length !== first.shape.length || x.shape.slice(0, -1).join(',') !== lead) {
        throw new Error(`concat ${hint}: shapes ${xs.map((v) => fmt(v.shape)).join(' ')} differ before the last axis`);
      }
    }
    const out = this.value([...first.shape.slice(0, -1), xs.reduce((s, x) => s + (x.shape[x.shape.length - 1] as number), 0)], first.dtype);
    this.nodes.push({ op: 'concat', out: out.id, xs: xs.map((x) => x.id), hint });
    return out;
  }

  /** Split along the last axis into pieces of the given widths. */
  split(x: Value, sizes: readonly number[], hint: string): Value[] {
    const d = x.shape[x.shape.length - 1];
    if (sizes.reduce((a, b) => a + b, 0) !== d) throw new Error(`split ${hint}: widths ${sizes.join('+')} do not add up to ${String(d)}`);
    const outs = sizes.map((s) => this.value([...x.shape.slice(0, -1), s], x.dtype));
    this.nodes.push({ op: 'split', outs: outs.map((o) => o.id), x: x.id, sizes: [...sizes], hint });
    return outs;
  }

  /** Nearest-neighbour upsampling by 2 (each pixel repeated 2x2). */
  upsample2x(x: Value, hint: string): Value {
    this.rank(x, 4, `upsample2x ${hint}`, 'an image [N,H,W,C]');
    const [, h, w, c] = x.shape as [number, number, number, number];
    const out = this.value([BATCH, 2 * h, 2 * w, c]);
    this.nodes.push({ op: 'upsample2x', out: out.id, x: x.id, hint });
    return out;
  }

  /** Image [N,H,W,C] -> tokens [N,H*W,C] (row-major positions). */
  toTokens(x: Value, hint: string): Value {
    this.rank(x, 4, `toTokens ${hint}`, 'an image [N,H,W,C]');
    const [, h, w, c] = x.shape as [number, number, number, number];
    const out = this.value([BATCH, h * w, c]);
    this.nodes.push({ op: 'toTokens', out: out.id, x: x.id, hint });
    return out;
  }

  /** Tokens [N,H*W,C] -> image [N,H,W,C]. */
  toImage(x: Value, h: number, w: number, hint: string): Value {
    this.rank(x, 3, `toImage ${hint}`, 'tokens [N,L,C]');
    if (x.shape[1] !== h * w) throw new Error(`toImage ${hint}: ${String(x.shape[1])} tokens are not ${h}x${w}`);
    const out = this.value([BATCH, h, w, x.shape[2] as number]);
    this.nodes.push({ op: 'toImage', out: out.id, x: x.id, h, w, hint });
    return out;
  }

  /** Vector [N,C] -> image [N,1,1,C] (broadcasts over positions). */
  toPixel(x: Value, hint: string): Value {
    this.rank(x, 2, `toPixel ${hint}`, 'a vector [N,C]');
    const out = this.value([BATCH, 1, 1, x.shape[1] as number]);
    this.nodes.push({ op: 'toPixel', out: out.id, x: x.id, hint });
    return out;
  }

  /**
   * softmax(q kᵀ / sqrt(d)) v per head: q [N,Lq,D], k and v [N,Lk,D] (v may be
   * wider), D split into `heads` heads of D/heads.
   */
  attention(q: Value, k: Value, v: Value, opts: { heads?: number }, hint: string): Value {
    const what = `attention ${hint}`;
    for (const [x, n] of [[q, 'q'], [k, 'k'], [v, 'v']] as const) this.rank(x, 3, `${what} (${n})`, 'tokens [N,L,D]');
    const heads = opts.heads ?? 1;
    const d = q.shape[2] as number, dv = v.shape[2] as number;
    if (k.shape[2] !== d) throw new Error(`${what}: q and k widths differ (${d} vs ${String(k.shape[2])})`);
    if (k.shape[1] !== v.shape[1]) throw new Error(`${what}: k and v lengths differ`);
    if (!Number.isInteger(heads) || heads < 1 || d % heads !== 0 || dv % heads !== 0) throw new Error(`${what}: widths ${d}/${dv} do not split into ${heads} heads`);
    const out = this.value([BATCH, q.shape[1] as number, dv]);
    this.nodes.push({ op: 'attention', out: out.id, q: q.id, k: k.id, v: v.id, heads, hint });
    return out;
  }

  /** Rows of a table [rows, D] picked by integer ids [N] or [N,L] -> [N,D] or [N,L,D]. */
  embedding(table: Value, ids: Value, hint: string): Value {
    if (ids.dtype !== 'int32') throw new Error(`embedding ${hint}: ids must be int32`);
    if (table.shape.length !== 2) throw new Error(`embedding ${hint}: table must be [rows,D], got ${fmt(table.shape)}`);
    const out = this.value([...ids.shape, table.shape[1] as number]);
    this.nodes.push({ op: 'embedding', out: out.id, table: table.id, ids: ids.id, hint });
    return out;
  }

  /** Mean over the tokens: [N,L,D] -> [N,D]. */
  meanTokens(x: Value, hint: string): Value {
    this.rank(x, 3, `meanTokens ${hint}`, 'tokens [N,L,D]');
    const out = this.value([BATCH, x.shape[2] as number]);
    this.nodes.push({ op: 'meanTokens', out: out.id, x: x.id, hint });
    return out;
  }

  /** Sinusoidal embedding of float timesteps [N] -> [N, dim]. */
  sinusoidal(t: Value, opts: SinusoidalOptions, hint: string): Value {
    this.rank(t, 1, `sinusoidal ${hint}`, 'timesteps [N]');
    const o: Required<SinusoidalOptions> = { maxPeriod: 10000, freqShift: 1, flipSinToCos: false, ...opts };
    if (!Number.isInteger(o.dim) || o.dim < 2 || o.dim % 2 !== 0) throw new Error(`sinusoidal ${hint}: width must be even, got ${o.dim}`);
    const out = this.value([BATCH, o.dim]);
    this.nodes.push({ op: 'sinusoidal', out: out.id, t: t.id, opts: o, hint });
    return out;
  }

  /** Dropout at `rate` when training (identity otherwise). Rate 0 adds nothing. */
  dropout(x: Value, rate: number, hint: string): Value {
    if (!(rate >= 0 && rate < 1)) throw new Error(`dropout ${hint}: rate must be in [0, 1), got ${rate}`);
    if (rate === 0) return x;
    const out = this.value(x.shape);
    this.nodes.push({ op: 'dropout', out: out.id, x: x.id, rate, hint });
    return out;
  }

  /** (a - b)^2 elementwise (losses). */
  squaredDifference(a: Value, b: Value, hint: string): Value {
    const out = this.value(broadcast(a.shape, b.shape, `squaredDifference ${hint}`));
    this.nodes.push({ op: 'squaredDifference', out: out.id, a: a.id, b: b.id, hint });
    return out;
  }

  /** Sum of every element -> scalar []. */
  sum(x: Value, hint: string): Value {
    const out = this.value([]);
    this.nodes.push({ op: 'sum', out: out.id, x: x.id, hint });
    return out;
  }

  finish(): Graph {
    if (this.outputs.length === 0) throw new Error(`graph ${this.name} has no outputs`);
    const params = [...this.params.values()].map((p) => p.spec).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { name: this.name, inputs: [...this.inputs], outputs: [...this.outputs], nodes: [...this.nodes], values: [...this.values], params };
  }
}

/** Ids each node reads (for interpreters that track lifetimes, and for tests). */
export function nodeInputs(n: Node): number[] {
  switch (n.op) {
    case 'input': case 'param': return [];
    case 'conv2d': case 'linear': return n.b === undefined ? [n.x, n.w] : [n.x, n.w, n.b];
    case 'groupNorm': case 'layerNorm': return [n.x, n.gamma, n.beta];
    case 'add': case 'mul': case 'squaredDifference': return [n.a, n.b];
    case 'concat': return [...n.xs];
    case 'attention': return [n.q, n.k, n.v];
    case 'embedding': return [n.table, n.ids];
    case 'sinusoidal': return [n.t];
    case 'silu': case 'gelu': case 'exp': case 'abs': case 'scale': case 'split': case 'upsample2x': case 'toTokens': case 'toImage': case 'toPixel':
    case 'meanTokens': case 'dropout': case 'sum':
      return [n.x];
    default: {
      const never: never = n;
      throw new Error(`unknown node ${JSON.stringify(never)}`);
    }
  }
}

/** Ids a node defines. */
export function nodeOutputs(n: Node): number[] {
  return n.op === 'split' ? [...n.outs] : [n.out];
}
