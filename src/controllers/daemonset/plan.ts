import type { DaemonSet, IntOrPercent } from '../../api/apps-workloads.js';
import type { Pod } from '../../api/types.js';
import { REVISION_HASH_LABEL } from '../history.js';
import { isPodReady } from '../pods.js';
import type { NodeVerdict } from './eligibility.js';

/**
 * The decisions of the DaemonSet controller, as pure functions of one snapshot: which
 * nodes need a daemon pod, which pods must go, and which old pods a rolling update may
 * replace now without more than maxUnavailable nodes lacking an available daemon.
 */

/** One node (or a node name that no longer exists) and the daemon pods meant for it. */
export interface NodeSlot {
  node: string;
  verdict: NodeVerdict;
  /** Pods on or meant for the node, not being deleted, oldest first. */
  pods: Pod[];
}

export interface Plan {
  /** Nodes that get a new pod of the current template. */
  createOn: string[];
  /** Pods to delete, with the reason for logs. */
  delete: { pod: Pod; reason: 'failed' | 'misscheduled' | 'duplicate' | 'update' }[];
}

/** Whether a daemon pod was made from the revision whose hash is `hash`. */
export function isUpdated(pod: Pod, hash: string): boolean {
  return pod.metadata.labels?.[REVISION_HASH_LABEL] === hash;
}

/** Resolves an int-or-percent against `total`, percentages rounded up as Kubernetes does. */
export function scaledValue(value: IntOrPercent | undefined, total: number): number {
  if (value === undefined) return 0;
  if (typeof value === 'number') return value;
  const percent = Number.parseInt(value, 10);
  return Number.isNaN(percent) ? 0 : Math.ceil((percent * total) / 100);
}

/**
 * maxSurge and maxUnavailable of a rolling update, in pods, for `desired` nodes. When both
 * resolve to zero (a small percentage of few nodes) one pod may be unavailable.
 */
export function updateBudget(
  ds: DaemonSet,
  desired: number,
): { surge: number; unavailable: number } {
  const ru = ds.spec.updateStrategy?.rollingUpdate;
  const surge = scaledValue(ru?.maxSurge, desired);
  const unavailable = scaledValue(ru?.maxUnavailable ?? 1, desired);
  return { surge, unavailable: surge === 0 && unavailable === 0 ? 1 : unavailable };
}

/**
 * The create and delete steps that hold whatever the update strategy: a pod where one
 * should run and none is, no pod where none may stay, failed pods replaced, one pod per
 * node (two while surging: the oldest old one and the oldest updated one).
 */
export function manageNodes(slots: NodeSlot[], hash: string, surging: boolean): Plan {
  const plan: Plan = { createOn: [], delete: [] };
  for (const slot of slots) {
    const failed = slot.pods.filter((p) => p.status?.phase === 'Failed');
    const running = slot.pods.filter((p) => p.status?.phase !== 'Failed');
    if (!slot.verdict.shouldContinueRunning) {
      for (const pod of slot.pods) plan.delete.push({ pod, reason: 'misscheduled' });
      continue;
    }
    for (const pod of failed) plan.delete.push({ pod, reason: 'failed' });
    if (running.length === 0) {
      if (slot.verdict.shouldRun) plan.createOn.push(slot.node);
      continue;
    }
    for (const pod of extras(running, hash, surging)) {
      plan.delete.push({ pod, reason: 'duplicate' });
    }
  }
  return plan;
}

function extras(running: Pod[], hash: string, surging: boolean): Pod[] {
  if (!surging) return running.slice(1);
  const keep = new Set<Pod>();
  const oldest = (updated: boolean) => running.find((p) => isUpdated(p, hash) === updated);
  for (const pod of [oldest(false), oldest(true)]) if (pod) keep.add(pod);
  return running.filter((p) => !keep.has(p));
}

/**
 * One step of a rolling update over the nodes that should run a daemon. Without surge an
 * old pod is deleted (and later replaced by manageNodes) only while fewer than
 * maxUnavailable nodes lack an available pod; an old pod that is not available anyway may
 * always go. With surge a new pod is started beside an old one while fewer than maxSurge
 * nodes have both, and the old one is deleted once the new one is available.
 */
