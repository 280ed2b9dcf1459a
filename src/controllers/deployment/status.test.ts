import { test } from 'node:test';
import assert from 'node:assert/strict';
import { timestamp, type Condition, type Deployment, type ReplicaSet } from '../../api/types.js';
import {
  computeDeploymentStatus,
  setCondition,
  untilDeadline,
  type RolloutEvent,
} from './status.js';

function deploy(replicas: number, conditions: Condition[] = [], generation = 2): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', generation },
    spec: {
      replicas,
      selector: {},
      template: { spec: { containers: [] } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      progressDeadlineSeconds: 600,
    },
    status: { conditions, replicas: 0, updatedReplicas: 0, availableReplicas: 0 },
  };
}

function rs(name: string, replicas: number, ready: number, available: number): ReplicaSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name },
    spec: { replicas, selector: {}, template: { spec: { containers: [] } } },
    status: { replicas, readyReplicas: ready, availableReplicas: available },
  };
}

/** A deployment whose last progress was an hour ago, with the counts it still has. */
function stuck(): Deployment {
  const d = deploy(3, [cond('Progressing', 'ReplicaSetUpdated', '2024-01-01T00:00:00Z')]);
  d.status = {
    ...d.status,
    replicas: 3,
    updatedReplicas: 1,
    readyReplicas: 2,
    availableReplicas: 2,
  };
  return d;
}

const NOW = new Date('2024-01-01T01:00:00Z');
const cond = (type: string, reason: string, at: string): Condition => ({
  type,
  status: 'True',
  reason,
  lastUpdateTime: at,
  lastTransitionTime: at,
});

test('deployment status', () => {
  const table: {
    name: string;
    d: Deployment;
    all: ReplicaSet[];
    counts: [number, number, number, number, number];
    available: string;
    progressing: string;
  }[] = [
    {
      name: 'mid rollout',
      d: deploy(3),
      all: [rs('new', 1, 1, 1), rs('old', 3, 3, 3)],
      counts: [4, 1, 4, 4, 0],
      available: 'MinimumReplicasAvailable',
      progressing: 'ReplicaSetUpdated',
    },
    {
      name: 'complete',
      d: deploy(3),
      all: [rs('new', 3, 3, 3), rs('old', 0, 0, 0)],
      counts: [3, 3, 3, 3, 0],
      available: 'MinimumReplicasAvailable',
      progressing: 'NewReplicaSetAvailable',
    },
    {
      name: 'stuck past the deadline',
      d: stuck(),
      all: [rs('new', 1, 0, 0), rs('old', 2, 2, 2)],
      counts: [3, 1, 2, 2, 1],
      available: 'MinimumReplicasUnavailable',
      progressing: 'ProgressDeadlineExceeded',
    },
  ];
  for (const c of table) {
    const s = computeDeploymentStatus(c.d, c.all, c.all[0], NOW);
    const counts = [
      s.replicas,
      s.updatedReplicas,
      s.readyReplicas,
      s.availableReplicas,
      s.unavailableReplicas,
    ];
    assert.deepEqual(counts, c.counts, c.name);
    assert.equal(s.observedGeneration, 2, c.name);
    const reason = (type: string) => s.conditions?.find((x) => x.type === type)?.reason;
    assert.equal(reason('Available'), c.available, c.name);
    assert.equal(reason('Progressing'), c.progressing, c.name);
  }
});

test('recomputing an unchanged status changes nothing', () => {
  const d = deploy(3);
  const all = [rs('new', 3, 3, 3)];
  d.status = computeDeploymentStatus(d, all, all[0], NOW);
  const later = new Date(NOW.getTime() + 60_000);
  assert.deepEqual(computeDeploymentStatus(d, all, all[0], later), d.status);
});

test('conditions keep their transition time while their status holds', () => {
  const first = setCondition([], { type: 'Progressing', status: 'True', reason: 'A' }, NOW);
  const later = new Date(NOW.getTime() + 1000);
  const second = setCondition(first, { type: 'Progressing', status: 'True', reason: 'B' }, later);
  assert.equal(second[0].lastTransitionTime, first[0].lastTransitionTime);
  assert.notEqual(second[0].lastUpdateTime, first[0].lastUpdateTime);
  assert.equal(setCondition(second, { ...second[0] }, later), second);
});

test('a progressing rollout is looked at again by its deadline', () => {
  const d = deploy(3);
  const status = computeDeploymentStatus(
    d,
    [rs('new', 1, 0, 0), rs('old', 3, 3, 3)],
    undefined,
    NOW,
  );
  assert.equal(
    untilDeadline(d, status, NOW),
    undefined,
    'no progressing condition without a new set',
  );
  const progressing = {
    ...status,
    conditions: [cond('Progressing', 'ReplicaSetUpdated', NOW.toISOString())],
  };
  assert.equal(untilDeadline(d, progressing, NOW), 601_000);
});

