import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeObject, Pod } from '../../api/types.js';
import { defaultPlugins } from '../plugins/registry.js';
import { Framework, unschedulableMessage } from './framework.js';
import { NodeInfo } from './nodeinfo.js';

function node(
  name: string,
  cpu: string,
  memory: string,
  extra: Partial<NodeObject> = {},
): NodeInfo {
  return new NodeInfo({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    status: {
      allocatable: { cpu, memory, pods: '110' },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
    ...extra,
  } as NodeObject);
}

function pod(cpu: string, memory: string, spec: Record<string, unknown> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default' },
    spec: {
      containers: [{ name: 'c', image: 'i', resources: { requests: { cpu, memory } } }],
      ...spec,
    },
  };
}

test('scheduling decisions', () => {
  const cases: { name: string; nodes: NodeInfo[]; pod: Pod; want?: string; message?: string }[] = [
    {
      name: 'fits the only node',
      nodes: [node('a', '1', '1Gi')],
      pod: pod('500m', '100Mi'),
      want: 'a',
    },
    {
      name: 'least allocated wins',
      nodes: [node('small', '1', '1Gi'), node('big', '4', '8Gi')],
      pod: pod('500m', '100Mi'),
      want: 'big',
    },
    {
      name: 'insufficient cpu everywhere',
      nodes: [node('a', '1', '1Gi'), node('b', '1', '1Gi')],
      pod: pod('2', '100Mi'),
      message: '0/2 nodes are available: 2 Insufficient cpu.',
    },
    {
      name: 'node selector',
      nodes: [node('a', '4', '4Gi'), node('b', '1', '1Gi')],
      pod: pod('100m', '10Mi', { nodeSelector: { 'kubernetes.io/hostname': 'b' } }),
      want: 'b',
    },
    {
      name: 'cordoned and not ready nodes are skipped',
      nodes: [
        node('cordoned', '4', '4Gi', { spec: { unschedulable: true } }),
        node('down', '4', '4Gi', {
          status: { allocatable: { cpu: '4', memory: '4Gi' }, conditions: [] },
        }),
      ],
      pod: pod('100m', '10Mi'),
      message: '0/2 nodes are available: 1 node(s) were not ready, 1 node(s) were unschedulable.',
    },
    {
      name: 'no nodes',
      nodes: [],
      pod: pod('1', '1'),
      message: '0/0 nodes are available: no nodes registered.',
    },
  ];
  const framework = new Framework(defaultPlugins());
  for (const c of cases) {
    const result = framework.schedule(c.pod, c.nodes);
    assert.equal(result.node?.name, c.want, c.name);
    if (c.message) assert.equal(unschedulableMessage(result), c.message, c.name);
  }
});

test('node accounting adds and removes requests once', () => {
  const n = node('a', '1', '1Gi');
  const p = pod('300m', '100Mi');
  n.addPod(p);
  n.addPod(p);
  assert.equal(n.requested.milliCpu, 300);
  assert.equal(n.pods.get('default/p')?.requests.milliCpu, 300);
  const copy = n.clone();
  n.removePod('default/p');
  n.removePod('default/p');
  assert.equal(copy.requested.milliCpu, 300, 'a clone keeps its own pods');
  assert.equal(n.requested.milliCpu, 0);
  assert.equal(n.requested.pods, 0);
});
