/**
 * Our own reader / writer of the safetensors format
 * (https://github.com/huggingface/safetensors):
 *
 *   [8 bytes: little-endian u64 N] [N bytes: JSON header] [raw tensor bytes]
 *
 * The header maps tensor names to {dtype, shape, data_offsets: [begin, end]}
 * (offsets relative to the start of the data section) and may hold a
 * `__metadata__` map of string → string. Data is little-endian, C order.
 *
 * Writer: F32 only; tensors sorted by name and packed back to back; the
 * header is padded with spaces so the data section starts 8-byte aligned.
 * Reader: F32, F16, BF16, F64, I64, I32, I16, I8, U8 and BOOL, all converted
 * to Float32Array. It rejects — with a DiffuseError naming the file and the
 * problem — a short file, a header length larger than the file or > 100 MB,
 * invalid JSON, unknown dtypes, bad shapes, offsets out of range, overlapping
 * or leaving holes, shape × dtype size ≠ byte length, and non-string metadata.
 */
import { closeSync } from 'node:fs';
import { DiffuseError } from '../errors.js';
import { writeFileAtomic, writeFileSynced } from './atomic.js';
import { openRegularSync, readExactSync } from './files.js';
import type { F32Tensor, Weights } from '../tensor.js';

export type SafeDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_SIZE: Record<SafeDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** Largest header we accept. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface SafetensorsFile {
  tensors: Record<string, F32Tensor & { dtype: SafeDtype }>;
  metadata: Record<string, string>;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Serialize tensors (F32) and string metadata to safetensors bytes. */
export function encodeSafetensors(tensors: Weights, metadata: Record<string, string> = {}, source = 'safetensors'): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new DiffuseError(`${source}: metadata "${k}" must be a string, got ${typeof v}`);
    }
    header['__metadata__'] = { ...metadata };
  }
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__' || name.length === 0) throw new DiffuseError(`${source}: invalid tensor name "${name}"`);
    const t = tensors[name]!;
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new DiffuseError(`${source}: tensor "${name}" has invalid shape ${JSON.stringify(t.shape)}`);
    }
    if (!(t.data instanceof Float32Array)) throw new DiffuseError(`${source}: tensor "${name}" data must be a Float32Array`);
    if (numel(t.shape) !== t.data.length) {
      throw new DiffuseError(`${source}: tensor "${name}" shape [${t.shape.join(',')}] needs ${numel(t.shape)} values, data has ${t.data.length}`);
    }
    const bytes = t.data.length * 4;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  let hbytes = Buffer.from(json, 'utf8');
  const pad = (8 - ((8 + hbytes.length) % 8)) % 8;
  if (pad > 0) {
    json += ' '.repeat(pad);
    hbytes = Buffer.from(json, 'utf8');
  }
  const out = new Uint8Array(8 + hbytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(hbytes.length), true);
  out.set(hbytes, 8);
  let pos = 8 + hbytes.length;
  for (const name of names) {
    const d = tensors[name]!.data;
    if (LITTLE_ENDIAN_HOST) {
      out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    } else {
      for (let i = 0; i < d.length; i++) view.setFloat32(pos + 4 * i, d[i]!, true);
    }
    pos += d.byteLength;
  }
  return out;
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function decodeData(bytes: Uint8Array, dtype: SafeDtype, n: number): Float32Array {
  const out = new Float32Array(n);
  if (dtype === 'F32' && LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32': for (let i = 0; i < n; i++) out[i] = v.getFloat32(4 * i, true); break;
    case 'F64': for (let i = 0; i < n; i++) out[i] = v.getFloat64(8 * i, true); break;
    case 'F16': for (let i = 0; i < n; i++) out[i] = f16ToF32(v.getUint16(2 * i, true)); break;
    case 'BF16': {
      const tmp = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < n; i++) { tmp.setUint32(0, v.getUint16(2 * i, true) << 16, true); out[i] = tmp.getFloat32(0, true); }
      break;
    }
    case 'I64': for (let i = 0; i < n; i++) out[i] = Number(v.getBigInt64(8 * i, true)); break;
    case 'I32': for (let i = 0; i < n; i++) out[i] = v.getInt32(4 * i, true); break;
    case 'I16': for (let i = 0; i < n; i++) out[i] = v.getInt16(2 * i, true); break;
    case 'I8': for (let i = 0; i < n; i++) out[i] = v.getInt8(i); break;
    case 'U8': case 'BOOL': for (let i = 0; i < n; i++) out[i] = v.getUint8(i); break;
  }
  return out;
}

