import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeObject, NodeSelectorTerm, PodSpec } from './types.js';
import { compileTerm, requiredPlacement } from './node-selector.js';

function node(name: string, labels: Record<string, string> = {}): NodeObject {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels } } as NodeObject;
}

test('node selector terms', () => {
  const n = node('n1', { zone: 'a', cores: '8', disk: 'ssd' });
  const cases: { name: string; term: NodeSelectorTerm | undefined; want: boolean }[] = [
    { name: 'no term', term: undefined, want: false },
    { name: 'empty term', term: {}, want: false },
    {
      name: 'In',
      term: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] },
      want: true,
    },
    {
      name: 'In, other value',
      term: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] },
      want: false,
    },
    {
      name: 'NotIn, label absent',
      term: { matchExpressions: [{ key: 'gpu', operator: 'NotIn', values: ['x'] }] },
      want: true,
    },
    {
      name: 'Exists',
      term: { matchExpressions: [{ key: 'disk', operator: 'Exists' }] },
      want: true,
    },
    {
      name: 'DoesNotExist',
      term: { matchExpressions: [{ key: 'disk', operator: 'DoesNotExist' }] },
      want: false,
    },
    {
      name: 'Gt',
      term: { matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['4'] }] },
      want: true,
    },
    {
      name: 'Lt',
      term: { matchExpressions: [{ key: 'cores', operator: 'Lt', values: ['4'] }] },
      want: false,
    },
    {
      name: 'Gt with two values',
      term: { matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['4', '5'] }] },
      want: false,
    },
    {
      name: 'Gt, not an integer',
      term: { matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['4x'] }] },
      want: false,
    },
    {
      name: 'Gt on a non-integer label',
      term: { matchExpressions: [{ key: 'zone', operator: 'Gt', values: ['1'] }] },
      want: false,
    },
    {
      name: 'field name In',
      term: { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] },
      want: true,
    },
    {
      name: 'field name NotIn',
      term: { matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['n1'] }] },
      want: false,
    },
    {
      name: 'unsupported field',
      term: { matchFields: [{ key: 'spec.podCIDR', operator: 'In', values: ['x'] }] },
      want: false,
    },
    {
      name: 'expressions and fields are ANDed',
      term: {
        matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }],
        matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n2'] }],
      },
      want: false,
    },
  ];
  for (const c of cases) assert.equal(compileTerm(c.term)(n), c.want, c.name);
});

test("a pod spec's required placement", () => {
  const n = node('n1', { zone: 'a' });
  const spec = (extra: Partial<PodSpec>): PodSpec => ({ containers: [], ...extra }) as PodSpec;
  const term = (zone: string): NodeSelectorTerm => ({
    matchExpressions: [{ key: 'zone', operator: 'In', values: [zone] }],
  });
  const affinity = (...terms: NodeSelectorTerm[]) => ({
    nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
  });
  const cases: { name: string; spec: PodSpec; any: boolean; want: boolean }[] = [
    { name: 'nothing', spec: spec({}), any: true, want: true },
    {
      name: 'selector matches',
      spec: spec({ nodeSelector: { zone: 'a' } }),
      any: false,
      want: true,
    },
    {
      name: 'selector misses',
      spec: spec({ nodeSelector: { zone: 'b' } }),
      any: false,
      want: false,
    },
    {
      name: 'terms are ORed',
      spec: spec({ affinity: affinity(term('b'), term('a')) }),
      any: false,
      want: true,
    },
    {
      name: 'no term matches',
      spec: spec({ affinity: affinity(term('b')) }),
      any: false,
      want: false,
    },
    { name: 'no terms at all', spec: spec({ affinity: affinity() }), any: false, want: false },
    {
      name: 'selector and terms are ANDed',
      spec: spec({ nodeSelector: { zone: 'b' }, affinity: affinity(term('a')) }),
      any: false,
      want: false,
    },
  ];
  for (const c of cases) {
    const placement = requiredPlacement(c.spec);
    assert.equal(placement.any, c.any, `${c.name}: any`);
    assert.equal(placement.matches(n), c.want, c.name);
  }
});
