import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod } from '../api/types.js';
import { compareForDeletion, isPodAvailable, selectVictims } from './pods.js';

interface PodFacts {
  name: string;
  node?: string;
  phase?: 'Pending' | 'Running' | 'Unknown';
  readyAt?: string;
  restarts?: number;
  created?: string;
}

function pod(f: PodFacts): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: f.name, creationTimestamp: f.created ?? '2024-01-01T00:00:00Z' },
    spec: { containers: [{ name: 'c', image: 'i' }], ...(f.node ? { nodeName: f.node } : {}) },
    status: {
      phase: f.phase ?? 'Running',
      conditions: f.readyAt
        ? [{ type: 'Ready', status: 'True', lastTransitionTime: f.readyAt }]
        : [{ type: 'Ready', status: 'False' }],
      containerStatuses: [
        {
          name: 'c',
          ready: !!f.readyAt,
          restartCount: f.restarts ?? 0,
          image: 'i',
          imageID: '',
          state: {},
          lastState: {},
        },
      ],
    },
  };
}

const T1 = '2024-01-01T00:01:00Z';
const T2 = '2024-01-01T00:02:00Z';

const cases: { name: string; first: PodFacts; second: PodFacts }[] = [
  { name: 'unassigned before assigned', first: { name: 'a' }, second: { name: 'b', node: 'n' } },
  {
    name: 'Pending before Unknown',
    first: { name: 'a', node: 'n', phase: 'Pending' },
    second: { name: 'b', node: 'n', phase: 'Unknown' },
  },
  {
    name: 'Unknown before Running',
    first: { name: 'a', node: 'n', phase: 'Unknown' },
    second: { name: 'b', node: 'n', phase: 'Running' },
  },
  {
    name: 'not ready before ready',
    first: { name: 'a', node: 'n' },
    second: { name: 'b', node: 'n', readyAt: T1 },
  },
  {
    name: 'ready more recently first',
    first: { name: 'a', node: 'n', readyAt: T2 },
    second: { name: 'b', node: 'n', readyAt: T1 },
  },
  {
    name: 'more restarts first',
    first: { name: 'a', node: 'n', readyAt: T1, restarts: 3 },
    second: { name: 'b', node: 'n', readyAt: T1, restarts: 1 },
  },
  {
    name: 'newer first',
    first: { name: 'a', node: 'n', readyAt: T1, created: T2 },
    second: { name: 'b', node: 'n', readyAt: T1, created: T1 },
  },
];

for (const c of cases) {
  test(`deletion order: ${c.name}`, () => {
    assert.ok(compareForDeletion(pod(c.first), pod(c.second)) < 0);
    assert.ok(compareForDeletion(pod(c.second), pod(c.first)) > 0);
    const victims = selectVictims([pod(c.second), pod(c.first)], 1);
    assert.equal(victims[0].metadata.name, c.first.name);
  });
}

test('availability waits minReadySeconds after the pod became ready', () => {
  const p = pod({ name: 'a', readyAt: T1 });
  const readyAt = Date.parse(T1);
  const table: [number, number, boolean][] = [
    [0, readyAt, true],
    [10, readyAt + 9_000, false],
    [10, readyAt + 10_000, true],
  ];
  for (const [minReady, now, want] of table) {
    assert.equal(
      isPodAvailable(p, minReady, now),
      want,
      `minReady ${minReady} at +${now - readyAt}`,
    );
  }
  assert.equal(isPodAvailable(pod({ name: 'b' }), 0, readyAt), false);
});
