import { readFileSync, statfsSync } from 'node:fs';
import { cpus, hostname, release, totalmem } from 'node:os';
import { formatKi } from '../api/quantity.js';
import { nowTimestamp, type Condition, type NodeObject } from '../api/types.js';

/**
 * The Node object an agent registers and the status it reports: the machine's real
 * capacity, its addresses and agent endpoint, and the conditions a scheduler reads.
 */

export interface NodeIdentity {
  name: string;
  /** The address other machines (and the API server) reach this node's agent on. */
  internalIP: string;
  agentPort: number;
  dataDir: string;
  labels?: Record<string, string>;
  maxPods?: number;
  /** The node's pod range when the agent was given one; else the cluster assigns one. */
  podCIDR?: string;
}

function osImage(): string {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text)?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

export const AGENT_VERSION = 'v1.32.0-flyces.0.1.0';

export function capacity(identity: NodeIdentity): Record<string, string> {
  const fs = statfsSync(identity.dataDir);
  return {
    cpu: String(cpus().length),
    memory: formatKi(totalmem()),
    pods: String(identity.maxPods ?? 110),
    'ephemeral-storage': formatKi(fs.blocks * fs.bsize),
  };
}

function conditions(previous: Condition[] | undefined): Condition[] {
  const now = nowTimestamp();
  const make = (
    type: string,
    status: 'True' | 'False',
    reason: string,
    message: string,
  ): Condition => {
    const old = previous?.find((c) => c.type === type);
    return {
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: old?.status === status ? (old.lastTransitionTime ?? now) : now,
    };
  };
  return [
    make(
      'MemoryPressure',
      'False',
      'KubeletHasSufficientMemory',
      'agent has sufficient memory available',
    ),
    make('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'agent has no disk pressure'),
    make('PIDPressure', 'False', 'KubeletHasSufficientPID', 'agent has sufficient PID available'),
    make('Ready', 'True', 'KubeletReady', 'flyCes agent is posting ready status'),
  ];
}

export function nodeStatus(
  identity: NodeIdentity,
  previous?: NodeObject['status'],
): NodeObject['status'] {
  const cap = capacity(identity);
  return {
    capacity: cap,
    allocatable: cap,
    conditions: conditions(previous?.conditions),
    addresses: [
      { type: 'InternalIP', address: identity.internalIP },
      { type: 'Hostname', address: hostname() },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: identity.agentPort } },
    nodeInfo: {
      machineID: '',
      systemUUID: '',
      bootID: '',
      kernelVersion: release(),
      osImage: osImage(),
      containerRuntimeVersion: 'minic://0.1.0',
      kubeletVersion: AGENT_VERSION,
      kubeProxyVersion: '',
      operatingSystem: 'linux',
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
    },
  };
}

export function nodeObject(identity: NodeIdentity): NodeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: identity.name,
      labels: {
        'kubernetes.io/hostname': identity.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
        ...identity.labels,
      },
    },
    spec: identity.podCIDR ? { podCIDR: identity.podCIDR, podCIDRs: [identity.podCIDR] } : {},
    status: nodeStatus(identity),
  };
}

/** Kubernetes' MicroTime: RFC 3339 with microseconds. */
export function microTime(date = new Date()): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
