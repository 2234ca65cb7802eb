/**
 * diffusers' UNet2DModel / UNet2DConditionModel <-> this project's U-Net: a
 * translation at the edge, engine-free and without file access.
 *
 *   config     unet/config.json <-> UNetConfig (its diffusers-style optional
 *              fields: sinusoid, normEps, attentionHeads, downsamplePadding,
 *              upAttentionResolutions, midAttention, crossAttention)
 *   weights    diffusers' parameter names <-> ours, conv kernels OIHW <-> HWIO,
 *              dense weights [out,in] <-> [in,out], to_q/to_k/to_v <-> our fused
 *              qkv (and to_k/to_v <-> kv)
 *
 * The U-Net is described once (model/unet-description.ts); nothing here walks
 * it: the weight translation maps each of the description's parameter names to
 * its diffusers name mechanically (`diffusersParamLinks`). Every field of a
 * config is either translated, checked to hold the one value we implement, or
 * refused with a DiffuseError naming it: an unsupported option is one line,
 * never a silently different network.
 *
 * Supported: block types DownBlock2D, AttnDownBlock2D, UpBlock2D, AttnUpBlock2D
 * (UNet2DModel; mid UNetMidBlock2D with or without attention), DownBlock2D,
 * CrossAttnDownBlock2D, UpBlock2D, CrossAttnUpBlock2D (UNet2DConditionModel;
 * mid UNetMidBlock2DCrossAttn, one transformer layer per block); positional
 * time embedding (any flip_sin_to_cos / freq_shift); class embeddings
 * (class_embed_type null with num_class_embeds); any block_out_channels that
 * are multiples of the first; downsample_padding 0 or 1; any norm_eps,
 * attention_head_dim, layers_per_block, norm_num_groups.
 */
import { DiffuseError } from '../errors.js';
import { levelResolutions, type UNetConfig, validateUNetConfig } from '../model/config.js';
import { unetParamSpecs } from '../model/unet-description.js';
import { hwioToOihw, oihwToHwio } from '../onnx/export-graph.js';
import type { ParamSpec } from '../net/graph.js';
import type { F32Tensor, Weights } from '../tensor.js';

export type DiffusersUNetClass = 'UNet2DModel' | 'UNet2DConditionModel';
export const DIFFUSERS_UNET_CLASSES: readonly DiffusersUNetClass[] = ['UNet2DModel', 'UNet2DConditionModel'];

/** The diffusers version whose model code the import and export were checked against (test/fixtures/diffusers). */
export const DIFFUSERS_VERSION = '0.40.0.dev0';

/** CLIP's sequence length: the default length of a UNet2DConditionModel's context. */
export const DEFAULT_CONTEXT_LENGTH = 77;

type Json = Record<string, unknown>;

