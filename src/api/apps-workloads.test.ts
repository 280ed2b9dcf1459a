import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  defaultDaemonSet,
  defaultStatefulSet,
  validateControllerRevision,
  validateDaemonSet,
  validateStatefulSet,
  type DaemonSet,
  type StatefulSet,
} from './apps-workloads.js';
import { unknownFields } from './fields.js';
import type { KObject } from './types.js';

function daemonSet(spec: Record<string, unknown> = {}): DaemonSet {
  const ds: DaemonSet = {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'd', namespace: 'default' },
    spec: {
      selector: { matchLabels: { app: 'd' } },
      template: {
        metadata: { labels: { app: 'd' } },
        spec: { containers: [{ name: 'c', image: 'i' }] },
      },
      ...spec,
    },
  };
  defaultDaemonSet(ds);
  return ds;
}

function statefulSet(spec: Record<string, unknown> = {}): StatefulSet {
  const sts: StatefulSet = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 's', namespace: 'default' },
    spec: {
      serviceName: 's',
      selector: { matchLabels: { app: 's' } },
      template: {
        metadata: { labels: { app: 's' } },
        spec: { containers: [{ name: 'c', image: 'i' }] },
      },
      ...spec,
    },
  };
  defaultStatefulSet(sts);
  return sts;
}

test('defaults: DaemonSet RollingUpdate 1/0 and history 10; StatefulSet OrderedReady, partition 0', () => {
  const ds = daemonSet();
  assert.deepEqual(ds.spec.updateStrategy, {
    type: 'RollingUpdate',
    rollingUpdate: { maxUnavailable: 1, maxSurge: 0 },
  });
  assert.equal(ds.spec.revisionHistoryLimit, 10);
  assert.equal(ds.spec.template.spec.restartPolicy, 'Always');
  const sts = statefulSet();
  assert.equal(sts.spec.replicas, 1);
  assert.equal(sts.spec.podManagementPolicy, 'OrderedReady');
  assert.deepEqual(sts.spec.updateStrategy, {
    type: 'RollingUpdate',
    rollingUpdate: { partition: 0 },
  });
  assert.equal(sts.spec.revisionHistoryLimit, 10);
  assert.equal(
    daemonSet({ updateStrategy: { type: 'OnDelete' } }).spec.updateStrategy?.rollingUpdate,
    undefined,
  );
});

type Validate = (obj: KObject, old?: KObject) => { field: string; type: string }[];

