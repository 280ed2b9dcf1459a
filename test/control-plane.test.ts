import { test } from 'node:test';
import assert from 'node:assert/strict';
import { byGroupResource } from '../src/api/resources.js';
import type { KObject, Pod } from '../src/api/types.js';
import { KubeClient } from '../src/client/rest.js';
import { startControlLoops, type ControlLoops } from '../src/cli/control-plane.js';
import type { Worker } from 'node:worker_threads';
import { ControlLoopsThread, startControlLoopsThread } from '../src/cli/control-plane-thread.js';
import { addNode, podObject, podsRt, until } from './helpers/sched.js';
import { startTestApiServer, type TestApiServer } from './helpers/apiserver.js';
import { waitFor } from './helpers/cluster.js';

/**
 * Two control planes' loops (`flyces server`'s scheduler and controllers) on one API
 * server: each lease has one holder, and the standby takes both over once the leader stops.
 */

const LEASES = byGroupResource.get('coordination.k8s.io/leases')!;
const PODS = byGroupResource.get('/pods')!;
const lease = { leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 200 };

async function holder(api: TestApiServer, name: string): Promise<string | undefined> {
  const got = await api.client.get<KObject>(LEASES, 'kube-system', name).catch(() => undefined);
  return (got?.spec as { holderIdentity?: string } | undefined)?.holderIdentity || undefined;
}

test('one server leads the scheduler and the controllers; the standby takes over', async () => {
  const api = await startTestApiServer();
  const clients: KubeClient[] = [];
  const loops: ControlLoops[] = [];
  try {
    const start = async (identity: string) => {
      const client = new KubeClient({ server: api.url, token: api.token, caPem: api.caPem });
      clients.push(client);
      const l = await startControlLoops(client, { identity, lease });
      loops.push(l);
      return l;
    };
    // a runs on a thread of its own, as in `flyces up` and `flyces server`; b in this one.
    const a = await startControlLoopsThread(
      { server: api.url, token: api.token, caPem: api.caPem },
      { identity: 'a', lease },
    );
    loops.push(a);
    await waitFor(
      'a to hold kube-controller-manager',
      10_000,
      async () => (await holder(api, 'kube-controller-manager')) === 'a',
    );
    await waitFor(
      'a to hold kube-scheduler',
      10_000,
      async () => (await holder(api, 'kube-scheduler')) === 'a',
    );
    await start('b');
    // b stands by while a renews.
    await new Promise((r) => setTimeout(r, lease.leaseDurationMs + 500));
    assert.equal(await holder(api, 'kube-controller-manager'), 'a');
    assert.equal(await holder(api, 'kube-scheduler'), 'a');

    await a.stop();
    await waitFor(
      'b to hold kube-controller-manager',
      10_000,
      async () => (await holder(api, 'kube-controller-manager')) === 'b',
    );
    await waitFor(
      'b to hold kube-scheduler',
      10_000,
      async () => (await holder(api, 'kube-scheduler')) === 'b',
    );

    // The standby's controllers now act.
    const rs = byGroupResource.get('apps/replicasets')!;
    await api.client.create(rs, {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { name: 'r', namespace: 'default' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'r' } },
        template: {
          metadata: { labels: { app: 'r' } },
          spec: { containers: [{ name: 'c', image: 'x' }] },
        },
      },
    });
    await waitFor("b's ReplicaSet controller to make 2 pods", 10_000, async () => {
      const list = await api.client.list<KObject>(PODS, 'default');
      return list.items.length === 2;
    });
  } finally {
    for (const l of loops.reverse()) await l.stop().catch(() => undefined);
    for (const c of clients) c.close();
    await api.stop();
  }
});

test("the control loops' thread reports a start that failed, with its cause", async () => {
  const api = await startTestApiServer();
  try {
    await assert.rejects(
      startControlLoopsThread(
        { server: api.url, token: api.token, caPem: api.caPem },
        { clusterCidr: '10.300.0.0/16' },
      ),
      /failed to start: .*cluster CIDR "10\.300\.0\.0\/16" is not an IPv4 CIDR/s,
    );
  } finally {
    await api.stop();
  }
});

test("the control loops' thread is started again after a crash and takes its leases back", async () => {
  const api = await startTestApiServer();
  const thread = new ControlLoopsThread(
    { server: api.url, token: api.token, caPem: api.caPem },
    { identity: 't', lease, restartDelayMs: 100, controllers: false },
  );
  try {
    await addNode(api.client, 'n1', '2');
    await api.client.create(podsRt, podObject('before', '100m'));
    await thread.start();
    await until('the first pod bound', () => boundTo(api, 'before'));
    assert.equal(await holder(api, 'kube-scheduler'), 't');
    assert.equal(await holder(api, 'kube-controller-manager'), undefined, 'no controllers');

    // An abrupt end of the thread, as an uncaught exception would cause.
    await (thread as unknown as { worker: Worker }).worker.terminate();
    await api.client.create(podsRt, podObject('after', '100m'));
    await until('the pod made after the crash bound', () => boundTo(api, 'after'));
    assert.ok(thread.running, 'a new thread runs');
    assert.equal(await holder(api, 'kube-scheduler'), 't', 'the new thread took the lease back');

    await thread.stop();
    assert.equal(thread.running, false);
    assert.equal(await holder(api, 'kube-scheduler'), undefined, 'stop() released the lease');
  } finally {
    await thread.stop();
    await api.stop();
  }
});

async function boundTo(api: TestApiServer, name: string): Promise<string | undefined> {
  return (await api.client.get<Pod>(podsRt, 'default', name)).spec.nodeName;
}
