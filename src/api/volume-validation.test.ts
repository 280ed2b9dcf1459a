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
