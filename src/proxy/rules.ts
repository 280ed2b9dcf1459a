import {
  backendsFor,
  hasClusterIP,
  isDnsName,
  isIPv4,
  keyOf,
  protocolOf,
  slicesByService,
  usable,
  type Backend,
} from './endpoints.js';
import type { EndpointSlice, Service, ServicePort } from './types.js';

/**
 * Service routing as one nftables table, `ip flyces`, built from scratch on every sync.
 *
 * Packet path, for a new connection to a ClusterIP:port or to a node address:NodePort:
 * - filter-prerouting / filter-output (priority -110, before NAT): a Service port without
 *   a usable endpoint is rejected (TCP reset, or ICMP port unreachable for UDP and SCTP),
 *   so clients fail at once instead of waiting for a timeout.
 * - nat-prerouting / nat-output (priority -100): `services` looks the destination up in
 *   verdict maps and goes to the Service port's chain, which picks one endpoint at random
 *   with equal weights (`numgen random mod N`) and DNATs to it.
 * - nat-postrouting (priority 100): connections marked on the way are masqueraded, so the
 *   replies come back through this node's conntrack and are un-NATed. Marked are: traffic
 *   from the pod CIDR to a ClusterIP (a pod reaching itself, or a pod on the same bridge,
 *   whose reply would otherwise be bridged straight back with the endpoint's own source
 *   address), and all NodePort traffic (its endpoint may be on another node).
 *
 * Simplifications, stated where they bite:
 * - IPv4 only; IPv6 ClusterIPs and IPv6 EndpointSlices are ignored.
 * - NodePorts answer on `nodeAddresses`, or when none are given on every local address
 *   except 127.0.0.0/8. NodePort on localhost is not offered: it would need
 *   route_localnet=1 on the node, which this module does not set.
 * - sessionAffinity ClientIP keeps per-endpoint sets of client addresses; they live in
 *   the table, so every re-apply (each change of any Service) forgets them and clients
 *   may move to another endpoint once.
 * - externalIPs, loadBalancer ingress IPs, externalTrafficPolicy and
 *   internalTrafficPolicy (Local) are not implemented; every endpoint is used.
 *
 * Pods' hostPorts (what the CNI portmap plugin does for kubelet) go first in the NAT hooks:
 * a new connection to a node address (its hostIP when the pod names one; never 127.0.0.0/8,
 * as NodePorts) and the port is DNATed to the pod's address and container port. Those from
 * this machine or from the pod network are masqueraded, so that replies come back this way.
 */

/** The nftables table flyCes owns; nothing outside it is ever touched. */
export const TABLE = 'flyces';

/** Default packet mark bit meaning "masquerade this connection" (kube-proxy's choice too). */
export const DEFAULT_MASQUERADE_MARK = 0x4000;

/** Default ClientIP affinity timeout, as Kubernetes defaults it (3 hours). */
export const DEFAULT_AFFINITY_SECONDS = 10800;

export interface RulesOptions {
  /** This node's pod CIDR (IPv4), e.g. 10.42.0.0/24; its traffic to Services is masqueraded. */
  podCidr: string;
  /** Addresses NodePorts answer on; empty or absent: every local non-loopback address. */
  nodeAddresses?: string[];
  /** The packet mark bit used to ask for masquerade; default 0x4000. */
  masqueradeMark?: number;
  /** The nftables table (family ip) the rules live in; default `flyces`. */
  table?: string;
  /**
   * Limits what this machine forwards once IP forwarding is on: pods reach the cluster's
   * pod network and Service backends, nothing beyond it. `exclusive` also drops forwarding
   * that involves no pod at all, for a machine that did not forward before flyCes.
   */
  forwardGuard?: { podNetwork: string; exclusive: boolean };
}

/** One container port a pod publishes on its node (`ports[].hostPort`). */
export interface HostPort {
  /** The pod, `namespace/name`, for messages. */
  pod: string;
  protocol: string;
  hostPort: number;
  /** The node address it is published on; absent or 0.0.0.0 for all of them. */
  hostIP?: string;
  podIP: string;
  containerPort: number;
}

/** A Service (or one port of it) left out of the ruleset, and why. */
export interface Skipped {
  service: string;
  reason: string;
}