/** Every constructor argument of each class with its default (what from_config fills in for a missing key). */
const DEFAULTS: { readonly [C in DiffusersUNetClass]: Json } = {
  UNet2DModel: {
    sample_size: null, in_channels: 3, out_channels: 3, center_input_sample: false, time_embedding_type: 'positional',
    time_embedding_dim: null, freq_shift: 0, flip_sin_to_cos: true,
    down_block_types: ['DownBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D'], mid_block_type: 'UNetMidBlock2D',
    up_block_types: ['AttnUpBlock2D', 'AttnUpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'], block_out_channels: [224, 448, 672, 896],
    layers_per_block: 2, mid_block_scale_factor: 1, downsample_padding: 1, downsample_type: 'conv', upsample_type: 'conv',
    dropout: 0, act_fn: 'silu', attention_head_dim: 8, norm_num_groups: 32, attn_norm_num_groups: null, norm_eps: 1e-5,
    resnet_time_scale_shift: 'default', add_attention: true, class_embed_type: null, num_class_embeds: null, num_train_timesteps: null,
  },
  UNet2DConditionModel: {
    sample_size: null, in_channels: 4, out_channels: 4, center_input_sample: false, flip_sin_to_cos: true, freq_shift: 0,
    down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
    mid_block_type: 'UNetMidBlock2DCrossAttn', up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
    only_cross_attention: false, block_out_channels: [320, 640, 1280, 1280], layers_per_block: 2, downsample_padding: 1,
    mid_block_scale_factor: 1, dropout: 0, act_fn: 'silu', norm_num_groups: 32, norm_eps: 1e-5, cross_attention_dim: 1280,
    transformer_layers_per_block: 1, reverse_transformer_layers_per_block: null, encoder_hid_dim: null, encoder_hid_dim_type: null,
    attention_head_dim: 8, num_attention_heads: null, dual_cross_attention: false, use_linear_projection: false, class_embed_type: null,
    addition_embed_type: null, addition_time_embed_dim: null, num_class_embeds: null, upcast_attention: false,
    resnet_time_scale_shift: 'default', resnet_skip_time_act: false, resnet_out_scale_factor: 1, time_embedding_type: 'positional',
    time_embedding_dim: null, time_embedding_act_fn: null, timestep_post_act: null, time_cond_proj_dim: null, conv_in_kernel: 3,
    conv_out_kernel: 3, projection_class_embeddings_input_dim: null, attention_type: 'default', class_embeddings_concat: false,
    mid_block_only_cross_attention: null, cross_attention_norm: null, addition_embed_type_num_heads: 64,
  },
};

/** Fields that change only numerics or training, never the function computed in float32 at inference. */
const NO_EFFECT = new Set(['upcast_attention', 'num_train_timesteps', 'addition_time_embed_dim', 'addition_embed_type_num_heads', 'projection_class_embeddings_input_dim']);

const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

/** Reads one class's config: a field's value or the class's default; every complaint names the field. */
class ConfigReader {
  readonly cls: DiffusersUNetClass;
  private readonly used = new Set<string>();

  constructor(private readonly cfg: Json, private readonly source: string) {
    const named = cfg['_class_name'];
    if (typeof named !== 'string' || !(DIFFUSERS_UNET_CLASSES as readonly string[]).includes(named)) {
      throw new DiffuseError(`${source}: _class_name ${show(named)} is not supported (supported: ${DIFFUSERS_UNET_CLASSES.join(', ')})`);
    }
    this.cls = named as DiffusersUNetClass;
  }

  fail(field: string, what: string): never {
    throw new DiffuseError(`${this.source}: ${this.cls} field '${field}' ${what}`);
  }

  get(field: string): unknown {
    this.used.add(field);
    const v = this.cfg[field];
    return v === undefined ? DEFAULTS[this.cls][field] : v;
  }

  int(field: string, min: number): number {
    const v = this.get(field);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) this.fail(field, `must be an integer ≥ ${min}, got ${show(v)}`);
    return v;
  }

  /** A field that must hold one of `allowed` (diffusers knows more). */
  only(field: string, allowed: readonly unknown[], why = ''): void {
    const v = this.get(field);
    if (!allowed.some((a) => a === v)) {
      this.fail(field, `= ${show(v)} is not supported (only ${allowed.map(show).join(' or ')}${why})`);
    }
  }

  /** An int or a per-level list; a list must hold one value (diffuse-ts shares it across levels). */
  shared(field: string, levels: number, min: number): number {
    const v = this.get(field);
    const list = Array.isArray(v) ? v : [v];
    if (Array.isArray(v) && v.length !== levels) this.fail(field, `must have one entry per level (${levels}), got ${v.length}`);
    for (const x of list) if (typeof x !== 'number' || !Number.isInteger(x) || x < min) this.fail(field, `must hold integers ≥ ${min}, got ${show(v)}`);
    if (new Set(list).size !== 1) this.fail(field, `= ${show(v)}: different values per level are not supported`);
    return list[0] as number;
  }

  /** Every key must be a field of the class (underscored keys are metadata). */
  checkKnown(): void {
    for (const k of Object.keys(this.cfg)) {
      if (k.startsWith('_') || k in DEFAULTS[this.cls]) continue;
      this.fail(k, 'is not a field diffuse-ts knows (written by a newer diffusers?): refusing rather than guessing what it changes');
    }
    for (const k of Object.keys(DEFAULTS[this.cls])) if (!this.used.has(k) && !NO_EFFECT.has(k)) this.fail(k, 'was not read (a diffuse-ts bug)');
  }
}

