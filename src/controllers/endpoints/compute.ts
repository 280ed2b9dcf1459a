import { isIPv4 } from '../../api/service.js';
import type {
  EndpointAddress,
  Endpoints,
  EndpointPort,
  EndpointSubset,
  Protocol,
  Service,
  SliceEndpoint,
  SlicePort,
} from '../../api/service.js';
import type { Pod } from '../../api/types.js';
import { isPodReady } from '../pods.js';

/**
 * What the Endpoints and EndpointSlices of a Service should hold, computed from the Service
 * and the pods its selector picks. Pure functions: the controller compares the result with
 * what is stored and writes the difference.
 *
 * A pod takes part once it has an IP and has not finished. Named target ports are resolved
 * per pod from its containers' ports; a port a pod does not have is left out for that pod,
 * so pods with different port numbers land in different subsets (and slices).
 */

/** At most this many endpoints go in one EndpointSlice, Kubernetes' default. */
export const MAX_ENDPOINTS_PER_SLICE = 100;

/** One pod as an endpoint of one Service. */
export interface PodEndpoint {
  pod: Pod;
  ip: string;
  /** Ready and not terminating, or the Service publishes not-ready addresses. */
  ready: boolean;
  /** Ready by its Ready condition, whether terminating or not. */
  serving: boolean;
  terminating: boolean;
  ports: EndpointPort[];
  /** The pod's hostname, when its subdomain names this Service (DNS for each pod). */
  hostname?: string;
}

/** The container port a service's target port means in one pod, or undefined. */
export function resolveTargetPort(
  pod: Pod,
  target: number | string | undefined,
  protocol: Protocol,
): number | undefined {
  if (typeof target === 'number') return target;
  if (!target) return undefined;
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (p.name === target && (p.protocol ?? 'TCP') === protocol) return p.containerPort;
    }
  }
  return undefined;
}

/** The pod as an endpoint of `svc`, or undefined if it takes no part. */
export function podEndpoint(svc: Service, pod: Pod): PodEndpoint | undefined {
  const ip = pod.status?.podIP;
  const phase = pod.status?.phase;
  if (!ip || phase === 'Succeeded' || phase === 'Failed') return undefined;
  const ports: EndpointPort[] = [];
  for (const sp of svc.spec.ports ?? []) {
    const protocol = sp.protocol ?? 'TCP';
    const port = resolveTargetPort(pod, sp.targetPort ?? sp.port, protocol);
    if (port === undefined) continue;
    const named = sp.name ? { name: sp.name } : {};
    ports.push({
      ...named,
      port,
      protocol,
      ...(sp.appProtocol ? { appProtocol: sp.appProtocol } : {}),
    });
  }
  if (ports.length === 0 && (svc.spec.ports ?? []).length > 0) return undefined;
  const terminating = !!pod.metadata.deletionTimestamp;
  const serving = isPodReady(pod);
  // A Service that publishes not-ready addresses has every pod ready, terminating or not.
  const ready = svc.spec.publishNotReadyAddresses === true || (serving && !terminating);
  const { hostname, subdomain } = pod.spec as { hostname?: string; subdomain?: string };
  const own = hostname && subdomain === svc.metadata.name ? { hostname } : {};
  return { pod, ip, ready, serving, terminating, ports, ...own };
}

function portsKey(ports: { name?: string; port?: number; protocol?: string }[]): string {
  return ports.map((p) => `${p.name ?? ''}:${p.port}/${p.protocol}`).join(',');
}

function byIP(a: { ip: string }, b: { ip: string }): number {
  return a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0;
}

function address(e: PodEndpoint): EndpointAddress {
  const pod = e.pod;
  return {
    ip: e.ip,
    ...(e.hostname ? { hostname: e.hostname } : {}),
    ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
    targetRef: {
      kind: 'Pod',
      namespace: pod.metadata.namespace,
      name: pod.metadata.name!,
      uid: pod.metadata.uid,
    },
  };
}

/**
 * The subsets of the Service's Endpoints: one per distinct set of resolved ports, ready
 * pods in `addresses`, the others in `notReadyAddresses`. Terminating pods are left out,
 * unless the Service publishes not-ready addresses.
 */
export function computeSubsets(svc: Service, pods: Pod[]): EndpointSubset[] {
  const groups = new Map<
    string,
    { ports: EndpointPort[]; ready: PodEndpoint[]; not: PodEndpoint[] }
  >();
  for (const pod of pods) {
    const e = podEndpoint(svc, pod);
    if (!e || (e.terminating && svc.spec.publishNotReadyAddresses !== true)) continue;
    const key = portsKey(e.ports);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { ports: e.ports, ready: [], not: [] }));
    (e.ready ? group.ready : group.not).push(e);
  }
  return [...groups.keys()].sort().map((key) => {
    const g = groups.get(key)!;
    const subset: EndpointSubset = {};
    if (g.ready.length) subset.addresses = g.ready.sort(byIP).map(address);
    if (g.not.length) subset.notReadyAddresses = g.not.sort(byIP).map(address);
    if (g.ports.length) subset.ports = g.ports;
    return subset;
  });
}

