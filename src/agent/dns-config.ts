import type { Pod } from '../api/types.js';

/**
 * A pod's /etc/resolv.conf, by its dnsPolicy as Kubernetes defines it:
 * - ClusterFirst (the default): the cluster DNS with the namespace's search list; a pod on
 *   the host network gets the node's resolv.conf instead;
 * - ClusterFirstWithHostNet: the cluster DNS, also on the host network;
 * - Default: the node's resolv.conf;
 * - None: only what spec.dnsConfig says.
 * spec.dnsConfig is then merged in: nameservers and searches appended, options by name.
 *
 * Where Kubernetes would fall back to the node's resolvers because no cluster DNS is
 * configured, flyCes writes none: pods are not pointed at resolvers outside the cluster
 * unless they ask for them (dnsPolicy Default or None).
 */

export interface DnsSettings {
  /** The cluster DNS server addresses; empty when the node runs none. */
  clusterDNS: string[];
  clusterDomain: string;
  /** The node's own resolv.conf, read when a pod's policy asks for it. */
  hostResolvConf: () => string;
}

interface ResolvConf {
  nameservers: string[];
  searches: string[];
  options: Map<string, string | undefined>;
}

/** Kubernetes' limits: 3 nameservers (glibc's), 32 search domains. */
const MAX_NAMESERVERS = 3;
const MAX_SEARCHES = 32;

export function podResolvConf(pod: Pod, dns: DnsSettings): string {
  const policy = (pod.spec.dnsPolicy as string | undefined) ?? 'ClusterFirst';
  const hostNet = pod.spec.hostNetwork === true;
  let conf: ResolvConf;
  if (policy === 'None') conf = empty();
  else if (policy === 'Default' || (policy === 'ClusterFirst' && hostNet)) {
    conf = parseResolvConf(dns.hostResolvConf());
  } else conf = clusterConf(pod.metadata.namespace ?? 'default', dns);
  mergeDnsConfig(conf, pod.spec.dnsConfig);
  return formatResolvConf(conf);
}

function empty(): ResolvConf {
  return { nameservers: [], searches: [], options: new Map() };
}

function clusterConf(namespace: string, dns: DnsSettings): ResolvConf {
  if (dns.clusterDNS.length === 0) return empty();
  const d = dns.clusterDomain.replace(/\.$/, '');
  return {
    nameservers: [...dns.clusterDNS],
    searches: [`${namespace}.svc.${d}`, `svc.${d}`, d],
    options: new Map([['ndots', '5']]),
  };
}

/** Reads the nameserver, search/domain and options lines of a resolv.conf. */
export function parseResolvConf(text: string): ResolvConf {
  const conf = empty();
  for (const raw of text.split('\n')) {
    const [word, ...rest] = raw
      .replace(/[#;].*$/, '')
      .trim()
      .split(/\s+/);
    if (word === 'nameserver' && rest[0]) conf.nameservers.push(rest[0]);
    else if (word === 'search' || word === 'domain') conf.searches = rest.filter(Boolean);
    else if (word === 'options') {
      for (const opt of rest) {
        const [name, value] = opt.split(':');
        if (name) conf.options.set(name, value);
      }
    }
  }
  return conf;
}

function mergeDnsConfig(conf: ResolvConf, extra: unknown): void {
  if (!extra || typeof extra !== 'object') return;
  const { nameservers, searches, options } = extra as {
    nameservers?: unknown;
    searches?: unknown;
    options?: unknown;
  };
  for (const ns of Array.isArray(nameservers) ? nameservers : []) {
    if (typeof ns === 'string' && !conf.nameservers.includes(ns)) conf.nameservers.push(ns);
  }
  for (const s of Array.isArray(searches) ? searches : []) {
    if (typeof s === 'string' && !conf.searches.includes(s)) conf.searches.push(s);
  }
  for (const o of Array.isArray(options) ? options : []) {
    const { name, value } = (o ?? {}) as { name?: unknown; value?: unknown };
    if (typeof name === 'string' && name) {
      conf.options.set(name, typeof value === 'string' ? value : undefined);
    }
  }
}

function formatResolvConf(conf: ResolvConf): string {
  const lines = conf.nameservers.slice(0, MAX_NAMESERVERS).map((ns) => `nameserver ${ns}`);
  if (conf.searches.length > 0)
    lines.push(`search ${conf.searches.slice(0, MAX_SEARCHES).join(' ')}`);
  const opts = [...conf.options].map(([name, value]) =>
    value === undefined ? name : `${name}:${value}`,
  );
  if (opts.length > 0) lines.push(`options ${opts.join(' ')}`);
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}
