import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod } from '../api/types.js';
import { memoryVolumeBytes, podMemoryLimit } from './memory-volume.js';

const Mi = 1024 * 1024;

function pod(apps: (string | undefined)[], inits: (string | undefined)[] = []): Pod {
  const c = (memory: string | undefined, i: number) => ({
    name: `c${i}`,
    image: 'i',
    ...(memory ? { resources: { limits: { memory } } } : {}),
  });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'ns', uid: 'u' },
    spec: { containers: apps.map(c), initContainers: inits.map(c) },
  } as Pod;
}

test("a pod's memory limit: its app containers' together, an init container's where higher", () => {
  const cases: [Pod, number | undefined][] = [
    [pod(['64Mi']), 64 * Mi],
    [pod(['64Mi', '32Mi']), 96 * Mi],
    [pod(['64Mi', '32Mi'], ['128Mi']), 128 * Mi],
    [pod(['64Mi', '32Mi'], ['16Mi']), 96 * Mi],
    // One container without a limit leaves the pod unbounded, an init container's too.
    [pod(['64Mi', undefined]), undefined],
    [pod(['64Mi'], [undefined]), undefined],
    [pod(['0']), undefined],
  ];
  for (const [p, want] of cases) assert.equal(podMemoryLimit(p), want, JSON.stringify(p.spec));
});

test('a memory emptyDir is as large as the least of the node, the pod and its sizeLimit', () => {
  const cases: [Pod, string | undefined, string | undefined, number | undefined][] = [
    [pod([undefined]), undefined, undefined, undefined],
    [pod([undefined]), undefined, '8Gi', 8192 * Mi],
    [pod([undefined]), '1Gi', '8Gi', 1024 * Mi],
    [pod(['64Mi']), undefined, '8Gi', 64 * Mi],
    // A sizeLimit above the pod's limit is held to the limit.
    [pod(['64Mi']), '1Gi', '8Gi', 64 * Mi],
    [pod(['64Mi']), '16Mi', '8Gi', 16 * Mi],
    [pod(['64Mi']), '1.5', undefined, 2],
    // A zero sizeLimit is unset.
    [pod(['64Mi']), '0', '8Gi', 64 * Mi],
  ];
  for (const [p, sizeLimit, node, want] of cases) {
    assert.equal(memoryVolumeBytes(p, sizeLimit, node), want, `${sizeLimit} ${node}`);
  }
});
