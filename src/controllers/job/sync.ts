import {
  COMPLETION_INDEX,
  JOB_TRACKING_FINALIZER,
  jobCondition,
  jobFinished,
  type Job,
  type JobStatus,
} from '../../api/batch.js';
import { timestamp, type Condition, type Pod } from '../../api/types.js';
import { isPodReady, selectVictims } from '../pods.js';

/**
 * The Job controller's decisions, as pure functions of a Job, the pods it owns and the
 * time: the status to write, the pods to create and delete, and whose tracking finalizer
 * may go. The controller only carries the plan out.
 *
 * Counting follows Kubernetes' finalizer protocol, so no finished pod is lost or counted
 * twice: a finished pod that still holds the tracking finalizer is first recorded by uid in
 * status.uncountedTerminatedPods; only after that status is written is its finalizer
 * removed; once the finalizer is gone (or the pod with it) a later sync moves the uid from
 * the uncounted lists into status.succeeded or status.failed.
 *
 * Simplified from Kubernetes: the Failed and Complete conditions are set as soon as the
 * outcome is known (no FailureTarget or SuccessCriteriaMet stage waiting for pods to
 * terminate); pod failure policies, backoffLimitPerIndex and success policies are not
 * implemented; the replacement backoff doubles with every failure of the Job, not only
 * with the failures since its last success.
 */

export interface JobSyncInput {
  job: Job;
  /** Pods owned by the Job, as the informer has them (finalizers already removed dropped). */
  pods: Pod[];
  now: number;
  /** When this controller last saw a pod fail, for the pod-recreation backoff (ms). */
  lastFailureAt?: number;
  /** Base of the exponential delay before replacing failed pods (Kubernetes: 10 s). */
  backoffBaseMs: number;
  /** Cap of that delay (Kubernetes: 10 minutes). */
  backoffMaxMs: number;
}

export interface FinishReason {
  type: 'Complete' | 'Failed';
  reason: string;
  message: string;
}

export interface JobPlan {
  status: JobStatus;
  /** Set when this sync finishes the Job. */
  finished?: FinishReason;
  /** Set when this sync suspends (true) or resumes (false) the Job. */
  suspended?: boolean;
  /** How many pods to create; for Indexed Jobs, `indexes` says which. */
  create: number;
  indexes: number[];
  /** Active pods to delete. */
  remove: Pod[];
  /** Finished pods whose tracking finalizer may be removed once `status` is written. */
  untrack: Pod[];
  /** Look again after this many ms (deadline, backoff), if set. */
  requeueMs?: number;
  /** Pods seen failed for the first time in this sync. */
  newFailures: number;
}

export function hasTrackingFinalizer(pod: Pod): boolean {
  return pod.metadata.finalizers?.includes(JOB_TRACKING_FINALIZER) ?? false;
}

/** A pod is finished when it succeeded or failed; a pod being deleted counts as failed. */
export function podOutcome(pod: Pod): 'Succeeded' | 'Failed' | undefined {
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return phase;
  return pod.metadata.deletionTimestamp ? 'Failed' : undefined;
}

/** The completion index of a pod of an Indexed Job, if it carries a valid one. */
export function podIndex(pod: Pod, completions: number): number | undefined {
  const text = pod.metadata.annotations?.[COMPLETION_INDEX];
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  const index = Number(text);
  return index < completions ? index : undefined;
}

/** `1,3-5,7` as a sorted list of numbers; malformed parts are skipped. */
export function parseIndexes(text: string | undefined): number[] {
  const out = new Set<number>();
  for (const part of (text ?? '').split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const end = m[2] === undefined ? Number(m[1]) : Number(m[2]);
    for (let i = Number(m[1]); i <= end && i - Number(m[1]) < 100_000; i++) out.add(i);
  }
  return [...out].sort((a, b) => a - b);
}

