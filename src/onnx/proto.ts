/**
 * A minimal protocol-buffers writer and reader, and the handful of ONNX
 * messages (onnx/onnx.proto, proto2) the exporter needs. No dependency: the
 * wire format is small.
 *
 *   field key = (field number << 3) | wire type
 *   wire 0 = varint (int32/int64/enum; negative int64 as 10-byte two's complement)
 *   wire 1 = 64-bit fixed, wire 5 = 32-bit fixed (float, little-endian)
 *   wire 2 = length-delimited (string, bytes, sub-message, packed repeated)
 *
 * Field numbers used (onnx.proto):
 *   ModelProto:        ir_version 1, producer_name 2, producer_version 3, domain 4,
 *                      model_version 5, doc_string 6, graph 7, opset_import 8, metadata_props 14
 *   OperatorSetIdProto: domain 1, version 2
 *   StringStringEntryProto: key 1, value 2
 *   GraphProto:        node 1, name 2, initializer 5, doc_string 10, input 11, output 12, value_info 13
 *   NodeProto:         input 1, output 2, name 3, op_type 4, attribute 5, doc_string 6, domain 7
 *   AttributeProto:    name 1, f 2, i 3, s 4, t 5, floats 7, ints 8, strings 9, type 20
 *                      (type: FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7, STRINGS 8)
 *   TensorProto:       dims 1, data_type 2, float_data 4, int32_data 5, int64_data 7, name 8, raw_data 9
 *                      (data_type: FLOAT 1, INT32 6, INT64 7)
 *   ValueInfoProto:    name 1, type 2
 *   TypeProto:         tensor_type 1;  TypeProto.Tensor: elem_type 1, shape 2
 *   TensorShapeProto:  dim 1;  Dimension: dim_value 1, dim_param 2
 */
import { DiffuseError } from '../errors.js';

// ------------------------------------------------------------------ wire format

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

const utf8 = new TextEncoder();
const utf8d = new TextDecoder('utf-8', { fatal: true });

/** Appends protobuf fields to a growing byte buffer. */
export class ProtoWriter {
  private buf = new Uint8Array(256);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private rawVarint(v: bigint): void {
    // Negative values: 64-bit two's complement (10 bytes), as protobuf does for int64.
    let u = v < 0n ? BigInt.asUintN(64, v) : v;
    this.reserve(10);
    while (u >= 0x80n) {
      this.buf[this.len++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.len++] = Number(u);
  }

  private rawSmallVarint(v: number): void {
    if (v < 0 || v > 0x7fffffff) {
      this.rawVarint(BigInt(v));
      return;
    }
    this.reserve(5);
    while (v >= 0x80) {
      this.buf[this.len++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.len++] = v;
  }

  private key(field: number, wire: number): void {
    this.rawSmallVarint((field << 3) | wire);
  }

  /** int32 / int64 / enum / bool field. Integers beyond 2^53 must be bigint. */
  varint(field: number, value: number | bigint): this {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) {
      throw new DiffuseError(`protobuf field ${field}: ${value} is not a safe integer`);
    }
    this.key(field, WIRE_VARINT);
    if (typeof value === 'bigint') this.rawVarint(value);
    else this.rawSmallVarint(value);
    return this;
  }

  /** float field (32-bit fixed). */
  float(field: number, value: number): this {
    this.key(field, WIRE_I32);
    this.reserve(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, value, true);
    this.len += 4;
    return this;
  }

  /** bytes / sub-message field. */
  bytes(field: number, data: Uint8Array): this {
    this.key(field, WIRE_LEN);
    this.rawSmallVarint(data.length);
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, utf8.encode(s));
  }

  /** A sub-message, written by `body` into its own writer. */
  message(field: number, body: (w: ProtoWriter) => void): this {
    const w = new ProtoWriter();
    body(w);
    return this.bytes(field, w.finish());
  }

