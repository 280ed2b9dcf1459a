import { ApiError, invalid, type FieldError } from '../api/errors.js';
import { isExternalName, isHeadless, needsNodePorts, type Service } from '../api/service.js';
import type { KObject } from '../api/types.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { IPv4Range, PortRange, RangeAllocator, type Allocation, type Owner } from './allocator.js';

/**
 * Cluster IPs and node ports of Services. The registry calls these hooks around its writes:
 * values are reserved before the Service is written, the reservation is undone when the
 * write fails, and values a Service no longer uses are freed once the write succeeded.
 * Objects of other kinds pass through untouched.
 */

export const DEFAULT_SERVICE_CIDR = '10.43.0.0/16';
export const DEFAULT_NODE_PORT_RANGE = '30000-32767';
const IP_PREFIX = '/ranges/serviceips/';
const PORT_PREFIX = '/ranges/servicenodeports/';

export interface ServiceAllocationOptions {
  /** The range cluster IPs come from (default 10.43.0.0/16). */
  serviceCIDR?: string;
  /** The range node ports come from (default 30000-32767). */
  nodePortRange?: string;
}

/** Reservations taken for one write: commit after it succeeded, undo after it failed. */
export interface PendingAllocation {
  commit(): Promise<void>;
  undo(): Promise<void>;
}

const NOTHING: PendingAllocation = { commit: async () => {}, undo: async () => {} };

/** What a repair pass found. */
export interface RepairReport {
  /** Reservations freed because no Service holds them. */
  freed: string[];
  /** Values Services use that had no reservation (reserved again where free). */
  missing: string[];
  /** Values Services use that are reserved for someone else. */
  conflicting: string[];
}

function ownerOf(svc: KObject): Owner {
  const { namespace = '', name = '', uid = '' } = svc.metadata;
  return { kind: 'Service', namespace, name, uid };
}

/** The node ports a Service uses, as strings, without repeats. */
function nodePortsOf(svc: KObject | undefined): Set<string> {
  const ports = (svc as Service | undefined)?.spec?.ports;
  if (!svc || !Array.isArray(ports) || !needsNodePorts(svc as Service)) return new Set();
  return new Set(ports.filter((p) => p?.nodePort).map((p) => String(p.nodePort)));
}

function clusterIPOf(svc: KObject | undefined): string | undefined {
  const ip = (svc as Service | undefined)?.spec?.clusterIP;
  return ip && ip !== 'None' ? ip : undefined;
}

/**
 * The cluster IP and node port allocators of one API server, and the registry hooks that
 * use them. Any number of API servers may run these on one store at the same time.
 */
export class ServiceAllocations {
  readonly ips: RangeAllocator;
  readonly ports: RangeAllocator;
  /** The address of the `kubernetes` service: the first of the range. */
  readonly kubernetesIP: string;

  constructor(
    private readonly store: Store,
    opts: ServiceAllocationOptions = {},
  ) {
    const ipRange = new IPv4Range(opts.serviceCIDR ?? DEFAULT_SERVICE_CIDR);
    this.kubernetesIP = ipRange.at(0);
    this.ips = new RangeAllocator(store, IP_PREFIX, ipRange, { reserved: [this.kubernetesIP] });
    this.ports = new RangeAllocator(
      store,
      PORT_PREFIX,
      new PortRange(opts.nodePortRange ?? DEFAULT_NODE_PORT_RANGE),
    );
  }

  /** Reserves the values a new Service needs and writes them into it. */
  async beforeCreate(obj: KObject, dryRun: boolean): Promise<PendingAllocation> {
    if (obj.kind !== 'Service') return NOTHING;
    // Creating a name that is taken fails as AlreadyExists, not over its own clusterIP.
    const { namespace, name } = obj.metadata;
    if (await this.store.get(`/registry/core/services/${namespace}/${name}`)) return NOTHING;
    return this.reserve(obj as Service, undefined, dryRun);
  }

  /** Reserves what an updated Service newly needs; commit frees what it no longer uses. */
  async beforeUpdate(current: KObject, next: KObject, dryRun: boolean): Promise<PendingAllocation> {
    if (next.kind !== 'Service') return NOTHING;
    return this.reserve(next as Service, current as Service, dryRun);
  }

  /** Frees the values of a Service that has left the store. */
  async afterDelete(obj: KObject): Promise<void> {
    if (obj.kind !== 'Service') return;
    const uid = obj.metadata.uid;
    const ip = clusterIPOf(obj);
    if (ip) await this.ips.release(ip, uid);
    for (const port of nodePortsOf(obj)) await this.ports.release(port, uid);
  }

  private async reserve(
    svc: Service,
    old: Service | undefined,
    dryRun: boolean,
  ): Promise<PendingAllocation> {
    const owner = ownerOf(svc);
    const taken: { allocator: RangeAllocator; value: string }[] = [];
    const undo = async () => {
      for (const t of taken) await t.allocator.release(t.value, owner.uid);
    };
    try {
      const errs: FieldError[] = [];
      // A new Service, or an ExternalName alias turning into one with a cluster IP.
      const needsIP = !isHeadless(svc) && !isExternalName(svc);
      if (needsIP && !clusterIPOf(old)) {
        const ip = await this.reserveClusterIP(svc, owner, dryRun, errs);
        if (ip) taken.push({ allocator: this.ips, value: ip });
      }
      for (const port of await this.reserveNodePorts(svc, old, owner, dryRun, errs)) {
        taken.push({ allocator: this.ports, value: port });
      }
      if (errs.length > 0) throw invalid('Service', '', svc.metadata.name ?? '', errs);
    } catch (err) {
      if (!dryRun) await undo();
      throw err;
    }
    if (dryRun) return NOTHING;
    const commit = async () => {
      const oldIP = clusterIPOf(old);
      if (oldIP && oldIP !== clusterIPOf(svc)) await this.ips.release(oldIP, owner.uid);
      const kept = nodePortsOf(svc);
      for (const port of nodePortsOf(old)) {
        if (!kept.has(port)) await this.ports.release(port, owner.uid);
      }
    };
    return { commit, undo };
  }

