/**
 * A small ONNX graph builder: initializers, nodes with typed attributes,
 * graph inputs/outputs with (possibly symbolic) shapes, and unique value
 * names. `toBytes()` serializes a ModelProto with proto.ts.
 */
import { DiffuseError } from '../errors.js';
import {
  encodeOnnxModel, OnnxDataType, type OnnxAttribute, type OnnxDim, type OnnxNode, type OnnxTensor, type OnnxTensorData, type OnnxValueInfo,
} from './proto.js';

/** Attribute values, tagged so that 1 (int) and 1.0 (float) stay distinct. */
export const attr = {
  int: (value: number): AttrValue => ({ type: 'int', value }),
  ints: (value: readonly number[]): AttrValue => ({ type: 'ints', value: [...value] }),
  float: (value: number): AttrValue => ({ type: 'float', value }),
  floats: (value: readonly number[]): AttrValue => ({ type: 'floats', value: [...value] }),
  string: (value: string): AttrValue => ({ type: 'string', value }),
};

export type AttrValue =
  | { type: 'int'; value: number }
  | { type: 'ints'; value: number[] }
  | { type: 'float'; value: number }
  | { type: 'floats'; value: number[] }
  | { type: 'string'; value: string };

/** Lowest IR version that carries a given default-domain opset (onnx/helper.py's table). */
export function irVersionForOpset(opset: number): number {
  if (opset <= 8) return 3;
  if (opset <= 9) return 4;
  if (opset <= 10) return 5;
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

export interface ModelOptions {
  opset: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

export class OnnxGraph {
  private readonly nodes: OnnxNode[] = [];
  private readonly initializers: OnnxTensor[] = [];
  private readonly inputs: OnnxValueInfo[] = [];
  private readonly outputs: OnnxValueInfo[] = [];
  private readonly names = new Set<string>();
  private readonly reserved = new Set<string>();
  private readonly constCache = new Map<string, string>();
  private readonly counters = new Map<string, number>();

  constructor(readonly name: string) {}

  /** A fresh value/node name starting with `hint` (hint itself if still free). */
  unique(hint: string): string {
    const base = hint.length > 0 ? hint : 'v';
    if (!this.names.has(base)) {
      this.names.add(base);
      return base;
    }
    let k = this.counters.get(base) ?? 1;
    let name = `${base}_${k}`;
    while (this.names.has(name)) name = `${base}_${++k}`;
    this.counters.set(base, k + 1);
    this.names.add(name);
    return name;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new DiffuseError(`ONNX graph '${this.name}': name '${name}' is already used`);
    this.names.add(name);
    return name;
  }

  /** Keep an exact name free for a later addOutput(..., as = name); other values get other names. */
  reserve(name: string): void {
    this.claim(name);
    this.reserved.add(name);
  }

  /** A graph input with an exact name. */
  addInput(name: string, elemType: OnnxDataType, dims: OnnxDim[]): string {
    this.inputs.push({ name: this.claim(name), elemType, dims: [...dims] });
    return name;
  }

  /** Declare an existing value as a graph output (renamed with Identity when `as` differs). */
  addOutput(value: string, elemType: OnnxDataType, dims: OnnxDim[], as: string = value): string {
    let v = value;
    if (as !== value) {
      if (!this.reserved.delete(as)) this.claim(as);
      this.nodes.push({ opType: 'Identity', name: this.unique(`${as}/Identity`), inputs: [value], outputs: [as], attributes: [] });
      v = as;
    }
    this.outputs.push({ name: v, elemType, dims: [...dims] });
    return v;
  }

  /** A constant tensor stored in the model; returns its (unique) name. */
  addInitializer(hint: string, data: OnnxTensorData, dims: readonly number[]): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new DiffuseError(`ONNX initializer '${hint}': ${data.length} values for dims [${dims.join(',')}]`);
    const dataType = data instanceof Float32Array ? OnnxDataType.FLOAT : data instanceof BigInt64Array ? OnnxDataType.INT64 : OnnxDataType.INT32;
    const name = this.unique(hint);
    this.initializers.push({ name, dims: [...dims], dataType, data });
    return name;
  }

  /** A small shared float32 constant (deduplicated by value). */
  constFloat(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const key = `f:${dims.join(',')}:${values.join(',')}`;
    let name = this.constCache.get(key);
    if (name === undefined) {
      name = this.addInitializer('const_f', Float32Array.from(values), dims);
      this.constCache.set(key, name);
    }
    return name;
  }

  /** A small shared int64 constant (shapes, axes; deduplicated by value). */
  constInt64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const key = `i:${dims.join(',')}:${values.join(',')}`;
    let name = this.constCache.get(key);
    if (name === undefined) {
      name = this.addInitializer('const_i', BigInt64Array.from(values.map((v) => BigInt(v))), dims);
      this.constCache.set(key, name);
    }
    return name;
  }

  /**
   * Add a node; returns its output names (`outputs` of them, named after `hint`).
   * An empty string in `inputs` marks an omitted optional input.
   */
  nodeN(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, opts: { outputs?: number; hint?: string } = {}): string[] {
    const hint = opts.hint ?? opType;
    const count = opts.outputs ?? 1;
    const outputs = Array.from({ length: count }, (_, i) => this.unique(count === 1 ? hint : `${hint}:${i}`));
    const attributes: OnnxAttribute[] = Object.entries(attrs).map(([name, a]) => ({ name, ...a }));
    this.nodes.push({ opType, name: this.unique(`${hint}/${opType}`), inputs: [...inputs], outputs, attributes });
    return outputs;
  }

  /** Add a single-output node; returns the output name. */
  node(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, hint?: string): string {
    return this.nodeN(opType, inputs, attrs, hint === undefined ? {} : { hint })[0] as string;
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  /** Serialize as an ONNX ModelProto. */
  toBytes(opts: ModelOptions): Uint8Array {
    if (this.outputs.length === 0) throw new DiffuseError(`ONNX graph '${this.name}' has no outputs`);
    return encodeOnnxModel({
      irVersion: irVersionForOpset(opts.opset),
      opsetImports: [{ domain: '', version: opts.opset }],
      producerName: opts.producerName ?? 'diffuse-ts',
      producerVersion: opts.producerVersion ?? '0.1.0',
      ...(opts.docString !== undefined ? { docString: opts.docString } : {}),
      graph: { name: this.name, nodes: this.nodes, initializers: this.initializers, inputs: this.inputs, outputs: this.outputs },
      metadata: opts.metadata ?? {},
    });
  }
}
