import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.js';
import type { ResourceType } from '../api/resources.js';
import type { KObject, Pod } from '../api/types.js';
import type { KubeClient } from '../client/rest.js';
import { rootLogger } from '../log.js';
import { ConfigObjects } from './config-objects.js';

/** A client that answers GETs from a map and counts them. */
function fakeClient(objects: Map<string, KObject>, failing = new Set<string>()) {
  const gets: string[] = [];
  const flight = { now: 0, most: 0 };
  const client = {
    async get(rt: ResourceType, namespace: string, name: string) {
      const key = `${rt.kind}/${namespace}/${name}`;
      gets.push(key);
      flight.most = Math.max(flight.most, ++flight.now);
      await new Promise((r) => setTimeout(r, 1));
      flight.now--;
      if (failing.has(key)) throw new Error('connection reset');
      const obj = objects.get(key);
      if (!obj) throw new ApiError('NotFound', `${key} not found`);
      return structuredClone(obj);
    },
  } as unknown as KubeClient;
  return { client, gets, flight };
}

function secret(name: string, rv: string): KObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: 'ns', resourceVersion: rv },
  };
}

function pod(name: string, ...secrets: string[]): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'ns' },
    spec: {
      containers: [{ name: 'c', image: 'x' }],
      volumes: secrets.map((s, i) => ({ name: `v${i}`, secret: { secretName: s } })),
    },
  } as Pod;
}

test('referenced objects are fetched once, refreshed, and dropped when unused', async () => {
  const store = new Map([['Secret/ns/a', secret('a', '1')]]);
  const { client, gets } = fakeClient(store);
  const changed: string[] = [];
  const objects = new ConfigObjects({ client, onChange: (k) => changed.push(k), log: rootLogger });

  const p = pod('p', 'a', 'missing');
  await Promise.all([objects.ensure(p), objects.ensure(p)]);
  assert.deepEqual(gets.sort(), ['Secret/ns/a', 'Secret/ns/missing'], 'one fetch each');
  assert.equal(objects.get('Secret', 'ns', 'a')?.metadata.resourceVersion, '1');
  assert.equal(objects.get('Secret', 'ns', 'missing'), undefined);
  await objects.ensure(p);
  assert.equal(gets.length, 2, 'cached, absent ones too');

  // A refresh sees a change and an object that appeared; nothing else is reported.
  store.set('Secret/ns/a', secret('a', '2'));
  store.set('Secret/ns/missing', secret('missing', '5'));
  await objects.refresh([p]);
  assert.deepEqual(changed.sort(), ['Secret/ns/a', 'Secret/ns/missing']);
  assert.equal(objects.get('Secret', 'ns', 'a')?.metadata.resourceVersion, '2');
  await objects.refresh([p]);
  assert.equal(changed.length, 2, 'no change, no report');

  // An object that went is reported and then absent.
  store.delete('Secret/ns/a');
  await objects.refresh([p]);
  assert.deepEqual(changed.slice(2), ['Secret/ns/a']);
  assert.equal(objects.get('Secret', 'ns', 'a'), undefined);

  // No pod refers to them any more: dropped, and not fetched again.
  gets.length = 0;
  await objects.refresh([]);
  assert.deepEqual(gets, []);
  assert.equal(objects.get('Secret', 'ns', 'missing'), undefined);
});

test('a failed fetch fails the pod sync, and a refresh keeps what was known', async () => {
  const store = new Map([['Secret/ns/a', secret('a', '1')]]);
  const failing = new Set(['Secret/ns/b']);
  const { client } = fakeClient(store, failing);
  const objects = new ConfigObjects({ client, onChange: () => undefined, log: rootLogger });
  await assert.rejects(objects.ensure(pod('p', 'a', 'b')), /connection reset/);
  assert.equal(objects.get('Secret', 'ns', 'a')?.metadata.resourceVersion, '1');
  failing.add('Secret/ns/a');
  await objects.refresh([pod('p', 'a')]);
  assert.equal(objects.get('Secret', 'ns', 'a')?.metadata.resourceVersion, '1', 'kept');
});

test('a pod naming many objects has them fetched a few at a time', async () => {
  const { client, gets, flight } = fakeClient(new Map());
  const objects = new ConfigObjects({ client, onChange: () => undefined, log: rootLogger });
  const names = Array.from({ length: 200 }, (_, i) => `s${i}`);
  await objects.ensure(pod('p', ...names));
  assert.equal(gets.length, 200);
  assert.ok(flight.most <= 8, `${flight.most} fetches in flight at once`);
});
