/**
 * The autoencoder, described once (net/graph.ts): a KL-regularised
 * convolutional autoencoder in the style of diffusers' AutoencoderKL, from the
 * project's blocks (net/blocks.ts). Its parameter list, tfjs forward and ONNX
 * graph all follow from the two walks below. Engine-free.
 *
 *   encoder: conv_in, per level numResBlocks x ResBlock (no time embedding,
 *            GroupNorm eps 1e-6) and, between levels, a stride-2 conv with
 *            AutoencoderKL's asymmetric padding [0,1,0,1]; middle ResBlock,
 *            [self-attention], ResBlock; GroupNorm+SiLU, conv to 2 x latent
 *            channels, 1x1 quant_conv; split into mean and log-variance
 *   decoder: 1x1 post_quant_conv, conv_in, the middle, per level (deepest
 *            first) numResBlocks + 1 ResBlocks and, between levels, nearest x2
 *            + conv; GroupNorm+SiLU, conv to the image channels
 *
 * Three graphs share these walks, and so their parameter names:
 *   'autoencoder'          x, noise -> recon, mean, logvar (training: z = mean + exp(logvar/2) * noise)
 *   'autoencoder-encoder'  x -> mean, logvar
 *   'autoencoder-decoder'  z -> image
 * The reparameterisation noise is a graph input, so a training step is a
 * function of its batch (deterministic, resumable).
 */
import { attentionBlock, conv, downsample, norm, resBlock, upsample } from '../net/blocks.js';
import { BATCH, type GraphBuilder, type ParamSpec, shapeSize, type Value } from '../net/graph.js';
import { type NetworkDef, networkGraph } from '../net/network.js';
import { type AutoencoderConfig, downsamplingFactor, latentShape, validateAutoencoderConfig } from './autoencoder-config.js';

/** AutoencoderKL's GroupNorm epsilon. */
const EPS = 1e-6;
/** AutoencoderKL's downsampling pad: none before, one after (rows and columns). */
const DOWN_PAD = [0, 1, 0, 1] as const;

function channels(c: AutoencoderConfig): number[] {
  return c.channelMults.map((m) => m * c.baseChannels);
}

function middle(b: GraphBuilder, name: string, h: Value, c: AutoencoderConfig): Value {
  const res = (n: string, x: Value): Value => resBlock(b, `${name}.${n}`, x, undefined, { out: x.shape[3] as number, groups: c.groups, dropout: 0, eps: EPS });
  h = res('res.0', h);
  if (c.midAttention) h = attentionBlock(b, `${name}.attn`, h, { groups: c.groups, eps: EPS });
  return res('res.1', h);
}

/** The encoder walk: image [N,S,S,C] -> mean and log-variance [N,s,s,L]. */
export function encoderDescription(b: GraphBuilder, c: AutoencoderConfig, x: Value): { mean: Value; logvar: Value } {
  const chans = channels(c);
  let h = conv(b, 'encoder.conv_in', x, { out: chans[0] as number });
  chans.forEach((ch, l) => {
    for (let i = 0; i < c.numResBlocks; i++) h = resBlock(b, `encoder.down.${l}.res.${i}`, h, undefined, { out: ch, groups: c.groups, dropout: 0, eps: EPS });
    if (l < chans.length - 1) h = downsample(b, `encoder.down.${l}.downsample`, h, DOWN_PAD);
  });
  h = middle(b, 'encoder.mid', h, c);
  h = norm(b, 'encoder.out.norm', h, { groups: c.groups, eps: EPS, silu: true });
  h = conv(b, 'encoder.out.conv', h, { out: 2 * c.latentChannels });
  h = conv(b, 'encoder.quant_conv', h, { out: 2 * c.latentChannels, k: 1 });
  const [mean, logvar] = b.split(h, [c.latentChannels, c.latentChannels], 'encoder/moments') as [Value, Value];
  return { mean, logvar };
}

