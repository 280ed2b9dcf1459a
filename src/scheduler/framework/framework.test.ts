import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeObject, Pod } from '../../api/types.js';
import { defaultPlugins } from '../plugins/registry.js';
import { feasibleNodesToFind, Framework, unschedulableMessage } from './framework.js';
import { SUCCESS, type CycleState, type Status } from './interface.js';
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

test('how many feasible nodes are enough', () => {
  const cases: [total: number, want: number][] = [
    [0, 0],
    [50, 50],
    [100, 100],
    [200, 100],
    [1000, 420],
    [5000, 500],
    [6000, 300],
    [100_000, 5000],
  ];
  for (const [total, want] of cases) assert.equal(feasibleNodesToFind(total), want, `${total}`);
});

test('sampling stops early and rotates over every node', () => {
  const seen = new Map<string, number>();
  const counting = {
    name: 'Counting',
    filter(_s: CycleState, _p: Pod, n: NodeInfo): Status {
      seen.set(n.name, (seen.get(n.name) ?? 0) + 1);
      return SUCCESS;
    },
  };
  const nodes = Array.from({ length: 1000 }, (_, i) => node(`n${i}`, '4', '4Gi'));
  const framework = new Framework([counting]);
  for (let cycle = 1; cycle <= 3; cycle++) {
    assert.ok(framework.schedule(pod('100m', '1Mi'), nodes).node, `cycle ${cycle}`);
    const filtered = [...seen.values()].reduce((a, b) => a + b, 0);
    assert.equal(filtered, 420 * cycle, `cycle ${cycle} filters 420 nodes`);
  }
  assert.equal(seen.size, 1000, 'three cycles reach every node');
  assert.equal(Math.max(...seen.values()), 2, 'no node is filtered a third time');
});

test('an unschedulable pod is filtered against every node and the message counts them', () => {
  const nodes = Array.from({ length: 1000 }, (_, i) =>
    i % 2
      ? node(`n${i}`, '1', '1Gi')
      : node(`n${i}`, '1', '1Gi', { spec: { unschedulable: true } }),
  );
  const result = new Framework(defaultPlugins()).schedule(pod('2', '1Mi'), nodes);
  assert.equal(result.node, undefined);
  assert.equal(
    unschedulableMessage(result),
    '0/1000 nodes are available: 500 Insufficient cpu, 500 node(s) were unschedulable.',
  );
});

test('default plugins end to end', () => {
  const taint = { key: 'dedicated', value: 'db', effect: 'NoSchedule' };
  const gpu = { cpu: '4', memory: '4Gi', pods: '110', 'example.com/gpu': '1' };
  const cases: { name: string; nodes: NodeInfo[]; pod: Pod; want?: string; message?: string }[] = [
    {
      name: 'untolerated taint',
      nodes: [node('a', '4', '4Gi', { spec: { taints: [taint] } })],
      pod: pod('1', '1Mi'),
      message: '0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}.',
    },
    {
      name: 'extended resource',
      nodes: [node('a', '4', '4Gi')],
      pod: {
        ...pod('1', '1Mi'),
        spec: {
          containers: [
            { name: 'c', image: 'i', resources: { requests: { 'example.com/gpu': '1' } } },
          ],
        },
      },
      message: '0/1 nodes are available: 1 Insufficient example.com/gpu.',
    },
    {
      name: 'preferred node affinity outweighs free resources',
      nodes: [
        node('big', '16', '64Gi'),
        node('ssd', '2', '2Gi', { metadata: { name: 'ssd', labels: { disk: 'ssd' } } }),
      ],
      pod: pod('100m', '10Mi', {
        affinity: {
          nodeAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [
              {
                weight: 50,
                preference: { matchExpressions: [{ key: 'disk', operator: 'Exists' }] },
              },
            ],
          },
        },
      }),
      want: 'ssd',
    },
    {
      name: 'gpu node',
      nodes: [
        node('plain', '4', '4Gi'),
        node('gpu', '4', '4Gi', {
          status: { allocatable: gpu, conditions: [{ type: 'Ready', status: 'True' }] },
        }),
      ],
      pod: {
        ...pod('1', '1Mi'),
        spec: {
          containers: [
            { name: 'c', image: 'i', resources: { requests: { 'example.com/gpu': '1' } } },
          ],
        },
      },
      want: 'gpu',
    },
  ];
  const framework = new Framework(defaultPlugins());
  for (const c of cases) {
    const result = framework.schedule(c.pod, c.nodes);
    assert.equal(result.node?.name, c.want, c.name);
    if (c.message) assert.equal(unschedulableMessage(result), c.message, c.name);
  }
});

test('a pod pinned by matchFields (DaemonSet) filters only its node', () => {
  const pinned = (name: string) =>
    pod('1', '1Mi', {
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchFields: [{ key: 'metadata.name', operator: 'In', values: [name] }] },
            ],
          },
        },
      },
    });
  let filtered = 0;
  const counting = {
    name: 'Counting',
    filter(): Status {
      filtered++;
      return SUCCESS;
    },
  };
  const nodes = Array.from({ length: 1000 }, (_, i) => node(`n${i}`, i === 7 ? '0' : '4', '4Gi'));
  const framework = new Framework([...defaultPlugins(), counting]);
  assert.equal(framework.schedule(pinned('n500'), nodes).node?.name, 'n500');
  assert.equal(filtered, 1, 'only the named node went through the filters');
  const full = framework.schedule(pinned('n7'), nodes);
  assert.equal(
    unschedulableMessage(full),
    "0/1000 nodes are available: 1 Insufficient cpu, 999 node(s) didn't match Pod's node " +
      'affinity/selector.',
  );
  assert.equal(framework.schedule(pinned('gone'), nodes).node, undefined);
});
