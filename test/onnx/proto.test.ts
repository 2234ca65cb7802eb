import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiffuseError } from '../../src/errors.js';
import { attr, irVersionForOpset, OnnxGraph } from '../../src/onnx/graph.js';
import { decodeFields, decodeOnnxModel, decodePackedVarints, OnnxDataType, ProtoWriter, readOnnxMetadata } from '../../src/onnx/proto.js';

test('varints: bytes as protobuf writes them (incl. negative int64 as 10 bytes)', () => {
  const bytes = (v: number | bigint): number[] => [...new ProtoWriter().varint(1, v).finish()];
  assert.deepEqual(bytes(0), [0x08, 0x00]);
  assert.deepEqual(bytes(1), [0x08, 0x01]);
  assert.deepEqual(bytes(150), [0x08, 0x96, 0x01]);
  assert.deepEqual(bytes(2 ** 31), [0x08, 0x80, 0x80, 0x80, 0x80, 0x08]);
  assert.deepEqual(bytes(-1), [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  assert.deepEqual(bytes(-2n), [0x08, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  // field 20, wire 0: key 160 = 0xa0 0x01
  assert.deepEqual([...new ProtoWriter().varint(20, 7).finish()], [0xa0, 0x01, 0x07]);
  // string field 2 'hi'
  assert.deepEqual([...new ProtoWriter().string(2, 'hi').finish()], [0x12, 0x02, 0x68, 0x69]);
  // float field 2 = 1.0f
  assert.deepEqual([...new ProtoWriter().float(2, 1).finish()], [0x15, 0x00, 0x00, 0x80, 0x3f]);
  assert.throws(() => new ProtoWriter().varint(1, 0.5), DiffuseError);
});

test('reader decodes what the writer wrote; rejects truncated input', () => {
  const w = new ProtoWriter().varint(1, 300).string(2, 'abc').message(3, (m) => m.varint(1, -5)).float(4, 0.25).packedVarints(5, [1, -1, 2 ** 40]);
  const f = decodeFields(w.finish());
  assert.deepEqual(f.map((x) => [x.field, x.wire]), [[1, 0], [2, 2], [3, 2], [4, 5], [5, 2]]);
  assert.equal(f[0]!.varint, 300n);
  assert.equal(new TextDecoder().decode(f[1]!.bytes), 'abc');
  assert.equal(BigInt.asIntN(64, decodeFields(f[2]!.bytes!)[0]!.varint!), -5n);
  assert.deepEqual(decodePackedVarints(f[4]!.bytes!).map((v) => BigInt.asIntN(64, v)), [1n, -1n, 2n ** 40n]);
  assert.throws(() => decodeFields(new Uint8Array([0x12, 0x05, 0x61])), (e: unknown) => e instanceof DiffuseError && /runs past the end/.test(e.message));
  assert.throws(() => decodeFields(new Uint8Array([0x08, 0x80])), (e: unknown) => e instanceof DiffuseError && /truncated varint/.test(e.message));
  assert.throws(() => decodeFields(new Uint8Array([0x0b])), (e: unknown) => e instanceof DiffuseError && /wire type 3/.test(e.message));
});

test('graph builder: unique names, typed attributes, initializers, model round trip', () => {
  const g = new OnnxGraph('g');
  g.addInput('x', OnnxDataType.FLOAT, ['N', 4]);
  const w = g.addInitializer('w', Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), [4, 2]);
  const w2 = g.addInitializer('w', Float32Array.from([1, 2]), [2]);
  assert.equal(w, 'w');
  assert.equal(w2, 'w_1');
  assert.equal(g.constInt64([0, -1]), g.constInt64([0, -1]), 'small constants are shared');
  const y = g.node('MatMul', ['x', w], {}, 'y');
  const z = g.node('Softmax', [y], { axis: attr.int(-1) }, 'y');
  assert.equal(z, 'y_1');
  const r = g.node('Reshape', [z, g.constInt64([0, -1])]);
  g.addOutput(r, OnnxDataType.FLOAT, ['N', 2], 'out');
  assert.throws(() => g.addInput('x', OnnxDataType.FLOAT, [1]), (e: unknown) => e instanceof DiffuseError && /already used/.test(e.message));
  assert.throws(() => g.addInitializer('bad', new Float32Array(3), [2, 2]), DiffuseError);
  const bytes = g.toBytes({ opset: 17, metadata: { a: 'b' }, docString: 'doc' });
  const m = decodeOnnxModel(bytes);
  assert.equal(m.irVersion, 8);
  assert.equal(m.docString, 'doc');
  assert.deepEqual(m.metadata, { a: 'b' });
  assert.deepEqual(readOnnxMetadata(bytes), { a: 'b' });
  assert.deepEqual(m.graph.inputs, [{ name: 'x', elemType: OnnxDataType.FLOAT, dims: ['N', 4] }]);
  assert.deepEqual(m.graph.outputs, [{ name: 'out', elemType: OnnxDataType.FLOAT, dims: ['N', 2] }]);
  assert.deepEqual(m.graph.nodes.map((n) => n.opType), ['MatMul', 'Softmax', 'Reshape', 'Identity']);
  assert.deepEqual(m.graph.nodes[1]!.attributes, [{ name: 'axis', type: 'int', value: -1 }]);
  const init = m.graph.initializers;
  assert.deepEqual(init.map((t) => [t.name, t.dims]), [['w', [4, 2]], ['w_1', [2]], ['const_i', [2]]]);
  assert.deepEqual([...init[0]!.data as Float32Array], [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual([...init[2]!.data as BigInt64Array], [0n, -1n]);
  assert.equal(irVersionForOpset(13), 7);
  assert.equal(irVersionForOpset(21), 10);
});
