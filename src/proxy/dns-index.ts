import type { Answer, RecordType } from 'dns-packet';

import {
  addressesOf,
  backendsFor,
  hasClusterIP,
  isDnsName,
  isIPv4,
  keyOf,
  protocolOf,
  slicesByService,
  type Backend,
} from './endpoints.js';
import type { EndpointSlice, Service } from './types.js';

/**
 * The records of the cluster DNS zone, computed from Services and EndpointSlices kept in
 * memory. The lead's informer handlers call the upsert and delete methods; lookups are
 * answered from the current contents at once (no caching of answers).
 *
 * Names (D is the cluster domain, default cluster.local):
 * - `<svc>.<ns>.svc.D` A: the ClusterIP; for a headless Service the addresses of its
 *   ready endpoints; for an ExternalName Service a CNAME to the external name (which this
 *   server then refuses to resolve, as it is outside the zone).
 * - `<hostname or a-b-c-d>.<svc>.<ns>.svc.D` A: one ready endpoint of a headless Service.
 * - `_<port>._<proto>.<svc>.<ns>.svc.D` SRV: named ports; the target is the Service name,
 *   or each ready endpoint's name for a headless Service, with A records as additionals.
 * - `<a-b-c-d>.<ns>.pod.D` A: a-b-c-d as an address. Like CoreDNS' "pods insecure" mode,
 *   the address is not checked against the pods of the namespace.
 * Every other name in the zone is NXDOMAIN, an existing name without records of the asked
 * type is an empty NOERROR answer; both carry the zone's SOA for negative caching.
 * Names outside the zone are REFUSED: this server never forwards.
 */

export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

/** TTL of every record, in seconds; short, as Services and endpoints change often. */
export const RECORD_TTL = 5;

export type DnsRcode = 'NOERROR' | 'NXDOMAIN' | 'REFUSED';

/** The answer to one question: an rcode plus the three record sections. */
export interface DnsAnswer {
  rcode: DnsRcode;
  /** True inside the cluster zone, where this server is the authority. */
  authoritative: boolean;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
}

/** What the DNS server asks; DnsIndex is the implementation. */
export interface DnsResolver {
  /** Answers one question; `name` as it was asked (any case, no trailing dot). */
  resolve(name: string, type: RecordType): DnsAnswer;
}

/** The Service and EndpointSlice data the cluster DNS answers from. */
export class DnsIndex implements DnsResolver {
  readonly domain: string;
  private readonly services = new Map<string, Service>();
  private readonly slices = new Map<string, EndpointSlice>();
  private grouped?: Map<string, EndpointSlice[]>;
  private serial = 1;

  constructor(clusterDomain = DEFAULT_CLUSTER_DOMAIN) {
    const domain = clusterDomain.toLowerCase().replace(/\.$/, '');
    if (!isDnsName(domain)) throw new Error(`cluster domain "${clusterDomain}" is not valid`);
    this.domain = domain;
  }

  /** Adds or replaces a Service (by namespace/name). */
  upsertService(svc: Service): void {
    this.services.set(keyOf(svc.metadata), svc);
    this.bump();
  }

  deleteService(meta: { name?: string; namespace?: string }): void {
    if (this.services.delete(keyOf(meta))) this.bump();
  }

  /** Adds or replaces an EndpointSlice (by namespace/name). */
  upsertEndpointSlice(slice: EndpointSlice): void {
    this.slices.set(keyOf(slice.metadata), slice);
    this.grouped = undefined;
    this.bump();
  }

  deleteEndpointSlice(meta: { name?: string; namespace?: string }): void {
    if (this.slices.delete(keyOf(meta))) this.bump();
    this.grouped = undefined;
  }

  /** Replaces everything, e.g. after an informer re-list. */
  replaceAll(services: Iterable<Service>, slices: Iterable<EndpointSlice>): void {
    this.services.clear();
    this.slices.clear();
    for (const s of services) this.services.set(keyOf(s.metadata), s);
    for (const s of slices) this.slices.set(keyOf(s.metadata), s);
    this.grouped = undefined;
    this.bump();
  }

  resolve(name: string, type: RecordType): DnsAnswer {
    const lower = name.toLowerCase().replace(/\.$/, '');
    if (lower !== this.domain && !lower.endsWith(`.${this.domain}`)) {
      return {
        rcode: 'REFUSED',
        authoritative: false,
        answers: [],
        authorities: [],
        additionals: [],
      };
    }
    const labels = lower === this.domain ? [] : lower.slice(0, -this.domain.length - 1).split('.');
    const found = this.find(labels.reverse(), name, type);
    if (found === undefined) return this.negative('NXDOMAIN');
    if (found.answers.length === 0) return this.negative('NOERROR');
    const { answers, additionals } = found;
    return { rcode: 'NOERROR', authoritative: true, answers, authorities: [], additionals };
  }

  /** The zone's SOA record, also used for negative answers. */
  soa(): Answer {
    return {
      type: 'SOA',
      name: this.domain,
      ttl: RECORD_TTL,
      data: {
        mname: `ns.dns.${this.domain}`,
        rname: `hostmaster.${this.domain}`,
        serial: this.serial,
        refresh: 7200,
        retry: 1800,
        expire: 86400,
        minimum: RECORD_TTL,
      },
    };
  }