  /** packed repeated int64 / int32. */
  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    const w = new ProtoWriter();
    for (const v of values) {
      if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new DiffuseError(`protobuf field ${field}: ${v} is not a safe integer`);
      if (typeof v === 'bigint') w.rawVarint(v);
      else w.rawSmallVarint(v);
    }
    return this.bytes(field, w.finish());
  }

  /** packed repeated float. */
  packedFloats(field: number, values: readonly number[]): this {
    const data = new Uint8Array(values.length * 4);
    const dv = new DataView(data.buffer);
    values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return this.bytes(field, data);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** One decoded field: varints as bigint, fixed32 as the raw uint32 bits, fixed64 as bigint, length-delimited as bytes. */
export interface ProtoField {
  field: number;
  wire: number;
  varint?: bigint;
  fixed32?: number;
  fixed64?: bigint;
  bytes?: Uint8Array;
}

/** Decode one message level into its fields (in order). Throws DiffuseError on malformed input. */
export function decodeFields(data: Uint8Array, what = 'protobuf message'): ProtoField[] {
  const out: ProtoField[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (pos >= data.length) throw new DiffuseError(`${what}: truncated varint`);
      const b = data[pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
    throw new DiffuseError(`${what}: varint longer than 10 bytes`);
  };
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  while (pos < data.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (field === 0) throw new DiffuseError(`${what}: field number 0`);
    switch (wire) {
      case WIRE_VARINT:
        out.push({ field, wire, varint: varint() });
        break;
      case WIRE_I64:
        if (pos + 8 > data.length) throw new DiffuseError(`${what}: truncated fixed64`);
        out.push({ field, wire, fixed64: dv.getBigUint64(pos, true) });
        pos += 8;
        break;
      case WIRE_LEN: {
        const n = Number(varint());
        if (pos + n > data.length) throw new DiffuseError(`${what}: length ${n} runs past the end (${data.length - pos} bytes left)`);
        out.push({ field, wire, bytes: data.subarray(pos, pos + n) });
        pos += n;
        break;
      }
      case WIRE_I32:
        if (pos + 4 > data.length) throw new DiffuseError(`${what}: truncated fixed32`);
        out.push({ field, wire, fixed32: dv.getUint32(pos, true) });
        pos += 4;
        break;
      default:
        throw new DiffuseError(`${what}: unsupported wire type ${wire} (field ${field})`);
    }
  }
  return out;
}

/** Decode a packed (or single) run of varints. */
export function decodePackedVarints(data: Uint8Array): bigint[] {
  const out: bigint[] = [];
  let pos = 0;
  while (pos < data.length) {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= data.length) throw new DiffuseError('protobuf: truncated packed varint');
      const b = data[pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7n;
    }
    out.push(result);
  }
  return out;
}

const asInt64 = (v: bigint): number => Number(BigInt.asIntN(64, v));

function fixed32ToFloat(bits: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setUint32(0, bits, true);
  return dv.getFloat32(0, true);
}

// ------------------------------------------------------------------ ONNX messages

/** TensorProto.DataType values used here. */
export const OnnxDataType = { FLOAT: 1, INT32: 6, INT64: 7 } as const;
export type OnnxDataType = (typeof OnnxDataType)[keyof typeof OnnxDataType];

/** AttributeProto.AttributeType values used here. */
export const OnnxAttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

export type OnnxTensorData = Float32Array | Int32Array | BigInt64Array;

export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: OnnxDataType;
  /** Little-endian raw values (raw_data). */
  data: OnnxTensorData;
}

export type OnnxAttribute =
  | { name: string; type: 'float'; value: number }
  | { name: string; type: 'int'; value: number }
  | { name: string; type: 'string'; value: string }
  | { name: string; type: 'tensor'; value: OnnxTensor }
  | { name: string; type: 'floats'; value: number[] }
  | { name: string; type: 'ints'; value: number[] }
  | { name: string; type: 'strings'; value: string[] };

export interface OnnxNode {
  opType: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: OnnxAttribute[];
  domain?: string;
}

/** A dimension: a fixed size or a symbolic name (dynamic, e.g. 'N'). */
export type OnnxDim = number | string;

export interface OnnxValueInfo {
  name: string;
  elemType: OnnxDataType;
  dims: OnnxDim[];
}

export interface OnnxGraphProto {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  docString?: string;
}

export interface OnnxModelProto {
  irVersion: number;
  opsetImports: { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  docString?: string;
  graph: OnnxGraphProto;
  metadata: Record<string, string>;
}

function tensorBytes(data: OnnxTensorData): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  if (le) return bytes;
  // Big-endian host: swap every element to little-endian.
  const out = new Uint8Array(bytes.length);
  const w = data.BYTES_PER_ELEMENT;
  for (let i = 0; i < bytes.length; i += w) for (let j = 0; j < w; j++) out[i + j] = bytes[i + w - 1 - j] as number;
  return out;
}

