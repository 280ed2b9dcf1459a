import type { FieldError } from './errors.js';
import type { KObject } from './types.js';

/**
 * PriorityClass (scheduling.k8s.io/v1): a cluster-scoped name for a pod priority. Pods name
 * a class in spec.priorityClassName; the API server copies its value into spec.priority
 * when the pod is created. Classes whose name starts with `system-` are reserved for the
 * two built-in ones, which every cluster has.
 */

export interface PriorityClass extends KObject {
  value: number;
  globalDefault?: boolean;
  preemptionPolicy?: PreemptionPolicy;
  description?: string;
}

export type PreemptionPolicy = 'PreemptLowerPriority' | 'Never';

/** The highest value a user-defined class may have; larger values are for system classes. */
export const HIGHEST_USER_PRIORITY = 1_000_000_000;

export const SYSTEM_PRIORITY_CLASSES: Readonly<Record<string, number>> = Object.freeze({
  'system-cluster-critical': 2_000_000_000,
  'system-node-critical': 2_000_001_000,
});

/** The built-in classes as objects to create, with the descriptions Kubernetes gives them. */
export function systemPriorityClasses(): PriorityClass[] {
  return Object.entries(SYSTEM_PRIORITY_CLASSES).map(([name, value]) => ({
    apiVersion: 'scheduling.k8s.io/v1',
    kind: 'PriorityClass',
    metadata: { name },
    value,
    description: `Used for ${name === 'system-node-critical' ? 'system' : 'cluster'} critical pods.`,
  }));
}

export function defaultPriorityClass(obj: KObject): void {
  obj.preemptionPolicy ??= 'PreemptLowerPriority';
}

export function validatePriorityClass(obj: KObject, old?: KObject): FieldError[] {
  const pc = obj as PriorityClass;
  const errs: FieldError[] = [];
  const name = pc.metadata.name ?? '';
  const system = SYSTEM_PRIORITY_CLASSES[name];
  if (typeof pc.value !== 'number' || !Number.isInteger(pc.value)) {
    errs.push({ field: 'value', type: 'Required', detail: 'must be a 32-bit integer' });
  } else if (name.startsWith('system-')) {
    if (system === undefined || pc.value !== system) {
      errs.push({
        field: 'metadata.name',
        type: 'Forbidden',
        value: name,
        detail: 'priority class names with "system-" prefix are reserved for the built-in classes',
      });
    }
  } else if (pc.value > HIGHEST_USER_PRIORITY) {
    errs.push({
      field: 'value',
      type: 'Forbidden',
      value: pc.value,
      detail: `maximum allowed value of a user defined priority is ${HIGHEST_USER_PRIORITY}`,
    });
  }
  const policy = pc.preemptionPolicy;
  if (policy !== undefined && policy !== 'PreemptLowerPriority' && policy !== 'Never') {
    errs.push({
      field: 'preemptionPolicy',
      type: 'Unsupported',
      value: policy,
      detail: 'supported values: "Never", "PreemptLowerPriority"',
    });
  }
  if (pc.globalDefault !== undefined && typeof pc.globalDefault !== 'boolean') {
    errs.push({ field: 'globalDefault', type: 'Invalid', value: pc.globalDefault });
  }
  if (old) errs.push(...immutableChanges(pc, old as PriorityClass));
  return errs;
}

function immutableChanges(pc: PriorityClass, old: PriorityClass): FieldError[] {
  const errs: FieldError[] = [];
  for (const field of ['value', 'preemptionPolicy'] as const) {
    if (pc[field] !== old[field]) {
      errs.push({ field, type: 'Forbidden', value: pc[field], detail: 'field is immutable' });
    }
  }
  return errs;
}