export function rollingUpdate(
  slots: NodeSlot[],
  hash: string,
  budget: { surge: number; unavailable: number },
  available: (pod: Pod) => boolean,
): Plan {
  const plan: Plan = { createOn: [], delete: [] };
  const eligible = slots.filter((s) => s.verdict.shouldRun);
  if (budget.surge > 0) return surgeUpdate(eligible, hash, budget.surge, available);

  let unavailable = 0;
  const candidates: Pod[] = [];
  for (const slot of eligible) {
    const running = slot.pods.filter((p) => p.status?.phase !== 'Failed');
    const newPod = running.find((p) => isUpdated(p, hash));
    const oldPod = running.find((p) => !isUpdated(p, hash));
    if (running.length !== 1) {
      unavailable++;
    } else if (newPod) {
      if (!available(newPod)) unavailable++;
    } else if (!available(oldPod!)) {
      plan.delete.push({ pod: oldPod!, reason: 'update' });
    } else {
      candidates.push(oldPod!);
    }
  }
  unavailable += plan.delete.length;
  const room = Math.max(0, budget.unavailable - unavailable);
  for (const pod of candidates.slice(0, room)) plan.delete.push({ pod, reason: 'update' });
  return plan;
}

function surgeUpdate(
  slots: NodeSlot[],
  hash: string,
  maxSurge: number,
  available: (pod: Pod) => boolean,
): Plan {
  const plan: Plan = { createOn: [], delete: [] };
  let surging = 0;
  const candidates: string[] = [];
  for (const slot of slots) {
    const running = slot.pods.filter((p) => p.status?.phase !== 'Failed');
    const newPod = running.find((p) => isUpdated(p, hash));
    const oldPod = running.find((p) => !isUpdated(p, hash));
    if (!oldPod) continue;
    if (!newPod) {
      if (!slot.verdict.shouldRun) continue;
      if (!available(oldPod)) plan.createOn.push(slot.node);
      else candidates.push(slot.node);
      continue;
    }
    if (available(newPod)) plan.delete.push({ pod: oldPod, reason: 'update' });
    else surging++;
  }
  const room = Math.max(0, maxSurge - surging - plan.createOn.length);
  plan.createOn.push(...candidates.slice(0, room));
  return plan;
}

export type DaemonSetStatus = NonNullable<DaemonSet['status']>;

/**
 * The status `kubectl get ds` and `kubectl rollout status` read, counted per node: the
 * pod that speaks for a node is its updated pod if it has one, else its oldest.
 */
export function computeStatus(
  ds: DaemonSet,
  slots: NodeSlot[],
  hash: string,
  available: (pod: Pod) => boolean,
): DaemonSetStatus {
  const status: DaemonSetStatus = {
    currentNumberScheduled: 0,
    numberMisscheduled: 0,
    desiredNumberScheduled: 0,
    numberReady: 0,
    observedGeneration: ds.metadata.generation,
    updatedNumberScheduled: 0,
    numberAvailable: 0,
    numberUnavailable: 0,
  };
  for (const slot of slots) {
    const scheduled = slot.pods.length > 0;
    if (!slot.verdict.shouldRun) {
      if (scheduled) status.numberMisscheduled++;
      continue;
    }
    status.desiredNumberScheduled++;
    if (!scheduled) continue;
    status.currentNumberScheduled++;
    const pod = slot.pods.find((p) => isUpdated(p, hash)) ?? slot.pods[0];
    if (isPodReady(pod)) status.numberReady++;
    if (available(pod)) status.numberAvailable! += 1;
    if (isUpdated(pod, hash)) status.updatedNumberScheduled! += 1;
  }
  status.numberUnavailable = status.desiredNumberScheduled - status.numberAvailable!;
  if (ds.status?.collisionCount) status.collisionCount = ds.status.collisionCount;
  return status;
}