/** Block type names as diffusers reads them ('UNetRes' prefix dropped). */
function blockTypes(r: ConfigReader, field: string, levels: number, allowed: readonly string[]): string[] {
  const v = r.get(field);
  if (!Array.isArray(v) || v.length !== levels || v.some((x) => typeof x !== 'string')) {
    r.fail(field, `must list one block type per level (${levels}, as block_out_channels), got ${show(v)}`);
  }
  return (v as string[]).map((t) => {
    const name = t.startsWith('UNetRes') ? t.slice(7) : t;
    if (!allowed.includes(name)) r.fail(field, `has block type ${show(t)}, which diffuse-ts does not implement (supported: ${allowed.join(', ')})`);
    return name;
  });
}

export interface DiffusersUNetOptions {
  /** Named in errors (e.g. the config.json path). */
  readonly source?: string;
  /** UNet2DConditionModel: length of the context sequence the graph takes (default 77, CLIP's). */
  readonly contextLength?: number;
}

/** A diffusers U-Net config (parsed config.json) as our UNetConfig, or a DiffuseError naming the first field we cannot reproduce. */
export function unetConfigFromDiffusers(json: unknown, opts: DiffusersUNetOptions = {}): { config: UNetConfig; className: DiffusersUNetClass; channels: 1 | 3 } {
  const source = opts.source ?? 'unet/config.json';
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new DiffuseError(`${source}: must be a JSON object`);
  const r: ConfigReader = new ConfigReader(json as Json, source);
  const cond = r.cls === 'UNet2DConditionModel';

  const boc = r.get('block_out_channels');
  if (!Array.isArray(boc) || boc.length === 0 || boc.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 1)) {
    r.fail('block_out_channels', `must be a non-empty list of positive integers, got ${show(boc)}`);
  }
  const chans = boc as number[];
  const base = chans[0] as number;
  if (chans.some((ch) => ch % base !== 0)) r.fail('block_out_channels', `= ${show(chans)}: every level must be a multiple of the first (diffuse-ts counts channels as base × multiplier)`);
  const levels = chans.length;

  const size = r.get('sample_size');
  const side = Array.isArray(size) && size.length === 2 && size[0] === size[1] ? size[0] : size;
  if (typeof side !== 'number' || !Number.isInteger(side) || side < 1) r.fail('sample_size', `must be a positive integer (or a square [h, w]), got ${show(size)}`);
  const inChannels = r.int('in_channels', 1);
  if (inChannels !== 1 && inChannels !== 3) {
    r.fail('in_channels', `= ${inChannels} is not supported (1 or 3: images; a latent model's 4 channels need its autoencoder, which this import does not read)`);
  }
  const outChannels = r.int('out_channels', 1);

  r.only('time_embedding_type', ['positional']);
  r.only('time_embedding_dim', [null, 4 * base], ' = 4 × block_out_channels[0]');
  r.only('act_fn', ['silu', 'swish']);
  r.only('center_input_sample', [false]);
  r.only('resnet_time_scale_shift', ['default']);
  r.only('mid_block_scale_factor', [1]);
  r.only('class_embed_type', [null]);
  const flip = r.get('flip_sin_to_cos');
  if (typeof flip !== 'boolean') r.fail('flip_sin_to_cos', `must be true or false, got ${show(flip)}`);
  const shift = r.get('freq_shift');
  if (typeof shift !== 'number' || !Number.isFinite(shift) || shift >= base / 2) r.fail('freq_shift', `must be a number < block_out_channels[0]/2, got ${show(shift)}`);
  const pad = r.get('downsample_padding');
  if (pad !== 0 && pad !== 1) r.fail('downsample_padding', `= ${show(pad)} is not supported (0 or 1)`);
  const eps = r.get('norm_eps');
  if (typeof eps !== 'number' || !(eps > 0 && eps < 1)) r.fail('norm_eps', `must be a number in (0, 1), got ${show(eps)}`);
  const groups = r.get('norm_num_groups');
  if (typeof groups !== 'number' || !Number.isInteger(groups) || groups < 1) r.fail('norm_num_groups', `must be a positive integer (null is not supported), got ${show(groups)}`);
  const dropout = r.get('dropout');
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) r.fail('dropout', `must be in [0, 1), got ${show(dropout)}`);
  const numClassEmbeds = r.get('num_class_embeds');
  if (numClassEmbeds !== null && (typeof numClassEmbeds !== 'number' || !Number.isInteger(numClassEmbeds) || numClassEmbeds < 2)) {
    r.fail('num_class_embeds', `must be null or an integer ≥ 2 (the last embedding is read as "no class"), got ${show(numClassEmbeds)}`);
  }
  const layers = cond ? r.shared('layers_per_block', levels, 1) : r.int('layers_per_block', 1);

  let down: string[], up: string[];
  let heads: number[];
  const extra: Partial<UNetConfig> = {};
  if (!cond) {
    down = blockTypes(r, 'down_block_types', levels, ['DownBlock2D', 'AttnDownBlock2D']);
    up = blockTypes(r, 'up_block_types', levels, ['UpBlock2D', 'AttnUpBlock2D']);
    r.only('mid_block_type', ['UNetMidBlock2D']);
    r.only('downsample_type', ['conv']);
    r.only('upsample_type', ['conv']);
    r.only('attn_norm_num_groups', [null, groups]);
    const midAttention = r.get('add_attention');
    if (typeof midAttention !== 'boolean') r.fail('add_attention', `must be true or false, got ${show(midAttention)}`);
    if (!midAttention) extra.midAttention = false;
    // heads = channels / attention_head_dim at each level with attention (null: one head)
    const hd = r.get('attention_head_dim');
    if (hd !== null && (typeof hd !== 'number' || !Number.isInteger(hd) || hd < 1)) r.fail('attention_head_dim', `must be null or a positive integer, got ${show(hd)}`);
    const headDim = hd as number | null;
    heads = chans.map((ch, l) => {
      const attends = down[l] !== 'DownBlock2D' || up[levels - 1 - l] !== 'UpBlock2D' || (l === levels - 1 && midAttention);
      if (headDim === null || !attends) return 1;
      if (ch % headDim !== 0) r.fail('attention_head_dim', `= ${headDim} does not divide the ${ch} channels of level ${l}`);
      return ch / headDim;
    });
  } else {
    down = blockTypes(r, 'down_block_types', levels, ['DownBlock2D', 'CrossAttnDownBlock2D']);
    up = blockTypes(r, 'up_block_types', levels, ['UpBlock2D', 'CrossAttnUpBlock2D']);
    r.only('mid_block_type', ['UNetMidBlock2DCrossAttn']);
    r.only('only_cross_attention', [false]);
    r.only('mid_block_only_cross_attention', [null, false]);
    r.only('dual_cross_attention', [false]);
    if (r.shared('transformer_layers_per_block', levels, 1) !== 1) r.fail('transformer_layers_per_block', 'must be 1 (one transformer layer per block)');
    r.only('reverse_transformer_layers_per_block', [null]);
    for (const f of ['encoder_hid_dim', 'encoder_hid_dim_type', 'addition_embed_type', 'time_embedding_act_fn', 'timestep_post_act', 'time_cond_proj_dim', 'cross_attention_norm']) r.only(f, [null]);
    r.only('resnet_skip_time_act', [false]);
    r.only('resnet_out_scale_factor', [1]);
    r.only('conv_in_kernel', [3]);
    r.only('conv_out_kernel', [3]);
    r.only('attention_type', ['default']);
    r.only('class_embeddings_concat', [false]);
    const contextDim = r.shared('cross_attention_dim', levels, 1);
    const lp = r.get('use_linear_projection');
    if (typeof lp !== 'boolean') r.fail('use_linear_projection', `must be true or false, got ${show(lp)}`);
    const linear: boolean = lp;
    // UNet2DConditionModel reads attention_head_dim as the number of heads (num_attention_heads, when given, wins)
    const field = r.get('num_attention_heads') !== null ? 'num_attention_heads' : 'attention_head_dim';
    r.get('attention_head_dim');
    const hv = r.get(field);
    const list = Array.isArray(hv) ? hv : chans.map(() => hv);
    if (list.length !== levels || list.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 1)) r.fail(field, `must be a positive integer or one per level, got ${show(hv)}`);
    heads = (list as number[]).map((h, l) => {
      if ((chans[l] as number) % h !== 0) r.fail(field, `: ${h} heads do not divide the ${chans[l]} channels of level ${l}`);
      return h;
    });
    const L = opts.contextLength ?? DEFAULT_CONTEXT_LENGTH;
    extra.crossAttention = { contextDim, contextLength: L, linearProjection: linear };
  }
  r.checkKnown();

  const resolutions = chans.map((_, l) => (side as number) / 2 ** l);
  const attentionResolutions = resolutions.filter((_, l) => down[l] !== 'DownBlock2D');
  const upAttention = resolutions.filter((_, l) => up[levels - 1 - l] !== 'UpBlock2D');
  const config: UNetConfig = {
    imageSize: side as number,
    inChannels,
    outChannels,
    baseChannels: base,
    channelMults: chans.map((ch) => ch / base),
    numResBlocks: layers,
    attentionResolutions,
    groups: groups as number,
    dropout: dropout as number,
    numClasses: numClassEmbeds === null ? 0 : (numClassEmbeds as number) - 1,
    ...(flip !== false || shift !== 1 ? { sinusoid: { flipSinToCos: flip as boolean, freqShift: shift as number } } : {}),
    ...(eps !== 1e-5 ? { normEps: eps as number } : {}),
    ...(heads.some((h) => h !== 1) ? { attentionHeads: heads } : {}),
    ...(pad === 1 ? { downsamplePadding: 'symmetric' as const } : {}),
    ...(upAttention.join() !== attentionResolutions.join() ? { upAttentionResolutions: upAttention } : {}),
    ...extra,
  };
  try {
    validateUNetConfig(config);
  } catch (e) {
    if (e instanceof DiffuseError) throw new DiffuseError(`${source}: ${e.message}`, { cause: e });
    throw e;
  }
  return { config, className: r.cls, channels: inChannels };
}