export interface Ruleset {
  /** The table definition, `table ip flyces { ... }`, ready for `nft -f`. */
  text: string;
  /** Service ports with a usable endpoint, i.e. routed. */
  routed: number;
  /** Service ports that reject because no endpoint is usable. */
  rejecting: number;
  skipped: Skipped[];
}

/** The four verdict maps: routed and rejecting ClusterIPs, routed and rejecting NodePorts. */
type VerdictMap = 'svcIPs' | 'noEpIPs' | 'nodePorts' | 'noEpNodePorts';

/** One Service port as the builder sees it. */
interface PortPlan {
  key: string;
  clusterIP?: string;
  nodePort?: number;
  proto: string;
  port: number;
  backends: Backend[];
  affinitySeconds?: number;
}

/**
 * Builds the table for the given Services and EndpointSlices. Pure and deterministic:
 * the same input gives the same text, whatever the order of the input. Services with
 * names or addresses that are not valid are skipped and reported, never embedded.
 */
export function buildRuleset(
  services: Iterable<Service>,
  slices: Iterable<EndpointSlice>,
  options: RulesOptions,
  hostPorts: Iterable<HostPort> = [],
): Ruleset {
  const mark = checkOptions(options);
  const bySvc = slicesByService(slices);
  const skipped: Skipped[] = [];
  const plans = planPorts(services, bySvc, skipped);

  const affinitySets: string[] = [];
  const maps: Record<VerdictMap, string[]> = {
    svcIPs: [],
    noEpIPs: [],
    nodePorts: [],
    noEpNodePorts: [],
  };
  const chains: string[][] = [];
  let routed = 0;
  for (const p of plans) {
    const ok = p.backends.length > 0;
    if (ok) routed++;
    if (p.clusterIP) {
      const entry = `${p.clusterIP} . ${p.proto} . ${p.port}`;
      if (ok) maps.svcIPs.push(`${entry} : goto svc-${p.key}`);
      else maps.noEpIPs.push(`${entry} : goto reject-service`);
    }
    if (p.nodePort !== undefined) {
      const entry = `${p.proto} . ${p.nodePort}`;
      if (ok) maps.nodePorts.push(`${entry} : goto nodeport-${p.key}`);
      else maps.noEpNodePorts.push(`${entry} : goto reject-service`);
    }
    if (ok) chains.push(...portChains(p, options.podCidr, mark, affinitySets));
  }

  const nodeMatch = nodeAddressMatch(options.nodeAddresses);
  const published = hostPortChains(hostPorts, nodeMatch, options.podCidr, mark, skipped);
  const out: string[] = [`table ip ${tableName(options)} {`];
  const vip = 'ipv4_addr . inet_proto . inet_service';
  out.push(...verdictMap('service_ips', vip, maps.svcIPs));
  out.push(...verdictMap('no_endpoint_services', vip, maps.noEpIPs));
  out.push(...verdictMap('service_nodeports', 'inet_proto . inet_service', maps.nodePorts));
  out.push(...verdictMap('no_endpoint_nodeports', 'inet_proto . inet_service', maps.noEpNodePorts));
  if (options.nodeAddresses?.length) {
    const ips = [...new Set(options.nodeAddresses)].sort().join(', ');
    out.push('  set node_ips {', '    type ipv4_addr', `    elements = { ${ips} }`, '  }');
  }
  out.push(...affinitySets);
  out.push(...fixedChains(nodeMatch, mark));
  if (options.forwardGuard) out.push(...forwardChain(options.forwardGuard));
  out.push(...published);
  for (const c of chains) out.push(...c);
  out.push('}');
  return { text: out.join('\n') + '\n', routed, rejecting: plans.length - routed, skipped };
}

/** The table of the node proxy that `flyces up` runs beside the pod bridge `bridge`. */
export function bridgeTable(bridge: string): string {
  return `flyces_${bridge.replace(/[^a-zA-Z0-9_]/g, '_')}`;
}

/** The table the options name; only names nft takes without quoting. */
export function tableName(options: { table?: string }): string {
  const name = options.table ?? TABLE;
  if (!/^[a-zA-Z][a-zA-Z0-9_]{0,30}$/.test(name)) {
    throw new Error(`nftables table name ${JSON.stringify(name)} is not a plain identifier`);
  }
  return name;
}

