import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Affinity, LabelSelector, Pod, PodAffinityTerm } from '../../../api/types.js';
import type { CycleState } from '../../framework/interface.js';
import { testNode, testPod } from '../../framework/testing.js';
import {
  interPodAffinity,
  REASON_AFFINITY,
  REASON_ANTI_AFFINITY,
  REASON_EXISTING_ANTI_AFFINITY,
} from './inter-pod-affinity.js';

const web = testPod('web', { labels: { app: 'web' } });
const ZONE = 'topology.kubernetes.io/zone';
const HOST = 'kubernetes.io/hostname';
const REQ = 'requiredDuringSchedulingIgnoredDuringExecution';

function term(
  app: string,
  topologyKey: string,
  extra: Partial<PodAffinityTerm> = {},
): PodAffinityTerm {
  const labelSelector: LabelSelector = { matchLabels: { app } };
  return { labelSelector, topologyKey, ...extra };
}

function pod(affinity: Affinity, labels?: Record<string, string>, namespace?: string): Pod {
  return testPod('incoming', { labels, namespace, spec: { affinity } });
}

/** a and b in zone z1, c in z2, d without a zone; `on` says which pods run where. */
function cluster(on: Record<string, Pod[]> = { a: [web] }) {
  return [
    testNode('a', { labels: { [ZONE]: 'z1' }, pods: on.a }),
    testNode('b', { labels: { [ZONE]: 'z1' }, pods: on.b }),
    testNode('c', { labels: { [ZONE]: 'z2' }, pods: on.c }),
    testNode('d', { pods: on.d }),
  ];
}

test('required affinity, anti-affinity and symmetry', () => {
  const plugin = interPodAffinity();
  const guard = testPod('guard', {
    labels: { app: 'guard' },
    spec: {
      affinity: {
        podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term('cache', ZONE)] },
      },
    },
  });
  const affinity = (...terms: PodAffinityTerm[]): Affinity => ({
    podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: terms },
  });
  const anti = (...terms: PodAffinityTerm[]): Affinity => ({
    podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: terms },
  });
  const A = REASON_AFFINITY;
  const N = REASON_ANTI_AFFINITY;
  const E = REASON_EXISTING_ANTI_AFFINITY;
  const cases: { name: string; pod: Pod; on?: Record<string, Pod[]>; want: string[] }[] = [
    { name: 'no terms', pod: testPod('p'), want: ['', '', '', ''] },
    {
      name: 'affinity to web by zone',
      pod: pod(affinity(term('web', ZONE))),
      want: ['', '', A, A],
    },
    { name: 'affinity to web by host', pod: pod(affinity(term('web', HOST))), want: ['', A, A, A] },
    { name: 'no match and not self', pod: pod(affinity(term('db', ZONE))), want: [A, A, A, A] },
    {
      name: 'first of a self-selecting group',
      pod: pod(affinity(term('db', ZONE)), { app: 'db' }),
      want: ['', '', '', A],
    },
    {
      name: 'terms are ANDed',
      pod: pod(affinity(term('web', ZONE), term('db', ZONE))),
      want: [A, A, A, A],
    },
    { name: 'anti-affinity by host', pod: pod(anti(term('web', HOST))), want: [N, '', '', ''] },
    { name: 'anti-affinity by zone', pod: pod(anti(term('web', ZONE))), want: [N, N, '', ''] },
    {
      name: 'existing anti-affinity repels a matching pod',
      pod: testPod('p', { labels: { app: 'cache' } }),
      on: { c: [guard] },
      want: ['', '', E, ''],
    },
    {
      name: 'existing anti-affinity ignores other pods',
      pod: testPod('p', { labels: { app: 'db' } }),
      on: { c: [guard] },
      want: ['', '', '', ''],
    },
    {
      name: 'existing anti-affinity only in its namespace',
      pod: testPod('p', { labels: { app: 'cache' }, namespace: 'other' }),
      on: { c: [guard] },
      want: ['', '', '', ''],
    },
    {
      name: 'pods of other namespaces do not count',
      pod: pod(affinity(term('web', ZONE)), {}, 'other'),
      want: [A, A, A, A],
    },
    {
      name: 'namespaces list',
      pod: pod(affinity(term('web', ZONE, { namespaces: ['default'] })), {}, 'other'),
      want: ['', '', A, A],
    },
    {
      name: 'empty namespaceSelector selects all namespaces',
      pod: pod(affinity(term('web', ZONE, { namespaceSelector: {} })), {}, 'other'),
      want: ['', '', A, A],
    },
    {
      name: 'namespaceSelector on the namespace name label',
      pod: pod(
        anti(
          term('web', ZONE, {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'default' } },
          }),
        ),
        {},
        'other',
      ),
      want: [N, N, '', ''],
    },
  ];
  for (const c of cases) {
    const nodes = cluster(c.on);
    const state: CycleState = new Map();
    plugin.preFilter(state, c.pod, nodes);
    const got = nodes.map((n) => plugin.filter(state, c.pod, n).reasons.join(','));
    assert.deepEqual(got, c.want, c.name);
  }
});

