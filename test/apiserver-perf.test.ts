import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from '../src/api/errors.js';
import { ensureServingCert } from '../src/apiserver/pki.js';
import { ApiServer } from '../src/apiserver/server.js';
import { byGroupResource } from '../src/api/resources.js';
import type { KObject } from '../src/api/types.js';
import { KubeClient, type WatchEvent } from '../src/client/rest.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';

/**
 * What the API server does for speed must not change what clients see: its Unix socket
 * (plain HTTP, for the components of `flyces up`) serves the same API with the same tokens
 * and only to its owner; long lists, streamed in chunks, arrive whole and in order.
 */

const CONFIGMAPS = byGroupResource.get('/configmaps')!;

describe('API server: Unix socket and streamed lists', () => {
  let dir: string;
  let store: SqliteStore;
  let server: ApiServer;
  let url: string;
  let token: string;
  let socketPath: string;
  let client: KubeClient;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flyces-sock-'));
    const tls = await ensureServingCert(join(dir, 'tls'), ['127.0.0.1']);
    store = SqliteStore.open(join(dir, 'store.db'));
    token = randomBytes(16).toString('hex');
    socketPath = join(dir, 'api.sock');
    server = new ApiServer({ store, tokens: [token], port: 0, tls, socketPath });
    const { port } = await server.start();
    url = `https://127.0.0.1:${port}`;
    client = new KubeClient({ server: url, token, caPem: tls.caPem, socketPath });
  });

  after(async () => {
    client?.close();
    await server?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the socket is private to its owner', () => {
    assert.equal(statSync(socketPath).mode & 0o777, 0o600);
  });

  test('requests need a valid token there too', async () => {
    const bad = new KubeClient({ server: url, token: 'wrong', caPem: '', socketPath });
    await assert.rejects(
      bad.request('GET', '/version'),
      (err) => err instanceof ApiError && err.reason === 'Unauthorized',
    );
    bad.close();
  });

  test('create, get, patch and watch work as over HTTPS', async () => {
    const events: WatchEvent[] = [];
    const watch = client.watch(CONFIGMAPS, 'default', { resourceVersion: '' }, (e) =>
      events.push(e),
    );
    const metadata = { name: 'c', namespace: 'default' };
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata, data: { a: '1' } };
    const created = await client.create<KObject>(CONFIGMAPS, cm);
    assert.equal(created.data.a, '1');
    await client.patch(CONFIGMAPS, 'default', 'c', { data: { a: '2' } });
    assert.equal((await client.get<KObject>(CONFIGMAPS, 'default', 'c')).data.a, '2');
    const deadline = Date.now() + 5000;
    while (events.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    watch.stop();
    assert.deepEqual(
      events.map((e) => [e.type, e.object.data?.a]),
      [
        ['ADDED', '1'],
        ['MODIFIED', '2'],
      ],
    );
  });

  test('a list long enough to be streamed arrives whole, in key order', async () => {
    const count = 700;
    const names = Array.from({ length: count }, (_, i) => `s${String(i).padStart(4, '0')}`);
    for (let i = 0; i < count; i += 50) {
      await Promise.all(
        names.slice(i, i + 50).map((name) =>
          client.create(CONFIGMAPS, {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name, namespace: 'default', labels: { set: 'streamed' } },
            data: { pad: 'x'.repeat(2000) },
          }),
        ),
      );
    }
    const list = await client.list(CONFIGMAPS, 'default', { labelSelector: 'set=streamed' });
    assert.deepEqual(
      list.items.map((i) => i.metadata.name),
      names,
    );
    assert.ok(Number(list.resourceVersion) > 0);
  });
});