/** An `nft -f` script that replaces the table in one transaction (creating it if absent). */
export function replaceScript(table: string, name = TABLE): string {
  return `table ip ${name} {}\ndelete table ip ${name}\n${table}`;
}

/** An `nft -f` script that removes the table, whether or not it exists. */
export function deleteScript(name = TABLE): string {
  return `table ip ${name} {}\ndelete table ip ${name}\n`;
}

/**
 * The forward filter of a machine flyCes turned forwarding on for: traffic between pods and
 * Service traffic (DNATed, replies included) passes; pods start nothing beyond the pod
 * network but answer connections made to them, such as one another node's Service rules
 * masqueraded to that node's address (its conntrack entry is on that node, so here the
 * reply is neither pod-to-pod nor DNATed); with `exclusive`, nothing else is forwarded.
 */
function forwardChain(guard: { podNetwork: string; exclusive: boolean }): string[] {
  const net = guard.podNetwork;
  if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(net)) {
    throw new Error(`pod network ${JSON.stringify(net)} is not an IPv4 CIDR`);
  }
  return [
    '  chain filter-forward {',
    '    type filter hook forward priority 0; policy accept;',
    `    ip saddr ${net} ip daddr ${net} accept`,
    '    ct status dnat accept',
    '    ct state established,related accept',
    `    ip saddr ${net} drop`,
    ...(guard.exclusive ? [`    ip daddr != ${net} drop`] : []),
    '  }',
  ];
}

function checkOptions(options: RulesOptions): string {
  const [ip, prefix] = options.podCidr.split('/');
  const bits = Number(prefix);
  if (!isIPv4(ip) || !/^\d+$/.test(prefix ?? '') || bits > 32) {
    throw new Error(`pod CIDR "${options.podCidr}" is not an IPv4 CIDR`);
  }
  for (const a of options.nodeAddresses ?? []) {
    if (!isIPv4(a)) throw new Error(`node address "${a}" is not an IPv4 address`);
  }
  const mark = options.masqueradeMark ?? DEFAULT_MASQUERADE_MARK;
  if (!Number.isInteger(mark) || mark <= 0 || mark > 0xffffffff) {
    throw new Error(`masquerade mark ${mark} is not a 32-bit mark`);
  }
  return `0x${mark.toString(16).padStart(8, '0')}`;
}

/** Every routable Service port, sorted by key; invalid or clashing ones go to `skipped`. */
function planPorts(
  services: Iterable<Service>,
  bySvc: Map<string, EndpointSlice[]>,
  skipped: Skipped[],
): PortPlan[] {
  const sorted = [...services].sort((a, b) => keyOf(a.metadata).localeCompare(keyOf(b.metadata)));
  const plans: PortPlan[] = [];
  const usedVIPs = new Set<string>();
  const usedNodePorts = new Set<string>();
  for (const svc of sorted) {
    const name = keyOf(svc.metadata);
    const [ns, svcName] = name.split('/');
    if (!isDnsName(ns) || !isDnsName(svcName)) {
      skipped.push({ service: name, reason: 'invalid namespace or name' });
      continue;
    }
    const clusterIP = hasClusterIP(svc) ? svc.spec?.clusterIP : undefined;
    const withNodePorts = svc.spec?.type === 'NodePort' || svc.spec?.type === 'LoadBalancer';
    for (const port of svc.spec?.ports ?? []) {
      const plan = planPort(svc, name, port, clusterIP, withNodePorts, bySvc.get(name) ?? []);
      if (typeof plan === 'string') {
        skipped.push({ service: `${name}:${port.port}`, reason: plan });
        continue;
      }
      const vip = `${plan.clusterIP} ${plan.proto} ${plan.port}`;
      const np = `${plan.proto} ${plan.nodePort}`;
      if ((plan.clusterIP && usedVIPs.has(vip)) || (plan.nodePort && usedNodePorts.has(np))) {
        skipped.push({ service: `${name}:${port.port}`, reason: 'address or node port in use' });
        continue;
      }
      if (plan.clusterIP) usedVIPs.add(vip);
      if (plan.nodePort) usedNodePorts.add(np);
      if (plan.clusterIP || plan.nodePort) plans.push(plan);
    }
  }
  return plans;
}

