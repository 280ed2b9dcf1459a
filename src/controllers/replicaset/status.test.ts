import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod, ReplicaSet } from '../../api/types.js';
import { podFromTemplate } from './controller.js';
import { computeReplicaSetStatus } from './status.js';

const rs: ReplicaSet = {
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  metadata: { name: 'web-abc', namespace: 'default', uid: 'u1', generation: 4 },
  spec: {
    replicas: 3,
    minReadySeconds: 5,
    selector: { matchLabels: { app: 'web' } },
    template: {
      metadata: { labels: { app: 'web', tier: 'front' }, annotations: { a: 'b' } },
      spec: { containers: [{ name: 'c', image: 'i' }] },
    },
  },
};

function pod(labels: Record<string, string>, readyAt?: string): Pod {
  const conditions = readyAt
    ? [{ type: 'Ready', status: 'True' as const, lastTransitionTime: readyAt }]
    : [];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', labels },
    spec: { containers: [] },
    status: { phase: 'Running', conditions },
  };
}

test('replica set status counts labeled, ready and available pods', () => {
  const now = Date.parse('2024-01-01T00:00:10Z');
  const full = { app: 'web', tier: 'front' };
  const table: { name: string; pods: Pod[]; want: [number, number, number, number] }[] = [
    { name: 'none', pods: [], want: [0, 0, 0, 0] },
    { name: 'partly labeled', pods: [pod({ app: 'web' }), pod(full)], want: [2, 1, 0, 0] },
    {
      name: 'ready but not yet available',
      pods: [pod(full, '2024-01-01T00:00:00Z'), pod(full, '2024-01-01T00:00:08Z')],
      want: [2, 2, 2, 1],
    },
  ];
  for (const c of table) {
    const s = computeReplicaSetStatus(rs, c.pods, now);
    const got = [s.replicas, s.fullyLabeledReplicas, s.readyReplicas, s.availableReplicas];
    assert.deepEqual(got, c.want, c.name);
    assert.equal(s.observedGeneration, 4);
  }
});

test('pods are made from the template with a controller reference', () => {
  const p = podFromTemplate(rs);
  assert.equal(p.metadata.generateName, 'web-abc-');
  assert.deepEqual(p.metadata.labels, { app: 'web', tier: 'front' });
  assert.deepEqual(p.metadata.annotations, { a: 'b' });
  assert.deepEqual(p.metadata.ownerReferences, [
    {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      name: 'web-abc',
      uid: 'u1',
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  p.metadata.labels!.app = 'changed';
  assert.equal(rs.spec.template.metadata?.labels?.app, 'web', 'the template is not shared');
});