  private bump(): void {
    this.serial = (this.serial % 0xffffffff) + 1;
  }

  private negative(rcode: DnsRcode): DnsAnswer {
    return { rcode, authoritative: true, answers: [], authorities: [this.soa()], additionals: [] };
  }

  /**
   * Records for the zone-relative labels, from the top (`svc`, `pod`) down; undefined when
   * the name does not exist, empty answers when it exists without records of `type`.
   */
  private find(
    rev: string[],
    name: string,
    type: RecordType,
  ): Pick<DnsAnswer, 'answers' | 'additionals'> | undefined {
    const none = { answers: [], additionals: [] };
    if (rev.length === 0) return type === 'SOA' ? { answers: [this.soa()], additionals: [] } : none;
    const [kind, ns, second, third, fourth] = rev;
    if (kind === 'pod') {
      if (rev.length <= 2) return none;
      if (rev.length !== 3 || !isDnsName(ns)) return undefined;
      const ip = second.replaceAll('-', '.');
      if (!isIPv4(ip)) return undefined;
      return { answers: type === 'A' ? [aRecord(name, ip)] : [], additionals: [] };
    }
    if (kind !== 'svc') return undefined;
    if (rev.length === 1) return none;
    if (rev.length === 2) {
      const any = [...this.services.keys()].some((k) => k.startsWith(`${ns}/`));
      return any ? none : undefined;
    }
    const svc = this.services.get(`${ns}/${second}`);
    if (!svc) return undefined;
    if (rev.length === 3) return this.serviceRecords(svc, name, type);
    if (rev.length === 4) return this.endpointRecords(svc, third, name, type);
    if (rev.length === 5 && third.startsWith('_') && fourth.startsWith('_')) {
      return this.srvRecords(svc, third.slice(1), fourth.slice(1), name, type);
    }
    return undefined;
  }

  private serviceRecords(svc: Service, name: string, type: RecordType) {
    if (svc.spec?.type === 'ExternalName') {
      const target = svc.spec.externalName?.replace(/\.$/, '');
      if (!target) return undefined;
      const answer: Answer = { type: 'CNAME', name, ttl: RECORD_TTL, data: target };
      return { answers: [answer], additionals: [] };
    }
    if (type !== 'A') return { answers: [], additionals: [] };
    const ips = hasClusterIP(svc)
      ? [svc.spec?.clusterIP as string]
      : this.headlessBackends(svc).map((b) => b.ip);
    return { answers: ips.map((ip) => aRecord(name, ip)), additionals: [] };
  }

  private endpointRecords(svc: Service, label: string, name: string, type: RecordType) {
    if (hasClusterIP(svc)) return undefined;
    const hit = this.headlessBackends(svc).filter((b) => endpointLabel(b) === label);
    if (hit.length === 0) return undefined;
    const answers = type === 'A' ? hit.map((b) => aRecord(name, b.ip)) : [];
    return { answers, additionals: [] };
  }

  private srvRecords(
    svc: Service,
    proto: string,
    portName: string,
    name: string,
    type: RecordType,
  ) {
    const port = (svc.spec?.ports ?? []).find(
      (p) => p.name === portName && protocolOf(p).toLowerCase() === proto,
    );
    if (!port) return undefined;
    if (type !== 'SRV') return { answers: [], additionals: [] };
    const svcName = `${svc.metadata.name}.${svc.metadata.namespace ?? 'default'}.svc.${this.domain}`;
    if (hasClusterIP(svc)) {
      return {
        answers: [srvRecord(name, svcName, port.port)],
        additionals: [aRecord(svcName, svc.spec?.clusterIP as string)],
      };
    }
    const backends = backendsFor(this.slicesOf(svc), port).filter((b) => b.ready);
    const targets = backends.map((b) => ({ b, target: `${endpointLabel(b)}.${svcName}` }));
    return {
      answers: targets.map(({ b, target }) => srvRecord(name, target, b.port)),
      additionals: targets.map(({ b, target }) => aRecord(target, b.ip)),
    };
  }

  private headlessBackends(svc: Service): Backend[] {
    return addressesOf(this.slicesOf(svc)).filter((b) => b.ready);
  }

  private slicesOf(svc: Service): EndpointSlice[] {
    this.grouped ??= slicesByService(this.slices.values());
    return this.grouped.get(keyOf(svc.metadata)) ?? [];
  }
}

/** The DNS label of a headless endpoint: its hostname, else its address with dashes. */
function endpointLabel(b: Backend): string {
  return b.hostname ?? b.ip.replaceAll('.', '-');
}

function aRecord(name: string, ip: string): Answer {
  return { type: 'A', name, ttl: RECORD_TTL, data: ip };
}

function srvRecord(name: string, target: string, port: number): Answer {
  return { type: 'SRV', name, ttl: RECORD_TTL, data: { priority: 0, weight: 100, port, target } };
}
