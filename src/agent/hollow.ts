import { byGroupResource } from '../api/resources.js';
import {
  nowTimestamp,
  objectKey,
  type Condition,
  type ContainerStatus,
  type NodeObject,
  type Pod,
  type PodStatus,
} from '../api/types.js';
import { Informer } from '../client/informer.js';
import { isReason, type KubeClient } from '../client/rest.js';
import { runWorkers, WorkQueue } from '../client/workqueue.js';
import { componentLogger } from '../log.js';
import { AGENT_VERSION, microTime } from './node-status.js';

/**
 * Hollow nodes: many Node objects served by one process that runs no containers. Each node
 * is registered, keeps its Lease in kube-node-lease fresh and sends an occasional status
 * heartbeat; every pod bound to one of them is reported Running with a made-up pod IP, and
 * a pod being deleted is deleted for good at once. They exist to load the control plane
 * (scheduler, controllers, API server) as thousands of real nodes would.
 */

export interface HollowAgentOptions {
  client: KubeClient;
  /** How many nodes to run, named `${namePrefix}0` … `${namePrefix}${count - 1}`. */
  count: number;
  /** Default `hollow-`. */
  namePrefix?: string;
  /** Capacity each node reports; defaults 4 cpus, 16Gi, 110 pods. */
  cpu?: string;
  memory?: string;
  maxPods?: number;
  /** Pod status workers shared by all nodes; default 16. */
  workers?: number;
  /** Period of each node's Lease renewal; default 10 s. */
  leaseRenewMs?: number;
  /** Period of each node's status heartbeat; default 60 s. */
  statusEveryMs?: number;
}

/** The label every hollow node carries, so they are easy to select (and to clean up). */
export const HOLLOW_LABEL = 'flyces.io/hollow';

const LEASE_SECONDS = 40;
const LEASE_RENEW_MS = 10_000;
const STATUS_EVERY_MS = 60_000;
/** Each node owns one /24 of 10.64.0.0/10 for its pods, which bounds the node count. */
const MAX_NODES = 16_384;
const MAX_PODS_PER_NODE = 254;
/**
 * Pod status reports in flight at once. Each is one small PATCH; with a few the reports
 * trail the bindings by seconds when thousands of pods are scheduled a minute.
 */
const STATUS_WORKERS = 16;
/** Node registrations in flight at once at start-up. */
const REGISTER_CONCURRENCY = 16;
/**
 * Lease renewals (and, apart, status heartbeats) in flight at once. Renewals must keep up
 * with count / period (500/s for 5,000 nodes) while a loaded server answers in 50-100 ms:
 * with 8 lanes they fell behind and nodes went NotReady for no fault of their own.
 */
const NODE_UPDATE_LANES = 32;
/** Ticks per period: each tick renews the nodes of one slot, so renewals spread out. */
const SLOTS = 40;

const NODES = byGroupResource.get('/nodes')!;
const PODS = byGroupResource.get('/pods')!;
const LEASES = byGroupResource.get('coordination.k8s.io/leases')!;

interface HollowNode {
  name: string;
  index: number;
  hostIP: string;
  /** First three octets of the node's pod range, e.g. `10.64.3`. */
  podNet: string;
  /** Last octet → uid of the pod holding that address. */
  ips: Map<number, string>;
  readySince: string;
}

/** The internal IP of node number `index`, in 172.16.0.0/12. */
export function hollowHostIP(index: number): string {
  const n = index + 1;
  return `172.${16 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
}

/** The first three octets of the /24 that node number `index` gives its pods. */
export function hollowPodNet(index: number): string {
  return `10.${64 + (index >> 8)}.${index & 255}`;
}

/** The pod status a hollow node reports for a pod it "runs". */
export function runningStatus(pod: Pod, hostIP: string, podIP: string): PodStatus {
  const now = nowTimestamp();
  const since = pod.status?.startTime ?? now;
  const condition = (type: string): Condition => ({
    type,
    status: 'True',
    lastProbeTime: null,
    lastTransitionTime: since,
  });
  const status = (name: string, image: string, running: boolean): ContainerStatus => ({
    name,
    image,
    imageID: `hollow://${image}`,
    containerID: `hollow://${pod.metadata.uid}/${name}`,
    ready: running,
    started: running,
    restartCount: 0,
    state: running
      ? { running: { startedAt: since } }
      : { terminated: { exitCode: 0, reason: 'Completed', startedAt: since, finishedAt: since } },
    lastState: {},
  });
  const result: PodStatus = {
    phase: 'Running',
    conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map(condition),
    hostIP,
    podIP,
    podIPs: [{ ip: podIP }],
    startTime: since,
    containerStatuses: pod.spec.containers.map((c) => status(c.name, c.image, true)),
  };
  if (pod.spec.initContainers?.length)
    result.initContainerStatuses = pod.spec.initContainers.map((c) =>
      status(c.name, c.image, false),
    );
  return result;
}