/** Our U-Net as a diffusers config (config.json's object, every field as diffusers writes it), or a DiffuseError saying why none reproduces it. */
export function diffusersConfigFromUNet(c: UNetConfig): { className: DiffusersUNetClass; config: Json } {
  validateUNetConfig(c);
  if (c.text !== undefined) {
    throw new DiffuseError('a text-conditioned model has no diffusers equivalent: its own text encoder and cross-attention blocks are not UNet2DConditionModel\'s (export class-conditional or unconditional models)');
  }
  const levels = c.channelMults.length;
  const chans = c.channelMults.map((m) => m * c.baseChannels);
  const res = levelResolutions(c);
  const down = res.map((r) => c.attentionResolutions.includes(r));
  const up = res.map((r) => (c.upAttentionResolutions ?? c.attentionResolutions).includes(r));
  const heads = c.attentionHeads ?? chans.map(() => 1);
  const cond = c.crossAttention !== undefined;
  const className: DiffusersUNetClass = cond ? 'UNet2DConditionModel' : 'UNet2DModel';
  const attn = cond ? 'CrossAttn' : 'Attn';
  const common: Json = {
    sample_size: c.imageSize, in_channels: c.inChannels, out_channels: c.outChannels,
    flip_sin_to_cos: c.sinusoid?.flipSinToCos ?? false, freq_shift: c.sinusoid?.freqShift ?? 1,
    down_block_types: down.map((a) => (a ? `${attn}DownBlock2D` : 'DownBlock2D')),
    up_block_types: [...up].reverse().map((a) => (a ? `${attn}UpBlock2D` : 'UpBlock2D')),
    block_out_channels: chans, layers_per_block: c.numResBlocks,
    downsample_padding: c.downsamplePadding === 'symmetric' ? 1 : 0,
    dropout: c.dropout, norm_num_groups: c.groups, norm_eps: c.normEps ?? 1e-5,
    num_class_embeds: c.numClasses > 0 ? c.numClasses + 1 : null,
  };
  let specific: Json;
  if (c.crossAttention !== undefined) {
    if (c.midAttention === false) throw new DiffuseError('a U-Net with cross-attention and no middle attention has no UNet2DConditionModel equivalent');
    specific = {
      cross_attention_dim: c.crossAttention.contextDim, use_linear_projection: c.crossAttention.linearProjection,
      attention_head_dim: new Set(heads).size === 1 ? heads[0] : heads,
    };
  } else {
    // one head width for every level with attention (and the middle block); null = one head per level
    const attends = chans.map((_, l) => down[l] === true || up[l] === true || (l === levels - 1 && c.midAttention !== false));
    const widths = new Set(chans.flatMap((ch, l) => (attends[l] ? [ch / (heads[l] as number)] : [])));
    const oneHead = chans.every((_, l) => heads[l] === 1 || !attends[l]);
    if (!oneHead && widths.size > 1) throw new DiffuseError(`attention heads [${heads.join(', ')}] give different head widths per level (${[...widths].join(', ')}): UNet2DModel has one attention_head_dim`);
    const headDim = !attends.some(Boolean) ? DEFAULTS.UNet2DModel['attention_head_dim'] : oneHead ? null : [...widths][0];
    specific = { attention_head_dim: headDim, add_attention: c.midAttention !== false };
  }
  return { className, config: { ...DEFAULTS[className], ...common, ...specific } };
}

