import { timestamp, type Condition, type Deployment, type ReplicaSet } from '../../api/types.js';
import { resolveFenceposts } from './rollout.js';

/** The status the Deployment controller writes. */
export type DeploymentStatus = NonNullable<Deployment['status']>;

/** Something the rollout did in this reconcile that the Progressing condition reports. */
export interface RolloutEvent {
  reason: 'NewReplicaSetCreated' | 'FoundNewReplicaSet';
  message: string;
}

/** Condition reasons, as kubectl and Kubernetes users know them. */
export const Reasons = {
  available: 'MinimumReplicasAvailable',
  unavailable: 'MinimumReplicasUnavailable',
  updated: 'ReplicaSetUpdated',
  complete: 'NewReplicaSetAvailable',
  timedOut: 'ProgressDeadlineExceeded',
  paused: 'DeploymentPaused',
  resumed: 'DeploymentResumed',
} as const;

/**
 * Sets a condition in a list. Timestamps move only when something changed (or `touch`
 * asks for a fresh lastUpdateTime), so writing the same status twice is a no-op.
 */
export function setCondition(
  conditions: Condition[],
  next: Omit<Condition, 'lastTransitionTime' | 'lastUpdateTime'>,
  now: Date,
  touch = false,
): Condition[] {
  const current = conditions.find((c) => c.type === next.type);
  const same =
    current?.status === next.status &&
    current.reason === next.reason &&
    current.message === next.message;
  if (current && same && !touch) return conditions;
  const at = timestamp(now);
  const cond: Condition = {
    ...next,
    lastUpdateTime: at,
    lastTransitionTime: current?.status === next.status ? current.lastTransitionTime : at,
  };
  return [...conditions.filter((c) => c.type !== next.type), cond];
}

/** Rollout complete: every replica updated and available, and no old pods left. */
export function isComplete(d: Deployment, status: DeploymentStatus): boolean {
  const desired = d.spec.replicas ?? 1;
  return (
    status.updatedReplicas === desired &&
    status.replicas === desired &&
    status.availableReplicas === desired &&
    (status.observedGeneration ?? 0) >= (d.metadata.generation ?? 0)
  );
}

function progressed(prev: DeploymentStatus, next: DeploymentStatus): boolean {
  const oldPods = (s: DeploymentStatus) => (s.replicas ?? 0) - (s.updatedReplicas ?? 0);
  return (
    (next.updatedReplicas ?? 0) > (prev.updatedReplicas ?? 0) ||
    (next.readyReplicas ?? 0) > (prev.readyReplicas ?? 0) ||
    (next.availableReplicas ?? 0) > (prev.availableReplicas ?? 0) ||
    oldPods(next) < oldPods(prev)
  );
}

/** Whether the rollout has made no progress for progressDeadlineSeconds at `now`. */
export function timedOut(d: Deployment, cond: Condition | undefined, now: Date): boolean {
  const deadline = d.spec.progressDeadlineSeconds;
  if (deadline === undefined || !cond || cond.reason === Reasons.complete) return false;
  if (cond.reason === Reasons.timedOut) return true;
  const from = Date.parse(cond.lastUpdateTime ?? cond.lastTransitionTime ?? '');
  return !Number.isNaN(from) && from + deadline * 1000 < now.getTime();
}

/**
 * The Deployment's status from its ReplicaSets (the new one first, if any) at `now`,
 * with the Available and Progressing conditions as Kubernetes sets them.
 */
