import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConfigMap, Container, Pod, Secret } from '../api/types.js';
import type { Service } from '../proxy/types.js';
import { ConfigError, expand, resolveEnv, type ConfigSource, type EnvContext } from './env.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

const configMaps: Record<string, ConfigMap> = {
  'default/cfg': {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'cfg', namespace: 'default' },
    data: { COLOR: 'blue', 'bad name': 'x', '1BAD': 'y', mode: 'fast' },
  },
};
const secrets: Record<string, Secret> = {
  'default/sec': {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'sec', namespace: 'default' },
    type: 'Opaque',
    data: { PASSWORD: b64('s3cr3t-value'), token: b64('tok') },
  },
  'default/nul': {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'nul', namespace: 'default' },
    data: { V: b64('s3cr3t\0part') },
  },
};
const source: ConfigSource = {
  configMap: (ns, name) => configMaps[`${ns}/${name}`],
  secret: (ns, name) => secrets[`${ns}/${name}`],
};

function pod(container: Partial<Container>): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'p',
      namespace: 'default',
      uid: 'u-1',
      labels: { app: 'web' },
      annotations: { 'a.io/x': 'ann' },
    },
    spec: {
      nodeName: 'n1',
      serviceAccountName: 'sa',
      containers: [
        {
          name: 'c',
          image: 'i',
          resources: { requests: { cpu: '250m', memory: '64Mi' }, limits: { cpu: '1500m' } },
          ...container,
        },
        { name: 'side', image: 'i', resources: { limits: { memory: '1Gi' } } },
      ],
    },
    status: { podIP: '10.0.0.9' },
  };
}

const ctx: EnvContext = {
  source,
  podIP: '10.1.1.1',
  hostIP: '192.0.2.1',
  allocatable: { cpu: '4', memory: '8Gi', 'ephemeral-storage': '100Gi' },
};

function envOf(container: Partial<Container>): Record<string, string> {
  const p = pod(container);
  const { env } = resolveEnv(p, p.spec.containers[0], ctx);
  return Object.fromEntries(env.map((e) => [e.name, e.value]));
}

describe('expand', () => {
  const vars: Record<string, string> = { A: 'a', B: 'b', EMPTY: '' };
  const cases: [string, string][] = [
    ['plain', 'plain'],
    ['$(A)', 'a'],
    ['x$(A)y$(B)z', 'xaybz'],
    ['$$(A)', '$(A)'],
    ['$$$(A)', '$a'],
    ['$(MISSING)', '$(MISSING)'],
    ['$(A', '$(A'],
    ['$A', '$A'],
    ['a$', 'a$'],
    ['$(EMPTY)x', 'x'],
    ['$()', '$()'],
    ['$$', '$'],
  ];
  for (const [input, want] of cases) {
    test(JSON.stringify(input), () =>
      assert.equal(
        expand(input, (n) => vars[n]),
        want,
      ),
    );
  }
});