function planPort(
  svc: Service,
  name: string,
  port: ServicePort,
  clusterIP: string | undefined,
  withNodePorts: boolean,
  slices: EndpointSlice[],
): PortPlan | string {
  const proto = protocolOf(port).toLowerCase();
  if (!['tcp', 'udp', 'sctp'].includes(proto)) return `unsupported protocol ${port.protocol}`;
  if (!validPort(port.port)) return `invalid port ${port.port}`;
  let nodePort: number | undefined;
  if (withNodePorts && port.nodePort !== undefined) {
    if (!validPort(port.nodePort)) return `invalid node port ${port.nodePort}`;
    nodePort = port.nodePort;
  }
  const affinity = svc.spec?.sessionAffinity === 'ClientIP';
  const seconds = svc.spec?.sessionAffinityConfig?.clientIP?.timeoutSeconds;
  return {
    key: `${name}/${proto}/${port.port}`,
    clusterIP,
    nodePort,
    proto,
    port: port.port,
    backends: usable(backendsFor(slices, port)),
    affinitySeconds: affinity ? validSeconds(seconds) : undefined,
  };
}

function validPort(n: unknown): n is number {
  return Number.isInteger(n) && (n as number) > 0 && (n as number) < 65536;
}

function validSeconds(n: number | undefined): number {
  return Number.isInteger(n) && (n as number) > 0 ? (n as number) : DEFAULT_AFFINITY_SECONDS;
}

/**
 * The chains of one routed Service port. Affinity sets (declarations, not chains) are
 * appended to `decls` because nft wants them before the rules that use them.
 */
function portChains(p: PortPlan, podCidr: string, mark: string, decls: string[]): string[][] {
  const epChain = (b: Backend) => `ep-${p.key}/${b.ip}/${b.port}`;
  const affSet = (b: Backend) => `affinity-${p.key}/${b.ip}/${b.port}`;
  const svc: string[] = [
    `  chain svc-${p.key} {`,
    `    ip saddr ${podCidr} meta mark set meta mark | ${mark}`,
  ];
  const chains: string[][] = [svc];
  for (const b of p.backends) {
    const ep = [`  chain ${epChain(b)} {`];
    if (p.affinitySeconds !== undefined) {
      decls.push(
        `  set ${affSet(b)} {`,
        '    type ipv4_addr',
        '    flags dynamic,timeout',
        `    timeout ${p.affinitySeconds}s`,
        '  }',
      );
      svc.push(`    ip saddr @${affSet(b)} goto ${epChain(b)}`);
      ep.push(`    update @${affSet(b)} { ip saddr }`);
    }
    ep.push(`    meta l4proto ${p.proto} dnat to ${b.ip}:${b.port}`, '  }');
    chains.push(ep);
  }
  if (p.backends.length === 1) {
    svc.push(`    goto ${epChain(p.backends[0])}`);
  } else {
    const arms = p.backends.map((b, i) => `${i} : goto ${epChain(b)}`).join(', ');
    svc.push(`    numgen random mod ${p.backends.length} vmap { ${arms} }`);
  }
  svc.push('  }');
  if (p.nodePort !== undefined) {
    chains.push([
      `  chain nodeport-${p.key} {`,
      `    meta mark set meta mark | ${mark}`,
      `    goto svc-${p.key}`,
      '  }',
    ]);
  }
  return chains;
}

const HOST_PORT_PROTOCOLS = new Set(['tcp', 'udp', 'sctp']);

/**
 * The `hostports` chain and one chain per published port, in a fixed order whatever the
 * order given. A port that is not valid is left out and reported, and so is one that
 * another pod publishes on the same address, protocol and port (the scheduler keeps such
 * pods apart; where two meet anyway, the first by port, protocol, address and name keeps it).
 */
