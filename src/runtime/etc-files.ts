import { writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A sandbox's /etc/hosts, /etc/hostname and /etc/resolv.conf, kept in its directory under
 * the runtime's state root and bind-mounted by each of its containers. They are written
 * synchronously: a few hundred bytes on the state root (a tmpfs for an agent) are written
 * sooner than three trips through the thread pool, which a busy agent makes long, take.
 */

export function writeEtcFiles(
  dir: string,
  hostname: string,
  ip: string | undefined,
  resolvConf: string,
): void {
  writeHosts(dir, hostname, ip);
  writeFileSync(path.join(dir, 'hostname'), `${hostname}\n`, { mode: 0o644 });
  writeFileSync(path.join(dir, 'resolv.conf'), resolvConf, { mode: 0o644 });
}

/**
 * Writes /etc/hosts, naming the pod's address once known. The file is rewritten in place
 * (same inode), so containers that bind-mounted it before the address was known see it.
 */
export function writeHosts(dir: string, hostname: string, ip?: string): void {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  if (ip) lines.push(`${ip}\t${hostname}`);
  writeFileSync(path.join(dir, 'hosts'), lines.join('\n') + '\n', { mode: 0o644 });
}
