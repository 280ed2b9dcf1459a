import { defaultPodTemplate } from './defaults.js';
import type { FieldError } from './errors.js';
import type { Condition, KObject, LabelSelector, PodTemplateSpec } from './types.js';
import { deepEqual } from '../util/equal.js';
import {
  isDns1123Label,
  validatePodSpec,
  validateReplicas,
  validateSelector,
} from './validation.js';

/**
 * DaemonSet, StatefulSet and ControllerRevision (apps/v1): their shapes, the values
 * Kubernetes fills in when a client leaves them out, and their validation.
 */

export type IntOrPercent = number | string;

export interface DaemonSet extends KObject {
  spec: {
    selector: LabelSelector;
    template: PodTemplateSpec;
    updateStrategy?: {
      type?: 'RollingUpdate' | 'OnDelete';
      rollingUpdate?: { maxUnavailable?: IntOrPercent; maxSurge?: IntOrPercent };
    };
    minReadySeconds?: number;
    revisionHistoryLimit?: number;
  };
  status?: {
    currentNumberScheduled: number;
    numberMisscheduled: number;
    desiredNumberScheduled: number;
    numberReady: number;
    observedGeneration?: number;
    updatedNumberScheduled?: number;
    numberAvailable?: number;
    numberUnavailable?: number;
    collisionCount?: number;
    conditions?: Condition[];
  };
}

export interface StatefulSet extends KObject {
  spec: {
    replicas?: number;
    selector: LabelSelector;
    template: PodTemplateSpec;
    serviceName?: string;
    podManagementPolicy?: 'OrderedReady' | 'Parallel';
    updateStrategy?: {
      type?: 'RollingUpdate' | 'OnDelete';
      rollingUpdate?: { partition?: number; maxUnavailable?: IntOrPercent };
    };
    revisionHistoryLimit?: number;
    minReadySeconds?: number;
    volumeClaimTemplates?: unknown[];
    persistentVolumeClaimRetentionPolicy?: { whenDeleted?: string; whenScaled?: string };
    /** Refused by validation: pods are numbered from 0. */
    ordinals?: unknown;
  };
  status?: {
    observedGeneration?: number;
    replicas: number;
    readyReplicas?: number;
    currentReplicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    currentRevision?: string;
    updateRevision?: string;
    collisionCount?: number;
    conditions?: Condition[];
  };
}

/** An immutable snapshot of a workload's pod template, numbered by `revision`. */
export interface ControllerRevision extends KObject {
  data?: any;
  revision: number;
}

/** DaemonSet defaults: RollingUpdate with maxUnavailable 1 and maxSurge 0; history 10. */
export function defaultDaemonSet(ds: DaemonSet): void {
  const spec = ds.spec;
  if (!spec || typeof spec !== 'object') return;
  spec.updateStrategy ??= {};
  spec.updateStrategy.type ??= 'RollingUpdate';
  if (spec.updateStrategy.type === 'RollingUpdate') {
    spec.updateStrategy.rollingUpdate ??= {};
    spec.updateStrategy.rollingUpdate.maxUnavailable ??= 1;
    spec.updateStrategy.rollingUpdate.maxSurge ??= 0;
  }
  spec.revisionHistoryLimit ??= 10;
  defaultPodTemplate(spec.template);
}

/**
 * StatefulSet defaults: 1 replica, OrderedReady, RollingUpdate with partition 0, history 10,
 * claim retention Retain.
 */
export function defaultStatefulSet(sts: StatefulSet): void {
  const spec = sts.spec;
  if (!spec || typeof spec !== 'object') return;
  spec.replicas ??= 1;
  spec.podManagementPolicy ??= 'OrderedReady';
  spec.updateStrategy ??= {};
  spec.updateStrategy.type ??= 'RollingUpdate';
  if (spec.updateStrategy.type === 'RollingUpdate') {
    spec.updateStrategy.rollingUpdate ??= {};
    spec.updateStrategy.rollingUpdate.partition ??= 0;
  }
  spec.revisionHistoryLimit ??= 10;
  spec.persistentVolumeClaimRetentionPolicy ??= {};
  spec.persistentVolumeClaimRetentionPolicy.whenDeleted ??= 'Retain';
  spec.persistentVolumeClaimRetentionPolicy.whenScaled ??= 'Retain';
  defaultPodTemplate(spec.template);
}

