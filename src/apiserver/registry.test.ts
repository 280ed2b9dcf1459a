import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.js';
import { byGroupResource } from '../api/resources.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { defaultAdmission } from './admission/chain.js';
import { Registry } from './registry.js';

const CONFIGMAPS = byGroupResource.get('/configmaps')!;
const NAMESPACES = byGroupResource.get('/namespaces')!;

test('a generated name that is taken gets another suffix, a few times at most', async () => {
  const suffixes: string[] = [];
  const store = SqliteStore.open(':memory:');
  const registry = new Registry(store, undefined, defaultAdmission(), undefined, () =>
    suffixes.shift()!,
  );
  try {
    await registry.create(NAMESPACES, undefined, { metadata: { name: 'default' } });
    const make = () =>
      registry.create(CONFIGMAPS, 'default', { metadata: { generateName: 'cm-' } });

    suffixes.push('aaaaa');
    assert.equal((await make()).metadata.name, 'cm-aaaaa');
    suffixes.push('aaaaa', 'aaaaa', 'bbbbb');
    assert.equal((await make()).metadata.name, 'cm-bbbbb', 'two collisions, then a free name');

    // Eight names taken in a row (the first and seven retries): the create fails as a
    // conflict on the last name tried, and nothing is written.
    suffixes.push(...Array(8).fill('aaaaa'));
    await assert.rejects(
      make(),
      (err: unknown) => err instanceof ApiError && err.reason === 'AlreadyExists',
    );
    assert.equal(suffixes.length, 0, 'every retry drew a new suffix');
    const names = (await store.list('/registry/core/configmaps/')).items.map((kv) => kv.key);
    assert.deepEqual(names, [
      '/registry/core/configmaps/default/cm-aaaaa',
      '/registry/core/configmaps/default/cm-bbbbb',
    ]);

    // A name the client chose is never changed.
    await assert.rejects(
      registry.create(CONFIGMAPS, 'default', { metadata: { name: 'cm-aaaaa' } }),
      (err: unknown) => err instanceof ApiError && err.reason === 'AlreadyExists',
    );
  } finally {
    await store.close();
  }
});
