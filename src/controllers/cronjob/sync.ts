import {
  CRONJOB_SCHEDULED_TIMESTAMP,
  jobFinished,
  type CronJob,
  type Job,
  type ObjectReference,
} from '../../api/batch.js';
import { timestamp } from '../../api/types.js';
import {
  nextTime,
  parseSchedule,
  previousTime,
  ScheduleError,
  type Schedule,
} from '../../api/cron.js';

/**
 * The CronJob controller's decisions, as a pure function of a CronJob, the Jobs it owns and
 * the time: which Job to start (if a run is due), which to delete (Replace, history
 * limits), the status to write, the Events to record and when to look again.
 */

/** More missed start times than this are reported, as Kubernetes does. */
export const MAX_MISSED = 100;

export interface CronEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface CronJobPlan {
  status: NonNullable<CronJob['status']>;
  /** The run to start now: its Job name and scheduled time (ms). */
  start?: { name: string; scheduledAt: number };
  /** Active Jobs to delete before starting (concurrencyPolicy Replace). */
  replace: ObjectReference[];
  /** Finished Jobs beyond the history limits, oldest first. */
  prune: Job[];
  events: CronEvent[];
  /** When the next run is due, in ms from now; undefined if never. */
  requeueMs?: number;
}

/** The name of the Job for a run scheduled at `at`: minutes since the epoch, as Kubernetes. */
export function jobNameFor(cj: CronJob, at: number): string {
  return `${cj.metadata.name}-${Math.floor(at / 60_000)}`;
}

/** A reference to a Job, as status.active holds it. */
export function jobReference(job: Job): ObjectReference {
  return {
    kind: 'Job',
    namespace: job.metadata.namespace,
    name: job.metadata.name,
    uid: job.metadata.uid,
    apiVersion: 'batch/v1',
    resourceVersion: job.metadata.resourceVersion,
  };
}

/**
 * The start times the CronJob missed in (earliest, now]: the latest one and how many
 * there were, counted up to MAX_MISSED + 1.
 */
export function missedRuns(
  schedule: Schedule,
  earliest: number,
  now: number,
  zone?: string,
): { latest?: number; count: number } {
  const latest = previousTime(schedule, now, zone);
  if (latest === undefined || latest <= earliest) return { count: 0 };
  let count = 0;
  for (let t = nextTime(schedule, earliest, zone); t !== undefined && t <= now;) {
    if (++count > MAX_MISSED) break;
    t = nextTime(schedule, t, zone);
  }
  return { latest, count };
}

function startOf(job: Job): number {
  return Date.parse(job.status?.startTime ?? job.metadata.creationTimestamp ?? '') || 0;
}

/** Oldest first: by start time (whole seconds), then scheduled time, then name. */
function compareAge(a: Job, b: Job): number {
  const scheduled = (j: Job) =>
    Date.parse(j.metadata.annotations?.[CRONJOB_SCHEDULED_TIMESTAMP] ?? '') || 0;
  return (
    startOf(a) - startOf(b) ||
    scheduled(a) - scheduled(b) ||
    (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '')
  );
}