function writeTensor(w: ProtoWriter, t: OnnxTensor): void {
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (n !== t.data.length) throw new DiffuseError(`ONNX tensor '${t.name}': ${t.data.length} values for dims [${t.dims.join(',')}]`);
  w.packedVarints(1, t.dims);
  w.varint(2, t.dataType);
  w.string(8, t.name);
  w.bytes(9, tensorBytes(t.data));
}

function writeAttribute(w: ProtoWriter, a: OnnxAttribute): void {
  w.string(1, a.name);
  switch (a.type) {
    case 'float': w.varint(20, OnnxAttrType.FLOAT).float(2, a.value); break;
    case 'int': w.varint(20, OnnxAttrType.INT).varint(3, a.value); break;
    case 'string': w.varint(20, OnnxAttrType.STRING).string(4, a.value); break;
    case 'tensor': w.varint(20, OnnxAttrType.TENSOR).message(5, (m) => writeTensor(m, a.value)); break;
    case 'floats': w.varint(20, OnnxAttrType.FLOATS).packedFloats(7, a.value); break;
    case 'ints': w.varint(20, OnnxAttrType.INTS).packedVarints(8, a.value); break;
    case 'strings':
      w.varint(20, OnnxAttrType.STRINGS);
      for (const s of a.value) w.string(9, s);
      break;
  }
}

function writeNode(w: ProtoWriter, n: OnnxNode): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attributes) w.message(5, (m) => writeAttribute(m, a));
  if (n.domain !== undefined && n.domain !== '') w.string(7, n.domain);
}

function writeValueInfo(w: ProtoWriter, v: OnnxValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) => type.message(1, (tt) => {
    tt.varint(1, v.elemType);
    tt.message(2, (shape) => {
      for (const d of v.dims) {
        shape.message(1, (dim) => {
          if (typeof d === 'number') dim.varint(1, d);
          else dim.string(2, d);
        });
      }
    });
  }));
}

function writeGraph(w: ProtoWriter, g: OnnxGraphProto): void {
  for (const n of g.nodes) w.message(1, (m) => writeNode(m, n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, (m) => writeTensor(m, t));
  if (g.docString !== undefined) w.string(10, g.docString);
  for (const v of g.inputs) w.message(11, (m) => writeValueInfo(m, v));
  for (const v of g.outputs) w.message(12, (m) => writeValueInfo(m, v));
}

/** Serialize an ONNX ModelProto. */
export function encodeOnnxModel(model: OnnxModelProto): Uint8Array {
  const w = new ProtoWriter();
  w.varint(1, model.irVersion);
  w.string(2, model.producerName);
  w.string(3, model.producerVersion);
  if (model.docString !== undefined) w.string(6, model.docString);
  w.message(7, (g) => writeGraph(g, model.graph));
  for (const o of model.opsetImports) {
    w.message(8, (m) => {
      if (o.domain !== '') m.string(1, o.domain);
      m.varint(2, o.version);
    });
  }
  for (const [k, v] of Object.entries(model.metadata)) w.message(14, (m) => m.string(1, k).string(2, v));
  return w.finish();
}

// ------------------------------------------------------------------ ONNX reader (tests, metadata)

const str = (f: ProtoField): string => (f.bytes === undefined ? '' : utf8d.decode(f.bytes));

function readTensor(data: Uint8Array): OnnxTensor {
  let dims: number[] = [];
  let dataType = 0;
  let name = '';
  let raw: Uint8Array | undefined;
  let floats: number[] = [];
  let ints: bigint[] = [];
  for (const f of decodeFields(data, 'TensorProto')) {
    if (f.field === 1) dims = dims.concat(f.bytes !== undefined ? decodePackedVarints(f.bytes).map(asInt64) : [asInt64(f.varint ?? 0n)]);
    else if (f.field === 2) dataType = Number(f.varint ?? 0n);
    else if (f.field === 8) name = str(f);
    else if (f.field === 9) raw = f.bytes;
    else if (f.field === 4 && f.bytes !== undefined) {
      const dv = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength);
      for (let i = 0; i + 4 <= f.bytes.length; i += 4) floats.push(dv.getFloat32(i, true));
    } else if (f.field === 4 && f.fixed32 !== undefined) floats.push(fixed32ToFloat(f.fixed32));
    else if ((f.field === 5 || f.field === 7) && f.bytes !== undefined) ints = ints.concat(decodePackedVarints(f.bytes));
    else if ((f.field === 5 || f.field === 7) && f.varint !== undefined) ints.push(f.varint);
  }
  const n = dims.reduce((a, b) => a * b, 1);
  let out: OnnxTensorData;
  if (dataType === OnnxDataType.FLOAT) {
    if (raw !== undefined) {
      const copy = raw.slice();
      out = new Float32Array(copy.buffer, 0, copy.length / 4);
    } else out = Float32Array.from(floats);
  } else if (dataType === OnnxDataType.INT64) {
    if (raw !== undefined) {
      const copy = raw.slice();
      out = new BigInt64Array(copy.buffer, 0, copy.length / 8);
    } else out = BigInt64Array.from(ints.map((v) => BigInt.asIntN(64, v)));
  } else if (dataType === OnnxDataType.INT32) {
    if (raw !== undefined) {
      const copy = raw.slice();
      out = new Int32Array(copy.buffer, 0, copy.length / 4);
    } else out = Int32Array.from(ints.map((v) => Number(BigInt.asIntN(32, v))));
  } else {
    throw new DiffuseError(`TensorProto '${name}': unsupported data_type ${dataType}`);
  }
  if (out.length !== n) throw new DiffuseError(`TensorProto '${name}': ${out.length} values for dims [${dims.join(',')}]`);
  return { name, dims, dataType: dataType as OnnxDataType, data: out };
}

