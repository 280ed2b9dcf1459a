import { byGroupResource } from '../api/resources.js';
import type { KObject } from '../api/types.js';
import type { InformerFactory } from '../client/factory.js';
import { NAMESPACE_INDEX } from '../controllers/indexes.js';
import type { Informer } from '../client/informer.js';
import type { Logger } from '../log.js';
import { DnsIndex } from './dns-index.js';
import { DnsServer } from './dns.js';
import { claimForwarding, releaseForwarding, type ForwardingFiles } from './ip-forward.js';
import { Proxier, type NftRunner, type SyncRecord } from './proxier.js';
import type { HostPort } from './rules.js';
import type { EndpointSlice, Service } from './types.js';

const SERVICES = byGroupResource.get('/services')!;
const SLICES = byGroupResource.get('discovery.k8s.io/endpointslices')!;

export interface ServiceProxyOptions {
  informers: InformerFactory;
  /** This node's pod range; pod traffic to Services from it is masqueraded. */
  podCidr: string;
  /** The whole cluster's pod range, for the forward filter. */
  clusterCidr: string;
  /** Addresses NodePorts answer on. */
  nodeAddresses: string[];
  /** Where the cluster DNS listens (the pod bridge's address), or none. */
  dns?: { host: string; port?: number; clusterDomain?: string };
  /** The nftables table; several clusters on one machine need different ones. */
  table?: string;
  log: Logger;
  /** Where the data dir records that flyCes turned IP forwarding on (see ip-forward.ts). */
  forwarding: ForwardingFiles;
  /** For tests: how nft is run. */
  nft?: NftRunner;
  onSync?: (record: SyncRecord) => void;
}

/**
 * The node's half of Services: kernel rules that send a Service's IP and port (and node
 * ports) to its ready endpoints, and the cluster DNS, both fed from the Service and
 * EndpointSlice informers. Forwarding must be on for the rules to reach pods; when this
 * machine did not forward before, the proxy turns it on, forwards only pod traffic (see
 * the forward guard of rules.ts), and turns it off again when it stops. It records in the
 * data dir that it did, so that `flyces down` or the next start turns it off (or keeps
 * it, as its own) after a crash.
 */
export class ServiceProxy {
  private readonly services: Informer<KObject>;
  private readonly slices: Informer<KObject>;
  private readonly index: DnsIndex;
  private proxier?: Proxier;
  private dnsServer?: DnsServer;
  private ownsForwarding = false;
  private hostPorts: HostPort[] = [];
  private hostPortsText = '[]';

  constructor(private readonly opts: ServiceProxyOptions) {
    this.services = opts.informers.informer(SERVICES);
    // The same index the controllers add (their informers may be this one, shared).
    this.services.addIndex(NAMESPACE_INDEX, (o) => [o.metadata.namespace ?? '']);
    this.slices = opts.informers.informer(SLICES);
    this.index = new DnsIndex(opts.dns?.clusterDomain);
  }

  /**
   * The ports this node's pods publish now (the agent's account); the rules follow within
   * a second. The same list again changes nothing.
   */
  setHostPorts(ports: HostPort[]): void {
    const text = JSON.stringify(ports);
    if (text === this.hostPortsText) return;
    this.hostPortsText = text;
    this.hostPorts = ports;
    this.proxier?.changed();
  }

  /**
   * The Services a container of a pod in `namespace` may get variables for (see
   * serviceEnv): that namespace's, and the `kubernetes` Service of `default`. Read from the
   * informer's index by namespace, so that a container's start costs its namespace's
   * Services rather than the cluster's (2,000 Services in 100 namespaces: see
   * bench/agent-events.ts).
   */
  servicesFor(namespace: string): Service[] {
    const own = this.services.byIndex(NAMESPACE_INDEX, namespace) as unknown as Service[];
    if (namespace === 'default') return own;
    const master = this.services.get('default/kubernetes') as unknown as Service | undefined;
    return master ? [...own, master] : own;
  }

  /** Registers the informer handlers; call before the informers start. */
  register(): void {
    const changed = () => this.proxier?.changed();
    const service = (o: KObject) => o as unknown as Service;
    const slice = (o: KObject) => o as unknown as EndpointSlice;
    this.services.addHandlers({
      onAdd: (s) => (this.index.upsertService(service(s)), changed()),
      onUpdate: (_o, s) => (this.index.upsertService(service(s)), changed()),
      onDelete: (s) => (this.index.deleteService(s.metadata), changed()),
    });
    this.slices.addHandlers({
      onAdd: (s) => (this.index.upsertEndpointSlice(slice(s)), changed()),
      onUpdate: (_o, s) => (this.index.upsertEndpointSlice(slice(s)), changed()),
      onDelete: (s) => (this.index.deleteEndpointSlice(s.metadata), changed()),
    });
  }

  /** Turns forwarding on if needed, applies the rules and starts the DNS server. */
  async start(): Promise<void> {
    this.ownsForwarding = await claimForwarding(this.opts.forwarding);
    this.proxier = new Proxier({
      podCidr: this.opts.podCidr,
      nodeAddresses: this.opts.nodeAddresses,
      table: this.opts.table,
      forwardGuard: { podNetwork: this.opts.clusterCidr, exclusive: this.ownsForwarding },
      source: {
        services: () => this.services.list() as unknown as Service[],
        endpointSlices: () => this.slices.list() as unknown as EndpointSlice[],
        hostPorts: () => this.hostPorts,
      },
      nft: this.opts.nft,
      onSync: this.opts.onSync,
      log: this.opts.log,
    });
    this.proxier.start();
    await this.proxier.synced();
    if (this.opts.dns) {
      this.dnsServer = new DnsServer({
        resolver: this.index,
        host: this.opts.dns.host,
        port: this.opts.dns.port ?? 53,
        log: this.opts.log,
      });
      // The server logs where it listens.
      await this.dnsServer.start();
    }
  }

  /** Resolves once the rules reflect every change seen so far. */
  synced(): Promise<void> {
    return this.proxier?.synced() ?? Promise.resolve();
  }

  /**
   * Stops the DNS server, removes the rules, and turns forwarding off if flyCes turned it
   * on (the record says so; the record goes too).
   */
  async stop(): Promise<void> {
    try {
      await this.dnsServer?.stop();
      await this.proxier?.stop();
    } finally {
      await releaseForwarding(this.opts.forwarding).catch((err: unknown) =>
        this.opts.log.error({ err }, 'could not turn IP forwarding back off'),
      );
    }
  }
}
