import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { IPv4Range, PortRange, RangeAllocator, type Owner } from './allocator.js';

const owner = (uid: string): Owner => ({ kind: 'Service', namespace: 'default', name: uid, uid });

test('ranges: usable addresses and ports', () => {
  const cases: { range: IPv4Range | PortRange; size: number; first: string; last: string }[] = [
    {
      range: new IPv4Range('10.43.0.0/16'),
      size: 65534,
      first: '10.43.0.1',
      last: '10.43.255.254',
    },
    { range: new IPv4Range('192.168.4.0/29'), size: 6, first: '192.168.4.1', last: '192.168.4.6' },
    { range: new PortRange('30000-32767'), size: 2768, first: '30000', last: '32767' },
  ];
  for (const c of cases) {
    assert.equal(c.range.size, c.size, c.range.text);
    assert.equal(c.range.at(0), c.first);
    assert.equal(c.range.at(c.size - 1), c.last);
    assert.equal(c.range.indexOf(c.last), c.size - 1);
  }
  const ips = new IPv4Range('10.43.0.0/16');
  for (const outside of ['10.43.0.0', '10.43.255.255', '10.44.0.1', 'x']) {
    assert.equal(ips.indexOf(outside), undefined, outside);
  }
  assert.throws(() => new IPv4Range('10.43.0.1/16'), /not a network address/);
  assert.throws(() => new PortRange('3-2'), /invalid port range/);
});

test('allocation: specific, next, taken, out of range, release', async () => {
  const store = SqliteStore.open(':memory:');
  const alloc = new RangeAllocator(store, '/ranges/test/', new IPv4Range('10.0.0.0/29'), {
    reserved: ['10.0.0.1'],
  });
  const steps: { what: string; run: () => Promise<unknown>; want: unknown }[] = [
    { what: 'specific', run: () => alloc.allocate('10.0.0.3', owner('a')), want: ok('10.0.0.3') },
    {
      what: 'again, same owner',
      run: () => alloc.allocate('10.0.0.3', owner('a')),
      want: ok('10.0.0.3'),
    },
    {
      what: 'again, other owner',
      run: () => alloc.allocate('10.0.0.3', owner('b')),
      want: { ok: false, reason: 'Allocated' },
    },
    {
      what: 'outside',
      run: () => alloc.allocate('10.0.0.9', owner('b')),
      want: { ok: false, reason: 'NotInRange' },
    },
    { what: 'release by another owner', run: () => alloc.release('10.0.0.3', 'b'), want: false },
    { what: 'release by its owner', run: () => alloc.release('10.0.0.3', 'a'), want: true },
    {
      what: 'released is free',
      run: () => alloc.check('10.0.0.3', owner('b')),
      want: ok('10.0.0.3'),
    },
  ];
  for (const s of steps) assert.deepEqual(await s.run(), s.want, s.what);

  // Five dynamic values (.2-.6; .1 is kept for asking by name), then the range is full.
  const got = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const a = await alloc.allocateNext(owner(`n${i}`));
    assert.ok(a.ok);
    got.add(a.value);
  }
  assert.deepEqual([...got].sort(), ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
  assert.deepEqual(await alloc.allocateNext(owner('late')), { ok: false, reason: 'Full' });
  assert.deepEqual(await alloc.allocate('10.0.0.1', owner('k')), ok('10.0.0.1'));
  await store.close();
});

test('two allocators on one store racing for the last free value', async () => {
  for (let round = 0; round < 20; round++) {
    const store = SqliteStore.open(':memory:');
    const range = new PortRange('30000-30003');
    const a = new RangeAllocator(store, '/ranges/ports/', range);
    const b = new RangeAllocator(store, '/ranges/ports/', range);
    for (const port of ['30000', '30001', '30002']) await a.allocate(port, owner('x'));
    const [ra, rb] = await Promise.all([a.allocateNext(owner('a')), b.allocateNext(owner('b'))]);
    const winners = [ra, rb].filter((r) => r.ok);
    assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify([ra, rb])}`);
    assert.deepEqual(winners[0], ok('30003'));
    assert.deepEqual(
      [ra, rb].find((r) => !r.ok),
      { ok: false, reason: 'Full' },
    );
    const held = (await a.list()).find((r) => r.value === '30003');
    assert.equal(held?.owner.uid, ra.ok ? 'a' : 'b');
    await store.close();
  }
});

test('many allocators at once never hand out one value twice', async () => {
  const store = SqliteStore.open(':memory:');
  const range = new PortRange('31000-31019');
  const allocators = [0, 1, 2, 3].map(() => new RangeAllocator(store, '/ranges/p/', range));
  const results = await Promise.all(
    Array.from({ length: 24 }, (_, i) => allocators[i % 4]!.allocateNext(owner(`o${i}`))),
  );
  const values = results.filter((r) => r.ok).map((r) => (r.ok ? r.value : ''));
  assert.equal(values.length, 20);
  assert.equal(new Set(values).size, 20);
  assert.equal(results.filter((r) => !r.ok).length, 4);
  await store.close();
});

function ok(value: string) {
  return { ok: true, value };
}
