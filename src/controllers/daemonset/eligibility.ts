import { requiredPlacement, requiredTerms } from '../../api/node-selector.js';
import { tolerates } from '../../api/taints.js';
import type { NodeObject, Pod, PodSpec, Taint, Toleration } from '../../api/types.js';

/**
 * Which nodes a DaemonSet's pod belongs on: the template's node name, node selector and
 * required node affinity must match the node, and its tolerations (with the ones every
 * daemon pod gets) must tolerate the node's taints. Pure functions over API objects.
 */

/**
 * The tolerations Kubernetes adds to every daemon pod, so that daemons keep running on
 * nodes that are not ready, unreachable, under pressure or cordoned.
 */
export const DAEMON_TOLERATIONS: Toleration[] = [
  { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/memory-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/pid-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
];

/** Host-network daemons also tolerate a node whose network is not set up yet. */
const NETWORK_UNAVAILABLE: Toleration = {
  key: 'node.kubernetes.io/network-unavailable',
  operator: 'Exists',
  effect: 'NoSchedule',
};

/**
 * The template's tolerations with the daemon ones added. A toleration of the template with
 * the same key and effect as a default is replaced by the default, as in Kubernetes.
 */
export function daemonTolerations(spec: PodSpec): Toleration[] {
  const defaults = [...DAEMON_TOLERATIONS];
  if (spec.hostNetwork === true) defaults.push(NETWORK_UNAVAILABLE);
  const own = ((spec.tolerations as Toleration[] | undefined) ?? []).filter(
    (t) => !defaults.some((d) => d.key === t.key && d.effect === t.effect),
  );
  return [...own, ...defaults];
}

/** What a DaemonSet should do about one node. */
export interface NodeVerdict {
  /** A daemon pod should be created here if there is none. */
  shouldRun: boolean;
  /** A daemon pod already here may stay (a NoSchedule taint does not evict it). */
  shouldContinueRunning: boolean;
}

const NEITHER: NodeVerdict = { shouldRun: false, shouldContinueRunning: false };

/**
 * Decides for a DaemonSet's template (`spec`, as written by the user) whether a daemon
 * pod belongs on `node`. A taint tolerated by no toleration stops new pods when its effect
 * is NoSchedule and also evicts existing ones when it is NoExecute.
 */
export function nodeVerdict(spec: PodSpec, node: NodeObject): NodeVerdict {
  if (spec.nodeName && spec.nodeName !== node.metadata.name) return NEITHER;
  if (!requiredPlacement(spec).matches(node)) return NEITHER;

  const tolerations = daemonTolerations(spec);
  let shouldRun = true;
  for (const taint of (node.spec?.taints ?? []) as Taint[]) {
    if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue;
    if (tolerations.some((t) => tolerates(t, taint))) continue;
    if (taint.effect === 'NoExecute') return NEITHER;
    shouldRun = false;
  }
  return { shouldRun, shouldContinueRunning: true };
}

/**
 * The spec of a daemon pod for `nodeName`: the template's spec with the daemon tolerations
 * and a required node affinity that names the node by `metadata.name`, which replaces any
 * required terms of the template (they have been checked against this node already).
 */
export function daemonPodSpec(template: PodSpec, nodeName: string): PodSpec {
  const spec = structuredClone(template);
  spec.tolerations = daemonTolerations(template);
  const affinity = (spec.affinity ?? {}) as any;
  affinity.nodeAffinity = {
    ...(affinity.nodeAffinity ?? {}),
    requiredDuringSchedulingIgnoredDuringExecution: {
      nodeSelectorTerms: [
        { matchFields: [{ key: 'metadata.name', operator: 'In', values: [nodeName] }] },
      ],
    },
  };
  spec.affinity = affinity;
  return spec;
}

/**
 * The node a daemon pod is on or is meant for: its nodeName once bound, else the single
 * node its required `metadata.name` affinity names.
 */
export function targetNode(pod: Pod): string | undefined {
  if (pod.spec?.nodeName) return pod.spec.nodeName;
  for (const term of requiredTerms(pod.spec ?? ({} as PodSpec)) ?? []) {
    for (const f of term.matchFields ?? []) {
      if (f.key === 'metadata.name' && f.operator === 'In' && f.values?.length === 1) {
        return f.values[0];
      }
    }
  }
  return undefined;
}
