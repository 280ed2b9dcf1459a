import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { byGroupResource } from '../src/api/resources.js';
import {
  nowTimestamp,
  type KObject,
  type NodeObject,
  type Pod,
  type ReplicaSet,
} from '../src/api/types.js';
import { isReason, type KubeClient } from '../src/client/rest.js';
import { ControllerManager, type ControllerManagerOptions } from '../src/controllers/manager.js';
import { startTestApiServer } from './helpers/apiserver.js';
import { bindPod, listPods, NODES, PODS, RS, sleep, waiter } from './helpers/workload.js';

/**
 * The node lifecycle controller against a real API server, with the test playing two
 * node agents: it renews their Leases and reports their pods, and then stops renewing
 * one of them as a dead machine would.
 */

const LEASES = byGroupResource.get('coordination.k8s.io/leases')!;
const UNREACHABLE = 'node.kubernetes.io/unreachable';
const LEASE_SECONDS = 2;

/** These tests poll every 50 ms, half as often as the other workload tests. */
const waitFor = waiter(20_000, 50);

/**
 * Starts an API server, a fake agent for each of `nodes`, and then a controller manager
 * (so that its first look finds the nodes registered); when the test ends the agents stop
 * first, then the manager and the server.
 */
async function setup(t: TestContext, opts: ControllerManagerOptions, nodes: string[] = []) {
  const api = await startTestApiServer();
  const client = api.client;
  const manager = new ControllerManager(client, opts);
  const agents = nodes.map((n) => new FakeAgent(client, n));
  t.after(async () => {
    for (const a of agents) a.stop();
    await manager.stop();
    await api.stop();
  });
  for (const a of agents) await a.start();
  await manager.start();
  return { client, agents };
}

/** A fake agent: registers its node, renews its Lease and reports bound pods ready. */
class FakeAgent {
  alive = true;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly client: KubeClient,
    readonly name: string,
  ) {}

  async start(): Promise<void> {
    await this.client.create(NODES, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: this.name },
      status: {
        allocatable: { cpu: '4', memory: '8Gi', pods: '110' },
        capacity: { cpu: '4', memory: '8Gi', pods: '110' },
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: nowTimestamp() }],
      },
    } as NodeObject);
    await this.client.patch(
      NODES,
      undefined,
      this.name,
      {
        status: {
          allocatable: { cpu: '4', memory: '8Gi', pods: '110' },
          conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: nowTimestamp() }],
        },
      },
      'merge',
      'status',
    );
    await this.client.create(LEASES, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: 'kube-node-lease' },
      spec: { holderIdentity: this.name, leaseDurationSeconds: LEASE_SECONDS },
    });
    this.timer = setInterval(() => void this.beat().catch(() => undefined), 300);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** What the real agent does every few seconds while it can reach the API server. */
  private async beat(): Promise<void> {
    if (!this.alive) return;
    const spec = { renewTime: new Date().toISOString().replace('Z', '000Z') };
    await this.client.patch(LEASES, 'kube-node-lease', this.name, { spec }, 'merge');
    const node = await this.client.get<NodeObject>(NODES, undefined, this.name);
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status !== 'True') {
      const conditions = [{ type: 'Ready', status: 'True', lastTransitionTime: nowTimestamp() }];
      await this.client.patch(
        NODES,
        undefined,
        this.name,
        { status: { conditions } },
        'strategic',
        'status',
      );
    }
    const { items } = await this.client.list<Pod>(PODS, undefined, {
      fieldSelector: `spec.nodeName=${this.name}`,
    });
    for (const pod of items) {
      if (pod.metadata.deletionTimestamp) {
        // The agent stops the containers, then confirms the deletion.
        await this.client
          .delete(PODS, pod.metadata.namespace, pod.metadata.name!, { gracePeriodSeconds: 0 })
          .catch(() => undefined);
        continue;
      }
      if (pod.status?.phase === 'Running') continue;
      const status = {
        phase: 'Running',
        podIP: '10.0.0.1',
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: nowTimestamp() }],
      };
      await this.client
        .patch(PODS, pod.metadata.namespace, pod.metadata.name!, { status }, 'merge', 'status')
        .catch(() => undefined);
    }
  }
}

