import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.js';
import { byGroupResource } from '../api/resources.js';
import type { Service } from '../api/service.js';
import { componentLogger } from '../log.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { Registry } from './registry.js';
import { ServiceAllocations } from './service-allocation.js';

const SERVICES = byGroupResource.get('/services')!;
const NAMESPACES = byGroupResource.get('/namespaces')!;

async function setup(opts = { serviceCIDR: '10.43.0.0/29', nodePortRange: '30000-30002' }) {
  const store = SqliteStore.open(':memory:');
  const allocations = new ServiceAllocations(store, opts);
  const registry = new Registry(store, allocations);
  await registry.create(NAMESPACES, undefined, { metadata: { name: 'default' } });
  const create = (name: string, spec: Record<string, unknown>, dryRun = false) =>
    registry.create(
      SERVICES,
      'default',
      { metadata: { name }, spec: structuredClone(spec) },
      { dryRun },
    ) as Promise<Service>;
  const held = async () => ({
    ips: (await allocations.ips.list()).map((r) => r.value),
    ports: (await allocations.ports.list()).map((r) => r.value),
  });
  return { store, allocations, registry, create, held };
}

async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApiError, String(err));
    return err.message;
  }
  return 'no error';
}

const ports = [{ port: 80 }];

test('cluster IPs: allocated, requested, refused, released', async () => {
  const { store, registry, create, held } = await setup();
  const a = await create('a', { ports });
  assert.match(a.spec.clusterIP!, /^10\.43\.0\.[2-6]$/);
  assert.deepEqual(a.spec.clusterIPs, [a.spec.clusterIP]);

  const asked = await create('b', {
    ports,
    clusterIP: '10.43.0.6' === a.spec.clusterIP ? '10.43.0.5' : '10.43.0.6',
  });
  const cases: { name: string; spec: Record<string, unknown>; want: RegExp }[] = [
    {
      name: 'c',
      spec: { ports, clusterIP: asked.spec.clusterIP },
      want: /spec.clusterIP: Invalid value: "10.43.0.[56]": provided IP is already allocated$/,
    },
    {
      name: 'c',
      spec: { ports, clusterIP: '10.99.0.1' },
      want: /provided IP is not in the valid range. The range of valid IPs is 10.43.0.0\/29$/,
    },
  ];
  for (const c of cases) assert.match(await errorOf(create(c.name, c.spec)), c.want);

  // A failed create (name taken) gives back what it reserved.
  const before = await held();
  assert.match(await errorOf(create('a', { ports })), /already exists/);
  assert.deepEqual(await held(), before);
  const again = create('a', { ports, clusterIP: a.spec.clusterIP });
  assert.match(await errorOf(again), /services "a" already exists/);
  assert.deepEqual(await held(), before);

  // dry-run shows an IP but reserves nothing.
  const dry = await create('d', { ports }, true);
  assert.match(dry.spec.clusterIP!, /^10\.43\.0\./);
  assert.deepEqual(await held(), before);

  // Headless services take no IP.
  const headless = await create('h', { clusterIP: 'None', selector: { app: 'h' } });
  assert.deepEqual(headless.spec.clusterIPs, ['None']);
  assert.deepEqual(await held(), before);

  await registry.delete(SERVICES, 'default', 'a');
  assert.deepEqual((await held()).ips, [asked.spec.clusterIP]);
  await store.close();
});

test('an ExternalName alias holds no IP; turning into one frees it, back takes one', async () => {
  const { store, registry, create, held } = await setup();
  const alias = await create('alias', { type: 'ExternalName', externalName: 'db.example.com' });
  assert.equal(alias.spec.clusterIP, undefined);
  assert.deepEqual(await held(), { ips: [], ports: [] });
  await create('a', { type: 'NodePort', ports });
  const patch = (spec: Record<string, unknown>) =>
    registry.mutate(SERVICES, 'default', 'a', undefined, undefined, (cur) => ({
      ...cur,
      spec: { ...cur.spec, ...spec },
    })) as Promise<Service>;
  const turned = await patch({ type: 'ExternalName', externalName: 'db.example.com' });
  assert.equal(turned.spec.clusterIP, undefined);
  assert.deepEqual(await held(), { ips: [], ports: [] });
  const back = await patch({ type: 'ClusterIP', externalName: undefined, ports });
  assert.match(back.spec.clusterIP!, /^10\.43\.0\./);
  assert.deepEqual(await held(), { ips: [back.spec.clusterIP], ports: [] });
  await store.close();
});