/**
 * The parts of a pod a hollow node reads: identity, deletion, node, container names and
 * images, and status. With 150,000 pods cached the rest (labels, owners, defaults) is most
 * of the memory.
 */
export function slimPod(pod: Pod): Pod {
  const { name, namespace, uid, resourceVersion, deletionTimestamp } = pod.metadata;
  const images = (cs: Pod['spec']['containers'] | undefined) =>
    cs?.map((c) => ({ name: c.name, image: c.image }));
  const spec = { nodeName: pod.spec.nodeName, containers: images(pod.spec.containers)! };
  const slim: Pod = {
    apiVersion: pod.apiVersion,
    kind: pod.kind,
    metadata: { name, namespace, uid, resourceVersion, deletionTimestamp },
    spec: pod.spec.initContainers
      ? { ...spec, initContainers: images(pod.spec.initContainers) }
      : spec,
  };
  if (pod.status) slim.status = pod.status;
  return slim;
}

/** Whether a pod already shows the status a hollow node would report for it. */
export function isReportedRunning(pod: Pod, hostIP: string): boolean {
  const s = pod.status;
  if (s?.phase !== 'Running' || s.hostIP !== hostIP || !s.podIP) return false;
  const conditionsTrue = ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].every((type) =>
    s.conditions?.some((c) => c.type === type && c.status === 'True'),
  );
  const running = pod.spec.containers.every((c) =>
    s.containerStatuses?.some((cs) => cs.name === c.name && cs.ready && cs.state.running),
  );
  return conditionsTrue && running;
}

/**
 * Runs `count` hollow nodes against one API server with one pod informer and one work
 * queue for all of them. `start()` resolves once every node is registered with a Lease and
 * the pod cache has synced; `stop()` ends all activity but leaves the Nodes in place, as the
 * real agent does.
 */
export class HollowAgent {
  private readonly log = componentLogger('hollow-agent');
  private readonly nodes = new Map<string, HollowNode>();
  private readonly pods: Informer<Pod>;
  private readonly queue = new WorkQueue(500, 30_000);
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly client: KubeClient;
  private workers?: Promise<void>;
  private stopped = false;

  constructor(private readonly opts: HollowAgentOptions) {
    if (!Number.isInteger(opts.count) || opts.count < 1 || opts.count > MAX_NODES)
      throw new Error(`hollow node count must be an integer from 1 to ${MAX_NODES}`);
    if ((opts.maxPods ?? 110) > MAX_PODS_PER_NODE)
      throw new Error(`hollow nodes run at most ${MAX_PODS_PER_NODE} pods each`);
    this.client = opts.client;
    const prefix = opts.namePrefix ?? 'hollow-';
    const readySince = nowTimestamp();
    for (let index = 0; index < opts.count; index++) {
      const name = `${prefix}${index}`;
      const hostIP = hollowHostIP(index);
      const node = { name, index, hostIP, podNet: hollowPodNet(index), ips: new Map() };
      this.nodes.set(name, { ...node, readySince });
    }
    // Only bound pods concern a node; and only the fields below concern a hollow one.
    this.pods = new Informer<Pod>(this.client, PODS, {
      fieldSelector: 'spec.nodeName!=',
      transform: slimPod,
    });
  }

  /** The names of the nodes this agent runs. */
  get nodeNames(): string[] {
    return [...this.nodes.keys()];
  }

