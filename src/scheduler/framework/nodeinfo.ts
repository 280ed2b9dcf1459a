import { cpuMillis, parseQuantity } from '../../api/quantity.js';
import { objectKey, type NodeObject, type Pod, type Taint } from '../../api/types.js';

/**
 * What the scheduler knows of one node: its allocatable resources and the sum of the
 * requests of the pods bound or assumed to it, the host ports those pods hold and which of
 * them carry pod (anti-)affinity, all kept up to date incrementally so a filter never
 * re-adds a node's pods.
 */

export interface Resources {
  milliCpu: number;
  memory: number;
  pods: number;
  ephemeralStorage: number;
  /**
   * Extended resources (any name with a '/', e.g. example.com/gpu) and hugepages-*, in base
   * units; undefined when there are none, so plain pods allocate nothing for them.
   */
  scalar?: Record<string, number>;
}

export function emptyResources(): Resources {
  return { milliCpu: 0, memory: 0, pods: 0, ephemeralStorage: 0 };
}

/** Whether a resource name is counted as a scalar (extended or hugepages) resource. */
export function isScalarResource(name: string): boolean {
  return name.includes('/') || name.startsWith('hugepages-');
}

function addScalars(into: Resources, req: Record<string, string>, combine: 'sum' | 'max'): void {
  for (const [name, text] of Object.entries(req)) {
    if (!isScalarResource(name)) continue;
    const value = parseQuantity(text) ?? 0;
    const scalar = (into.scalar ??= {});
    const old = scalar[name] ?? 0;
    scalar[name] = combine === 'sum' ? old + value : Math.max(old, value);
  }
}

/** A pod's effective requests: the sum over containers, or the largest init container. */
export function podRequests(pod: Pod): Resources {
  const sum = emptyResources();
  for (const c of pod.spec?.containers ?? []) {
    const req = c.resources?.requests;
    if (!req) continue;
    sum.milliCpu += cpuMillis(req.cpu);
    sum.memory += parseQuantity(req.memory ?? 0) ?? 0;
    sum.ephemeralStorage += parseQuantity(req['ephemeral-storage'] ?? 0) ?? 0;
    addScalars(sum, req, 'sum');
  }
  for (const c of pod.spec?.initContainers ?? []) {
    const req = c.resources?.requests;
    if (!req) continue;
    sum.milliCpu = Math.max(sum.milliCpu, cpuMillis(req.cpu));
    sum.memory = Math.max(sum.memory, parseQuantity(req.memory ?? 0) ?? 0);
    addScalars(sum, req, 'max');
  }
  sum.pods = 1;
  return sum;
}

/** CPU (millicores) and memory (bytes) a container without requests counts as, for scoring. */
export const DEFAULT_MILLI_CPU_REQUEST = 100;
export const DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024;

/** CPU and memory requests with defaults for containers that set none, used for scoring. */
export interface NonZeroRequests {
  milliCpu: number;
  memory: number;
}

/**
 * A pod's cpu and memory requests where each container without a cpu or memory request
 * counts as 100m or 200Mi, as Kubernetes scores them: otherwise pods without requests
 * would all look free and pile onto one node. Init containers count by their maximum.
 */
export function podNonZeroRequests(pod: Pod): NonZeroRequests {
  const sum = { milliCpu: 0, memory: 0 };
  const one = (req: Record<string, string> | undefined) => ({
    milliCpu: req?.cpu !== undefined ? cpuMillis(req.cpu) : DEFAULT_MILLI_CPU_REQUEST,
    memory: req?.memory !== undefined ? (parseQuantity(req.memory) ?? 0) : DEFAULT_MEMORY_REQUEST,
  });
  for (const c of pod.spec?.containers ?? []) {
    const r = one(c.resources?.requests);
    sum.milliCpu += r.milliCpu;
    sum.memory += r.memory;
  }
  for (const c of pod.spec?.initContainers ?? []) {
    const r = one(c.resources?.requests);
    sum.milliCpu = Math.max(sum.milliCpu, r.milliCpu);
    sum.memory = Math.max(sum.memory, r.memory);
  }
  return sum;
}

export function nodeAllocatable(node: NodeObject): Resources {
  const a = node.status?.allocatable ?? node.status?.capacity ?? {};
  const r: Resources = {
    milliCpu: cpuMillis(a.cpu ?? 0),
    memory: parseQuantity(a.memory ?? 0) ?? 0,
    pods: parseQuantity(a.pods ?? 110) ?? 110,
    ephemeralStorage: parseQuantity(a['ephemeral-storage'] ?? 0) ?? 0,
  };
  addScalars(r, a, 'sum');
  return r;
}

/** A host port a pod holds: protocol, host IP ("0.0.0.0" for all) and port. */
export interface HostPort {
  protocol: string;
  hostIP: string;
  port: number;
}

/** The host ports a pod asks for (containers' ports with a hostPort), with defaults filled. */
export function podHostPorts(pod: Pod): HostPort[] {
  const ports: HostPort[] = [];
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (!p.hostPort || p.hostPort <= 0) continue;
      const hostIP = (p as { hostIP?: string }).hostIP || '0.0.0.0';
      ports.push({ protocol: p.protocol || 'TCP', hostIP, port: p.hostPort });
    }
  }
  return ports;
}

/** What selectors match a pod on: its namespace and labels. */
export interface PodLabels {
  namespace: string;
  labels: Record<string, string> | undefined;
}

/**
 * A pod counted on a node, with its requests worked out once and its namespace and labels
 * at hand (selector loops over every pod of the cluster read nothing else).
 */
