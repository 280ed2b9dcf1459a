import type { CronJob, Job } from './batch.js';
import type { ControllerRevision, DaemonSet, StatefulSet } from './apps-workloads.js';
import type { Endpoints, EndpointSlice, Service } from './service.js';
import type { ServiceAccount } from './service-account.js';
import { formatLabelSelector } from './labels.js';
import type {
  ConfigMap,
  ContainerStatus,
  Deployment,
  KObject,
  NodeObject,
  Pod,
  ReplicaSet,
  Secret,
} from './types.js';

/**
 * Server-side printing for `kubectl get`: the columns and cells of the Table that
 * Kubernetes returns for each kind. Columns with priority 1 show with `-o wide`.
 */

export interface TableColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  format?: string;
  description?: string;
  priority?: number;
}

export interface Printer {
  columns: TableColumn[];
  cells(obj: KObject, now: number): unknown[];
}

/** Kubernetes' short duration, as `kubectl get` shows ages: 45s, 3m20s, 5h, 12d. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

function age(obj: KObject, now: number): string {
  const created = obj.metadata.creationTimestamp;
  return created ? humanDuration(now - Date.parse(created)) : '<unknown>';
}

const nameColumn: TableColumn = { name: 'Name', type: 'string', format: 'name', priority: 0 };
const ageColumn: TableColumn = { name: 'Age', type: 'string', priority: 0 };

export const defaultPrinter: Printer = {
  columns: [nameColumn, ageColumn],
  cells: (obj, now) => [obj.metadata.name, age(obj, now)],
};

/** What `kubectl get pods` shows of a pod's status; `lastRestart` is in ms since the epoch. */
export interface PodStatusText {
  status: string;
  ready: string;
  restarts: number;
  /** When the last of the counted containers last terminated, if any says so. */
  lastRestart?: number;
}

/** The later of `last` and the time the container's previous run finished. */
function laterRestart(last: number | undefined, c: ContainerStatus): number | undefined {
  const finished = c.lastState?.terminated?.finishedAt;
  const at = finished ? Date.parse(finished) : NaN;
  if (Number.isNaN(at)) return last;
  return last === undefined || at > last ? at : last;
}

/**
 * The STATUS, READY and RESTARTS columns of a pod, computed the way Kubernetes' printer
 * does. Restarts of init containers count while the pod initializes; once it has, only its
 * containers' restarts count (flyCes has no restartable, sidecar, init containers).
 */
export function podStatusText(pod: Pod): PodStatusText {
  const status = pod.status ?? {};
  const specCount = pod.spec?.containers?.length ?? 0;
  let reason = status.reason ?? status.phase ?? 'Pending';
  let restarts = 0;
  let lastRestart: number | undefined;
  let ready = 0;

  const inits = status.initContainerStatuses ?? [];
  let initializing = false;
  inits.forEach((c, i) => {
    restarts += c.restartCount;
    lastRestart = laterRestart(lastRestart, c);
    if (initializing) return;
    const t = c.state?.terminated;
    if (t && t.exitCode === 0) return;
    initializing = true;
    if (t) reason = `Init:${t.reason || `ExitCode:${t.exitCode}`}`;
    else if (c.state?.waiting?.reason && c.state.waiting.reason !== 'PodInitializing') {
      reason = `Init:${c.state.waiting.reason}`;
    } else reason = `Init:${i}/${pod.spec.initContainers?.length ?? 0}`;
  });

  if (!initializing) {
    restarts = 0;
    lastRestart = undefined;
    let hasRunning = false;
    for (const c of [...(status.containerStatuses ?? [])].reverse()) {
      restarts += c.restartCount;
      lastRestart = laterRestart(lastRestart, c);
      const { waiting, terminated, running } = c.state ?? {};
      if (waiting?.reason) reason = waiting.reason;
      else if (terminated?.reason) reason = terminated.reason;
      else if (terminated) reason = `ExitCode:${terminated.exitCode}`;
      else if (running && c.ready) {
        hasRunning = true;
        ready++;
      } else if (running) hasRunning = true;
    }
    if (reason === 'Completed' && hasRunning) reason = 'Running';
  }
  if (pod.metadata.deletionTimestamp) reason = 'Terminating';
  return { status: reason, ready: `${ready}/${specCount}`, restarts, lastRestart };
}

/** The RESTARTS cell: the count, and how long ago the last restart was, e.g. `2 (5s ago)`. */
export function restartsText(text: PodStatusText, now: number): string {
  if (text.restarts === 0 || text.lastRestart === undefined) return String(text.restarts);
  return `${text.restarts} (${humanDuration(now - text.lastRestart)} ago)`;
}

