import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeSelectorRequirement, PodSpec } from '../../../api/types.js';
import { Code } from '../../framework/interface.js';
import { runFilter, testNode, testPod } from '../../framework/testing.js';
import { nodeAffinity, REASON_NODE_AFFINITY } from './node-affinity.js';

const zoneA = testNode('a', { labels: { zone: 'z1', gen: '5' } });

function required(...terms: NodeSelectorRequirement[][]): Partial<PodSpec> {
  return {
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: terms.map((matchExpressions) => ({ matchExpressions })),
        },
      },
    },
  };
}

test('required node affinity and nodeSelector', () => {
  const cases: { name: string; spec: Partial<PodSpec>; fits: boolean }[] = [
    { name: 'no constraint', spec: {}, fits: true },
    { name: 'nodeSelector matches', spec: { nodeSelector: { zone: 'z1' } }, fits: true },
    { name: 'nodeSelector differs', spec: { nodeSelector: { zone: 'z2' } }, fits: false },
    {
      name: 'In',
      spec: required([{ key: 'zone', operator: 'In', values: ['z1', 'z2'] }]),
      fits: true,
    },
    {
      name: 'In misses',
      spec: required([{ key: 'zone', operator: 'In', values: ['z2'] }]),
      fits: false,
    },
    {
      name: 'NotIn',
      spec: required([{ key: 'zone', operator: 'NotIn', values: ['z2'] }]),
      fits: true,
    },
    {
      name: 'NotIn hits',
      spec: required([{ key: 'zone', operator: 'NotIn', values: ['z1'] }]),
      fits: false,
    },
    {
      name: 'NotIn of a missing label',
      spec: required([{ key: 'x', operator: 'NotIn', values: ['y'] }]),
      fits: true,
    },
    { name: 'Exists', spec: required([{ key: 'zone', operator: 'Exists' }]), fits: true },
    {
      name: 'DoesNotExist',
      spec: required([{ key: 'zone', operator: 'DoesNotExist' }]),
      fits: false,
    },
    { name: 'Gt', spec: required([{ key: 'gen', operator: 'Gt', values: ['4'] }]), fits: true },
    {
      name: 'Gt equal',
      spec: required([{ key: 'gen', operator: 'Gt', values: ['5'] }]),
      fits: false,
    },
    { name: 'Lt', spec: required([{ key: 'gen', operator: 'Lt', values: ['6'] }]), fits: true },
    {
      name: 'Lt not a number',
      spec: required([{ key: 'zone', operator: 'Lt', values: ['6'] }]),
      fits: false,
    },
    {
      name: 'expressions in a term are ANDed',
      spec: required([
        { key: 'zone', operator: 'In', values: ['z1'] },
        { key: 'gen', operator: 'In', values: ['4'] },
      ]),
      fits: false,
    },
    {
      name: 'terms are ORed',
      spec: required(
        [{ key: 'zone', operator: 'In', values: ['z9'] }],
        [{ key: 'gen', operator: 'In', values: ['5'] }],
      ),
      fits: true,
    },
    { name: 'an empty term matches nothing', spec: required([]), fits: false },
    {
      name: 'selector and affinity must both hold',
      spec: { nodeSelector: { zone: 'z2' }, ...required([{ key: 'zone', operator: 'Exists' }]) },
      fits: false,
    },
    {
      name: 'matchFields on metadata.name (DaemonSet pods)',
      spec: {
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['a'] }] },
              ],
            },
          },
        },
      },
      fits: true,
    },
    {
      name: 'matchFields on another node name',
      spec: {
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['b'] }] },
              ],
            },
          },
        },
      },
      fits: false,
    },
  ];
  for (const c of cases) {
    const status = runFilter(nodeAffinity, testPod(c.name, { spec: c.spec }), zoneA);
    if (c.fits) assert.equal(status.code, Code.Success, c.name);
    else {
      assert.equal(status.code, Code.UnschedulableAndUnresolvable, c.name);
      assert.deepEqual(status.reasons, [REASON_NODE_AFFINITY], c.name);
    }
  }
});

test('preferred node affinity scores by weight, normalised to 0..100', () => {
  const pod = testPod('p', {
    spec: {
      affinity: {
        nodeAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 10,
              preference: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['z1'] }] },
            },
            { weight: 30, preference: { matchExpressions: [{ key: 'ssd', operator: 'Exists' }] } },
          ],
        },
      },
    },
  });
  const nodes = [
    testNode('none'),
    testNode('zone', { labels: { zone: 'z1' } }),
    testNode('ssd', { labels: { ssd: 'true' } }),
    testNode('both', { labels: { zone: 'z1', ssd: 'true' } }),
  ];
  const state = new Map();
  nodeAffinity.preFilter(state, pod);
  const scores = nodes.map((n) => nodeAffinity.score(state, pod, n));
  assert.deepEqual(scores, [0, 10, 30, 40]);
  nodeAffinity.normalize(scores);
  assert.deepEqual(scores, [0, 25, 75, 100]);
});