/** Reconciles status.active with the owned Jobs; notes the completions it sees. */
function trackActive(cj: CronJob, jobs: Job[], plan: CronJobPlan): void {
  const byUid = new Map(jobs.map((j) => [j.metadata.uid, j]));
  const active: ObjectReference[] = [];
  for (const ref of cj.status?.active ?? []) {
    const job = byUid.get(ref.uid);
    if (!job) {
      plan.events.push({
        type: 'Normal',
        reason: 'MissingJob',
        message: `Active job went missing: ${ref.name}`,
      });
      continue;
    }
    const result = jobFinished(job);
    if (!result) {
      active.push(ref);
      continue;
    }
    plan.events.push({
      type: 'Normal',
      reason: 'SawCompletedJob',
      message: `Saw completed job: ${job.metadata.name}, condition: ${result}`,
    });
    const doneAt = job.status?.completionTime;
    const last = plan.status.lastSuccessfulTime;
    if (result === 'Complete' && doneAt && (!last || Date.parse(last) < Date.parse(doneAt))) {
      plan.status.lastSuccessfulTime = doneAt;
    }
  }
  // A running Job we own but do not list (we stopped between creating it and writing the
  // status) is active all the same, so Forbid and Replace see it.
  const listed = new Set(active.map((r) => r.uid));
  for (const job of jobs) {
    if (jobFinished(job) || job.metadata.deletionTimestamp || listed.has(job.metadata.uid)) {
      continue;
    }
    active.push(jobReference(job));
    // Its run happened even if the status never said so: do not start it again.
    const at = Date.parse(job.metadata.annotations?.[CRONJOB_SCHEDULED_TIMESTAMP] ?? '');
    const last = Date.parse(plan.status.lastScheduleTime ?? '');
    if (at && !(last >= at)) plan.status.lastScheduleTime = timestamp(new Date(at));
  }
  if (active.length > 0) plan.status.active = active;
  else delete plan.status.active;
}

/** Finished Jobs past successfulJobsHistoryLimit / failedJobsHistoryLimit, oldest first. */
export function jobsToPrune(cj: CronJob, jobs: Job[]): Job[] {
  const prune: Job[] = [];
  const limits = {
    Complete: cj.spec.successfulJobsHistoryLimit ?? 3,
    Failed: cj.spec.failedJobsHistoryLimit ?? 1,
  };
  for (const result of ['Complete', 'Failed'] as const) {
    const done = jobs
      .filter((j) => jobFinished(j) === result && !j.metadata.deletionTimestamp)
      .sort(compareAge);
    prune.push(...done.slice(0, Math.max(0, done.length - limits[result])));
  }
  return prune;
}

/** Plans one sync of a CronJob at `now` (ms). */
export function planCronJob(cj: CronJob, jobs: Job[], now: number): CronJobPlan {
  const plan: CronJobPlan = {
    status: structuredClone(cj.status ?? {}),
    replace: [],
    prune: jobsToPrune(cj, jobs),
    events: [],
  };
  trackActive(cj, jobs, plan);
  if (cj.metadata.deletionTimestamp) return plan;
  let schedule: Schedule;
  try {
    schedule = parseSchedule(cj.spec.schedule);
  } catch (err) {
    if (!(err instanceof ScheduleError)) throw err;
    const message = `unparseable schedule: ${cj.spec.schedule}: ${err.message}`;
    plan.events.push({ type: 'Warning', reason: 'UnparseableSchedule', message });
    return plan;
  }
  if (cj.spec.suspend) return plan;
  const zone = cj.spec.timeZone;
  const next = nextTime(schedule, now, zone);
  plan.requeueMs = next === undefined ? undefined : next - now + 100;

  const last = plan.status.lastScheduleTime ?? cj.metadata.creationTimestamp;
  let earliest = Date.parse(last ?? '') || now;
  const deadline = cj.spec.startingDeadlineSeconds;
  if (deadline !== undefined) earliest = Math.max(earliest, now - deadline * 1000);
  const missed = missedRuns(schedule, earliest, now, zone);
  if (missed.latest === undefined) return plan;
  if (missed.count > MAX_MISSED) {
    plan.events.push({
      type: 'Warning',
      reason: 'TooManyMissedTimes',
      message:
        `too many missed start times: > ${MAX_MISSED}. Set or decrease ` +
        '.spec.startingDeadlineSeconds or check clock skew',
    });
  }
  const active = plan.status.active ?? [];
  if (cj.spec.concurrencyPolicy === 'Forbid' && active.length > 0) {
    // The run stays due: it starts when the active Job finishes, if still in its window.
    return plan;
  }
  if (cj.spec.concurrencyPolicy === 'Replace') {
    plan.replace = active;
    delete plan.status.active;
  }
  plan.start = { name: jobNameFor(cj, missed.latest), scheduledAt: missed.latest };
  plan.status.lastScheduleTime = timestamp(new Date(missed.latest));
  return plan;
}
