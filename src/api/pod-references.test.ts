import { test } from 'node:test';
import assert from 'node:assert/strict';
import { referencedObjects } from './pod-references.js';
import type { Pod } from './types.js';

test('referencedObjects lists env, envFrom, volume, projection and image pull secret references', () => {
  const p = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'team' },
    spec: {
      initContainers: [{ name: 'init', image: 'x', envFrom: [{ secretRef: { name: 's0' } }] }],
      containers: [
        {
          name: 'c',
          image: 'x',
          env: [{ name: 'A', valueFrom: { secretKeyRef: { name: 's1', key: 'k' } } }],
          envFrom: [{ configMapRef: { name: 'c1' } }],
        },
      ],
      volumes: [
        { name: 'v', configMap: { name: 'c2' } },
        { name: 'w', secret: { secretName: 's2' } },
        { name: 'e', emptyDir: {} },
        {
          name: 'p',
          projected: {
            sources: [
              { configMap: { name: 'c3' } },
              { secret: { name: 's3' } },
              { downwardAPI: { items: [] } },
            ],
          },
        },
      ],
      imagePullSecrets: [{ name: 'pull' }],
    },
  } as unknown as Pod;
  assert.deepEqual([...referencedObjects(p)].sort(), [
    'ConfigMap/team/c1',
    'ConfigMap/team/c2',
    'ConfigMap/team/c3',
    'Secret/team/pull',
    'Secret/team/s0',
    'Secret/team/s1',
    'Secret/team/s2',
    'Secret/team/s3',
  ]);
  assert.deepEqual([...referencedObjects({ metadata: { name: 'bare' } } as Pod)], []);
});