test('the deadline requeue by Progressing condition', () => {
  const at = (msAgo: number) => new Date(NOW.getTime() - msAgo).toISOString();
  const table: {
    reason: string;
    status?: Condition['status'];
    ago: number;
    paused?: boolean;
    want?: number;
  }[] = [
    { reason: 'NewReplicaSetCreated', ago: 0, want: 601_000 },
    { reason: 'FoundNewReplicaSet', ago: 0, want: 601_000 },
    { reason: 'ReplicaSetUpdated', ago: 100_000, want: 501_000 },
    { reason: 'ReplicaSetUpdated', ago: 700_000, want: 1000 },
    { reason: 'DeploymentResumed', status: 'Unknown', ago: 0, want: 601_000 },
    { reason: 'DeploymentPaused', status: 'Unknown', ago: 0, paused: true },
    { reason: 'ReplicaSetUpdated', ago: 0, paused: true },
    { reason: 'NewReplicaSetAvailable', ago: 0 },
    { reason: 'ProgressDeadlineExceeded', status: 'False', ago: 0 },
  ];
  for (const c of table) {
    const d = deploy(3);
    d.spec.paused = c.paused;
    const conditions = [
      { ...cond('Progressing', c.reason, at(c.ago)), status: c.status ?? 'True' },
    ];
    const name = `${c.reason} ${c.ago} ms ago${c.paused ? ', paused' : ''}`;
    assert.equal(untilDeadline(d, { conditions }, NOW), c.want, name);
  }
});

test('the Progressing condition through a rollout', () => {
  const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();
  const midway = [rs('new', 1, 0, 0), rs('old', 3, 3, 3)];
  const table: {
    name: string;
    before: Condition;
    paused?: boolean;
    counts?: Partial<NonNullable<Deployment['status']>>;
    event?: RolloutEvent;
    /** The ReplicaSets, the new one first (default: midway through a rollout). */
    all?: ReplicaSet[];
    want: [string, string];
    /** Whether lastTransitionTime must stay that of `before`. */
    keepsTransition: boolean;
    /** Whether lastUpdateTime moves to now. */
    touched: boolean;
  }[] = [
    {
      name: 'a new replica set',
      before: cond('Progressing', 'NewReplicaSetAvailable', ago(5000)),
      event: { reason: 'NewReplicaSetCreated', message: 'Created new replica set "new"' },
      want: ['True', 'NewReplicaSetCreated'],
      keepsTransition: true,
      touched: true,
    },
    {
      name: 'progress',
      before: cond('Progressing', 'NewReplicaSetCreated', ago(5000)),
      counts: { replicas: 3, updatedReplicas: 0, readyReplicas: 3, availableReplicas: 3 },
      want: ['True', 'ReplicaSetUpdated'],
      keepsTransition: true,
      touched: true,
    },
    {
      name: 'no progress within the deadline',
      before: cond('Progressing', 'ReplicaSetUpdated', ago(5000)),
      counts: { replicas: 4, updatedReplicas: 1, readyReplicas: 3, availableReplicas: 3 },
      want: ['True', 'ReplicaSetUpdated'],
      keepsTransition: true,
      touched: false,
    },
    {
      name: 'no progress past the deadline',
      before: cond('Progressing', 'ReplicaSetUpdated', ago(601_000)),
      counts: { replicas: 4, updatedReplicas: 1, readyReplicas: 3, availableReplicas: 3 },
      want: ['False', 'ProgressDeadlineExceeded'],
      keepsTransition: false,
      touched: true,
    },
    {
      name: 'progress after the deadline',
      before: { ...cond('Progressing', 'ProgressDeadlineExceeded', ago(5000)), status: 'False' },
      counts: { replicas: 4, updatedReplicas: 0, readyReplicas: 3, availableReplicas: 3 },
      want: ['True', 'ReplicaSetUpdated'],
      keepsTransition: false,
      touched: true,
    },
    {
      name: 'paused, long past the deadline',
      before: cond('Progressing', 'ReplicaSetUpdated', ago(900_000)),
      paused: true,
      counts: { replicas: 4, updatedReplicas: 1, readyReplicas: 3, availableReplicas: 3 },
      want: ['Unknown', 'DeploymentPaused'],
      keepsTransition: false,
      touched: true,
    },
    {
      name: 'scaled up after completion, long ago',
      before: cond('Progressing', 'NewReplicaSetAvailable', ago(900_000)),
      counts: { replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 },
      all: [rs('new', 3, 1, 1)],
      want: ['True', 'NewReplicaSetAvailable'],
      keepsTransition: true,
      touched: false,
    },
    {
      name: 'resumed',
      before: { ...cond('Progressing', 'DeploymentPaused', ago(900_000)), status: 'Unknown' },
      counts: { replicas: 4, updatedReplicas: 1, readyReplicas: 3, availableReplicas: 3 },
      want: ['Unknown', 'DeploymentResumed'],
      keepsTransition: true,
      touched: true,
    },
  ];
  for (const c of table) {
    const d = deploy(3, [c.before]);
    d.spec.paused = c.paused;
    d.status = { ...d.status, observedGeneration: 2, ...c.counts };
    const all = c.all ?? midway;
    const s = computeDeploymentStatus(d, all, all[0], NOW, c.event);
    const got = s.conditions?.find((x) => x.type === 'Progressing');
    assert.deepEqual([got?.status, got?.reason], c.want, c.name);
    const kept = got?.lastTransitionTime === c.before.lastTransitionTime;
    assert.equal(kept, c.keepsTransition, `${c.name}: lastTransitionTime`);
    assert.equal(got?.lastUpdateTime === timestamp(NOW), c.touched, `${c.name}: lastUpdateTime`);
  }
});
