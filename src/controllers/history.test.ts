import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ControllerRevision } from '../api/apps-workloads.js';
import { strategicMergePatch } from '../api/patch.js';
import type { PodTemplateSpec } from '../api/types.js';
import { defaultPodTemplate } from '../api/defaults.js';
import type { KubeClient } from '../client/rest.js';
import {
  ensureRevision,
  REVISION_HASH_LABEL,
  revisionData,
  revisionHash,
  revisionsToPrune,
  templateOfRevision,
} from './history.js';

const template: PodTemplateSpec = {
  metadata: { labels: { app: 'web' } },
  spec: { containers: [{ name: 'c', image: 'nginx:1.25' }] },
};

function cr(name: string, revision: number, hash = name): ControllerRevision {
  return {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: { name, labels: { [REVISION_HASH_LABEL]: hash } },
    revision,
    data: revisionData(template),
  };
}

test('revision data is the patch kubectl rollout undo applies, and gives the template back', () => {
  const rev = cr('web-a', 1);
  assert.deepEqual(templateOfRevision(rev), template);
  // What `kubectl rollout undo` does: patch the workload with the revision's data.
  const workload = {
    spec: {
      template: { metadata: { labels: { app: 'web', extra: 'x' } }, spec: { containers: [] } },
    },
  };
  const undone = strategicMergePatch(workload, rev.data);
  assert.deepEqual(undone.spec.template, template);
});

test('revisionHash: stable under key order, changed by the collision count', () => {
  const a = revisionData(template);
  const b = revisionData({ spec: template.spec, metadata: template.metadata });
  assert.equal(revisionHash(a), revisionHash(b));
  assert.notEqual(revisionHash(a), revisionHash(a, 1));
  assert.match(revisionHash(a), /^[bcdfghjklmnpqrstvwxz2456789]+$/);
  const other = revisionData({ ...template, spec: { containers: [{ name: 'c', image: 'x' }] } });
  assert.notEqual(revisionHash(a), revisionHash(other));
});

const pruneCases: {
  name: string;
  revisions: number;
  live: string[];
  limit: number;
  want: string[];
}[] = [
  { name: 'within the limit', revisions: 3, live: ['r3'], limit: 10, want: [] },
  { name: 'oldest dead ones go first', revisions: 5, live: ['r5'], limit: 2, want: ['r1', 'r2'] },
  { name: 'live ones are kept', revisions: 4, live: ['r1', 'r4'], limit: 0, want: ['r2', 'r3'] },
  { name: 'live by hash label', revisions: 3, live: ['h2', 'r3'], limit: 0, want: ['r1'] },
];

for (const c of pruneCases) {
  test(`revisionsToPrune: ${c.name}`, () => {
    const revisions = Array.from({ length: c.revisions }, (_, i) =>
      cr(`r${i + 1}`, i + 1, `h${i + 1}`),
    ).reverse();
    const victims = revisionsToPrune(revisions, new Set(c.live), c.limit);
    assert.deepEqual(
      victims.map((v) => v.metadata.name),
      c.want,
    );
  });
}

test("a revision written without today's template defaults is the workload's revision still", async () => {
  const bare: PodTemplateSpec = {
    metadata: { labels: { app: 'web' } },
    spec: {
      containers: [{ name: 'c', image: 'nginx:1', livenessProbe: { tcpSocket: { port: 80 } } }],
    },
  };
  const stored = { ...cr('web-old', 3), data: revisionData(bare) };
  const owner = {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'web', namespace: 'default', uid: 'u' },
    spec: { template: structuredClone(bare) },
  };
  defaultPodTemplate(owner.spec.template);
  const writes: string[] = [];
  const client = {
    create: async () => void writes.push('create'),
    update: async () => void writes.push('update'),
  } as unknown as KubeClient;
  const ensured = await ensureRevision(client, owner, 'DaemonSet', [stored], 0);
  assert.equal(ensured.revision, stored);
  assert.deepEqual(writes, [], 'no new revision, so no pod is rolled');

  const changed = structuredClone(owner);
  changed.spec.template.spec.containers[0].image = 'nginx:2';
  const next = await ensureRevision(client, changed, 'DaemonSet', [stored], 0);
  assert.notEqual(next.revision, stored);
  assert.deepEqual(writes, ['create']);
});
