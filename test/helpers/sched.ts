import { byGroupResource } from '../../src/api/resources.js';
import type { NodeObject, Pod } from '../../src/api/types.js';
import { InformerFactory } from '../../src/client/factory.js';
import type { KubeClient } from '../../src/client/rest.js';
import { nodeAllocatable, podRequests } from '../../src/scheduler/framework/nodeinfo.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';
import { startTestApiServer, type TestApiServer } from './apiserver.js';

/** Shared pieces of the scheduler's process tests: nodes, pods, waiting, overcommit. */

export const nodesRt = byGroupResource.get('/nodes')!;
export const podsRt = byGroupResource.get('/pods')!;
export const eventsRt = byGroupResource.get('/events')!;

export function nodeObject(name: string, cpu: string, pods = '110'): NodeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    status: {
      capacity: { cpu, memory: '8Gi', pods },
      allocatable: { cpu, memory: '8Gi', pods },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

/** Creates a ready node (the status goes through its subresource). */
export async function addNode(client: KubeClient, name: string, cpu: string): Promise<void> {
  const n = nodeObject(name, cpu);
  await client.create(nodesRt, n);
  await client.patch(nodesRt, undefined, name, { status: n.status }, 'merge', 'status');
}

export function podObject(name: string, cpu: string, spec: Record<string, unknown> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: { containers: [{ name: 'c', image: 'i', resources: { requests: { cpu } } }], ...spec },
  };
}

export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await fn();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Nodes whose bound pods request more cpu, memory or pods than the node has. */
export async function overcommitted(client: KubeClient): Promise<string[]> {
  const nodes = (await client.list<NodeObject>(nodesRt)).items;
  const pods = (await client.list<Pod>(podsRt)).items;
  const over: string[] = [];
  for (const node of nodes) {
    const alloc = nodeAllocatable(node);
    const used = { milliCpu: 0, memory: 0, pods: 0 };
    for (const p of pods) {
      if (p.spec.nodeName !== node.metadata.name) continue;
      const r = podRequests(p);
      used.milliCpu += r.milliCpu;
      used.memory += r.memory;
      used.pods += r.pods;
    }
    if (used.milliCpu > alloc.milliCpu || used.memory > alloc.memory || used.pods > alloc.pods) {
      over.push(`${node.metadata.name}: ${JSON.stringify(used)}`);
    }
  }
  return over;
}

/**
 * Stands in for the node agents: pods marked for deletion are removed for good, as an
 * agent does once their containers stopped. Returns a stop function.
 */
export function fakeAgents(client: KubeClient): () => void {
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      const pods = (await client.list<Pod>(podsRt).catch(() => ({ items: [] as Pod[] }))).items;
      for (const p of pods) {
        if (!p.metadata.deletionTimestamp) continue;
        await client
          .delete(podsRt, p.metadata.namespace, p.metadata.name!, { gracePeriodSeconds: 0 })
          .catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  void loop();
  return () => {
    stopped = true;
  };
}

export interface SchedulingCluster {
  api: TestApiServer;
  /** Waits for the pod `name` (namespace default) to be bound; resolves with its node. */
  nodeOf(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** An API server with `nodes` (their status written too) and a scheduler running on it. */
export async function startScheduling(nodes: NodeObject[]): Promise<SchedulingCluster> {
  const api = await startTestApiServer();
  for (const n of nodes) {
    const created = await api.client.create<NodeObject>(nodesRt, n);
    const name = created.metadata.name!;
    await api.client.patch(nodesRt, undefined, name, { status: n.status }, 'merge', 'status');
  }
  const informers = new InformerFactory(api.client);
  const scheduler = new Scheduler(api.client, informers);
  scheduler.register();
  await informers.start();
  const done = scheduler.run();
  return {
    api,
    nodeOf: (name) =>
      until(
        `${name} to be bound`,
        async () => (await api.client.get<Pod>(podsRt, 'default', name)).spec.nodeName || undefined,
        10_000,
      ),
    async stop() {
      scheduler.stop();
      await done;
      informers.stop();
      await api.stop();
    },
  };
}