// ---------------------------------------------------------------- weights

/** How a tensor is stored: conv kernels (ours HWIO, theirs OIHW), dense weights (ours [in,out], theirs [out,in]), or as is. */
export type TensorLayout = 'conv' | 'dense' | 'plain';

/** One of our parameters and the diffusers tensor(s) it is made of (several: concatenated along the output axis). */
export interface ParamLink {
  readonly ours: string;
  readonly shape: readonly number[];
  readonly theirs: readonly string[];
  readonly layout: TensorLayout;
}

const RES_PARTS: Record<string, string> = { norm1: 'norm1', conv1: 'conv1', temb: 'time_emb_proj', norm2: 'norm2', conv2: 'conv2', skip: 'conv_shortcut' };
const LEAF: Record<string, string> = { kernel: 'weight', bias: 'bias', gamma: 'weight', beta: 'bias', table: 'weight' };

/** The diffusers module path(s) of one of our parameter prefixes (without the leaf), or undefined when it has none. */
function diffusersModules(parts: readonly string[], levels: number): string[] | undefined {
  const [a, b, c, d, ...rest] = parts;
  const block = (kind: string | undefined, idx: string | undefined, tail: readonly string[], at: string): string[] | undefined => {
    if (kind === 'res' && tail.length === 1) {
      const p = RES_PARTS[tail[0] as string];
      return p === undefined ? undefined : [`${at}.resnets.${idx}.${p}`];
    }
    if (kind === 'attn' && tail.length === 1) {
      const m = `${at}.attentions.${idx}`;
      return { norm: [`${m}.group_norm`], qkv: [`${m}.to_q`, `${m}.to_k`, `${m}.to_v`], proj: [`${m}.to_out.0`] }[tail[0] as string];
    }
    if (kind === 'transformer') {
      const m = `${at}.attentions.${idx}`;
      const key = tail.join('.');
      const single: Record<string, string> = { norm: 'norm', proj_in: 'proj_in', proj_out: 'proj_out' };
      if (single[key] !== undefined) return [`${m}.${single[key]}`];
      const t = `${m}.transformer_blocks.0`;
      const inner: Record<string, string[]> = {
        'block.0.norm1': [`${t}.norm1`], 'block.0.norm2': [`${t}.norm2`], 'block.0.norm3': [`${t}.norm3`],
        'block.0.attn1.qkv': [`${t}.attn1.to_q`, `${t}.attn1.to_k`, `${t}.attn1.to_v`], 'block.0.attn1.proj': [`${t}.attn1.to_out.0`],
        'block.0.attn2.q': [`${t}.attn2.to_q`], 'block.0.attn2.kv': [`${t}.attn2.to_k`, `${t}.attn2.to_v`], 'block.0.attn2.proj': [`${t}.attn2.to_out.0`],
        'block.0.ff.proj': [`${t}.ff.net.0.proj`], 'block.0.ff.out': [`${t}.ff.net.2`],
      };
      return inner[key];
    }
    return undefined;
  };
  if (parts.length === 1 && a === 'conv_in') return ['conv_in'];
  if (a === 'temb' && parts.length === 2) return { dense0: ['time_embedding.linear_1'], dense1: ['time_embedding.linear_2'] }[b as string];
  if (a === 'class_emb' && parts.length === 1) return ['class_embedding'];
  if (a === 'out' && parts.length === 2) return { norm: ['conv_norm_out'], conv: ['conv_out'] }[b as string];
  if (a === 'mid') return block(b, c, [d, ...rest].filter((x): x is string => x !== undefined), 'mid_block');
  if (a === 'down' || a === 'up') {
    const l = Number(b);
    const at = a === 'down' ? `down_blocks.${l}` : `up_blocks.${levels - 1 - l}`;
    if (c === 'downsample' && parts.length === 3) return [`${at}.downsamplers.0.conv`];
    if (c === 'upsample' && parts.length === 3) return [`${at}.upsamplers.0.conv`];
    return block(c, d, rest, at);
  }
  return undefined;
}

