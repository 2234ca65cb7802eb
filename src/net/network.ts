/**
 * A network kind: its typed config and its one description. Checkpoints,
 * the trainer, the tfjs model and the ONNX export take any `NetworkDef`.
 * Engine-free.
 */
import { type Graph, GraphBuilder, type ParamSpec, type Value } from './graph.js';

export interface NetworkDef<C> {
  /** Stable name ('unet'); worker threads find the definition by it (model/networks.ts). */
  readonly kind: string;
  /** Human name for messages ('U-Net'). */
  readonly title: string;
  /** Throws a DiffuseError naming the first bad field; returns the config. */
  validate(config: C): C;
  /** Declare the inputs, walk the blocks, return the named outputs. */
  build(b: GraphBuilder, config: C): Record<string, Value>;
}

/** Build the graph of a network: validated config, its description, its outputs declared. */
export function networkGraph<C>(def: NetworkDef<C>, config: C): Graph {
  def.validate(config);
  const b = new GraphBuilder(def.title);
  for (const [name, v] of Object.entries(def.build(b, config))) b.output(name, v);
  return b.finish();
}

/** Every parameter of a network: name, shape and initialiser, sorted by name. */
export function networkParamSpecs<C>(def: NetworkDef<C>, config: C): ParamSpec[] {
  return networkGraph(def, config).params.map((s) => ({ ...s, shape: [...s.shape] }));
}
