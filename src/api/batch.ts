import { parseSchedule, ScheduleError, validTimeZone } from './cron.js';
import { defaultPodTemplate } from './defaults.js';
import type { FieldError } from './errors.js';
import type { Condition, KObject, LabelSelector, ObjectMeta, PodTemplateSpec } from './types.js';
import { deepEqual } from '../util/equal.js';
import {
  validateLabels,
  validatePodSpec,
  validateReplicas,
  validateSelector,
} from './validation.js';

/**
 * batch/v1: Job and CronJob, their defaults and their validation, as Kubernetes has them.
 * The controllers that act on them live in src/controllers/job and src/controllers/cronjob.
 */

/** Labels the API server puts on a Job's pod template when it generates the selector. */
export const JOB_UID_LABEL = 'batch.kubernetes.io/controller-uid';
export const JOB_NAME_LABEL = 'batch.kubernetes.io/job-name';
export const LEGACY_JOB_UID_LABEL = 'controller-uid';
export const LEGACY_JOB_NAME_LABEL = 'job-name';
/** The completion index of a pod of an Indexed Job (annotation and label). */
export const COMPLETION_INDEX = 'batch.kubernetes.io/job-completion-index';
/** The finalizer that keeps a Job's pod until the Job counted it. */
export const JOB_TRACKING_FINALIZER = 'batch.kubernetes.io/job-tracking';
/** Annotation on Jobs a CronJob created: the time the run was scheduled for. */
export const CRONJOB_SCHEDULED_TIMESTAMP = 'batch.kubernetes.io/cronjob-scheduled-timestamp';

export interface JobSpec {
  parallelism?: number;
  completions?: number;
  activeDeadlineSeconds?: number;
  backoffLimit?: number;
  selector?: LabelSelector;
  manualSelector?: boolean;
  template: PodTemplateSpec;
  ttlSecondsAfterFinished?: number;
  completionMode?: 'NonIndexed' | 'Indexed';
  suspend?: boolean;
  [field: string]: unknown;
}

/** Finished pods whose count is in flight: recorded here before their finalizer goes. */
export interface UncountedTerminatedPods {
  succeeded?: string[];
  failed?: string[];
}

export interface JobStatus {
  conditions?: Condition[];
  startTime?: string;
  completionTime?: string;
  active?: number;
  ready?: number;
  succeeded?: number;
  failed?: number;
  completedIndexes?: string;
  uncountedTerminatedPods?: UncountedTerminatedPods;
  [field: string]: unknown;
}

export interface Job extends KObject {
  spec: JobSpec;
  status?: JobStatus;
}

export interface JobTemplateSpec {
  metadata?: ObjectMeta;
  spec: JobSpec;
}

export interface ObjectReference {
  apiVersion?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  uid?: string;
  resourceVersion?: string;
}

export interface CronJob extends KObject {
  spec: {
    schedule: string;
    timeZone?: string;
    startingDeadlineSeconds?: number;
    concurrencyPolicy?: 'Allow' | 'Forbid' | 'Replace';
    suspend?: boolean;
    jobTemplate: JobTemplateSpec;
    successfulJobsHistoryLimit?: number;
    failedJobsHistoryLimit?: number;
  };
  status?: {
    active?: ObjectReference[];
    lastScheduleTime?: string;
    lastSuccessfulTime?: string;
  };
}

