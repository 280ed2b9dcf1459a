import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.js';
import type { KubeClient } from '../client/rest.js';
import type { KObject, Pod } from '../api/types.js';
import { BindingBatcher, defaultBinder, MAX_BATCH } from './binder.js';
import { Code } from './framework/interface.js';

interface Sent {
  method: string;
  path: string;
  body: any;
}

/**
 * A stand-in for the API client that records requests and answers with `answer`, which
 * may throw as the client does for an error response.
 */
function fakeClient(answer: (req: Sent) => unknown): { client: KubeClient; sent: Sent[] } {
  const sent: Sent[] = [];
  const client = {
    async request(method: string, path: string, opts: { body?: unknown }) {
      const req = { method, path, body: structuredClone(opts.body) };
      sent.push(req);
      return answer(req);
    },
  } as unknown as KubeClient;
  return { client, sent };
}

function binding(name: string): KObject {
  return {
    apiVersion: 'v1',
    kind: 'Binding',
    metadata: { name, namespace: 'default' },
    target: { kind: 'Node', name: 'n1' },
  };
}

const ok = { kind: 'Status', status: 'Success', code: 201 };

/** What each of the bind promises came to: 'ok' or the error's reason. */
async function settle(binds: Promise<void>[]): Promise<string[]> {
  const results = await Promise.allSettled(binds);
  return results.map((r) =>
    r.status === 'fulfilled' ? 'ok' : ((r.reason as ApiError).reason ?? String(r.reason)),
  );
}

test('binds asked for in one turn go in one bulk request; each gets its own answer', async () => {
  const { client, sent } = fakeClient((req) => ({
    items: req.body.items.map((b: KObject) =>
      b.metadata.name === 'b'
        ? new ApiError('Conflict', 'pod b is already assigned').toStatus()
        : ok,
    ),
  }));
  const batcher = new BindingBatcher(client);
  const first = ['a', 'b', 'c'].map((n) => batcher.bind(binding(n)));
  assert.deepEqual(await settle(first), ['ok', 'Conflict', 'ok']);
  const second = ['d'].map((n) => batcher.bind(binding(n)));
  assert.deepEqual(await settle(second), ['ok']);
  assert.deepEqual(
    sent.map((s) => `${s.method} ${s.path} ${s.body.items.map((b: KObject) => b.metadata.name)}`),
    ['POST /flyces/v1/bindings a,b,c', 'POST /flyces/v1/bindings d'],
  );
  assert.equal(sent[0].body.kind, 'BindingList');
});

test('a full batch is sent at once, without waiting for the turn to end', async () => {
  const { client, sent } = fakeClient((req) => ({ items: req.body.items.map(() => ok) }));
  const batcher = new BindingBatcher(client);
  const binds = Array.from({ length: MAX_BATCH + 1 }, (_, i) => batcher.bind(binding(`p${i}`)));
  assert.equal(sent.length, 1, 'the first MAX_BATCH went before the turn ended');
  assert.equal(sent[0].body.items.length, MAX_BATCH);
  assert.deepEqual(new Set(await settle(binds)), new Set(['ok']));
  assert.deepEqual(
    sent.map((s) => s.body.items.length),
    [MAX_BATCH, 1],
  );
});

test('a failed bulk request fails each of its binds with its error', async () => {
  const { client } = fakeClient(() => {
    throw new ApiError('TooManyRequests', 'try again later');
  });
  const batcher = new BindingBatcher(client);
  const binds = ['a', 'b'].map((n) => batcher.bind(binding(n)));
  assert.deepEqual(await settle(binds), ['TooManyRequests', 'TooManyRequests']);
});

test('an answer without a result for an item fails that item', async () => {
  const { client } = fakeClient(() => ({ items: [ok] }));
  const batcher = new BindingBatcher(client);
  const results = await Promise.allSettled(['a', 'b'].map((n) => batcher.bind(binding(n))));
  assert.equal(results[0].status, 'fulfilled');
  assert.equal(results[1].status, 'rejected');
  assert.match(String((results[1] as PromiseRejectedResult).reason), /no result for item 1/);
});

test('a server without the bulk path gets one subresource POST per pod from then on', async () => {
  const { client, sent } = fakeClient((req) => {
    if (req.path === '/flyces/v1/bindings') {
      throw new ApiError('NotFound', 'the server could not find the requested resource');
    }
    if (req.path.includes('/pods/b/')) throw new ApiError('Conflict', 'already assigned');
    return ok;
  });
  const batcher = new BindingBatcher(client);
  assert.deepEqual(await settle(['a', 'b'].map((n) => batcher.bind(binding(n)))), [
    'ok',
    'Conflict',
  ]);
  assert.deepEqual(await settle([batcher.bind(binding('c'))]), ['ok']);
  assert.deepEqual(
    sent.map((s) => s.path),
    [
      '/flyces/v1/bindings',
      '/api/v1/namespaces/default/pods/a/binding',
      '/api/v1/namespaces/default/pods/b/binding',
      '/api/v1/namespaces/default/pods/c/binding',
    ],
  );
});

test('the default binder maps outcomes to statuses: gone or bound is unresolvable', async () => {
  const reasons: Record<string, () => unknown> = {
    a: () => ok,
    b: () => new ApiError('NotFound', 'pods "b" not found').toStatus(),
    c: () => new ApiError('Conflict', 'pod c is already assigned').toStatus(),
    d: () => new ApiError('InternalError', 'store broke').toStatus(),
  };
  const { client } = fakeClient((req) => ({
    items: req.body.items.map((b: KObject) => reasons[b.metadata.name!]()),
  }));
  const binder = defaultBinder(client);
  const pod = (name: string) =>
    ({ metadata: { name, namespace: 'default', uid: `uid-${name}` }, spec: {} }) as Pod;
  const statuses = await Promise.all(
    ['a', 'b', 'c', 'd'].map((n) => binder.bind(new Map(), pod(n), 'n1')),
  );
  assert.deepEqual(
    statuses.map((s) => s?.code),
    [
      Code.Success,
      Code.UnschedulableAndUnresolvable,
      Code.UnschedulableAndUnresolvable,
      Code.Error,
    ],
  );
  assert.match(statuses[3]?.reasons.join() ?? '', /store broke/);
});
