import assert from 'node:assert/strict';
import { test } from 'node:test';

import { defaultPod, defaultPullPolicy } from './defaults.js';
import type { Pod } from './types.js';

const SHA = `sha256:${'a'.repeat(64)}`;

test('the default pull policy follows the tag, as Kubernetes parses it', () => {
  const cases: [string, 'Always' | 'IfNotPresent'][] = [
    ['busybox', 'Always'],
    ['busybox:latest', 'Always'],
    ['busybox:1.36', 'IfNotPresent'],
    [`busybox@${SHA}`, 'IfNotPresent'],
    [`busybox:latest@${SHA}`, 'Always'],
    [`busybox:1.36@${SHA}`, 'IfNotPresent'],
    ['127.0.0.1:5000/web', 'Always'],
    ['127.0.0.1:5000/web:1', 'IfNotPresent'],
    [`127.0.0.1:5000/web:latest@${SHA}`, 'Always'],
    [`127.0.0.1:5000/web@${SHA}`, 'IfNotPresent'],
  ];
  for (const [image, policy] of cases) assert.equal(defaultPullPolicy(image), policy, image);
});

test("a pod's quantities are written back in Kubernetes' canonical form", () => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default' },
    spec: {
      containers: [
        { name: 'a', image: 'i:1', resources: { limits: { cpu: 0.5, memory: '1.5Gi' } } },
        { name: 'b', image: 'i:1', resources: { requests: { cpu: '2000m', memory: 'abc' } } },
      ],
      initContainers: [{ name: 'i', image: 'i:1', resources: { limits: { cpu: '0.25' } } }],
      volumes: [{ name: 'm', emptyDir: { medium: 'Memory', sizeLimit: '1024Mi' } }],
    },
  } as unknown as Pod;
  defaultPod(pod);
  const [a, b] = pod.spec.containers;
  assert.deepEqual(a.resources, {
    limits: { cpu: '500m', memory: '1536Mi' },
    requests: { cpu: '500m', memory: '1536Mi' },
  });
  // What is not a quantity is left for validation to name as written.
  assert.deepEqual(b.resources, { requests: { cpu: '2', memory: 'abc' } });
  assert.deepEqual(pod.spec.initContainers![0].resources, {
    limits: { cpu: '250m' },
    requests: { cpu: '250m' },
  });
  assert.equal((pod.spec.volumes as any)[0].emptyDir.sizeLimit, '1Gi');
  assert.equal(pod.status?.qosClass, 'Burstable');
});
