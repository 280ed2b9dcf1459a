import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeObject, Pod } from '../api/types.js';
import { Framework } from './framework/framework.js';
import { NodeInfo } from './framework/nodeinfo.js';
import { defaultPlugins } from './plugins/registry.js';
import { pickCandidate, selectVictims, type Candidate } from './preemption.js';

function node(name: string, cpu: string, running: Pod[]): NodeInfo {
  const info = new NodeInfo({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    status: {
      allocatable: { cpu, memory: '8Gi', pods: '110' },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  } as NodeObject);
  for (const p of running) info.addPod(p);
  return info;
}

function pod(name: string, cpu: string, priority: number, started = '2026-01-01T00:00:00Z'): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', creationTimestamp: started },
    spec: {
      containers: [{ name: 'c', image: 'i', resources: { requests: { cpu } } }],
      priority,
    },
  };
}

test('victims: the fewest lower-priority pods, most important reprieved first', () => {
  const cases: { name: string; running: Pod[]; preemptor: Pod; want?: string[] }[] = [
    {
      name: 'one low pod makes room',
      running: [pod('low', '800m', 1), pod('high', '100m', 100)],
      preemptor: pod('p', '500m', 50),
      want: ['low'],
    },
    {
      name: 'the more important of two equal-sized pods is reprieved',
      running: [pod('a', '500m', 10), pod('b', '500m', 20)],
      preemptor: pod('p', '500m', 50),
      want: ['a'],
    },
    {
      name: 'equal priority: the longer running one is reprieved',
      running: [
        pod('old', '500m', 10, '2026-01-01T00:00:00Z'),
        pod('new', '500m', 10, '2026-01-02T00:00:00Z'),
      ],
      preemptor: pod('p', '500m', 50),
      want: ['new'],
    },
    {
      name: 'only lower-priority pods count; not enough of them',
      running: [pod('low', '200m', 1), pod('peer', '800m', 50)],
      preemptor: pod('p', '500m', 50),
    },
    {
      name: 'several victims needed',
      running: [pod('x', '400m', 1), pod('y', '400m', 2), pod('z', '200m', 60)],
      preemptor: pod('p', '700m', 50),
      want: ['y', 'x'],
    },
    {
      name: 'a terminating pod is not a victim',
      running: [
        {
          ...pod('going', '900m', 1),
          metadata: { name: 'going', namespace: 'default', deletionTimestamp: 'x' },
        },
      ],
      preemptor: pod('p', '500m', 50),
    },
  ];
  const framework = new Framework(defaultPlugins());
  for (const c of cases) {
    const state = new Map();
    assert.equal(framework.runPreFilters(state, c.preemptor), undefined);
    const victims = selectVictims(framework, state, c.preemptor, node('n', '1', c.running));
    assert.deepEqual(
      victims?.map((v) => v.metadata.name),
      c.want,
      c.name,
    );
  }
});

test('the node Kubernetes would pick', () => {
  const cand = (node: string, ...victims: Pod[]): Candidate => ({ node, victims });
  const cases: { name: string; candidates: Candidate[]; want?: string }[] = [
    { name: 'none', candidates: [] },
    {
      name: 'lowest highest-victim priority',
      candidates: [cand('a', pod('1', '1', 10)), cand('b', pod('2', '1', 5), pod('3', '1', 5))],
      want: 'b',
    },
    {
      name: 'then smallest priority sum',
      candidates: [
        cand('a', pod('1', '1', 5), pod('2', '1', 5)),
        cand('b', pod('3', '1', 5), pod('4', '1', 1)),
      ],
      want: 'b',
    },
    {
      name: 'then fewest victims',
      candidates: [cand('a', pod('1', '1', 0), pod('2', '1', 0)), cand('b', pod('3', '1', 0))],
      want: 'b',
    },
    {
      name: 'then most recently started top victims',
      candidates: [
        cand('a', pod('1', '1', 3, '2026-01-01T00:00:00Z')),
        cand('b', pod('2', '1', 3, '2026-02-01T00:00:00Z')),
      ],
      want: 'b',
    },
    {
      name: 'then the first',
      candidates: [cand('a', pod('1', '1', 3)), cand('b', pod('2', '1', 3))],
      want: 'a',
    },
  ];
  for (const c of cases) assert.equal(pickCandidate(c.candidates)?.node, c.want, c.name);
});
