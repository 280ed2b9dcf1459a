/**
 * The fields each served type knows, for `fieldValidation`: kubectl asks the server to
 * refuse (Strict) or warn about (Warn) fields it does not know, so a typo such as `prots:`
 * is caught instead of silently stored. Parts of an object that are only stored and not yet
 * read by flyCes (probes, volumes, affinity, security contexts, status) are accepted whole.
 */

export type Schema = 'any' | { fields: Record<string, Schema>; list?: boolean };

const any = 'any' as const;

function obj(fields: Record<string, Schema>): Schema {
  return { fields };
}

function listOf(schema: Schema): Schema {
  return schema === 'any' ? any : { fields: schema.fields, list: true };
}

function names(...keys: string[]): Record<string, Schema> {
  return Object.fromEntries(keys.map((k) => [k, any]));
}

const ownerReference = obj(
  names('apiVersion', 'kind', 'name', 'uid', 'controller', 'blockOwnerDeletion'),
);

const objectMeta = obj({
  ...names(
    'name',
    'generateName',
    'namespace',
    'selfLink',
    'uid',
    'resourceVersion',
    'generation',
    'creationTimestamp',
    'deletionTimestamp',
    'deletionGracePeriodSeconds',
    'labels',
    'annotations',
    'finalizers',
    'managedFields',
  ),
  ownerReferences: listOf(ownerReference),
});

const labelSelector = obj({
  matchLabels: any,
  matchExpressions: listOf(obj(names('key', 'operator', 'values'))),
});

const container = obj({
  ...names(
    'name',
    'image',
    'command',
    'args',
    'workingDir',
    'envFrom',
    'resizePolicy',
    'restartPolicy',
    'volumeMounts',
    'volumeDevices',
    'livenessProbe',
    'readinessProbe',
    'startupProbe',
    'lifecycle',
    'terminationMessagePath',
    'terminationMessagePolicy',
    'imagePullPolicy',
    'securityContext',
    'stdin',
    'stdinOnce',
    'tty',
  ),
  ports: listOf(obj(names('name', 'hostPort', 'containerPort', 'protocol', 'hostIP'))),
  env: listOf(obj(names('name', 'value', 'valueFrom'))),
  resources: obj(names('limits', 'requests', 'claims')),
});

const podSpec = obj({
  ...names(
    'volumes',
    'ephemeralContainers',
    'restartPolicy',
    'terminationGracePeriodSeconds',
    'activeDeadlineSeconds',
    'dnsPolicy',
    'nodeSelector',
    'serviceAccountName',
    'serviceAccount',
    'automountServiceAccountToken',
    'nodeName',
    'hostNetwork',
    'hostPID',
    'hostIPC',
    'shareProcessNamespace',
    'securityContext',
    'imagePullSecrets',
    'hostname',
    'subdomain',
    'affinity',
    'schedulerName',
    'tolerations',
    'hostAliases',
    'priorityClassName',
    'priority',
    'dnsConfig',
    'readinessGates',
    'runtimeClassName',
    'enableServiceLinks',
    'preemptionPolicy',
    'overhead',
    'topologySpreadConstraints',
    'setHostnameAsFQDN',
    'os',
    'hostUsers',
    'schedulingGates',
    'resourceClaims',
    'resources',
  ),
  containers: listOf(container),
  initContainers: listOf(container),
});

const podTemplate = obj({ metadata: objectMeta, spec: podSpec });

function topLevel(extra: Record<string, Schema>): Schema {
  return obj({ apiVersion: any, kind: any, metadata: objectMeta, status: any, ...extra });
}

/** Known fields by kind. Kinds not listed are not checked. */
export const SCHEMAS: Record<string, Schema> = {
  Pod: topLevel({ spec: podSpec }),
  Deployment: topLevel({
    spec: obj({
      ...names(
        'replicas',
        'minReadySeconds',
        'revisionHistoryLimit',
        'paused',
        'progressDeadlineSeconds',
      ),
      selector: labelSelector,
      template: podTemplate,
      strategy: obj({ type: any, rollingUpdate: obj(names('maxUnavailable', 'maxSurge')) }),
    }),
  }),
  ReplicaSet: topLevel({
    spec: obj({
      ...names('replicas', 'minReadySeconds'),
      selector: labelSelector,
      template: podTemplate,
    }),
  }),
  ConfigMap: obj({
    ...names('apiVersion', 'kind', 'data', 'binaryData', 'immutable'),
    metadata: objectMeta,
  }),
  Secret: obj({
    ...names('apiVersion', 'kind', 'data', 'stringData', 'type', 'immutable'),
    metadata: objectMeta,
  }),
  Namespace: topLevel({ spec: obj(names('finalizers')) }),
  Node: topLevel({
    spec: obj(
      names(
        'podCIDR',
        'podCIDRs',
        'providerID',
        'unschedulable',
        'taints',
        'configSource',
        'externalID',
      ),
    ),
  }),
  Lease: topLevel({
    spec: obj(
      names(
        'holderIdentity',
        'leaseDurationSeconds',
        'acquireTime',
        'renewTime',
        'leaseTransitions',
        'strategy',
        'preferredHolder',
      ),
    ),
  }),
  PriorityClass: obj({
    ...names('apiVersion', 'kind', 'value', 'globalDefault', 'preemptionPolicy', 'description'),
    metadata: objectMeta,
  }),
  Event: topLevel({
    ...names(
      'involvedObject',
      'reason',
      'message',
      'source',
      'firstTimestamp',
      'lastTimestamp',
      'count',
      'type',
      'eventTime',
      'series',
      'action',
      'related',
      'reportingComponent',
      'reportingInstance',
    ),
  }),
};

/** Paths (`spec.template.spec.containers[0].prots`) of fields the kind's schema lacks. */
export function unknownFields(kind: string, value: unknown): string[] {
  const schema = SCHEMAS[kind];
  if (!schema) return [];
  const found: string[] = [];
  walk(value, schema, '', found);
  return found;
}

function walk(value: unknown, schema: Schema, path: string, found: string[]): void {
  if (schema === 'any' || value === null || typeof value !== 'object') return;
  if (schema.list) {
    if (!Array.isArray(value)) return;
    value.forEach((item, i) => walk(item, { fields: schema.fields }, `${path}[${i}]`, found));
    return;
  }
  if (Array.isArray(value)) return;
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    const childPath = path ? `${path}.${key}` : key;
    const childSchema = schema.fields[key];
    if (childSchema === undefined) found.push(childPath);
    else walk(child, childSchema, childPath, found);
  }
}
