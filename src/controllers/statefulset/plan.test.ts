import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StatefulSet } from '../../api/apps-workloads.js';
import type { Pod } from '../../api/types.js';
import { REVISION_HASH_LABEL } from '../history.js';
import {
  computeSetStatus,
  maxUnavailableOf,
  ordinalOf,
  planSet,
  revisionForOrdinal,
  type SetSnapshot,
} from './plan.js';

/** A pod by code: `<ordinal>:<revision>[:ready|:pending|:failed|:gone]` (gone = terminating). */
function pod(code: string): [number, Pod] {
  const [ord, revision, state = 'ready'] = code.split(':');
  const phase = { ready: 'Running', pending: 'Pending', failed: 'Failed', gone: 'Running' }[
    state
  ] as 'Running';
  return [
    Number(ord),
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `web-${ord}`,
        labels: { [REVISION_HASH_LABEL]: revision },
        ...(state === 'gone' ? { deletionTimestamp: '2024-01-01T00:00:00Z' } : {}),
      },
      spec: { containers: [] },
      status: {
        phase,
        conditions: [{ type: 'Ready', status: state === 'ready' ? 'True' : 'False' }],
      },
    },
  ];
}

const healthy = (p: Pod) =>
  !p.metadata.deletionTimestamp &&
  p.status?.phase === 'Running' &&
  (p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false);

interface Case {
  name: string;
  replicas: number;
  pods: string[];
  parallel?: boolean;
  onDelete?: boolean;
  partition?: number;
  maxUnavailable?: number;
  create: number[];
  delete: string[];
}

const cases: Case[] = [
  {
    name: 'OrderedReady starts with ordinal 0 only',
    replicas: 3,
    pods: [],
    create: [0],
    delete: [],
  },
  {
    name: 'OrderedReady waits for a pending predecessor',
    replicas: 3,
    pods: ['0:r1:pending'],
    create: [],
    delete: [],
  },
  {
    name: 'OrderedReady creates the next ordinal once predecessors are ready',
    replicas: 3,
    pods: ['0:r1', '1:r1'],
    create: [2],
    delete: [],
  },
  {
    name: 'a deleted pod in the middle is recreated first',
    replicas: 3,
    pods: ['0:r1', '2:r1'],
    create: [1],
    delete: [],
  },
  {
    name: 'a failed pod is deleted, to be recreated with its name',
    replicas: 3,
    pods: ['0:r1', '1:r1:failed', '2:r1'],
    create: [],
    delete: ['web-1/failed'],
  },
  {
    name: 'Parallel creates every missing ordinal at once',
    replicas: 3,
    pods: ['1:r1:pending'],
    parallel: true,
    create: [0, 2],
    delete: [],
  },
  {
    name: 'OrderedReady scales down from the highest ordinal, one at a time',
    replicas: 1,
    pods: ['0:r1', '1:r1', '2:r1'],
    create: [],
    delete: ['web-2/condemned'],
  },
  {
    name: 'OrderedReady waits for a terminating pod before the next',
    replicas: 1,
    pods: ['0:r1', '1:r1', '2:r1:gone'],
    create: [],
    delete: [],
  },
  {
    name: 'OrderedReady does not scale down while a kept pod is unhealthy',
    replicas: 1,
    pods: ['0:r1:pending', '1:r1'],
    create: [],
    delete: [],
  },
  {
    name: 'Parallel scales down all at once',
    replicas: 1,
    pods: ['0:r2', '1:r2', '2:r2'],
    parallel: true,
    create: [],
    delete: ['web-1/condemned', 'web-2/condemned'],
  },
  {
    name: 'RollingUpdate replaces the highest ordinal first',
    replicas: 3,
    pods: ['0:r1', '1:r1', '2:r1'],
    create: [],
    delete: ['web-2/update'],
  },
  {
    name: 'RollingUpdate waits for the replacement to be ready',
    replicas: 3,
    pods: ['0:r1', '1:r1', '2:r2:pending'],
    create: [],
    delete: [],
  },
  {
    name: 'RollingUpdate moves down once the replacement is ready',
    replicas: 3,
    pods: ['0:r1', '1:r1', '2:r2'],
    create: [],
    delete: ['web-1/update'],
  },
  {
    name: 'RollingUpdate stops at the partition',
    replicas: 3,
    pods: ['0:r1', '1:r1', '2:r2'],
    partition: 2,
    create: [],
    delete: [],
  },
  {
    name: 'RollingUpdate with maxUnavailable 2 replaces two at once',
    replicas: 4,
    pods: ['0:r1', '1:r1', '2:r1', '3:r1'],
    maxUnavailable: 2,
    create: [],
    delete: ['web-2/update', 'web-3/update'],
  },
  {
    name: 'Parallel RollingUpdate still respects maxUnavailable',
    replicas: 3,
    pods: ['0:r1', '1:r1', '2:r2:pending'],
    parallel: true,
    create: [],
    delete: [],
  },
  {
    name: 'OnDelete never deletes for an update',
    replicas: 2,
    pods: ['0:r1', '1:r1'],
    onDelete: true,
    create: [],
    delete: [],
  },
];