/** An Endpoints object holds at most this many addresses, as in Kubernetes. */
export const MAX_ENDPOINTS_ADDRESSES = 1000;

/**
 * Cuts subsets down to `max` addresses in all, ready addresses first, and drops subsets left
 * empty. Returns whether anything was cut; the slices still list every endpoint.
 */
export function truncateSubsets(subsets: EndpointSubset[], max = MAX_ENDPOINTS_ADDRESSES) {
  const total = subsets.reduce(
    (n, s) => n + (s.addresses?.length ?? 0) + (s.notReadyAddresses?.length ?? 0),
    0,
  );
  if (total <= max) return { subsets, truncated: false };
  let room = max;
  const take = (list: EndpointAddress[] | undefined) => {
    const kept = (list ?? []).slice(0, room);
    room -= kept.length;
    return kept;
  };
  const ready = subsets.map((s) => take(s.addresses));
  const notReady = subsets.map((s) => take(s.notReadyAddresses));
  const cut = subsets.flatMap((s, i) => {
    if (ready[i]!.length + notReady[i]!.length === 0) return [];
    const out: EndpointSubset = {};
    if (ready[i]!.length) out.addresses = ready[i];
    if (notReady[i]!.length) out.notReadyAddresses = notReady[i];
    if (s.ports) out.ports = s.ports;
    return [out];
  });
  return { subsets: cut, truncated: true };
}

/** The content of one EndpointSlice. */
export interface SliceContent {
  ports: SlicePort[];
  endpoints: SliceEndpoint[];
}

function sliceEndpoint(e: PodEndpoint): SliceEndpoint {
  const { ip, nodeName, targetRef } = address(e);
  return {
    addresses: [ip],
    conditions: { ready: e.ready, serving: e.serving, terminating: e.terminating },
    ...(e.hostname ? { hostname: e.hostname } : {}),
    ...(nodeName ? { nodeName } : {}),
    targetRef,
  };
}

/**
 * The EndpointSlices the Service should have: endpoints grouped by their resolved ports,
 * at most `max` per slice, terminating pods included with ready false. A Service that
 * selects no pods keeps one empty slice, as Kubernetes does.
 */
export function computeSlices(
  svc: Service,
  pods: Pod[],
  max = MAX_ENDPOINTS_PER_SLICE,
): SliceContent[] {
  const groups = new Map<string, { ports: SlicePort[]; endpoints: PodEndpoint[] }>();
  for (const pod of pods) {
    const e = podEndpoint(svc, pod);
    if (!e) continue;
    const key = portsKey(e.ports);
    let group = groups.get(key);
    const ports = e.ports.map(({ name, ...rest }) => ({ name: name ?? '', ...rest }));
    if (!group) groups.set(key, (group = { ports, endpoints: [] }));
    group.endpoints.push(e);
  }
  const slices: SliceContent[] = [];
  for (const key of [...groups.keys()].sort()) {
    const g = groups.get(key)!;
    const sorted = g.endpoints.sort(byIP).map(sliceEndpoint);
    for (let i = 0; i < sorted.length; i += max) {
      slices.push({ ports: g.ports, endpoints: sorted.slice(i, i + max) });
    }
  }
  if (slices.length === 0) slices.push({ ports: [], endpoints: [] });
  return slices;
}

/**
 * The slices that mirror hand-written Endpoints (of a Service without a selector), so that
 * readers of slices see them too: one group per set of ports, at most `max` per slice.
 * Only IPv4 addresses are mirrored; Endpoints without addresses give no slices.
 */
export function mirrorSlices(ep: Endpoints, max = MAX_ENDPOINTS_PER_SLICE): SliceContent[] {
  const groups = new Map<string, SliceContent>();
  for (const subset of ep.subsets ?? []) {
    const ports = (subset.ports ?? []).map(({ name, ...rest }) => ({
      name: name ?? '',
      ...rest,
    }));
    const key = portsKey(ports);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { ports, endpoints: [] }));
    const add = (a: EndpointAddress, ready: boolean) => {
      if (!isIPv4(a?.ip)) return;
      group!.endpoints.push({
        addresses: [a.ip],
        conditions: { ready, serving: ready, terminating: false },
        ...(a.hostname ? { hostname: a.hostname } : {}),
        ...(a.nodeName ? { nodeName: a.nodeName } : {}),
        ...(a.targetRef ? { targetRef: a.targetRef } : {}),
      });
    };
    for (const a of subset.addresses ?? []) add(a, true);
    for (const a of subset.notReadyAddresses ?? []) add(a, false);
  }
  const slices: SliceContent[] = [];
  for (const key of [...groups.keys()].sort()) {
    const g = groups.get(key)!;
    for (let i = 0; i < g.endpoints.length; i += max) {
      slices.push({ ports: g.ports, endpoints: g.endpoints.slice(i, i + max) });
    }
  }
  return slices;
}

/** The key slices are matched on, so an existing slice is reused for the same ports. */
export function slicePortsKey(ports: SlicePort[] | null | undefined): string {
  return portsKey(ports ?? []);
}
