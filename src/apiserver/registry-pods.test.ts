import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.js';
import { byGroupResource } from '../api/resources.js';
import type { KObject } from '../api/types.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { Registry } from './registry.js';

const PODS = byGroupResource.get('/pods')!;
const NAMESPACES = byGroupResource.get('/namespaces')!;

function pod(): Omit<KObject, 'apiVersion' | 'kind'> {
  return {
    metadata: { name: 'p' },
    spec: {
      containers: [
        { name: 'c', image: 'pause:1', resources: { requests: { cpu: '100m' } } },
        { name: 'd', image: 'busybox:1' },
      ],
      tolerations: [{ key: 'a', operator: 'Exists' }],
      terminationGracePeriodSeconds: 30,
    },
  };
}

async function setup() {
  const registry = new Registry(SqliteStore.open(':memory:'));
  await registry.create(NAMESPACES, undefined, { metadata: { name: 'default' } });
  const created = await registry.create(PODS, 'default', pod());
  return { registry, created };
}

/** The error of a failed update, as `field type`, or 'ok'. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof ApiError, String(err));
    const cause = err.details?.causes?.[0];
    return cause ? `${cause.field} ${cause.reason}` : err.reason;
  }
}

test('pod updates may change only images, grace, deadline and added tolerations', async () => {
  const cases: [string, (spec: any) => void, string][] = [
    ['nothing', () => undefined, 'ok'],
    ['an image', (s) => (s.containers[1].image = 'busybox:2'), 'ok'],
    ['the grace period', (s) => (s.terminationGracePeriodSeconds = 5), 'ok'],
    ['the active deadline', (s) => (s.activeDeadlineSeconds = 60), 'ok'],
    ['an added toleration', (s) => s.tolerations.push({ key: 'b', operator: 'Exists' }), 'ok'],
    ['a removed toleration', (s) => (s.tolerations = []), 'spec.tolerations FieldForbidden'],
    ['a request', (s) => (s.containers[0].resources.requests.cpu = '1'), 'spec FieldForbidden'],
    ['a container name', (s) => (s.containers[1].name = 'e'), 'spec FieldForbidden'],
    [
      'a container more',
      (s) => s.containers.push({ name: 'x', image: 'x' }),
      'spec FieldForbidden',
    ],
    ['a new spec field', (s) => (s.hostNetwork = true), 'spec FieldForbidden'],
    ['dropped requests', (s) => delete s.containers[0].resources, 'spec FieldForbidden'],
  ];
  for (const [what, change, want] of cases) {
    const { registry, created } = await setup();
    const next = structuredClone(created);
    change(next.spec);
    const got = await outcome(registry.update(PODS, 'default', 'p', next, undefined));
    assert.equal(got, want, what);
  }
});

test('a pod active deadline is 1 to 2^31-1 seconds, and an update may only lower it', async () => {
  const registry = new Registry(SqliteStore.open(':memory:'));
  await registry.create(NAMESPACES, undefined, { metadata: { name: 'default' } });
  const invalid = 'spec.activeDeadlineSeconds FieldInvalid';
  const created: [unknown, string][] = [
    [60, 'ok'],
    [2 ** 31 - 1, 'ok'],
    [0, invalid],
    [-5, invalid],
    [1.5, invalid],
    ['60', invalid],
    [2 ** 31, invalid],
  ];
  for (const [i, [deadline, want]] of created.entries()) {
    const p = pod();
    p.metadata.name = `p${i}`;
    p.spec.activeDeadlineSeconds = deadline;
    const got = await outcome(registry.create(PODS, 'default', p));
    assert.equal(got, want, `created with ${String(deadline)}`);
  }
  const updates: [unknown, string][] = [
    [60, 'ok'],
    [30, 'ok'],
    [61, invalid],
    [undefined, invalid],
    [0, invalid],
  ];
  for (const [deadline, want] of updates) {
    const old = await registry.get(PODS, 'default', 'p0');
    const next = structuredClone(old);
    next.spec.activeDeadlineSeconds = deadline;
    const got = await outcome(registry.update(PODS, 'default', 'p0', next, undefined));
    assert.equal(got, want, `updated to ${String(deadline)}`);
  }
});

test('a binding sets the node and condition without touching the rest of the pod', async () => {
  const { registry, created } = await setup();
  const bound = await registry.mutate(PODS, 'default', 'p', undefined, 'binding', (p) => {
    p.spec.nodeName = 'node-1';
    p.status = { ...p.status, conditions: [{ type: 'PodScheduled', status: 'True' }] };
    return p;
  });
  assert.equal(bound.spec.nodeName, 'node-1');
  assert.notEqual(bound.metadata.resourceVersion, created.metadata.resourceVersion);
  const read = await registry.get(PODS, 'default', 'p');
  assert.deepEqual(read, bound, 'the result is what was stored');
  assert.deepEqual({ ...read.spec, nodeName: undefined }, { ...created.spec, nodeName: undefined });
});

test('create and update hand back what was stored, resourceVersion included', async () => {
  const { registry, created } = await setup();
  assert.deepEqual(await registry.get(PODS, 'default', 'p'), created);
  const next = structuredClone(created);
  next.metadata.labels = { a: 'b' };
  const updated = await registry.update(PODS, 'default', 'p', next, undefined);
  assert.deepEqual(await registry.get(PODS, 'default', 'p'), updated);
  const status = await registry.update(
    PODS,
    'default',
    'p',
    { ...updated, status: { phase: 'Running' } },
    'status',
  );
  assert.deepEqual(await registry.get(PODS, 'default', 'p'), status);
});

test('probes get Kubernetes defaults on pods; a pod stored without them can still change', async () => {
  const store = SqliteStore.open(':memory:');
  const registry = new Registry(store);
  await registry.create(NAMESPACES, undefined, { metadata: { name: 'default' } });
  const probed = pod();
  probed.spec.containers[0].livenessProbe = { httpGet: { port: 8080 } };
  probed.spec.containers[1].lifecycle = { preStop: { httpGet: { port: 80, path: '' } } };
  const created = await registry.create(PODS, 'default', probed);
  assert.deepEqual(created.spec.containers[0].livenessProbe, {
    httpGet: { port: 8080, path: '/', scheme: 'HTTP' },
    timeoutSeconds: 1,
    periodSeconds: 10,
    successThreshold: 1,
    failureThreshold: 3,
  });
  assert.deepEqual(created.spec.containers[1].lifecycle.preStop.httpGet, {
    port: 80,
    path: '/',
    scheme: 'HTTP',
  });

  // As an older version stored it: without those defaults.
  const key = '/registry/core/pods/default/p';
  const stored = JSON.parse((await store.get(key))!.value);
  stored.spec.containers[0].livenessProbe = { httpGet: { port: 8080 } };
  await store.update(key, JSON.stringify(stored));
  const old = await registry.get(PODS, 'default', 'p');
  const running = { ...structuredClone(old), status: { ...old.status, phase: 'Running' } };
  assert.equal(
    await outcome(registry.update(PODS, 'default', 'p', running, 'status')),
    'ok',
    'its agent can still write its status',
  );
  const next = structuredClone(await registry.get(PODS, 'default', 'p'));
  next.metadata.labels = { relabelled: 'yes' };
  const updated = await registry.update(PODS, 'default', 'p', next, undefined);
  assert.equal(updated.metadata.labels?.relabelled, 'yes');
  assert.equal(updated.spec.containers[0].livenessProbe.periodSeconds, 10);
  const changed = structuredClone(updated);
  changed.spec.containers[0].livenessProbe.periodSeconds = 5;
  assert.equal(
    await outcome(registry.update(PODS, 'default', 'p', changed, undefined)),
    'spec FieldForbidden',
    'a probe still cannot change',
  );
});
