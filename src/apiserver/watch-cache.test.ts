import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { selectorView, WatchCache, withResourceVersion } from './watch-cache.js';

const PODS = '/registry/core/pods/';

async function settle(cache: WatchCache, revision: number): Promise<void> {
  await cache.waitFor(revision, 2000);
}

test('the cache follows the store and answers 410 Expired past its window', async () => {
  const store = SqliteStore.open(':memory:');
  const cache = new WatchCache(store, { windowSize: 3 });
  await store.create(`${PODS}default/before`, JSON.stringify({ metadata: { name: 'before' } }));
  await cache.start();
  let last = 0;
  for (let i = 0; i < 5; i++) {
    const kv = await store.create(
      `${PODS}default/p${i}`,
      JSON.stringify({ metadata: { name: `p${i}` } }),
    );
    last = kv.modRevision;
  }
  await settle(cache, last);
  assert.equal(cache.objects(PODS).size, 6);
  assert.equal(cache.get(`${PODS}default/p4`)?.obj.metadata.resourceVersion, String(last));

  const recent = cache.eventsSince(PODS, last - 2);
  assert.deepEqual(
    recent.map((e) => e.object.obj.metadata.name),
    ['p3', 'p4'],
  );
  assert.throws(
    () => cache.eventsSince(PODS, 1),
    (err: unknown) => err instanceof ApiError && err.reason === 'Expired' && err.code === 410,
  );
  const json = cache.get(`${PODS}default/p4`)!.json();
  assert.equal(cache.get(`${PODS}default/p4`)!.json(), json, 'serialized once and shared');
  cache.stop();
  await store.close();
});

test('a list waits for the cache to catch up with a write', async () => {
  const store = SqliteStore.open(':memory:');
  const cache = new WatchCache(store);
  await cache.start();
  const kv = await store.create(`${PODS}default/x`, JSON.stringify({ metadata: { name: 'x' } }));
  await cache.waitFor(kv.modRevision, 2000);
  assert.ok(cache.get(`${PODS}default/x`));
  await assert.rejects(cache.waitFor(kv.modRevision + 100, 50), /Too large resource version/);
  cache.stop();
  await store.close();
});

test('the window is bounded by bytes as well as by count', async () => {
  const store = SqliteStore.open(':memory:');
  const cache = new WatchCache(store, { windowSize: 1000, windowBytes: 3000 });
  await cache.start();
  let last = 0;
  for (let i = 0; i < 10; i++) {
    const value = JSON.stringify({ metadata: { name: `p${i}` }, pad: 'x'.repeat(1000) });
    last = (await store.create(`${PODS}default/p${i}`, value)).modRevision;
  }
  await settle(cache, last);
  assert.ok(cache.eventsSince(PODS, last - 2).length === 2);
  assert.throws(
    () => cache.eventsSince(PODS, last - 5),
    (err: unknown) => err instanceof ApiError && err.code === 410,
  );
  cache.stop();
  await store.close();
});

test('the resourceVersion is spliced into canonical JSON, else left to the long way', () => {
  const cases = [
    {
      name: 'canonical',
      value: '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{}}',
      want: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { resourceVersion: '7', name: 'a' },
        spec: {},
      },
    },
    {
      name: 'empty metadata',
      value: '{"apiVersion":"v1","kind":"Pod","metadata":{}}',
      want: { apiVersion: 'v1', kind: 'Pod', metadata: { resourceVersion: '7' } },
    },
    {
      name: 'metadata not third',
      value: '{"metadata":{"name":"a"},"kind":"Pod"}',
      want: undefined,
    },
    {
      name: 'names a resourceVersion already',
      value:
        '{"apiVersion":"v1","kind":"Event","metadata":{},"involvedObject":{"resourceVersion":"1"}}',
      want: undefined,
    },
  ];
  for (const c of cases) {
    const out = withResourceVersion(c.value, 7);
    assert.deepEqual(out === undefined ? undefined : JSON.parse(out), c.want, c.name);
  }
});

test('the selector view keeps name, namespace, labels and the selectable fields only', () => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'n', uid: 'u', labels: { a: 'b' }, annotations: { x: 'y' } },
    spec: { nodeName: 'node-1', containers: [{ name: 'c', image: 'i' }] },
    status: { phase: 'Running', podIP: '10.0.0.1' },
  };
  assert.deepEqual(selectorView(pod, ['spec.nodeName', 'status.phase', 'spec.schedulerName']), {
    metadata: { name: 'p', namespace: 'n', uid: 'u', labels: { a: 'b' } },
    spec: { nodeName: 'node-1' },
    status: { phase: 'Running' },
  });
});

test('a write hint spares the decode only when its text is what the store delivers', async () => {
  const store = SqliteStore.open(':memory:');
  const cache = new WatchCache(store);
  await cache.start();
  const encode = (name: string, app: string, node: string) =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'default', labels: { app } },
      spec: { nodeName: node },
    });
  const same = (text: string) => text;
  const other = (text: string) => text + ' ';
  const cases: {
    name: string;
    hinted: (text: string) => string;
    withdrawn?: (text: string) => string;
    viewApp: string;
  }[] = [
    { name: 'matching hint', hinted: same, viewApp: 'hinted' },
    { name: 'stale hint', hinted: other, viewApp: 'stored' },
    // As after a failed write of the same text (another writer's may then succeed).
    { name: 'withdrawn hint', hinted: same, withdrawn: same, viewApp: 'stored' },
    { name: 'other text withdrawn', hinted: same, withdrawn: other, viewApp: 'hinted' },
  ];
  for (const c of cases) {
    const key = `${PODS}default/${c.name.replaceAll(' ', '-')}`;
    const text = encode(key, 'stored', 'n1');
    // The hinted object differs from the text only so that the test sees which was used.
    const hinted = JSON.parse(text);
    hinted.metadata.labels.app = 'hinted';
    // As the registry does: the hint comes before the write.
    cache.written(key, c.hinted(text), hinted);
    hinted.metadata.labels.app = 'changed after the hint';
    if (c.withdrawn) cache.withdrawn(key, c.withdrawn(text));
    const kv = await store.create(key, text);
    await settle(cache, kv.modRevision);
    const cached = cache.get(key)!;
    assert.equal(cached.view.metadata.labels?.app, c.viewApp, c.name);
    assert.equal(cached.view.spec?.nodeName, 'n1', c.name);
    assert.equal(cached.json(), withResourceVersion(text, kv.modRevision), c.name);
  }
  cache.stop();
  await store.close();
});

test('an Event the registry wrote is served without decoding, its object reference intact', async () => {
  const store = SqliteStore.open(':memory:');
  const cache = new WatchCache(store);
  await cache.start();
  const event = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: 'e', namespace: 'default' },
    involvedObject: { kind: 'Pod', name: 'p', resourceVersion: '7' },
    reason: 'Scheduled',
  };
  const key = '/registry/core/events/default/e';
  const text = JSON.stringify(event);
  cache.written(key, text, event);
  const kv = await store.create(key, text);
  await settle(cache, kv.modRevision);
  const served = JSON.parse(cache.get(key)!.json());
  assert.equal(served.metadata.resourceVersion, String(kv.modRevision));
  assert.equal(served.involvedObject.resourceVersion, '7');
  assert.equal(withResourceVersion(kv.value, kv.modRevision), undefined, 'unknown text: long way');
  cache.stop();
  await store.close();
});
