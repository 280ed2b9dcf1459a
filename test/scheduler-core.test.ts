import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { byGroupResource } from '../src/api/resources.js';
import type { Pod } from '../src/api/types.js';
import { InformerFactory } from '../src/client/factory.js';
import { LeaderElector } from '../src/client/leader-election.js';
import { KubeClient } from '../src/client/rest.js';
import { defaultBinder } from '../src/scheduler/binder.js';
import { Code, type BindPlugin } from '../src/scheduler/framework/interface.js';
import { runWhileLeading } from '../src/scheduler/leader.js';
import { Scheduler, type SchedulerOptions } from '../src/scheduler/scheduler.js';
import { startTestApiServer, type TestApiServer } from './helpers/apiserver.js';
import {
  addNode,
  eventsRt,
  fakeAgents,
  overcommitted,
  podObject,
  podsRt,
  until,
} from './helpers/sched.js';

/** The scheduler's queue order, preemption, failing binds and leader election, end to end. */

const classes = byGroupResource.get('scheduling.k8s.io/priorityclasses')!;

async function createClass(api: TestApiServer, name: string, value: number, never = false) {
  await api.client.create(classes, {
    apiVersion: 'scheduling.k8s.io/v1',
    kind: 'PriorityClass',
    metadata: { name },
    value,
    ...(never ? { preemptionPolicy: 'Never' } : {}),
  });
}

async function listPods(api: TestApiServer): Promise<Pod[]> {
  return (await api.client.list<Pod>(podsRt, 'default')).items;
}

const unschedulable = (p: Pod) =>
  p.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable');

/** Waits until `bound` pods are bound and the rest report Unschedulable. */
async function settled(api: TestApiServer, total: number, bound: number): Promise<Pod[]> {
  return until(`${bound}/${total} pods bound, the rest unschedulable`, async () => {
    const items = await listPods(api);
    const b = items.filter((p) => p.spec.nodeName).length;
    const u = items.filter((p) => !p.spec.nodeName && unschedulable(p)).length;
    return items.length === total && b === bound && u === total - bound ? items : undefined;
  });
}

class Running {
  readonly informers: InformerFactory;
  readonly scheduler: Scheduler;
  done?: Promise<void>;

  constructor(client: KubeClient, opts: SchedulerOptions = {}) {
    this.informers = new InformerFactory(client);
    this.scheduler = new Scheduler(client, this.informers, opts);
    this.scheduler.register();
  }

  async start(): Promise<this> {
    await this.informers.start();
    this.done = this.scheduler.run();
    return this;
  }

  async stop(): Promise<void> {
    this.scheduler.stop();
    await this.done;
    this.informers.stop();
  }
}

