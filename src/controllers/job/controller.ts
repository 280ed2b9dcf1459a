import {
  COMPLETION_INDEX,
  JOB_TRACKING_FINALIZER,
  jobCondition,
  jobFinished,
  type Job,
} from '../../api/batch.js';
import { byGroupResource } from '../../api/resources.js';
import {
  controllerOf,
  controllerRef,
  objectKey,
  splitKey,
  type Container,
  type Pod,
} from '../../api/types.js';
import { EventRecorder } from '../../client/events.js';
import type { InformerFactory } from '../../client/factory.js';
import type { Informer } from '../../client/informer.js';
import { isReason, type KubeClient } from '../../client/rest.js';
import { deepEqual } from '../../util/equal.js';
import { QueueController } from '../base.js';
import { addWorkloadIndexes, CONTROLLER_INDEX } from '../indexes.js';
import { Expectations } from '../replicaset/expectations.js';
import { hasTrackingFinalizer, planJob, type JobPlan } from './sync.js';

const JOBS = byGroupResource.get('batch/jobs')!;
const PODS = byGroupResource.get('/pods')!;

/** Queue keys of pods whose tracking finalizer may have to go because their Job is gone. */
const POD_KEY = 'pod:';
/** At most this many pods are created in one sync, as in Kubernetes. */
const BURST = 500;

export interface JobControllerOptions {
  workers?: number;
  /** The time, in ms since the epoch; tests move it. */
  clock?: () => number;
  /** Base of the delay before failed pods are replaced (default 10 s, as Kubernetes). */
  backoffBaseMs?: number;
  /** Cap of that delay (default 10 minutes). */
  backoffMaxMs?: number;
}

/**
 * Runs each Job's pods to completion: keeps min(parallelism, completions - succeeded) pods
 * active, counts finished pods through the tracking finalizer (see sync.ts), and marks the
 * Job Complete or Failed (backoff limit, active deadline). Finished Jobs with
 * ttlSecondsAfterFinished are deleted once it expired, with background propagation.
 *
 * Creations and deletions in flight are expectations, and a Job's pods are not managed
 * again before they were observed; finalizers removed but not yet observed are remembered
 * too, so a lagging watch never makes a pod count twice.
 *
 * Pods are the Job's through their controller owner reference only: orphans that match a
 * manual selector are not adopted, and owned pods that stop matching are not released.
 */
export class JobController extends QueueController {
  readonly expectations = new Expectations();
  private readonly jobs: Informer<Job>;
  private readonly pods: Informer<Pod>;
  private readonly events: EventRecorder;
  private readonly clock: () => number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  /** Uids of pods whose finalizer we removed, until the informer shows it gone. */
  private readonly untracked = new Set<string>();
  /** When each Job last saw a pod fail, for the replacement backoff (kept in memory only). */
  private readonly lastFailure = new Map<string, number>();

  constructor(
    private readonly client: KubeClient,
    factory: InformerFactory,
    opts: JobControllerOptions = {},
  ) {
    super('job-controller', opts.workers ?? 5);
    this.jobs = factory.informer<Job>(JOBS);
    this.pods = factory.informer<Pod>(PODS);
    this.events = new EventRecorder(client, 'job-controller');
    this.clock = opts.clock ?? Date.now;
    this.backoffBaseMs = opts.backoffBaseMs ?? 10_000;
    this.backoffMaxMs = opts.backoffMaxMs ?? 600_000;
  }

  register(): void {
    addWorkloadIndexes(this.jobs);
    addWorkloadIndexes(this.pods);
    this.jobs.addHandlers({
      onAdd: (job) => this.enqueue(job),
      onUpdate: (_old, job) => this.enqueue(job),
      onDelete: (job) => this.onJobDelete(job),
    });
    this.pods.addHandlers({
      onAdd: (pod) => this.onPod(pod, true),
      onUpdate: (old, pod) => {
        if (pod.metadata.deletionTimestamp && !old.metadata.deletionTimestamp) {
          this.deletionObserved(pod);
        }
        this.onPod(pod, false);
      },
      onDelete: (pod) => {
        this.deletionObserved(pod);
        this.onPod(pod, false);
      },
    });
  }

  private onJobDelete(job: Job): void {
    const key = objectKey(job);
    this.expectations.delete(key);
    this.lastFailure.delete(key);
    for (const pod of this.pods.byIndex(CONTROLLER_INDEX, job.metadata.uid ?? '')) {
      if (hasTrackingFinalizer(pod)) this.queue.add(POD_KEY + objectKey(pod));
    }
  }

  private ownerOf(pod: Pod): Job | undefined {
    const ref = controllerOf(pod);
    if (!ref || ref.kind !== 'Job') return undefined;
    const job = this.jobs.get(`${pod.metadata.namespace}/${ref.name}`);
    return job?.metadata.uid === ref.uid ? job : undefined;
  }