for (const c of cases) {
  test(`planSet: ${c.name}`, () => {
    const snapshot: SetSnapshot = {
      replicas: c.replicas,
      parallel: c.parallel ?? false,
      pods: new Map(c.pods.map(pod)),
      updateRevision: 'r2',
      rollingUpdate: c.onDelete
        ? undefined
        : { partition: c.partition ?? 0, maxUnavailable: c.maxUnavailable ?? 1 },
      healthy,
    };
    const plan = planSet(snapshot);
    assert.deepEqual(plan.create, c.create);
    assert.deepEqual(plan.delete.map((d) => `${d.pod.metadata.name}/${d.reason}`).sort(), c.delete);
  });
}

test('ordinalOf: only `<set>-<n>` names are members', () => {
  const table: [string, number | undefined][] = [
    ['web-0', 0],
    ['web-12', 12],
    ['web-01', undefined],
    ['web-', undefined],
    ['web-x', undefined],
    ['webs-1', undefined],
    ['web-1-2', undefined],
  ];
  for (const [name, want] of table) assert.equal(ordinalOf('web', name), want, name);
});

function sts(spec: Partial<StatefulSet['spec']>): StatefulSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'web', generation: 2 },
    spec: { selector: {}, template: { spec: { containers: [] } }, replicas: 4, ...spec },
  };
}

test('revisionForOrdinal: below the partition keeps the current revision', () => {
  const partitioned = sts({
    updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } },
  });
  assert.equal(revisionForOrdinal(partitioned, 1, 'cur', 'upd'), 'cur');
  assert.equal(revisionForOrdinal(partitioned, 2, 'cur', 'upd'), 'upd');
  const onDelete = sts({ updateStrategy: { type: 'OnDelete' } });
  assert.equal(revisionForOrdinal(onDelete, 0, 'cur', 'upd'), 'upd');
});

test('maxUnavailableOf: default 1, percentages round down but never below 1', () => {
  assert.equal(maxUnavailableOf(sts({})), 1);
  const pct = (v: string | number) =>
    maxUnavailableOf(sts({ updateStrategy: { rollingUpdate: { maxUnavailable: v } } }));
  assert.equal(pct('50%'), 2);
  assert.equal(pct('10%'), 1);
  assert.equal(pct(3), 3);
});

test('computeSetStatus: the update revision becomes current once all pods run it ready', () => {
  const pods = ['0:r1', '1:r2', '2:r2:pending'].map((c) => pod(c)[1]);
  const mid = computeSetStatus(sts({ replicas: 3 }), pods, 'r1', 'r2', 0, Date.now());
  assert.deepEqual(mid, {
    observedGeneration: 2,
    replicas: 3,
    readyReplicas: 2,
    availableReplicas: 2,
    currentReplicas: 1,
    updatedReplicas: 2,
    currentRevision: 'r1',
    updateRevision: 'r2',
    collisionCount: 0,
  });
  const done = ['0:r2', '1:r2', '2:r2'].map((c) => pod(c)[1]);
  const end = computeSetStatus(sts({ replicas: 3 }), done, 'r1', 'r2', 0, Date.now());
  assert.equal(end.currentRevision, 'r2');
  assert.equal(end.currentReplicas, 3);
  const onDelete = sts({ replicas: 3, updateStrategy: { type: 'OnDelete' } });
  assert.equal(computeSetStatus(onDelete, done, 'r1', 'r2', 0, Date.now()).currentRevision, 'r1');
});
