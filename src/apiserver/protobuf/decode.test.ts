import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../api/errors.js';
import { decodeKubernetesProtobuf } from './decode.js';
import { KUBECTL_BODIES } from './kubectl-bodies.test-data.js';

/** A minimal protobuf writer for hand-made messages. */
function varint(v: bigint | number): number[] {
  let n = BigInt.asUintN(64, BigInt(v));
  const out: number[] = [];
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return out;
}
const vfield = (num: number, v: bigint | number) => [...varint(num << 3), ...varint(v)];
function lfield(num: number, payload: number[] | string): number[] {
  const b = typeof payload === 'string' ? [...Buffer.from(payload)] : payload;
  return [...varint((num << 3) | 2), ...varint(b.length), ...b];
}

/** A whole body: the magic, then runtime.Unknown around `raw`. */
function body(apiVersion: string, kind: string, raw: number[]): Buffer {
  const typeMeta = [...lfield(1, apiVersion), ...lfield(2, kind)];
  const unknown = [...lfield(1, typeMeta), ...lfield(2, raw), ...lfield(3, ''), ...lfield(4, '')];
  return Buffer.from([0x6b, 0x38, 0x73, 0x00, ...unknown]);
}

const meta = (name: string) => lfield(1, [...lfield(1, name), ...lfield(8, [])]);

function decodeError(buf: Uint8Array, maxDepth = 100): ApiError {
  try {
    decodeKubernetesProtobuf(buf, maxDepth);
  } catch (err) {
    assert.ok(err instanceof ApiError, `not an ApiError: ${String(err)}`);
    return err;
  }
  assert.fail('decoded without error');
}

test('protobuf: every body kubectl sent decodes to the JSON kubectl prints for it', () => {
  assert.ok(KUBECTL_BODIES.length >= 12);
  for (const c of KUBECTL_BODIES) {
    const got = decodeKubernetesProtobuf(Buffer.from(c.body, 'base64'), 100);
    assert.deepEqual(got, c.json, c.command);
  }
});

test('protobuf: scalars, specials, maps, repeated fields and pointers', () => {
  const container = [
    ...lfield(1, 'c'),
    ...lfield(2, 'img'),
    ...lfield(3, 'a'),
    ...lfield(3, 'b'),
    ...lfield(6, [...vfield(2, 0), ...vfield(3, 8080), ...lfield(4, 'UDP')]),
    ...lfield(8, [...lfield(1, [...lfield(1, 'cpu'), ...lfield(2, lfield(1, '250m'))])]),
    ...lfield(10, [
      ...lfield(
        1,
        lfield(2, [...lfield(1, '/h'), ...lfield(2, [...vfield(1, 1), ...lfield(3, 'http')])]),
      ),
      ...vfield(3, 0),
    ]),
    ...lfield(24, 'Always'),
  ];
  const podSpec = [
    ...lfield(2, container),
    ...vfield(4, -5n), // int64 pointer, negative
    ...vfield(11, 0), // bool false, omitempty
    ...lfield(14, lfield(4, [...varint(10), ...varint(20)])), // packed supplementalGroups
    ...vfield(21, 0), // pointer false is kept
  ];
  const deployment = [
    ...lfield(1, [...lfield(1, 'd'), ...lfield(8, [...vfield(1, 1700000000), ...vfield(2, 5)])]),
    ...lfield(2, [
      ...vfield(1, 0), // replicas: pointer zero
      ...lfield(3, [...lfield(1, []), ...lfield(2, podSpec)]),
      ...lfield(
        4,
        lfield(2, [
          ...lfield(1, [...vfield(1, 1), ...lfield(3, '30%')]),
          ...lfield(2, vfield(2, 2)),
        ]),
      ),
    ]),
  ];
  const got = decodeKubernetesProtobuf(body('apps/v1', 'Deployment', deployment), 100);
  assert.deepEqual(got, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'd', creationTimestamp: '2023-11-14T22:13:20Z' },
    spec: {
      replicas: 0,
      template: {
        metadata: {},
        spec: {
          containers: [
            {
              name: 'c',
              image: 'img',
              command: ['a', 'b'],
              ports: [{ containerPort: 8080, protocol: 'UDP' }],
              resources: { limits: { cpu: '250m' } },
              livenessProbe: { httpGet: { path: '/h', port: 'http' } },
              restartPolicy: 'Always',
            },
          ],
          terminationGracePeriodSeconds: -5,
          securityContext: { supplementalGroups: [10, 20] },
          automountServiceAccountToken: false,
        },
      },
      strategy: { rollingUpdate: { maxUnavailable: '30%', maxSurge: 2 } },
    },
  });
});