/** Sorted numbers written as intervals, as status.completedIndexes has them. */
export function formatIndexes(indexes: number[]): string {
  const sorted = [...new Set(indexes)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(j === i ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Restarts of the containers of pods still running, which count toward the backoff limit. */
export function activeRestarts(pods: Pod[]): number {
  let total = 0;
  for (const pod of pods) {
    const phase = pod.status?.phase;
    if (phase !== 'Running' && phase !== 'Pending') continue;
    const statuses = [
      ...(pod.status?.containerStatuses ?? []),
      ...(pod.status?.initContainerStatuses ?? []),
    ];
    for (const c of statuses) total += c.restartCount ?? 0;
  }
  return total;
}

/** Sets a condition, keeping its transition time when its status did not change. */
export function setCondition(
  conditions: Condition[],
  type: string,
  status: 'True' | 'False',
  reason: string,
  message: string,
  now: number,
): Condition[] {
  const at = timestamp(new Date(now));
  const old = conditions.find((c) => c.type === type);
  if (old && old.status === status && old.reason === reason && old.message === message) {
    return conditions;
  }
  const next: Condition = {
    type,
    status,
    reason,
    message,
    lastProbeTime: at,
    lastTransitionTime: old && old.status === status ? old.lastTransitionTime : at,
  };
  return old ? conditions.map((c) => (c === old ? next : c)) : [...conditions, next];
}

interface Counts {
  status: JobStatus;
  succeeded: number;
  failed: number;
  completed: number[];
  untrack: Pod[];
  newFailures: number;
}

/** Steps 1 and 3 of the finalizer protocol: record newly finished pods, count settled ones. */
function countPods(job: Job, pods: Pod[]): Counts {
  const prev = job.status ?? {};
  const held = new Set(pods.filter(hasTrackingFinalizer).map((p) => p.metadata.uid));
  const indexed = job.spec.completionMode === 'Indexed';
  const completions = job.spec.completions ?? 0;
  const completed = indexed ? parseIndexes(prev.completedIndexes) : [];
  let succeeded = prev.succeeded ?? 0;
  let failed = prev.failed ?? 0;
  const uncountedOk: string[] = [];
  const uncountedFailed: string[] = [];
  for (const uid of prev.uncountedTerminatedPods?.succeeded ?? []) {
    if (held.has(uid)) uncountedOk.push(uid);
    else if (!indexed) succeeded++;
  }
  for (const uid of prev.uncountedTerminatedPods?.failed ?? []) {
    if (held.has(uid)) uncountedFailed.push(uid);
    else failed++;
  }
  const recorded = new Set([...uncountedOk, ...uncountedFailed]);
  const untrack: Pod[] = [];
  let newFailures = 0;
  for (const pod of pods) {
    const outcome = podOutcome(pod);
    if (!outcome || !hasTrackingFinalizer(pod)) continue;
    untrack.push(pod);
    const uid = pod.metadata.uid ?? '';
    if (recorded.has(uid)) continue;
    // Pods a suspended Job deletes were stopped on purpose; they are not failures.
    if (outcome === 'Failed' && job.spec.suspend && pod.status?.phase !== 'Failed') continue;
    if (outcome === 'Failed') {
      uncountedFailed.push(uid);
      newFailures++;
      continue;
    }
    uncountedOk.push(uid);
    const index = indexed ? podIndex(pod, completions) : undefined;
    if (index !== undefined && !completed.includes(index)) completed.push(index);
  }
  if (indexed) succeeded = completed.length;
  const status: JobStatus = { ...prev, succeeded, failed };
  status.uncountedTerminatedPods = {
    ...(uncountedOk.length ? { succeeded: uncountedOk } : {}),
    ...(uncountedFailed.length ? { failed: uncountedFailed } : {}),
  };
  if (indexed) status.completedIndexes = formatIndexes(completed);
  const pendingOk = indexed ? 0 : uncountedOk.length;
  return {
    status,
    succeeded: succeeded + pendingOk,
    failed: failed + uncountedFailed.length,
    completed,
    untrack,
    newFailures,
  };
}

/**
 * Plans one sync of a Job: counts, conditions, pods to create and delete. Pure: the same
 * input gives the same plan, and applying a plan then planning again changes nothing more.
 */
export function planJob(input: JobSyncInput): JobPlan {
  const { job, pods, now } = input;
  const counts = countPods(job, pods);
  const status = counts.status;
  const active = pods.filter((p) => !podOutcome(p));
  status.active = active.length;
  status.ready = active.filter(isPodReady).length;
  const plan: JobPlan = {
    status,
    create: 0,
    indexes: [],
    remove: [],
    untrack: counts.untrack,
    newFailures: counts.newFailures,
  };
  if (jobFinished(job)) {
    plan.remove = active;
    return plan;
  }
  if (job.spec.suspend) return suspend(job, plan, active, now);
  resume(job, plan, now);

  const failure = failureOf(job, active, counts, status, now);
  if (failure) return finish(plan, failure, active, now);
  if (isComplete(job, counts, active.length)) {
    status.completionTime = timestamp(new Date(now));
    const message = 'Reached expected number of succeeded pods';
    return finish(plan, { type: 'Complete', reason: 'CompletionsReached', message }, active, now);
  }
  manage(input, plan, counts, active);
  const deadline = job.spec.activeDeadlineSeconds;
  if (deadline !== undefined && status.startTime) {
    const left = Date.parse(status.startTime) + deadline * 1000 - now;
    plan.requeueMs = Math.min(plan.requeueMs ?? Infinity, Math.max(left, 0) + 10);
  }
  return plan;
}

function suspend(job: Job, plan: JobPlan, active: Pod[], now: number): JobPlan {
  const conditions = plan.status.conditions ?? [];
  const was = !!jobCondition(job, 'Suspended');
  plan.status.conditions = setCondition(
    conditions,
    'Suspended',
    'True',
    'JobSuspended',
    'Job suspended',
    now,
  );
  if (!was) plan.suspended = true;
  plan.remove = active;
  return plan;
}

function resume(job: Job, plan: JobPlan, now: number): void {
  const status = plan.status;
  if (jobCondition(job, 'Suspended')) {
    const conditions = status.conditions ?? [];
    status.conditions = setCondition(
      conditions,
      'Suspended',
      'False',
      'JobResumed',
      'Job resumed',
      now,
    );
    // The active deadline counts from the resumption, as in Kubernetes.
    status.startTime = timestamp(new Date(now));
    plan.suspended = false;
  }
  status.startTime ??= timestamp(new Date(now));
}

function failureOf(
  job: Job,
  active: Pod[],
  counts: Counts,
  status: JobStatus,
  now: number,
): FinishReason | undefined {
  const limit = job.spec.backoffLimit ?? 6;
  const restarts =
    job.spec.template?.spec?.restartPolicy === 'OnFailure' ? activeRestarts(active) : 0;
  const pastRestarts = limit === 0 ? restarts > 0 : restarts >= limit;
  if (counts.failed > limit || pastRestarts) {
    return {
      type: 'Failed',
      reason: 'BackoffLimitExceeded',
      message: 'Job has reached the specified backoff limit',
    };
  }
  const deadline = job.spec.activeDeadlineSeconds;
  if (deadline !== undefined && status.startTime) {
    if (Date.parse(status.startTime) + deadline * 1000 <= now) {
      return {
        type: 'Failed',
        reason: 'DeadlineExceeded',
        message: 'Job was active longer than specified deadline',
      };
    }
  }
  return undefined;
}

function isComplete(job: Job, counts: Counts, active: number): boolean {
  const completions = job.spec.completions;
  if (completions === undefined) return counts.succeeded > 0 && active === 0;
  if (job.spec.completionMode === 'Indexed') return counts.completed.length >= completions;
  return counts.succeeded >= completions;
}

function finish(plan: JobPlan, reason: FinishReason, active: Pod[], now: number): JobPlan {
  const conditions = plan.status.conditions ?? [];
  plan.status.conditions = setCondition(
    conditions,
    reason.type,
    'True',
    reason.reason,
    reason.message,
    now,
  );
  plan.finished = reason;
  plan.remove = active;
  return plan;
}

/** Creates the missing pods (after the failure backoff) or deletes the extra ones. */
function manage(input: JobSyncInput, plan: JobPlan, counts: Counts, active: Pod[]): void {
  const { job } = input;
  const parallelism = job.spec.parallelism ?? 1;
  const completions = job.spec.completions;
  if (job.spec.completionMode === 'Indexed' && completions !== undefined) {
    return manageIndexed(input, plan, counts, active, completions);
  }
  let want: number;
  if (completions === undefined) want = counts.succeeded > 0 ? active.length : parallelism;
  else want = Math.max(0, Math.min(parallelism, completions - counts.succeeded));
  const diff = want - active.length;
  if (diff < 0) plan.remove = selectVictims(active, -diff);
  else if (diff > 0 && backoffAllows(input, plan, counts)) plan.create = diff;
}

function manageIndexed(
  input: JobSyncInput,
  plan: JobPlan,
  counts: Counts,
  active: Pod[],
  completions: number,
): void {
  const done = new Set(counts.completed);
  const running = new Set<number>();
  const extra: Pod[] = [];
  for (const pod of active) {
    const index = podIndex(pod, completions);
    // Pods without a valid index, for an index already done, or a second one: delete.
    if (index === undefined || done.has(index) || running.has(index)) extra.push(pod);
    else running.add(index);
  }
  const parallelism = input.job.spec.parallelism ?? 1;
  const kept = active.length - extra.length;
  const surplus = kept - parallelism;
  if (surplus > 0) {
    const keptPods = active.filter((p) => !extra.includes(p));
    extra.push(...selectVictims(keptPods, surplus));
  }
  plan.remove = extra;
  // Deletions first; the pods to create are planned once they were observed.
  if (extra.length > 0) return;
  const room = parallelism - Math.min(kept, parallelism);
  if (room <= 0 || !backoffAllows(input, plan, counts)) return;
  for (let i = 0; i < completions && plan.indexes.length < room; i++) {
    if (!done.has(i) && !running.has(i)) plan.indexes.push(i);
  }
  plan.create = plan.indexes.length;
}

/** When a failed pod's containers last terminated (ms), if it says. */
export function failedAt(pod: Pod): number | undefined {
  if (pod.status?.phase !== 'Failed') return undefined;
  const times = (pod.status.containerStatuses ?? []).map((c) =>
    Date.parse(c.state?.terminated?.finishedAt ?? ''),
  );
  return latest(times.map((t) => (Number.isNaN(t) ? undefined : t)));
}

function latest(times: (number | undefined)[]): number | undefined {
  const known = times.filter((t): t is number => t !== undefined);
  return known.length ? Math.max(...known) : undefined;
}

/**
 * Whether failed pods may be replaced now; otherwise sets when to look again. The delay
 * counts from the latest failure the controller saw or a failed pod still reports, so it
 * holds across a controller restart as long as that pod exists.
 */
function backoffAllows(input: JobSyncInput, plan: JobPlan, counts: Counts): boolean {
  const seen = counts.newFailures > 0 ? input.now : undefined;
  const lastFailureAt = latest([seen, input.lastFailureAt, ...input.pods.map(failedAt)]);
  if (counts.failed === 0 || lastFailureAt === undefined) return true;
  const exp = Math.min(counts.failed - 1, 30);
  const delay = Math.min(input.backoffBaseMs * 2 ** exp, input.backoffMaxMs);
  const left = lastFailureAt + delay - input.now;
  if (left <= 0) return true;
  plan.requeueMs = Math.min(plan.requeueMs ?? Infinity, left);
  return false;
}