const PERCENT = /^(0|[1-9]\d*)%$/;

/** Checks an int-or-percent field: a non-negative integer or a percentage up to 100%. */
export function validateIntOrPercent(value: unknown, path: string): FieldError[] {
  if (value === undefined) return [];
  if (typeof value === 'string') {
    if (PERCENT.test(value)) {
      if (Number.parseInt(value, 10) <= 100) return [];
      return [{ field: path, type: 'Invalid', value, detail: 'must not be greater than 100%' }];
    }
    return [
      {
        field: path,
        type: 'Invalid',
        value,
        detail: "a valid percent string must be a numeric string followed by an ending '%'",
      },
    ];
  }
  if (Number.isInteger(value) && (value as number) >= 0) return [];
  return [{ field: path, type: 'Invalid', value, detail: 'must be greater than or equal to 0' }];
}

function isZero(v: unknown): boolean {
  return v === 0 || v === '0%';
}

function nonNegative(value: unknown, path: string): FieldError[] {
  if (value === undefined) return [];
  if (Number.isInteger(value) && (value as number) >= 0) return [];
  return [{ field: path, type: 'Invalid', value, detail: 'must be greater than or equal to 0' }];
}

function enumValue(value: unknown, allowed: string[], path: string): FieldError[] {
  if (value === undefined || allowed.includes(value as string)) return [];
  const list = allowed.map((v) => `"${v}"`).join(', ');
  return [{ field: path, type: 'Unsupported', value, detail: `supported values: ${list}` }];
}

/** Selector, template and restart policy checks shared by both workloads. */
function validateTemplateAndSelector(
  spec: DaemonSet['spec'] | StatefulSet['spec'],
  old: KObject | undefined,
): FieldError[] {
  const labels = spec.template?.metadata?.labels;
  const errs = validateSelector(
    spec.selector,
    labels,
    'spec.selector',
    'spec.template.metadata.labels',
  );
  if (!spec.template || typeof spec.template !== 'object') {
    errs.push({ field: 'spec.template', type: 'Required' });
    return errs;
  }
  errs.push(...validatePodSpec(spec.template.spec, 'spec.template.spec'));
  errs.push(
    ...enumValue(spec.template.spec?.restartPolicy, ['Always'], 'spec.template.spec.restartPolicy'),
  );
  errs.push(...nonNegative(spec.minReadySeconds, 'spec.minReadySeconds'));
  errs.push(...nonNegative(spec.revisionHistoryLimit, 'spec.revisionHistoryLimit'));
  if (old && !deepEqual(old.spec?.selector, spec.selector)) {
    errs.push({
      field: 'spec.selector',
      type: 'Invalid',
      value: spec.selector,
      detail: 'field is immutable',
    });
  }
  return errs;
}

/** DaemonSet checks: selector and template, restart policy, update strategy; selector fixed. */
export function validateDaemonSet(obj: KObject, old?: KObject): FieldError[] {
  const spec = (obj as DaemonSet).spec;
  if (!spec || typeof spec !== 'object') return [{ field: 'spec', type: 'Required' }];
  const errs = validateTemplateAndSelector(spec, old);
  const strategy = spec.updateStrategy ?? {};
  const path = 'spec.updateStrategy';
  errs.push(...enumValue(strategy.type, ['OnDelete', 'RollingUpdate'], `${path}.type`));
  const ru = strategy.rollingUpdate;
  if (strategy.type === 'RollingUpdate' && ru) {
    errs.push(...validateIntOrPercent(ru.maxUnavailable, `${path}.rollingUpdate.maxUnavailable`));
    errs.push(...validateIntOrPercent(ru.maxSurge, `${path}.rollingUpdate.maxSurge`));
    const surge = ru.maxSurge ?? 0;
    if (isZero(ru.maxUnavailable) && isZero(surge)) {
      errs.push({
        field: `${path}.rollingUpdate.maxUnavailable`,
        type: 'Invalid',
        value: ru.maxUnavailable,
        detail: 'may not be 0 when maxSurge is 0',
      });
    }
  }
  return errs;
}

