import assert from 'node:assert/strict';
import { test } from 'node:test';

import { defaultPod, defaultPullPolicy } from './defaults.js';
import { byGroupResource } from './resources.js';
import type { KObject, Pod } from './types.js';

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

test('pod templates get the defaults a Pod gets, in every workload that has one', () => {
  const template = () => ({
    metadata: { labels: { app: 'a' }, creationTimestamp: null },
    spec: {
      containers: [
        {
          name: 'c',
          image: 'nginx:1',
          ports: [{ name: 'http', containerPort: 80 }],
          readinessProbe: { httpGet: { port: 'http' }, periodSeconds: 2 },
          lifecycle: { preStop: { httpGet: { port: 80, path: '' } } },
          resources: { limits: { cpu: 0.5, memory: '1.5Gi' } },
        },
      ],
    },
  });
  const cases: { resource: string; spec: Record<string, unknown>; at: (o: any) => any }[] = [
    { resource: 'apps/deployments', spec: { template: template() }, at: (o) => o.spec.template },
    { resource: 'apps/replicasets', spec: { template: template() }, at: (o) => o.spec.template },
    { resource: 'apps/daemonsets', spec: { template: template() }, at: (o) => o.spec.template },
    { resource: 'apps/statefulsets', spec: { template: template() }, at: (o) => o.spec.template },
    { resource: 'batch/jobs', spec: { template: template() }, at: (o) => o.spec.template },
    {
      resource: 'batch/cronjobs',
      spec: { schedule: '* * * * *', jobTemplate: { spec: { template: template() } } },
      at: (o) => o.spec.jobTemplate.spec.template,
    },
  ];
  for (const c of cases) {
    const obj = { metadata: { name: 'a', uid: 'u' }, spec: c.spec } as unknown as KObject;
    byGroupResource.get(c.resource)!.defaults!(obj);
    const t = c.at(obj);
    assert.equal('creationTimestamp' in t.metadata, false, c.resource);
    assert.equal(t.spec.restartPolicy, 'Always', c.resource);
    assert.equal(t.spec.dnsPolicy, 'ClusterFirst', c.resource);
    assert.equal(t.spec.tolerations, undefined, `${c.resource}: tolerations are a Pod's only`);
    const container = t.spec.containers[0];
    assert.equal(container.imagePullPolicy, 'IfNotPresent', c.resource);
    assert.equal(container.ports[0].protocol, 'TCP', c.resource);
    assert.deepEqual(
      container.resources,
      {
        limits: { cpu: '500m', memory: '1536Mi' },
        requests: { cpu: '500m', memory: '1536Mi' },
      },
      c.resource,
    );
    assert.deepEqual(
      container.readinessProbe,
      {
        httpGet: { port: 'http', path: '/', scheme: 'HTTP' },
        periodSeconds: 2,
        timeoutSeconds: 1,
        successThreshold: 1,
        failureThreshold: 3,
      },
      c.resource,
    );
    assert.deepEqual(
      container.lifecycle.preStop.httpGet,
      { port: 80, path: '/', scheme: 'HTTP' },
      c.resource,
    );
  }
});
