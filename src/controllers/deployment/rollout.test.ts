import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Deployment } from '../../api/types.js';
import {
  newReplicaSetReplicas,
  oldReplicaSetTargets,
  resolveFenceposts,
  resolveIntOrPercent,
  type ReplicaSetView,
} from './rollout.js';

function deploy(
  replicas: number,
  maxSurge?: number | string,
  maxUnavailable?: number | string,
  type: 'RollingUpdate' | 'Recreate' = 'RollingUpdate',
): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'd' },
    spec: {
      replicas,
      selector: {},
      template: { spec: { containers: [] } },
      strategy: { type, rollingUpdate: { maxSurge, maxUnavailable } },
    },
  };
}

test('int-or-percent resolution rounds as asked', () => {
  const table: [number | string | undefined, number, boolean, number][] = [
    [undefined, 10, true, 0],
    [3, 10, true, 3],
    ['25%', 10, true, 3],
    ['25%', 10, false, 2],
    ['100%', 7, false, 7],
    ['0%', 7, true, 0],
  ];
  for (const [value, total, up, want] of table) {
    assert.equal(resolveIntOrPercent(value, total, up), want, `${value} of ${total}`);
  }
});

test('fenceposts: surge rounds up, unavailable down, never both zero', () => {
  const table: { d: Deployment; surge: number; unavailable: number }[] = [
    { d: deploy(4), surge: 1, unavailable: 1 },
    { d: deploy(3), surge: 1, unavailable: 0 },
    { d: deploy(10, '30%', '30%'), surge: 3, unavailable: 3 },
    { d: deploy(1, '10%', '10%'), surge: 1, unavailable: 0 },
    { d: deploy(3, 0, '10%'), surge: 0, unavailable: 1 },
    { d: deploy(3, 2, 5), surge: 2, unavailable: 3 },
    { d: deploy(3, 2, 1, 'Recreate'), surge: 0, unavailable: 0 },
  ];
  for (const [i, c] of table.entries()) {
    const got = resolveFenceposts(c.d);
    assert.deepEqual(got, { maxSurge: c.surge, maxUnavailable: c.unavailable }, `case ${i}`);
  }
});

function view(
  name: string,
  replicas: number,
  available = replicas,
  pods = replicas,
): ReplicaSetView {
  return { name, replicas, available, pods };
}

test('the new replica set grows only within maxSurge', () => {
  const table: {
    name: string;
    desired: number;
    surge: number;
    all: ReplicaSetView[];
    want: number;
  }[] = [
    { name: 'fresh', desired: 3, surge: 1, all: [view('n', 0), view('o', 3)], want: 1 },
    { name: 'surge used', desired: 3, surge: 1, all: [view('n', 1), view('o', 3)], want: 1 },
    { name: 'room made', desired: 3, surge: 1, all: [view('n', 1), view('o', 2)], want: 2 },
    { name: 'capped at desired', desired: 3, surge: 5, all: [view('n', 1), view('o', 0)], want: 3 },
    { name: 'shrinks above desired', desired: 2, surge: 1, all: [view('n', 5)], want: 2 },
    {
      name: 'pods awaiting deletion count',
      desired: 3,
      surge: 1,
      all: [view('n', 1), view('o', 2, 2, 3)],
      want: 1,
    },
  ];
  for (const c of table) {
    assert.equal(newReplicaSetReplicas(c.desired, c.surge, c.all[0], c.all), c.want, c.name);
  }
});

test('old replica sets shrink only as far as availability allows', () => {
  const table: {
    name: string;
    desired: number;
    unavailable: number;
    newRS: ReplicaSetView;
    old: ReplicaSetView[];
    want: Record<string, number>;
  }[] = [
    {
      name: 'new pods not ready yet: nothing',
      desired: 3,
      unavailable: 0,
      newRS: view('n', 1, 0),
      old: [view('o', 3)],
      want: {},
    },
    {
      name: 'one new pod available: one old goes',
      desired: 3,
      unavailable: 0,
      newRS: view('n', 1, 1),
      old: [view('o', 3)],
      want: { o: 2 },
    },
    {
      name: 'maxUnavailable lets one go early',
      desired: 4,
      unavailable: 1,
      newRS: view('n', 1, 0),
      old: [view('o', 4)],
      want: { o: 3 },
    },
    {
      name: 'unhealthy old pods go first, oldest set first',
      desired: 3,
      unavailable: 0,
      newRS: view('n', 1, 0),
      old: [view('a', 1, 0), view('b', 3, 3)],
      want: { a: 0 },
    },
    {
      name: 'a pending scale-down does not count as available',
      desired: 3,
      unavailable: 0,
      newRS: view('n', 2, 1),
      old: [view('o', 2, 2)],
      want: {},
    },
  ];
  for (const c of table) {
    const got = Object.fromEntries(oldReplicaSetTargets(c.desired, c.unavailable, c.newRS, c.old));
    assert.deepEqual(got, c.want, c.name);
  }
});
