import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.js';
import { byGroupResource } from '../api/resources.js';
import type { KObject } from '../api/types.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { Registry } from './registry.js';
import { bindAll, MAX_BULK_BINDINGS, type BindAuthorizer } from './binding.js';

const PODS = byGroupResource.get('/pods')!;
const NAMESPACES = byGroupResource.get('/namespaces')!;

async function setup(names: string[]) {
  const registry = new Registry(SqliteStore.open(':memory:'));
  await registry.create(NAMESPACES, undefined, { metadata: { name: 'default' } });
  const uids = new Map<string, string>();
  for (const name of names) {
    const pod = await registry.create(PODS, 'default', {
      metadata: { name },
      spec: { containers: [{ name: 'c', image: 'pause:1' }] },
    });
    uids.set(name, pod.metadata.uid!);
  }
  return { registry, uids };
}

function binding(name: unknown, node: unknown, extra: Record<string, unknown> = {}): KObject {
  return {
    apiVersion: 'v1',
    kind: 'Binding',
    metadata: { name, namespace: 'default', ...extra },
    target: { kind: 'Node', name: node },
  } as KObject;
}

const allowAll: BindAuthorizer = async () => undefined;
const noFaults = (err: unknown) => assert.fail(`unexpected fault: ${err}`);

/** Each item's outcome as 'ok' or `reason: message`. */
function outcomes(items: { status: string; reason?: string; message?: string }[]): string[] {
  return items.map((s) => (s.status === 'Success' ? 'ok' : `${s.reason}: ${s.message}`));
}

test('bulk binds: each item binds or fails on its own, answers in order', async () => {
  const { registry, uids } = await setup(['a', 'b', 'c', 'd', 'e']);
  const body = {
    items: [
      binding('a', 'n1'),
      binding('b', 'n2', { uid: 'not-b' }),
      binding('c', 'No_Such/Node'),
      binding('gone', 'n1'),
      binding(undefined, 'n1'),
      { metadata: { name: 'd' }, target: { name: 'n1' } },
      binding('e', 'n3', { uid: uids.get('e') }),
      binding('a', 'n2'),
      'not an object',
    ],
  };
  const answer = await bindAll(registry, PODS, body, allowAll, noFaults);
  assert.equal(answer.kind, 'BindingResultList');
  const got = outcomes(answer.items);
  const expected: (string | RegExp)[] = [
    'ok',
    /^Conflict: /,
    /^Invalid: .*target\.name/,
    /^NotFound: pods "gone" not found/,
    /^Invalid: .*items\[4\]\.metadata\.name: Required/,
    /^Invalid: .*items\[5\]\.metadata\.namespace: Required/,
    'ok',
    // The same pod twice in one request: the second finds it bound by the first.
    /^Conflict: pod a is already assigned to node "n1"/,
    /^Invalid: .*items\[8\]\.metadata\.name: Required/,
  ];
  assert.equal(got.length, expected.length);
  expected.forEach((e, i) =>
    typeof e === 'string' ? assert.equal(got[i], e, `item ${i}`) : assert.match(got[i], e),
  );
  const nodeOf = async (name: string) =>
    (await registry.get(PODS, 'default', name)).spec.nodeName as string | undefined;
  assert.equal(await nodeOf('a'), 'n1');
  assert.equal(await nodeOf('e'), 'n3');
  for (const name of ['b', 'c', 'd']) assert.equal(await nodeOf(name), undefined, name);
  const scheduled = (await registry.get(PODS, 'default', 'e')).status.conditions;
  assert.equal(scheduled.find((c: { type: string }) => c.type === 'PodScheduled').status, 'True');
});

