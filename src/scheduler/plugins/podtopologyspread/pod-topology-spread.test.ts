import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod, PodSpec, Taint, TopologySpreadConstraint } from '../../../api/types.js';
import type { CycleState } from '../../framework/interface.js';
import { testNode, testPod } from '../../framework/testing.js';
import { podTopologySpread, REASON_MISSING_LABEL, REASON_SPREAD } from './pod-topology-spread.js';

const ZONE = 'topology.kubernetes.io/zone';
const HOST = 'kubernetes.io/hostname';
const S = REASON_SPREAD;
const M = REASON_MISSING_LABEL;

const web = (name: string, namespace?: string) =>
  testPod(name, { labels: { app: 'web' }, namespace });

function spread(
  topologyKey: string,
  extra: Partial<TopologySpreadConstraint> = {},
): TopologySpreadConstraint {
  return {
    maxSkew: 1,
    topologyKey,
    whenUnsatisfiable: 'DoNotSchedule',
    labelSelector: { matchLabels: { app: 'web' } },
    ...extra,
  };
}

function incoming(
  constraints: TopologySpreadConstraint[],
  spec: Partial<PodSpec> = {},
  app = 'web',
): Pod {
  return testPod('p', {
    labels: { app },
    spec: { topologySpreadConstraints: constraints, ...spec },
  });
}

/** a and b in zone z1, c in z2 (tainted when asked), d without a zone. */
function cluster(on: Record<string, Pod[]>, taintC = false) {
  const taints: Taint[] | undefined = taintC ? [{ key: 'k', effect: 'NoSchedule' }] : undefined;
  return [
    testNode('a', { labels: { [ZONE]: 'z1' }, pods: on.a }),
    testNode('b', { labels: { [ZONE]: 'z1' }, pods: on.b }),
    testNode('c', { labels: { [ZONE]: 'z2' }, pods: on.c, taints }),
    testNode('d', { pods: on.d }),
  ];
}

test('DoNotSchedule constraints filter by skew', () => {
  const cases: {
    name: string;
    pod: Pod;
    on: Record<string, Pod[]>;
    taintC?: boolean;
    want: string[];
  }[] = [
    { name: 'no constraints', pod: testPod('p'), on: { a: [web('w')] }, want: ['', '', '', ''] },
    { name: 'empty cluster', pod: incoming([spread(ZONE)]), on: {}, want: ['', '', '', M] },
    {
      name: 'zone skew',
      pod: incoming([spread(ZONE)]),
      on: { a: [web('w')] },
      want: [S, S, '', M],
    },
    {
      name: 'maxSkew 2 allows it',
      pod: incoming([spread(ZONE, { maxSkew: 2 })]),
      on: { a: [web('w')] },
      want: ['', '', '', M],
    },
    {
      name: 'hostname skew',
      pod: incoming([spread(HOST)]),
      on: { a: [web('w')] },
      want: [S, '', '', ''],
    },
    {
      name: 'balanced zones',
      pod: incoming([spread(ZONE)]),
      on: { a: [web('w1')], c: [web('w2')] },
      want: ['', '', '', M],
    },
    {
      name: 'minDomains above the domain count makes the minimum 0',
      pod: incoming([spread(ZONE, { minDomains: 3 })]),
      on: { a: [web('w1')], c: [web('w2')] },
      want: [S, S, S, M],
    },
    {
      name: 'a pod the selector does not match adds no skew',
      pod: incoming([spread(ZONE)], {}, 'other'),
      on: { a: [web('w')] },
      want: ['', '', '', M],
    },
    {
      name: 'pods of other namespaces do not count',
      pod: incoming([spread(ZONE)]),
      on: { a: [web('w', 'other')] },
      want: ['', '', '', M],
    },
    {
      name: 'node affinity honoured: only zone z1 is a domain',
      pod: incoming([spread(ZONE)], { nodeSelector: { [ZONE]: 'z1' } }),
      on: { a: [web('w1')], b: [web('w2')] },
      // c is outside every counted domain, so it adds no skew; NodeAffinity rejects it.
      want: ['', '', '', M],
    },
    {
      name: 'node affinity ignored: empty z2 keeps the minimum at 0',
      pod: incoming([spread(ZONE, { nodeAffinityPolicy: 'Ignore' })], {
        nodeSelector: { [ZONE]: 'z1' },
      }),
      on: { a: [web('w1')], b: [web('w2')] },
      want: [S, S, '', M],
    },
    {
      name: 'taints ignored by default',
      pod: incoming([spread(ZONE)]),
      on: { a: [web('w')] },
      taintC: true,
      want: [S, S, '', M],
    },
    {
      name: 'taints honoured: the tainted zone is no domain',
      pod: incoming([spread(ZONE, { nodeTaintsPolicy: 'Honor' })]),
      on: { a: [web('w')] },
      taintC: true,
      // As above: c counts for nothing here, and TaintToleration rejects it.
      want: ['', '', '', M],
    },
  ];
  for (const c of cases) {
    const nodes = cluster(c.on, c.taintC);
    const state: CycleState = new Map();
    podTopologySpread.preFilter(state, c.pod, nodes);
    const got = nodes.map((n) => podTopologySpread.filter(state, c.pod, n).reasons.join(','));
    assert.deepEqual(got, c.want, c.name);
  }
});

test('ScheduleAnyway constraints score emptier domains higher', () => {
  const cases: { name: string; pod: Pod; on: Record<string, Pod[]>; want: number[] }[] = [
    // Uniform scores change no ranking.
    {
      name: 'no constraints',
      pod: testPod('p'),
      on: { a: [web('w')] },
      want: [100, 100, 100, 100],
    },
    {
      name: 'zone',
      pod: incoming([spread(ZONE, { whenUnsatisfiable: 'ScheduleAnyway' })]),
      on: { a: [web('w1')], b: [web('w2')] },
      want: [0, 0, 100, 0],
    },
    {
      name: 'hostname',
      pod: incoming([spread(HOST, { whenUnsatisfiable: 'ScheduleAnyway' })]),
      on: { a: [web('w1'), web('w2')], b: [web('w3')] },
      want: [0, 50, 100, 100],
    },
  ];
  for (const c of cases) {
    const nodes = cluster(c.on);
    const state: CycleState = new Map();
    podTopologySpread.preFilter(state, c.pod, nodes);
    const scores = nodes.map((n) => podTopologySpread.score(state, c.pod, n));
    podTopologySpread.normalize(scores);
    assert.deepEqual(scores, c.want, c.name);
  }
});

test('a copy of a node (preemption) is judged by its own pods', () => {
  const pod = incoming([spread(ZONE)]);
  const nodes = cluster({ a: [web('w1')] });
  const state: CycleState = new Map();
  podTopologySpread.preFilter(state, pod, nodes);
  const copy = nodes[0].clone();
  assert.deepEqual(podTopologySpread.filter(state, pod, copy).reasons, [S], 'same pods');
  copy.removePod('default/w1');
  assert.equal(podTopologySpread.filter(state, pod, copy).reasons.length, 0, 'victim removed');
  assert.deepEqual(podTopologySpread.filter(state, pod, nodes[0]).reasons, [S], 'original');
});