describe('scheduler core', () => {
  let api: TestApiServer;
  let running: Running | undefined;
  let stopAgents: () => void;

  beforeEach(async () => {
    api = await startTestApiServer();
    stopAgents = fakeAgents(api.client);
  });
  afterEach(async () => {
    stopAgents();
    await running?.stop();
    running = undefined;
    await api.stop();
  });

  test('pods created before the scheduler starts are placed highest priority first', async () => {
    await addNode(api.client, 'n1', '1');
    await createClass(api, 'low', 10, true);
    await createClass(api, 'high', 1000, true);
    const spec = (c: string) => ({ priorityClassName: c });
    for (const [name, c] of [
      ['a1', 'low'],
      ['z1', 'high'],
      ['a2', 'low'],
      ['z2', 'high'],
    ]) {
      await api.client.create(podsRt, podObject(name, '500m', spec(c)));
    }
    running = await new Running(api.client).start();
    const pods = await settled(api, 4, 2);
    const bound = pods.filter((p) => p.spec.nodeName).map((p) => p.metadata.name);
    assert.deepEqual(bound.sort(), ['z1', 'z2'], 'not the first listed or the first created');
  });

  test('a high-priority pod preempts the fewest lower-priority pods, then runs there', async () => {
    await addNode(api.client, 'a', '1');
    await addNode(api.client, 'b', '1');
    await createClass(api, 'low', 10);
    await createClass(api, 'mid', 100);
    await createClass(api, 'high', 1000);
    await createClass(api, 'polite', 500, true);
    running = await new Running(api.client).start();
    // a: two low pods of 400m; b: one mid pod of 900m.
    await api.client.create(
      podsRt,
      podObject('low-1', '400m', {
        priorityClassName: 'low',
        nodeSelector: { 'kubernetes.io/hostname': 'a' },
      }),
    );
    await api.client.create(
      podsRt,
      podObject('low-2', '400m', {
        priorityClassName: 'low',
        nodeSelector: { 'kubernetes.io/hostname': 'a' },
      }),
    );
    await api.client.create(
      podsRt,
      podObject('mid', '900m', {
        priorityClassName: 'mid',
        nodeSelector: { 'kubernetes.io/hostname': 'b' },
      }),
    );
    await settled(api, 3, 3);

    // A pod that never preempts waits, though it outranks every running pod.
    await api.client.create(podsRt, podObject('polite', '500m', { priorityClassName: 'polite' }));
    await settled(api, 4, 3);

    await api.client.create(podsRt, podObject('vip', '500m', { priorityClassName: 'high' }));
    const vip = await until('vip to be bound', async () => {
      const p = await api.client.get<Pod>(podsRt, 'default', 'vip');
      return p.spec.nodeName ? p : undefined;
    });
    assert.equal(vip.spec.nodeName, 'a', 'evicting one low pod beats evicting a mid pod');
    assert.equal(vip.status?.nominatedNodeName, 'a');
    const names = (await listPods(api)).map((p) => p.metadata.name).sort();
    assert.equal(names.filter((n) => n?.startsWith('low-')).length, 1, 'exactly one victim');
    assert.ok(names.includes('mid'));
    const preempted = await until('a Preempted event', async () => {
      const list = await api.client.list(eventsRt, 'default', {
        fieldSelector: 'reason=Preempted',
      });
      return list.items[0];
    });
    assert.match(preempted.message, /Preempted by pod default\/vip on node a/);
    assert.deepEqual(await overcommitted(api.client), []);
  });

  test('binds that fail midway are unreserved and retried; nothing is overcommitted', async () => {
    for (const n of ['n1', 'n2', 'n3']) await addNode(api.client, n, '1');
    const real = defaultBinder(api.client);
    let calls = 0;
    const flaky: BindPlugin = {
      name: 'Flaky',
      async bind(state, pod, node) {
        calls++;
        if (calls % 3 === 1) return { code: Code.Error, reasons: ['injected API error'] };
        if (calls % 3 === 2) {
          await real.bind(state, pod, node);
          return { code: Code.Error, reasons: ['the answer was lost'] };
        }
        return undefined;
      },
    };
    running = await new Running(api.client, { extensions: [flaky] }).start();
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => api.client.create(podsRt, podObject(`p${i}`, '100m'))),
    );
    await settled(api, 40, 30);
    assert.ok(calls >= 40, `binds were attempted (${calls})`);
    assert.deepEqual(await overcommitted(api.client), []);
    const counted = running.scheduler.nodeInfos().map((n) => n.requested.milliCpu);
    assert.deepEqual(counted, [1000, 1000, 1000], 'the scheduler counts what the API has');
  });

  test('at most 256 binds are in flight; the loop waits for one to settle', async () => {
    for (const n of ['n1', 'n2', 'n3']) await addNode(api.client, n, '4');
    const real = defaultBinder(api.client);
    const held: (() => void)[] = [];
    let inFlight = 0;
    let most = 0;
    const slow: BindPlugin = {
      name: 'Slow',
      async bind(state, pod, node) {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise<void>((resolve) => held.push(resolve));
        inFlight--;
        return real.bind(state, pod, node);
      },
    };
    const total = 300;
    for (let i = 0; i < total; i += 50) {
      const batch = Array.from({ length: 50 }, (_, j) => podObject(`p${i + j}`, '10m'));
      await Promise.all(batch.map((p) => api.client.create(podsRt, p)));
    }
    running = await new Running(api.client, { extensions: [slow] }).start();
    await until('the loop to stop at the cap', async () => (held.length >= 256 ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(held.length, 256, 'no bind starts past the cap while none settles');
    const release = setInterval(() => held.splice(0).forEach((resolve) => resolve()), 20);
    try {
      await settled(api, total, total);
    } finally {
      clearInterval(release);
    }
    assert.equal(most, 256);
    assert.deepEqual(await overcommitted(api.client), []);
  });

  test('two schedulers behind a lease: one binds, the standby takes over', async () => {
    for (const n of ['n1', 'n2', 'n3', 'n4']) await addNode(api.client, n, '1');
    const timing = { leaseDurationMs: 5000, renewDeadlineMs: 4000, retryPeriodMs: 250 };
    const instances = ['a', 'b'].map((id) => {
      const client = new KubeClient({ server: api.url, token: api.token, caPem: api.caPem });
      const r = new Running(client);
      const elector = new LeaderElector({
        client,
        name: 'kube-scheduler',
        identity: id,
        ...timing,
      });
      return { id, client, r, elector, done: undefined as Promise<void> | undefined };
    });
    for (const i of instances) {
      await i.r.informers.start();
      i.done = runWhileLeading(i.r.scheduler, i.elector);
      if (i.id === 'a') await until('a to lead', async () => i.elector.isLeader || undefined);
    }
    const [a, b] = instances;
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => api.client.create(podsRt, podObject(`p${i}`, '100m'))),
    );
    await settled(api, 60, 40);
    assert.deepEqual(await overcommitted(api.client), []);
    assert.ok(a.elector.isLeader && !b.elector.isLeader);

    // The leader dies without releasing; b waits out the lease and then schedules.
    await a.elector.stop({ release: false });
    await a.done;
    await addNode(api.client, 'big', '2');
    await until('b to lead', async () => b.elector.isLeader || undefined, 10_000);
    await settled(api, 60, 60);
    assert.deepEqual(await overcommitted(api.client), []);

    // b steps down cleanly: the lease is released at once.
    await b.elector.stop();
    await b.done;
    const lease = await api.client.get(
      byGroupResource.get('coordination.k8s.io/leases')!,
      'kube-system',
      'kube-scheduler',
    );
    assert.equal(lease.spec.holderIdentity, '');
    assert.equal(lease.spec.leaseTransitions, 1);
    for (const i of instances) {
      i.r.informers.stop();
      i.client.close();
    }
  });
});
