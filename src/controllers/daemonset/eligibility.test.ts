import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tolerates } from '../../api/taints.js';
import type {
  Affinity,
  NodeObject,
  NodeSelectorTerm,
  Pod,
  PodAffinityTerm,
  PodSpec,
  Taint,
  Toleration,
} from '../../api/types.js';
import { daemonPodSpec, daemonTolerations, nodeVerdict, targetNode } from './eligibility.js';

function node(name: string, labels: Record<string, string> = {}, taints: Taint[] = []) {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels }, spec: { taints } };
}

function spec(extra: Partial<PodSpec> = {}): PodSpec {
  return { containers: [{ name: 'c', image: 'i' }], ...extra };
}

const affinity = (...terms: NodeSelectorTerm[]): Affinity => ({
  nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
});

const RUN = { shouldRun: true, shouldContinueRunning: true };
const STAY = { shouldRun: false, shouldContinueRunning: true };
const NONE = { shouldRun: false, shouldContinueRunning: false };

const verdictCases: { name: string; spec: PodSpec; node: NodeObject; want: typeof RUN }[] = [
  { name: 'plain template runs everywhere', spec: spec(), node: node('a'), want: RUN },
  {
    name: 'node selector matches',
    spec: spec({ nodeSelector: { disk: 'ssd' } }),
    node: node('a', { disk: 'ssd', zone: 'z1' }),
    want: RUN,
  },
  {
    name: 'node selector does not match',
    spec: spec({ nodeSelector: { disk: 'ssd' } }),
    node: node('a', { disk: 'hdd' }),
    want: NONE,
  },
  {
    name: 'template nodeName names another node',
    spec: spec({ nodeName: 'b' }),
    node: node('a'),
    want: NONE,
  },
  {
    name: 'required affinity In matches one term of two',
    spec: spec({
      affinity: affinity(
        { matchExpressions: [{ key: 'zone', operator: 'In', values: ['z9'] }] },
        { matchExpressions: [{ key: 'zone', operator: 'In', values: ['z1', 'z2'] }] },
      ),
    }),
    node: node('a', { zone: 'z2' }),
    want: RUN,
  },
  {
    name: 'required affinity NotIn excludes',
    spec: spec({
      affinity: affinity({
        matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['z1'] }],
      }),
    }),
    node: node('a', { zone: 'z1' }),
    want: NONE,
  },
  {
    name: 'required affinity on metadata.name field',
    spec: spec({
      affinity: affinity({
        matchFields: [{ key: 'metadata.name', operator: 'In', values: ['a'] }],
      }),
    }),
    node: node('a'),
    want: RUN,
  },
  {
    name: 'required affinity Gt on a numeric label',
    spec: spec({
      affinity: affinity({ matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['4'] }] }),
    }),
    node: node('a', { cores: '2' }),
    want: NONE,
  },
  {
    name: 'an empty term selects nothing',
    spec: spec({ affinity: affinity({}) }),
    node: node('a'),
    want: NONE,
  },
  {
    name: 'untolerated NoSchedule taint: no new pod, existing one stays',
    spec: spec(),
    node: node('a', {}, [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }]),
    want: STAY,
  },
  {
    name: 'untolerated NoExecute taint: evicted',
    spec: spec(),
    node: node('a', {}, [{ key: 'dedicated', value: 'db', effect: 'NoExecute' }]),
    want: NONE,
  },
  {
    name: 'PreferNoSchedule taint is ignored',
    spec: spec(),
    node: node('a', {}, [{ key: 'dedicated', effect: 'PreferNoSchedule' }]),
    want: RUN,
  },
  {
    name: 'tolerated taint',
    spec: spec({ tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db' }] }),
    node: node('a', {}, [{ key: 'dedicated', value: 'db', effect: 'NoExecute' }]),
    want: RUN,
  },
  {
    name: 'default daemon tolerations: cordoned, not ready, under pressure',
    spec: spec(),
    node: node('a', {}, [
      { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' },
      { key: 'node.kubernetes.io/not-ready', effect: 'NoExecute' },
      { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' },
      { key: 'node.kubernetes.io/disk-pressure', effect: 'NoSchedule' },
      { key: 'node.kubernetes.io/memory-pressure', effect: 'NoSchedule' },
      { key: 'node.kubernetes.io/pid-pressure', effect: 'NoSchedule' },
    ]),
    want: RUN,
  },
  {
    name: 'network-unavailable is tolerated by host-network daemons only',
    spec: spec(),
    node: node('a', {}, [{ key: 'node.kubernetes.io/network-unavailable', effect: 'NoSchedule' }]),
    want: STAY,
  },
  {
    name: 'network-unavailable with hostNetwork',
    spec: spec({ hostNetwork: true }),
    node: node('a', {}, [{ key: 'node.kubernetes.io/network-unavailable', effect: 'NoSchedule' }]),
    want: RUN,
  },
];

for (const c of verdictCases) {
  test(`nodeVerdict: ${c.name}`, () => {
    assert.deepEqual(nodeVerdict(c.spec, c.node), c.want);
  });
}

const tolerationCases: { t: Toleration; taint: Taint; want: boolean }[] = [
  { t: { operator: 'Exists' }, taint: { key: 'x', effect: 'NoSchedule' }, want: true },
  { t: { key: 'x' }, taint: { key: 'x', effect: 'NoSchedule' }, want: true },
  {
    t: { key: 'x', value: 'v' },
    taint: { key: 'x', value: 'w', effect: 'NoSchedule' },
    want: false,
  },
  {
    t: { key: 'x', operator: 'Exists', effect: 'NoExecute' },
    taint: { key: 'x', effect: 'NoSchedule' },
    want: false,
  },
  { t: { key: 'y', operator: 'Exists' }, taint: { key: 'x', effect: 'NoSchedule' }, want: false },
  { t: {}, taint: { key: 'x', effect: 'NoSchedule' }, want: false },
];

test('tolerates: key, value, operator and effect', () => {
  for (const c of tolerationCases) {
    assert.equal(tolerates(c.t, c.taint), c.want, JSON.stringify(c));
  }
});

test('daemonTolerations: a default replaces a template toleration of the same key and effect', () => {
  const own: Toleration[] = [
    {
      key: 'node.kubernetes.io/not-ready',
      operator: 'Exists',
      effect: 'NoExecute',
      tolerationSeconds: 5,
    },
    { key: 'dedicated', operator: 'Exists' },
  ];
  const all = daemonTolerations(spec({ tolerations: own }));
  assert.equal(all.length, 7);
  const notReady = all.filter((t) => t.key === 'node.kubernetes.io/not-ready');
  assert.deepEqual(notReady, [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
  ]);
  assert.ok(all.some((t) => t.key === 'dedicated'));
});

const KEEP: PodAffinityTerm = { topologyKey: 'kubernetes.io/hostname' };

test('daemonPodSpec pins the pod to its node through matchFields; targetNode reads it back', () => {
  const template = spec({
    affinity: {
      ...affinity({ matchExpressions: [{ key: 'zone', operator: 'In', values: ['z1'] }] }),
      podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [KEEP] },
    },
  });
  const out = daemonPodSpec(template, 'node-7');
  const terms = (out.affinity as any).nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution
    .nodeSelectorTerms;
  assert.deepEqual(terms, [
    { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-7'] }] },
  ]);
  assert.deepEqual((out.affinity as any).podAntiAffinity, {
    requiredDuringSchedulingIgnoredDuringExecution: [KEEP],
  });
  assert.equal(
    (template.affinity as any).nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution
      .nodeSelectorTerms.length,
    1,
    'the template is not changed',
  );
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: out } as Pod;
  assert.equal(targetNode(pod), 'node-7');
  assert.equal(targetNode({ ...pod, spec: { ...out, nodeName: 'bound' } }), 'bound');
  assert.equal(targetNode({ ...pod, spec: spec() }), undefined);
});