describe('resolveEnv', () => {
  const cases: [string, Partial<Container>, Record<string, string>][] = [
    ['literal values', { env: [{ name: 'A', value: 'x' }] }, { A: 'x' }],
    [
      'expansion sees earlier vars only',
      {
        env: [
          { name: 'A', value: 'one' },
          { name: 'B', value: '$(A)-$(C)' },
          { name: 'C', value: 'three' },
        ],
      },
      { A: 'one', B: 'one-$(C)', C: 'three' },
    ],
    [
      'fieldRef paths',
      {
        env: [
          ['N', 'metadata.name'],
          ['NS', 'metadata.namespace'],
          ['UID', 'metadata.uid'],
          ['L', "metadata.labels['app']"],
          ['AN', "metadata.annotations['a.io/x']"],
          ['NODE', 'spec.nodeName'],
          ['SA', 'spec.serviceAccountName'],
          ['IP', 'status.podIP'],
          ['IPS', 'status.podIPs'],
          ['HOST', 'status.hostIP'],
          ['HOSTS', 'status.hostIPs'],
        ].map(([name, fieldPath]) => ({ name, valueFrom: { fieldRef: { fieldPath } } })),
      },
      {
        N: 'p',
        NS: 'default',
        UID: 'u-1',
        L: 'web',
        AN: 'ann',
        NODE: 'n1',
        SA: 'sa',
        IP: '10.1.1.1',
        IPS: '10.1.1.1',
        HOST: '192.0.2.1',
        HOSTS: '192.0.2.1',
      },
    ],
    [
      'resourceFieldRef with divisors and fallbacks',
      {
        env: [
          ['CPU_LIMIT', 'limits.cpu', undefined, undefined],
          ['CPU_REQ_M', 'requests.cpu', '1m', undefined],
          ['MEM_REQ_MI', 'requests.memory', '1Mi', undefined],
          ['MEM_LIMIT', 'limits.memory', '1Gi', undefined],
          ['SIDE_MEM', 'limits.memory', '1Mi', 'side'],
        ].map(([name, resource, divisor, containerName]) => ({
          name: name!,
          valueFrom: { resourceFieldRef: { resource, divisor, containerName } },
        })),
      },
      { CPU_LIMIT: '2', CPU_REQ_M: '250', MEM_REQ_MI: '64', MEM_LIMIT: '8', SIDE_MEM: '1024' },
    ],
    [
      'resourceFieldRef: a divisor of 0 (how typed clients send none) counts as 1',
      {
        env: [
          ['CPU_LIMIT', 'limits.cpu', '0'],
          ['MEM_REQ', 'requests.memory', '0'],
        ].map(([name, resource, divisor]) => ({
          name,
          valueFrom: { resourceFieldRef: { resource, divisor } },
        })),
      },
      { CPU_LIMIT: '2', MEM_REQ: String(64 * 1024 * 1024) },
    ],
    [
      'resourceFieldRef: no request is 0, not the node; storage falls back to the node',
      {
        resources: {},
        env: [
          ['CPU_REQ', 'requests.cpu', '1m'],
          ['MEM_REQ', 'requests.memory', '1'],
          ['MEM_LIMIT', 'limits.memory', '1Gi'],
          ['DISK_LIMIT', 'limits.ephemeral-storage', '1Gi'],
          ['DISK_REQ', 'requests.ephemeral-storage', '1'],
        ].map(([name, resource, divisor]) => ({
          name,
          valueFrom: { resourceFieldRef: { resource, divisor } },
        })),
      },
      { CPU_REQ: '0', MEM_REQ: '0', MEM_LIMIT: '8', DISK_LIMIT: '100', DISK_REQ: '0' },
    ],
    [
      'configMapKeyRef and secretKeyRef',
      {
        env: [
          { name: 'C', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'COLOR' } } },
          { name: 'P', valueFrom: { secretKeyRef: { name: 'sec', key: 'PASSWORD' } } },
          {
            name: 'OPT',
            valueFrom: { configMapKeyRef: { name: 'nope', key: 'k', optional: true } },
          },
          {
            name: 'OPTKEY',
            valueFrom: { secretKeyRef: { name: 'sec', key: 'nokey', optional: true } },
          },
        ],
      },
      { C: 'blue', P: 's3cr3t-value' },
    ],
    [
      'envFrom with prefix, env overrides it',
      {
        envFrom: [
          { configMapRef: { name: 'cfg' }, prefix: 'CFG_' },
          { secretRef: { name: 'sec' } },
          { configMapRef: { name: 'absent', optional: true } },
        ],
        env: [{ name: 'token', value: 'override $(CFG_COLOR)' }],
      },
      {
        CFG_COLOR: 'blue',
        CFG_mode: 'fast',
        CFG_1BAD: 'y',
        PASSWORD: 's3cr3t-value',
        token: 'override blue',
      },
    ],
  ];
  for (const [name, container, want] of cases) {
    test(name, () => assert.deepEqual(envOf(container), want));
  }

  test('invalid envFrom names are skipped with a message naming the keys only', () => {
    const p = pod({ envFrom: [{ configMapRef: { name: 'cfg' } }] });
    const { env, warnings } = resolveEnv(p, p.spec.containers[0], ctx);
    assert.deepEqual(env.map((e) => e.name).sort(), ['COLOR', 'mode']);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /Keys \[1BAD, bad name\] from the EnvFrom configMap default\/cfg/);
  });

  const failures: [string, Partial<Container>, RegExp][] = [
    [
      'missing configmap',
      { env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'x', key: 'k' } } }] },
      /^configmap "x" not found$/,
    ],
    [
      'missing secret key',
      { env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'sec', key: 'k' } } }] },
      /^couldn't find key k in Secret default\/sec$/,
    ],
    [
      'missing configmap key',
      { env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'k' } } }] },
      /^couldn't find key k in ConfigMap default\/cfg$/,
    ],
    ['missing envFrom secret', { envFrom: [{ secretRef: { name: 's' } }] }, /secret "s" not found/],
    [
      'a cpu divisor under 1m',
      {
        env: [
          { name: 'X', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1u' } } },
        ],
      },
      /^resourceFieldRef limits.cpu: invalid quantity or divisor$/,
    ],
    [
      'a Secret value with a NUL byte, named without its value',
      { env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'nul', key: 'V' } } }] },
      /^env X: its value holds a NUL byte, which no environment can$/,
    ],
    [
      'a name with a NUL byte',
      { env: [{ name: 'X\0', valueFrom: { secretKeyRef: { name: 'sec', key: 'PASSWORD' } } }] },
      /^env "X\\u0000": not a valid environment variable name$/,
    ],
    ['a name with =', { env: [{ name: 'A=B', value: 'x' }] }, /^env "A=B": not a valid/],
    [
      'a NUL byte through envFrom',
      { envFrom: [{ secretRef: { name: 'nul' } }] },
      /^env V: its value holds a NUL byte/,
    ],
    [
      'unsupported field path',
      { env: [{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'spec.hostname' } } }] },
      /unsupported fieldRef/,
    ],
  ];
  for (const [name, container, want] of failures) {
    test(`fails: ${name}`, () => {
      const p = pod(container);
      assert.throws(
        () => resolveEnv(p, p.spec.containers[0], ctx),
        (err: Error) => err instanceof ConfigError && want.test(err.message),
      );
    });
  }
});

