/**
 * The U-Net on tfjs: its description (model/unet-description.ts) run by the
 * tfjs interpreter (net/tfjs.ts) over named variables. The description API
 * (param specs, counts, summary) is re-exported here, so existing imports
 * keep working; import model/unet-description.ts directly to stay tfjs-free.
 */
import * as tf from '../engine/tf.js';
import { DiffuseError } from '../errors.js';
import { type UNetConfig } from './config.js';
import { unetGraph } from './unet-description.js';
import { initParams, type ParamSource } from '../net/params.js';
import { buildTfjsNetwork, type TfjsNetwork } from '../net/tfjs.js';

export { describeUNet, unetParamCount, unetParamSpecs, unetDescription, unetGraph, unetNetwork } from './unet-description.js';
export { initParam } from '../net/params.js';
export type { InitKind, ParamSpec } from '../net/graph.js';

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
  /** The description's tfjs interpreter holding those parameters (named inputs and outputs). */
  net: TfjsNetwork;
  apply(x: tf.Tensor4D, t: tf.Tensor1D, opts?: UNetApplyOptions): tf.Tensor4D;
  paramCount(): number;
  dispose(): void;
}

/** Build a U-Net with deterministic initial weights. */
export function createUNet(config: UNetConfig, seed: number): UNet {
  return buildUNet(config, initParams(unetGraph(config).params, seed));
}

/** Build a U-Net from given parameter values (names and shapes must match the config). */
export function buildUNet(config: UNetConfig, values: ParamSource): UNet {
  const c = config;
  const net = buildTfjsNetwork(unetGraph(config), values, 'U-Net');
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
    return tf.tidy(() => net.run(
      { x, t, classes: c.numClasses > 0 ? opts.classes : undefined, tokens: opts.tokens },
      { training: opts.training === true, dropoutSeed: opts.dropoutSeed ?? 0 },
    )['out'] as tf.Tensor4D);
  };
  return { config: c, params: net.params, net, apply, paramCount: net.paramCount, dispose: net.dispose };
}
