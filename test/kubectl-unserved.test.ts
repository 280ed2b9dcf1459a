import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod } from '../src/api/types.js';
import { PODS, startCluster } from './helpers/workload.js';

/** What kubectl says for a command flyCes does not serve: that it is not, and what to do. */

test('kubectl port-forward is refused saying it is not supported, with what to use instead', async (t) => {
  const c = await startCluster(t, { controllers: [] });
  const pod = await c.client.create<Pod>(PODS, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', namespace: 'default' },
    spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'busybox:1.36' }] },
  });
  // kubectl forwards only to a running pod.
  await c.client.updateStatus(PODS, { ...pod, status: { phase: 'Running' } });
  // Port 0: no local port to pick, and kubectl fails before it would listen anyway.
  const r = await c.kubectl('port-forward', 'pod/web', ':8080');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /kubectl port-forward is not supported by flyCes yet/, r.stderr);
  t.diagnostic(r.stderr.trim());
  assert.doesNotMatch(r.stderr, /could not find the requested resource/);
});
