import { byGroupResource } from '../../api/resources.js';
import { NOT_READY_TAINT, UNREACHABLE_TAINT, type Taint } from '../../api/taints.js';
import {
  nowTimestamp,
  objectKey,
  type KObject,
  type NodeObject,
  type Pod,
} from '../../api/types.js';
import { EventRecorder } from '../../client/events.js';
import type { InformerFactory } from '../../client/factory.js';
import type { Informer } from '../../client/informer.js';
import { isReason, type KubeClient } from '../../client/rest.js';
import { QueueController } from '../base.js';
import { evictionTime, reconcileTaints, wantedTaints } from './taints.js';

const NODES = byGroupResource.get('/nodes')!;
const PODS = byGroupResource.get('/pods')!;
const LEASES = byGroupResource.get('coordination.k8s.io/leases')!;
const NODE_INDEX = 'nodeName';
/** Above this share of nodes not ready, pods are not evicted (Kubernetes: 0.55). */
const DISRUPTION_FRACTION = 0.55;
const DISRUPTION_RECHECK_MS = 5_000;
const LIFECYCLE_TAINTS = new Set([NOT_READY_TAINT, UNREACHABLE_TAINT]);

export interface NodeLifecycleOptions {
  workers?: number;
  /** How often nodes' leases are checked; default 1 s. */
  monitorPeriodMs?: number;
  /**
   * How long a node may go without renewing its Lease before it is unreachable, when its
   * Lease does not say (leaseDurationSeconds); default 40 s.
   */
  defaultGraceMs?: number;
  /** The clock, for tests. */
  now?: () => number;
}

/**
 * Watches nodes' heartbeats and moves pods off nodes that stop: a node whose Lease in
 * kube-node-lease has not been renewed for its leaseDurationSeconds gets Ready=Unknown,
 * its pods are marked not ready (so Services stop sending to them), and it is tainted
 * `node.kubernetes.io/unreachable` (NoSchedule and NoExecute; `not-ready` when the agent
 * reports Ready=False). Pods on a NoExecute-tainted node are deleted once their
 * tolerations run out; their controllers then replace them elsewhere. A node whose agent
 * comes back reports Ready again, and the taints are removed.
 *
 * When more than 55% of the nodes are not ready at once, nobody is evicted for it: that
 * looks like a failure of the control plane or the network rather than of the machines.
 *
 * Renewals are timed by this controller's own clock when it sees them, not by the
 * renewTime they carry, so clock skew between machines does not matter. After a restart
 * every node gets a full grace period again.
 */
export class NodeLifecycleController extends QueueController {
  private readonly nodes: Informer<NodeObject>;
  private readonly pods: Informer<Pod>;
  private readonly leases: Informer<KObject>;
  private readonly events: EventRecorder;
  /** Node name → when this controller last saw its Lease renewed (ms). */
  private readonly heard = new Map<string, number>();
  /** Node name → NoExecute taints without timeAdded → when first seen (ms). */
  private readonly taintSeen = new Map<string, Map<string, number>>();
  private readonly now: () => number;
  private monitor?: NodeJS.Timeout;

  constructor(
    private readonly client: KubeClient,
    factory: InformerFactory,
    private readonly opts: NodeLifecycleOptions = {},
  ) {
    super('node-lifecycle-controller', opts.workers ?? 2);
    this.nodes = factory.informer(NODES);
    this.pods = factory.informer(PODS);
    this.leases = factory.informer(LEASES, { namespace: 'kube-node-lease' });
    this.events = new EventRecorder(client, 'node-controller');
    this.now = opts.now ?? Date.now;
  }

