import {
  SERVICE_NAME_LABEL,
  type EndpointSlice,
  type Service,
  type ServicePort,
  type ServiceProtocol,
  type SliceEndpoint,
} from './types.js';

/**
 * Reading the endpoints of one Service port out of its EndpointSlices, shared by the
 * ruleset builder and the cluster DNS so both agree on which backends are usable.
 */

/** One backend of one Service port. */
export interface Backend {
  ip: string;
  port: number;
  hostname?: string;
  nodeName?: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
/** Namespace, Service and port names: DNS labels or subdomains as the API validates them. */
const DNS_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** True if `s` is a dotted-quad IPv4 address without leading zeros. */
export function isIPv4(s: string | undefined): s is string {
  return s !== undefined && IPV4.test(s);
}

/** True if `s` is safe to embed in names (nft chain names, DNS labels). */
export function isDnsName(s: string | undefined): s is string {
  return s !== undefined && s.length <= 253 && DNS_NAME.test(s);
}

/** `namespace/name` of an object; the namespace defaults to "default". */
export function keyOf(meta: { name?: string; namespace?: string }): string {
  return `${meta.namespace ?? 'default'}/${meta.name ?? ''}`;
}

/** The protocol of a Service port, TCP when absent. */
export function protocolOf(port: { protocol?: ServiceProtocol | null }): ServiceProtocol {
  return port.protocol ?? 'TCP';
}

/** True if the Service has a virtual IPv4 address (not headless, not ExternalName). */
export function hasClusterIP(svc: Service): boolean {
  return svc.spec?.type !== 'ExternalName' && isIPv4(svc.spec?.clusterIP);
}

/** Groups IPv4 EndpointSlices by the `namespace/name` of the Service they belong to. */
export function slicesByService(slices: Iterable<EndpointSlice>): Map<string, EndpointSlice[]> {
  const out = new Map<string, EndpointSlice[]>();
  for (const slice of slices) {
    const service = slice.metadata.labels?.[SERVICE_NAME_LABEL];
    if (!service || slice.addressType !== 'IPv4') continue;
    const key = keyOf({ namespace: slice.metadata.namespace, name: service });
    const list = out.get(key);
    if (list) list.push(slice);
    else out.set(key, [slice]);
  }
  return out;
}

/**
 * Every backend of `port` in `slices`: the slice port with the same name (both absent
 * counts as the same) and protocol gives the target port. Sorted by IP and port, without
 * duplicates (an address in two slices counts once; its first slice wins).
 */
export function backendsFor(slices: EndpointSlice[], port: ServicePort): Backend[] {
  const seen = new Map<string, Backend>();
  for (const slice of slices) {
    const match = (slice.ports ?? []).find(
      (p) => (p.name ?? '') === (port.name ?? '') && protocolOf(p) === protocolOf(port),
    );
    const target = match?.port;
    if (target === undefined || target === null) continue;
    for (const ep of slice.endpoints ?? []) {
      for (const ip of ep.addresses.filter(isIPv4)) {
        const id = `${ip}:${target}`;
        if (!seen.has(id)) seen.set(id, backend(ip, target, ep));
      }
    }
  }
  return [...seen.values()].sort(compareBackends);
}

/** Every endpoint address of the slices, whatever their ports; for headless DNS. */
export function addressesOf(slices: EndpointSlice[]): Backend[] {
  const seen = new Map<string, Backend>();
  for (const slice of slices) {
    for (const ep of slice.endpoints ?? []) {
      for (const ip of ep.addresses.filter(isIPv4)) {
        if (!seen.has(ip)) seen.set(ip, backend(ip, 0, ep));
      }
    }
  }
  return [...seen.values()].sort(compareBackends);
}

/**
 * The backends that should get new connections: the ready ones; when there are none, the
 * ones still serving while they terminate (so a rolling restart of the last pod does not
 * drop traffic that it could still answer). Empty means the Service rejects.
 */
export function usable(backends: Backend[]): Backend[] {
  const ready = backends.filter((b) => b.ready);
  if (ready.length > 0) return ready;
  return backends.filter((b) => b.serving && b.terminating);
}

function backend(ip: string, port: number, ep: SliceEndpoint): Backend {
  const c = ep.conditions ?? {};
  const ready = c.ready ?? true;
  return {
    ip,
    port,
    hostname: ep.hostname,
    nodeName: ep.nodeName,
    ready,
    serving: c.serving ?? ready,
    terminating: c.terminating ?? false,
  };
}

function compareBackends(a: Backend, b: Backend): number {
  return ipNumber(a.ip) - ipNumber(b.ip) || a.port - b.port;
}

/** The IPv4 address as an unsigned 32-bit number, for sorting. */
export function ipNumber(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}
