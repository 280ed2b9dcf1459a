import {
  defaultDaemonSet,
  defaultStatefulSet,
  validateControllerRevision,
  validateDaemonSet,
  validateStatefulSet,
  type DaemonSet,
  type StatefulSet,
} from './apps-workloads.js';
import {
  defaultCronJob,
  defaultJob,
  validateCronJob,
  validateJob,
  type CronJob,
  type Job,
} from './batch.js';
import { defaultSecret, validateConfigMap, validateSecret } from './config.js';
import { validateServiceAccount } from './service-account.js';
import { defaultDeployment, defaultPod, defaultReplicaSet } from './defaults.js';
import type { FieldError } from './errors.js';
import { defaultPriorityClass, validatePriorityClass } from './priority-class.js';
import { defaultPrinter, printers, type Printer } from './printers.js';
import type { Deployment, KObject, Pod, ReplicaSet } from './types.js';
import {
  defaultEndpointSlice,
  defaultEndpoints,
  defaultService,
  prepareServiceUpdate,
  validateEndpointSlice,
  validateEndpoints,
  validateService,
} from './service.js';
import { deepEqual } from '../util/equal.js';
import {
  validatePodSpec,
  validateReplicas,
  validateSelector,
  type NameRule,
} from './validation.js';

/**
 * The resource types the API serves. Each entry says where the type lives in the API
 * (group, version, plural), how its objects are named, defaulted, validated and printed,
 * and which subresources it has. The API server and discovery read only this table.
 */
export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  /** Subresources beyond the object itself: status, scale, binding, log. */
  subresources: string[];
  nameRule: NameRule;
  /** Workloads whose status controllers write: status emptied at creation, generation by spec. */
  tracksGeneration: boolean;
  /**
   * Whether the kind's objects carry metadata.generation, as Kubernetes' strategy for the
   * kind sets it: 'spec' (1 at creation, one more on each change of spec: workloads, Pods),
   * 'content' (EndpointSlices, which have no spec: one more on a change of anything but
   * metadata, or of the labels), or absent: none (ConfigMaps, Secrets, Services, Nodes ...).
   * Kinds that track generation have 'spec'.
   */
  generation?: 'spec' | 'content';
  defaults?(obj: KObject): void;
  validate?(obj: KObject, old?: KObject): FieldError[];
  /** On update, before defaulting and validation: carries server-set values over from `old`. */
  prepareForUpdate?(obj: KObject, old: KObject): void;
  /** Fields (dotted paths) that may be used in field selectors, beyond metadata.*. */
  selectableFields?: string[];
  printer: Printer;
}

export function apiVersionOf(rt: ResourceType): string {
  return rt.group ? `${rt.group}/${rt.version}` : rt.version;
}

function validatePod(pod: KObject, old?: KObject): FieldError[] {
  const errs = validatePodSpec((pod as Pod).spec, 'spec');
  // `old` is the stored pod as defaulting leaves it now when the update was defaulted (see
  // Registry.prepareUpdate), so a default added since it was stored is no change of its spec.
  if (old && errs.length === 0) errs.push(...podSpecChanges(pod, old));
  if (old) errs.push(...deadlineChange(pod, old));
  if (old && old.spec?.nodeName && pod.spec?.nodeName !== old.spec.nodeName) {
    errs.push({
      field: 'spec.nodeName',
      type: 'Forbidden',
      detail: 'pod is already bound to a node',
    });
  }
  return errs;
}

/**
 * A pod's spec is fixed once created, except container images, the grace period and the
 * active deadline, as in Kubernetes; nodeName is set by binding and checked separately.
 */
function podSpecChanges(pod: KObject, old: KObject): FieldError[] {
  if (sameFixedSpec(pod.spec ?? {}, old.spec ?? {})) return tolerationChanges(pod, old);
  return [
    {
      field: 'spec',
      type: 'Forbidden',
      detail:
        'pod updates may not change fields other than spec.containers[*].image, ' +
        'spec.initContainers[*].image, spec.activeDeadlineSeconds or spec.terminationGracePeriodSeconds',
    },
  ];
}