  register(): void {
    this.pods.addIndex(NODE_INDEX, (p: Pod) => (p.spec.nodeName ? [p.spec.nodeName] : []));
    this.nodes.addHandlers({
      onAdd: (n) => this.enqueue(n),
      onUpdate: (_o, n) => this.enqueue(n),
      onDelete: (n) => {
        this.heard.delete(n.metadata.name!);
        this.taintSeen.delete(n.metadata.name!);
      },
    });
    const renewed = (lease: KObject) => {
      this.heard.set(lease.metadata.name!, this.now());
      this.queue.add(lease.metadata.name!);
    };
    this.leases.addHandlers({ onAdd: renewed, onUpdate: (_o, l) => renewed(l) });
    // A pod bound to a tainted node is checked against its tolerations.
    this.pods.addHandlers({
      onAdd: (p) => p.spec.nodeName && this.queue.add(p.spec.nodeName),
      onUpdate: (o, p) => p.spec.nodeName !== o.spec.nodeName && this.queue.add(p.spec.nodeName!),
    });
  }

  override run(): Promise<void> {
    const period = this.opts.monitorPeriodMs ?? 1_000;
    this.monitor = setInterval(() => this.checkHeartbeats(), period);
    return super.run();
  }

  override stop(): void {
    if (this.monitor) clearInterval(this.monitor);
    super.stop();
  }

  /** Queues every node whose Lease is overdue, so reconcile marks it unreachable. */
  private checkHeartbeats(): void {
    for (const node of this.nodes.list()) {
      if (this.overdue(node) && readyStatus(node) !== 'Unknown') this.enqueue(node);
    }
  }

  private overdue(node: NodeObject): boolean {
    const name = node.metadata.name!;
    if (!this.heard.has(name)) this.heard.set(name, this.now());
    const lease = this.leases.get(`kube-node-lease/${name}`);
    const seconds = lease?.spec?.leaseDurationSeconds;
    const grace =
      typeof seconds === 'number' && seconds > 0
        ? seconds * 1000
        : (this.opts.defaultGraceMs ?? 40_000);
    return this.now() - this.heard.get(name)! > grace;
  }

  protected async reconcile(name: string): Promise<number | void> {
    let node = this.nodes.get(name);
    if (!node) return;
    if (this.overdue(node) && readyStatus(node) !== 'Unknown') {
      node = await this.markUnreachable(node);
    }
    node = await this.syncTaints(node);
    return this.evictPods(node);
  }

  /** Ready=Unknown on the node and Ready=False on its pods: nobody is hearing from it. */
  private async markUnreachable(node: NodeObject): Promise<NodeObject> {
    const name = node.metadata.name!;
    const now = nowTimestamp();
    const conditions = (node.status?.conditions ?? []).map((c) => ({
      ...c,
      status: 'Unknown',
      reason: 'NodeStatusUnknown',
      message: 'Kubelet stopped posting node status.',
      lastTransitionTime: c.status === 'Unknown' ? c.lastTransitionTime : now,
    }));
    if (!conditions.some((c) => c.type === 'Ready')) {
      conditions.push({
        type: 'Ready',
        status: 'Unknown',
        reason: 'NodeStatusNeverUpdated',
        message: 'Kubelet never posted node status.',
        lastTransitionTime: now,
      });
    }
    const updated = await this.client.patch<NodeObject>(
      NODES,
      undefined,
      name,
      { status: { conditions } },
      'strategic',
      'status',
    );
    this.log.info({ node: name }, 'node stopped renewing its lease; marked unreachable');
    this.events.normal(updated, 'NodeNotReady', `Node ${name} status is now: NodeNotReady`);
    for (const pod of this.pods.byIndex(NODE_INDEX, name)) await this.markPodNotReady(pod);
    return updated;
  }