export function computeDeploymentStatus(
  d: Deployment,
  all: ReplicaSet[],
  newRS: ReplicaSet | undefined,
  now: Date,
  event?: RolloutEvent,
): DeploymentStatus {
  const prev = d.status ?? {};
  const sum = (f: (rs: ReplicaSet) => number | undefined) =>
    all.reduce((n, rs) => n + (f(rs) ?? 0), 0);
  const desired = d.spec.replicas ?? 1;
  const status: DeploymentStatus = {
    observedGeneration: d.metadata.generation,
    replicas: sum((rs) => rs.status?.replicas),
    updatedReplicas: newRS?.status?.replicas ?? 0,
    readyReplicas: sum((rs) => rs.status?.readyReplicas),
    availableReplicas: sum((rs) => rs.status?.availableReplicas),
  };
  status.unavailableReplicas = Math.max(0, desired - (status.availableReplicas ?? 0));
  if (prev.collisionCount !== undefined) status.collisionCount = prev.collisionCount;

  const { maxUnavailable } = resolveFenceposts(d);
  const enough = (status.availableReplicas ?? 0) >= desired - maxUnavailable;
  let conditions = setCondition(
    prev.conditions ?? [],
    enough
      ? {
          type: 'Available',
          status: 'True',
          reason: Reasons.available,
          message: 'Deployment has minimum availability.',
        }
      : {
          type: 'Available',
          status: 'False',
          reason: Reasons.unavailable,
          message: 'Deployment does not have minimum availability.',
        },
    now,
  );
  conditions = progressingCondition(d, prev, status, conditions, newRS, now, event);
  status.conditions = conditions;
  return status;
}

function progressingCondition(
  d: Deployment,
  prev: DeploymentStatus,
  next: DeploymentStatus,
  conditions: Condition[],
  newRS: ReplicaSet | undefined,
  now: Date,
  event?: RolloutEvent,
): Condition[] {
  const current = conditions.find((c) => c.type === 'Progressing');
  const name = newRS?.metadata.name ?? '';
  const set = (status: Condition['status'], reason: string, message: string, touch = false) =>
    setCondition(conditions, { type: 'Progressing', status, reason, message }, now, touch);
  if (d.spec.paused) return set('Unknown', Reasons.paused, 'Deployment is paused');
  if (d.spec.progressDeadlineSeconds === undefined) return conditions;
  // Once a rollout completed, scaling it or replacing its pods is no rollout: progress is
  // not judged again (nor can it time out) until a new template or a pause comes.
  const settled = current?.reason === Reasons.complete && next.replicas === next.updatedReplicas;
  if (settled && !event) return conditions;
  if (newRS && isComplete(d, next)) {
    return set('True', Reasons.complete, `ReplicaSet "${name}" has successfully progressed.`);
  }
  if (event) return set('True', event.reason, event.message, true);
  if (current?.reason === Reasons.paused)
    return set('Unknown', Reasons.resumed, 'Deployment is resumed');
  if (newRS && progressed(prev, next)) {
    return set('True', Reasons.updated, `ReplicaSet "${name}" is progressing.`, true);
  }
  if (timedOut(d, current, now)) {
    return set('False', Reasons.timedOut, `ReplicaSet "${name}" has timed out progressing.`);
  }
  if (!current && newRS)
    return set('True', Reasons.updated, `ReplicaSet "${name}" is progressing.`);
  return conditions;
}

/**
 * Milliseconds until the rollout would pass its progress deadline, plus a second of slack,
 * so the controller looks again then even if nothing else happens; undefined when no
 * deadline can pass: paused, complete, already timed out, or no Progressing condition yet.
 * Counts from the condition's lastUpdateTime, the time of the last progress (or resume).
 */
export function untilDeadline(
  d: Deployment,
  status: DeploymentStatus,
  now: Date,
): number | undefined {
  const deadline = d.spec.progressDeadlineSeconds;
  const cond = status.conditions?.find((c) => c.type === 'Progressing');
  if (deadline === undefined || !cond || d.spec.paused) return undefined;
  const final: string[] = [Reasons.complete, Reasons.timedOut, Reasons.paused];
  if (final.includes(cond.reason ?? '')) return undefined;
  const from = Date.parse(cond.lastUpdateTime ?? '');
  if (Number.isNaN(from)) return undefined;
  return Math.max(0, from + deadline * 1000 - now.getTime()) + 1000;
}