  /** The newly reserved IP, if one was reserved; failures are added to `errs`. */
  private async reserveClusterIP(
    svc: Service,
    owner: Owner,
    dryRun: boolean,
    errs: FieldError[],
  ): Promise<string | undefined> {
    const spec = svc.spec;
    const wanted = spec.clusterIP;
    let result: Allocation;
    if (wanted) {
      result = dryRun
        ? await this.ips.check(wanted, owner)
        : await this.ips.allocate(wanted, owner);
    } else {
      result = dryRun ? await this.ips.peekNext() : await this.ips.allocateNext(owner);
    }
    if (!result.ok) {
      if (result.reason === 'Full') throw exhausted('serviceIP', this.ips.range.text);
      errs.push({
        field: 'spec.clusterIP',
        type: 'Invalid',
        value: wanted,
        detail: rangeProblem(result.reason, 'IP', this.ips.range.text),
      });
      return undefined;
    }
    spec.clusterIP = result.value;
    spec.clusterIPs = [result.value];
    return dryRun ? undefined : result.value;
  }

  /** The node ports newly reserved; a port the old Service already had is not reserved again. */
  private async reserveNodePorts(
    svc: Service,
    old: Service | undefined,
    owner: Owner,
    dryRun: boolean,
    errs: FieldError[],
  ): Promise<string[]> {
    if (!needsNodePorts(svc) || !Array.isArray(svc.spec.ports)) return [];
    const had = nodePortsOf(old);
    const fresh: string[] = [];
    for (const [i, p] of svc.spec.ports.entries()) {
      if (p.nodePort && (had.has(String(p.nodePort)) || fresh.includes(String(p.nodePort)))) {
        continue;
      }
      const result = await this.reserveNodePort(p.nodePort, owner, dryRun);
      if (result.ok) {
        p.nodePort = Number(result.value);
        if (!dryRun) fresh.push(result.value);
        continue;
      }
      if (result.reason === 'Full') throw exhausted('nodePort', this.ports.range.text);
      errs.push({
        field: `spec.ports[${i}].nodePort`,
        type: 'Invalid',
        value: p.nodePort,
        detail: rangeProblem(result.reason, 'port', this.ports.range.text),
      });
    }
    return fresh;
  }

  private async reserveNodePort(
    wanted: number | undefined,
    owner: Owner,
    dryRun: boolean,
  ): Promise<Allocation> {
    if (wanted) {
      const value = String(wanted);
      return dryRun ? this.ports.check(value, owner) : this.ports.allocate(value, owner);
    }
    return dryRun ? this.ports.peekNext() : this.ports.allocateNext(owner);
  }

  /**
   * Compares the reservations with the Services in the store: frees reservations no Service
   * holds (once older than `graceMs`, so a create in flight on another API server keeps its
   * own), and reserves again values a Service uses without a reservation.
   */
  async repair(log: Logger, graceMs = 60_000): Promise<RepairReport> {
    const report: RepairReport = { freed: [], missing: [], conflicting: [] };
    const { items } = await this.store.list('/registry/core/services/');
    const services = items.map((kv) => JSON.parse(kv.value) as Service);
    const ipUsers = new Map<string, Service>();
    const portUsers = new Map<string, Service>();
    for (const svc of services) {
      const ip = clusterIPOf(svc);
      if (ip) ipUsers.set(ip, svc);
      for (const port of nodePortsOf(svc)) portUsers.set(port, svc);
    }
    await this.repairRange(this.ips, ipUsers, graceMs, report);
    await this.repairRange(this.ports, portUsers, graceMs, report);
    const found = report.freed.length + report.missing.length + report.conflicting.length;
    if (found > 0) log.warn(report, 'service allocations repaired');
    return report;
  }

  private async repairRange(
    allocator: RangeAllocator,
    users: Map<string, Service>,
    graceMs: number,
    report: RepairReport,
  ): Promise<void> {
    const held = new Map((await allocator.list()).map((r) => [r.value, r]));
    const now = Date.now();
    for (const [value, r] of held) {
      const user = users.get(value);
      if (user && user.metadata.uid === r.owner.uid) continue;
      if (user) {
        report.conflicting.push(`${value} (${user.metadata.namespace}/${user.metadata.name})`);
        continue;
      }
      if (now - r.reservedAt < graceMs) continue;
      if (await allocator.release(value, r.owner.uid)) report.freed.push(value);
    }
    for (const [value, svc] of users) {
      if (held.has(value)) continue;
      const result = await allocator.allocate(value, ownerOf(svc));
      const who = `${value} (${svc.metadata.namespace}/${svc.metadata.name})`;
      if (result.ok) report.missing.push(who);
      else report.conflicting.push(who);
    }
  }
}

function rangeProblem(reason: 'Allocated' | 'NotInRange', what: string, range: string): string {
  if (reason === 'Allocated') return `provided ${what} is already allocated`;
  const plural = what === 'IP' ? 'IPs' : 'ports';
  return `provided ${what} is not in the valid range. The range of valid ${plural} is ${range}`;
}

function exhausted(what: string, range: string): ApiError {
  return new ApiError(
    'InternalError',
    `Internal error occurred: failed to allocate a ${what}: range is full (${range})`,
  );
}