const cases: { name: string; validate: Validate; obj: KObject; old?: KObject; want: string[] }[] = [
  { name: 'valid DaemonSet', validate: validateDaemonSet, obj: daemonSet(), want: [] },
  {
    name: 'DaemonSet selector must match template labels',
    validate: validateDaemonSet,
    obj: daemonSet({ selector: { matchLabels: { app: 'other' } } }),
    want: ['Invalid spec.template.metadata.labels'],
  },
  {
    name: 'DaemonSet restartPolicy must be Always',
    validate: validateDaemonSet,
    obj: daemonSet({
      template: {
        metadata: { labels: { app: 'd' } },
        spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'i' }] },
      },
    }),
    want: ['Unsupported spec.template.spec.restartPolicy'],
  },
  {
    name: 'DaemonSet update strategy enum',
    validate: validateDaemonSet,
    obj: daemonSet({ updateStrategy: { type: 'Recreate' } }),
    want: ['Unsupported spec.updateStrategy.type'],
  },
  {
    name: 'DaemonSet maxUnavailable int or percent',
    validate: validateDaemonSet,
    obj: daemonSet({
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 'lots' } },
    }),
    want: ['Invalid spec.updateStrategy.rollingUpdate.maxUnavailable'],
  },
  {
    name: 'DaemonSet maxUnavailable and maxSurge both 0',
    validate: validateDaemonSet,
    obj: daemonSet({
      updateStrategy: {
        type: 'RollingUpdate',
        rollingUpdate: { maxUnavailable: '0%', maxSurge: 0 },
      },
    }),
    want: ['Invalid spec.updateStrategy.rollingUpdate.maxUnavailable'],
  },
  {
    name: 'DaemonSet selector is immutable',
    validate: validateDaemonSet,
    obj: daemonSet({
      selector: { matchLabels: { app: 'd', tier: 'x' } },
      template: {
        metadata: { labels: { app: 'd', tier: 'x' } },
        spec: { containers: [{ name: 'c', image: 'i' }] },
      },
    }),
    old: daemonSet(),
    want: ['Invalid spec.selector'],
  },
  { name: 'valid StatefulSet', validate: validateStatefulSet, obj: statefulSet(), want: [] },
  {
    name: 'StatefulSet replicas >= 0',
    validate: validateStatefulSet,
    obj: statefulSet({ replicas: -1 }),
    want: ['Invalid spec.replicas'],
  },
  {
    name: 'StatefulSet policy and strategy enums',
    validate: validateStatefulSet,
    obj: statefulSet({ podManagementPolicy: 'Random', updateStrategy: { type: 'Recreate' } }),
    want: ['Unsupported spec.podManagementPolicy', 'Unsupported spec.updateStrategy.type'],
  },
  {
    name: 'StatefulSet partition >= 0 and maxUnavailable > 0',
    validate: validateStatefulSet,
    obj: statefulSet({
      updateStrategy: {
        type: 'RollingUpdate',
        rollingUpdate: { partition: -2, maxUnavailable: 0 },
      },
    }),
    want: [
      'Invalid spec.updateStrategy.rollingUpdate.maxUnavailable',
      'Invalid spec.updateStrategy.rollingUpdate.partition',
    ],
  },
  {
    name: 'StatefulSet volumeClaimTemplates are refused',
    validate: validateStatefulSet,
    obj: statefulSet({ volumeClaimTemplates: [{ metadata: { name: 'data' } }] }),
    want: ['Forbidden spec.volumeClaimTemplates'],
  },
  {
    name: 'StatefulSet serviceName must be a DNS label',
    validate: validateStatefulSet,
    obj: statefulSet({ serviceName: 'Not_A_Label' }),
    want: ['Invalid spec.serviceName'],
  },
  {
    name: 'StatefulSet ordinals are refused',
    validate: validateStatefulSet,
    obj: statefulSet({ ordinals: { start: 3 } }),
    want: ['Forbidden spec.ordinals'],
  },
  {
    name: 'StatefulSet replicas, template and strategy may change',
    validate: validateStatefulSet,
    obj: statefulSet({
      replicas: 5,
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 3 } },
    }),
    old: statefulSet(),
    want: [],
  },
  {
    name: 'StatefulSet serviceName may not change',
    validate: validateStatefulSet,
    obj: statefulSet({ serviceName: 'other' }),
    old: statefulSet(),
    want: ['Forbidden spec'],
  },
  {
    name: 'ControllerRevision needs a revision and keeps its data',
    validate: validateControllerRevision,
    obj: {
      apiVersion: 'apps/v1',
      kind: 'ControllerRevision',
      metadata: { name: 'r' },
      data: { a: 2 },
    },
    old: {
      apiVersion: 'apps/v1',
      kind: 'ControllerRevision',
      metadata: { name: 'r' },
      data: { a: 1 },
      revision: 1,
    },
    want: ['Invalid data', 'Required revision'],
  },
];

for (const c of cases) {
  test(`validation: ${c.name}`, () => {
    const errs = c.validate(c.obj, c.old).map((e) => `${e.type} ${e.field}`);
    assert.deepEqual(errs.sort(), c.want);
  });
}

test('Strict field validation knows the apps workload fields and catches typos', () => {
  const ds = daemonSet({
    updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } },
  });
  assert.deepEqual(unknownFields('DaemonSet', ds), []);
  const typo = daemonSet({ updateStrategy: { rollingUpdate: { maxUnavailible: 1 } } });
  assert.deepEqual(unknownFields('DaemonSet', typo), [
    'spec.updateStrategy.rollingUpdate.maxUnavailible',
  ]);
  assert.deepEqual(unknownFields('StatefulSet', statefulSet({ podManagmentPolicy: 'Parallel' })), [
    'spec.podManagmentPolicy',
  ]);
  assert.deepEqual(unknownFields('StatefulSet', statefulSet()), []);
  const cr = {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: {},
    revision: 1,
    data: {},
  };
  assert.deepEqual(unknownFields('ControllerRevision', { ...cr, extra: 1 }), ['extra']);
});
