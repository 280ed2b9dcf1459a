import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WireReader, WireType } from './wire.js';
import { WireWriter } from './writer.js';

/** Every field of a message as [number, wire type, value] (bytes as text, varints as numbers). */
function fields(buf: Uint8Array): [number, number, string | number][] {
  const r = new WireReader(buf);
  const out: [number, number, string | number][] = [];
  for (let f = r.tag(); f; f = r.tag()) {
    if (f.wireType === WireType.Varint) out.push([f.number, f.wireType, r.uint()]);
    else out.push([f.number, f.wireType, Buffer.from(r.bytes()).toString('latin1')]);
  }
  return out;
}

test('writer: scalars at their defaults are left out, as proto3 does', () => {
  const cases: { name: string; write: (w: WireWriter) => void; out: number[] }[] = [
    { name: 'empty string', write: (w) => w.string(1, ''), out: [] },
    { name: 'undefined string', write: (w) => w.string(1, undefined), out: [] },
    { name: 'false', write: (w) => w.bool(2, false), out: [] },
    { name: 'true', write: (w) => w.bool(2, true), out: [0x10, 0x01] },
    { name: 'string', write: (w) => w.string(1, 'ab'), out: [0x0a, 0x02, 0x61, 0x62] },
    { name: 'empty message', write: (w) => w.message(9, () => undefined), out: [0x4a, 0x00] },
    // field 16: the key itself takes two bytes (16 * 8 + 2 = 130).
    { name: 'two-byte key', write: (w) => w.string(16, 'x'), out: [0x82, 0x01, 0x01, 0x78] },
  ];
  for (const c of cases) {
    const w = new WireWriter();
    c.write(w);
    assert.deepEqual([...w.finish()], c.out, c.name);
    assert.equal(w.length, c.out.length, c.name);
  }
});

test('writer: nested messages and long payloads read back with WireReader', () => {
  const long = 'y'.repeat(300); // a length of two varint bytes
  const buf = new WireWriter()
    .string(1, 'héllo')
    .message(2, (m) =>
      m
        .string(1, long)
        .bool(3, true)
        .message(4, (n) => n.string(1, 'deep')),
    )
    .string(3, 'after')
    .finish();
  const top = fields(buf);
  assert.deepEqual(top[0], [1, 2, Buffer.from('héllo').toString('latin1')]);
  assert.deepEqual(top[2], [3, 2, 'after']);
  const inner = fields(Buffer.from(top[1][2] as string, 'latin1'));
  assert.deepEqual(inner.slice(0, 2), [
    [1, 2, long],
    [3, 0, 1],
  ]);
  assert.deepEqual(fields(Buffer.from(inner[2][2] as string, 'latin1')), [[1, 2, 'deep']]);
});