/** The True condition of `type` on a Job, if it has one. */
export function jobCondition(job: Job, type: string): Condition | undefined {
  return job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

/** 'Complete' or 'Failed' once the Job has finished; undefined while it runs. */
export function jobFinished(job: Job): 'Complete' | 'Failed' | undefined {
  if (jobCondition(job, 'Complete')) return 'Complete';
  if (jobCondition(job, 'Failed')) return 'Failed';
  return undefined;
}

function defaultJobSpec(spec: JobSpec): void {
  if (spec.completions === undefined && spec.parallelism === undefined) {
    spec.completions = 1;
    spec.parallelism = 1;
  }
  spec.parallelism ??= 1;
  spec.backoffLimit ??= 6;
  spec.completionMode ??= 'NonIndexed';
  spec.suspend ??= false;
  defaultPodTemplate(spec.template);
}

/**
 * Defaults a Job. Unless spec.manualSelector is true, the selector is generated from the
 * Job's uid and the template gets the matching labels; a user-given selector is kept and
 * validation then checks that it is the generated one. A Job without labels of its own
 * gets its template's, generated ones included, as Kubernetes shows it (its defaulting
 * copies them on every read, after the create has generated them), so that
 * `-l batch.kubernetes.io/job-name=NAME` finds the Job as well as its pods.
 */
export function defaultJob(job: Job): void {
  const spec = job.spec;
  if (!spec || typeof spec !== 'object') return;
  defaultJobSpec(spec);
  generateSelector(job);
  const templateLabels = spec.template?.metadata?.labels;
  const meta = job.metadata;
  if (!templateLabels || typeof templateLabels !== 'object') return;
  if (meta.labels && (typeof meta.labels !== 'object' || Object.keys(meta.labels).length > 0))
    return;
  meta.labels = { ...templateLabels };
}

/** The generated selector and template labels of a Job without spec.manualSelector. */
function generateSelector(job: Job): void {
  const spec = job.spec;
  if (spec.manualSelector === true || !job.metadata.uid) return;
  if (!spec.template || typeof spec.template !== 'object') return;
  const meta = (spec.template.metadata ??= {});
  const labels = (meta.labels ??= {});
  if (typeof labels !== 'object') return;
  const uid = job.metadata.uid;
  const name = job.metadata.name ?? '';
  labels[LEGACY_JOB_UID_LABEL] ??= uid;
  labels[JOB_UID_LABEL] ??= uid;
  labels[LEGACY_JOB_NAME_LABEL] ??= name;
  labels[JOB_NAME_LABEL] ??= name;
  const selector = (spec.selector ??= {});
  if (typeof selector !== 'object') return;
  const match = (selector.matchLabels ??= {});
  if (typeof match === 'object') match[JOB_UID_LABEL] ??= uid;
}

/** Defaults a CronJob and the Job template inside it. */
export function defaultCronJob(cj: CronJob): void {
  const spec = cj.spec;
  if (!spec || typeof spec !== 'object') return;
  spec.concurrencyPolicy ??= 'Allow';
  spec.suspend ??= false;
  spec.successfulJobsHistoryLimit ??= 3;
  spec.failedJobsHistoryLimit ??= 1;
  const jobSpec = spec.jobTemplate?.spec;
  if (jobSpec && typeof jobSpec === 'object') defaultJobSpec(jobSpec);
}

function nonNegative(value: unknown, path: string): FieldError[] {
  return validateReplicas(value, path);
}

function positive(value: unknown, path: string): FieldError[] {
  if (value === undefined) return [];
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    return [{ field: path, type: 'Invalid', value, detail: 'must be greater than 0' }];
  }
  return [];
}

/** Validates a JobSpec found at `path` (`spec` or `spec.jobTemplate.spec`). */
function validateJobSpec(spec: JobSpec | undefined, path: string, generated: boolean) {
  if (!spec || typeof spec !== 'object') return [{ field: path, type: 'Required' } as FieldError];
  const errs: FieldError[] = [
    ...nonNegative(spec.parallelism, `${path}.parallelism`),
    ...nonNegative(spec.completions, `${path}.completions`),
    ...nonNegative(spec.backoffLimit, `${path}.backoffLimit`),
    ...positive(spec.activeDeadlineSeconds, `${path}.activeDeadlineSeconds`),
    ...nonNegative(spec.ttlSecondsAfterFinished, `${path}.ttlSecondsAfterFinished`),
  ];
  const mode = spec.completionMode;
  if (mode !== undefined && mode !== 'NonIndexed' && mode !== 'Indexed') {
    errs.push({
      field: `${path}.completionMode`,
      type: 'Unsupported',
      value: mode,
      detail: 'supported values: "NonIndexed", "Indexed"',
    });
  }
  if (mode === 'Indexed' && spec.completions === undefined) {
    errs.push({
      field: `${path}.completions`,
      type: 'Required',
      detail: 'when completion mode is Indexed',
    });
  }
  const template = spec.template;
  if (!template || typeof template !== 'object') {
    errs.push({ field: `${path}.template`, type: 'Required' });
    return errs;
  }
  const labels = template.metadata?.labels;
  errs.push(...validateLabels(labels, `${path}.template.metadata.labels`));
  if (generated) {
    const at = `${path}.selector`;
    const sel = validateSelector(spec.selector, labels, at, `${path}.template.metadata.labels`);
    const empty = 'empty selector is not allowed for a job';
    errs.push(...sel.map((e) => (e.detail?.startsWith('empty') ? { ...e, detail: empty } : e)));
  }
  errs.push(...validatePodSpec(template.spec, `${path}.template.spec`));
  const policy = template.spec?.restartPolicy;
  if (policy !== 'OnFailure' && policy !== 'Never') {
    errs.push({
      field: `${path}.template.spec.restartPolicy`,
      type: 'Unsupported',
      value: policy,
      detail: 'supported values: "OnFailure", "Never"',
    });
  }
  return errs;
}

