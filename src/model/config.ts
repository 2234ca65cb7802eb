/**
 * U-Net hyper-parameters. Engine-free (no tfjs import) so configs can be read,
 * validated and stored without loading a backend.
 */
import { DiffuseError } from '../errors.js';

export interface UNetConfig {
  /** Square input side in pixels; divisible by 2^(channelMults.length-1). */
  imageSize: number;
  /** Input channels: 1 (grayscale) or 3 (RGB) for pixels, the autoencoder's latent channels for a latent model. */
  inChannels: number;
  /** Output channels (usually = inChannels; 2x for learned variance). */
  outChannels: number;
  /** Channels at the first resolution. */
  baseChannels: number;
  /** Channel multiplier per resolution level; the image halves between levels. */
  channelMults: number[];
  /** Residual blocks per level on the way down (the way up has one more). */
  numResBlocks: number;
  /** Resolutions (side in pixels) that get a self-attention block after each residual block. */
  attentionResolutions: number[];
  /** GroupNorm groups; must divide every channel count. */
  groups: number;
  /** Dropout rate inside residual blocks, in [0, 1). */
  dropout: number;
  /**
   * 0 = unconditional. Otherwise a learned class embedding (numClasses + 1 rows;
   * row numClasses = "no class", for classifier-free guidance) is added to the
   * time embedding.
   */
  numClasses: number;
  /**
   * Text conditioning (absent = none; exclusive with numClasses > 0): a small
   * learned text encoder over a fixed word vocabulary (text/encoder.ts), attended
   * to by a cross-attention block after every self-attention block (the middle
   * block's included),
   * its mean-pooled output added to the time embedding. The empty prompt
   * (all pad tokens) is the unconditional input for classifier-free guidance.
   */
  text?: TextEncoderConfig;

  // ---- Options in which diffusers' UNet2DModel / UNet2DConditionModel differ
  // from this U-Net (interop/diffusers-unet.ts reads and writes them). Absent =
  // this project's own choice, so older checkpoints keep their meaning.

  /** Sinusoidal time embedding: cos first (diffusers' flip_sin_to_cos), frequency shift. Default sin first, shift 1. */
  sinusoid?: { flipSinToCos: boolean; freqShift: number };
  /** Epsilon of every GroupNorm of the res and attention blocks and the output norm (default 1e-5). */
  normEps?: number;
  /** Attention heads per level (the middle block uses the last level's); default one head everywhere. */
  attentionHeads?: number[];
  /** Stride-2 downsampling: 'same' (TensorFlow's rule, pad after; diffusers' downsample_padding 0) or 'symmetric' (pad 1 all round; diffusers' 1). Default 'same'. */
  downsamplePadding?: 'same' | 'symmetric';
  /** Resolutions with attention on the way up, when they differ from the way down (attentionResolutions). */
  upAttentionResolutions?: number[];
  /** Attention in the middle block (default true; diffusers' add_attention). */
  midAttention?: boolean;
  /**
   * diffusers' UNet2DConditionModel: an external conditioning sequence (its
   * encoder_hidden_states, e.g. CLIP's, the graph input `context` [N, L, D])
   * attended to by transformer blocks (net/blocks.ts spatialTransformer) in
   * place of the self-attention blocks. Exclusive with `text`.
   */
  crossAttention?: CrossAttentionConfig;
}

export interface CrossAttentionConfig {
  /** Width D of the context (diffusers' cross_attention_dim). */
  contextDim: number;
  /** Length L of the context (77 for CLIP). */
  contextLength: number;
  /** Dense projections into and out of the transformer (true) or 1x1 convolutions (false; diffusers' use_linear_projection). */
  linearProjection: boolean;
}

/** The optional UNetConfig fields above (config.json's model.* keys that may be absent). */
export const UNET_OPTIONAL_FIELDS = ['text', 'sinusoid', 'normEps', 'attentionHeads', 'downsamplePadding', 'upAttentionResolutions', 'midAttention', 'crossAttention'] as const;

/** The text encoder's shape and vocabulary (saved in every checkpoint, so a checkpoint can tokenize prompts). */
export interface TextEncoderConfig {
  /** Words, index = token id; index 0 is the pad token PAD_TOKEN. */
  vocab: string[];
  /** Tokens per prompt (padded with token 0). */
  maxTokens: number;
  /** Width of the token embeddings and of the encoder. */
  dim: number;
}

export const PAD_TOKEN = '<pad>';
/** The most input channels a U-Net may take (pixels: 1 or 3; latents: the autoencoder's channels). */
export const MAX_IN_CHANNELS = 64;
/** The most tokens a prompt may have (config.json's model.text.maxTokens range). */
export const MAX_TOKENS = 256;

