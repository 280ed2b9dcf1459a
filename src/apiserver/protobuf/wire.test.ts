import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toInt32, toInt64, WireError, WireReader } from './wire.js';

const bytes = (...b: number[]) => new Uint8Array(b);

test('wire: varints of one to ten bytes', () => {
  const cases: { in: number[]; out: bigint; int32?: number; int64?: number }[] = [
    { in: [0x00], out: 0n, int32: 0 },
    { in: [0x01], out: 1n, int32: 1 },
    { in: [0x96, 0x01], out: 150n, int32: 150 },
    { in: [0xff, 0xff, 0xff, 0xff, 0x07], out: 2147483647n, int32: 2147483647 },
    // int32 -1 is written sign-extended to 64 bits: ten bytes.
    {
      in: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
      out: 18446744073709551615n,
      int32: -1,
      int64: -1,
    },
    { in: [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], out: 1n << 56n },
  ];
  for (const c of cases) {
    const r = new WireReader(bytes(...c.in));
    const v = r.varint();
    assert.equal(v, c.out, c.in.join(','));
    assert.ok(r.done);
    if (c.int32 !== undefined) assert.equal(toInt32(v), c.int32);
    if (c.int64 !== undefined) assert.equal(toInt64(v), c.int64);
  }
});

test('wire: malformed input is a WireError with its cause', () => {
  const cases: { name: string; in: number[]; read: (r: WireReader) => unknown; err: RegExp }[] = [
    { name: 'truncated varint', in: [0x96], read: (r) => r.varint(), err: /truncated varint/ },
    {
      name: 'eleven-byte varint',
      in: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
      read: (r) => r.varint(),
      err: /longer than 10 bytes/,
    },
    { name: 'length past end', in: [0x05, 0x61, 0x62], read: (r) => r.bytes(), err: /runs past/ },
    {
      name: 'huge length',
      in: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
      read: (r) => r.bytes(),
      err: /is too large/,
    },
    { name: 'truncated fixed64', in: [1, 2, 3], read: (r) => r.fixed(8), err: /truncated 64/ },
    { name: 'group wire type', in: [0x0b], read: (r) => r.tag(), err: /wire type 3/ },
    { name: 'field number zero', in: [0x02], read: (r) => r.tag(), err: /invalid field number/ },
  ];
  for (const c of cases) {
    assert.throws(
      () => c.read(new WireReader(bytes(...c.in))),
      (e: unknown) => e instanceof WireError && c.err.test(e.message),
      c.name,
    );
  }
});

test('wire: tags, and skipping values tells zero from non-zero', () => {
  // field 1 varint 0, field 2 bytes "", field 3 bytes "a", field 4 fixed32 0, field 5 varint 7
  const r = new WireReader(
    bytes(0x08, 0x00, 0x12, 0x00, 0x1a, 0x01, 0x61, 0x25, 0, 0, 0, 0, 0x28, 7),
  );
  const seen: [number, number, boolean][] = [];
  for (let f = r.tag(); f; f = r.tag()) seen.push([f.number, f.wireType, r.skip(f.wireType).zero]);
  assert.deepEqual(seen, [
    [1, 0, true],
    [2, 2, true],
    [3, 2, false],
    [4, 5, true],
    [5, 0, false],
  ]);
});