  /** Registers every node and its Lease, then starts reporting pods and heartbeats. */
  async start(): Promise<void> {
    await this.forEachLimited([...this.nodes.values()], async (node) => {
      await this.register(node);
      await this.renewLease(node);
    });
    // stop() during registration: start no loops that nothing would stop.
    if (this.stopped) return;
    this.spread(this.opts.leaseRenewMs ?? LEASE_RENEW_MS, (n) => this.renewLease(n));
    this.spread(this.opts.statusEveryMs ?? STATUS_EVERY_MS, (n) => this.heartbeat(n));
    this.pods.addHandlers({
      onAdd: (p) => this.podChanged(p),
      onUpdate: (_o, p) => this.podChanged(p),
      onDelete: (p) => this.podGone(p),
    });
    this.pods.start();
    await this.pods.hasSynced();
    this.workers = runWorkers(
      this.queue,
      this.opts.workers ?? STATUS_WORKERS,
      (key) => this.syncPod(key),
      (key, err) => this.log.warn({ pod: key, err: (err as Error).message }, 'pod sync failed'),
    );
    this.log.info({ nodes: this.nodes.size }, 'hollow nodes started');
  }

  /** Stops renewals, heartbeats and pod reporting; resolves when the workers are idle. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.pods.stop();
    this.queue.shutDown();
    await this.workers;
  }

  private async forEachLimited<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    const lane = async () => {
      while (next < items.length && !this.stopped) await fn(items[next++]);
    };
    await Promise.all(Array.from({ length: REGISTER_CONCURRENCY }, lane));
  }

  /**
   * Runs `fn` for every node once per `periodMs`, node i in slot i mod SLOTS, so the
   * requests of thousands of nodes are spread over the period instead of sent in a burst.
   * At most NODE_UPDATE_LANES of them are in flight: when the server answers slower than
   * the period asks for, renewals queue up (a node waits in the queue at most once) and
   * come later rather than crowding out the pod status reports.
   */
  private spread(periodMs: number, fn: (node: HollowNode) => Promise<void>): void {
    const slots: HollowNode[][] = Array.from({ length: SLOTS }, () => []);
    for (const node of this.nodes.values()) slots[node.index % SLOTS].push(node);
    const due = new Set<HollowNode>();
    let lanes = 0;
    const lane = async () => {
      lanes++;
      for (let node = first(due); node && !this.stopped; node = first(due)) {
        due.delete(node);
        await fn(node).catch((err) =>
          this.log.warn({ node: node!.name, err: (err as Error).message }, 'node update failed'),
        );
      }
      lanes--;
    };
    let tick = 0;
    const timer = setInterval(() => {
      for (const node of slots[tick++ % SLOTS]) due.add(node);
      while (lanes < NODE_UPDATE_LANES && lanes < due.size) void lane();
    }, periodMs / SLOTS);
    this.timers.push(timer);
  }