test('protobuf: a StatefulSet with a claim template', () => {
  const claim = [
    ...lfield(1, lfield(1, 'data')),
    ...lfield(2, [
      ...lfield(1, 'ReadWriteOnce'),
      ...lfield(2, lfield(2, [...lfield(1, 'storage'), ...lfield(2, lfield(1, '1Gi'))])),
      ...lfield(3, ''),
      ...lfield(5, 'local'),
    ]),
    ...lfield(3, lfield(1, '')),
  ];
  const sts = [
    ...meta('db'),
    ...lfield(2, [
      ...vfield(1, 2),
      ...lfield(4, claim),
      ...lfield(5, 'db'),
      ...lfield(7, [...lfield(1, 'RollingUpdate'), ...lfield(2, vfield(1, 0))]),
    ]),
  ];
  const got = decodeKubernetesProtobuf(body('apps/v1', 'StatefulSet', sts), 100);
  assert.deepEqual(got.spec, {
    replicas: 2,
    volumeClaimTemplates: [
      {
        metadata: { name: 'data' },
        spec: {
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: '1Gi' } },
          storageClassName: 'local',
        },
        status: {},
      },
    ],
    serviceName: 'db',
    updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
  });
});

test('protobuf: Secret data is base64, ConfigMap binaryData too', () => {
  const entry = (k: string, v: number[]) => [...lfield(1, k), ...lfield(2, v)];
  const secret = [...meta('s'), ...lfield(2, entry('k', [0, 255, 1])), ...lfield(3, 'Opaque')];
  const got = decodeKubernetesProtobuf(body('v1', 'Secret', secret), 100);
  assert.deepEqual(got.data, { k: 'AP8B' });
  assert.equal(got.type, 'Opaque');
  const cm = [
    ...meta('c'),
    ...lfield(3, entry('bin', [1, 2])),
    ...lfield(2, entry('t', [...Buffer.from('x')])),
  ];
  const got2 = decodeKubernetesProtobuf(body('v1', 'ConfigMap', cm), 100);
  assert.deepEqual(got2.binaryData, { bin: 'AQI=' });
  assert.deepEqual(got2.data, { t: 'x' });

  const proto = [...meta('p'), ...lfield(2, entry('__proto__', [...Buffer.from('{"a":1}')]))];
  const got3 = decodeKubernetesProtobuf(body('v1', 'ConfigMap', proto), 100);
  assert.deepEqual(got3.data, JSON.parse('{"__proto__":"{\\"a\\":1}"}'));
  assert.equal(Object.getPrototypeOf(got3.data), Object.prototype);
});

test('protobuf: times are RFC 3339 seconds in UTC; the zero time is null either way', () => {
  const ns = (time: number[]) => [...lfield(1, [...lfield(1, 'n'), ...lfield(8, time)])];
  const cases: { time: number[]; want: string | null }[] = [
    { time: [], want: null },
    { time: vfield(1, -62135596800), want: null },
    { time: [...vfield(1, 0), ...vfield(2, 999)], want: '1970-01-01T00:00:00Z' },
    { time: vfield(1, -1), want: '1969-12-31T23:59:59Z' },
    { time: vfield(1, 253402300799), want: '9999-12-31T23:59:59Z' },
  ];
  for (const c of cases) {
    const got = decodeKubernetesProtobuf(body('v1', 'Namespace', ns(c.time)), 100);
    assert.equal((got.metadata as { creationTimestamp: unknown }).creationTimestamp, c.want);
  }
});

test('protobuf: unknown fields are dropped only when they hold their zero value', () => {
  const zeroUnknowns = [
    ...meta('n'),
    ...vfield(90, 0),
    ...lfield(91, ''),
    ...lfield(2, vfield(7, 0)),
  ];
  const ok = decodeKubernetesProtobuf(body('v1', 'Namespace', zeroUnknowns), 100);
  assert.deepEqual(ok, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'n', creationTimestamp: null },
    spec: {},
  });

  const cases: { name: string; raw: number[]; err: RegExp }[] = [
    {
      name: 'top level',
      raw: [...meta('n'), ...vfield(90, 1)],
      err: /field 90 of message Namespace/,
    },
    {
      name: 'nested',
      raw: [...meta('n'), ...lfield(2, lfield(7, 'x'))],
      err: /field 7 of message NamespaceSpec \(at spec\)/,
    },
    {
      name: 'volume source not decoded',
      raw: [
        ...meta('p'),
        ...lfield(2, lfield(1, [...lfield(1, 'v'), ...lfield(2, lfield(3, lfield(1, 'disk')))])),
      ],
      err: /field 3 of message VolumeSource \(at spec.volumes\[0\]\)/,
    },
  ];
  for (const c of cases) {
    const kind = c.name === 'volume source not decoded' ? 'Pod' : 'Namespace';
    const err = decodeError(body('v1', kind, c.raw));
    assert.equal(err.code, 415, c.name);
    assert.match(err.message, c.err, c.name);
    assert.match(err.message, /send the object as JSON/, c.name);
  }
});