test('bulk binds: each item is authorized on its own', async () => {
  const { registry } = await setup(['a', 'b']);
  const asked: string[] = [];
  const onlyA: BindAuthorizer = async (namespace, name) => {
    asked.push(`${namespace}/${name}`);
    return name === 'a' ? undefined : new ApiError('Forbidden', `may not bind ${name}`);
  };
  const body = { items: [binding('a', 'n1'), binding('b', 'n1')] };
  const answer = await bindAll(registry, PODS, body, onlyA, noFaults);
  assert.deepEqual(outcomes(answer.items), ['ok', 'Forbidden: may not bind b']);
  assert.deepEqual(asked.sort(), ['default/a', 'default/b']);
  assert.equal((await registry.get(PODS, 'default', 'b')).spec.nodeName, undefined);
});

test('bulk binds: a body that is not a BindingList, or too long, is refused whole', async () => {
  const { registry } = await setup(['a']);
  const tooMany = Array.from({ length: MAX_BULK_BINDINGS + 1 }, () => binding('a', 'n1'));
  const cases: [unknown, RegExp][] = [
    [undefined, /^items: /],
    [{}, /^items: /],
    [{ items: 'a' }, /^items: /],
    [[binding('a', 'n1')], /^items: /],
    [{ items: tooMany }, new RegExp(`^items: at most ${MAX_BULK_BINDINGS}`)],
  ];
  for (const [body, message] of cases) {
    await assert.rejects(bindAll(registry, PODS, body, allowAll, noFaults), (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.reason, 'BadRequest');
      assert.match(err.message, message);
      return true;
    });
  }
  assert.equal((await registry.get(PODS, 'default', 'a')).spec.nodeName, undefined);
});

test('bulk binds: a fault of the server fails only its item, and is reported', async () => {
  const { registry } = await setup(['a', 'b']);
  const faults: string[] = [];
  const faulty: BindAuthorizer = async (_ns, name) => {
    if (name === 'b') throw new Error('authorizer broke');
    return undefined;
  };
  const body = { items: [binding('a', 'n1'), binding('b', 'n1')] };
  const answer = await bindAll(registry, PODS, body, faulty, (err, ns, name) =>
    faults.push(`${ns}/${name}: ${(err as Error).message}`),
  );
  assert.deepEqual(outcomes(answer.items), [
    'ok',
    'InternalError: Internal error occurred: authorizer broke',
  ]);
  assert.deepEqual(faults, ['default/b: authorizer broke']);
});

test('bulk binds: names no pods/NAME/binding path could carry are invalid, not looked up', async () => {
  const { registry } = await setup(['a']);
  const item = (name: string, namespace: string) => ({
    metadata: { name, namespace },
    target: { name: 'n1' },
  });
  const body = {
    items: [item('a/b', 'default'), item('..', 'default'), item('a', 'default/x'), item('a', '.')],
  };
  const answer = await bindAll(registry, PODS, body, allowAll, noFaults);
  const got = outcomes(answer.items);
  [
    /^Invalid: .*items\[0\]\.metadata\.name: Invalid value: "a\/b"/,
    /^Invalid: .*items\[1\]\.metadata\.name: Invalid value: "\.\."/,
    /^Invalid: .*items\[2\]\.metadata\.namespace: Invalid value: "default\/x"/,
    /^Invalid: .*items\[3\]\.metadata\.namespace: Invalid value: "\."/,
  ].forEach((e, i) => assert.match(got[i], e));
  assert.equal((await registry.get(PODS, 'default', 'a')).spec.nodeName, undefined);
});

test('bulk binds: a dry run checks every item and writes nothing', async () => {
  const { registry } = await setup(['a', 'b']);
  const before = (await registry.get(PODS, 'default', 'a')).metadata.resourceVersion;
  const body = { items: [binding('a', 'n1'), binding('gone', 'n1')] };
  const answer = await bindAll(registry, PODS, body, allowAll, noFaults, true);
  assert.deepEqual(outcomes(answer.items), ['ok', 'NotFound: pods "gone" not found']);
  const a = await registry.get(PODS, 'default', 'a');
  assert.equal(a.spec.nodeName, undefined);
  assert.equal(a.metadata.resourceVersion, before);
});