/** Integers per image of the condition: 1 (class index), maxTokens (token ids) or 0 (unconditional). */
export function conditionLength(c: UNetConfig): number {
  if (c.text !== undefined) return c.text.maxTokens;
  return c.numClasses > 0 ? 1 : 0;
}

/**
 * Defaults, chosen for a 2-core CPU: a 1.06M-parameter U-Net for 28x28 grayscale
 * (MNIST), the shipped model's shape (models/mnist): recognizable digits after
 * about 500 steps (~20 min on both cores), good ones after 1500 (~1 h).
 * numResBlocks 2 is 1.6M params and about half the speed; attention at 7x7 on
 * top of the middle block's costs ~30% more time per step.
 * - imageSize 28 (levels 28 -> 14 -> 7), inChannels 1, outChannels 1
 * - baseChannels 32, channelMults [1, 2, 2] (32, 64, 64 channels)
 * - numResBlocks 1, self-attention in the middle block only (attentionResolutions []), groups 8, dropout 0, numClasses 0
 */
export function defaultUNetConfig(overrides: Partial<UNetConfig> = {}): UNetConfig {
  const c: UNetConfig = {
    imageSize: 28,
    inChannels: 1,
    outChannels: 1,
    baseChannels: 32,
    channelMults: [1, 2, 2],
    numResBlocks: 1,
    attentionResolutions: [],
    groups: 8,
    dropout: 0,
    numClasses: 0,
    ...overrides,
  };
  c.channelMults = [...c.channelMults];
  c.attentionResolutions = [...c.attentionResolutions];
  return c;
}

function positiveInt(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new DiffuseError(`UNetConfig.${field} must be a positive integer, got ${String(v)}`);
  }
  return v;
}

/** Resolutions (sides) of each level: imageSize, imageSize/2, ... */
export function levelResolutions(c: UNetConfig): number[] {
  return c.channelMults.map((_, i) => c.imageSize / 2 ** i);
}