/**
 * Every parameter of our U-Net for `c` with the diffusers tensor(s) it
 * corresponds to, read off the description's parameter names. A parameter
 * with no diffusers counterpart (our text encoder) is a DiffuseError.
 */
export function diffusersParamLinks(c: UNetConfig): ParamLink[] {
  const levels = c.channelMults.length;
  return unetParamSpecs(c).map((s: ParamSpec) => {
    const parts = s.name.split('.');
    const leaf = LEAF[parts[parts.length - 1] as string];
    const modules = leaf === undefined ? undefined : diffusersModules(parts.slice(0, -1), levels);
    if (modules === undefined || leaf === undefined) throw new DiffuseError(`parameter '${s.name}' has no diffusers counterpart (text-conditioned models cannot be exported)`);
    const layout: TensorLayout = s.name.endsWith('.kernel') ? (s.shape.length === 4 ? 'conv' : 'dense') : 'plain';
    return { ours: s.name, shape: [...s.shape], theirs: modules.map((m) => `${m}.${leaf}`), layout };
  });
}

/** The diffusers shape of one of the `n` tensors a parameter of ours is made of. */
function theirShape(l: ParamLink): number[] {
  const n = l.theirs.length;
  switch (l.layout) {
    case 'conv': {
      const [k, , i, o] = l.shape as [number, number, number, number];
      return [o, i, k, k];
    }
    case 'dense': return [(l.shape[1] as number) / n, l.shape[0] as number];
    case 'plain': return l.shape.length === 1 ? [(l.shape[0] as number) / n] : [...l.shape];
    default: {
      const never: never = l.layout;
      throw new Error(`unknown layout ${String(never)}`);
    }
  }
}