/** Plays the scheduler: binds each pending pod to the node given; returns how many it bound. */
async function bindPending(client: KubeClient, nodeName: string): Promise<number> {
  const items = await listPods(client);
  let bound = 0;
  for (const pod of items) {
    if (pod.spec.nodeName || pod.metadata.deletionTimestamp) continue;
    if (await bindPod(client, pod, nodeName)) bound++;
  }
  return bound;
}

function replicaSet(tolerationSeconds: number): ReplicaSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name: 'web', namespace: 'default' },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [{ name: 'web', image: 'busybox' }],
          tolerations: [
            { key: UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds },
          ],
        },
      },
    },
  } as ReplicaSet;
}

test('a node that stops renewing its lease is tainted and its pods move', async (t) => {
  const { client, agents } = await setup(
    t,
    { controllers: ['replicaset', 'node-lifecycle'], nodeLifecycle: { monitorPeriodMs: 200 } },
    ['node-a', 'node-b'],
  );

  await client.create(RS, replicaSet(1) as KObject);
  await waitFor('two pods', async () => (await listPods(client)).length === 2);
  assert.equal(await bindPending(client, 'node-b'), 2);
  await waitFor('pods running', async () => {
    const items = await listPods(client);
    return items.every((p) => p.status?.phase === 'Running');
  });

  // node-b dies: no more lease renewals.
  const diedAt = Date.now();
  agents[1].alive = false;
  const node = await waitFor('node-b unreachable and tainted', async () => {
    const n = await client.get<NodeObject>(NODES, undefined, 'node-b');
    const ready = n.status?.conditions?.find((c) => c.type === 'Ready');
    const effects = (n.spec?.taints ?? [])
      .filter((x) => x.key === UNREACHABLE)
      .map((x) => x.effect);
    return ready?.status === 'Unknown' && effects.length === 2 ? n : undefined;
  });
  const ready = node.status!.conditions!.find((c) => c.type === 'Ready')!;
  assert.equal(ready.reason, 'NodeStatusUnknown');
  const unreachableAfter = Date.now() - diedAt;
  assert.ok(unreachableAfter >= LEASE_SECONDS * 1000 - 400, `too soon: ${unreachableAfter} ms`);

  // Its pods were marked not ready, then deleted after their 1 s toleration, and the
  // ReplicaSet made replacements, which are bound elsewhere.
  await waitFor('pods on node-b marked for deletion', async () => {
    const items = await listPods(client);
    const onB = items.filter((p) => p.spec.nodeName === 'node-b');
    return onB.length === 2 && onB.every((p) => p.metadata.deletionTimestamp);
  });
  await waitFor('replacements', async () => {
    const items = await listPods(client);
    return items.filter((p) => !p.spec.nodeName).length === 2;
  });
  assert.equal(await bindPending(client, 'node-a'), 2);
  const events = await client.list<KObject>(byGroupResource.get('/events')!, 'default');
  assert.ok(
    events.items.some((e) => e.reason === 'TaintManagerEviction'),
    'an eviction event is recorded',
  );

  // node-b comes back: it confirms the deletions of its replaced pods and its taints go.
  agents[1].alive = true;
  await waitFor('node-b ready and untainted', async () => {
    const n = await client.get<NodeObject>(NODES, undefined, 'node-b');
    const r = n.status?.conditions?.find((c) => c.type === 'Ready');
    return r?.status === 'True' && !(n.spec?.taints ?? []).some((x) => x.key === UNREACHABLE);
  });
  await waitFor('exactly the wanted pods, all on node-a', async () => {
    const items = await listPods(client);
    return items.length === 2 && items.every((p) => p.spec.nodeName === 'node-a');
  });
});

