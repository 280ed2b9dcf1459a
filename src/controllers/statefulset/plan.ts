import type { StatefulSet } from '../../api/apps-workloads.js';
import type { Pod } from '../../api/types.js';
import { REVISION_HASH_LABEL } from '../history.js';
import { isPodAvailable, isPodReady } from '../pods.js';

/**
 * The decisions of the StatefulSet controller, as pure functions of one snapshot of its
 * pods: which ordinals to create, which pods to delete, in the order the pod management
 * policy and the update strategy allow.
 */

/** The ordinal of a pod named `<set>-<ordinal>`, or undefined for any other name. */
export function ordinalOf(setName: string, podName: string): number | undefined {
  if (!podName.startsWith(`${setName}-`)) return undefined;
  const rest = podName.slice(setName.length + 1);
  if (!/^(0|[1-9]\d*)$/.test(rest)) return undefined;
  const n = Number(rest);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The stable name of the pod of `ordinal`. */
export function podName(setName: string, ordinal: number): string {
  return `${setName}-${ordinal}`;
}

/** The name of the revision a pod was made from (its controller-revision-hash label). */
export function revisionOfPod(pod: Pod): string | undefined {
  return pod.metadata.labels?.[REVISION_HASH_LABEL];
}

function isTerminating(pod: Pod): boolean {
  return !!pod.metadata.deletionTimestamp;
}

function hasFinished(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Failed' || phase === 'Succeeded';
}

/** Running, Ready (for minReadySeconds) and not being deleted. */
export function isHealthy(pod: Pod, minReadySeconds: number, now: number): boolean {
  return (
    !isTerminating(pod) &&
    pod.status?.phase === 'Running' &&
    isPodReady(pod) &&
    isPodAvailable(pod, minReadySeconds, now)
  );
}

export interface SetSnapshot {
  replicas: number;
  /** Parallel pod management: no waiting on predecessors. */
  parallel: boolean;
  /** The set's pods by ordinal, including terminating ones. */
  pods: Map<number, Pod>;
  updateRevision: string;
  /** RollingUpdate parameters; undefined for OnDelete. */
  rollingUpdate?: { partition: number; maxUnavailable: number };
  healthy: (pod: Pod) => boolean;
}

export interface SetPlan {
  /** Ordinals to create, lowest first. */
  create: number[];
  delete: { pod: Pod; reason: 'failed' | 'condemned' | 'update' }[];
}

/**
 * One step toward the wanted set, in three stages as Kubernetes orders them:
 *
 * 1. ordinals 0..replicas-1, lowest first: create missing pods and delete finished ones
 *    (to be recreated with the same name); with OrderedReady, stop at the first pod that
 *    is missing, terminating or not Running and Ready;
 * 2. pods with ordinals >= replicas, highest first: delete them; with OrderedReady one at
 *    a time, waiting for it to be gone, and only once every kept pod is healthy;
 * 3. RollingUpdate: from the highest ordinal down to the partition, delete pods of an older
 *    revision while fewer than maxUnavailable pods of that range are unhealthy (so with
 *    the default of 1: one at a time, each replacement Ready before the next goes).
 */
export function planSet(s: SetSnapshot): SetPlan {
  const plan: SetPlan = { create: [], delete: [] };
  for (let ord = 0; ord < s.replicas; ord++) {
    const pod = s.pods.get(ord);
    if (!pod) plan.create.push(ord);
    else if (hasFinished(pod) && !isTerminating(pod)) plan.delete.push({ pod, reason: 'failed' });
    else if (s.healthy(pod)) continue;
    if (!s.parallel) return plan;
  }

  const condemned = [...s.pods.entries()]
    .filter(([ord]) => ord >= s.replicas)
    .sort(([a], [b]) => b - a)
    .map(([, pod]) => pod);
  for (const pod of condemned) {
    if (isTerminating(pod)) {
      if (!s.parallel) return plan;
      continue;
    }
    plan.delete.push({ pod, reason: 'condemned' });
    if (!s.parallel) return plan;
  }

  if (s.rollingUpdate) planUpdate(s, s.rollingUpdate, plan);
  return plan;
}

function planUpdate(
  s: SetSnapshot,
  ru: { partition: number; maxUnavailable: number },
  plan: SetPlan,
): void {
  const low = Math.max(0, ru.partition);
  const deleting = new Set(plan.delete.map((d) => d.pod));
  let unavailable = 0;
  for (let ord = low; ord < s.replicas; ord++) {
    const pod = s.pods.get(ord);
    if (!pod || deleting.has(pod) || !s.healthy(pod)) unavailable++;
  }
  for (let ord = s.replicas - 1; ord >= low && unavailable < ru.maxUnavailable; ord--) {
    const pod = s.pods.get(ord);
    if (!pod || deleting.has(pod) || isTerminating(pod)) continue;
    if (revisionOfPod(pod) === s.updateRevision) continue;
    plan.delete.push({ pod, reason: 'update' });
    if (s.healthy(pod)) unavailable++;
  }
}

/**
 * The revision a new pod of ordinal `ord` is made from: with RollingUpdate, ordinals
 * below the partition keep the current revision; every other pod gets the update revision.
 */
export function revisionForOrdinal(
  sts: StatefulSet,
  ord: number,
  current: string,
  update: string,
): string {
  const strategy = sts.spec.updateStrategy;
  if (strategy?.type === 'OnDelete') return update;
  const partition = strategy?.rollingUpdate?.partition ?? 0;
  return ord < partition ? current : update;
}

export type StatefulSetStatus = NonNullable<StatefulSet['status']>;

/**
 * The status `kubectl rollout status sts` reads. A RollingUpdate is complete when every
 * pod is of the update revision and ready; then the update revision becomes current.
 */
export function computeSetStatus(
  sts: StatefulSet,
  pods: Pod[],
  current: string,
  update: string,
  collisionCount: number,
  now: number,
): StatefulSetStatus {
  const minReady = sts.spec.minReadySeconds ?? 0;
  const status: StatefulSetStatus = {
    observedGeneration: sts.metadata.generation,
    replicas: 0,
    readyReplicas: 0,
    currentReplicas: 0,
    updatedReplicas: 0,
    availableReplicas: 0,
    currentRevision: current,
    updateRevision: update,
    collisionCount,
  };
  for (const pod of pods) {
    status.replicas++;
    const running = pod.status?.phase === 'Running' && !isTerminating(pod);
    if (running && isPodReady(pod)) status.readyReplicas! += 1;
    if (running && isPodAvailable(pod, minReady, now)) status.availableReplicas! += 1;
    if (isTerminating(pod)) continue;
    const revision = revisionOfPod(pod);
    if (revision === current) status.currentReplicas! += 1;
    if (revision === update) status.updatedReplicas! += 1;
  }
  const rolling = sts.spec.updateStrategy?.type !== 'OnDelete';
  const done =
    status.updatedReplicas === status.replicas && status.readyReplicas === status.replicas;
  if (rolling && done) {
    status.currentRevision = update;
    status.currentReplicas = status.updatedReplicas;
  }
  return status;
}

/** RollingUpdate's maxUnavailable in pods (default 1, percentages of replicas rounded down). */
export function maxUnavailableOf(sts: StatefulSet): number {
  const value = sts.spec.updateStrategy?.rollingUpdate?.maxUnavailable;
  if (value === undefined) return 1;
  if (typeof value === 'number') return Math.max(1, value);
  const percent = Number.parseInt(value, 10);
  return Math.max(1, Math.floor(((percent || 0) * (sts.spec.replicas ?? 1)) / 100));
}