  private nodeObject(node: HollowNode): NodeObject {
    const arch = process.arch === 'x64' ? 'amd64' : process.arch;
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: node.name,
        labels: {
          'kubernetes.io/hostname': node.name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': arch,
          [HOLLOW_LABEL]: 'true',
        },
      },
      spec: { podCIDR: `${node.podNet}.0/24`, podCIDRs: [`${node.podNet}.0/24`] },
      status: this.nodeStatus(node),
    };
  }

  private nodeStatus(node: HollowNode): NodeObject['status'] {
    const now = nowTimestamp();
    const cap = {
      cpu: this.opts.cpu ?? '4',
      memory: this.opts.memory ?? '16Gi',
      pods: String(this.opts.maxPods ?? 110),
      'ephemeral-storage': '100Gi',
    };
    const condition = (type: string, status: Condition['status'], reason: string): Condition => ({
      type,
      status,
      reason,
      message: `hollow node: ${reason}`,
      lastHeartbeatTime: now,
      lastTransitionTime: node.readySince,
    });
    return {
      capacity: cap,
      allocatable: cap,
      conditions: [
        condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory'),
        condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure'),
        condition('PIDPressure', 'False', 'KubeletHasSufficientPID'),
        condition('Ready', 'True', 'KubeletReady'),
      ],
      addresses: [
        { type: 'InternalIP', address: node.hostIP },
        { type: 'Hostname', address: node.name },
      ],
      // No agent answers for a hollow node: port 0 keeps the API server from ever dialing
      // its made-up address for logs or exec.
      daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
      nodeInfo: {
        machineID: '',
        systemUUID: '',
        bootID: '',
        kernelVersion: 'hollow',
        osImage: 'flyCes hollow node',
        containerRuntimeVersion: 'hollow://0.1.0',
        kubeletVersion: AGENT_VERSION,
        kubeProxyVersion: '',
        operatingSystem: 'linux',
        architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      },
    };
  }

  private async register(node: HollowNode): Promise<void> {
    const object = this.nodeObject(node);
    try {
      await this.client.create(NODES, object);
    } catch (err) {
      if (!isReason(err, 'AlreadyExists')) throw err;
      const labels = object.metadata.labels;
      await this.client.patch(NODES, undefined, node.name, { metadata: { labels } }, 'merge');
    }
    await this.heartbeat(node);
  }

  private async heartbeat(node: HollowNode): Promise<void> {
    const status = this.nodeStatus(node);
    await this.client.patch(NODES, undefined, node.name, { status }, 'merge', 'status');
  }

  private async renewLease(node: HollowNode): Promise<void> {
    const spec = {
      holderIdentity: node.name,
      leaseDurationSeconds: LEASE_SECONDS,
      renewTime: microTime(),
    };
    try {
      await this.client.patch(LEASES, 'kube-node-lease', node.name, { spec }, 'merge');
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
      await this.client.create(LEASES, {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: node.name, namespace: 'kube-node-lease' },
        spec,
      });
    }
  }

  private podChanged(pod: Pod): void {
    if (pod.spec.nodeName && this.nodes.has(pod.spec.nodeName)) this.queue.add(objectKey(pod));
  }

  private podGone(pod: Pod): void {
    const node = pod.spec.nodeName ? this.nodes.get(pod.spec.nodeName) : undefined;
    if (!node) return;
    for (const [octet, uid] of node.ips) if (uid === pod.metadata.uid) node.ips.delete(octet);
  }

  private async syncPod(key: string): Promise<void> {
    const pod = this.pods.get(key);
    const node = pod?.spec.nodeName ? this.nodes.get(pod.spec.nodeName) : undefined;
    if (!pod || !node) return;
    if (pod.metadata.deletionTimestamp) return this.finishDeletion(pod);
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return;
    const podIP = this.claimIP(node, pod);
    if (isReportedRunning(pod, node.hostIP) && pod.status?.podIP === podIP) return;
    const status = runningStatus(pod, node.hostIP, podIP);
    const { namespace, name } = pod.metadata;
    try {
      await this.client.patch(PODS, namespace, name!, { status }, 'merge', 'status');
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
  }

  /** The pod's address in its node's range: the one it already shows if free, else new. */
  private claimIP(node: HollowNode, pod: Pod): string {
    const uid = pod.metadata.uid!;
    for (const [octet, holder] of node.ips) if (holder === uid) return `${node.podNet}.${octet}`;
    const shown = pod.status?.podIP;
    const octet = shown?.startsWith(`${node.podNet}.`) ? Number(shown.split('.')[3]) : undefined;
    if (octet !== undefined && octet >= 1 && octet <= MAX_PODS_PER_NODE && !node.ips.has(octet)) {
      node.ips.set(octet, uid);
      return shown!;
    }
    for (let free = 1; free <= MAX_PODS_PER_NODE; free++) {
      if (node.ips.has(free)) continue;
      node.ips.set(free, uid);
      return `${node.podNet}.${free}`;
    }
    throw new Error(`node ${node.name} has no free pod address`);
  }

  private async finishDeletion(pod: Pod): Promise<void> {
    try {
      await this.client.delete(PODS, pod.metadata.namespace, pod.metadata.name!, {
        gracePeriodSeconds: 0,
        preconditions: { uid: pod.metadata.uid },
      });
    } catch (err) {
      if (!isReason(err, 'NotFound') && !isReason(err, 'Conflict')) throw err;
    }
  }
}

function first<T>(set: Set<T>): T | undefined {
  return set.values().next().value;
}
