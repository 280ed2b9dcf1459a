import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatFieldError } from './errors.js';
import type { PodSpec } from './types.js';
import { validatePodSpec } from './validation.js';

test('env names and envFrom prefixes: printable ASCII without "="', () => {
  const detail =
    "a valid environment variable name must consist only of printable ASCII characters other than '='";
  const cases: { env?: unknown[]; envFrom?: unknown[]; errors: string[] }[] = [
    {
      env: [
        { name: 'PATH', value: '/bin' },
        { name: 'my.var-1 x', value: '' },
      ],
      errors: [],
    },
    { envFrom: [{ prefix: 'APP_', configMapRef: { name: 'c' } }, { prefix: '' }], errors: [] },
    {
      env: [{ name: 'A=B', value: 'x' }],
      errors: [`spec.containers[0].env[0].name: Invalid value: "A=B": ${detail}`],
    },
    {
      env: [{ name: 'TAB\there', value: 'x' }],
      errors: [`spec.containers[0].env[0].name: Invalid value: "TAB\\there": ${detail}`],
    },
    {
      env: [{ name: 'NUL\u0000', value: 'x' }],
      errors: [`spec.containers[0].env[0].name: Invalid value: "NUL\\u0000": ${detail}`],
    },
    {
      envFrom: [{ prefix: 'é_', secretRef: { name: 's' } }],
      errors: [`spec.containers[0].envFrom[0].prefix: Invalid value: "é_": ${detail}`],
    },
  ];
  for (const c of cases) {
    const spec = { containers: [{ name: 'c', image: 'i', env: c.env, envFrom: c.envFrom }] };
    const got = validatePodSpec(spec as PodSpec, 'spec').map(formatFieldError);
    assert.deepEqual(got, c.errors, JSON.stringify(c));
  }
});

test('container ports: a hostPort of 0 to 65535 and a protocol of TCP, UDP or SCTP', () => {
  const cases: { port: Record<string, unknown>; errors: string[] }[] = [
    { port: { containerPort: 80, hostPort: 8080, protocol: 'UDP' }, errors: [] },
    { port: { containerPort: 80, hostPort: 0, protocol: 'SCTP' }, errors: [] },
    {
      port: { containerPort: 80, hostPort: 70000 },
      errors: [
        'spec.containers[0].ports[0].hostPort: Invalid value: 70000: must be between 1 and 65535, inclusive',
      ],
    },
    {
      port: { containerPort: 80, hostPort: -1 },
      errors: [
        'spec.containers[0].ports[0].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive',
      ],
    },
    {
      port: { containerPort: 80, protocol: 'ICMP' },
      errors: [
        'spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
      ],
    },
  ];
  for (const c of cases) {
    const spec = { containers: [{ name: 'c', image: 'i', ports: [c.port] }] };
    const got = validatePodSpec(spec as PodSpec, 'spec').map(formatFieldError);
    assert.deepEqual(got, c.errors, JSON.stringify(c.port));
  }
});

test('hostname, subdomain and hostAliases are checked as Kubernetes checks them', () => {
  const errorsOf = (fields: Record<string, unknown>) =>
    validatePodSpec({ containers: [{ name: 'c', image: 'i' }], ...fields } as PodSpec, 'spec').map(
      formatFieldError,
    );
  assert.deepEqual(
    errorsOf({
      hostname: 'web-0',
      subdomain: 'web',
      hostAliases: [{ ip: '10.1.2.3', hostnames: ['db', 'db.local'] }, { ip: 'fe80::1' }],
    }),
    [],
  );
  const got = errorsOf({
    hostname: 'Web_0',
    subdomain: 'a.b',
    hostAliases: [{ ip: '10.1.2', hostnames: ['ok', 'Not_Ok'] }, { hostnames: ['x'] }],
  });
  assert.equal(got.length, 5, got.join('\n'));
  assert.match(got[0], /^spec\.hostname: Invalid value: "Web_0": a lowercase RFC 1123 label/);
  assert.match(got[1], /^spec\.subdomain: Invalid value: "a\.b"/);
  assert.match(
    got[2],
    /^spec\.hostAliases\[0\]\.ip: Invalid value: "10\.1\.2": must be a valid IP/,
  );
  assert.match(got[3], /^spec\.hostAliases\[0\]\.hostnames\[1\]: Invalid value: "Not_Ok"/);
  assert.match(got[4], /^spec\.hostAliases\[1\]\.ip: Required value/);
});