const podPrinter: Printer = {
  columns: [
    nameColumn,
    { name: 'Ready', type: 'string', priority: 0 },
    { name: 'Status', type: 'string', priority: 0 },
    { name: 'Restarts', type: 'string', priority: 0 },
    ageColumn,
    { name: 'IP', type: 'string', priority: 1 },
    { name: 'Node', type: 'string', priority: 1 },
    { name: 'Nominated Node', type: 'string', priority: 1 },
    { name: 'Readiness Gates', type: 'string', priority: 1 },
  ],
  cells(obj, now) {
    const pod = obj as Pod;
    const text = podStatusText(pod);
    return [
      pod.metadata.name,
      text.ready,
      text.status,
      restartsText(text, now),
      age(pod, now),
      pod.status?.podIP ?? '<none>',
      pod.spec?.nodeName || '<none>',
      pod.status?.nominatedNodeName ?? '<none>',
      '<none>',
    ];
  },
};

function containersAndImages(spec: { containers?: { name: string; image: string }[] } | undefined) {
  const containers = spec?.containers ?? [];
  return [containers.map((c) => c.name).join(','), containers.map((c) => c.image).join(',')];
}

const deploymentPrinter: Printer = {
  columns: [
    nameColumn,
    { name: 'Ready', type: 'string', priority: 0 },
    { name: 'Up-to-date', type: 'integer', priority: 0 },
    { name: 'Available', type: 'integer', priority: 0 },
    ageColumn,
    { name: 'Containers', type: 'string', priority: 1 },
    { name: 'Images', type: 'string', priority: 1 },
    { name: 'Selector', type: 'string', priority: 1 },
  ],
  cells(obj, now) {
    const d = obj as Deployment;
    const s = d.status ?? {};
    return [
      d.metadata.name,
      `${s.readyReplicas ?? 0}/${d.spec?.replicas ?? 0}`,
      s.updatedReplicas ?? 0,
      s.availableReplicas ?? 0,
      age(d, now),
      ...containersAndImages(d.spec?.template?.spec),
      formatLabelSelector(d.spec?.selector),
    ];
  },
};

const replicaSetPrinter: Printer = {
  columns: [
    nameColumn,
    { name: 'Desired', type: 'integer', priority: 0 },
    { name: 'Current', type: 'integer', priority: 0 },
    { name: 'Ready', type: 'integer', priority: 0 },
    ageColumn,
    { name: 'Containers', type: 'string', priority: 1 },
    { name: 'Images', type: 'string', priority: 1 },
    { name: 'Selector', type: 'string', priority: 1 },
  ],
  cells(obj, now) {
    const rs = obj as ReplicaSet;
    return [
      rs.metadata.name,
      rs.spec?.replicas ?? 0,
      rs.status?.replicas ?? 0,
      rs.status?.readyReplicas ?? 0,
      age(rs, now),
      ...containersAndImages(rs.spec?.template?.spec),
      formatLabelSelector(rs.spec?.selector),
    ];
  },
};

function nodeStatusText(node: NodeObject): string {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  const parts = [ready?.status === 'True' ? 'Ready' : ready ? 'NotReady' : 'Unknown'];
  if (node.spec?.unschedulable) parts.push('SchedulingDisabled');
  return parts.join(',');
}

const nodePrinter: Printer = {
  columns: [
    nameColumn,
    { name: 'Status', type: 'string', priority: 0 },
    { name: 'Roles', type: 'string', priority: 0 },
    ageColumn,
    { name: 'Version', type: 'string', priority: 0 },
    { name: 'Internal-IP', type: 'string', priority: 1 },
    { name: 'External-IP', type: 'string', priority: 1 },
    { name: 'OS-Image', type: 'string', priority: 1 },
    { name: 'Kernel-Version', type: 'string', priority: 1 },
    { name: 'Container-Runtime', type: 'string', priority: 1 },
  ],
  cells(obj, now) {
    const node = obj as NodeObject;
    const roles = Object.keys(node.metadata.labels ?? {})
      .filter((k) => k.startsWith('node-role.kubernetes.io/'))
      .map((k) => k.slice('node-role.kubernetes.io/'.length));
    const address = (type: string) =>
      node.status?.addresses?.find((a) => a.type === type)?.address ?? '<none>';
    const info = node.status?.nodeInfo ?? {};
    return [
      node.metadata.name,
      nodeStatusText(node),
      roles.length ? roles.join(',') : '<none>',
      age(node, now),
      info.kubeletVersion ?? '',
      address('InternalIP'),
      address('ExternalIP'),
      info.osImage ?? '<unknown>',
      info.kernelVersion ?? '<unknown>',
      info.containerRuntimeVersion ?? '<unknown>',
    ];
  },
};