/** The spec fields of a StatefulSet that may change after creation, as in Kubernetes. */
const STS_MUTABLE = [
  'replicas',
  'ordinals',
  'template',
  'updateStrategy',
  'persistentVolumeClaimRetentionPolicy',
  'minReadySeconds',
];

/**
 * StatefulSet checks: replicas, selector and template, policies and strategy; no claim
 * templates or ordinals (not supported); only some spec fields may change after creation.
 */
export function validateStatefulSet(obj: KObject, old?: KObject): FieldError[] {
  const spec = (obj as StatefulSet).spec;
  if (!spec || typeof spec !== 'object') return [{ field: 'spec', type: 'Required' }];
  const errs = validateReplicas(spec.replicas, 'spec.replicas');
  errs.push(...validateTemplateAndSelector(spec, old));
  const policies = ['OrderedReady', 'Parallel'];
  errs.push(...enumValue(spec.podManagementPolicy, policies, 'spec.podManagementPolicy'));
  const strategy = spec.updateStrategy ?? {};
  const path = 'spec.updateStrategy';
  errs.push(...enumValue(strategy.type, ['OnDelete', 'RollingUpdate'], `${path}.type`));
  const ru = strategy.rollingUpdate;
  if (ru && strategy.type === 'OnDelete') {
    errs.push({
      field: `${path}.rollingUpdate`,
      type: 'Invalid',
      value: ru,
      detail: "only allowed for updateStrategy 'RollingUpdate'",
    });
  }
  if (ru && strategy.type === 'RollingUpdate') {
    errs.push(...nonNegative(ru.partition, `${path}.rollingUpdate.partition`));
    errs.push(...validateIntOrPercent(ru.maxUnavailable, `${path}.rollingUpdate.maxUnavailable`));
    if (isZero(ru.maxUnavailable)) {
      errs.push({
        field: `${path}.rollingUpdate.maxUnavailable`,
        type: 'Invalid',
        value: ru.maxUnavailable,
        detail: 'must be greater than 0',
      });
    }
  }
  if (Array.isArray(spec.volumeClaimTemplates) && spec.volumeClaimTemplates.length > 0) {
    errs.push({
      field: 'spec.volumeClaimTemplates',
      type: 'Forbidden',
      detail:
        'flyCes serves no PersistentVolumeClaims yet, so volumeClaimTemplates cannot be ' +
        'honoured; use a volume in spec.template.spec.volumes instead',
    });
  }
  const service = spec.serviceName;
  if (service !== undefined && service !== '' && !isDns1123Label(String(service))) {
    // It becomes the pods' subdomain, which must be a DNS label.
    errs.push({
      field: 'spec.serviceName',
      type: 'Invalid',
      value: service,
      detail: 'must be a lowercase RFC 1123 label',
    });
  }
  if (spec.ordinals !== undefined) {
    errs.push({
      field: 'spec.ordinals',
      type: 'Forbidden',
      detail: 'flyCes numbers StatefulSet pods from 0 only; spec.ordinals is not supported yet',
    });
  }
  if (old) errs.push(...statefulSetSpecChanges(spec, old as StatefulSet));
  return errs;
}

function statefulSetSpecChanges(spec: StatefulSet['spec'], old: StatefulSet): FieldError[] {
  const strip = (s: Record<string, unknown> | undefined) => {
    const copy = { ...(s ?? {}) };
    for (const key of STS_MUTABLE) delete copy[key];
    return copy;
  };
  if (deepEqual(strip(spec), strip(old.spec))) return [];
  return [
    {
      field: 'spec',
      type: 'Forbidden',
      detail:
        "updates to statefulset spec for fields other than 'replicas', 'ordinals', " +
        "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and " +
        "'minReadySeconds' are forbidden",
    },
  ];
}

/** A ControllerRevision needs a revision number; its data never changes. */
export function validateControllerRevision(obj: KObject, old?: KObject): FieldError[] {
  const cr = obj as ControllerRevision;
  const errs = nonNegative(cr.revision, 'revision');
  if (cr.revision === undefined) errs.push({ field: 'revision', type: 'Required' });
  if (old && !deepEqual(old.data, cr.data)) {
    errs.push({ field: 'data', type: 'Invalid', value: '', detail: 'field is immutable' });
  }
  return errs;
}
