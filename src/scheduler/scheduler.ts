import { byGroupResource } from '../api/resources.js';
import { nowTimestamp, objectKey, type NodeObject, type Pod } from '../api/types.js';
import { EventQueue } from '../client/event-queue.js';
import { EventRecorder } from '../client/events.js';
import type { InformerFactory } from '../client/factory.js';
import type { Informer } from '../client/informer.js';
import { isReason, KubeClient } from '../client/rest.js';
import { componentLogger } from '../log.js';
import { deepEqual } from '../util/equal.js';
import { defaultBinder } from './binder.js';
import { Extensions } from './extensions.js';
import { Framework, unschedulableMessage } from './framework/framework.js';
import { Code, type CycleState, type Plugin } from './framework/interface.js';
import { NodeInfo } from './framework/nodeinfo.js';
import { NodeSnapshot } from './framework/snapshot.js';
import { Nominator } from './nominator.js';
import { defaultPlugins } from './plugins/registry.js';
import { DefaultPreemption } from './preemption.js';
import { SchedulingQueue, systemClock, type Clock, type QueuedPod } from './queue.js';

/**
 * The scheduler binds each pending pod to a node. It keeps an in-memory snapshot of every
 * node with the requests of the pods on it, takes pods from the scheduling queue one at a
 * time (highest priority first), filters and scores the nodes, counts the pod on the chosen
 * node at once ("assumes" it), runs the reserve plugins and binds in the background, so the
 * next pod is placed without waiting for the API. A failed bind unreserves, forgets the
 * assumption and retries the pod after backoff. A pod that fits nowhere may preempt
 * lower-priority pods (post-filter), and otherwise waits in the queue's unschedulable set
 * until a cluster event could make it fit.
 *
 * One scheduler instance must be active per cluster: run several behind a LeaderElector.
 */

const SCHEDULER_NAME = 'default-scheduler';
const pods = () => byGroupResource.get('/pods')!;
/** How often backoffs and the unschedulable flush are checked. */
const TICK_MS = 200;
/**
 * Binds in flight beyond which the loop waits for one to settle before it places the next
 * pod. The client has 64 connections; binds past that only queue inside the client, where
 * they hold their assumptions longer and delay every other request made through it.
 */
const MAX_BINDS_IN_FLIGHT = 256;
/** The scheduling loop yields to I/O (watch events, bind responses) at least this often. */
const YIELD_EVERY_MS = 10;

export interface SchedulerOptions {
  /** Filter and score plugins; the default profile when unset. */
  plugins?: Plugin[];
  /**
   * Reserve, post-filter and bind plugins run before the built-in ones (preemption and the
   * default binder); a bind plugin here that handles a pod replaces the default binder.
   */
  extensions?: Plugin[];
  /** Disables the built-in preemption post-filter. */
  disablePreemption?: boolean;
  clock?: Clock;
}