const namespacePrinter: Printer = {
  columns: [nameColumn, { name: 'Status', type: 'string', priority: 0 }, ageColumn],
  cells: (obj, now) => [obj.metadata.name, obj.status?.phase ?? 'Active', age(obj, now)],
};

const eventPrinter: Printer = {
  columns: [
    { name: 'Last Seen', type: 'string', priority: 0 },
    { name: 'Type', type: 'string', priority: 0 },
    { name: 'Reason', type: 'string', priority: 0 },
    { name: 'Object', type: 'string', priority: 0 },
    { name: 'Message', type: 'string', priority: 0 },
    { name: 'Source', type: 'string', priority: 1 },
    { name: 'First Seen', type: 'string', priority: 1 },
    { name: 'Count', type: 'integer', priority: 1 },
    { name: 'Name', type: 'string', format: 'name', priority: 1 },
  ],
  cells(e, now) {
    const last = e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp;
    const first = e.firstTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp;
    const since = (t: string | undefined) => (t ? humanDuration(now - Date.parse(t)) : '<unknown>');
    const io = e.involvedObject ?? {};
    return [
      since(last),
      e.type ?? 'Normal',
      e.reason ?? '',
      `${String(io.kind ?? '').toLowerCase()}/${io.name ?? ''}`,
      e.message ?? '',
      e.source?.component ?? '',
      since(first),
      e.count ?? 1,
      e.metadata.name,
    ];
  },
};

const leasePrinter: Printer = {
  columns: [nameColumn, { name: 'Holder', type: 'string', priority: 0 }, ageColumn],
  cells: (obj, now) => [obj.metadata.name, obj.spec?.holderIdentity ?? '', age(obj, now)],
};

const priorityClassPrinter: Printer = {
  columns: [
    nameColumn,
    { name: 'Value', type: 'integer', priority: 0 },
    { name: 'Global-Default', type: 'boolean', priority: 0 },
    ageColumn,
    { name: 'PreemptionPolicy', type: 'string', priority: 0 },
  ],
  cells: (obj, now) => [
    obj.metadata.name,
    obj.value,
    obj.globalDefault ?? false,
    age(obj, now),
    obj.preemptionPolicy ?? '',
  ],
};

const count = (map: unknown) => (map && typeof map === 'object' ? Object.keys(map).length : 0);

const configMapPrinter: Printer = {
  columns: [nameColumn, { name: 'Data', type: 'integer', priority: 0 }, ageColumn],
  cells(obj, now) {
    const cm = obj as ConfigMap;
    return [cm.metadata.name, count(cm.data) + count(cm.binaryData), age(cm, now)];
  },
};

const serviceAccountPrinter: Printer = {
  columns: [nameColumn, { name: 'Secrets', type: 'integer', priority: 0 }, ageColumn],
  cells(obj, now) {
    const sa = obj as ServiceAccount;
    return [sa.metadata.name, Array.isArray(sa.secrets) ? sa.secrets.length : 0, age(sa, now)];
  },
};

const secretPrinter: Printer = {
  columns: [
    nameColumn,
    { name: 'Type', type: 'string', priority: 0 },
    { name: 'Data', type: 'integer', priority: 0 },
    ageColumn,
  ],
  cells(obj, now) {
    const secret = obj as Secret;
    return [secret.metadata.name, secret.type ?? 'Opaque', count(secret.data), age(secret, now)];
  },
};

/** `k=v,k2=v2` as kubectl prints a label map, `<none>` when empty. */
function formatLabels(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {});
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(',') : '<none>';
}

const daemonSetPrinter: Printer = {
  columns: [
    nameColumn,
    { name: 'Desired', type: 'integer', priority: 0 },
    { name: 'Current', type: 'integer', priority: 0 },
    { name: 'Ready', type: 'integer', priority: 0 },
    { name: 'Up-to-date', type: 'integer', priority: 0 },
    { name: 'Available', type: 'integer', priority: 0 },
    { name: 'Node Selector', type: 'string', priority: 0 },
    ageColumn,
    { name: 'Containers', type: 'string', priority: 1 },
    { name: 'Images', type: 'string', priority: 1 },
    { name: 'Selector', type: 'string', priority: 1 },
  ],
  cells(obj, now) {
    const ds = obj as DaemonSet;
    const s = ds.status;
    return [
      ds.metadata.name,
      s?.desiredNumberScheduled ?? 0,
      s?.currentNumberScheduled ?? 0,
      s?.numberReady ?? 0,
      s?.updatedNumberScheduled ?? 0,
      s?.numberAvailable ?? 0,
      formatLabels(ds.spec?.template?.spec?.nodeSelector),
      age(ds, now),
      ...containersAndImages(ds.spec?.template?.spec),
      formatLabelSelector(ds.spec?.selector),
    ];
  },
};

