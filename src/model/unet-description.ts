/**
 * The U-Net, described once (net/graph.ts): the parameter list, the tfjs
 * forward (model/unet.ts) and the ONNX graph (onnx/export-unet.ts) all follow
 * from `unetDescription`. Engine-free.
 *
 * x [N,H,W,inC] (NHWC), t [N] (float timestep index)
 *   temb = dense1(silu(dense0(sinusoidal(t))))     (+ class embedding, or + dense(mean(context)))
 *   text models: context = TextEncoder(tokens) [N, L, D] (text/encoder.ts); a
 *         cross-attention block (queries: image positions, keys/values: the
 *         context) follows every self-attention block, the middle one included
 *   h = conv3x3(x)
 *   down: per level, numResBlocks x (ResBlock [+ Attention]); then a stride-2 conv3x3
 *   mid:  ResBlock, Attention, ResBlock
 *   up:   per level, (numResBlocks+1) x (concat skip, ResBlock [+ Attention]);
 *         then nearest x2 + conv3x3
 *   out = conv3x3(silu(GroupNorm(h)))                  (zero-initialised)
 * ResBlock(x) = skip(x) + conv3x3(dropout(silu(GN(conv3x3(silu(GN(x))) + dense(silu(temb))))))
 * (the blocks: net/blocks.ts)
 *
 * The optional fields of UNetConfig (sinusoid, normEps, attentionHeads,
 * downsamplePadding, upAttentionResolutions, midAttention, crossAttention)
 * make the same walk diffusers' UNet2DModel / UNet2DConditionModel
 * (interop/diffusers-unet.ts, docs/diffusers.md); absent, it is the walk above.
 *
 * Parameter names are stable and sorted, e.g. 'down.0.res.1.conv1.kernel'.
 */
import { attentionBlock, conv, dense, downsample, embed, norm, resBlock, spatialTransformer, timestepMlp, upsample } from '../net/blocks.js';
import { BATCH, type GraphBuilder, type ParamSpec, shapeSize, type Value } from '../net/graph.js';
import { type NetworkDef, networkGraph, networkParamSpecs } from '../net/network.js';
import { textEncoder } from '../text/encoder.js';
import { type UNetConfig, levelResolutions, validateUNetConfig } from './config.js';

