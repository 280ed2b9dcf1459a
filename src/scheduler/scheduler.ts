import { byGroupResource } from '../api/resources.js';
import { nowTimestamp, objectKey, type NodeObject, type Pod } from '../api/types.js';
import { EventRecorder } from '../client/events.js';
import type { InformerFactory } from '../client/factory.js';
import type { Informer } from '../client/informer.js';
import { isReason, type KubeClient } from '../client/rest.js';
import { WorkQueue } from '../client/workqueue.js';
import { componentLogger } from '../log.js';
import { Framework, unschedulableMessage } from './framework/framework.js';
import { NodeInfo } from './framework/nodeinfo.js';
import { defaultPlugins } from './plugins/registry.js';

/**
 * The scheduler binds each pending pod to a node. It keeps an in-memory snapshot of every
 * node with the requests of the pods on it, schedules one pod at a time against it, counts
 * the pod on the chosen node at once ("assumes" it) and binds in the background, so the next
 * pod is placed without waiting for the API. A failed bind forgets the assumption and
 * retries the pod with backoff. Pods that fit nowhere wait until a node or pod changes.
 */

const SCHEDULER_NAME = 'default-scheduler';
/** Unschedulable pods are retried at least this often, even with no cluster event. */
const UNSCHEDULABLE_RETRY_MS = 60_000;

