import {
  CRONJOB_SCHEDULED_TIMESTAMP,
  jobFinished,
  type CronJob,
  type Job,
} from '../../api/batch.js';
import { byGroupResource } from '../../api/resources.js';
import { controllerOf, controllerRef, objectKey, timestamp } from '../../api/types.js';
import { EventRecorder } from '../../client/events.js';
import type { InformerFactory } from '../../client/factory.js';
import type { Informer } from '../../client/informer.js';
import { isReason, type KubeClient } from '../../client/rest.js';
import { deepEqual } from '../../util/equal.js';
import { QueueController } from '../base.js';
import { addWorkloadIndexes, CONTROLLER_INDEX } from '../indexes.js';
import { jobReference, planCronJob, type CronJobPlan } from './sync.js';

const CRONJOBS = byGroupResource.get('batch/cronjobs')!;
const JOBS = byGroupResource.get('batch/jobs')!;

export interface CronJobControllerOptions {
  workers?: number;
  /** The time, in ms since the epoch; tests move it. */
  clock?: () => number;
}

/**
 * Starts a CronJob's Jobs at the times its schedule names (see sync.ts for the decisions),
 * deletes finished Jobs past the history limits, and keeps status.active,
 * lastScheduleTime and lastSuccessfulTime. Each CronJob is looked at again when its next
 * run is due (a delayed queue entry, no polling) and whenever one of its Jobs changes.
 */
export class CronJobController extends QueueController {
  private readonly cronJobs: Informer<CronJob>;
  private readonly jobs: Informer<Job>;
  private readonly events: EventRecorder;
  private readonly clock: () => number;

  constructor(
    private readonly client: KubeClient,
    factory: InformerFactory,
    opts: CronJobControllerOptions = {},
  ) {
    super('cronjob-controller', opts.workers ?? 5);
    this.cronJobs = factory.informer<CronJob>(CRONJOBS);
    this.jobs = factory.informer<Job>(JOBS);
    this.events = new EventRecorder(client, 'cronjob-controller');
    this.clock = opts.clock ?? Date.now;
  }

  register(): void {
    addWorkloadIndexes(this.jobs);
    this.cronJobs.addHandlers({
      onAdd: (cj) => this.enqueue(cj),
      onUpdate: (_old, cj) => this.enqueue(cj),
      onDelete: () => undefined,
    });
    const onJob = (job: Job) => {
      const ref = controllerOf(job);
      if (ref?.kind === 'CronJob') this.queue.add(`${job.metadata.namespace}/${ref.name}`);
    };
    this.jobs.addHandlers({
      onAdd: onJob,
      onUpdate: (_old, job) => onJob(job),
      onDelete: onJob,
    });
  }

  protected async reconcile(key: string): Promise<number | void> {
    const cached = this.cronJobs.get(key);
    if (!cached) return;
    const cj = structuredClone(cached);
    const jobs = this.jobs.byIndex(CONTROLLER_INDEX, cj.metadata.uid ?? '');
    const plan = planCronJob(cj, jobs, this.clock());
    for (const e of plan.events) {
      if (e.type === 'Warning') this.events.warning(cj, e.reason, e.message);
      else this.events.normal(cj, e.reason, e.message);
    }
    for (const ref of plan.replace) await this.deleteJob(cj, ref.name ?? '', ref.uid);
    if (plan.start) await this.startJob(cj, plan);
    if (!deepEqual(cj.status ?? {}, plan.status)) {
      this.log.debug({ cronjob: key, active: plan.status.active?.length ?? 0 }, 'writing status');
      await this.client.updateStatus(CRONJOBS, { ...cj, status: plan.status });
    }
    for (const job of plan.prune) {
      await this.deleteJob(cj, job.metadata.name ?? '', job.metadata.uid);
    }
    return plan.requeueMs;
  }

  private async startJob(cj: CronJob, plan: CronJobPlan): Promise<void> {
    const { name, scheduledAt } = plan.start!;
    let job: Job;
    try {
      job = await this.client.create<Job>(JOBS, jobForRun(cj, name, scheduledAt));
      this.events.normal(cj, 'SuccessfulCreate', `Created job ${name}`);
      this.log.info({ cronjob: objectKey(cj), job: name }, 'started scheduled job');
    } catch (err) {
      if (!isReason(err, 'AlreadyExists')) {
        this.events.warning(cj, 'FailedCreate', `Error creating job: ${(err as Error).message}`);
        throw err;
      }
      // Created by an earlier attempt whose status write did not land.
      job = await this.client.get<Job>(JOBS, cj.metadata.namespace, name);
      if (controllerOf(job)?.uid !== cj.metadata.uid || jobFinished(job)) return;
    }
    const active = plan.status.active ?? [];
    if (!active.some((r) => r.uid === job.metadata.uid)) active.push(jobReference(job));
    plan.status.active = active;
  }

  private async deleteJob(cj: CronJob, name: string, uid: string | undefined): Promise<void> {
    try {
      await this.client.delete(JOBS, cj.metadata.namespace, name, {
        propagationPolicy: 'Background',
        ...(uid ? { preconditions: { uid } } : {}),
      });
      this.events.normal(cj, 'SuccessfulDelete', `Deleted job ${name}`);
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
  }
}

/**
 * The Job a CronJob runs at `scheduledAt`: its template, owned by the CronJob. The
 * scheduled-timestamp annotation is written in UTC (Kubernetes writes it in the CronJob's
 * time zone; both are RFC 3339 and parse to the same instant).
 */
export function jobForRun(cj: CronJob, name: string, scheduledAt: number): Job {
  const template = cj.spec.jobTemplate;
  const meta = template.metadata ?? {};
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace: cj.metadata.namespace,
      labels: { ...(meta.labels ?? {}) },
      annotations: {
        ...(meta.annotations ?? {}),
        [CRONJOB_SCHEDULED_TIMESTAMP]: timestamp(new Date(scheduledAt)),
      },
      ownerReferences: [controllerRef(cj, 'batch/v1', 'CronJob')],
    },
    spec: structuredClone(template.spec),
  };
}
