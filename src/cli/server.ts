import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { API_SERVER_IDENTITY } from '../agent/agent.js';
import { joinToken, loadOrCreateClusterAuth } from '../apiserver/auth-state.js';
import { issueCert, issueServingCert } from '../apiserver/pki.js';
import { ApiServer } from '../apiserver/server.js';
import { componentLogger } from '../log.js';
import { startCompactor } from '../store/compactor.js';
import { EtcdStore } from '../store/etcd/etcd-store.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/store.js';
import { DEFAULT_SERVICE_CIDR } from '../apiserver/service-allocation.js';
import { KubeClient } from '../client/rest.js';
import { DEFAULT_CLUSTER_CIDR } from '../controllers/nodeipam/controller.js';
import { publishClusterSettings } from './cluster-settings.js';
import { startControlLoopsThread } from './control-plane-thread.js';
import { limitHeapGrowth } from './memory.js';
import { kubeconfigText, privateSocketPath, writeKubeconfig } from './kubeconfig.js';

/**
 * `flyces server`: the control plane without a node agent (API server, scheduler,
 * controllers), for clusters of several machines whose agents join with
 * `flyces agent --server URL --token TOKEN`. The cluster's CA, admin token and join
 * secret live in the store (auth-state.ts), so servers sharing one etcd are one cluster;
 * each server makes its own serving certificate naming its addresses.
 *
 * Every server runs an API server; the scheduler and the controllers run on the one server
 * holding their Lease (control-plane.ts). A server that loses a lease exits with code 1
 * so that its supervisor restarts it as a standby.
 */

export interface ServerOptions {
  dataDir: string;
  port: number;
  /** Listen address; default all addresses. */
  bindAddress?: string;
  /** Comma-separated etcd client URLs; default the embedded SQLite store. */
  etcd?: string;
  /** The address agents and other machines reach this server at. */
  advertiseAddress?: string;
  /** Lifetime of node certificates in seconds; default one year. */
  nodeCertSeconds: number;
  /** The cluster's pod range (node-ipam); default 10.42.0.0/16. */
  clusterCidr?: string;
  /** The range Service cluster IPs come from; default 10.43.0.0/16. */
  serviceCidr?: string;
  /** Leader lease duration in seconds (renew deadline 2/3 of it); default 15. */
  leaseSeconds?: number;
}

const YEAR_MS = 365 * 86_400_000;
const log = componentLogger('server');

/** The first non-loopback IPv4 address of this machine, else 127.0.0.1. */
export function primaryAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    const found = list?.find((a) => a.family === 'IPv4' && !a.internal);
    if (found) return found.address;
  }
  return '127.0.0.1';
}

async function openStore(o: ServerOptions): Promise<Store> {
  if (!o.etcd) return SqliteStore.open(join(o.dataDir, 'store.db'));
  const hosts = o.etcd
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h);
  if (hosts.length === 0) throw new Error('--etcd names no URL');
  return EtcdStore.open({ hosts });
}

function writePrivate(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, path);
}

/** Lease timing for a lease duration in seconds: renew within 2/3 of it, retry at 2/15. */
function leaseTiming(seconds?: number) {
  if (!seconds) return undefined;
  const ms = seconds * 1000;
  return {
    leaseDurationMs: ms,
    renewDeadlineMs: Math.round((ms * 2) / 3),
    retryPeriodMs: Math.round(ms / 7.5),
  };
}

/** Runs the control plane until SIGINT or SIGTERM, or until it loses a leader lease. */
export async function serverCommand(o: ServerOptions): Promise<void> {
  limitHeapGrowth();
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const store = await openStore(o);
  const auth = await loadOrCreateClusterAuth(store);
  const advertise = o.advertiseAddress ?? primaryAddress();
  const hosts = [...new Set(['127.0.0.1', 'localhost', hostname(), advertise])];
  if (o.bindAddress && o.bindAddress !== '0.0.0.0') hosts.push(o.bindAddress);
  const tls = await issueServingCert(auth.ca, [...new Set(hosts)]);
  const nodeClient = await issueCert(auth.ca, {
    commonName: API_SERVER_IDENTITY,
    usage: 'client',
    lifetimeMs: YEAR_MS,
  });
  const stopCompactor = startCompactor(store, {});
  // The control loops reach the API server through a socket private to the data dir.
  const socketPath = privateSocketPath(o.dataDir);
  const api = new ApiServer({
    socketPath,
    store,
    tokens: [auth.adminToken],
    host: o.bindAddress ?? '0.0.0.0',
    port: o.port,
    tls,
    serviceCIDR: o.serviceCidr,
    advertiseAddress: advertise,
    clientCaPem: auth.ca.certPem,
    join: {
      ca: auth.ca,
      agentCa: auth.agentCa,
      secret: auth.joinSecret,
      nodeCertLifetimeMs: o.nodeCertSeconds * 1000,
    },
    nodeClientTls: {
      certPem: nodeClient.certPem,
      keyPem: nodeClient.keyPem!,
      caPem: auth.agentCa.certPem,
    },
  });
  const { port } = await api.start();
  const local = !o.bindAddress || o.bindAddress === '0.0.0.0' ? '127.0.0.1' : o.bindAddress;
  const server = `https://${local}:${port}`;
  const kubeconfig = join(o.dataDir, 'kubeconfig');
  writeKubeconfig(kubeconfig, kubeconfigText(server, auth.ca.certPem, auth.adminToken));
  const tokenFile = join(o.dataDir, 'join-token');
  writePrivate(tokenFile, `${joinToken(auth)}\n`);

  // What joining agents need to know about the cluster, so nobody has to tell them.
  const admin = new KubeClient({
    server,
    token: auth.adminToken,
    caPem: auth.ca.certPem,
    socketPath,
  });
  try {
    await publishClusterSettings(admin, {
      clusterCIDR: o.clusterCidr ?? DEFAULT_CLUSTER_CIDR,
      serviceCIDR: o.serviceCidr ?? DEFAULT_SERVICE_CIDR,
    });
  } finally {
    admin.close();
  }
  let leaseLost = (_lease: string) => undefined as void;
  // The scheduler and controllers run on their own thread, as clients like any other.
  const loops = await startControlLoopsThread(
    {
      server,
      token: auth.adminToken,
      caPem: auth.ca.certPem,
      userAgent: 'flyces-server-control-loops',
      socketPath,
    },
    {
      clusterCidr: o.clusterCidr,
      lease: leaseTiming(o.leaseSeconds),
      onLost: (lease) => leaseLost(lease),
    },
  );
  log.info({ server, kubeconfig, advertise }, 'control plane is up');
  process.stderr.write(
    `\nflyCes server is up on port ${port}.\n  export KUBECONFIG=${kubeconfig}\n` +
      `Join a machine: flyces agent --server https://${advertise}:${port} ` +
      `--token "$(cat ${tokenFile})"\n\n`,
  );

  await new Promise<void>((resolve) => {
    leaseLost = (lease) => {
      log.error({ lease }, 'lost a leader lease; stopping so that no two leaders act at once');
      process.exitCode = 1;
      resolve();
    };
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  log.info('stopping');
  await loops.stop();
  await api.stop();
  stopCompactor();
  await store.close();
  log.info('stopped');
}
