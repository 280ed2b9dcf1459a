import { cpuMillis, parseQuantity } from '../../api/quantity.js';
import type { NodeObject, Pod } from '../../api/types.js';

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

export class NodeInfo {
  readonly requested = emptyResources();
  readonly pods = new Map<string, Resources>();
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

  addPod(key: string, requests: Resources): void {
    if (this.pods.has(key)) return;
    this.pods.set(key, requests);
    this.requested.milliCpu += requests.milliCpu;
    this.requested.memory += requests.memory;
    this.requested.pods += requests.pods;
    this.requested.ephemeralStorage += requests.ephemeralStorage;
  }

  removePod(key: string): void {
    const requests = this.pods.get(key);
    if (!requests) return;
    this.pods.delete(key);
    this.requested.milliCpu -= requests.milliCpu;
    this.requested.memory -= requests.memory;
    this.requested.pods -= requests.pods;
    this.requested.ephemeralStorage -= requests.ephemeralStorage;
  }
}

export function isNodeReady(node: NodeObject): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}