const statefulSetPrinter: Printer = {
  columns: [
    nameColumn,
    { name: 'Ready', type: 'string', priority: 0 },
    ageColumn,
    { name: 'Containers', type: 'string', priority: 1 },
    { name: 'Images', type: 'string', priority: 1 },
  ],
  cells(obj, now) {
    const sts = obj as StatefulSet;
    return [
      sts.metadata.name,
      `${sts.status?.readyReplicas ?? 0}/${sts.spec?.replicas ?? 0}`,
      age(sts, now),
      ...containersAndImages(sts.spec?.template?.spec),
    ];
  },
};

const controllerRevisionPrinter: Printer = {
  columns: [
    nameColumn,
    { name: 'Controller', type: 'string', priority: 0 },
    { name: 'Revision', type: 'integer', priority: 0 },
    ageColumn,
  ],
  cells(obj, now) {
    const cr = obj as ControllerRevision;
    const ref = cr.metadata.ownerReferences?.find((r) => r.controller);
    const group = ref?.apiVersion.includes('/') ? ref.apiVersion.split('/')[0] : '';
    const controller = ref
      ? `${ref.kind.toLowerCase()}${group ? `.${group}` : ''}/${ref.name}`
      : '<none>';
    return [cr.metadata.name, controller, cr.revision ?? 0, age(cr, now)];
  },
};

function jobStatusText(job: Job): string {
  const has = (type: string) =>
    job.status?.conditions?.some((c) => c.type === type && c.status === 'True') ?? false;
  if (has('Complete')) return 'Complete';
  if (has('Failed')) return 'Failed';
  if (job.metadata.deletionTimestamp) return 'Terminating';
  if (has('Suspended')) return 'Suspended';
  if (has('FailureTarget')) return 'FailureTarget';
  return 'Running';
}

function jobCompletions(job: Job): string {
  const succeeded = job.status?.succeeded ?? 0;
  const { completions, parallelism } = job.spec ?? {};
  if (completions !== undefined) return `${succeeded}/${completions}`;
  if (parallelism !== undefined && parallelism > 1) return `${succeeded}/1 of ${parallelism}`;
  return `${succeeded}/1`;
}

function jobDuration(job: Job, now: number): string {
  const start = job.status?.startTime;
  if (!start) return '';
  const end = job.status?.completionTime ? Date.parse(job.status.completionTime) : now;
  return humanDuration(end - Date.parse(start));
}

const jobPrinter: Printer = {
  columns: [
    nameColumn,
    { name: 'Status', type: 'string', priority: 0 },
    { name: 'Completions', type: 'string', priority: 0 },
    { name: 'Duration', type: 'string', priority: 0 },
    ageColumn,
    { name: 'Containers', type: 'string', priority: 1 },
    { name: 'Images', type: 'string', priority: 1 },
    { name: 'Selector', type: 'string', priority: 1 },
  ],
  cells(obj, now) {
    const job = obj as Job;
    return [
      job.metadata.name,
      jobStatusText(job),
      jobCompletions(job),
      jobDuration(job, now),
      age(job, now),
      ...containersAndImages(job.spec?.template?.spec),
      formatLabelSelector(job.spec?.selector),
    ];
  },
};

const cronJobPrinter: Printer = {
  columns: [
    nameColumn,
    { name: 'Schedule', type: 'string', priority: 0 },
    { name: 'Timezone', type: 'string', priority: 0 },
    { name: 'Suspend', type: 'boolean', priority: 0 },
    { name: 'Active', type: 'integer', priority: 0 },
    { name: 'Last Schedule', type: 'string', priority: 0 },
    ageColumn,
    { name: 'Containers', type: 'string', priority: 1 },
    { name: 'Images', type: 'string', priority: 1 },
    { name: 'Selector', type: 'string', priority: 1 },
  ],
  cells(obj, now) {
    const cj = obj as CronJob;
    const last = cj.status?.lastScheduleTime;
    const jobSpec = cj.spec?.jobTemplate?.spec;
    return [
      cj.metadata.name,
      cj.spec?.schedule ?? '',
      cj.spec?.timeZone ?? '<none>',
      cj.spec?.suspend ? 'True' : 'False',
      cj.status?.active?.length ?? 0,
      last ? humanDuration(now - Date.parse(last)) : '<none>',
      age(cj, now),
      ...containersAndImages(jobSpec?.template?.spec),
      jobSpec?.selector ? formatLabelSelector(jobSpec.selector) : '<none>',
    ];
  },
};