/** Throws DiffuseError naming the first bad field. Returns the config for chaining. */
export function validateUNetConfig(c: UNetConfig): UNetConfig {
  if (typeof c !== 'object' || c === null) throw new DiffuseError('UNetConfig must be an object');
  positiveInt(c.imageSize, 'imageSize');
  if (typeof c.inChannels !== 'number' || !Number.isInteger(c.inChannels) || c.inChannels < 1 || c.inChannels > MAX_IN_CHANNELS) {
    throw new DiffuseError(`UNetConfig.inChannels must be an integer in 1..${MAX_IN_CHANNELS} (1 or 3 for pixels; the latent channels of a latent model), got ${String(c.inChannels)}`);
  }
  positiveInt(c.outChannels, 'outChannels');
  positiveInt(c.baseChannels, 'baseChannels');
  if (c.baseChannels % 2 !== 0) throw new DiffuseError(`UNetConfig.baseChannels must be even (it is the width of the sinusoidal time embedding), got ${c.baseChannels}`);
  if (!Array.isArray(c.channelMults) || c.channelMults.length === 0) {
    throw new DiffuseError('UNetConfig.channelMults must be a non-empty array of positive integers');
  }
  c.channelMults.forEach((m, i) => positiveInt(m, `channelMults[${i}]`));
  if (typeof c.numResBlocks !== 'number' || !Number.isInteger(c.numResBlocks) || c.numResBlocks < 1) {
    throw new DiffuseError(`UNetConfig.numResBlocks must be a positive integer, got ${String(c.numResBlocks)}`);
  }
  const levels = c.channelMults.length;
  const div = 2 ** (levels - 1);
  if (c.imageSize % div !== 0) {
    throw new DiffuseError(
      `UNetConfig.imageSize ${c.imageSize} must be divisible by 2^(levels-1) = ${div} (channelMults has ${levels} levels)`);
  }
  positiveInt(c.groups, 'groups');
  const chans = new Set<number>([c.baseChannels, ...c.channelMults.map((m) => m * c.baseChannels)]);
  for (const ch of chans) {
    if (ch % c.groups !== 0) {
      throw new DiffuseError(`UNetConfig.groups ${c.groups} must divide every channel count (${[...chans].join(', ')}); ${ch} is not divisible`);
    }
  }
  if (!Array.isArray(c.attentionResolutions)) throw new DiffuseError('UNetConfig.attentionResolutions must be an array');
  const res = levelResolutions(c);
  for (const r of c.attentionResolutions) {
    if (!res.includes(r)) {
      throw new DiffuseError(`UNetConfig.attentionResolutions: ${String(r)} is not a level resolution (levels: ${res.join(', ')})`);
    }
  }
  if (typeof c.dropout !== 'number' || !(c.dropout >= 0 && c.dropout < 1)) {
    throw new DiffuseError(`UNetConfig.dropout must be in [0, 1), got ${String(c.dropout)}`);
  }
  if (typeof c.numClasses !== 'number' || !Number.isInteger(c.numClasses) || c.numClasses < 0) {
    throw new DiffuseError(`UNetConfig.numClasses must be an integer >= 0, got ${String(c.numClasses)}`);
  }
  if (c.text !== undefined) validateTextConfig(c.text, c.numClasses);
  validateVariant(c);
  return c;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The diffusers-style options (absent = ours). */
function validateVariant(c: UNetConfig): void {
  const levels = c.channelMults.length;
  const chans = c.channelMults.map((m) => m * c.baseChannels);
  if (c.sinusoid !== undefined) {
    const s: unknown = c.sinusoid;
    if (!isObject(s) || typeof s['flipSinToCos'] !== 'boolean' || typeof s['freqShift'] !== 'number' || !Number.isFinite(s['freqShift'])) {
      throw new DiffuseError('UNetConfig.sinusoid must be {flipSinToCos: true|false, freqShift: number}');
    }
    if (s['freqShift'] >= c.baseChannels / 2) throw new DiffuseError(`UNetConfig.sinusoid.freqShift must be < baseChannels/2 = ${c.baseChannels / 2}, got ${s['freqShift']}`);
  }
  if (c.normEps !== undefined && !(typeof c.normEps === 'number' && c.normEps > 0 && c.normEps < 1)) {
    throw new DiffuseError(`UNetConfig.normEps must be a number in (0, 1), got ${String(c.normEps)}`);
  }
  if (c.attentionHeads !== undefined) {
    if (!Array.isArray(c.attentionHeads) || c.attentionHeads.length !== levels) throw new DiffuseError(`UNetConfig.attentionHeads must list one head count per level (${levels})`);
    c.attentionHeads.forEach((h, i) => {
      positiveInt(h, `attentionHeads[${i}]`);
      if ((chans[i] as number) % h !== 0) throw new DiffuseError(`UNetConfig.attentionHeads[${i}] = ${h} does not divide the level's ${chans[i]} channels`);
    });
  }
  if (c.downsamplePadding !== undefined && c.downsamplePadding !== 'same' && c.downsamplePadding !== 'symmetric') {
    throw new DiffuseError(`UNetConfig.downsamplePadding must be 'same' or 'symmetric', got ${String(c.downsamplePadding)}`);
  }
  if (c.upAttentionResolutions !== undefined) {
    if (!Array.isArray(c.upAttentionResolutions)) throw new DiffuseError('UNetConfig.upAttentionResolutions must be an array');
    const res = levelResolutions(c);
    for (const r of c.upAttentionResolutions) {
      if (!res.includes(r)) throw new DiffuseError(`UNetConfig.upAttentionResolutions: ${String(r)} is not a level resolution (levels: ${res.join(', ')})`);
    }
  }
  if (c.midAttention !== undefined && typeof c.midAttention !== 'boolean') throw new DiffuseError(`UNetConfig.midAttention must be true or false, got ${String(c.midAttention)}`);
  if (c.crossAttention !== undefined) {
    const x: unknown = c.crossAttention;
    if (!isObject(x) || typeof x['linearProjection'] !== 'boolean') throw new DiffuseError('UNetConfig.crossAttention must be {contextDim, contextLength, linearProjection}');
    positiveInt(x['contextDim'], 'crossAttention.contextDim');
    positiveInt(x['contextLength'], 'crossAttention.contextLength');
    if (c.text !== undefined) throw new DiffuseError('UNetConfig: a model attends to its own text encoder (text) or to an external context (crossAttention), not both');
  }
}

function validateTextConfig(t: TextEncoderConfig, numClasses: number): void {
  if (typeof t !== 'object' || t === null) throw new DiffuseError('UNetConfig.text must be an object {vocab, maxTokens, dim}');
  if (numClasses > 0) throw new DiffuseError(`UNetConfig: a model is conditioned on classes (numClasses ${numClasses}) or on text, not both`);
  if (!Array.isArray(t.vocab) || t.vocab.length < 2 || t.vocab.some((w) => typeof w !== 'string' || w.length === 0)) {
    throw new DiffuseError('UNetConfig.text.vocab must be an array of at least 2 non-empty strings');
  }
  if (t.vocab[0] !== PAD_TOKEN) throw new DiffuseError(`UNetConfig.text.vocab[0] must be '${PAD_TOKEN}', got '${String(t.vocab[0])}'`);
  if (new Set(t.vocab).size !== t.vocab.length) throw new DiffuseError('UNetConfig.text.vocab has duplicate words');
  positiveInt(t.maxTokens, 'text.maxTokens');
  positiveInt(t.dim, 'text.dim');
}
