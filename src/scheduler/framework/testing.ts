import type { NodeObject, Pod, PodSpec, Taint } from '../../api/types.js';
import { Code, SUCCESS, type CycleState, type Plugin, type Status } from './interface.js';
import { isFilter, isPreFilter } from './interface.js';
import { NodeInfo } from './nodeinfo.js';

/**
 * Builders for plugin tests: nodes and pods in memory, with only the fields a test sets.
 * Used by the table-driven tests beside each plugin; nothing here talks to an API server.
 */

export interface NodeOptions {
  labels?: Record<string, string>;
  taints?: Taint[];
  unschedulable?: boolean;
  allocatable?: Record<string, string>;
  pods?: Pod[];
}

export function testNode(name: string, options: NodeOptions = {}): NodeInfo {
  const node: NodeObject = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...options.labels } },
    spec: { taints: options.taints, unschedulable: options.unschedulable },
    status: {
      allocatable: { cpu: '4', memory: '8Gi', pods: '110', ...options.allocatable },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
  const info = new NodeInfo(node);
  for (const p of options.pods ?? []) info.addPod(p);
  return info;
}

export interface PodOptions {
  namespace?: string;
  labels?: Record<string, string>;
  requests?: Record<string, string>;
  spec?: Partial<PodSpec>;
}

export function testPod(name: string, options: PodOptions = {}): Pod {
  const requests = options.requests;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: options.namespace ?? 'default', labels: options.labels },
    spec: {
      containers: [{ name: 'c', image: 'i', resources: requests ? { requests } : undefined }],
      ...options.spec,
    },
  };
}

/** Runs a plugin's pre-filter (over `nodes`) and filter on `node`; SUCCESS when it has none. */
export function runFilter(plugin: Plugin, pod: Pod, node: NodeInfo, nodes = [node]): Status {
  const state: CycleState = new Map();
  if (isPreFilter(plugin)) {
    const status = plugin.preFilter(state, pod, nodes);
    if (status.code === Code.Skip) return SUCCESS;
    if (status.code !== Code.Success) return status;
  }
  return isFilter(plugin) ? plugin.filter(state, pod, node) : SUCCESS;
}

/**
 * A cluster of `count` nodes spread over 3 zones, each running `podsPerNode` small pods
 * labelled app=app-<n % 10>, for performance checks.
 */
export function syntheticCluster(count: number, podsPerNode: number): NodeInfo[] {
  const nodes: NodeInfo[] = [];
  for (let i = 0; i < count; i++) {
    const pods = Array.from({ length: podsPerNode }, (_, j) =>
      testPod(`p-${i}-${j}`, {
        labels: { app: `app-${(i + j) % 10}` },
        requests: { cpu: '100m', memory: '128Mi' },
      }),
    );
    const labels = { 'topology.kubernetes.io/zone': `zone-${i % 3}` };
    nodes.push(
      testNode(`node-${i}`, { labels, allocatable: { cpu: '32', memory: '128Gi' }, pods }),
    );
  }
  return nodes;
}

/** A pod spread over zones (DoNotSchedule) that avoids pods of its own app per node. */
export function spreadAntiAffinityPod(name: string, app: string): Pod {
  const selector = { matchLabels: { app } };
  return testPod(name, {
    labels: { app },
    requests: { cpu: '100m', memory: '128Mi' },
    spec: {
      topologySpreadConstraints: [
        {
          maxSkew: 1,
          topologyKey: 'topology.kubernetes.io/zone',
          whenUnsatisfiable: 'DoNotSchedule',
          labelSelector: selector,
        },
      ],
      affinity: {
        podAntiAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [
            { topologyKey: 'kubernetes.io/hostname', labelSelector: selector },
          ],
        },
      },
    },
  });
}
