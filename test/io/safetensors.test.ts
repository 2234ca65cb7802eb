import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiffuseError } from '../../src/errors.js';
import { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';

const err = (re: RegExp) => (e: unknown) => e instanceof DiffuseError && /bad\.st/.test(e.message) && re.test(e.message);

/** Build a file from a raw header object and data bytes (no validation). */
function raw(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const h = Buffer.from(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

test('round trip: F32 tensors and metadata; sorted, aligned, space-padded', async () => {
  const tensors = {
    'z.weight': { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 1e-20, -0, 7]) },
    'a.bias': { shape: [3], data: Float32Array.from([0.1, 0.2, 0.3]) },
    scalar: { shape: [], data: Float32Array.from([42]) },
    empty: { shape: [0, 4], data: new Float32Array(0) },
  };
  const bytes = encodeSafetensors(tensors, { step: '12', note: 'hi' });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0);
  const headerText = Buffer.from(bytes.subarray(8, 8 + n)).toString();
  assert.ok(headerText.startsWith('{'));
  const names = Object.keys(JSON.parse(headerText) as object).filter((k) => k !== '__metadata__');
  assert.deepEqual(names, ['a.bias', 'empty', 'scalar', 'z.weight']);
  const back = decodeSafetensors(bytes, 'mem');
  assert.deepEqual(back.metadata, { step: '12', note: 'hi' });
  for (const [k, t] of Object.entries(tensors)) {
    assert.deepEqual(back.tensors[k]!.shape, t.shape);
    assert.deepEqual(Array.from(back.tensors[k]!.data), Array.from(t.data));
    assert.equal(back.tensors[k]!.dtype, 'F32');
  }
  const dir = mkdtempSync(join(tmpdir(), 'st-'));
  try {
    const f = join(dir, 'w.safetensors');
    await writeSafetensors(f, tensors, { a: 'b' });
    assert.deepEqual(Array.from(readSafetensors(f).tensors['z.weight']!.data), Array.from(tensors['z.weight'].data));
    assert.equal(readFileSync(f).length % 4, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reads F16, BF16, F64, I32 into Float32Array', () => {
  const data = new Uint8Array(2 * 2 + 2 * 2 + 8 + 4);
  const v = new DataView(data.buffer);
  v.setUint16(0, 0x3c00, true); v.setUint16(2, 0xc000, true); // f16 1, -2
  v.setUint16(4, 0x3fc0, true); v.setUint16(6, 0x4080, true); // bf16 1.5, 4
  v.setFloat64(8, 0.25, true);
  v.setInt32(16, -7, true);
  const f = raw({
    h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
    b: { dtype: 'BF16', shape: [2], data_offsets: [4, 8] },
    d: { dtype: 'F64', shape: [1], data_offsets: [8, 16] },
    i: { dtype: 'I32', shape: [1], data_offsets: [16, 20] },
  }, data);
  const t = decodeSafetensors(f, 'mixed').tensors;
  assert.deepEqual(Array.from(t['h']!.data), [1, -2]);
  assert.deepEqual(Array.from(t['b']!.data), [1.5, 4]);
  assert.deepEqual(Array.from(t['d']!.data), [0.25]);
  assert.deepEqual(Array.from(t['i']!.data), [-7]);
});

test('malformed files each give a DiffuseError naming file and problem', () => {
  const d8 = new Uint8Array(8);
  const ok = { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  assert.doesNotThrow(() => decodeSafetensors(raw(ok, d8), 'bad.st'));
  assert.throws(() => decodeSafetensors(new Uint8Array(5), 'bad.st'), err(/shorter than the 8-byte/));
  const huge = new Uint8Array(16); new DataView(huge.buffer).setBigUint64(0, 200_000_000n, true);
  assert.throws(() => decodeSafetensors(huge, 'bad.st'), err(/absurd/));
  const over = new Uint8Array(16); new DataView(over.buffer).setBigUint64(0, 100n, true);
  assert.throws(() => decodeSafetensors(over, 'bad.st'), err(/larger than the file/));
  assert.throws(() => decodeSafetensors(raw(null, d8, '{"x": '), 'bad.st'), err(/not valid JSON/));
  assert.throws(() => decodeSafetensors(raw([1, 2], d8), 'bad.st'), err(/must be a JSON object/));
  assert.throws(() => decodeSafetensors(raw({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 16] } }, d8), 'bad.st'), err(/out of range/));
  assert.throws(() => decodeSafetensors(raw({ x: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, d8), 'bad.st'), err(/end before begin/));
  assert.throws(() => decodeSafetensors(raw({
    x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
  }, d8), 'bad.st'), err(/overlap/));
  assert.throws(() => decodeSafetensors(raw({ x: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, d8), 'bad.st'), err(/gap of 4 bytes/));
  assert.throws(() => decodeSafetensors(raw({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, d8), 'bad.st'), err(/cover 4 bytes .* has 8/));
  assert.throws(() => decodeSafetensors(raw({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, d8), 'bad.st'), err(/shape \[3\] × F32.*12 bytes.*span 8/));
  assert.throws(() => decodeSafetensors(raw({ x: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }, d8), 'bad.st'), err(/unknown dtype "Q4"/));
  assert.throws(() => decodeSafetensors(raw({ x: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, d8), 'bad.st'), err(/invalid shape/));
  assert.throws(() => decodeSafetensors(raw({ x: { dtype: 'F32', shape: [2], data_offsets: [0] } }, d8), 'bad.st'), err(/invalid data_offsets/));
  assert.throws(() => decodeSafetensors(raw({ ...ok, __metadata__: { step: 3 } }, d8), 'bad.st'), err(/__metadata__ "step" is number/));
  assert.throws(() => decodeSafetensors(raw({ ...ok, __metadata__: 'x' }, d8), 'bad.st'), err(/__metadata__ must be an object/));
  // truncated real file
  const good = encodeSafetensors({ w: { shape: [4], data: new Float32Array(4) } });
  assert.throws(() => decodeSafetensors(good.subarray(0, good.length - 3), 'bad.st'), err(/out of range|truncated/));
  assert.throws(() => readSafetensors('/nonexistent/bad.st'), err(/cannot read/));
});

test('writer rejects shape/data mismatch and non-string metadata', () => {
  assert.throws(() => encodeSafetensors({ w: { shape: [3], data: new Float32Array(4) } }, {}, 'bad.st'), err(/shape \[3\] needs 3 values, data has 4/));
  assert.throws(() => encodeSafetensors({}, { a: 1 as unknown as string }, 'bad.st'), err(/metadata "a" must be a string/));
});