test('NoExecute taints evict pods that do not tolerate them, and only those', async (t) => {
  const { client } = await setup(
    t,
    { controllers: ['node-lifecycle'], nodeLifecycle: { monitorPeriodMs: 200 } },
    ['node-a'],
  );
  const pod = (name: string, tolerations: object[]) =>
    ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'default' },
      spec: { nodeName: 'node-a', containers: [{ name: 'c', image: 'busybox' }], tolerations },
    }) as Pod;
  await client.create(PODS, pod('plain', []));
  await client.create(PODS, pod('tolerant', [{ key: 'maintenance', operator: 'Exists' }]));
  await client.create(
    PODS,
    pod('brief', [
      { key: 'maintenance', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 1 },
    ]),
  );
  const n = await client.get<NodeObject>(NODES, undefined, 'node-a');
  n.spec = { ...(n.spec ?? {}), taints: [{ key: 'maintenance', effect: 'NoExecute' }] };
  const taintedAt = Date.now();
  await client.update(NODES, n);

  const gone = async (name: string) => {
    try {
      const p = await client.get<Pod>(PODS, 'default', name);
      return Boolean(p.metadata.deletionTimestamp);
    } catch (err) {
      return isReason(err, 'NotFound');
    }
  };
  await waitFor('plain pod evicted', () => gone('plain'), 5_000);
  await waitFor('brief pod evicted after its second', () => gone('brief'), 5_000);
  assert.ok(Date.now() - taintedAt >= 900, 'the toleration was honoured');
  await sleep(1_000);
  assert.equal(await gone('tolerant'), false, 'a pod tolerating for good stays');
  const added = (await client.get<NodeObject>(NODES, undefined, 'node-a')).spec?.taints;
  assert.deepEqual(added, [{ key: 'maintenance', effect: 'NoExecute' }], 'others’ taints kept');
});

test('every node gets a pod range of its own, which then never changes', async (t) => {
  const { client } = await setup(t, { controllers: ['node-ipam'] });
  const node = (name: string, podCIDR?: string) =>
    ({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name },
      spec: podCIDR ? { podCIDR, podCIDRs: [podCIDR] } : {},
    }) as NodeObject;
  await client.create(NODES, node('given', '10.42.0.0/24'));
  await Promise.all(['n1', 'n2', 'n3'].map((n) => client.create(NODES, node(n))));
  const ranges = await waitFor('ranges for all nodes', async () => {
    const { items } = await client.list<NodeObject>(NODES, undefined);
    const all = items.map((n) => n.spec?.podCIDR);
    return all.every(Boolean) ? all : undefined;
  });
  assert.equal(new Set(ranges).size, 4, `distinct ranges: ${ranges.join(' ')}`);
  assert.deepEqual([...ranges].sort(), [
    '10.42.0.0/24',
    '10.42.1.0/24',
    '10.42.2.0/24',
    '10.42.3.0/24',
  ]);
  const n1 = await client.get<NodeObject>(NODES, undefined, 'n1');
  n1.spec!.podCIDR = '10.42.9.0/24';
  await assert.rejects(client.update(NODES, n1), /spec.podCIDR: Forbidden/);
});

test('when most nodes go silent at once, their pods are not evicted', async (t) => {
  const { client, agents } = await setup(
    t,
    { controllers: ['node-lifecycle'], nodeLifecycle: { monitorPeriodMs: 200 } },
    ['node-a', 'node-b', 'node-c'],
  );
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default' },
    spec: { nodeName: 'node-b', containers: [{ name: 'c', image: 'busybox' }] },
  } as Pod;
  await client.create(PODS, pod);
  agents[1].alive = false;
  agents[2].alive = false;
  await waitFor('both silent nodes tainted', async () => {
    const { items } = await client.list<NodeObject>(NODES, undefined);
    const tainted = items.filter((n) => (n.spec?.taints ?? []).some((x) => x.key === UNREACHABLE));
    return tainted.length === 2;
  });
  // Default tolerations are 8 s; past them the pod would be gone if evictions ran.
  await sleep(9_000);
  const still = await client.get<Pod>(PODS, 'default', 'p');
  assert.equal(still.metadata.deletionTimestamp, undefined, 'not evicted in a full disruption');
});