/** A pod's active deadline may be set or lowered once it exists, not raised or dropped. */
function deadlineChange(pod: KObject, old: KObject): FieldError[] {
  const was: unknown = old.spec?.activeDeadlineSeconds;
  const now: unknown = pod.spec?.activeDeadlineSeconds;
  if (typeof was !== 'number' || (typeof now === 'number' && now <= was)) return [];
  return [
    {
      field: 'spec.activeDeadlineSeconds',
      type: 'Invalid',
      value: now ?? null,
      detail:
        now === undefined
          ? 'must not update from a positive integer to nil value'
          : 'must be less than or equal to previous value',
    },
  ];
}

/** Spec fields a pod update may change (nodeName is checked on its own). */
const MUTABLE_POD_SPEC = new Set([
  'nodeName',
  'terminationGracePeriodSeconds',
  'activeDeadlineSeconds',
  'tolerations',
]);

/**
 * Whether two pod specs agree on every field that is fixed once the pod exists, compared
 * in place: copying both specs to strip the mutable fields cost more than the comparison.
 */
function sameFixedSpec(a: Record<string, any>, b: Record<string, any>): boolean {
  if (a === b) return true;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) {
    if (MUTABLE_POD_SPEC.has(key)) continue;
    if (key === 'containers' || key === 'initContainers') {
      if (!sameContainersButImage(a[key], b[key])) return false;
    } else if (!deepEqual(a[key], b[key])) return false;
  }
  return true;
}

/** Container lists equal except for each container's image. */
function sameContainersButImage(a: unknown, b: unknown): boolean {
  if (!Array.isArray(a) || !Array.isArray(b)) return deepEqual(a, b);
  if (a.length !== b.length) return false;
  return a.every((c, i) => {
    const d = b[i];
    if (!c || !d || typeof c !== 'object' || typeof d !== 'object') return deepEqual(c, d);
    return deepEqual({ ...c, image: undefined }, { ...d, image: undefined });
  });
}

/** Tolerations may be added to a running pod, never taken away (as in Kubernetes). */
function tolerationChanges(pod: KObject, old: KObject): FieldError[] {
  const now: unknown[] = Array.isArray(pod.spec?.tolerations) ? pod.spec.tolerations : [];
  const before: unknown[] = Array.isArray(old.spec?.tolerations) ? old.spec.tolerations : [];
  if (before.every((t) => now.some((n) => deepEqual(n, t)))) return [];
  return [
    {
      field: 'spec.tolerations',
      type: 'Forbidden',
      detail: 'tolerations may be added to a pod, not removed or changed',
    },
  ];
}

/** A node's pod range is set once: pods already have addresses from it. */
function validateNode(node: KObject, old?: KObject): FieldError[] {
  const was = old?.spec?.podCIDR;
  if (!was || node.spec?.podCIDR === was) return [];
  return [
    {
      field: 'spec.podCIDR',
      type: 'Forbidden',
      detail: `node updates may not change podCIDR except from "" to valid`,
    },
  ];
}

function validateWorkload(path: 'spec.template', obj: Deployment | ReplicaSet): FieldError[] {
  const spec = obj.spec;
  if (!spec || typeof spec !== 'object') return [{ field: 'spec', type: 'Required' }];
  const errs = validateReplicas(spec.replicas, 'spec.replicas');
  const labels = spec.template?.metadata?.labels;
  errs.push(...validateSelector(spec.selector, labels, 'spec.selector', `${path}.metadata.labels`));
  errs.push(...validatePodSpec(spec.template?.spec, `${path}.spec`));
  const policy = spec.template?.spec?.restartPolicy;
  if (policy && policy !== 'Always') {
    errs.push({
      field: `${path}.spec.restartPolicy`,
      type: 'Unsupported',
      value: policy,
      detail: 'supported values: "Always"',
    });
  }
  return errs;
}