function readAttribute(data: Uint8Array): OnnxAttribute {
  let name = '';
  let type = 0;
  let f = 0;
  let i = 0;
  let s = '';
  let t: OnnxTensor | undefined;
  let floats: number[] = [];
  let ints: number[] = [];
  const strings: string[] = [];
  for (const x of decodeFields(data, 'AttributeProto')) {
    switch (x.field) {
      case 1: name = str(x); break;
      case 20: type = Number(x.varint ?? 0n); break;
      case 2: f = fixed32ToFloat(x.fixed32 ?? 0); break;
      case 3: i = asInt64(x.varint ?? 0n); break;
      case 4: s = str(x); break;
      case 5: if (x.bytes !== undefined) t = readTensor(x.bytes); break;
      case 7:
        if (x.bytes !== undefined) {
          const dv = new DataView(x.bytes.buffer, x.bytes.byteOffset, x.bytes.byteLength);
          for (let k = 0; k + 4 <= x.bytes.length; k += 4) floats.push(dv.getFloat32(k, true));
        } else if (x.fixed32 !== undefined) floats = floats.concat([fixed32ToFloat(x.fixed32)]);
        break;
      case 8:
        ints = ints.concat(x.bytes !== undefined ? decodePackedVarints(x.bytes).map(asInt64) : [asInt64(x.varint ?? 0n)]);
        break;
      case 9: strings.push(str(x)); break;
      default: break;
    }
  }
  switch (type) {
    case OnnxAttrType.FLOAT: return { name, type: 'float', value: f };
    case OnnxAttrType.INT: return { name, type: 'int', value: i };
    case OnnxAttrType.STRING: return { name, type: 'string', value: s };
    case OnnxAttrType.TENSOR:
      if (t === undefined) throw new DiffuseError(`AttributeProto '${name}': tensor attribute without a tensor`);
      return { name, type: 'tensor', value: t };
    case OnnxAttrType.FLOATS: return { name, type: 'floats', value: floats };
    case OnnxAttrType.INTS: return { name, type: 'ints', value: ints };
    case OnnxAttrType.STRINGS: return { name, type: 'strings', value: strings };
    default: throw new DiffuseError(`AttributeProto '${name}': unsupported attribute type ${type}`);
  }
}

function readNode(data: Uint8Array): OnnxNode {
  const n: OnnxNode = { opType: '', name: '', inputs: [], outputs: [], attributes: [] };
  for (const f of decodeFields(data, 'NodeProto')) {
    if (f.field === 1) n.inputs.push(str(f));
    else if (f.field === 2) n.outputs.push(str(f));
    else if (f.field === 3) n.name = str(f);
    else if (f.field === 4) n.opType = str(f);
    else if (f.field === 5 && f.bytes !== undefined) n.attributes.push(readAttribute(f.bytes));
    else if (f.field === 7) n.domain = str(f);
  }
  return n;
}

