import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatFieldError } from './errors.js';
import type { PodSpec } from './types.js';
import { validatePodSpec } from './validation.js';

const C = 'spec.containers[0]';

/** The errors of a pod spec whose one container has `fields` (and the spec `extra`). */
function errorsOf(fields: object, extra: object = {}): string[] {
  const spec = { containers: [{ name: 'c', image: 'i', ...fields }], ...extra };
  return validatePodSpec(spec as PodSpec, 'spec').map(formatFieldError);
}

test('probes: exactly one handler, with its fields, and sound timing', () => {
  const exec = { command: ['true'] };
  const cases: [object, string[]][] = [
    [{ livenessProbe: { exec, periodSeconds: 5 } }, []],
    [
      { readinessProbe: { httpGet: { port: 'http-alt', scheme: 'HTTPS' }, successThreshold: 3 } },
      [],
    ],
    [{ startupProbe: { tcpSocket: { port: '8080' } } }, []],
    [{ livenessProbe: { grpc: { port: 9090, service: 'db' } } }, []],
    [
      { livenessProbe: { periodSeconds: 1 } },
      [
        `${C}.livenessProbe: Required value: must specify a handler type (one of exec, httpGet, tcpSocket, grpc)`,
      ],
    ],
    [
      { livenessProbe: { exec, tcpSocket: { port: 1 } } },
      [`${C}.livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type`],
    ],
    [{ livenessProbe: { exec: {} } }, [`${C}.livenessProbe.exec.command: Required value`]],
    [
      { readinessProbe: { httpGet: { port: 70000 } } },
      [
        `${C}.readinessProbe.httpGet.port: Invalid value: 70000: must be between 1 and 65535, inclusive`,
      ],
    ],
    [
      { readinessProbe: { httpGet: { port: 80, scheme: 'FTP', httpHeaders: [{ name: 'a b' }] } } },
      [
        `${C}.readinessProbe.httpGet.scheme: Unsupported value: "FTP": supported values: "HTTP", "HTTPS"`,
        `${C}.readinessProbe.httpGet.httpHeaders[0].name: Invalid value: "a b": must be a valid HTTP header name`,
      ],
    ],
    [
      { livenessProbe: { tcpSocket: { port: 'Web_Port' } } },
      [
        `${C}.livenessProbe.tcpSocket.port: Invalid value: "Web_Port": must be a port number or a port name of at most 15 lower-case letters, digits and inner dashes, with a letter`,
      ],
    ],
    [
      { livenessProbe: { grpc: { port: 'grpc' } } },
      [
        `${C}.livenessProbe.grpc.port: Invalid value: "grpc": must be between 1 and 65535, inclusive`,
      ],
    ],
    [
      { livenessProbe: { exec, periodSeconds: -1 } },
      [`${C}.livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0`],
    ],
    [
      { startupProbe: { exec, successThreshold: 2 } },
      [`${C}.startupProbe.successThreshold: Invalid value: 2: must be 1`],
    ],
    [
      { readinessProbe: { exec, terminationGracePeriodSeconds: 5 } },
      [
        `${C}.readinessProbe.terminationGracePeriodSeconds: Forbidden: may not be set for readiness probes`,
      ],
    ],
  ];
  for (const [fields, want] of cases)
    assert.deepEqual(errorsOf(fields), want, JSON.stringify(fields));
});

test('lifecycle hooks: exactly one handler; a sleep within the grace period', () => {
  const cases: [object, object, string[]][] = [
    [{ postStart: { exec: { command: ['true'] } }, preStop: { sleep: { seconds: 5 } } }, {}, []],
    [
      { postStart: {} },
      {},
      [
        `${C}.lifecycle.postStart: Required value: must specify a handler type (one of exec, httpGet, tcpSocket, sleep)`,
      ],
    ],
    [
      { preStop: { sleep: { seconds: -1 } } },
      {},
      [
        `${C}.lifecycle.preStop.sleep.seconds: Invalid value: -1: must be between 0 and the pod's terminationGracePeriodSeconds (30)`,
      ],
    ],
    [
      { preStop: { sleep: { seconds: 20 } } },
      { terminationGracePeriodSeconds: 10 },
      [
        `${C}.lifecycle.preStop.sleep.seconds: Invalid value: 20: must be between 0 and the pod's terminationGracePeriodSeconds (10)`,
      ],
    ],
    [
      { preStop: { grpc: { port: 1 } } },
      {},
      [
        `${C}.lifecycle.preStop: Required value: must specify a handler type (one of exec, httpGet, tcpSocket, sleep)`,
      ],
    ],
  ];
  for (const [lifecycle, extra, want] of cases) {
    assert.deepEqual(errorsOf({ lifecycle }, extra), want, JSON.stringify(lifecycle));
  }
});

test('init containers have neither probes nor hooks', () => {
  const spec = {
    containers: [{ name: 'c', image: 'i' }],
    initContainers: [
      {
        name: 'i',
        image: 'i',
        readinessProbe: { exec: { command: ['true'] } },
        lifecycle: { postStart: { exec: { command: ['true'] } } },
      },
    ],
  };
  assert.deepEqual(validatePodSpec(spec as PodSpec, 'spec').map(formatFieldError), [
    'spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers',
    'spec.initContainers[0].lifecycle: Forbidden: may not be set for init containers',
  ]);
});

