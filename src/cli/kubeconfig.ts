import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import type { ClientConfig } from '../client/rest.js';

/**
 * Kubeconfig files: the one `flyces up` writes for kubectl, and reading one back for the
 * flyces commands that act as a client.
 */

export function kubeconfigText(
  server: string,
  caPem: string,
  token: string,
  name = 'flyces',
): string {
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name,
        cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') },
      },
    ],
    users: [{ name: `${name}-admin`, user: { token } }],
    contexts: [{ name, context: { cluster: name, user: `${name}-admin`, namespace: 'default' } }],
    'current-context': name,
  };
  return YAML.stringify(doc);
}

/**
 * Writes the kubeconfig readable only by its owner, replacing the file atomically. A file
 * that already says `text` is left as it is, so a restart on a full disk needs no space
 * for it; a failed write leaves no temporary file and names the kubeconfig.
 */
export function writeKubeconfig(path: string, text: string): void {
  if (readIfThere(path) === text) return;
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new Error(`cannot write kubeconfig ${path}: ${(err as Error).message}`);
  }
}

function readIfThere(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export interface LoadedKubeconfig extends ClientConfig {
  namespace: string;
}

/** Reads the current context of a kubeconfig; throws naming the missing field. */
export function loadKubeconfig(path: string): LoadedKubeconfig {
  let doc: any;
  try {
    doc = YAML.parse(readFileSync(path, 'utf8'), { maxAliasCount: 100 });
  } catch (err) {
    throw new Error(`cannot read kubeconfig ${path}: ${(err as Error).message}`);
  }
  const contextName = doc?.['current-context'];
  const context = doc?.contexts?.find((c: any) => c.name === contextName)?.context;
  if (!context)
    throw new Error(`kubeconfig ${path}: current-context ${JSON.stringify(contextName)} not found`);
  const cluster = doc.clusters?.find((c: any) => c.name === context.cluster)?.cluster;
  const user = doc.users?.find((u: any) => u.name === context.user)?.user;
  if (!cluster?.server)
    throw new Error(`kubeconfig ${path}: cluster ${context.cluster} has no server`);
  if (!user?.token) throw new Error(`kubeconfig ${path}: user ${context.user} has no token`);
  const caData = cluster['certificate-authority-data'];
  const caPem = caData
    ? Buffer.from(caData, 'base64').toString('utf8')
    : cluster['certificate-authority']
      ? readFileSync(cluster['certificate-authority'], 'utf8')
      : '';
  return {
    server: cluster.server,
    token: user.token,
    caPem,
    namespace: context.namespace ?? 'default',
  };
}

/**
 * The Unix socket, private to the data dir, through which the components of a `flyces up`
 * or `flyces server` process reach its API server without TLS or TCP; undefined when the
 * path is too long for a socket address (about 107 bytes), and they use HTTPS on loopback.
 */
export function privateSocketPath(dataDir: string): string | undefined {
  const sock = join(dataDir, 'apiserver.sock');
  return Buffer.byteLength(sock) <= 100 ? sock : undefined;
}