/** Parse safetensors bytes; `source` (usually the file path) is named in every error. */
export function decodeSafetensors(buf: Uint8Array, source: string): SafetensorsFile {
  if (buf.length < 8) throw new DiffuseError(`${source}: not a safetensors file: ${buf.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) throw new DiffuseError(`${source}: safetensors header length ${n64} bytes is absurd (> ${MAX_HEADER_BYTES})`);
  const n = Number(n64);
  if (8 + n > buf.length) throw new DiffuseError(`${source}: safetensors header length ${n} is larger than the file (${buf.length} bytes; truncated?)`);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 8, n).toString('utf8'));
  } catch (e) {
    throw new DiffuseError(`${source}: safetensors header is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new DiffuseError(`${source}: safetensors header must be a JSON object`);
  }
  const dataLen = buf.length - 8 - n;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafeDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DiffuseError(`${source}: __metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new DiffuseError(`${source}: __metadata__ "${k}" is ${v === null ? 'null' : typeof v}, must be a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DiffuseError(`${source}: tensor "${name}" entry must be an object`);
    const e = raw as Record<string, unknown>;
    const dtype = e['dtype'];
    if (typeof dtype !== 'string' || !(dtype in DTYPE_SIZE)) {
      throw new DiffuseError(`${source}: tensor "${name}" has unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_SIZE).join(', ')})`);
    }
    const shape = e['shape'];
    if (!Array.isArray(shape) || !shape.every((d): d is number => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
      throw new DiffuseError(`${source}: tensor "${name}" has invalid shape ${JSON.stringify(shape)}`);
    }
    const offs = e['data_offsets'];
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d): d is number => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
      throw new DiffuseError(`${source}: tensor "${name}" has invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end) throw new DiffuseError(`${source}: tensor "${name}" data_offsets [${begin}, ${end}] end before begin`);
    if (end > dataLen) throw new DiffuseError(`${source}: tensor "${name}" data_offsets [${begin}, ${end}] out of range: data section has ${dataLen} bytes (truncated?)`);
    const want = numel(shape) * DTYPE_SIZE[dtype as SafeDtype];
    if (want !== end - begin) {
      throw new DiffuseError(`${source}: tensor "${name}" shape [${shape.join(',')}] × ${dtype} (${DTYPE_SIZE[dtype as SafeDtype]} bytes) = ${want} bytes, but data_offsets span ${end - begin}`);
    }
    entries.push({ name, dtype: dtype as SafeDtype, shape, begin, end });
  }
  const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const t of sorted) {
    if (t.begin < pos) throw new DiffuseError(`${source}: tensor "${t.name}" data_offsets [${t.begin}, ${t.end}] overlap the previous tensor (ends at ${pos})`);
    if (t.begin > pos) throw new DiffuseError(`${source}: gap of ${t.begin - pos} bytes before tensor "${t.name}": data_offsets must cover the data exactly`);
    pos = t.end;
  }
  if (pos !== dataLen) throw new DiffuseError(`${source}: tensors cover ${pos} bytes but the data section has ${dataLen}: data_offsets must cover it exactly`);
  const tensors: SafetensorsFile['tensors'] = {};
  const dataStart = 8 + n;
  for (const t of entries) {
    const bytes = buf.subarray(dataStart + t.begin, dataStart + t.end);
    tensors[t.name] = { dtype: t.dtype, shape: t.shape, data: decodeData(bytes, t.dtype, numel(t.shape)) };
  }
  return { tensors, metadata };
}

/**
 * Read and parse a .safetensors file: a regular file only (never a FIFO or a
 * device), and the header is checked against the file size before the data
 * is read, so no more is ever read than the header describes.
 */
export function readSafetensors(file: string): SafetensorsFile {
  const { fd, size } = openRegularSync(file, 'safetensors file');
  try {
    if (size < 8) throw new DiffuseError(`${file}: not a safetensors file: ${size} bytes, shorter than the 8-byte header length`);
    const n64 = readExactSync(fd, 8, 0, file, 'safetensors file').readBigUInt64LE(0);
    if (n64 > BigInt(MAX_HEADER_BYTES)) throw new DiffuseError(`${file}: safetensors header length ${n64} bytes is absurd (> ${MAX_HEADER_BYTES})`);
    const n = Number(n64);
    if (8 + n > size) throw new DiffuseError(`${file}: safetensors header length ${n} is larger than the file (${size} bytes; truncated?)`);
    const head = readExactSync(fd, 8 + n, 0, file, 'safetensors file');
    const described = describedBytes(head.subarray(8));
    if (described !== undefined && 8 + n + described !== size) {
      throw new DiffuseError(`${file}: the safetensors header describes ${8 + n + described} bytes but the file has ${size}${8 + n + described > size ? ' (truncated?)' : ''}`);
    }
    return decodeSafetensors(readExactSync(fd, size, 0, file, 'safetensors file'), file);
  } finally {
    closeSync(fd);
  }
}

/** The data-section size a header describes (largest data_offsets end), or undefined if it does not parse (decodeSafetensors then names the problem). */
function describedBytes(header: Uint8Array): number | undefined {
  let h: unknown;
  try {
    h = JSON.parse(Buffer.from(header.buffer, header.byteOffset, header.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h)) return undefined;
  let end = 0;
  for (const [k, e] of Object.entries(h as Record<string, unknown>)) {
    if (k === '__metadata__') continue;
    const offs = (e as { data_offsets?: unknown } | null)?.data_offsets;
    if (!Array.isArray(offs) || typeof offs[1] !== 'number' || !Number.isSafeInteger(offs[1])) return undefined;
    end = Math.max(end, offs[1]);
  }
  return end;
}

/**
 * Write a .safetensors file and fsync it (not atomic by itself: checkpoints
 * get atomicity from writing a whole temp folder and renaming it).
 */
export function writeSafetensorsSync(file: string, tensors: Weights, metadata: Record<string, string> = {}): void {
  writeFileSynced(file, encodeSafetensors(tensors, metadata, file));
}

/** Write a .safetensors file atomically (temp file + rename). */
export async function writeSafetensors(file: string, tensors: Weights, metadata: Record<string, string> = {}): Promise<void> {
  await writeFileAtomic(file, encodeSafetensors(tensors, metadata, file));
}
