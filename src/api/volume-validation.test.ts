import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Container } from './types.js';
import { validateVolumeMounts, validateVolumes } from './volume-validation.js';

/** The errors of one volume, as `field type detail` lines. */
function volumeErrors(v: object): string[] {
  return validateVolumes([v], 'v').errs.map((e) => `${e.field} ${e.type} ${e.detail ?? ''}`);
}

function mountErrors(m: object): string[] {
  const c = { name: 'c', image: 'i', volumeMounts: [{ name: 'v', mountPath: '/m', ...m }] };
  return validateVolumeMounts(c as Container, 'm', new Set(['v'])).map(
    (e) => `${e.field} ${e.type} ${e.detail ?? ''}`,
  );
}

describe('validateVolumes', () => {
  const cm = (items: object[]) => ({ name: 'a', configMap: { name: 'x', items } });
  const cases: [string, object, string[]][] = [
    ['items path d/..e', cm([{ key: 'k', path: 'd/..e' }]), []],
    [
      'items path ..data',
      cm([{ key: 'k', path: '..data' }]),
      ["v[0].configMap.items[0].path Invalid must not start with '..'"],
    ],
    [
      'items path ..x/y',
      cm([{ key: 'k', path: '..x/y' }]),
      ["v[0].configMap.items[0].path Invalid must not start with '..'"],
    ],
    [
      'items path ..',
      cm([{ key: 'k', path: '..' }]),
      ["v[0].configMap.items[0].path Invalid must not contain '..'"],
    ],
    ['emptyDir sizeLimit 0', { name: 'a', emptyDir: { sizeLimit: '0' } }, []],
    [
      'emptyDir sizeLimit negative',
      { name: 'a', emptyDir: { medium: 'Memory', sizeLimit: '-1Mi' } },
      ['v[0].emptyDir.sizeLimit Invalid must be greater than or equal to 0'],
    ],
    ['hostPath type File', { name: 'a', hostPath: { path: '/x', type: 'File' } }, []],
    [
      'hostPath type unknown',
      { name: 'a', hostPath: { path: '/x', type: 'Anything' } },
      ['v[0].hostPath.type Unsupported '],
    ],
  ];
  for (const [name, v, want] of cases) {
    test(name, () => assert.deepEqual(volumeErrors(v), want));
  }
});

describe('validateVolumes: downwardAPI', () => {
  const dapi = (...items: object[]) => ({ name: 'a', downwardAPI: { items } });
  const field = (path: string, fieldPath: string) => ({ path, fieldRef: { fieldPath } });
  const res = (path: string, ref: object) => ({ path, resourceFieldRef: ref });
  const cases: [string, object, string[]][] = [
    [
      'every field a volume shows',
      dapi(
        field('n', 'metadata.name'),
        field('ns', 'metadata.namespace'),
        field('u', 'metadata.uid'),
        field('l', 'metadata.labels'),
        field('an', 'metadata.annotations'),
        field('k', "metadata.labels['app']"),
        field('k2', "metadata.annotations['example.com/x']"),
        res('c', { containerName: 'c', resource: 'limits.cpu', divisor: '1m' }),
        res('m', { containerName: 'c', resource: 'requests.memory', divisor: '1Mi' }),
        res('e', { containerName: 'c', resource: 'limits.ephemeral-storage' }),
      ),
      [],
    ],
    [
      'a field only env shows',
      dapi(field('ip', 'status.podIP')),
      [
        'v[0].downwardAPI.items[0].fieldRef.fieldPath Unsupported supported values: ' +
          '"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", ' +
          '"metadata.uid"',
      ],
    ],
    [
      'paths that leave the volume or take its names',
      dapi(
        field('/abs', 'metadata.name'),
        field('a/../..', 'metadata.name'),
        field('..data', 'metadata.name'),
      ),
      [
        'v[0].downwardAPI.items[0].path Invalid must be a relative path',
        "v[0].downwardAPI.items[1].path Invalid must not contain '..'",
        "v[0].downwardAPI.items[2].path Invalid must not start with '..'",
      ],
    ],
    [
      'no path, bad mode',
      {
        name: 'a',
        downwardAPI: {
          defaultMode: 0o1777,
          items: [{ fieldRef: { fieldPath: 'metadata.name' }, mode: -1 }],
        },
      },
      [
        'v[0].downwardAPI.defaultMode Invalid must be a number between 0 and 0777 (octal), both inclusive',
        'v[0].downwardAPI.items[0].path Required ',
        'v[0].downwardAPI.items[0].mode Invalid must be a number between 0 and 0777 (octal), both inclusive',
      ],
    ],
    [
      'a label key that is not one',
      dapi(
        { path: 'a', fieldRef: { fieldPath: "metadata.labels['ok.io/Key']" } },
        { path: 'b', fieldRef: { fieldPath: "metadata.annotations['no way']" } },
      ),
      [
        "v[0].downwardAPI.items[1].fieldRef.fieldPath Invalid name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)",
      ],
    ],
    [
      'both references, or neither',
      dapi(
        {
          path: 'x',
          fieldRef: { fieldPath: 'metadata.name' },
          resourceFieldRef: { containerName: 'c', resource: 'limits.cpu' },
        },
        { path: 'y' },
      ),
      [
        'v[0].downwardAPI.items[0] Invalid fieldRef and resourceFieldRef can not be specified simultaneously',
        'v[0].downwardAPI.items[1] Required one of fieldRef and resourceFieldRef is required',
      ],
    ],
    [
      'resources without a container, unknown, or with a divisor Kubernetes refuses',
      dapi(
        res('a', { resource: 'limits.cpu' }),
        res('b', { containerName: 'c', resource: 'limits.gpu' }),
        res('c', { containerName: 'c', resource: 'limits.cpu', divisor: '2' }),
        res('d', { containerName: 'c', resource: 'limits.memory', divisor: '1m' }),
      ),
      [
        'v[0].downwardAPI.items[0].resourceFieldRef.containerName Required ',
        'v[0].downwardAPI.items[1].resourceFieldRef.resource Unsupported supported values: ' +
          '"limits.cpu", "requests.cpu", "limits.memory", "requests.memory", ' +
          '"limits.ephemeral-storage", "requests.ephemeral-storage"',
        'v[0].downwardAPI.items[2].resourceFieldRef.divisor Invalid must be 1m or 1 for cpu',
        'v[0].downwardAPI.items[3].resourceFieldRef.divisor Invalid must be 1 or one unit of a ' +
          'decimal or binary prefix (1k to 1E, 1Ki to 1Ei) for memory and ephemeral-storage',
      ],
    ],
  ];
  for (const [name, v, want] of cases) {
    test(name, () => assert.deepEqual(volumeErrors(v), want));
  }
});