function servicePorts(svc: Service): string {
  const ports = svc.spec?.ports ?? [];
  if (ports.length === 0) return '<none>';
  return ports
    .map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`)
    .join(',');
}

function serviceExternalIP(svc: Service): string {
  const external = svc.spec?.externalIPs ?? [];
  if (svc.spec?.type === 'LoadBalancer') {
    const ingress = (svc.status?.loadBalancer?.ingress ?? []) as { ip?: string }[];
    const ips = [...ingress.map((i) => i.ip ?? ''), ...external].filter((ip) => ip);
    return ips.length ? ips.join(',') : '<pending>';
  }
  if (svc.spec?.type === 'ExternalName') return svc.spec.externalName ?? '<none>';
  return external.length ? external.join(',') : '<none>';
}

const servicePrinter: Printer = {
  columns: [
    nameColumn,
    { name: 'Type', type: 'string', priority: 0 },
    { name: 'Cluster-IP', type: 'string', priority: 0 },
    { name: 'External-IP', type: 'string', priority: 0 },
    { name: 'Port(s)', type: 'string', priority: 0 },
    ageColumn,
    { name: 'Selector', type: 'string', priority: 1 },
  ],
  cells(obj, now) {
    const svc = obj as Service;
    const selector = Object.entries(svc.spec?.selector ?? {}).map(([k, v]) => `${k}=${v}`);
    return [
      svc.metadata.name,
      svc.spec?.type ?? 'ClusterIP',
      svc.spec?.clusterIP || '<none>',
      serviceExternalIP(svc),
      servicePorts(svc),
      age(svc, now),
      selector.length ? selector.sort().join(',') : '<none>',
    ];
  },
};

/** At most three addresses, then how many more, as kubectl shows endpoints. */
function firstThree(list: string[], empty: string): string {
  if (list.length === 0) return empty;
  const shown = list.slice(0, 3).join(',');
  return list.length > 3 ? `${shown} + ${list.length - 3} more...` : shown;
}

const endpointsPrinter: Printer = {
  columns: [nameColumn, { name: 'Endpoints', type: 'string', priority: 0 }, ageColumn],
  cells(obj, now) {
    const list: string[] = [];
    for (const subset of (obj as Endpoints).subsets ?? []) {
      const ports = subset.ports ?? [];
      for (const a of subset.addresses ?? []) {
        if (ports.length === 0) list.push(a.ip);
        for (const p of ports) list.push(`${a.ip}:${p.port}`);
      }
    }
    return [obj.metadata.name, firstThree(list, '<none>'), age(obj, now)];
  },
};

const endpointSlicePrinter: Printer = {
  columns: [
    nameColumn,
    { name: 'AddressType', type: 'string', priority: 0 },
    { name: 'Ports', type: 'string', priority: 0 },
    { name: 'Endpoints', type: 'string', priority: 0 },
    ageColumn,
  ],
  cells(obj, now) {
    const slice = obj as EndpointSlice;
    const ports = (slice.ports ?? []).map((p) => (p.port ? String(p.port) : '<unset>'));
    const addresses = (slice.endpoints ?? []).flatMap((e) => e.addresses ?? []);
    return [
      slice.metadata.name,
      slice.addressType,
      ports.length ? ports.join(',') : '<unset>',
      firstThree(addresses, '<unset>'),
      age(slice, now),
    ];
  },
};

export const printers: Record<string, Printer> = {
  ConfigMap: configMapPrinter,
  Secret: secretPrinter,
  ServiceAccount: serviceAccountPrinter,
  Pod: podPrinter,
  Deployment: deploymentPrinter,
  ReplicaSet: replicaSetPrinter,
  Node: nodePrinter,
  Namespace: namespacePrinter,
  Event: eventPrinter,
  Lease: leasePrinter,
  DaemonSet: daemonSetPrinter,
  StatefulSet: statefulSetPrinter,
  ControllerRevision: controllerRevisionPrinter,
  Job: jobPrinter,
  CronJob: cronJobPrinter,
  Service: servicePrinter,
  Endpoints: endpointsPrinter,
  EndpointSlice: endpointSlicePrinter,
  PriorityClass: priorityClassPrinter,
};