function validateDeployment(obj: KObject, old?: KObject): FieldError[] {
  const d = obj as Deployment;
  const errs = validateWorkload('spec.template', d);
  const type = d.spec?.strategy?.type;
  if (type && type !== 'RollingUpdate' && type !== 'Recreate') {
    errs.push({ field: 'spec.strategy.type', type: 'Unsupported', value: type });
  }
  const ru = d.spec?.strategy?.rollingUpdate;
  for (const key of ['maxSurge', 'maxUnavailable'] as const) {
    const v = ru?.[key];
    if (v === undefined) continue;
    const ok =
      (Number.isInteger(v) && (v as number) >= 0) || (typeof v === 'string' && /^\d+%$/.test(v));
    if (!ok) {
      errs.push({
        field: `spec.strategy.rollingUpdate.${key}`,
        type: 'Invalid',
        value: v,
        detail: 'must be a non-negative integer or a percentage',
      });
    }
  }
  const surge = ru?.maxSurge;
  const unavailable = ru?.maxUnavailable;
  if (type !== 'Recreate' && isZero(surge) && isZero(unavailable)) {
    errs.push({
      field: 'spec.strategy.rollingUpdate.maxUnavailable',
      type: 'Invalid',
      value: unavailable,
      detail: 'may not be 0 when `maxSurge` is 0',
    });
  }
  if (old && JSON.stringify(old.spec?.selector) !== JSON.stringify(d.spec?.selector)) {
    errs.push({
      field: 'spec.selector',
      type: 'Invalid',
      value: d.spec?.selector,
      detail: 'field is immutable',
    });
  }
  return errs;
}

function isZero(v: unknown): boolean {
  return v === 0 || v === '0%' || v === '0';
}

function type(
  group: string,
  kind: string,
  plural: string,
  namespaced: boolean,
  extra: Partial<ResourceType> = {},
): ResourceType {
  return {
    group,
    version: 'v1',
    kind,
    plural,
    singular: kind.toLowerCase(),
    namespaced,
    subresources: [],
    nameRule: 'subdomain',
    tracksGeneration: false,
    printer: printers[kind] ?? defaultPrinter,
    ...extra,
    generation: extra.generation ?? (extra.tracksGeneration ? 'spec' : undefined),
  };
}

