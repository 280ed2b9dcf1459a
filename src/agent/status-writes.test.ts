import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { Pod, PodStatus } from '../api/types.js';
import { changedStatusFields, configChanged, StatusWrites } from './status-writes.js';

const running: PodStatus = {
  phase: 'Running',
  podIP: '10.42.0.5',
  conditions: [{ type: 'Ready', status: 'True' }],
  containerStatuses: [{ name: 'c', ready: true, restartCount: 0, image: 'i', imageID: '' }],
} as PodStatus;

function pod(rv: string, status: PodStatus | undefined, meta: object = {}, spec = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'ns', uid: 'u1', resourceVersion: rv, ...meta },
    spec: { nodeName: 'n', containers: [{ name: 'c', image: 'i' }], ...spec },
    status,
  } as Pod;
}

const pending = { phase: 'Pending' } as PodStatus;

test('config changes: anything but the status, resourceVersion and managedFields', () => {
  const old = pod('1', pending, { labels: { a: '1' } });
  const cases: [string, Pod, boolean][] = [
    ['status', pod('2', running, { labels: { a: '1' } }), false],
    ['managedFields', pod('2', pending, { labels: { a: '1' }, managedFields: [{}] }), false],
    ['labels', pod('2', pending, { labels: { a: '2' } }), true],
    ['annotations', pod('2', pending, { labels: { a: '1' }, annotations: { b: '' } }), true],
    ['deletion', pod('2', pending, { labels: { a: '1' }, deletionTimestamp: 'x' }), true],
    ['spec', pod('2', pending, { labels: { a: '1' } }, { activeDeadlineSeconds: 5 }), true],
    ['uid', pod('2', pending, { labels: { a: '1' }, uid: 'u2' }), true],
  ];
  for (const [name, p, want] of cases) assert.equal(configChanged(old, p), want, name);
});

test('changed status fields are compared by value', () => {
  assert.deepEqual(changedStatusFields(pending, running).sort(), [
    'conditions',
    'containerStatuses',
    'phase',
    'podIP',
  ]);
  assert.deepEqual(changedStatusFields(running, structuredClone(running)), []);
  assert.deepEqual(changedStatusFields(undefined, {} as PodStatus), []);
  assert.deepEqual(changedStatusFields({ ...running, message: 'x' }, running), ['message']);
});

test('an update is the agent own when it shows a status the agent sent', () => {
  const notReady = {
    ...running,
    conditions: [{ type: 'Ready', status: 'False', reason: 'NodeNotReady' }],
  } as PodStatus;
  const cases: [string, PodStatus[], Pod, Pod, boolean][] = [
    ['the status it sent', [running], pod('1', pending), pod('2', running), true],
    [
      'an earlier one of its writes',
      [pending, running],
      pod('1', undefined),
      pod('2', pending),
      true,
    ],
    ['two writes seen at once', [pending, running], pod('1', undefined), pod('3', running), true],
    ['nothing sent', [], pod('1', pending), pod('2', running), false],
    ['a status someone else wrote', [running], pod('1', running), pod('2', notReady), false],
    [
      'a field the agent does not write',
      [running],
      pod('1', running),
      pod('2', { ...running, nominatedNodeName: 'x' } as PodStatus),
      false,
    ],
    [
      'a field the agent wrote, removed',
      [running],
      pod('1', running),
      pod('2', { ...running, podIP: undefined } as PodStatus),
      false,
    ],
    [
      'its status and a label',
      [running],
      pod('1', pending),
      pod('2', running, { labels: { a: 'b' } }),
      false,
    ],
    [
      'its status and a deletion',
      [running],
      pod('1', pending),
      pod('2', running, { deletionTimestamp: 't' }),
      false,
    ],
    ['only the resourceVersion', [], pod('1', running), pod('2', running), true],
    ['a resync: the same version', [running], pod('2', running), pod('2', running), false],
    [
      'its status, for another pod uid',
      [running],
      pod('1', pending),
      pod('2', running, { uid: 'u2' }),
      false,
    ],
  ];
  for (const [name, sent, old, now, want] of cases) {
    const writes = new StatusWrites();
    for (const s of sent) writes.sent('u1', s);
    assert.equal(writes.isOwn(old, now), want, name);
  }
});

test('a write seen makes those sent before it past; forget drops them all', () => {
  const writes = new StatusWrites();
  writes.sent('u1', pending);
  writes.sent('u1', running);
  assert.equal(writes.isOwn(pod('1', undefined), pod('2', running)), true);
  // Someone sets the pod back to what the agent wrote first: not the agent's doing now.
  assert.equal(writes.isOwn(pod('2', running), pod('3', pending)), false);
  writes.forget('u1');
  assert.equal(writes.isOwn(pod('3', pending), pod('4', running)), false);
});

test('fields sent as undefined count as not sent', () => {
  const writes = new StatusWrites();
  writes.sent('u1', { ...running, message: undefined } as PodStatus);
  assert.equal(writes.isOwn(pod('1', pending), pod('2', running)), true);
});