function hostPortChains(
  hostPorts: Iterable<HostPort>,
  nodeMatch: string,
  podCidr: string,
  mark: string,
  skipped: Skipped[],
): string[] {
  const sorted = [...hostPorts].sort(
    (a, b) =>
      a.hostPort - b.hostPort ||
      a.protocol.localeCompare(b.protocol) ||
      (a.hostIP ?? '').localeCompare(b.hostIP ?? '') ||
      a.pod.localeCompare(b.pod),
  );
  const dispatch = ['  chain hostports {'];
  const chains: string[] = [];
  const used = new Set<string>();
  for (const h of sorted) {
    const proto = h.protocol.toLowerCase();
    const anyAddress = h.hostIP === undefined || h.hostIP === '' || h.hostIP === '0.0.0.0';
    const invalid = !HOST_PORT_PROTOCOLS.has(proto)
      ? `protocol ${JSON.stringify(h.protocol)}`
      : !validPort(h.hostPort) || !validPort(h.containerPort)
        ? 'port out of range'
        : !isIPv4(h.podIP) || (!anyAddress && !isIPv4(h.hostIP!))
          ? 'address not IPv4'
          : undefined;
    if (invalid) {
      skipped.push({ service: `hostPort ${h.hostPort} of pod ${h.pod}`, reason: invalid });
      continue;
    }
    const key = `${anyAddress ? '*' : h.hostIP} ${proto} ${h.hostPort}`;
    const clash = used.has(key) || used.has(`* ${proto} ${h.hostPort}`);
    if (clash || (anyAddress && [...used].some((u) => u.endsWith(` ${proto} ${h.hostPort}`)))) {
      skipped.push({ service: `hostPort ${h.hostPort} of pod ${h.pod}`, reason: 'port in use' });
      continue;
    }
    used.add(key);
    const chain = `hostport-${used.size}`;
    // An address of this node's only: one of another's (a Service's, another pod's, a
    // server's beyond) would hand the pod what the node's pods and processes send there.
    const match = anyAddress ? nodeMatch : `ip daddr ${h.hostIP} fib daddr type local`;
    dispatch.push(`    ${match} meta l4proto ${proto} th dport ${h.hostPort} goto ${chain}`);
    chains.push(
      `  chain ${chain} {`,
      `    ip saddr ${podCidr} meta mark set meta mark | ${mark}`,
      `    fib saddr type local meta mark set meta mark | ${mark}`,
      `    meta l4proto ${proto} dnat to ${h.podIP}:${h.containerPort}`,
      '  }',
    );
  }
  dispatch.push('  }');
  return [...dispatch, ...chains];
}

function nodeAddressMatch(addresses: string[] | undefined): string {
  if (addresses?.length) return 'ip daddr @node_ips';
  return 'fib daddr type local ip daddr != 127.0.0.0/8';
}

function verdictMap(name: string, type: string, elements: string[]): string[] {
  const out = [`  map ${name} {`, `    type ${type} : verdict`];
  if (elements.length > 0) {
    out.push(
      '    elements = {',
      ...elements.map((e, i, all) => {
        return `      ${e}${i < all.length - 1 ? ',' : ''}`;
      }),
      '    }',
    );
  }
  out.push('  }');
  return out;
}

/** The base chains and dispatch chains every ruleset has. */
function fixedChains(nodeMatch: string, mark: string): string[] {
  return [
    '  chain reject-service {',
    '    meta l4proto tcp reject with tcp reset',
    '    reject',
    '  }',
    '  chain reject-check {',
    '    ip daddr . meta l4proto . th dport vmap @no_endpoint_services',
    `    ${nodeMatch} meta l4proto . th dport vmap @no_endpoint_nodeports`,
    '  }',
    '  chain filter-prerouting {',
    '    type filter hook prerouting priority -110; policy accept;',
    '    ct state new jump reject-check',
    '  }',
    '  chain filter-output {',
    '    type filter hook output priority -110; policy accept;',
    '    ct state new jump reject-check',
    '  }',
    '  chain services {',
    '    ip daddr . meta l4proto . th dport vmap @service_ips',
    `    ${nodeMatch} meta l4proto . th dport vmap @service_nodeports`,
    '  }',
    '  chain nat-prerouting {',
    '    type nat hook prerouting priority -100; policy accept;',
    '    jump hostports',
    '    jump services',
    '  }',
    '  chain nat-output {',
    '    type nat hook output priority -100; policy accept;',
    '    jump hostports',
    '    jump services',
    '  }',
    '  chain nat-postrouting {',
    '    type nat hook postrouting priority 100; policy accept;',
    `    meta mark & ${mark} == 0 return`,
    `    meta mark set meta mark ^ ${mark}`,
    '    masquerade fully-random',
    '  }',
  ];
}
