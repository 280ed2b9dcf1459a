import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unknownFields } from './fields.js';

test('unknown fields are found with their paths', () => {
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'x',
      labels: { anything: 'goes' },
      ownerReferences: [{ uid: 'u', bogus: 1 }],
    },
    spec: {
      replicaz: 3,
      selector: { matchLabels: { a: 'b' } },
      template: {
        metadata: { labels: { a: 'b' } },
        spec: {
          containers: [
            { name: 'c', image: 'i', ports: [{ containerPort: 80 }] },
            {
              name: 'd',
              image: 'i',
              prots: [{ containerPort: 80 }],
              livenessProbe: { whatever: 1 },
            },
          ],
        },
      },
    },
    status: { free: 'form' },
  };
  assert.deepEqual(unknownFields('Deployment', deployment), [
    'metadata.ownerReferences[0].bogus',
    'spec.replicaz',
    'spec.template.spec.containers[1].prots',
  ]);
  assert.deepEqual(unknownFields('Pod', { spec: { containers: 'not a list' } }), []);
  assert.deepEqual(unknownFields('SomethingElse', { foo: 1 }), []);
});

test('scheduling fields of pods and nodes are checked', () => {
  const pod = {
    spec: {
      containers: [{ name: 'c', image: 'i' }],
      tolerations: [{ key: 'k', opertor: 'Exists' }],
      topologySpreadConstraints: [
        { maxSkew: 1, topologyKey: 'z', whenUnsatisfiable: 'DoNotSchedule', labelSelectr: {} },
      ],
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpresions: [] }],
          },
        },
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 1, podAffinityTerm: { topologyKey: 'z', labelSelector: { matchLabel: {} } } },
          ],
        },
      },
    },
  };
  const anti = 'spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]';
  assert.deepEqual(unknownFields('Pod', pod), [
    'spec.tolerations[0].opertor',
    'spec.topologySpreadConstraints[0].labelSelectr',
    'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution' +
      '.nodeSelectorTerms[0].matchExpresions',
    `${anti}.podAffinityTerm.labelSelector.matchLabel`,
  ]);
  const node = { spec: { taints: [{ key: 'k', effect: 'NoSchedule', efect: 'x' }] } };
  assert.deepEqual(unknownFields('Node', node), ['spec.taints[0].efect']);
});