describe('validateVolumes: projected', () => {
  const projected = (...sources: object[]) => ({ name: 'a', projected: { sources } });
  const cases: [string, object, string[]][] = [
    [
      'configMap, secret, downwardAPI and the sources the agent refuses',
      projected(
        { configMap: { name: 'c', items: [{ key: 'k', path: 'conf/k' }], optional: true } },
        { secret: { name: 's', items: [{ key: 'k', path: 'creds/k', mode: 0o400 }] } },
        {
          downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] },
        },
        { serviceAccountToken: { path: 'token', expirationSeconds: 3600 } },
        { clusterTrustBundle: { name: 'b', path: 'ca.pem' } },
      ),
      [],
    ],
    [
      'item paths that leave the volume',
      projected(
        { configMap: { name: 'c', items: [{ key: 'k', path: '../k' }] } },
        { secret: { name: 's', items: [{ key: 'k', path: '/k' }] } },
        { downwardAPI: { items: [{ path: '..data', fieldRef: { fieldPath: 'metadata.name' } }] } },
        { serviceAccountToken: { path: 'x/../../t' } },
      ),
      [
        "v[0].projected.sources[0].configMap.items[0].path Invalid must not contain '..'",
        'v[0].projected.sources[1].secret.items[0].path Invalid must be a relative path',
        "v[0].projected.sources[2].downwardAPI.items[0].path Invalid must not start with '..'",
        "v[0].projected.sources[3].serviceAccountToken.path Invalid must not contain '..'",
      ],
    ],
    [
      'one path given by two sources',
      projected(
        { configMap: { name: 'c', items: [{ key: 'k', path: 'same' }] } },
        { downwardAPI: { items: [{ path: 'same', fieldRef: { fieldPath: 'metadata.name' } }] } },
      ),
      ['v[0].projected Invalid conflicting duplicate paths'],
    ],
    [
      'two sources in one projection, names and token lifetime missing or short',
      projected(
        { configMap: { name: 'c' }, secret: { name: 's' } },
        { secret: {} },
        { serviceAccountToken: { path: 't', expirationSeconds: 60 } },
        { clusterTrustBundle: { name: 'b' } },
      ),
      [
        'v[0].projected.sources[0].secret Forbidden may not specify more than 1 volume type per source',
        'v[0].projected.sources[1].secret.name Required ',
        'v[0].projected.sources[2].serviceAccountToken.expirationSeconds Invalid may not specify a duration less than 10 minutes',
        'v[0].projected.sources[3].clusterTrustBundle.path Required ',
      ],
    ],
  ];
  for (const [name, v, want] of cases) {
    test(name, () => assert.deepEqual(volumeErrors(v), want));
  }
});

describe('validateVolumeMounts', () => {
  const cases: [string, object, string[]][] = [
    ['subPathExpr', { subPathExpr: 'logs/$(POD_NAME)' }, []],
    [
      'subPathExpr absolute',
      { subPathExpr: '/$(X)' },
      ['m[0].subPathExpr Invalid must be a relative path'],
    ],
    [
      'subPathExpr climbing',
      { subPathExpr: '$(X)/../..' },
      ["m[0].subPathExpr Invalid must not contain '..'"],
    ],
    [
      'subPath and subPathExpr',
      { subPath: 'a', subPathExpr: '$(X)' },
      ['m[0].subPathExpr Invalid subPathExpr and subPath are mutually exclusive'],
    ],
  ];
  for (const [name, m, want] of cases) {
    test(name, () => assert.deepEqual(mountErrors(m), want));
  }
});
