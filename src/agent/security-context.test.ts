import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod } from '../api/types.js';
import { securityOptions } from './security-context.js';

function pod(podSec: Record<string, unknown>, sec: Record<string, unknown>, extra = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p' },
    spec: {
      securityContext: podSec,
      containers: [{ name: 'c', image: 'i', securityContext: sec }],
      ...extra,
    },
  };
}

test('container securityContext overlays the pod one', () => {
  const p = pod(
    { runAsUser: 1000, runAsNonRoot: true, supplementalGroups: [5] },
    { runAsUser: 2000, readOnlyRootFilesystem: true },
  );
  assert.deepEqual(securityOptions(p, p.spec.containers[0], false), {
    runAsUser: 2000,
    runAsNonRoot: true,
    supplementalGroups: [5],
    readOnlyRootFilesystem: true,
  });
});

test('privilege and host namespaces follow the node policy', () => {
  const priv = pod({}, { privileged: true });
  assert.throws(
    () => securityOptions(priv, priv.spec.containers[0], false),
    /privileged containers are not allowed/,
  );
  assert.equal(securityOptions(priv, priv.spec.containers[0], true).privileged, true);
  const host = pod({}, {}, { hostNetwork: true, hostPID: true });
  assert.throws(
    () => securityOptions(host, host.spec.containers[0], false),
    /host namespaces are not allowed on this node \(hostNetwork\)/,
  );
  assert.equal(securityOptions(host, host.spec.containers[0], true).hostPID, true);
});

test("the pod's fsGroup is one of the container's supplemental groups", () => {
  const cases: [Record<string, unknown>, number[] | undefined][] = [
    [{ fsGroup: 2000 }, [2000]],
    [{ fsGroup: 2000, supplementalGroups: [5] }, [5, 2000]],
    [{ fsGroup: 5, supplementalGroups: [5] }, [5]],
    [{ supplementalGroups: [5] }, [5]],
    [{}, undefined],
  ];
  for (const [podSec, want] of cases) {
    const p = pod(podSec, {});
    assert.deepEqual(
      securityOptions(p, p.spec.containers[0], false).supplementalGroups,
      want,
      JSON.stringify(podSec),
    );
  }
});