test('cluster IP range exhausted is a clear error', async () => {
  const { store, create } = await setup();
  for (const name of ['a', 'b', 'c', 'd', 'e']) await create(name, { ports });
  assert.match(
    await errorOf(create('f', { ports })),
    /failed to allocate a serviceIP: range is full \(10.43.0.0\/29\)/,
  );
  // The first address is kept for the kubernetes service and may be asked for.
  const k = await create('kubernetes', { ports, clusterIP: '10.43.0.1' });
  assert.equal(k.spec.clusterIP, '10.43.0.1');
  await store.close();
});

test('node ports: allocated, requested, type changes, exhaustion', async () => {
  const { store, registry, create, held } = await setup();
  const np = await create('np', { type: 'NodePort', ports: [{ port: 80, nodePort: 30001 }] });
  assert.equal(np.spec.ports![0]!.nodePort, 30001);
  assert.match(
    await errorOf(create('np2', { type: 'NodePort', ports: [{ port: 80, nodePort: 30001 }] })),
    /spec.ports\[0\].nodePort: Invalid value: 30001: provided port is already allocated$/,
  );
  assert.match(
    await errorOf(create('np2', { type: 'NodePort', ports: [{ port: 80, nodePort: 31000 }] })),
    /provided port is not in the valid range. The range of valid ports is 30000-30002$/,
  );
  const two = await create('two', {
    type: 'NodePort',
    ports: [
      { name: 'a', port: 80 },
      { name: 'b', port: 81 },
    ],
  });
  const got = two.spec.ports!.map((p) => p.nodePort).sort();
  assert.deepEqual(got, [30000, 30002]);
  assert.match(
    await errorOf(create('three', { type: 'NodePort', ports })),
    /failed to allocate a nodePort: range is full/,
  );
  const ipsBefore = (await held()).ips;

  // NodePort → ClusterIP frees the node ports; ClusterIP → NodePort takes one again.
  await registry.mutate(SERVICES, 'default', 'two', undefined, undefined, (cur) => ({
    ...cur,
    spec: { ...cur.spec, type: 'ClusterIP', externalTrafficPolicy: undefined },
  }));
  assert.deepEqual((await held()).ports, ['30001']);
  const back = await registry.mutate(SERVICES, 'default', 'two', undefined, undefined, (cur) => ({
    ...cur,
    spec: { ...cur.spec, type: 'NodePort' },
  }));
  assert.equal(back.spec.ports.filter((p: { nodePort?: number }) => p.nodePort).length, 2);
  assert.deepEqual((await held()).ports, ['30000', '30001', '30002']);
  assert.deepEqual((await held()).ips, ipsBefore);

  await registry.delete(SERVICES, 'default', 'np');
  await registry.delete(SERVICES, 'default', 'two');
  assert.deepEqual(await held(), { ips: [], ports: [] });
  await store.close();
});

test('repair frees reservations no Service holds and restores missing ones', async () => {
  const { store, allocations, create, held } = await setup();
  const a = await create('a', { type: 'NodePort', ports });
  const owner = { kind: 'Service', namespace: 'default', name: 'gone', uid: 'gone-uid' };
  await allocations.ips.allocate(
    '10.43.0.6' === a.spec.clusterIP ? '10.43.0.5' : '10.43.0.6',
    owner,
  );
  await allocations.ports.release(String(a.spec.ports![0]!.nodePort));
  const log = componentLogger('test');

  // Within the grace period a reservation may belong to a create in flight: kept.
  const early = await allocations.repair(log, 60_000);
  assert.deepEqual(early.freed, []);
  assert.deepEqual(early.missing, [`${a.spec.ports![0]!.nodePort} (default/a)`]);

  const report = await allocations.repair(log, 0);
  assert.equal(report.freed.length, 1);
  assert.deepEqual(report.missing, []);
  assert.deepEqual(await held(), {
    ips: [a.spec.clusterIP!],
    ports: [String(a.spec.ports![0]!.nodePort)],
  });
  await store.close();
});
