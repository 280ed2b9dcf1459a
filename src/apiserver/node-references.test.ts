import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { NodeReferences } from './node-references.js';
import { WatchCache } from './watch-cache.js';

const PODS = '/registry/core/pods/';

function pod(name: string, node: string | undefined, secret: string) {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'ns' },
    spec: {
      ...(node ? { nodeName: node } : {}),
      containers: [{ name: 'c', image: 'x' }],
      volumes: [{ name: 'v', secret: { secretName: secret } }],
    },
  });
}

test('a node may read what its pods refer to, following binds, changes and deletions', async () => {
  const store = SqliteStore.open(':memory:');
  const cache = new WatchCache(store);
  try {
    await store.create(`${PODS}ns/a`, pod('a', 'n1', 's-a'));
    await store.create(`${PODS}ns/pending`, pod('pending', undefined, 's-p'));
    await cache.start();
    const refs = new NodeReferences(cache);
    assert.equal(refs.refers('n1', 'Secret/ns/s-a'), true);
    assert.equal(refs.refers('n2', 'Secret/ns/s-a'), false);
    assert.equal(refs.refers('n1', 'Secret/ns/s-p'), false, 'an unbound pod gives nothing');
    assert.equal(refs.refers('n1', 'Secret/other/s-a'), false, 'another namespace');

    const current = (await store.get(`${PODS}ns/pending`))!;
    let kv = await store.update(
      `${PODS}ns/pending`,
      pod('pending', 'n2', 's-p'),
      current.modRevision,
    );
    await cache.waitFor(kv.modRevision, 2000);
    assert.equal(refs.refers('n2', 'Secret/ns/s-p'), true, 'bound now');

    const a = (await store.get(`${PODS}ns/a`))!;
    kv = await store.update(`${PODS}ns/a`, pod('a', 'n1', 's-new'), a.modRevision);
    await cache.waitFor(kv.modRevision, 2000);
    assert.equal(refs.refers('n1', 'Secret/ns/s-a'), false, 'the pod no longer names it');
    assert.equal(refs.refers('n1', 'Secret/ns/s-new'), true);

    await store.delete(`${PODS}ns/a`);
    await cache.waitFor(await store.currentRevision(), 2000);
    assert.equal(refs.refers('n1', 'Secret/ns/s-new'), false, 'the pod is gone');
  } finally {
    cache.stop();
    await store.close();
  }
});
