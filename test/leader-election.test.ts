import { test } from 'node:test';
import assert from 'node:assert/strict';
import { byGroupResource } from '../src/api/resources.js';
import type { KObject } from '../src/api/types.js';
import { LeaderElector, type LeaderCallbacks } from '../src/client/leader-election.js';
import { KubeClient } from '../src/client/rest.js';
import { startTestApiServer, type TestApiServer } from './helpers/apiserver.js';
import { until } from './helpers/sched.js';

/** Leader election on a Lease against a real API server, with short durations. */

const leases = byGroupResource.get('coordination.k8s.io/leases')!;
const timing = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 200 };

function candidate(api: TestApiServer, identity: string) {
  const client = new KubeClient({ server: api.url, token: api.token, caPem: api.caPem });
  const elector = new LeaderElector({ client, name: 'test', identity, ...timing });
  const log: string[] = [];
  const callbacks: LeaderCallbacks = {
    onStartedLeading: () => void log.push('started'),
    onStoppedLeading: (why) => void log.push(`stopped:${why}`),
    onNewLeader: (id) => void log.push(`leader:${id}`),
  };
  const done = elector.run(callbacks);
  return { client, elector, log, done };
}

const lease = (api: TestApiServer) => api.client.get<KObject>(leases, 'kube-system', 'test');

test('one leads; a released lease passes at once, a dead holder only after the duration', async () => {
  const api = await startTestApiServer();
  const a = candidate(api, 'a');
  await until('a to lead', async () => a.elector.isLeader || undefined);
  const b = candidate(api, 'b');
  await until('b to see a', async () => (b.log.includes('leader:a') ? true : undefined));
  assert.equal(b.elector.isLeader, false);
  assert.equal((await lease(api)).spec.holderIdentity, 'a');

  const released = Date.now();
  await a.elector.stop();
  await a.done;
  assert.deepEqual(a.log, ['started', 'stopped:stopped']);
  await until('b to lead', async () => b.elector.isLeader || undefined);
  assert.ok(Date.now() - released < timing.leaseDurationMs, 'released: no wait for expiry');

  const c = candidate(api, 'c');
  await until('c to see b', async () => (c.log.includes('leader:b') ? true : undefined));
  const died = Date.now();
  await b.elector.stop({ release: false });
  await until('c to lead', async () => c.elector.isLeader || undefined, 10_000);
  assert.ok(Date.now() - died >= timing.leaseDurationMs - 500, 'waited out the lease');
  const spec = (await lease(api)).spec;
  assert.equal(spec.holderIdentity, 'c');
  assert.equal(spec.leaseTransitions, 2, 'a created it, b and c took it over');
  assert.equal(spec.leaseDurationSeconds, 3);

  await c.elector.stop();
  for (const x of [a, b, c]) x.client.close();
  await api.stop();
});

test('a leader that cannot renew within the deadline stops leading', async () => {
  const api = await startTestApiServer();
  const a = candidate(api, 'a');
  await until('a to lead', async () => a.elector.isLeader || undefined);
  const lost = Date.now();
  await api.server.stop();
  await a.done;
  const took = Date.now() - lost;
  assert.deepEqual(a.log, ['started', 'stopped:lost']);
  assert.ok(
    took >= timing.renewDeadlineMs - 300 && took < timing.leaseDurationMs + 1000,
    `${took} ms`,
  );
  a.client.close();
  await api.stop();
});