export class Scheduler {
  private readonly log = componentLogger('scheduler');
  private readonly pods: Informer<Pod>;
  private readonly nodes: Informer<NodeObject>;
  private readonly queue = new WorkQueue(1000, 10_000);
  private readonly snapshot = new Map<string, NodeInfo>();
  /** Pod key → node it is counted on (bound or assumed). */
  private readonly placed = new Map<string, string>();
  private readonly unschedulable = new Set<string>();
  private readonly framework = new Framework(defaultPlugins());
  private readonly events: EventRecorder;
  private retryTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly client: KubeClient,
    informers: InformerFactory,
  ) {
    this.pods = informers.informer<Pod>(byGroupResource.get('/pods')!);
    this.nodes = informers.informer<NodeObject>(byGroupResource.get('/nodes')!);
    this.events = new EventRecorder(client, SCHEDULER_NAME);
  }

  /** Registers event handlers; call before the informers start. */
  register(): void {
    this.nodes.addHandlers({
      onAdd: (n) => this.upsertNode(n),
      onUpdate: (_o, n) => this.upsertNode(n),
      onDelete: (n) => this.snapshot.delete(n.metadata.name!),
    });
    this.pods.addHandlers({
      onAdd: (p) => this.podChanged(p),
      onUpdate: (_o, p) => this.podChanged(p),
      onDelete: (p) => this.podDeleted(p),
    });
  }

  /** Schedules pods until stop(). */
  async run(): Promise<void> {
    this.retryTimer = setInterval(() => this.retryUnschedulable(), UNSCHEDULABLE_RETRY_MS);
    while (!this.stopped) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        this.scheduleOne(key);
      } catch (err) {
        this.log.error({ err, pod: key }, 'scheduling failed');
        this.queue.addRateLimited(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearInterval(this.retryTimer);
    this.queue.shutDown();
  }

  private upsertNode(node: NodeObject): void {
    const name = node.metadata.name!;
    const info = this.snapshot.get(name);
    if (info) info.setNode(node);
    else {
      const fresh = new NodeInfo(node);
      for (const [podKey, nodeName] of this.placed) {
        const pod = this.pods.get(podKey);
        if (nodeName === name && pod) fresh.addPod(pod);
      }
      this.snapshot.set(name, fresh);
    }
    this.retryUnschedulable();
  }

  private podChanged(pod: Pod): void {
    const key = objectKey(pod);
    const terminal = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
    if (pod.spec.nodeName) {
      this.unschedulable.delete(key);
      if (terminal) this.unplace(key);
      else this.place(key, pod.spec.nodeName, pod);
      return;
    }
    if (pod.metadata.deletionTimestamp || terminal) return;
    if ((pod.spec.schedulerName ?? SCHEDULER_NAME) !== SCHEDULER_NAME) return;
    if (!this.placed.has(key) && !this.unschedulable.has(key)) this.queue.add(key);
  }

  private podDeleted(pod: Pod): void {
    const key = objectKey(pod);
    this.unschedulable.delete(key);
    if (this.placed.has(key)) {
      this.unplace(key);
      this.retryUnschedulable();
    }
  }

  private place(key: string, nodeName: string, pod: Pod): void {
    const current = this.placed.get(key);
    if (current === nodeName) return;
    if (current) this.snapshot.get(current)?.removePod(key);
    this.placed.set(key, nodeName);
    this.snapshot.get(nodeName)?.addPod(pod);
  }

  private unplace(key: string): void {
    const nodeName = this.placed.get(key);
    if (nodeName === undefined) return;
    this.placed.delete(key);
    this.snapshot.get(nodeName)?.removePod(key);
  }

  private retryUnschedulable(): void {
    for (const key of this.unschedulable) this.queue.addRateLimited(key);
    this.unschedulable.clear();
  }

  private scheduleOne(key: string): void {
    const pod = this.pods.get(key);
    if (!pod || pod.spec.nodeName || pod.metadata.deletionTimestamp || this.placed.has(key)) return;
    const result = this.framework.schedule(pod, Framework.nodeList(this.snapshot));
    if (!result.node) {
      this.unschedulable.add(key);
      void this.reportUnschedulable(pod, unschedulableMessage(result));
      return;
    }
    const nodeName = result.node.name;
    this.place(key, nodeName, pod);
    this.log.debug({ pod: key, node: nodeName }, 'assumed pod');
    void this.bind(pod, nodeName);
  }

  private async bind(pod: Pod, nodeName: string): Promise<void> {
    const key = objectKey(pod);
    try {
      await this.client.request(
        'POST',
        `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/binding`,
        {
          body: {
            apiVersion: 'v1',
            kind: 'Binding',
            metadata: {
              name: pod.metadata.name,
              namespace: pod.metadata.namespace,
              uid: pod.metadata.uid,
            },
            target: { apiVersion: 'v1', kind: 'Node', name: nodeName },
          },
        },
      );
      this.queue.forget(key);
      this.log.info({ pod: key, node: nodeName }, 'bound pod');
      this.events.normal(pod, 'Scheduled', `Successfully assigned ${key} to ${nodeName}`);
    } catch (err) {
      this.unplace(key);
      if (isReason(err, 'NotFound') || isReason(err, 'Conflict')) {
        this.log.debug(
          { pod: key, err: (err as Error).message },
          'bind refused; pod changed meanwhile',
        );
        if (isReason(err, 'Conflict')) this.queue.addRateLimited(key);
        return;
      }
      this.log.warn(
        { pod: key, node: nodeName, err: (err as Error).message },
        'bind failed; retrying',
      );
      this.queue.addRateLimited(key);
    }
  }

  private async reportUnschedulable(pod: Pod, message: string): Promise<void> {
    const key = objectKey(pod);
    const existing = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    this.log.info({ pod: key, reason: message }, 'pod is unschedulable');
    this.events.warning(pod, 'FailedScheduling', message);
    if (existing?.status === 'False' && existing.message === message) return;
    const condition = {
      type: 'PodScheduled',
      status: 'False',
      reason: 'Unschedulable',
      message,
      lastProbeTime: null,
      lastTransitionTime: nowTimestamp(),
    };
    try {
      const patch = { status: { conditions: [condition] } };
      await this.client.patch(
        byGroupResource.get('/pods')!,
        pod.metadata.namespace,
        pod.metadata.name!,
        patch,
        'strategic',
        'status',
      );
    } catch (err) {
      if (!isReason(err, 'NotFound'))
        this.log.warn({ pod: key, err: (err as Error).message }, 'could not update pod condition');
    }
  }
}