test('namespaceSelector with a namespace lister', () => {
  const plugin = interPodAffinity({
    namespaceLabels: (ns) => (ns === 'default' ? { team: 'a' } : undefined),
  });
  const incoming = pod(
    {
      podAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          term('web', ZONE, { namespaceSelector: { matchLabels: { team: 'a' } } }),
        ],
      },
    },
    {},
    'other',
  );
  const nodes = cluster();
  const state: CycleState = new Map();
  plugin.preFilter(state, incoming, nodes);
  const got = nodes.map((n) => plugin.filter(state, incoming, n).reasons.join(','));
  assert.deepEqual(got, ['', '', REASON_AFFINITY, REASON_AFFINITY]);
});

test('preferred terms score domains both ways', () => {
  const plugin = interPodAffinity();
  const shy = testPod('shy', {
    labels: { app: 'shy' },
    spec: {
      affinity: {
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 100, podAffinityTerm: term('db', HOST) },
          ],
        },
      },
    },
  });
  const cases: { name: string; pod: Pod; want: number[] }[] = [
    { name: 'nothing preferred', pod: testPod('p'), want: [0, 0, 0, 0] },
    {
      name: 'prefers the zone of web',
      pod: pod({
        podAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 10, podAffinityTerm: term('web', ZONE) },
          ],
        },
      }),
      want: [100, 100, 0, 0],
    },
    {
      name: 'avoids the zone of web',
      pod: pod({
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 10, podAffinityTerm: term('web', ZONE) },
          ],
        },
      }),
      want: [0, 0, 100, 100],
    },
    {
      name: 'an existing pod that avoids the incoming one',
      pod: testPod('p', { labels: { app: 'db' } }),
      want: [0, 100, 100, 100],
    },
  ];
  for (const c of cases) {
    const nodes = cluster({ a: [web, shy] });
    const state: CycleState = new Map();
    plugin.preFilter(state, c.pod, nodes);
    const scores = nodes.map((n) => plugin.score(state, c.pod, n));
    plugin.normalize(scores);
    assert.deepEqual(scores, c.want, c.name);
  }
});

test('a copy of a node (preemption) is judged by its own pods', () => {
  const plugin = interPodAffinity();
  const guard = testPod('guard', {
    spec: { affinity: { podAntiAffinity: { [REQ]: [term('cache', ZONE)] } } },
  });
  const cases: {
    name: string;
    pod: Pod;
    on: Record<string, Pod[]>;
    copy: string;
    want: string[];
  }[] = [
    {
      name: 'anti-affinity to a victim',
      pod: pod({ podAntiAffinity: { [REQ]: [term('web', HOST)] } }),
      on: { a: [web] },
      copy: 'a',
      want: [REASON_ANTI_AFFINITY, ''],
    },
    {
      name: 'a victim whose anti-affinity repelled the pod',
      pod: testPod('p', { labels: { app: 'cache' } }),
      on: { c: [guard] },
      copy: 'c',
      want: [REASON_EXISTING_ANTI_AFFINITY, ''],
    },
    {
      name: 'affinity to a victim is lost',
      pod: pod({ podAffinity: { [REQ]: [term('web', ZONE)] } }),
      on: { a: [web] },
      copy: 'a',
      want: ['', REASON_AFFINITY],
    },
  ];
  for (const c of cases) {
    const nodes = cluster(c.on);
    const state: CycleState = new Map();
    plugin.preFilter(state, c.pod, nodes);
    const original = nodes.find((n) => n.name === c.copy)!;
    const copy = original.clone();
    for (const key of [...copy.pods.keys()]) copy.removePod(key);
    const got = [original, copy].map((n) => plugin.filter(state, c.pod, n).reasons.join(','));
    assert.deepEqual(got, c.want, c.name);
  }
});
