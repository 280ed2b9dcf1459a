import { writeFileSync } from 'node:fs';
import path from 'node:path';

import type { HostAlias } from './runtime.js';

/**
 * A sandbox's /etc/hosts, /etc/hostname and /etc/resolv.conf, kept in its directory under
 * the runtime's state root and bind-mounted by each of its containers. They are written
 * synchronously: a few hundred bytes on the state root (a tmpfs for an agent) are written
 * sooner than three trips through the thread pool, which a busy agent makes long, take.
 */

/** What a pod's /etc/hosts names: its own names and its hostAliases. */
export interface HostNames {
  hostname: string;
  /** hostname.subdomain.namespace.svc.domain, for a pod with a subdomain. */
  fqdn?: string;
  hostAliases?: HostAlias[];
}

export function writeEtcFiles(
  dir: string,
  names: HostNames,
  ip: string | undefined,
  resolvConf: string,
): void {
  writeHosts(dir, names, ip);
  writeFileSync(path.join(dir, 'hostname'), `${names.hostname}\n`, { mode: 0o644 });
  writeFileSync(path.join(dir, 'resolv.conf'), resolvConf, { mode: 0o644 });
}

/** The loopback and IPv6 names kubelet writes in every pod's hosts file. */
const STANDARD_ENTRIES = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'fe00::0\tip6-mcastprefix',
  'fe00::1\tip6-allnodes',
  'fe00::2\tip6-allrouters',
];

/** The text of a pod's /etc/hosts, laid out as kubelet lays it out. */
export function hostsFile(names: HostNames, ip?: string): string {
  const lines = ['# Kubernetes-managed hosts file.', ...STANDARD_ENTRIES];
  if (ip) lines.push([ip, ...(names.fqdn ? [names.fqdn] : []), names.hostname].join('\t'));
  const aliases = (names.hostAliases ?? []).filter((a) => a.hostnames.length > 0);
  if (aliases.length > 0) {
    lines.push('', '# Entries added by HostAliases.');
    for (const alias of aliases) lines.push([alias.ip, ...alias.hostnames].join('\t'));
  }
  return lines.join('\n') + '\n';
}

/**
 * Writes /etc/hosts, naming the pod's address once known. The file is rewritten in place
 * (same inode), so containers that bind-mounted it before the address was known see it.
 */
export function writeHosts(dir: string, names: HostNames, ip?: string): void {
  writeFileSync(path.join(dir, 'hosts'), hostsFile(names, ip), { mode: 0o644 });
}