export const RESOURCE_TYPES: ResourceType[] = [
  type('', 'Namespace', 'namespaces', false, {
    shortNames: ['ns'],
    nameRule: 'label',
    subresources: ['status'],
    defaults: (ns) => {
      ns.spec ??= {};
      ns.spec.finalizers ??= ['kubernetes'];
      // kubectl create namespace sends an empty status: the phase is set all the same.
      if (!ns.status?.phase) ns.status = { ...ns.status, phase: 'Active' };
    },
  }),
  type('', 'Node', 'nodes', false, {
    shortNames: ['no'],
    subresources: ['status'],
    validate: validateNode,
    selectableFields: ['spec.unschedulable'],
  }),
  type('', 'Pod', 'pods', true, {
    shortNames: ['po'],
    categories: ['all'],
    subresources: ['status', 'binding', 'log', 'exec', 'attach'],
    // Kubernetes sets a pod's generation since 1.33 (with status.observedGeneration).
    generation: 'spec',
    defaults: (obj) => defaultPod(obj as Pod),
    validate: validatePod,
    selectableFields: [
      'spec.nodeName',
      'spec.restartPolicy',
      'spec.schedulerName',
      'status.phase',
      'status.podIP',
    ],
  }),
  type('', 'ConfigMap', 'configmaps', true, {
    shortNames: ['cm'],
    validate: validateConfigMap,
  }),
  type('', 'ServiceAccount', 'serviceaccounts', true, {
    shortNames: ['sa'],
    validate: validateServiceAccount,
  }),
  type('', 'Secret', 'secrets', true, {
    defaults: defaultSecret,
    validate: validateSecret,
    selectableFields: ['type'],
  }),
  type('', 'Event', 'events', true, {
    shortNames: ['ev'],
    selectableFields: [
      'involvedObject.kind',
      'involvedObject.namespace',
      'involvedObject.name',
      'involvedObject.uid',
      'involvedObject.apiVersion',
      'involvedObject.resourceVersion',
      'involvedObject.fieldPath',
      'reason',
      'reportingComponent',
      'source',
      'type',
    ],
  }),
  type('apps', 'Deployment', 'deployments', true, {
    shortNames: ['deploy'],
    categories: ['all'],
    subresources: ['status', 'scale'],
    tracksGeneration: true,
    defaults: (obj) => defaultDeployment(obj as Deployment),
    validate: validateDeployment,
  }),
  type('apps', 'ReplicaSet', 'replicasets', true, {
    shortNames: ['rs'],
    categories: ['all'],
    subresources: ['status', 'scale'],
    tracksGeneration: true,
    defaults: (obj) => defaultReplicaSet(obj as ReplicaSet),
    validate: (obj) => validateWorkload('spec.template', obj as ReplicaSet),
  }),
  type('coordination.k8s.io', 'Lease', 'leases', true),
  type('apps', 'DaemonSet', 'daemonsets', true, {
    shortNames: ['ds'],
    categories: ['all'],
    subresources: ['status'],
    tracksGeneration: true,
    defaults: (obj) => defaultDaemonSet(obj as DaemonSet),
    validate: validateDaemonSet,
  }),
  type('apps', 'StatefulSet', 'statefulsets', true, {
    shortNames: ['sts'],
    categories: ['all'],
    subresources: ['status', 'scale'],
    tracksGeneration: true,
    defaults: (obj) => defaultStatefulSet(obj as StatefulSet),
    validate: validateStatefulSet,
  }),
  type('apps', 'ControllerRevision', 'controllerrevisions', true, {
    validate: validateControllerRevision,
  }),
  type('batch', 'Job', 'jobs', true, {
    categories: ['all'],
    subresources: ['status'],
    tracksGeneration: true,
    defaults: (obj) => defaultJob(obj as Job),
    validate: validateJob,
  }),
  type('batch', 'CronJob', 'cronjobs', true, {
    shortNames: ['cj'],
    categories: ['all'],
    subresources: ['status'],
    tracksGeneration: true,
    defaults: (obj) => defaultCronJob(obj as CronJob),
    validate: validateCronJob,
  }),
  type('', 'Service', 'services', true, {
    shortNames: ['svc'],
    categories: ['all'],
    subresources: ['status'],
    nameRule: 'dns1035',
    defaults: defaultService,
    validate: validateService,
    prepareForUpdate: prepareServiceUpdate,
    selectableFields: ['spec.clusterIP', 'spec.type'],
  }),
  type('', 'Endpoints', 'endpoints', true, {
    shortNames: ['ep'],
    defaults: defaultEndpoints,
    validate: validateEndpoints,
  }),
  type('discovery.k8s.io', 'EndpointSlice', 'endpointslices', true, {
    generation: 'content',
    defaults: defaultEndpointSlice,
    validate: validateEndpointSlice,
    selectableFields: ['addressType'],
  }),
  type('scheduling.k8s.io', 'PriorityClass', 'priorityclasses', false, {
    shortNames: ['pc'],
    defaults: defaultPriorityClass,
    validate: validatePriorityClass,
  }),
];

/** Looks types up by plural within a group: `byGroupResource.get('apps/deployments')`. */
export const byGroupResource = new Map(
  RESOURCE_TYPES.map((rt) => [`${rt.group}/${rt.plural}`, rt]),
);

/** Looks a type up by apiVersion and kind, as written in manifests. */
export function typeForKind(apiVersion: string, kind: string): ResourceType | undefined {
  return RESOURCE_TYPES.find((rt) => apiVersionOf(rt) === apiVersion && rt.kind === kind);
}
