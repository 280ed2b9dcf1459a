import { promises as fs } from 'node:fs';
import path from 'node:path';

/**
 * A sandbox's /etc/hosts, /etc/hostname and /etc/resolv.conf, kept in its directory and
 * bind-mounted by each of its containers.
 */

export async function writeEtcFiles(
  dir: string,
  hostname: string,
  ip: string | undefined,
  resolvConf: string,
): Promise<void> {
  await Promise.all([
    writeHosts(dir, hostname, ip),
    fs.writeFile(path.join(dir, 'hostname'), `${hostname}\n`, { mode: 0o644 }),
    fs.writeFile(path.join(dir, 'resolv.conf'), resolvConf, { mode: 0o644 }),
  ]);
}

/**
 * Writes /etc/hosts, naming the pod's address once known. The file is rewritten in place
 * (same inode), so containers that bind-mounted it before the address was known see it.
 */
export async function writeHosts(dir: string, hostname: string, ip?: string): Promise<void> {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  if (ip) lines.push(`${ip}\t${hostname}`);
  await fs.writeFile(path.join(dir, 'hosts'), lines.join('\n') + '\n', { mode: 0o644 });
}