export class Scheduler {
  private readonly log = componentLogger('scheduler');
  private readonly pods: Informer<Pod>;
  private readonly nodes: Informer<NodeObject>;
  private readonly queue: SchedulingQueue;
  private readonly snapshot = new NodeSnapshot();
  /** Pod key → node it is counted on (bound or assumed), with the version counted. */
  private readonly placed = new Map<string, { node: string; pod: Pod }>();
  /** Pods counted on nodes the snapshot does not have (yet), by node name. */
  private readonly orphans = new Map<string, Map<string, Pod>>();
  private readonly nominator = new Nominator();
  private readonly framework: Framework;
  private readonly extensions: Extensions;
  /** Events go through a client (connection pool) of their own, never queued before binds. */
  private readonly eventClient: KubeClient;
  private readonly events: EventRecorder;
  /**
   * Scheduled and FailedScheduling Events are written in the background from a bounded
   * queue and dropped (counted) when it is full, as Kubernetes' event broadcaster does: in
   * a burst, binds matter more than their Events.
   */
  private readonly eventQueue: EventQueue;
  private readonly binds = new Set<Promise<void>>();
  /** Wakes the loop waiting for a bind to settle (see MAX_BINDS_IN_FLIGHT). */
  private bindSettled?: () => void;
  private tickTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly client: KubeClient,
    informers: InformerFactory,
    opts: SchedulerOptions = {},
  ) {
    this.pods = informers.informer<Pod>(pods());
    this.nodes = informers.informer<NodeObject>(byGroupResource.get('/nodes')!);
    this.eventClient = new KubeClient(client.config);
    this.events = new EventRecorder(this.eventClient, SCHEDULER_NAME);
    this.eventQueue = new EventQueue(this.events);
    this.queue = new SchedulingQueue(opts.clock ?? systemClock);
    this.framework = new Framework(opts.plugins ?? defaultPlugins());
    const builtIn: Plugin[] = [defaultBinder(client)];
    if (!opts.disablePreemption) {
      const deps = { framework: this.framework, client, events: this.events, log: this.log };
      builtIn.unshift(new DefaultPreemption(deps));
    }
    this.extensions = new Extensions([...(opts.extensions ?? []), ...builtIn]);
  }

  /** Registers event handlers; call before the informers start. */
  register(): void {
    this.nodes.addHandlers({
      onAdd: (n) => this.nodeAdded(n),
      onUpdate: (o, n) => this.nodeUpdated(o, n),
      onDelete: (n) => this.nodeDeleted(n),
    });
    this.pods.addHandlers({
      onAdd: (p) => this.podChanged(undefined, p),
      onUpdate: (o, p) => this.podChanged(o, p),
      onDelete: (p) => this.podDeleted(p),
    });
  }

  /**
   * Re-reads every pod from the API and counts the bound ones, so a scheduler that has just
   * become leader sees the binds its predecessor made even if its watch lags behind.
   */
  async syncBoundPods(): Promise<void> {
    const list = await this.client.list<Pod>(pods());
    const seen = Number(this.pods.lastSyncResourceVersion) || 0;
    for (const pod of list.items) {
      if (!pod.spec.nodeName || isTerminal(pod)) continue;
      const key = objectKey(pod);
      const rv = Number(pod.metadata.resourceVersion);
      const cached = this.pods.get(key);
      // Where the informer is at least as new (it may even have seen the pod deleted), it wins.
      if (cached ? Number(cached.metadata.resourceVersion) >= rv : seen >= rv) continue;
      this.place(key, pod.spec.nodeName, pod);
    }
  }

  /** Schedules pods until stop(); resolves once the binds in flight have settled. */
  async run(): Promise<void> {
    if (this.stopped) return;
    this.tickTimer = setInterval(() => this.queue.tick(), TICK_MS);
    let lastYield = performance.now();
    while (!this.stopped) {
      const info = await this.queue.pop();
      if (!info) break;
      try {
        await this.scheduleOne(info);
      } catch (err) {
        this.log.error({ err, pod: info.key }, 'scheduling failed');
        this.queue.requeueBackoff(info);
      }
      if (this.binds.size >= MAX_BINDS_IN_FLIGHT) {
        await new Promise<void>((resolve) => (this.bindSettled = resolve));
        lastYield = performance.now();
      } else if (performance.now() - lastYield > YIELD_EVERY_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        lastYield = performance.now();
      }
    }
    await Promise.allSettled([...this.binds]);
    await this.eventQueue.drain();
    if (this.eventQueue.dropped > 0) {
      this.log.warn(
        { dropped: this.eventQueue.dropped },
        'events dropped while their queue was full',
      );
    }
    this.eventClient.close();
  }

  /** Stops taking pods from the queue; run() resolves after the binds in flight settle. */
  stop(): void {
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.queue.close();
  }

  /** Nodes and what the scheduler counts on them; for tests and diagnostics. */
  nodeInfos(): NodeInfo[] {
    return [...this.snapshot.values()];
  }

  private nodeAdded(node: NodeObject): void {
    const name = node.metadata.name!;
    const info = new NodeInfo(node);
    for (const pod of this.orphans.get(name)?.values() ?? []) info.addPod(pod);
    this.orphans.delete(name);
    this.snapshot.set(name, info);
    this.queue.moveAll();
  }

  private nodeDeleted(node: NodeObject): void {
    const name = node.metadata.name!;
    const info = this.snapshot.get(name);
    if (!info) return;
    this.snapshot.delete(name);
    this.orphans.set(name, new Map([...info.pods].map(([key, p]) => [key, p.pod])));
  }

  private nodeUpdated(old: NodeObject, node: NodeObject): void {
    const info = this.snapshot.get(node.metadata.name!);
    if (!info) return this.nodeAdded(node);
    info.setNode(node);
    if (nodeSchedulingChanged(old, node)) this.queue.moveAll();
  }

  private podChanged(old: Pod | undefined, pod: Pod): void {
    const key = objectKey(pod);
    if (pod.spec.nodeName) {
      this.queue.delete(key);
      this.nominator.delete(key);
      if (isTerminal(pod)) {
        if (this.unplace(key)) this.queue.moveAll();
        return;
      }
      this.place(key, pod.spec.nodeName, pod);
      if (old && !deepEqual(old.metadata.labels, pod.metadata.labels)) this.queue.moveAll();
      return;
    }
    if (pod.metadata.deletionTimestamp || isTerminal(pod) || !this.isResponsibleFor(pod)) {
      this.queue.delete(key);
      this.nominator.delete(key);
      return;
    }
    this.nominator.set(pod, pod.status?.nominatedNodeName);
    // A pod whose bind is in flight is not queued again; the bind's outcome decides.
    if (!this.placed.has(key)) this.queue.update(pod);
  }

  private podDeleted(pod: Pod): void {
    const key = objectKey(pod);
    this.queue.delete(key);
    this.nominator.delete(key);
    if (this.unplace(key)) this.queue.moveAll();
  }

  private isResponsibleFor(pod: Pod): boolean {
    return (pod.spec.schedulerName ?? SCHEDULER_NAME) === SCHEDULER_NAME;
  }

  private place(key: string, nodeName: string, pod: Pod): void {
    const current = this.placed.get(key);
    if (current?.node === nodeName) return;
    if (current) this.uncount(key, current.node);
    this.placed.set(key, { node: nodeName, pod });
    const info = this.snapshot.get(nodeName);
    if (info) info.addPod(pod);
    else {
      let orphans = this.orphans.get(nodeName);
      if (!orphans) this.orphans.set(nodeName, (orphans = new Map()));
      orphans.set(key, pod);
    }
  }

  private uncount(key: string, nodeName: string): void {
    const info = this.snapshot.get(nodeName);
    if (info) info.removePod(key);
    else this.orphans.get(nodeName)?.delete(key);
  }

  /** Stops counting a pod; true if it was counted. */
  private unplace(key: string): boolean {
    const current = this.placed.get(key);
    if (!current) return false;
    this.placed.delete(key);
    this.uncount(key, current.node);
    return true;
  }

  private async scheduleOne(info: QueuedPod): Promise<void> {
    const pod = this.pods.get(info.key) ?? info.pod;
    if (pod.spec.nodeName || pod.metadata.deletionTimestamp || this.placed.has(info.key)) {
      this.queue.done(info.key);
      return;
    }
    const result = this.framework.schedule(pod, this.nominator.view(pod, this.snapshot.list()));
    if (result.node) return this.assume(info, pod, result.node.name);

    const message = unschedulableMessage(result);
    if (result.resolvable && (await this.preempt(pod))) {
      this.queue.requeueUnschedulable(info);
      return;
    }
    this.queue.requeueUnschedulable(info);
    void this.reportUnschedulable(pod, message);
  }

  /** Runs the post-filters; true when one nominated a node for the pod. */
  private async preempt(pod: Pod): Promise<boolean> {
    const state: CycleState = new Map();
    const nodes = [...this.snapshot.values()];
    if (this.framework.runPreFilters(state, pod, nodes)) return false;
    const result = await this.extensions.postFilter(state, pod, nodes);
    const key = objectKey(pod);
    if (result.status.code !== Code.Success || !result.nominatedNodeName) {
      this.log.debug({ pod: key, reasons: result.status.reasons }, 'preemption did not help');
      return false;
    }
    const node = result.nominatedNodeName;
    this.nominator.set(pod, node);
    this.log.info({ pod: key, node }, 'nominated pod after preemption');
    try {
      const patch = { status: { nominatedNodeName: node } };
      await this.client.patch(
        pods(),
        pod.metadata.namespace,
        pod.metadata.name!,
        patch,
        'merge',
        'status',
      );
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
    return true;
  }

  /** Counts the pod on the node, reserves it and binds in the background. */
  private assume(info: QueuedPod, pod: Pod, nodeName: string): void {
    const key = info.key;
    const state: CycleState = new Map();
    this.place(key, nodeName, pod);
    const reserved = this.extensions.reserve(state, pod, nodeName);
    if (reserved.code !== Code.Success) {
      this.unplace(key);
      this.log.warn({ pod: key, node: nodeName, reasons: reserved.reasons }, 'reserve failed');
      this.queue.requeueBackoff(info);
      return;
    }
    this.nominator.delete(key);
    this.log.debug({ pod: key, node: nodeName }, 'assumed pod');
    const bind = this.bind(info, state, pod, nodeName);
    this.binds.add(bind);
    const settled = () => {
      this.binds.delete(bind);
      const wake = this.bindSettled;
      this.bindSettled = undefined;
      wake?.();
    };
    void bind.then(settled, (err) => {
      // A fault of a bind plugin: whether the bind landed is unknown, so ask the informer.
      settled();
      this.log.error({ err, pod: key, node: nodeName }, 'bind failed');
      this.forget(key);
      this.queue.requeueBackoff(info);
    });
  }

  private async bind(info: QueuedPod, state: CycleState, pod: Pod, nodeName: string) {
    const key = info.key;
    const status = await this.extensions.bind(state, pod, nodeName);
    if (status.code === Code.Success) {
      this.queue.done(key);
      // Debug, as Kubernetes logs binds at V(2): at thousands a second, an info line per
      // bind would cost the scheduler thread more than the bind's own request.
      this.log.debug({ pod: key, node: nodeName }, 'bound pod');
      this.event(pod, 'Normal', 'Scheduled', `Successfully assigned ${key} to ${nodeName}`);
      return;
    }
    this.extensions.unreserve(state, pod, nodeName);
    this.forget(key);
    const err = status.reasons.join('; ');
    if (status.code === Code.UnschedulableAndUnresolvable) {
      this.log.debug({ pod: key, err }, 'bind refused; pod changed meanwhile');
    } else {
      this.log.warn({ pod: key, node: nodeName, err }, 'bind failed; retrying');
    }
    this.queue.requeueBackoff(info);
  }

  /**
   * Drops an assumption after a failed bind. If the informer already shows the pod bound
   * (the bind did land, only its answer was lost) it stays counted where the API says.
   */
  private forget(key: string): void {
    const current = this.pods.get(key);
    if (current?.spec.nodeName && !isTerminal(current)) {
      this.place(key, current.spec.nodeName, current);
      this.queue.delete(key);
      return;
    }
    this.unplace(key);
  }

  private event(pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.eventQueue.record(pod, type, reason, message);
  }

  private async reportUnschedulable(pod: Pod, message: string): Promise<void> {
    const key = objectKey(pod);
    const existing = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    this.log.info({ pod: key, reason: message }, 'pod is unschedulable');
    this.event(pod, 'Warning', 'FailedScheduling', message);
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
        pods(),
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

function isTerminal(pod: Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/** Whether a node change could let a pod fit that did not before (or the reverse). */
function nodeSchedulingChanged(old: NodeObject, node: NodeObject): boolean {
  const ready = (n: NodeObject) =>
    n.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? 'Unknown';
  return (
    !deepEqual(old.status?.allocatable, node.status?.allocatable) ||
    !deepEqual(old.metadata.labels, node.metadata.labels) ||
    !deepEqual(old.spec?.taints, node.spec?.taints) ||
    Boolean(old.spec?.unschedulable) !== Boolean(node.spec?.unschedulable) ||
    ready(old) !== ready(node)
  );
}
