import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConfigMap, Pod, Secret } from '../api/types.js';
import { hideValues } from '../runtime/runtime.js';
import { ConfigError, referencedSecretValues, type EnvContext } from './env.js';
import { formatMap, goQuote, showsPodMetadata, volumePayload } from './volume-payloads.js';

describe('goQuote', () => {
  // What Go's strconv.Quote (and so kubelet's %q) writes for each input.
  const cases: [string, string, string][] = [
    ['plain', 'us-east', '"us-east"'],
    ['empty', '', '""'],
    ['quote and backslash', 'a"b\\c', '"a\\"b\\\\c"'],
    ['C escapes', '\x07\b\f\n\r\t\v', '"\\a\\b\\f\\n\\r\\t\\v"'],
    ['other ASCII controls', '\x00\x1b\x7f', '"\\x00\\x1b\\x7f"'],
    ['printable non-ASCII', 'é中😀', '"é中😀"'],
    ['C1 control', '\u0085', '"\\u0085"'],
    ['no-break space, not printable to Go', '\u00a0', '"\\u00a0"'],
    ['format characters', '\u200b\u{e0001}', '"\\u200b\\U000e0001"'],
    ['private use', '\ue000', '"\\ue000"'],
    ['lone surrogate', 'x\ud800y', '"x\ufffdy"'],
  ];
  for (const [name, input, want] of cases) {
    test(name, () => assert.equal(goQuote(input), want));
  }
});

test('formatMap writes sorted key="value" lines, no newline after the last', () => {
  assert.equal(formatMap(undefined), '');
  assert.equal(
    formatMap({ zone: 'us-est-coast', cluster: 'test-cluster1', 'b/x': 'multi\nline' }),
    'b/x="multi\\nline"\ncluster="test-cluster1"\nzone="us-est-coast"',
  );
  // Byte order, as Go sorts: upper case before lower case.
  assert.equal(formatMap({ b: '1', B: '2', a: '3' }), 'B="2"\na="3"\nb="1"');
});

