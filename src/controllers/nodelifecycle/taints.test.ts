import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addDefaultTolerations, tolerates, type Taint, type Toleration } from '../../api/taints.js';
import type { NodeObject, Pod } from '../../api/types.js';
import { evictionTime, reconcileTaints, wantedTaints } from './taints.js';

function node(ready?: string): NodeObject {
  const conditions = ready ? [{ type: 'Ready', status: ready }] : [];
  const status = { conditions } as NodeObject['status'];
  return { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n' }, status };
}

function pod(tolerations?: Toleration[]): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default' },
    spec: { containers: [{ name: 'c', image: 'i' }], ...(tolerations ? { tolerations } : {}) },
  };
}

const UNREACHABLE = 'node.kubernetes.io/unreachable';
const NOT_READY = 'node.kubernetes.io/not-ready';

test('the Ready condition decides the lifecycle taints', () => {
  const cases: [string | undefined, string[]][] = [
    ['True', []],
    ['False', [`${NOT_READY}:NoSchedule`, `${NOT_READY}:NoExecute`]],
    ['Unknown', [`${UNREACHABLE}:NoSchedule`, `${UNREACHABLE}:NoExecute`]],
    // A node that never reported has nothing to judge yet.
    [undefined, []],
  ];
  for (const [ready, want] of cases) {
    const got = wantedTaints(node(ready)).map((t) => `${t.key}:${t.effect}`);
    assert.deepEqual(got, want, `Ready=${ready}`);
  }
});

test('reconcileTaints changes only the taints it owns and keeps timeAdded', () => {
  const mine: Taint = { key: UNREACHABLE, effect: 'NoExecute', timeAdded: 'T0' };
  const other: Taint = { key: 'example.com/gpu', value: 'x', effect: 'NoSchedule' };
  const wantUnreachable = wantedTaints(node('Unknown'));
  const cases: { name: string; current: Taint[]; wanted: Taint[]; want?: Taint[] }[] = [
    { name: 'nothing to do', current: [other], wanted: [], want: undefined },
    {
      name: 'adds both effects, stamping NoExecute',
      current: [other],
      wanted: wantUnreachable,
      want: [
        other,
        { key: UNREACHABLE, effect: 'NoSchedule' },
        { key: UNREACHABLE, effect: 'NoExecute', timeAdded: 'NOW' },
      ],
    },
    {
      name: 'keeps an existing taint and its time',
      current: [other, mine],
      wanted: wantUnreachable,
      want: [other, mine, { key: UNREACHABLE, effect: 'NoSchedule' }],
    },
    { name: 'removes owned taints when ready', current: [other, mine], wanted: [], want: [other] },
  ];
  for (const c of cases) {
    assert.deepEqual(reconcileTaints(c.current, c.wanted, 'NOW'), c.want, c.name);
  }
});

test('toleration matching follows Kubernetes', () => {
  const taint: Taint = { key: 'k', value: 'v', effect: 'NoExecute' };
  const cases: [Toleration, boolean][] = [
    [{ key: 'k', operator: 'Equal', value: 'v', effect: 'NoExecute' }, true],
    [{ key: 'k', value: 'v' }, true],
    [{ key: 'k', value: 'other' }, false],
    [{ key: 'k', operator: 'Exists' }, true],
    [{ operator: 'Exists' }, true],
    [{ operator: 'Exists', effect: 'NoSchedule' }, false],
    [{ key: 'x', operator: 'Exists' }, false],
  ];
  for (const [toleration, want] of cases) {
    assert.equal(tolerates(toleration, taint), want, JSON.stringify(toleration));
  }
});

test('eviction time comes from the shortest matching toleration', () => {
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const taints: Taint[] = [
    { key: UNREACHABLE, effect: 'NoExecute', timeAdded: '2026-01-01T00:00:00Z' },
    { key: UNREACHABLE, effect: 'NoSchedule' },
  ];
  const now = t0 + 1000;
  const cases: { name: string; tolerations?: Toleration[]; want: number | undefined }[] = [
    { name: 'no toleration: at once', want: now },
    {
      name: 'tolerated for 5 s from timeAdded',
      tolerations: [{ key: UNREACHABLE, operator: 'Exists', tolerationSeconds: 5 }],
      want: t0 + 5000,
    },
    {
      name: 'two matches: the shorter wins',
      tolerations: [
        { key: UNREACHABLE, operator: 'Exists', tolerationSeconds: 5 },
        { operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 2 },
      ],
      want: t0 + 2000,
    },
    {
      name: 'a match without seconds tolerates for good',
      tolerations: [{ key: UNREACHABLE, operator: 'Exists' }],
      want: undefined,
    },
    {
      name: 'negative seconds mean now',
      tolerations: [{ key: UNREACHABLE, operator: 'Exists', tolerationSeconds: -3 }],
      want: t0,
    },
  ];
  for (const c of cases)
    assert.equal(evictionTime(pod(c.tolerations), taints, now), c.want, c.name);
});

test('default tolerations are added once and respect the pod’s own', () => {
  const p = pod();
  addDefaultTolerations(p, 8);
  addDefaultTolerations(p, 8);
  assert.deepEqual(p.spec.tolerations, [
    { key: NOT_READY, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 8 },
    { key: UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 8 },
  ]);
  const own = pod([{ key: UNREACHABLE, operator: 'Exists', effect: 'NoExecute' }]);
  addDefaultTolerations(own, 8);
  assert.equal((own.spec.tolerations as Toleration[]).length, 2);
  assert.equal((own.spec.tolerations as Toleration[])[0].tolerationSeconds, undefined);
  const everything = pod([{ operator: 'Exists' }]);
  addDefaultTolerations(everything, 8);
  assert.equal((everything.spec.tolerations as Toleration[]).length, 1);
});
