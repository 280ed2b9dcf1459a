/**
 * The fields each served type knows, for `fieldValidation`: kubectl asks the server to
 * refuse (Strict) or warn about (Warn) fields it does not know, so a typo such as `prots:`
 * is caught instead of silently stored. Parts of an object that are only stored and not yet
 * read by flyCes (probes, volumes, security contexts, status) are accepted whole.
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

const requirement = obj(names('key', 'operator', 'values'));
const nodeSelectorTerm = obj({
  matchExpressions: listOf(requirement),
  matchFields: listOf(requirement),
});
const podAffinityTerm = obj({
  ...names('namespaces', 'topologyKey', 'matchLabelKeys', 'mismatchLabelKeys'),
  labelSelector,
  namespaceSelector: labelSelector,
});
const podAffinity = obj({
  requiredDuringSchedulingIgnoredDuringExecution: listOf(podAffinityTerm),
  preferredDuringSchedulingIgnoredDuringExecution: listOf(obj({ weight: any, podAffinityTerm })),
});
const affinity = obj({
  nodeAffinity: obj({
    requiredDuringSchedulingIgnoredDuringExecution: obj({
      nodeSelectorTerms: listOf(nodeSelectorTerm),
    }),
    preferredDuringSchedulingIgnoredDuringExecution: listOf(
      obj({ weight: any, preference: nodeSelectorTerm }),
    ),
  }),
  podAffinity,
  podAntiAffinity: podAffinity,
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
    'schedulerName',
    'hostAliases',
    'priorityClassName',
    'priority',
    'dnsConfig',
    'readinessGates',
    'runtimeClassName',
    'enableServiceLinks',
    'preemptionPolicy',
    'overhead',
    'setHostnameAsFQDN',
    'os',
    'hostUsers',
    'schedulingGates',
    'resourceClaims',
    'resources',
  ),
  containers: listOf(container),
  initContainers: listOf(container),
  affinity,
  tolerations: listOf(obj(names('key', 'operator', 'value', 'effect', 'tolerationSeconds'))),
  topologySpreadConstraints: listOf(
    obj({
      ...names(
        'maxSkew',
        'topologyKey',
        'whenUnsatisfiable',
        'minDomains',
        'nodeAffinityPolicy',
        'nodeTaintsPolicy',
        'matchLabelKeys',
      ),
      labelSelector,
    }),
  ),
});

const podTemplate = obj({ metadata: objectMeta, spec: podSpec });

function topLevel(extra: Record<string, Schema>): Schema {
  return obj({ apiVersion: any, kind: any, metadata: objectMeta, status: any, ...extra });
}

const jobSpec = obj({
  ...names(
    'parallelism',
    'completions',
    'activeDeadlineSeconds',
    'podFailurePolicy',
    'successPolicy',
    'backoffLimit',
    'backoffLimitPerIndex',
    'maxFailedIndexes',
    'manualSelector',
    'ttlSecondsAfterFinished',
    'completionMode',
    'suspend',
    'podReplacementPolicy',
    'managedBy',
  ),
  selector: labelSelector,
  template: podTemplate,
});

const objectReference = obj(
  names('kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath'),
);

const endpointAddress = obj({ ...names('ip', 'hostname', 'nodeName'), targetRef: objectReference });

const serviceSpec = obj({
  ...names(
    'type',
    'selector',
    'clusterIP',
    'clusterIPs',
    'externalIPs',
    'sessionAffinity',
    'loadBalancerIP',
    'loadBalancerSourceRanges',
    'loadBalancerClass',
    'externalName',
    'externalTrafficPolicy',
    'internalTrafficPolicy',
    'healthCheckNodePort',
    'publishNotReadyAddresses',
    'ipFamilies',
    'ipFamilyPolicy',
    'allocateLoadBalancerNodePorts',
    'trafficDistribution',
  ),
  ports: listOf(obj(names('name', 'protocol', 'appProtocol', 'port', 'targetPort', 'nodePort'))),
  sessionAffinityConfig: obj({ clientIP: obj(names('timeoutSeconds')) }),
});

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
    spec: obj({
      ...names('podCIDR', 'podCIDRs', 'providerID', 'unschedulable', 'configSource', 'externalID'),
      taints: listOf(obj(names('key', 'value', 'effect', 'timeAdded'))),
    }),
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
  Job: topLevel({ spec: jobSpec }),
  CronJob: topLevel({
    spec: obj({
      ...names(
        'schedule',
        'timeZone',
        'startingDeadlineSeconds',
        'concurrencyPolicy',
        'suspend',
        'successfulJobsHistoryLimit',
        'failedJobsHistoryLimit',
      ),
      jobTemplate: obj({ metadata: objectMeta, spec: jobSpec }),
    }),
  }),
  Service: topLevel({ spec: serviceSpec }),
  Endpoints: obj({
    ...names('apiVersion', 'kind'),
    metadata: objectMeta,
    subsets: listOf(
      obj({
        addresses: listOf(endpointAddress),
        notReadyAddresses: listOf(endpointAddress),
        ports: listOf(obj(names('name', 'port', 'protocol', 'appProtocol'))),
      }),
    ),
  }),
  EndpointSlice: obj({
    ...names('apiVersion', 'kind', 'addressType'),
    metadata: objectMeta,
    endpoints: listOf(
      obj({
        ...names('addresses', 'hostname', 'nodeName', 'zone', 'hints', 'deprecatedTopology'),
        conditions: obj(names('ready', 'serving', 'terminating')),
        targetRef: objectReference,
      }),
    ),
    ports: listOf(obj(names('name', 'port', 'protocol', 'appProtocol'))),
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

SCHEMAS.DaemonSet = topLevel({
  spec: obj({
    ...names('minReadySeconds', 'revisionHistoryLimit'),
    selector: labelSelector,
    template: podTemplate,
    updateStrategy: obj({ type: any, rollingUpdate: obj(names('maxUnavailable', 'maxSurge')) }),
  }),
});
SCHEMAS.StatefulSet = topLevel({
  spec: obj({
    ...names(
      'replicas',
      'serviceName',
      'podManagementPolicy',
      'revisionHistoryLimit',
      'minReadySeconds',
      'volumeClaimTemplates',
      'ordinals',
    ),
    selector: labelSelector,
    template: podTemplate,
    updateStrategy: obj({ type: any, rollingUpdate: obj(names('partition', 'maxUnavailable')) }),
    persistentVolumeClaimRetentionPolicy: obj(names('whenDeleted', 'whenScaled')),
  }),
});
SCHEMAS.ControllerRevision = obj({
  ...names('apiVersion', 'kind', 'data', 'revision'),
  metadata: objectMeta,
});

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