describe('volumePayload', () => {
  const cm: ConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'cfg', namespace: 'ns' },
    data: { 'app.conf': 'one', shared: 'from-cm' },
  };
  const secret: Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'sec', namespace: 'ns' },
    data: { password: Buffer.from('pw').toString('base64'), shared: 'ZnJvbS1zZWM=' },
  };
  const ctx: EnvContext = {
    source: {
      configMap: (_ns, name) => (name === 'cfg' ? cm : undefined),
      secret: (_ns, name) => (name === 'sec' ? secret : undefined),
    },
    allocatable: { cpu: '4', memory: '8Gi' },
  };
  const pod: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'web-1',
      namespace: 'ns',
      uid: 'u-1',
      labels: { app: 'web', tier: 'front' },
      annotations: { note: 'say "hi"' },
    },
    spec: {
      containers: [
        { name: 'main', image: 'i', resources: { limits: { cpu: '500m', memory: '64Mi' } } },
        { name: 'side', image: 'i', resources: { requests: { cpu: '250m' } } },
      ],
    },
  };
  /** The payload of one volume as `path mode text` lines. */
  function files(kind: string, src: object): string[] {
    const got = volumePayload(pod, { name: 'v', [kind]: src }, kind, ctx);
    return [...got].map(([p, f]) => `${p} ${f.mode.toString(8)} ${f.data.toString('utf8')}`);
  }
  const field = (path: string, fieldPath: string, mode?: number) => ({
    path,
    fieldRef: { fieldPath },
    mode,
  });
  const resource = (path: string, containerName: string, res: string, divisor?: string) => ({
    path,
    resourceFieldRef: { containerName, resource: res, divisor },
  });

  test('downwardAPI: fields, maps, keyed fields, resources, modes', () => {
    const items = [
      field('name', 'metadata.name'),
      field('ns', 'metadata.namespace'),
      field('uid', 'metadata.uid', 0o400),
      field('labels', 'metadata.labels'),
      field('meta/annotations', 'metadata.annotations'),
      field('app', "metadata.labels['app']"),
      field('none', "metadata.annotations['absent']"),
      resource('cpu_limit', 'main', 'limits.cpu', '1m'),
      resource('mem_limit', 'main', 'limits.memory', '1Mi'),
      resource('side_cpu_limit', 'side', 'limits.cpu'),
      resource('side_cpu_request', 'side', 'requests.cpu', '1m'),
    ];
    assert.deepEqual(files('downwardAPI', { items, defaultMode: 0o600 }), [
      'name 600 web-1',
      'ns 600 ns',
      'uid 400 u-1',
      'labels 600 app="web"\ntier="front"',
      'meta/annotations 600 note="say \\"hi\\""',
      'app 600 web',
      'none 600 ',
      'cpu_limit 600 500',
      'mem_limit 600 64',
      // No limit: the node's allocatable, as for env.
      'side_cpu_limit 600 4',
      'side_cpu_request 600 250',
    ]);
  });

  test('projected: sources in order into one set of files, the later over the earlier', () => {
    const sources = [
      { configMap: { name: 'cfg' } },
      { secret: { name: 'sec', items: [{ key: 'password', path: 'creds/pw', mode: 0o400 }] } },
      { secret: { name: 'sec', items: [{ key: 'shared', path: 'shared' }] } },
      { downwardAPI: { items: [field('labels', 'metadata.labels')] } },
      { configMap: { name: 'missing', optional: true } },
      {},
    ];
    assert.deepEqual(files('projected', { sources, defaultMode: 0o640 }), [
      'app.conf 640 one',
      'shared 640 from-sec',
      'creds/pw 400 pw',
      'labels 640 app="web"\ntier="front"',
    ]);
  });

  const refused: [string, string, object, RegExp][] = [
    [
      'a serviceAccountToken source',
      'projected',
      { sources: [{ configMap: { name: 'cfg' } }, { serviceAccountToken: { path: 'token' } }] },
      /^volume "v": sources\[1\]: serviceAccountToken is not supported: this cluster has no ServiceAccounts to issue tokens for$/,
    ],
    [
      'a clusterTrustBundle source',
      'projected',
      { sources: [{ clusterTrustBundle: { name: 'b', path: 'ca.pem' } }] },
      /^volume "v": sources\[0\]: clusterTrustBundle is not supported: this cluster serves no ClusterTrustBundles$/,
    ],
    [
      'an unknown source',
      'projected',
      { sources: [{ podCertificate: { signerName: 'x' } }] },
      /^volume "v": sources\[0\]: podCertificate is not supported: the agent does not know this source$/,
    ],
    [
      'a missing secret in a projection',
      'projected',
      { sources: [{ secret: { name: 'nope' } }] },
      /^volume "v": secret "nope" not found$/,
    ],
    [
      'a missing key in a projection',
      'projected',
      { sources: [{ configMap: { name: 'cfg', items: [{ key: 'zz', path: 'z' }] } }] },
      /^volume "v": configmap references non-existent key: zz$/,
    ],
    [
      'a field volumes cannot show',
      'downwardAPI',
      { items: [field('ip', 'status.podIP')] },
      /^volume "v": item ip: fieldPath status\.podIP cannot be shown in a volume$/,
    ],
    [
      'a resource without its container',
      'downwardAPI',
      { items: [{ path: 'cpu', resourceFieldRef: { resource: 'limits.cpu' } }] },
      /^volume "v": item cpu: resourceFieldRef needs a containerName$/,
    ],
    [
      'a resource of a container that is not there',
      'downwardAPI',
      { items: [resource('cpu', 'nope', 'limits.cpu')] },
      /^volume "v": item cpu: resourceFieldRef: no container "nope"$/,
    ],
    [
      'an item with neither reference',
      'downwardAPI',
      { items: [{ path: 'x' }] },
      /^volume "v": item x: names neither a fieldRef nor a resourceFieldRef$/,
    ],
  ];
  for (const [name, kind, src, want] of refused) {
    test(`refuses ${name}`, () => {
      assert.throws(
        () => files(kind, src),
        (err: Error) => err instanceof ConfigError && want.test(err.message),
      );
    });
  }

  test("a projected Secret's values are hidden in messages about the pod", () => {
    const p: Pod = {
      ...pod,
      spec: {
        ...pod.spec,
        volumes: [{ name: 'v', projected: { sources: [{ secret: { name: 'sec' } }] } }],
      },
    };
    const values = referencedSecretValues(p, ctx.source);
    assert.equal(hideValues('exec "from-sec" failed', values), 'exec "[hidden]" failed');
  });

  test('showsPodMetadata: downwardAPI volumes and projections of it', () => {
    const cases: [object, boolean][] = [
      [{ name: 'v', downwardAPI: { items: [] } }, true],
      [
        { name: 'v', projected: { sources: [{ secret: { name: 's' } }, { downwardAPI: {} }] } },
        true,
      ],
      [{ name: 'v', projected: { sources: [{ configMap: { name: 'c' } }] } }, false],
      [{ name: 'v', configMap: { name: 'c' } }, false],
    ];
    for (const [v, want] of cases) assert.equal(showsPodMetadata(v), want, JSON.stringify(v));
  });
});