export interface PodInfo extends PodLabels {
  pod: Pod;
  requests: Resources;
  /** Requests with defaults for containers that set none (for scoring). */
  nonZero: NonZeroRequests;
  /** Whether the pod is being deleted (topology spread does not count it). */
  terminating: boolean;
}

export function podLabels(pod: Pod): PodLabels {
  return { namespace: pod.metadata.namespace ?? 'default', labels: pod.metadata.labels };
}

function hasAffinity(pod: Pod): boolean {
  const a = pod.spec?.affinity;
  return !!a && (a.podAffinity !== undefined || a.podAntiAffinity !== undefined);
}

function hasRequiredAntiAffinity(pod: Pod): boolean {
  const terms = pod.spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  return !!terms && terms.length > 0;
}

/**
 * Bumped whenever any NodeInfo gains or loses a pod with pod (anti-)affinity, so a plugin
 * can keep a list of the nodes holding such pods and rebuild it only when this changes.
 */
let affinityGeneration = 0;

export function podAffinityGeneration(): number {
  return affinityGeneration;
}

export class NodeInfo {
  readonly requested = emptyResources();
  /** Sum of the pods' non-zero cpu and memory requests (see podNonZeroRequests). */
  readonly nonZeroRequested: NonZeroRequests = { milliCpu: 0, memory: 0 };
  /** The pods bound or assumed to the node, by namespace/name. */
  readonly pods = new Map<string, PodInfo>();
  /** Pods with any pod affinity or anti-affinity (for the inter-pod affinity plugin). */
  readonly podsWithAffinity = new Map<string, PodInfo>();
  /** Pods with required anti-affinity: they repel incoming pods their terms match. */
  readonly podsWithRequiredAntiAffinity = new Map<string, PodInfo>();
  /** Host ports in use: "protocol/port" → host IP → how many pods hold it. */
  readonly usedPorts = new Map<string, Map<string, number>>();
  allocatable: Resources;
  ready: boolean;
  /** The node's labels, spec.unschedulable and taints, read once per node update. */
  labels: Record<string, string>;
  unschedulable: boolean;
  taints: readonly Taint[] | undefined;

  constructor(public node: NodeObject) {
    this.allocatable = nodeAllocatable(node);
    this.ready = isNodeReady(node);
    this.labels = node.metadata.labels ?? {};
    this.unschedulable = node.spec?.unschedulable === true;
    this.taints = node.spec?.taints?.length ? node.spec.taints : undefined;
  }

  get name(): string {
    return this.node.metadata.name!;
  }

  setNode(node: NodeObject): void {
    this.node = node;
    this.allocatable = nodeAllocatable(node);
    this.ready = isNodeReady(node);
    this.labels = node.metadata.labels ?? {};
    this.unschedulable = node.spec?.unschedulable === true;
    this.taints = node.spec?.taints?.length ? node.spec.taints : undefined;
  }

  /** Counts a pod on the node; a pod already counted is not counted twice. */
  addPod(pod: Pod): void {
    const key = objectKey(pod);
    if (this.pods.has(key)) return;
    const info: PodInfo = {
      pod,
      requests: podRequests(pod),
      nonZero: podNonZeroRequests(pod),
      namespace: pod.metadata.namespace ?? 'default',
      labels: pod.metadata.labels,
      terminating: pod.metadata.deletionTimestamp !== undefined,
    };
    this.pods.set(key, info);
    this.account(info, 1);
    if (hasAffinity(pod)) {
      affinityGeneration++;
      this.podsWithAffinity.set(key, info);
      if (hasRequiredAntiAffinity(pod)) this.podsWithRequiredAntiAffinity.set(key, info);
    }
  }

  removePod(key: string): void {
    const info = this.pods.get(key);
    if (!info) return;
    this.pods.delete(key);
    if (this.podsWithAffinity.delete(key)) affinityGeneration++;
    this.podsWithRequiredAntiAffinity.delete(key);
    this.account(info, -1);
  }

  private account(info: PodInfo, sign: 1 | -1): void {
    const { requests } = info;
    this.requested.milliCpu += sign * requests.milliCpu;
    this.requested.memory += sign * requests.memory;
    this.requested.pods += sign * requests.pods;
    this.requested.ephemeralStorage += sign * requests.ephemeralStorage;
    this.nonZeroRequested.milliCpu += sign * info.nonZero.milliCpu;
    this.nonZeroRequested.memory += sign * info.nonZero.memory;
    if (requests.scalar) {
      const scalar = (this.requested.scalar ??= {});
      for (const [name, value] of Object.entries(requests.scalar)) {
        scalar[name] = (scalar[name] ?? 0) + sign * value;
      }
    }
    for (const p of podHostPorts(info.pod)) {
      const slot = `${p.protocol}/${p.port}`;
      const ips = this.usedPorts.get(slot) ?? new Map<string, number>();
      const count = (ips.get(p.hostIP) ?? 0) + sign;
      if (count > 0) ips.set(p.hostIP, count);
      else ips.delete(p.hostIP);
      if (ips.size > 0) this.usedPorts.set(slot, ips);
      else this.usedPorts.delete(slot);
    }
  }

  /**
   * The snapshot node this one is a copy of (see clone), so plugins that counted the
   * snapshot's pods in pre-filter can correct their counts for the copy's pods.
   */
  cloneOf?: NodeInfo;

  /** A copy whose pods can be added and removed without touching this one (preemption). */
  clone(): NodeInfo {
    const copy = new NodeInfo(this.node);
    copy.cloneOf = this.cloneOf ?? this;
    for (const info of this.pods.values()) copy.addPod(info.pod);
    return copy;
  }
}

export function isNodeReady(node: NodeObject): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}
