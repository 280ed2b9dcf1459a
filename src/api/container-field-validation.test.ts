import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatFieldError } from './errors.js';
import type { PodSpec } from './types.js';
import { validatePodSpec } from './validation.js';

const C = 'spec.containers[0]';

function errorsOf(container: object, spec: object = {}): string[] {
  const pod = { containers: [{ name: 'c', image: 'i', ...container }], ...spec };
  return validatePodSpec(pod as PodSpec, 'spec').map(formatFieldError);
}

test('resources: known names, and no request above its limit', () => {
  const cases: [object, string[]][] = [
    [{ requests: { cpu: '500m', memory: '64Mi' }, limits: { cpu: '1', memory: '64Mi' } }, []],
    [{ limits: { 'example.com/gpu': '1', 'hugepages-2Mi': '4Mi' } }, []],
    [
      { requests: { memory: '200Mi' }, limits: { memory: '100Mi' } },
      [
        `${C}.resources.requests[memory]: Invalid value: "200Mi": must not exceed the memory limit (100Mi)`,
      ],
    ],
    [
      { limits: { memroy: '10Mi' } },
      [
        `${C}.resources.limits[memroy]: Invalid value: "memroy": must be cpu, memory, ephemeral-storage, hugepages-<size> or a name with a domain (example.com/gpu)`,
      ],
    ],
    [
      { requests: { 'kubernetes.io/thing': '1' } },
      [
        `${C}.resources.requests[kubernetes.io/thing]: Invalid value: "kubernetes.io/thing": must be cpu, memory, ephemeral-storage, hugepages-<size> or a name with a domain (example.com/gpu)`,
      ],
    ],
  ];
  for (const [resources, want] of cases) {
    assert.deepEqual(errorsOf({ resources }), want, JSON.stringify(resources));
  }
});

test('resources: extended resources and hugepages are whole and not overcommitted', () => {
  const R = `${C}.resources`;
  const cases: [object, string[]][] = [
    [{ requests: { 'example.com/gpu': '2' }, limits: { 'example.com/gpu': '2' } }, []],
    [{ requests: { 'hugepages-2Mi': '4Mi' }, limits: { 'hugepages-2Mi': '4Mi' } }, []],
    [
      { limits: { 'example.com/gpu': '1.5' } },
      [`${R}.limits[example.com/gpu]: Invalid value: "1.5": must be an integer`],
    ],
    [
      { requests: { 'example.com/gpu': '500m' }, limits: { 'example.com/gpu': '500m' } },
      [
        `${R}.requests[example.com/gpu]: Invalid value: "500m": must be an integer`,
        `${R}.limits[example.com/gpu]: Invalid value: "500m": must be an integer`,
      ],
    ],
    [
      { requests: { 'example.com/gpu': '1' } },
      [
        `${R}.limits[example.com/gpu]: Required value: Limit must be set for non overcommitable resources`,
      ],
    ],
    [
      { requests: { 'example.com/gpu': '1' }, limits: { 'example.com/gpu': '2' } },
      [
        `${R}.requests[example.com/gpu]: Invalid value: "1": must be equal to example.com/gpu limit of 2`,
      ],
    ],
    [
      { requests: { 'hugepages-2Mi': '2Mi' }, limits: { 'hugepages-2Mi': '4Mi' } },
      [
        `${R}.requests[hugepages-2Mi]: Invalid value: "2Mi": must be equal to hugepages-2Mi limit of 4Mi`,
      ],
    ],
    // cpu and memory may be overcommitted, and fractional.
    [{ requests: { cpu: '0.5', memory: '1.5Gi' } }, []],
  ];
  for (const [resources, want] of cases) {
    assert.deepEqual(errorsOf({ resources }), want, JSON.stringify(resources));
  }
});

test('port names: IANA service names, each once', () => {
  const detail =
    'must be at most 15 lower-case letters, digits and inner single dashes, with a letter';
  const cases: [object[], string[]][] = [
    [
      [
        { containerPort: 80, name: 'http' },
        { containerPort: 81, name: 'http-alt' },
        { containerPort: 82 },
      ],
      [],
    ],
    [
      [{ containerPort: 80, name: 'THIS_IS_BAD' }],
      [`${C}.ports[0].name: Invalid value: "THIS_IS_BAD": ${detail}`],
    ],
    [
      [{ containerPort: 80, name: '8080' }],
      [`${C}.ports[0].name: Invalid value: "8080": ${detail}`],
    ],
    [
      [
        { containerPort: 80, name: 'web' },
        { containerPort: 81, name: 'web' },
      ],
      [`${C}.ports[1].name: Duplicate value: "web"`],
    ],
  ];
  for (const [ports, want] of cases)
    assert.deepEqual(errorsOf({ ports }), want, JSON.stringify(ports));
});

test('user and group ids from 0 to 2^31-1; a known DNS policy', () => {
  const range = 'must be between 0 and 2147483647, inclusive';
  assert.deepEqual(errorsOf({ securityContext: { runAsUser: 0, runAsGroup: 1000 } }), []);
  assert.deepEqual(errorsOf({ securityContext: { runAsUser: -1 } }), [
    `${C}.securityContext.runAsUser: Invalid value: -1: ${range}`,
  ]);
  assert.deepEqual(
    errorsOf({}, { securityContext: { fsGroup: 2 ** 31, supplementalGroups: [1, -5] } }),
    [
      `spec.securityContext.fsGroup: Invalid value: 2147483648: ${range}`,
      `spec.securityContext.supplementalGroups[1]: Invalid value: -5: ${range}`,
    ],
  );
  assert.deepEqual(errorsOf({}, { dnsPolicy: 'Default' }), []);
  assert.deepEqual(
    errorsOf({}, { dnsPolicy: 'None', dnsConfig: { nameservers: ['1.1.1.1'] } }),
    [],
  );
  assert.deepEqual(errorsOf({}, { dnsPolicy: 'Sometimes' }), [
    'spec.dnsPolicy: Unsupported value: "Sometimes": supported values: "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"',
  ]);
  assert.deepEqual(errorsOf({}, { dnsPolicy: 'None' }), [
    'spec.dnsConfig: Required value: a dnsPolicy of None needs a dnsConfig',
  ]);
});
