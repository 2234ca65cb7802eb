/**
 * IDX file reader (the MNIST / Fashion-MNIST container format).
 *
 * Layout: magic = 0x00 0x00 <type> <ndims>, then ndims big-endian uint32
 * dimension sizes, then the data (big-endian for multi-byte types).
 * Files may be gzipped (detected by the 1f 8b magic, not by the name).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DiffuseError } from '../errors.js';

export type IdxType = 'u8' | 'i8' | 'i16' | 'i32' | 'f32' | 'f64';

const TYPES: Record<number, { type: IdxType; bytes: number }> = {
  0x08: { type: 'u8', bytes: 1 },
  0x09: { type: 'i8', bytes: 1 },
  0x0b: { type: 'i16', bytes: 2 },
  0x0c: { type: 'i32', bytes: 4 },
  0x0d: { type: 'f32', bytes: 4 },
  0x0e: { type: 'f64', bytes: 8 },
};

export interface IdxArray {
  type: IdxType;
  dims: number[];
  /** u8 data as Uint8Array (no copy beyond decompression); other types converted to Float64Array. */
  data: Uint8Array | Float64Array;
}

/** Largest decompressed IDX we accept (guards against gzip bombs / absurd dims). */
const MAX_BYTES = 2 ** 31 - 1;

/** Parse an IDX buffer (raw or gzipped). `file` names the source in error messages. */
export function parseIdx(input: Uint8Array, file: string): IdxArray {
  let buf = input;
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf, { maxOutputLength: MAX_BYTES });
    } catch (e) {
      throw new DiffuseError(`IDX file ${file}: corrupt or truncated gzip data (${(e as Error).message})`, { cause: e });
    }
  }
  if (buf.length < 4) throw new DiffuseError(`IDX file ${file}: truncated (${buf.length} bytes, need at least a 4-byte magic number)`);
  if (buf[0] !== 0 || buf[1] !== 0) {
    const hex = Array.from(buf.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new DiffuseError(`IDX file ${file}: wrong magic number ${hex} (expected 00 00 <type> <ndims>)`);
  }
  const t = TYPES[buf[2]!];
  if (!t) throw new DiffuseError(`IDX file ${file}: unknown data type code 0x${buf[2]!.toString(16)} in magic number`);
  const ndims = buf[3]!;
  if (ndims === 0) throw new DiffuseError(`IDX file ${file}: magic number says 0 dimensions`);
  const headerLen = 4 + 4 * ndims;
  if (buf.length < headerLen) throw new DiffuseError(`IDX file ${file}: truncated header (${buf.length} bytes, ${ndims} dims need ${headerLen})`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d;
  }
  const need = count * t.bytes;
  if (need > MAX_BYTES) throw new DiffuseError(`IDX file ${file}: dims [${dims.join('×')}] are absurdly large (${need} bytes)`);
  const have = buf.length - headerLen;
  if (have < need) throw new DiffuseError(`IDX file ${file}: truncated: dims [${dims.join('×')}] need ${need} data bytes, file has ${have}`);
  if (have > need) throw new DiffuseError(`IDX file ${file}: ${have - need} trailing bytes after the data of dims [${dims.join('×')}]`);
  if (t.type === 'u8') return { type: 'u8', dims, data: buf.subarray(headerLen, headerLen + need) };
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const o = headerLen + i * t.bytes;
    switch (t.type) {
      case 'i8': out[i] = view.getInt8(o); break;
      case 'i16': out[i] = view.getInt16(o, false); break;
      case 'i32': out[i] = view.getInt32(o, false); break;
      case 'f32': out[i] = view.getFloat32(o, false); break;
      case 'f64': out[i] = view.getFloat64(o, false); break;
    }
  }
  return { type: t.type, dims, data: out };
}

/** Read and parse an IDX file (raw or gzipped). */
export function readIdx(file: string): IdxArray {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DiffuseError(`IDX file ${file}: cannot read (${code ?? (e as Error).message})`, { cause: e });
  }
  return parseIdx(buf, file);
}

/** Encode an IDX buffer (u8 only; used by tests and tools). */
export function encodeIdxU8(dims: number[], data: Uint8Array): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new DiffuseError(`encodeIdxU8: dims [${dims.join('×')}] need ${count} bytes, got ${data.length}`);
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
