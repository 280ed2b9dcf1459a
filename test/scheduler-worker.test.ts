import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import { byGroupResource } from '../src/api/resources.js';
import type { KObject, Pod } from '../src/api/types.js';
import { SchedulerWorker } from '../src/scheduler/runner.js';
import { startTestApiServer, type TestApiServer } from './helpers/apiserver.js';
import { addNode, podObject, podsRt, until } from './helpers/sched.js';

/**
 * The scheduler in its worker thread (runner.ts), as `flyces up` and `flyces server` run
 * it: it binds pods, holds its lease while it runs and gives it up on stop(), and a thread
 * that dies is started again and goes on binding.
 */

const LEASES = byGroupResource.get('coordination.k8s.io/leases')!;
const lease = { leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 200 };

async function holder(api: TestApiServer): Promise<string | undefined> {
  const got = await api.client.get<KObject>(LEASES, 'kube-system', 'kube-scheduler');
  return (got.spec as { holderIdentity?: string }).holderIdentity || undefined;
}

async function bound(api: TestApiServer, name: string): Promise<string | undefined> {
  return (await api.client.get<Pod>(podsRt, 'default', name)).spec.nodeName;
}

test('the scheduler thread binds pods, survives a crash and releases its lease', async () => {
  const api = await startTestApiServer();
  const worker = new SchedulerWorker({
    client: api.client.config,
    lease: { name: 'kube-scheduler', identity: 'w', ...lease },
    restartDelayMs: 100,
  });
  try {
    await addNode(api.client, 'n1', '2');
    await api.client.create(podsRt, podObject('before', '100m'));
    await worker.start();
    await until('the first pod bound', () => bound(api, 'before'));
    assert.equal(await holder(api), 'w');

    // An abrupt end of the thread, as an uncaught exception would cause.
    const thread = (worker as unknown as { worker: Worker }).worker;
    await thread.terminate();
    await api.client.create(podsRt, podObject('after', '100m'));
    await until('the pod created after the crash bound', () => bound(api, 'after'));
    assert.ok(worker.running, 'a new thread runs');
    assert.equal(await holder(api), 'w', 'the new thread took the lease back');

    await worker.stop();
    assert.equal(worker.running, false);
    assert.equal(await holder(api), undefined, 'stop() released the lease');
  } finally {
    await worker.stop();
    await api.stop();
  }
});