test('protobuf: DeleteOptions, as kubectl drain sends them, of any group version', () => {
  // Captured with `kubectl drain -v=9` (1.32), without and with --grace-period=3.
  const drain = 'azhzAAoTCgJ2MRINRGVsZXRlT3B0aW9ucxIAGgAiAA==';
  const drainGrace = 'azhzAAoTCgJ2MRINRGVsZXRlT3B0aW9ucxICCAMaACIA';
  const decode = (buf: Uint8Array) => decodeKubernetesProtobuf(buf, 100);
  assert.deepEqual(decode(Buffer.from(drain, 'base64')), {
    apiVersion: 'v1',
    kind: 'DeleteOptions',
  });
  assert.deepEqual(decode(Buffer.from(drainGrace, 'base64')), {
    apiVersion: 'v1',
    kind: 'DeleteOptions',
    gracePeriodSeconds: 3,
  });
  const full = [
    ...vfield(1, 0), // a grace period of 0 (force) is kept
    ...lfield(2, [...lfield(1, 'u-1'), ...lfield(2, '42')]),
    ...lfield(4, 'Foreground'),
    ...lfield(5, 'All'),
  ];
  assert.deepEqual(decode(body('apps/v1', 'DeleteOptions', full)), {
    apiVersion: 'apps/v1',
    kind: 'DeleteOptions',
    gracePeriodSeconds: 0,
    preconditions: { uid: 'u-1', resourceVersion: '42' },
    propagationPolicy: 'Foreground',
    dryRun: ['All'],
  });
});

test('protobuf: kinds without a table and foreign encodings are 415', () => {
  const cases: { buf: Buffer; err: RegExp }[] = [
    { buf: body('v1', 'PersistentVolume', meta('x')), err: /kind "PersistentVolume"/ },
    { buf: body('apps/v2', 'Deployment', meta('x')), err: /apiVersion "apps\/v2"/ },
    {
      buf: Buffer.from([
        0x6b,
        0x38,
        0x73,
        0x00,
        ...lfield(1, lfield(2, 'Namespace')),
        ...lfield(3, 'gzip'),
      ]),
      err: /content encoding "gzip"/,
    },
  ];
  for (const c of cases) {
    const err = decodeError(c.buf);
    assert.equal(err.code, 415);
    assert.match(err.message, c.err);
  }
});

test('protobuf: malformed bodies are 400 with the cause', () => {
  const good = body('v1', 'Namespace', meta('n'));
  const cases: { name: string; buf: Buffer; err: RegExp; maxDepth?: number }[] = [
    { name: 'no magic', buf: Buffer.from('{"kind":"Namespace"}'), err: /k8s\\0/ },
    {
      name: 'truncated',
      buf: good.subarray(0, good.length - 3),
      err: /runs past the end|truncated/,
    },
    {
      name: 'length past the end',
      buf: Buffer.from([0x6b, 0x38, 0x73, 0x00, 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]),
      err: /runs past the end/,
    },
    {
      name: 'wrong wire type',
      buf: body('v1', 'Namespace', [...meta('n'), ...vfield(2, 5)]),
      err: /field spec of Namespace has wire type 0, expected 2/,
    },
    {
      name: 'time out of range',
      buf: body('v1', 'Namespace', lfield(1, lfield(8, vfield(1, 1n << 60n)))),
      err: /outside the years/,
    },
    {
      name: 'IntOrString of type 2',
      buf: body('v1', 'Service', [
        ...meta('s'),
        ...lfield(2, lfield(1, [...vfield(3, 80), ...lfield(4, vfield(1, 2))])),
      ]),
      err: /IntOrString type 2/,
    },
    { name: 'too deep', buf: good, err: /nested deeper than 1 levels/, maxDepth: 1 },
  ];
  for (const c of cases) {
    const err = decodeError(c.buf, c.maxDepth);
    assert.equal(err.code, 400, c.name);
    assert.match(err.message, c.err, c.name);
  }
});

test('protobuf: every prefix and many corruptions of real bodies end in a value or a 4xx', () => {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed;
  };
  for (const c of KUBECTL_BODIES) {
    const buf = Buffer.from(c.body, 'base64');
    const variants: Buffer[] = [];
    for (let n = 0; n < buf.length; n++) variants.push(buf.subarray(0, n));
    for (let i = 0; i < 200; i++) {
      const copy = Buffer.from(buf);
      copy[4 + (random() % (copy.length - 4))] = random() % 256;
      variants.push(copy);
    }
    for (const v of variants) {
      try {
        decodeKubernetesProtobuf(v, 100);
      } catch (err) {
        assert.ok(err instanceof ApiError, `${c.command}: ${String(err)}`);
        assert.ok(err.code === 400 || err.code === 415, `${c.command}: ${err.code}`);
      }
    }
  }
});
