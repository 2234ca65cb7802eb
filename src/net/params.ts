/**
 * Parameters of a described network (net/graph.ts): deterministic initial
 * values by name and seed, the one check of given weights against the specs,
 * and the flat layout the trainer keeps them in. Engine-free.
 */
import { DiffuseError } from '../errors.js';
import { hash32, mulberry32 } from '../rng.js';
import type { Weights } from '../tensor.js';
import { type ParamSpec, shapeSize } from './graph.js';

/** Deterministic initial values of one parameter (depends on seed and name only). */
export function initParam(spec: ParamSpec, seed: number): Float32Array {
  const n = shapeSize(spec.shape);
  const out = new Float32Array(n);
  const init = spec.init;
  if (init === 'zeros') return out;
  if (init === 'ones') return out.fill(1);
  const rnd = mulberry32(hash32(spec.name) ^ Math.imul(seed >>> 0, 0x9e3779b1));
  if ('fanIn' in init) {
    const bound = Math.sqrt(3 / init.fanIn); // variance 1/fanIn
    for (let i = 0; i < n; i++) out[i] = (rnd() * 2 - 1) * bound;
  } else {
    for (let i = 0; i < n; i += 2) {
      const u = Math.max(rnd(), 1e-12), v = rnd();
      const r = Math.sqrt(-2 * Math.log(u)) * init.normal;
      out[i] = r * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
    }
  }
  return out;
}

/** Initial values of every parameter, by name. */
export function initParams(specs: readonly ParamSpec[], seed: number): Map<string, Float32Array> {
  return new Map(specs.map((s) => [s.name, initParam(s, seed)]));
}

/** Total number of parameter values. */
export function paramCount(specs: readonly ParamSpec[]): number {
  return specs.reduce((s, p) => s + shapeSize(p.shape), 0);
}

/** Where given weights come from: a name -> values map, or named tensors. */
export type ParamSource = Map<string, Float32Array> | Weights;

/** The values of one parameter in a source (undefined when absent). */
export function sourceValues(values: ParamSource, name: string): Float32Array | undefined {
  return values instanceof Map ? values.get(name) : values[name]?.data;
}

export interface CheckOptions {
  /** Prefix of every message, e.g. 'exportUNetToOnnx: U-Net' or 'U-Net'. */
  what: string;
  /** Also require the shapes of named tensors to match (default true). */
  shapes?: boolean;
  /** Reject names that are not parameters (default false). */
  noExtra?: boolean;
  /** Reject NaN and infinities (default false). */
  finite?: boolean;
}

/**
 * Checks given weights against the specs: every parameter present with the
 * right number of Float32 values (and shape, for named tensors); throws a
 * DiffuseError naming the first bad one.
 */
export function checkParams(specs: readonly ParamSpec[], values: ParamSource, o: CheckOptions): void {
  if (typeof values !== 'object' || values === null) throw new DiffuseError(`${o.what} parameters must be an object of {shape, data}`);
  for (const s of specs) {
    const data = sourceValues(values, s.name);
    if (data === undefined) throw new DiffuseError(`${o.what} parameter '${s.name}' is missing`);
    if (!(data instanceof Float32Array)) throw new DiffuseError(`${o.what} parameter '${s.name}' data must be a Float32Array`);
    const want = s.shape.join(',');
    if (!(values instanceof Map) && (o.shapes ?? true)) {
      const shape = values[s.name]?.shape;
      if (!Array.isArray(shape) || shape.join(',') !== want) {
        throw new DiffuseError(`${o.what} parameter '${s.name}' has shape [${String(shape)}], expected [${want}]`);
      }
    }
    const n = shapeSize(s.shape);
    if (data.length !== n) throw new DiffuseError(`${o.what} parameter '${s.name}' has ${data.length} values, expected ${n} for shape [${want}]`);
    if (o.finite === true) {
      for (let i = 0; i < n; i++) {
        if (!Number.isFinite(data[i] as number)) throw new DiffuseError(`${o.what} parameter '${s.name}' has a non-finite value at index ${i}`);
      }
    }
  }
  if (o.noExtra === true) {
    const known = new Set(specs.map((s) => s.name));
    for (const name of values instanceof Map ? values.keys() : Object.keys(values)) {
      if (!known.has(name)) throw new DiffuseError(`${o.what}: unexpected parameter '${name}' (not part of this network)`);
    }
  }
}

/** Parameters laid end to end in one Float32Array, in spec (name) order. */
export interface ParamLayout {
  names: string[];
  shapes: number[][];
  offsets: number[];
  sizes: number[];
  total: number;
}

export function paramLayout(specs: readonly ParamSpec[]): ParamLayout {
  const names: string[] = [], shapes: number[][] = [], offsets: number[] = [], sizes: number[] = [];
  let total = 0;
  for (const s of specs) {
    const n = shapeSize(s.shape);
    names.push(s.name); shapes.push([...s.shape]); offsets.push(total); sizes.push(n);
    total += n;
  }
  return { names, shapes, offsets, sizes, total };
}