/** Walk the U-Net's blocks on a builder; returns { out }. */
export function unetDescription(b: GraphBuilder, c: UNetConfig): { out: Value } {
  const S = c.imageSize;
  const tdim = 4 * c.baseChannels;
  const eps = c.normEps !== undefined ? { eps: c.normEps } : {};
  const x = b.input({ name: 'x', dtype: 'float32', shape: [BATCH, S, S, c.inChannels], doc: 'images x_t, NHWC' });
  const t = b.input({ name: 't', dtype: 'float32', shape: [BATCH], doc: 'timestep index per image' });

  let emb = timestepMlp(b, 'temb', t, { dim: c.baseChannels, ...(c.sinusoid ?? {}) }, tdim);
  if (c.numClasses > 0) {
    const classes = b.input({
      name: 'classes', dtype: 'int32', shape: [BATCH], max: c.numClasses, fill: c.numClasses,
      doc: `class per image (0..${c.numClasses}; ${c.numClasses} = no class)`,
    });
    emb = b.add(emb, embed(b, 'class_emb', classes, c.numClasses + 1, tdim, 1), 'temb/add_class');
  }
  let context: Value | undefined;
  if (c.text !== undefined) {
    const tokens = b.input({
      name: 'tokens', dtype: 'int32', shape: [BATCH, c.text.maxTokens], max: c.text.vocab.length - 1, fill: 0,
      doc: 'prompt token ids (0 = pad; all pads = no prompt)',
    });
    context = textEncoder(b, 'text', c.text, tokens);
    emb = b.add(emb, dense(b, 'text.pool', b.meanTokens(context, 'text/mean'), tdim), 'temb/add_text');
  }
  const xa = c.crossAttention;
  const external = xa === undefined ? undefined : b.input({
    name: 'context', dtype: 'float32', shape: [BATCH, xa.contextLength, xa.contextDim],
    doc: "conditioning sequence (diffusers' encoder_hidden_states, e.g. a text encoder's output)",
  });
  const embAct = b.silu(emb, 'temb.act');

  const res = (name: string, h: Value, out: number): Value => resBlock(b, name, h, embAct, { out, groups: c.groups, dropout: c.dropout, ...eps });
  const heads = (l: number): number => c.attentionHeads?.[l] ?? 1;
  // Self-attention, then (text models) cross-attention to the prompt; or
  // (crossAttention) a transformer block attending to the external context.
  const attn = (level: string, i: number, h: Value, l: number): Value => {
    if (external !== undefined && xa !== undefined) {
      return spatialTransformer(b, `${level}.transformer.${i}`, h, { context: external, heads: heads(l), groups: c.groups, linearProjection: xa.linearProjection });
    }
    const a = attentionBlock(b, `${level}.attn.${i}`, h, { groups: c.groups, heads: heads(l), ...eps });
    return context === undefined ? a : attentionBlock(b, `${level}.xattn.${i}`, a, { groups: c.groups, context });
  };
  const chans = c.channelMults.map((m) => m * c.baseChannels);
  const resolutions = levelResolutions(c);
  const attnDown = resolutions.map((r) => c.attentionResolutions.includes(r));
  const attnUp = resolutions.map((r) => (c.upAttentionResolutions ?? c.attentionResolutions).includes(r));
  const padding = c.downsamplePadding === 'symmetric' ? [1, 1, 1, 1] as const : 'same';

  let h = conv(b, 'conv_in', x, { out: c.baseChannels });
  const skips: Value[] = [h];
  chans.forEach((lc, l) => {
    for (let i = 0; i < c.numResBlocks; i++) {
      h = res(`down.${l}.res.${i}`, h, lc);
      if (attnDown[l] === true) h = attn(`down.${l}`, i, h, l);
      skips.push(h);
    }
    if (l < chans.length - 1) {
      h = downsample(b, `down.${l}.downsample`, h, padding);
      skips.push(h);
    }
  });
  const midCh = chans[chans.length - 1] as number;
  h = res('mid.res.0', h, midCh);
  if (c.midAttention !== false) h = attn('mid', 0, h, chans.length - 1);
  h = res('mid.res.1', h, midCh);
  for (let l = chans.length - 1; l >= 0; l--) {
    for (let i = 0; i <= c.numResBlocks; i++) {
      const s = skips.pop();
      if (s === undefined) throw new Error('skip stack underflow');
      h = res(`up.${l}.res.${i}`, b.concat([h, s], `up.${l}.res.${i}/concat`), chans[l] as number);
      if (attnUp[l] === true) h = attn(`up.${l}`, i, h, l);
    }
    if (l > 0) h = upsample(b, `up.${l}.upsample`, h);
  }
  h = norm(b, 'out.norm', h, { groups: c.groups, silu: true, ...eps });
  return { out: conv(b, 'out.conv', h, { out: c.outChannels, init: 'zeros' }) };
}

/** The U-Net as a network kind (trainer, checkpoints, ONNX). */
export const unetNetwork: NetworkDef<UNetConfig> = {
  kind: 'unet',
  title: 'U-Net',
  validate: validateUNetConfig,
  build: unetDescription,
};

/** The U-Net's graph for a config. */
export function unetGraph(config: UNetConfig): ReturnType<typeof networkGraph> {
  return networkGraph(unetNetwork, config);
}

/** Every parameter of the network: name, shape and initialiser, sorted by name. */
export function unetParamSpecs(config: UNetConfig): ParamSpec[] {
  return networkParamSpecs(unetNetwork, config);
}

/** Parameter count of a config without building it. */
export function unetParamCount(config: UNetConfig): number {
  return unetParamSpecs(config).reduce((s, p) => s + shapeSize(p.shape), 0);
}

/** One-line-per-part summary with the parameter count. */
export function describeUNet(config: UNetConfig): string {
  const specs = unetParamSpecs(config);
  const total = specs.reduce((s, p) => s + shapeSize(p.shape), 0);
  const groups = new Map<string, number>();
  for (const s of specs) {
    const parts = s.name.split('.');
    const key = parts[0] === 'down' || parts[0] === 'up' ? `${parts[0]}.${parts[1]}` : (parts[0] as string);
    groups.set(key, (groups.get(key) ?? 0) + shapeSize(s.shape));
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