test('env valueFrom: one source, named fully; never beside a value', () => {
  const secret = { secretKeyRef: { name: 's', key: 'pw' } };
  const sources = '`fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef`';
  const cases: [object, string[]][] = [
    [{ name: 'A', valueFrom: secret }, []],
    [{ name: 'A', value: '', valueFrom: secret }, []],
    [{ name: 'A', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } }, []],
    [{ name: 'A', valueFrom: { resourceFieldRef: { resource: 'limits.memory' } } }, []],
    [
      { name: 'A', valueFrom: { secretKeyRef: { name: 's' } } },
      [`${C}.env[0].valueFrom.secretKeyRef.key: Required value`],
    ],
    [
      { name: 'A', valueFrom: { configMapKeyRef: { key: 'k/x' } } },
      [
        `${C}.env[0].valueFrom.configMapKeyRef.name: Required value`,
        `${C}.env[0].valueFrom.configMapKeyRef.key: Invalid value: "k/x": a valid key must consist of alphanumeric characters, '-', '_' or '.'`,
      ],
    ],
    [
      { name: 'A', value: 'hunter2', valueFrom: secret },
      [`${C}.env[0].valueFrom: Forbidden: may not be specified when \`value\` is not empty`],
    ],
    [
      { name: 'A', valueFrom: {} },
      [`${C}.env[0].valueFrom: Invalid value: must specify exactly one of: ${sources}`],
    ],
    [
      { name: 'A', valueFrom: { fieldRef: { fieldPath: 'spec.hostname' } } },
      [
        `${C}.env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.hostname": supported values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs", and metadata.labels['KEY'] or metadata.annotations['KEY']`,
      ],
    ],
  ];
  for (const [env, want] of cases) {
    const got = errorsOf({ env: [env] });
    assert.deepEqual(got, want, JSON.stringify(env));
    assert.ok(!got.join().includes('hunter2'), 'a value shows in an error');
  }
});

test("a container's restartPolicy: only on init containers, and sidecars are refused as unsupported", () => {
  const cases: [object, string[]][] = [
    [{ containers: [{ name: 'c', image: 'i' }] }, []],
    [
      { containers: [{ name: 'c', image: 'i', restartPolicy: 'Always' }] },
      [`${C}.restartPolicy: Forbidden: may not be set for non-init containers`],
    ],
    [
      {
        containers: [{ name: 'c', image: 'i' }],
        initContainers: [{ name: 'i', image: 'i', restartPolicy: 'Never' }],
      },
      [
        'spec.initContainers[0].restartPolicy: Unsupported value: "Never": supported values: "Always"',
      ],
    ],
    [
      {
        containers: [{ name: 'c', image: 'i' }],
        initContainers: [{ name: 'i', image: 'i', restartPolicy: 'Always' }],
      },
      [
        'spec.initContainers[0].restartPolicy: Forbidden: sidecar containers (an init container with restartPolicy Always) are not supported yet',
      ],
    ],
  ];
  for (const [spec, want] of cases) {
    const got = validatePodSpec(spec as PodSpec, 'spec').map(formatFieldError);
    assert.deepEqual(got, want, JSON.stringify(spec));
  }
});

test('env fieldRef: the key of a label or annotation path must be a label key', () => {
  const ref = (fieldPath: string) => ({ name: 'A', valueFrom: { fieldRef: { fieldPath } } });
  const at = `${C}.env[0].valueFrom.fieldRef.fieldPath`;
  const cases: [object, string[]][] = [
    [ref("metadata.labels['app']"), []],
    [ref("metadata.annotations['example.com/Note_1']"), []],
    [
      ref("metadata.annotations['bad key!']"),
      [
        `${at}: Invalid value: "bad key!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)`,
      ],
    ],
    [
      ref("metadata.labels['a/b/c']"),
      [`${at}: Invalid value: "a/b/c": a qualified name must consist of at most one "/"`],
    ],
  ];
  for (const [env, want] of cases) {
    assert.deepEqual(errorsOf({ env: [env] }), want, JSON.stringify(env));
  }
});

test('env resourceFieldRef: a known resource and a divisor Kubernetes allows for it', () => {
  const ref = (r: object) => ({ name: 'A', valueFrom: { resourceFieldRef: r } });
  const at = `${C}.env[0].valueFrom.resourceFieldRef`;
  const cases: [object, string[]][] = [
    [ref({ resource: 'limits.cpu', divisor: '1m' }), []],
    [ref({ resource: 'requests.memory', divisor: '1Mi', containerName: 'c' }), []],
    [ref({ resource: 'limits.ephemeral-storage', divisor: '1G' }), []],
    // A zero divisor is the unset one, as typed clients send it.
    [ref({ resource: 'limits.cpu', divisor: '0' }), []],
    [ref({}), [`${at}.resource: Required value`]],
    [
      ref({ resource: 'limits.foo' }),
      [
        `${at}.resource: Unsupported value: "limits.foo": supported values: "limits.cpu", "requests.cpu", "limits.memory", "requests.memory", "limits.ephemeral-storage", "requests.ephemeral-storage"`,
      ],
    ],
    [
      ref({ resource: 'limits.cpu', divisor: '3m' }),
      [`${at}.divisor: Invalid value: "3m": must be 1m or 1 for cpu`],
    ],
    [
      ref({ resource: 'requests.memory', divisor: '7' }),
      [
        `${at}.divisor: Invalid value: "7": must be 1 or one unit of a decimal or binary prefix (1k to 1E, 1Ki to 1Ei) for memory and ephemeral-storage`,
      ],
    ],
  ];
  for (const [env, want] of cases) {
    assert.deepEqual(errorsOf({ env: [env] }), want, JSON.stringify(env));
  }
});
