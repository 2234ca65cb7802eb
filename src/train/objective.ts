/**
 * What the trainer minimises, as part of the description: a network's graph
 * with loss nodes on top (net/graph.ts), so the tfjs interpreter computes the
 * loss and its gradient with the same machinery as the forward.
 *
 * A loss graph outputs `loss`, a sum over the batch's rows; the trainer
 * divides it by (full batch size) x `perRow`, so micro-batches and worker
 * shards add up to the mean over the whole batch.
 *
 * Adding a loss: a member of `LossSpec` and its case in `addLoss` (it may
 * declare its own inputs, e.g. a target or noise). Engine-free.
 */
import { DiffuseError } from '../errors.js';
import { type Graph, GraphBuilder, shapeSize, type Value } from '../net/graph.js';
import type { NetworkDef } from '../net/network.js';
import { RECON_LOSSES, type ReconLoss } from '../model/autoencoder-config.js';

/**
 * mse: mean over all elements of (outputs[output] - target)^2, target an input of the output's shape.
 * vae: an autoencoder's (outputs recon, mean, logvar), per image
 *        sum over pixels of |recon - target| (l1) or (recon - target)^2 (mse)
 *        + klWeight * KL(N(mean, e^logvar) || N(0, 1)),
 *        KL = 1/2 sum over latent elements of (mean^2 + e^logvar - 1 - logvar),
 *      divided by the pixels per image (so the reconstruction term is the
 *      per-pixel mean, and klWeight means what the latent diffusion paper's
 *      kl_weight means: both terms are per-image sums there).
 */
export type LossSpec =
  | { kind: 'mse'; output?: string }
  | { kind: 'vae'; recon: ReconLoss; klWeight: number };


export const LOSS_KINDS: readonly LossSpec['kind'][] = ['mse', 'vae'];

/** An output of the network by name, or a DiffuseError naming what the loss needs. */
function outputOf(outputs: Record<string, Value>, name: string, loss: string): Value {
  const v = outputs[name];
  if (v === undefined) throw new DiffuseError(`${loss} loss: the network has no output '${name}' (outputs: ${Object.keys(outputs).join(', ')})`);
  return v;
}

export interface TrainGraph {
  /** Inputs: the network's and the loss's; output: `loss` (a scalar sum over rows). */
  readonly graph: Graph;
  /** The loss is `loss / (n * perRow)` for a batch of n rows. */
  readonly perRow: number;
}

function addLoss(b: GraphBuilder, spec: LossSpec, outputs: Record<string, Value>): { sum: Value; perRow: number } {
  switch (spec.kind) {
    case 'mse': {
      const name = spec.output ?? 'out';
      const out = outputOf(outputs, name, 'mse');
      const target = b.input({ name: 'target', dtype: 'float32', shape: out.shape, doc: `regression target of '${name}'` });
      return { sum: b.sum(b.squaredDifference(out, target, 'loss/sqdiff'), 'loss'), perRow: shapeSize(out.shape.slice(1)) };
    }
    case 'vae': {
      if (!RECON_LOSSES.includes(spec.recon)) throw new DiffuseError(`vae loss: recon must be ${RECON_LOSSES.join(' or ')}, got '${String(spec.recon)}'`);
      if (!(Number.isFinite(spec.klWeight) && spec.klWeight >= 0)) throw new DiffuseError(`vae loss: klWeight must be a finite number >= 0, got ${String(spec.klWeight)}`);
      const recon = outputOf(outputs, 'recon', 'vae');
      const mean = outputOf(outputs, 'mean', 'vae');
      const logvar = outputOf(outputs, 'logvar', 'vae');
      const target = b.input({ name: 'target', dtype: 'float32', shape: recon.shape, doc: 'the images to reconstruct' });
      const err = spec.recon === 'l1'
        ? b.abs(b.add(recon, b.scale(target, -1, 'loss/neg_target'), 'loss/diff'), 'loss/abs')
        : b.squaredDifference(recon, target, 'loss/sqdiff');
      const reconSum = b.sum(err, 'loss/recon');
      if (spec.klWeight === 0) return { sum: reconSum, perRow: shapeSize(recon.shape.slice(1)) };
      // mean^2 + e^logvar + (-logvar - 1), summed, halved, weighted
      const kl = b.add(b.add(b.mul(mean, mean, 'loss/mean_sq'), b.exp(logvar, 'loss/var'), 'loss/kl_a'), b.scale(logvar, -1, 'loss/kl_b', -1), 'loss/kl_terms');
      const klSum = b.scale(b.sum(kl, 'loss/kl_sum'), 0.5 * spec.klWeight, 'loss/kl');
      return { sum: b.add(reconSum, klSum, 'loss'), perRow: shapeSize(recon.shape.slice(1)) };
    }
    default: {
      const never: never = spec;
      throw new DiffuseError(`unknown loss '${String((never as { kind: unknown }).kind)}' (known: ${LOSS_KINDS.join(', ')})`);
    }
  }
}

/** The network's description with the loss on top. */
export function trainGraph<C>(def: NetworkDef<C>, config: C, loss: LossSpec): TrainGraph {
  def.validate(config);
  const b = new GraphBuilder(def.title);
  const { sum, perRow } = addLoss(b, loss, def.build(b, config));
  b.output('loss', sum);
  return { graph: b.finish(), perRow };
}
