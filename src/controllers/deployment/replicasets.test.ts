import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Deployment, ReplicaSet } from '../../api/types.js';
import { newReplicaSetAnnotations } from './replicasets.js';

const deploy = (annotations: Record<string, string>): Deployment => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', annotations },
  spec: { selector: {}, template: { spec: { containers: [] } } },
});

const rs = (annotations?: Record<string, string>): ReplicaSet => ({
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  metadata: { name: 'web-abc', annotations },
  spec: { selector: {}, template: { spec: { containers: [] } } },
});

test('the annotations a new replica set carries', () => {
  const cause = 'kubernetes.io/change-cause';
  const rev = 'deployment.kubernetes.io/revision';
  const history = 'deployment.kubernetes.io/revision-history';
  const applied = 'kubectl.kubernetes.io/last-applied-configuration';
  const table: {
    name: string;
    d: Record<string, string>;
    rs?: Record<string, string>;
    revision: number;
    want: Record<string, string> | undefined;
  }[] = [
    {
      name: 'a fresh replica set',
      d: { [cause]: 'v1', [rev]: '7', [applied]: '{}' },
      revision: 1,
      want: { [cause]: 'v1', [rev]: '1' },
    },
    {
      name: 'a cause annotated later',
      d: { [cause]: 'v2' },
      rs: { [cause]: 'v1', [rev]: '2' },
      revision: 2,
      want: { [cause]: 'v2', [rev]: '2' },
    },
    {
      name: 'nothing new',
      d: { [cause]: 'v1' },
      rs: { [cause]: 'v1', [rev]: '2' },
      revision: 2,
      want: undefined,
    },
    {
      name: 'a rollback to it',
      d: { [cause]: 'v1' },
      rs: { [cause]: 'v1', [rev]: '2', [history]: '1' },
      revision: 5,
      want: { [cause]: 'v1', [rev]: '5', [history]: '1,2' },
    },
    {
      name: 'annotations removed from the deployment stay',
      d: {},
      rs: { [cause]: 'v1', [rev]: '3' },
      revision: 3,
      want: undefined,
    },
  ];
  for (const c of table) {
    assert.deepEqual(newReplicaSetAnnotations(deploy(c.d), rs(c.rs), c.revision), c.want, c.name);
  }
});