  private onPod(pod: Pod, added: boolean): void {
    if (!hasTrackingFinalizer(pod)) this.untracked.delete(pod.metadata.uid ?? '');
    const job = this.ownerOf(pod);
    if (!job) {
      const ref = controllerOf(pod);
      if (ref?.kind === 'Job' && hasTrackingFinalizer(pod)) {
        this.queue.add(POD_KEY + objectKey(pod));
      }
      return;
    }
    if (added) this.expectations.creationObserved(objectKey(job));
    this.enqueue(job);
  }

  private deletionObserved(pod: Pod): void {
    const job = this.ownerOf(pod);
    if (job) this.expectations.deletionObserved(objectKey(job), objectKey(pod));
    this.untracked.delete(pod.metadata.uid ?? '');
  }

  protected async reconcile(key: string): Promise<number | void> {
    if (key.startsWith(POD_KEY)) return this.releaseOrphan(key.slice(POD_KEY.length));
    const cached = this.jobs.get(key);
    if (!cached) {
      this.expectations.delete(key);
      return;
    }
    const job = structuredClone(cached);
    const owned = this.pods.byIndex(CONTROLLER_INDEX, job.metadata.uid ?? '');
    if (job.metadata.deletionTimestamp) {
      await this.untrack(owned);
      return;
    }
    const pods = owned.map((pod) => this.withoutRemovedFinalizer(pod));
    const now = this.clock();
    const plan = planJob({
      job,
      pods,
      now,
      lastFailureAt: this.lastFailure.get(key),
      backoffBaseMs: this.backoffBaseMs,
      backoffMaxMs: this.backoffMaxMs,
    });
    if (plan.newFailures > 0) this.lastFailure.set(key, now);
    const canManage = this.expectations.satisfied(key);
    await this.writeStatus(job, plan);
    this.recordTransitions(job, plan);
    let failure: unknown;
    try {
      if (canManage) await this.managePods(job, key, plan);
    } catch (err) {
      failure = err;
    }
    await this.untrack(plan.untrack);
    if (failure) throw failure;
    const finished = jobFinished(job) ?? plan.finished?.type;
    const ttl = finished ? await this.expireFinished(job, plan, now) : undefined;
    return minDefined(plan.requeueMs, ttl);
  }

  /** A pod whose finalizer we removed looks, to the plan, like the informer will show it. */
  private withoutRemovedFinalizer(pod: Pod): Pod {
    if (!this.untracked.has(pod.metadata.uid ?? '') || !hasTrackingFinalizer(pod)) return pod;
    const finalizers = pod.metadata.finalizers!.filter((f) => f !== JOB_TRACKING_FINALIZER);
    return { ...pod, metadata: { ...pod.metadata, finalizers } };
  }

  private async writeStatus(job: Job, plan: JobPlan): Promise<void> {
    if (deepEqual(job.status ?? {}, plan.status)) return;
    const written = await this.client.updateStatus<Job>(JOBS, { ...job, status: plan.status });
    job.metadata.resourceVersion = written.metadata.resourceVersion;
  }

  private recordTransitions(job: Job, plan: JobPlan): void {
    const key = objectKey(job);
    if (plan.suspended === true) this.events.normal(job, 'Suspended', 'Job suspended');
    if (plan.suspended === false) this.events.normal(job, 'Resumed', 'Job resumed');
    const done = plan.finished;
    if (!done) return;
    this.log.info({ job: key, result: done.type, reason: done.reason }, 'job finished');
    if (done.type === 'Complete') this.events.normal(job, 'Completed', 'Job completed');
    else this.events.warning(job, done.reason, done.message);
  }

  private async managePods(job: Job, key: string, plan: JobPlan): Promise<void> {
    if (plan.remove.length > 0) {
      await this.deletePods(job, key, plan.remove);
      return;
    }
    if (plan.create > 0) await this.createPods(job, key, plan);
  }

  /** Creates pods in slow-start batches of 1, 2, 4, ...; a failing batch ends the burst. */
  private async createPods(job: Job, key: string, plan: JobPlan): Promise<void> {
    const count = Math.min(plan.create, BURST);
    const indexes = job.spec.completionMode === 'Indexed' ? plan.indexes.slice(0, count) : [];
    this.expectations.expectCreations(key, count);
    this.log.debug({ job: key, count }, 'creating pods');
    let next = 0;
    for (let batch = 1; next < count && !this.stopped; batch *= 2) {
      const size = Math.min(batch, count - next);
      const results = await Promise.allSettled(
        Array.from({ length: size }, (_, i) => this.createPod(job, indexes[next + i])),
      );
      next += size;
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      for (let i = 0; i < failed.length; i++) this.expectations.creationObserved(key);
      if (failed.length > 0) {
        for (let i = next; i < count; i++) this.expectations.creationObserved(key);
        throw failed[0].reason;
      }
    }
    for (let i = next; i < count; i++) this.expectations.creationObserved(key);
  }

