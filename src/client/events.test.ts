import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../api/types.js';
import { EventRecorder } from './events.js';
import type { KubeClient } from './rest.js';

/** A client that only records the Event writes it is asked for. */
function fakeClient() {
  const creates: KObject[] = [];
  const patches: { name: string; patch: { count: number } }[] = [];
  const client = {
    create: async (_rt: unknown, obj: KObject) => {
      creates.push(obj);
      return obj;
    },
    patch: async (_rt: unknown, _ns: string, name: string, patch: { count: number }) => {
      patches.push({ name, patch });
      return {};
    },
  } as unknown as KubeClient;
  return { client, creates, patches };
}

const rs = (uid: string): KObject => ({
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  metadata: { name: `rs-${uid}`, namespace: 'default', uid },
});

test('events per object are limited to a burst of 25, each object on its own budget', async () => {
  const cases = [
    { name: 'one object, 30 distinct events', objects: ['a'], each: 30, creates: 25 },
    { name: 'two objects, 30 each', objects: ['a', 'b'], each: 30, creates: 50 },
    { name: 'under the burst', objects: ['a'], each: 10, creates: 10 },
  ];
  for (const c of cases) {
    const { client, creates } = fakeClient();
    const recorder = new EventRecorder(client, 'test');
    for (const uid of c.objects) {
      for (let i = 0; i < c.each; i++) await recorder.record(rs(uid), 'Normal', 'Made', `pod ${i}`);
    }
    assert.equal(creates.length, c.creates, c.name);
    const names = new Set(creates.map((e) => e.metadata.name));
    assert.equal(names.size, creates.length, `${c.name}: every Event has a name of its own`);
  }
});

test('a repeat bumps the count of the Event already written', async () => {
  const { client, creates, patches } = fakeClient();
  const recorder = new EventRecorder(client, 'test');
  for (let i = 0; i < 3; i++) await recorder.record(rs('a'), 'Warning', 'Failed', 'same');
  assert.equal(creates.length, 1);
  assert.deepEqual(
    patches.map((p) => [p.name, p.patch.count]),
    [
      [creates[0].metadata.name, 2],
      [creates[0].metadata.name, 3],
    ],
  );
});

test('recording stays fast with many objects (no scan of all remembered events)', async () => {
  const { client, creates } = fakeClient();
  const recorder = new EventRecorder(client, 'test');
  const started = performance.now();
  for (let i = 0; i < 20_000; i++) await recorder.record(rs(`u${i}`), 'Normal', 'Made', 'x');
  assert.equal(creates.length, 20_000);
  assert.ok(performance.now() - started < 5_000, 'well under a quadratic scan');
});

test("normal() sends after the caller's turn, or after delayMs when one is given", async () => {
  const { client, creates } = fakeClient();
  const soon = new EventRecorder(client, 'test');
  soon.normal(rs('a'), 'Started', 'now');
  assert.equal(creates.length, 0, "not within the caller's turn");
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.equal(creates.length, 1);

  const later = new EventRecorder(client, 'test', undefined, 40);
  later.normal(rs('b'), 'Started', 'one');
  later.normal(rs('b'), 'Created', 'two');
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(creates.length, 1, 'still waiting');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(
    creates.slice(1).map((e) => (e as unknown as { message: string }).message),
    ['one', 'two'],
  );
});
