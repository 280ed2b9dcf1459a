import { cpuMillis, parseQuantity } from '../../api/quantity.js';
import { objectKey, type NodeObject, type Pod } from '../../api/types.js';

/**
 * What the scheduler knows of one node: its allocatable resources and the sum of the
 * requests of the pods bound or assumed to it, kept up to date incrementally so a filter
 * never re-adds a node's pods.
 */

export interface Resources {
  milliCpu: number;
  memory: number;
  pods: number;
  ephemeralStorage: number;
}

export function emptyResources(): Resources {
  return { milliCpu: 0, memory: 0, pods: 0, ephemeralStorage: 0 };
}

/** A pod's effective requests: the sum over containers, or the largest init container. */
export function podRequests(pod: Pod): Resources {
  const sum = emptyResources();
  for (const c of pod.spec?.containers ?? []) {
    const req = c.resources?.requests ?? {};
    sum.milliCpu += cpuMillis(req.cpu);
    sum.memory += parseQuantity(req.memory ?? 0) ?? 0;
    sum.ephemeralStorage += parseQuantity(req['ephemeral-storage'] ?? 0) ?? 0;
  }
  for (const c of pod.spec?.initContainers ?? []) {
    const req = c.resources?.requests ?? {};
    sum.milliCpu = Math.max(sum.milliCpu, cpuMillis(req.cpu));
    sum.memory = Math.max(sum.memory, parseQuantity(req.memory ?? 0) ?? 0);
  }
  sum.pods = 1;
  return sum;
}

export function nodeAllocatable(node: NodeObject): Resources {
  const a = node.status?.allocatable ?? node.status?.capacity ?? {};
  return {
    milliCpu: cpuMillis(a.cpu ?? 0),
    memory: parseQuantity(a.memory ?? 0) ?? 0,
    pods: parseQuantity(a.pods ?? 110) ?? 110,
    ephemeralStorage: parseQuantity(a['ephemeral-storage'] ?? 0) ?? 0,
  };
}

/** A pod counted on a node, with its requests worked out once. */
export interface PodInfo {
  pod: Pod;
  requests: Resources;
}

export class NodeInfo {
  readonly requested = emptyResources();
  /** The pods bound or assumed to the node, by namespace/name. */
  readonly pods = new Map<string, PodInfo>();
  allocatable: Resources;
  ready: boolean;

  constructor(public node: NodeObject) {
    this.allocatable = nodeAllocatable(node);
    this.ready = isNodeReady(node);
  }

  get name(): string {
    return this.node.metadata.name!;
  }

  setNode(node: NodeObject): void {
    this.node = node;
    this.allocatable = nodeAllocatable(node);
    this.ready = isNodeReady(node);
  }

  /** Counts a pod on the node; a pod already counted is not counted twice. */
  addPod(pod: Pod): void {
    const key = objectKey(pod);
    if (this.pods.has(key)) return;
    const requests = podRequests(pod);
    this.pods.set(key, { pod, requests });
    this.requested.milliCpu += requests.milliCpu;
    this.requested.memory += requests.memory;
    this.requested.pods += requests.pods;
    this.requested.ephemeralStorage += requests.ephemeralStorage;
  }

  removePod(key: string): void {
    const requests = this.pods.get(key)?.requests;
    if (!requests) return;
    this.pods.delete(key);
    this.requested.milliCpu -= requests.milliCpu;
    this.requested.memory -= requests.memory;
    this.requested.pods -= requests.pods;
    this.requested.ephemeralStorage -= requests.ephemeralStorage;
  }

  /** A copy whose pods can be added and removed without touching this one (preemption). */
  clone(): NodeInfo {
    const copy = new NodeInfo(this.node);
    for (const info of this.pods.values()) copy.addPod(info.pod);
    return copy;
  }
}

export function isNodeReady(node: NodeObject): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}