/** The decoder walk: latent [N,s,s,L] -> image [N,S,S,C]. */
export function decoderDescription(b: GraphBuilder, c: AutoencoderConfig, z: Value): Value {
  const chans = channels(c);
  let h = conv(b, 'decoder.post_quant_conv', z, { out: c.latentChannels, k: 1 });
  h = conv(b, 'decoder.conv_in', h, { out: chans[chans.length - 1] as number });
  h = middle(b, 'decoder.mid', h, c);
  for (let l = chans.length - 1; l >= 0; l--) {
    for (let i = 0; i <= c.numResBlocks; i++) h = resBlock(b, `decoder.up.${l}.res.${i}`, h, undefined, { out: chans[l] as number, groups: c.groups, dropout: 0, eps: EPS });
    if (l > 0) h = upsample(b, `decoder.up.${l}.upsample`, h);
  }
  h = norm(b, 'decoder.out.norm', h, { groups: c.groups, eps: EPS, silu: true });
  return conv(b, 'decoder.out.conv', h, { out: c.channels });
}

function imageInput(b: GraphBuilder, c: AutoencoderConfig): Value {
  return b.input({ name: 'x', dtype: 'float32', shape: [BATCH, c.imageSize, c.imageSize, c.channels], doc: 'images in [-1, 1], NHWC' });
}

function latentInput(b: GraphBuilder, c: AutoencoderConfig, name: string, doc: string): Value {
  return b.input({ name, dtype: 'float32', shape: [BATCH, ...latentShape(c)], doc });
}

/** The training forward: x, noise -> recon, mean, logvar with z = mean + exp(logvar / 2) * noise. */
export function autoencoderDescription(b: GraphBuilder, c: AutoencoderConfig): { recon: Value; mean: Value; logvar: Value } {
  const x = imageInput(b, c);
  const noise = latentInput(b, c, 'noise', 'standard normal noise of the posterior sample (reparameterisation)');
  const { mean, logvar } = encoderDescription(b, c, x);
  const std = b.exp(b.scale(logvar, 0.5, 'posterior/half_logvar'), 'posterior/std');
  const z = b.add(mean, b.mul(std, noise, 'posterior/scaled_noise'), 'posterior/z');
  return { recon: decoderDescription(b, c, z), mean, logvar };
}

/** The autoencoder as a network kind (trainer, checkpoints): the training forward. */
export const autoencoderNetwork: NetworkDef<AutoencoderConfig> = {
  kind: 'autoencoder',
  title: 'autoencoder',
  validate: validateAutoencoderConfig,
  build: autoencoderDescription,
};

/** The encoder alone: x -> mean, logvar (the posterior of each image). */
export const encoderNetwork: NetworkDef<AutoencoderConfig> = {
  kind: 'autoencoder-encoder',
  title: 'encoder',
  validate: validateAutoencoderConfig,
  build: (b, c) => encoderDescription(b, c, imageInput(b, c)),
};

/** The decoder alone: z -> image (what sampling a latent model runs after the sampler). */
export const decoderNetwork: NetworkDef<AutoencoderConfig> = {
  kind: 'autoencoder-decoder',
  title: 'decoder',
  validate: validateAutoencoderConfig,
  build: (b, c) => ({ image: decoderDescription(b, c, latentInput(b, c, 'z', 'latents (unscaled), NHWC')) }),
};

/** Every parameter of the autoencoder (encoder and decoder), sorted by name. */
export function autoencoderParamSpecs(c: AutoencoderConfig): ParamSpec[] {
  return networkGraph(autoencoderNetwork, c).params.map((s) => ({ ...s, shape: [...s.shape] }));
}

/** A summary with the parameter counts of the encoder and the decoder. */
export function describeAutoencoder(c: AutoencoderConfig): string {
  const specs = autoencoderParamSpecs(c);
  const count = (prefix: string): number => specs.filter((s) => s.name.startsWith(prefix)).reduce((n, s) => n + shapeSize(s.shape), 0);
  const enc = count('encoder.'), dec = count('decoder.');
  const [s, , l] = latentShape(c);
  return [
    `autoencoder ${c.imageSize}x${c.imageSize}x${c.channels} -> ${s}x${s}x${l} (f = ${downsamplingFactor(c)}), channels [${channels(c).join(',')}], ` +
      `${c.numResBlocks} res block(s)/level (decoder ${c.numResBlocks + 1}), ${c.midAttention ? 'attention in the middle' : 'no attention'}, groups ${c.groups}`,
    `  encoder      ${enc.toLocaleString('en-US')}`,
    `  decoder      ${dec.toLocaleString('en-US')}`,
    `  total params: ${(enc + dec).toLocaleString('en-US')} (${((enc + dec) / 1e6).toFixed(2)}M)`,
  ].join('\n');
}
