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

/** mse: mean over all elements of (outputs[output] - target)^2, target an input of the output's shape. */
export type LossSpec = { kind: 'mse'; output?: string };

export const LOSS_KINDS: readonly LossSpec['kind'][] = ['mse'];

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
      const out = outputs[name];
      if (out === undefined) throw new DiffuseError(`mse loss: the network has no output '${name}' (outputs: ${Object.keys(outputs).join(', ')})`);
      const target = b.input({ name: 'target', dtype: 'float32', shape: out.shape, doc: `regression target of '${name}'` });
      return { sum: b.sum(b.squaredDifference(out, target, 'loss/sqdiff'), 'loss'), perRow: shapeSize(out.shape.slice(1)) };
    }
    default: {
      const never: never = spec.kind;
      throw new DiffuseError(`unknown loss '${String(never)}' (known: ${LOSS_KINDS.join(', ')})`);
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