describe('Service variables', () => {
  const svc = (ns: string, name: string, spec: Service['spec']): Service => ({
    metadata: { namespace: ns, name },
    spec,
  });
  const services: Service[] = [
    svc('default', 'kubernetes', {
      clusterIP: '10.43.0.1',
      ports: [{ name: 'https', port: 443, protocol: 'TCP' }],
    }),
    svc('default', 'my-db', {
      clusterIP: '10.43.7.9',
      ports: [
        { port: 5432, name: 'pg' },
        { port: 53, name: 'dns-udp', protocol: 'UDP' },
      ],
    }),
    svc('default', 'headless', { clusterIP: 'None', ports: [{ port: 80 }] }),
    svc('default', 'outside', { type: 'ExternalName', externalName: 'example.test' }),
    svc('other', 'elsewhere', { clusterIP: '10.43.1.1', ports: [{ port: 80 }] }),
  ];
  const ctx: EnvContext = { source, services: () => services };
  const env = (p: Pod) =>
    new Map(resolveEnv(p, p.spec.containers[0], ctx).env.map((e) => [e.name, e.value]));

  test("the kubernetes Service and the namespace's Services, with Docker link names", () => {
    const vars = env(pod({}));
    assert.equal(vars.get('KUBERNETES_SERVICE_HOST'), '10.43.0.1');
    assert.equal(vars.get('KUBERNETES_SERVICE_PORT'), '443');
    assert.equal(vars.get('KUBERNETES_SERVICE_PORT_HTTPS'), '443');
    assert.equal(vars.get('KUBERNETES_PORT'), 'tcp://10.43.0.1:443');
    assert.equal(vars.get('KUBERNETES_PORT_443_TCP_ADDR'), '10.43.0.1');
    assert.equal(vars.get('MY_DB_SERVICE_HOST'), '10.43.7.9');
    assert.equal(vars.get('MY_DB_SERVICE_PORT'), '5432');
    assert.equal(vars.get('MY_DB_SERVICE_PORT_PG'), '5432');
    assert.equal(vars.get('MY_DB_SERVICE_PORT_DNS_UDP'), '53');
    assert.equal(vars.get('MY_DB_PORT'), 'tcp://10.43.7.9:5432');
    assert.equal(vars.get('MY_DB_PORT_5432_TCP'), 'tcp://10.43.7.9:5432');
    assert.equal(vars.get('MY_DB_PORT_5432_TCP_PROTO'), 'tcp');
    assert.equal(vars.get('MY_DB_PORT_5432_TCP_PORT'), '5432');
    assert.equal(vars.get('MY_DB_PORT_53_UDP'), 'udp://10.43.7.9:53');
    assert.equal(vars.get('MY_DB_PORT_53_UDP_ADDR'), '10.43.7.9');
    const names = [...vars.keys()].join(' ');
    assert.doesNotMatch(names, /HEADLESS|OUTSIDE|ELSEWHERE/);
  });

  test("a pod elsewhere gets its own namespace's and the kubernetes Service only", () => {
    const p = pod({});
    p.metadata.namespace = 'other';
    const vars = env(p);
    assert.equal(vars.get('ELSEWHERE_SERVICE_HOST'), '10.43.1.1');
    assert.equal(vars.get('KUBERNETES_SERVICE_HOST'), '10.43.0.1');
    assert.equal(vars.get('MY_DB_SERVICE_HOST'), undefined);
  });

  test('enableServiceLinks false keeps only the kubernetes Service', () => {
    const p = pod({});
    p.spec.enableServiceLinks = false;
    const vars = env(p);
    assert.equal(vars.get('KUBERNETES_SERVICE_HOST'), '10.43.0.1');
    assert.equal(vars.get('MY_DB_SERVICE_HOST'), undefined);
  });

  test("the Services are asked for by the pod's namespace", () => {
    const asked: string[] = [];
    const p = pod({});
    p.metadata.namespace = 'other';
    const byNamespace: EnvContext = {
      source,
      services: (namespace) => (asked.push(namespace), services),
    };
    resolveEnv(p, p.spec.containers[0], byNamespace);
    assert.deepEqual(asked, ['other']);
  });

  test("the container's own variables win; its values may name Service variables", () => {
    const vars = env(
      pod({
        env: [
          { name: 'MY_DB_SERVICE_PORT', value: '1' },
          { name: 'DSN', value: 'postgres://$(MY_DB_SERVICE_HOST):$(MY_DB_SERVICE_PORT_PG)/x' },
        ],
      }),
    );
    assert.equal(vars.get('MY_DB_SERVICE_PORT'), '1');
    assert.equal(vars.get('DSN'), 'postgres://10.43.7.9:5432/x');
  });

  test('without a Service source there are none', () => {
    const p = pod({});
    const vars = resolveEnv(p, p.spec.containers[0], { source }).env;
    assert.equal(
      vars.some((e) => e.name.startsWith('KUBERNETES_')),
      false,
    );
  });
});
