import type { Pod } from '../api/types.js';

/**
 * Pod facts the workload controllers share: whether a pod still counts, whether it is
 * ready and for how long, and the order in which pods are chosen for deletion.
 */

/** A pod counts toward replicas unless it finished or is being deleted. */
export function isPodActive(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return !pod.metadata.deletionTimestamp && phase !== 'Succeeded' && phase !== 'Failed';
}

/** Whether the pod's Ready condition is True. */
export function isPodReady(pod: Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** When the pod last became ready, in ms since the epoch; undefined if not ready. */
export function readySince(pod: Pod): number | undefined {
  const cond = pod.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True');
  if (!cond) return undefined;
  const at = cond.lastTransitionTime ? Date.parse(cond.lastTransitionTime) : NaN;
  return Number.isNaN(at) ? 0 : at;
}

/** Ready for at least minReadySeconds at `now` (ms). */
export function isPodAvailable(pod: Pod, minReadySeconds: number, now: number): boolean {
  const since = readySince(pod);
  if (since === undefined) return false;
  return minReadySeconds <= 0 || since + minReadySeconds * 1000 <= now;
}

function restarts(pod: Pod): number {
  return (pod.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);
}

function created(pod: Pod): number {
  const at = Date.parse(pod.metadata.creationTimestamp ?? '');
  return Number.isNaN(at) ? 0 : at;
}

const PHASE_RANK: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };

/**
 * Orders pods so that the ones to delete first come first, as Kubernetes does: unassigned
 * before assigned, Pending before Unknown before Running, not ready before ready, ready
 * more recently before ready longer, more restarts first, created more recently first.
 */
export function compareForDeletion(a: Pod, b: Pod): number {
  const assigned = Number(!!a.spec?.nodeName) - Number(!!b.spec?.nodeName);
  if (assigned !== 0) return assigned;
  const phase = (PHASE_RANK[a.status?.phase ?? ''] ?? 0) - (PHASE_RANK[b.status?.phase ?? ''] ?? 0);
  if (phase !== 0) return phase;
  const ra = readySince(a);
  const rb = readySince(b);
  if ((ra === undefined) !== (rb === undefined)) return ra === undefined ? -1 : 1;
  if (ra !== undefined && rb !== undefined && ra !== rb) return rb - ra;
  const restartDiff = restarts(b) - restarts(a);
  if (restartDiff !== 0) return restartDiff;
  return created(b) - created(a);
}

/** The `count` pods to delete first. */
export function selectVictims(pods: Pod[], count: number): Pod[] {
  return [...pods].sort(compareForDeletion).slice(0, Math.max(0, count));
}
