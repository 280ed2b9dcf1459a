import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatFieldError } from './errors.js';
import type { PodSpec } from './types.js';
import { validatePodSpec } from './validation.js';

const containers = [{ name: 'c', image: 'i' }];
const req = 'requiredDuringSchedulingIgnoredDuringExecution';
const pref = 'preferredDuringSchedulingIgnoredDuringExecution';
const nodeReq = `spec.affinity.nodeAffinity.${req}.nodeSelectorTerms[0]`;

function nodeAffinity(matchExpressions: unknown[], matchFields?: unknown[]): Partial<PodSpec> {
  const term = { matchExpressions, matchFields };
  return { affinity: { nodeAffinity: { [req]: { nodeSelectorTerms: [term] } } } } as never;
}

function spread(c: Record<string, unknown>): Partial<PodSpec> {
  const base = { maxSkew: 1, topologyKey: 'zone', whenUnsatisfiable: 'DoNotSchedule' };
  return { topologySpreadConstraints: [{ ...base, ...c }] } as never;
}

test('scheduling fields of a pod spec', () => {
  const cases: { name: string; spec: Partial<PodSpec>; errors: string[] }[] = [
    {
      name: 'all valid',
      spec: {
        ...nodeAffinity([{ key: 'zone', operator: 'In', values: ['a'] }]),
        tolerations: [{ operator: 'Exists' }, { key: 'k', value: 'v', effect: 'NoSchedule' }],
        ...spread({ minDomains: 2, labelSelector: { matchLabels: { app: 'web' } } }),
        priority: 10,
        priorityClassName: 'high',
      },
      errors: [],
    },
    {
      name: 'toleration operator',
      spec: { tolerations: [{ key: 'k', operator: 'Foo' as never }] },
      errors: [
        'spec.tolerations[0].operator: Unsupported value: "Foo": supported values: "Equal", "Exists"',
      ],
    },
    {
      name: 'toleration without key must use Exists',
      spec: { tolerations: [{ operator: 'Equal', value: 'v' }] },
      errors: [
        'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when ' +
          '`key` is empty, which means "match all values and all keys"',
      ],
    },
    {
      name: 'Exists with a value',
      spec: { tolerations: [{ key: 'k', operator: 'Exists', value: 'v' }] },
      errors: [
        'spec.tolerations[0].value: Invalid value: "v": value must be empty when `operator` is ' +
          "'Exists'",
      ],
    },
    {
      name: 'toleration effect and seconds',
      spec: {
        tolerations: [
          { key: 'k', operator: 'Exists', effect: 'Sometimes' as never },
          { key: 'k', operator: 'Exists', effect: 'NoSchedule', tolerationSeconds: 5 },
        ],
      },
      errors: [
        'spec.tolerations[0].effect: Unsupported value: "Sometimes": supported values: ' +
          '"NoSchedule", "PreferNoSchedule", "NoExecute"',
        'spec.tolerations[1].effect: Invalid value: "NoSchedule": effect must be \'NoExecute\' ' +
          'when `tolerationSeconds` is set',
      ],
    },
    {
      name: 'In without values',
      spec: nodeAffinity([{ key: 'zone', operator: 'In' }]),
      errors: [
        `${nodeReq}.matchExpressions[0].values: Required value: must be specified when ` +
          "`operator` is 'In' or 'NotIn'",
      ],
    },
    {
      name: 'Exists with values, Gt with a word, unknown operator',
      spec: nodeAffinity([
        { key: 'a', operator: 'Exists', values: ['x'] },
        { key: 'b', operator: 'Gt', values: ['x'] },
        { key: 'c', operator: 'Near', values: ['x'] },
      ]),
      errors: [
        `${nodeReq}.matchExpressions[0].values: Forbidden: may not be specified when ` +
          "`operator` is 'Exists' or 'DoesNotExist'",
        `${nodeReq}.matchExpressions[1].values[0]: Invalid value: "x": must be an integer`,
        `${nodeReq}.matchExpressions[2].operator: Unsupported value: "Near": supported values: ` +
          '"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"',
      ],
    },
    {
      name: 'matchFields only on metadata.name',
      spec: nodeAffinity([], [{ key: 'spec.x', operator: 'In', values: ['a'] }]),
      errors: [
        `${nodeReq}.matchFields[0].key: Unsupported value: "spec.x": supported values: ` +
          '"metadata.name"',
      ],
    },
    {
      name: 'no node selector terms',
      spec: { affinity: { nodeAffinity: { [req]: { nodeSelectorTerms: [] } } } },
      errors: [
        `spec.affinity.nodeAffinity.${req}.nodeSelectorTerms: Required value: must have at ` +
          'least one node selector term',
      ],
    },
    {
      name: 'pod affinity terms',
      spec: {
        affinity: {
          podAntiAffinity: {
            [req]: [{ labelSelector: { matchLabels: { app: 'x' } } } as never],
            [pref]: [{ weight: 0, podAffinityTerm: { topologyKey: 'zone' } }],
          },
        },
      },
      errors: [
        `spec.affinity.podAntiAffinity.${req}[0].topologyKey: Required value`,
        `spec.affinity.podAntiAffinity.${pref}[0].weight: Invalid value: 0: must be in the ` +
          'range 1-100',
      ],
    },
    {
      name: 'maxSkew and whenUnsatisfiable',
      spec: spread({ maxSkew: 0, whenUnsatisfiable: 'Sometimes' }),
      errors: [
        'spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero',
        'spec.topologySpreadConstraints[0].whenUnsatisfiable: Unsupported value: "Sometimes": ' +
          'supported values: "DoNotSchedule", "ScheduleAnyway"',
      ],
    },
    {
      name: 'minDomains and policies',
      spec: spread({
        minDomains: 2,
        whenUnsatisfiable: 'ScheduleAnyway',
        nodeTaintsPolicy: 'Maybe',
      }),
      errors: [
        'spec.topologySpreadConstraints[0].minDomains: Invalid value: 2: can only use ' +
          'minDomains if whenUnsatisfiable=DoNotSchedule',
        'spec.topologySpreadConstraints[0].nodeTaintsPolicy: Unsupported value: "Maybe": ' +
          'supported values: "Honor", "Ignore"',
      ],
    },
    {
      name: 'duplicate constraint',
      spec: {
        topologySpreadConstraints: [
          { maxSkew: 1, topologyKey: 'zone', whenUnsatisfiable: 'DoNotSchedule' },
          { maxSkew: 2, topologyKey: 'zone', whenUnsatisfiable: 'DoNotSchedule' },
        ],
      },
      errors: ['spec.topologySpreadConstraints[1]: Duplicate value: "{zone, DoNotSchedule}"'],
    },
    {
      name: 'priority class name',
      spec: { priorityClassName: 'Not_Valid' },
      errors: [
        'spec.priorityClassName: Invalid value: "Not_Valid": a lowercase RFC 1123 subdomain ' +
          "must consist of lower case alphanumeric characters, '-' or '.', and must start and " +
          'end with an alphanumeric character',
      ],
    },
  ];
  for (const c of cases) {
    const errs = validatePodSpec({ containers, ...c.spec } as PodSpec, 'spec');
    assert.deepEqual(errs.map(formatFieldError), c.errors, c.name);
  }
});