/** [rows, cols] row-major -> its transpose. */
function transpose2(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let q = 0; q < cols; q++) out[q * rows + r] = data[r * cols + q] as number;
  return out;
}

/** Names diffusers < 0.14 used for the attention blocks of UNet2DModel (diffusers renames them on load). */
const DEPRECATED: readonly (readonly [string, string])[] = [['.to_q.', '.query.'], ['.to_k.', '.key.'], ['.to_v.', '.value.'], ['.to_out.0.', '.proj_attn.']];

const fmtShape = (s: readonly number[]): string => `[${s.join(',')}]`;

/**
 * diffusers' weights (as read from diffusion_pytorch_model.safetensors) as our
 * parameters for `c`. Every tensor the config needs must be there with its
 * shape, and nothing else may be: a DiffuseError names the first that is not.
 */
export function weightsFromDiffusers(c: UNetConfig, tensors: Weights, source = 'diffusion_pytorch_model.safetensors'): Weights {
  const used = new Set<string>();
  const out: Weights = {};
  for (const l of diffusersParamLinks(c)) {
    const want = theirShape(l);
    const parts = l.theirs.map((name) => {
      let key = name;
      if (tensors[key] === undefined) {
        const old = DEPRECATED.find(([now]) => name.includes(now));
        if (old !== undefined && tensors[name.replace(old[0], old[1])] !== undefined) key = name.replace(old[0], old[1]);
      }
      const t = tensors[key];
      if (t === undefined) throw new DiffuseError(`${source}: missing tensor "${name}" ${fmtShape(want)}, which the config needs`);
      if (t.shape.join() !== want.join()) throw new DiffuseError(`${source}: tensor "${key}" has shape ${fmtShape(t.shape)}, the config needs ${fmtShape(want)}`);
      used.add(key);
      return t.data;
    });
    out[l.ours] = { shape: [...l.shape], data: toOurs(l, parts, want) };
  }
  for (const name of Object.keys(tensors)) {
    if (!used.has(name)) throw new DiffuseError(`${source}: unexpected tensor "${name}" ${fmtShape(tensors[name]?.shape ?? [])}: the config has no place for it`);
  }
  return out;
}