  private async createPod(job: Job, index: number | undefined): Promise<void> {
    try {
      const pod = await this.client.create<Pod>(PODS, podForJob(job, index));
      this.events.normal(job, 'SuccessfulCreate', `Created pod: ${pod.metadata.name}`);
    } catch (err) {
      this.events.warning(job, 'FailedCreate', `Error creating: ${(err as Error).message}`);
      throw err;
    }
  }

  private async deletePods(job: Job, key: string, victims: Pod[]): Promise<void> {
    this.expectations.expectDeletions(key, victims.map(objectKey));
    const results = await Promise.allSettled(
      victims.map(async (pod) => {
        const { namespace, name, uid } = pod.metadata;
        try {
          await this.client.delete(PODS, namespace, name!, { preconditions: { uid } });
          this.events.normal(job, 'SuccessfulDelete', `Deleted pod: ${name}`);
        } catch (err) {
          this.expectations.deletionObserved(key, objectKey(pod));
          if (isReason(err, 'NotFound')) return;
          this.events.warning(job, 'FailedDelete', `Error deleting: ${(err as Error).message}`);
          throw err;
        }
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Removes the tracking finalizer from pods (only after their count is in the status). */
  private async untrack(pods: Pod[]): Promise<void> {
    const results = await Promise.allSettled(
      pods.filter(hasTrackingFinalizer).map((pod) => this.removeFinalizer(pod)),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async removeFinalizer(pod: Pod): Promise<void> {
    const uid = pod.metadata.uid ?? '';
    if (this.untracked.has(uid)) return;
    const finalizers = (pod.metadata.finalizers ?? []).filter((f) => f !== JOB_TRACKING_FINALIZER);
    try {
      await this.client.update(PODS, { ...pod, metadata: { ...pod.metadata, finalizers } });
      this.untracked.add(uid);
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
  }

  /** A pod still tracked by a Job that is gone or going: nobody will count it, so let it go. */
  private async releaseOrphan(podKey: string): Promise<void> {
    const pod = this.pods.get(podKey);
    if (!pod || !hasTrackingFinalizer(pod)) return;
    const ref = controllerOf(pod);
    const { namespace } = splitKey(podKey);
    if (ref?.kind === 'Job') {
      try {
        const job = await this.client.get<Job>(JOBS, namespace, ref.name);
        if (job.metadata.uid === ref.uid && !job.metadata.deletionTimestamp) {
          this.queue.add(`${namespace}/${ref.name}`);
          return;
        }
      } catch (err) {
        if (!isReason(err, 'NotFound')) throw err;
      }
    }
    await this.removeFinalizer(pod);
  }

  /** Deletes a finished Job whose ttlSecondsAfterFinished passed; else when to look again. */
  private async expireFinished(job: Job, plan: JobPlan, now: number): Promise<number | void> {
    const ttl = job.spec.ttlSecondsAfterFinished;
    if (ttl === undefined) return;
    const status = plan.status;
    const finishedAt =
      status.completionTime ?? jobCondition({ ...job, status }, 'Failed')?.lastTransitionTime;
    const at = finishedAt ? Date.parse(finishedAt) : now;
    const left = at + ttl * 1000 - now;
    if (left > 0) return left + 10;
    const { namespace, name, uid } = job.metadata;
    try {
      await this.client.delete(JOBS, namespace, name!, {
        propagationPolicy: 'Background',
        preconditions: { uid },
      });
      this.log.info({ job: objectKey(job) }, 'deleted finished job after its TTL');
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
  }
}

function minDefined(a: number | void, b: number | void): number | void {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

/**
 * A new pod for a Job: the template's labels, annotations and spec, owned by the Job and
 * held by the tracking finalizer. Pods of Indexed Jobs carry their completion index as an
 * annotation and a label, in the env JOB_COMPLETION_INDEX and in their hostname.
 */
export function podForJob(job: Job, index?: number): Pod {
  const template = job.spec.template ?? { spec: { containers: [] } };
  const meta = template.metadata ?? {};
  const name = job.metadata.name!;
  const labels = { ...(meta.labels ?? {}) };
  const annotations = { ...(meta.annotations ?? {}) };
  const spec = structuredClone(template.spec);
  if (index !== undefined) {
    labels[COMPLETION_INDEX] = String(index);
    annotations[COMPLETION_INDEX] = String(index);
    spec.hostname ??= `${name}-${index}`;
    const env = {
      name: 'JOB_COMPLETION_INDEX',
      valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${COMPLETION_INDEX}']` } },
    };
    const add = (c: Container) => {
      c.env = [...(c.env ?? []).filter((e) => e.name !== env.name), env];
    };
    spec.containers.forEach(add);
    spec.initContainers?.forEach(add);
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: index === undefined ? `${name}-` : `${name}-${index}-`,
      namespace: job.metadata.namespace,
      labels,
      ...(Object.keys(annotations).length ? { annotations } : {}),
      ownerReferences: [controllerRef(job, 'batch/v1', 'Job')],
      finalizers: [JOB_TRACKING_FINALIZER],
    },
    spec,
  };
}
