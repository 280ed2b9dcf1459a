import type { Container, Deployment, Pod, PodSpec, PodTemplateSpec, ReplicaSet } from './types.js';
import { canonicalQuantity } from './quantity.js';
import { qosClassOf } from './qos.js';
import { addDefaultTolerations } from './taints.js';

/**
 * Defaulting: the values Kubernetes fills in when a client leaves a field out, applied
 * before validation so that stored objects always carry them.
 */

/**
 * The pull policy Kubernetes gives a container that names none: Always for the tag
 * `latest`, IfNotPresent otherwise. A reference with neither tag nor digest has the tag
 * latest; one with a digest has only the tag it writes, so `x:latest@sha256:…` is Always
 * and `x@sha256:…` IfNotPresent.
 */
export function defaultPullPolicy(image: string): 'Always' | 'IfNotPresent' {
  const at = image.indexOf('@');
  const name = at >= 0 ? image.slice(0, at) : image;
  const last = name.slice(name.lastIndexOf('/') + 1);
  const colon = last.indexOf(':');
  const tag = colon >= 0 ? last.slice(colon + 1) : at >= 0 ? '' : 'latest';
  return tag === 'latest' ? 'Always' : 'IfNotPresent';
}

function defaultContainer(c: Container): void {
  if (!c || typeof c !== 'object') return;
  if (!c.imagePullPolicy && typeof c.image === 'string') {
    c.imagePullPolicy = defaultPullPolicy(c.image);
  }
  c.terminationMessagePath ??= '/dev/termination-log';
  c.terminationMessagePolicy ??= 'File';
  for (const p of c.ports ?? []) if (p && typeof p === 'object') p.protocol ??= 'TCP';
  // A limit without a request means the request equals the limit, as in Kubernetes.
  const limits = c.resources?.limits;
  if (limits && typeof limits === 'object') {
    const requests = (c.resources!.requests ??= {});
    if (typeof requests === 'object') {
      for (const [name, value] of Object.entries(limits)) requests[name] ??= value;
    }
  }
}

/** Kubernetes' defaults of an HTTP GET action (probes and lifecycle hooks). */
function defaultHttpGet(action: unknown): void {
  if (!action || typeof action !== 'object') return;
  const get = action as { path?: unknown; scheme?: unknown };
  if (get.path === undefined || get.path === '') get.path = '/';
  get.scheme ??= 'HTTP';
}

/** Kubernetes' defaults of a probe's timing, and of its HTTP GET. */
function defaultProbe(probe: unknown): void {
  if (!probe || typeof probe !== 'object') return;
  const p = probe as Record<string, unknown>;
  p.timeoutSeconds ??= 1;
  p.periodSeconds ??= 10;
  p.successThreshold ??= 1;
  p.failureThreshold ??= 3;
  defaultHttpGet(p.httpGet);
}

/**
 * Probe and hook defaults. Objects stored before flyCes gave them lack them (the agent
 * applies the same values to such a probe); the registry compares an update with the stored
 * object as defaulting leaves it now, and the workload controllers compare templates the
 * same way, so that the defaults alone are no change that rolls pods out.
 */
function defaultHandlers(c: Container): void {
  if (!c || typeof c !== 'object') return;
  for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) defaultProbe(probe);
  const lifecycle = c.lifecycle as
    { postStart?: { httpGet?: unknown }; preStop?: { httpGet?: unknown } } | undefined;
  if (lifecycle && typeof lifecycle === 'object') {
    defaultHttpGet(lifecycle.postStart?.httpGet);
    defaultHttpGet(lifecycle.preStop?.httpGet);
  }
}

/**
 * The defaults Kubernetes gives every PodSpec, a Pod's and a pod template's alike: the
 * pod's policies, and each container's pull policy, termination message, port protocol,
 * requests from limits, probes and hooks; quantities are written in canonical form.
 */
export function defaultPodSpec(spec: PodSpec | undefined): void {
  if (!spec || typeof spec !== 'object') return;
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  for (const list of [spec.containers, spec.initContainers]) {
    if (!Array.isArray(list)) continue;
    list.forEach(defaultContainer);
    list.forEach(defaultHandlers);
  }
  canonicalQuantities(spec);
}

/**
 * Writes a pod spec's resource quantities and emptyDir sizes in Kubernetes' canonical form
 * ("0.5" as "500m", "1.5Gi" as "1536Mi", a JSON number as a string), as the API gives them
 * back. A value that is not a quantity stays as written, for validation to name.
 */
function canonicalQuantities(spec: PodSpec): void {
  const canonical = (map: unknown) => {
    if (!map || typeof map !== 'object' || Array.isArray(map)) return;
    const values = map as Record<string, unknown>;
    for (const [name, value] of Object.entries(values)) {
      values[name] = canonicalQuantity(value) ?? value;
    }
  };
  for (const c of [...listOf(spec.containers), ...listOf(spec.initContainers)]) {
    canonical(c?.resources?.requests);
    canonical(c?.resources?.limits);
  }
  for (const v of listOf(spec.volumes as { emptyDir?: Record<string, unknown> }[])) {
    const dir = v?.emptyDir;
    if (dir && typeof dir === 'object' && dir.sizeLimit !== undefined) {
      dir.sizeLimit = canonicalQuantity(dir.sizeLimit) ?? dir.sizeLimit;
    }
  }
}

function listOf<T>(value: T[] | undefined): T[] {
  return Array.isArray(value) ? value : [];
}

/**
 * A Pod's defaults: its spec's, then what only a Pod gets (the not-ready and unreachable
 * tolerations, an admission step in Kubernetes, and its initial status).
 */
export function defaultPod(pod: Pod): void {
  defaultPodSpec(pod.spec);
  if (pod.spec && typeof pod.spec === 'object') addDefaultTolerations(pod);
  pod.status ??= {};
  pod.status.phase ??= 'Pending';
  if (pod.spec && typeof pod.spec === 'object') pod.status.qosClass ??= qosClassOf(pod.spec);
}

/**
 * A pod template's defaults, in every workload that has one (Deployment, ReplicaSet,
 * StatefulSet, DaemonSet, Job, a CronJob's Job template): its PodSpec's, as a Pod gets them.
 * `creationTimestamp: null` in its metadata goes: clients write it (kubectl rollout undo
 * copies it from a ReplicaSet) and Kubernetes treats it as absent, so it must not make two
 * equal templates look different.
 */
export function defaultPodTemplate(template: PodTemplateSpec | undefined): void {
  if (!template || typeof template !== 'object') return;
  const meta = template.metadata as Record<string, unknown> | undefined;
  if (meta && typeof meta === 'object' && meta.creationTimestamp === null)
    delete meta.creationTimestamp;
  defaultPodSpec(template.spec);
}

export function defaultDeployment(d: Deployment): void {
  const spec = d.spec;
  if (!spec || typeof spec !== 'object') return;
  spec.replicas ??= 1;
  spec.strategy ??= {};
  spec.strategy.type ??= 'RollingUpdate';
  if (spec.strategy.type === 'RollingUpdate') {
    spec.strategy.rollingUpdate ??= {};
    spec.strategy.rollingUpdate.maxSurge ??= '25%';
    spec.strategy.rollingUpdate.maxUnavailable ??= '25%';
  }
  spec.revisionHistoryLimit ??= 10;
  spec.progressDeadlineSeconds ??= 600;
  defaultPodTemplate(spec.template);
}

export function defaultReplicaSet(rs: ReplicaSet): void {
  const spec = rs.spec;
  if (!spec || typeof spec !== 'object') return;
  spec.replicas ??= 1;
  defaultPodTemplate(spec.template);
}