/** The selector of a Job that does not ask for a manual one must be the generated one. */
function validateGeneratedSelector(job: Job): FieldError[] {
  if (job.spec.manualSelector === true) return [];
  const uid = job.metadata.uid;
  if (!uid) return [{ field: 'metadata.uid', type: 'Required' }];
  const match = job.spec.selector?.matchLabels ?? {};
  const labels = job.spec.template?.metadata?.labels ?? {};
  if (match[JOB_UID_LABEL] === uid && labels[JOB_UID_LABEL] === uid) return [];
  return [
    {
      field: 'spec.selector',
      type: 'Invalid',
      value: job.spec.selector,
      detail: '`selector` not auto-generated',
    },
  ];
}

function immutable(path: string, value: unknown, old: unknown): FieldError[] {
  if (deepEqual(value, old)) return [];
  return [{ field: path, type: 'Invalid', value, detail: 'field is immutable' }];
}

/** Validates a Job, and on update the fields that may not change. */
export function validateJob(obj: KObject, old?: KObject): FieldError[] {
  const job = obj as Job;
  if (!job.spec || typeof job.spec !== 'object') return [{ field: 'spec', type: 'Required' }];
  const errs = [...validateGeneratedSelector(job), ...validateJobSpec(job.spec, 'spec', true)];
  if (!old) return errs;
  const prev = (old as Job).spec ?? {};
  errs.push(...immutable('spec.selector', job.spec.selector, prev.selector));
  errs.push(...immutable('spec.template', job.spec.template, prev.template));
  errs.push(...immutable('spec.completionMode', job.spec.completionMode, prev.completionMode));
  if (job.spec.completionMode !== 'Indexed') {
    errs.push(...immutable('spec.completions', job.spec.completions, prev.completions));
  } else if (job.spec.completions !== prev.completions) {
    // Kubernetes lets an Indexed Job be resized only with completions equal to parallelism.
    if (job.spec.completions !== job.spec.parallelism) {
      errs.push({
        field: 'spec.completions',
        type: 'Invalid',
        value: job.spec.completions,
        detail: 'can only be modified in tandem with spec.parallelism',
      });
    }
  }
  return errs;
}

/** Validates a CronJob: its schedule, time zone, policies and Job template. */
export function validateCronJob(obj: KObject): FieldError[] {
  const cj = obj as CronJob;
  const spec = cj.spec;
  if (!spec || typeof spec !== 'object') return [{ field: 'spec', type: 'Required' }];
  const errs: FieldError[] = [...validateSchedule(spec.schedule), ...validateZone(spec.timeZone)];
  const policy = spec.concurrencyPolicy;
  if (policy !== undefined && !['Allow', 'Forbid', 'Replace'].includes(policy)) {
    errs.push({
      field: 'spec.concurrencyPolicy',
      type: 'Unsupported',
      value: policy,
      detail: 'supported values: "Allow", "Forbid", "Replace"',
    });
  }
  errs.push(...nonNegative(spec.startingDeadlineSeconds, 'spec.startingDeadlineSeconds'));
  errs.push(...nonNegative(spec.successfulJobsHistoryLimit, 'spec.successfulJobsHistoryLimit'));
  errs.push(...nonNegative(spec.failedJobsHistoryLimit, 'spec.failedJobsHistoryLimit'));
  const name = cj.metadata.name ?? '';
  if (name.length > 52) {
    errs.push({
      field: 'metadata.name',
      type: 'Invalid',
      value: name,
      detail: 'must be no more than 52 characters',
    });
  }
  const template = spec.jobTemplate;
  if (!template || typeof template !== 'object') {
    errs.push({ field: 'spec.jobTemplate', type: 'Required' });
    return errs;
  }
  errs.push(...validateLabels(template.metadata?.labels, 'spec.jobTemplate.metadata.labels'));
  errs.push(...validateJobSpec(template.spec, 'spec.jobTemplate.spec', false));
  return errs;
}

function validateSchedule(schedule: unknown): FieldError[] {
  if (typeof schedule !== 'string' || schedule.trim() === '') {
    return [{ field: 'spec.schedule', type: 'Required' }];
  }
  if (/^\s*(CRON_)?TZ=/.test(schedule)) {
    return [
      {
        field: 'spec.schedule',
        type: 'Invalid',
        value: schedule,
        detail: 'cannot use TZ or CRON_TZ in schedule, use timeZone field instead',
      },
    ];
  }
  try {
    parseSchedule(schedule);
    return [];
  } catch (err) {
    if (!(err instanceof ScheduleError)) throw err;
    return [{ field: 'spec.schedule', type: 'Invalid', value: schedule, detail: err.message }];
  }
}

function validateZone(zone: unknown): FieldError[] {
  if (zone === undefined || zone === null) return [];
  if (typeof zone === 'string' && zone !== '' && validTimeZone(zone)) return [];
  return [
    {
      field: 'spec.timeZone',
      type: 'Invalid',
      value: zone,
      detail: `unknown time zone ${String(zone)}`,
    },
  ];
}