  private async markPodNotReady(pod: Pod): Promise<void> {
    const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
    if (!ready || ready.status === 'False' || pod.metadata.deletionTimestamp) return;
    const condition = { ...ready, status: 'False', lastTransitionTime: nowTimestamp() };
    try {
      const patch = { status: { conditions: [condition] } };
      await this.client.patch(
        PODS,
        pod.metadata.namespace,
        pod.metadata.name!,
        patch,
        'strategic',
        'status',
      );
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
  }

  /** Brings the node's not-ready / unreachable taints in line with its Ready condition. */
  private async syncTaints(node: NodeObject): Promise<NodeObject> {
    const current = (node.spec?.taints ?? []) as Taint[];
    const taints = reconcileTaints(current, wantedTaints(node), nowTimestamp());
    if (!taints) return node;
    const updated = structuredClone(node);
    updated.spec = { ...(updated.spec ?? {}), taints };
    if (taints.length === 0) delete updated.spec.taints;
    const written = await this.client.update<NodeObject>(NODES, updated);
    this.log.info(
      { node: node.metadata.name, taints: taints.map((t) => `${t.key}:${t.effect}`) },
      'node taints changed',
    );
    return written;
  }

  /**
   * Deletes the pods whose tolerations of the node's NoExecute taints have run out;
   * returns when to look again for the ones whose time is still to come.
   */
  private async evictPods(node: NodeObject): Promise<number | void> {
    const now = this.now();
    const taints = this.stamped(node, now);
    if (taints.length === 0) return;
    if (this.disrupted() && taints.some((t) => LIFECYCLE_TAINTS.has(t.key))) {
      // Most nodes look dead at once: more likely this controller or the network failed
      // than the machines. Kubernetes stops evicting then too ("full disruption").
      this.log.warn({ node: node.metadata.name }, 'most nodes are not ready; not evicting');
      return DISRUPTION_RECHECK_MS;
    }
    let next: number | undefined;
    for (const pod of this.pods.byIndex(NODE_INDEX, node.metadata.name!)) {
      if (pod.metadata.deletionTimestamp) continue;
      const at = evictionTime(pod, taints, now);
      if (at === undefined) continue;
      if (at > now) {
        next = next === undefined ? at - now : Math.min(next, at - now);
        continue;
      }
      await this.evict(pod, node);
    }
    return next;
  }

  /** Whether more than 55% of the nodes (of three or more) are not ready. */
  private disrupted(): boolean {
    const nodes = this.nodes.list();
    if (nodes.length < 3) return false;
    const down = nodes.filter((n) => readyStatus(n) !== 'True').length;
    return down / nodes.length > DISRUPTION_FRACTION;
  }

  /**
   * The node's NoExecute taints, each with the time it was added: a taint written without
   * timeAdded counts from when this controller first saw it.
   */
  private stamped(node: NodeObject, now: number): Taint[] {
    const name = node.metadata.name!;
    const seen = this.taintSeen.get(name) ?? new Map<string, number>();
    this.taintSeen.set(name, seen);
    const taints = ((node.spec?.taints ?? []) as Taint[]).filter((t) => t.effect === 'NoExecute');
    const current = new Set(taints.map((t) => `${t.key}=${t.value ?? ''}`));
    for (const id of seen.keys()) if (!current.has(id)) seen.delete(id);
    return taints.map((t) => {
      if (t.timeAdded) return t;
      const id = `${t.key}=${t.value ?? ''}`;
      if (!seen.has(id)) seen.set(id, now);
      return { ...t, timeAdded: new Date(seen.get(id)!).toISOString() };
    });
  }

  private async evict(pod: Pod, node: NodeObject): Promise<void> {
    const key = objectKey(pod);
    try {
      await this.client.delete(PODS, pod.metadata.namespace, pod.metadata.name!);
    } catch (err) {
      if (isReason(err, 'NotFound')) return;
      throw err;
    }
    this.log.info({ pod: key, node: node.metadata.name }, 'evicted pod from tainted node');
    this.events.normal(pod, 'TaintManagerEviction', `Marking for deletion Pod ${key}`);
  }
}

function readyStatus(node: NodeObject): string | undefined {
  return node.status?.conditions?.find((c) => c.type === 'Ready')?.status;
}