function readValueInfo(data: Uint8Array): OnnxValueInfo {
  const v: OnnxValueInfo = { name: '', elemType: OnnxDataType.FLOAT, dims: [] };
  for (const f of decodeFields(data, 'ValueInfoProto')) {
    if (f.field === 1) v.name = str(f);
    else if (f.field === 2 && f.bytes !== undefined) {
      for (const tp of decodeFields(f.bytes, 'TypeProto')) {
        if (tp.field !== 1 || tp.bytes === undefined) continue;
        for (const tt of decodeFields(tp.bytes, 'TypeProto.Tensor')) {
          if (tt.field === 1) v.elemType = Number(tt.varint ?? 0n) as OnnxDataType;
          else if (tt.field === 2 && tt.bytes !== undefined) {
            for (const d of decodeFields(tt.bytes, 'TensorShapeProto')) {
              if (d.field !== 1 || d.bytes === undefined) continue;
              let dim: OnnxDim = '?';
              for (const x of decodeFields(d.bytes, 'Dimension')) {
                if (x.field === 1) dim = asInt64(x.varint ?? 0n);
                else if (x.field === 2) dim = str(x);
              }
              v.dims.push(dim);
            }
          }
        }
      }
    }
  }
  return v;
}

function readGraph(data: Uint8Array): OnnxGraphProto {
  const g: OnnxGraphProto = { name: '', nodes: [], initializers: [], inputs: [], outputs: [] };
  for (const f of decodeFields(data, 'GraphProto')) {
    if (f.bytes === undefined) continue;
    if (f.field === 1) g.nodes.push(readNode(f.bytes));
    else if (f.field === 2) g.name = str(f);
    else if (f.field === 5) g.initializers.push(readTensor(f.bytes));
    else if (f.field === 10) g.docString = str(f);
    else if (f.field === 11) g.inputs.push(readValueInfo(f.bytes));
    else if (f.field === 12) g.outputs.push(readValueInfo(f.bytes));
  }
  return g;
}

/** Parse an ONNX ModelProto (the subset this module writes). */
export function decodeOnnxModel(data: Uint8Array): OnnxModelProto {
  const m: OnnxModelProto = {
    irVersion: 0, opsetImports: [], producerName: '', producerVersion: '',
    graph: { name: '', nodes: [], initializers: [], inputs: [], outputs: [] }, metadata: {},
  };
  for (const f of decodeFields(data, 'ModelProto')) {
    if (f.field === 1) m.irVersion = asInt64(f.varint ?? 0n);
    else if (f.field === 2) m.producerName = str(f);
    else if (f.field === 3) m.producerVersion = str(f);
    else if (f.field === 6) m.docString = str(f);
    else if (f.field === 7 && f.bytes !== undefined) m.graph = readGraph(f.bytes);
    else if (f.field === 8 && f.bytes !== undefined) {
      let domain = '';
      let version = 0;
      for (const x of decodeFields(f.bytes, 'OperatorSetIdProto')) {
        if (x.field === 1) domain = str(x);
        else if (x.field === 2) version = asInt64(x.varint ?? 0n);
      }
      m.opsetImports.push({ domain, version });
    } else if (f.field === 14 && f.bytes !== undefined) {
      let k = '';
      let v = '';
      for (const x of decodeFields(f.bytes, 'StringStringEntryProto')) {
        if (x.field === 1) k = str(x);
        else if (x.field === 2) v = str(x);
      }
      m.metadata[k] = v;
    }
  }
  return m;
}

/** metadata_props key under which the exporter stores the UNetConfig as JSON. */
export const ONNX_UNET_CONFIG_KEY = 'diffuse.unet_config';
/** metadata_props key under which the exporter stores an autoencoder half's AutoencoderConfig as JSON. */
export const ONNX_AUTOENCODER_CONFIG_KEY = 'diffuse.autoencoder_config';

/**
 * Only the metadata_props of a model, without decoding the graph (cheap even
 * for large files: the graph field is skipped as one length-delimited blob).
 */
export function readOnnxMetadata(data: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of decodeFields(data, 'ModelProto')) {
    if (f.field !== 14 || f.bytes === undefined) continue;
    let k = '';
    let v = '';
    for (const x of decodeFields(f.bytes, 'StringStringEntryProto')) {
      if (x.field === 1) k = str(x);
      else if (x.field === 2) v = str(x);
    }
    out[k] = v;
  }
  return out;
}
