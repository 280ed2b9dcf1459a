import type { NodeObject, Pod, PodSpec, Taint } from '../../api/types.js';
import { SUCCESS, type CycleState, type Plugin, type Status } from './interface.js';
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
    if (status !== SUCCESS) return status;
  }
  return isFilter(plugin) ? plugin.filter(state, pod, node) : SUCCESS;
}