function toOurs(l: ParamLink, parts: readonly Float32Array[], want: readonly number[]): Float32Array {
  switch (l.layout) {
    case 'conv': return oihwToHwio(parts[0] as Float32Array, want);
    case 'dense': {
      // each part [d, in] -> [in, d], laid side by side: [in, n·d]
      const [d, inW] = want as [number, number];
      const n = parts.length;
      const out = new Float32Array(inW * d * n);
      parts.forEach((p, j) => {
        const t = transpose2(p, d, inW);
        for (let i = 0; i < inW; i++) out.set(t.subarray(i * d, (i + 1) * d), i * d * n + j * d);
      });
      return out;
    }
    case 'plain': {
      const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
      let at = 0;
      for (const p of parts) { out.set(p, at); at += p.length; }
      return out;
    }
    default: {
      const never: never = l.layout;
      throw new Error(`unknown layout ${String(never)}`);
    }
  }
}

/** Our parameters as diffusers' tensors (names, layouts, q/k/v split): what diffusion_pytorch_model.safetensors holds. */
export function weightsToDiffusers(c: UNetConfig, params: Weights): Weights {
  const out: Weights = {};
  for (const l of diffusersParamLinks(c)) {
    const p = params[l.ours];
    if (p === undefined || p.shape.join() !== l.shape.join()) throw new DiffuseError(`parameter '${l.ours}' is missing or not ${fmtShape(l.shape)}`);
    const want = theirShape(l);
    const n = l.theirs.length;
    l.theirs.forEach((name, j) => {
      let data: Float32Array;
      switch (l.layout) {
        case 'conv': data = hwioToOihw(p.data, l.shape); break;
        case 'dense': {
          const [d, inW] = want as [number, number];
          const slice = new Float32Array(inW * d);
          for (let i = 0; i < inW; i++) slice.set(p.data.subarray(i * d * n + j * d, i * d * n + (j + 1) * d), i * d);
          data = transpose2(slice, inW, d);
          break;
        }
        case 'plain': {
          const len = p.data.length / n;
          data = p.data.slice(j * len, (j + 1) * len);
          break;
        }
        default: {
          const never: never = l.layout;
          throw new Error(`unknown layout ${String(never)}`);
        }
      }
      out[name] = { shape: want, data } satisfies F32Tensor;
    });
  }
  return out;
}
