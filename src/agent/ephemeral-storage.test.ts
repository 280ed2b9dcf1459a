import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { Pod } from '../api/types.js';
import { hasStorageBounds, storageViolation, type StorageUse } from './ephemeral-storage.js';

const MI = 1024 * 1024;

function pod(limits: (string | undefined)[], volumes: object[] = []): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'ns' },
    spec: {
      volumes,
      containers: limits.map((l, i) => ({
        name: `c${i}`,
        image: 'i',
        resources: l ? { limits: { 'ephemeral-storage': l } } : {},
      })),
    },
  } as Pod;
}

const use = (containers: number[], emptyDirs: Record<string, number> = {}): StorageUse => ({
  containers: new Map(containers.map((n, i) => [`c${i}`, n])),
  emptyDirs: new Map(Object.entries(emptyDirs)),
});

test('a container past its own ephemeral-storage limit evicts the pod', () => {
  const p = pod(['10Mi', undefined]);
  assert.equal(hasStorageBounds(p), true);
  assert.equal(storageViolation(p, use([9 * MI, 500 * MI])), undefined, 'c1 has no limit');
  assert.equal(
    storageViolation(p, use([12 * MI, 0])),
    'Container c0 took 12.0Mi of ephemeral storage, more than its limit of 10Mi.',
  );
});

test('a disk emptyDir past its sizeLimit evicts; one in memory is not held to it here', () => {
  const volumes = [
    { name: 'cache', emptyDir: { sizeLimit: '1Mi' } },
    { name: 'ram', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
  ];
  const p = pod([undefined], volumes);
  assert.equal(hasStorageBounds(p), true);
  assert.equal(storageViolation(p, use([0], { cache: MI / 2 })), undefined);
  assert.equal(
    storageViolation(p, use([0], { cache: 3 * MI })),
    'emptyDir volume "cache" holds 3.0Mi, more than its sizeLimit of 1Mi.',
  );
  assert.equal(hasStorageBounds(pod([undefined], [volumes[1]])), false);
});

test('with every container limited, containers and emptyDirs together are held to the sum', () => {
  const p = pod(['4Mi', '4Mi'], [{ name: 'scratch', emptyDir: {} }]);
  assert.equal(storageViolation(p, use([3 * MI, 3 * MI], { scratch: MI })), undefined);
  assert.equal(
    storageViolation(p, use([3 * MI, 3 * MI], { scratch: 3 * MI })),
    "The pod took 9.0Mi of ephemeral storage, more than its containers' limits together (8.0Mi).",
  );
  assert.equal(hasStorageBounds(pod([undefined])), false);
});
