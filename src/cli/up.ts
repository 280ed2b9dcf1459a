import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../agent/agent.js';
import type { ImageGcOptions } from '../agent/image-gc.js';
import { ensureServingCert } from '../apiserver/pki.js';
import { ApiServer } from '../apiserver/server.js';
import { InformerFactory } from '../client/factory.js';
import { KubeClient } from '../client/rest.js';
import { componentLogger } from '../log.js';
import { ImageStore } from '../runtime/images.js';
import { MiniC } from '../runtime/minic.js';
import { ensureStateDir, runtimeStateDir } from '../runtime/state-dir.js';
import { loadRegistriesConfig } from '../runtime/registry/config.js';
import { forwardingFiles, releaseForwarding } from '../proxy/ip-forward.js';
import { bridgeTable } from '../proxy/rules.js';
import { ServiceProxy } from '../proxy/service-proxy.js';
import { DEFAULT_CLUSTER_CIDR } from '../controllers/nodeipam/controller.js';
import { startCompactor } from '../store/compactor.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { startControlLoopsThread } from './control-plane-thread.js';
import { limitHeapGrowth, startHeapLog } from './memory.js';
import { kubeconfigText, privateSocketPath, writeKubeconfig } from './kubeconfig.js';

/**
 * `flyces up`: the whole cluster in one process on this machine — API server on the
 * embedded SQLite store, scheduler, controllers, and a node agent running pods with miniC.
 * Runs in the foreground until SIGINT or SIGTERM. Stopping leaves the pods' containers
 * running; the next `flyces up` on the same data dir adopts them.
 *
 * With `noAgent` only the control plane runs: no local node, no root or runc needed.
 * Pods then wait for nodes that join from elsewhere (e.g. `flyces agent --hollow N`).
 */

export interface UpOptions {
  dataDir: string;
  port: number;
  bindAddress: string;
  agentPort: number;
  nodeName?: string;
  podCidr: string;
  /** Linux bridge the node's pods attach to. */
  bridge: string;
  /** The range Service cluster IPs come from. */
  serviceCidr?: string;
  /** The address the `kubernetes` Service's endpoints point at. */
  advertiseAddress?: string;
  /** Node policy: pods may mount host paths / run privileged containers. */
  allowHostPath: boolean;
  allowPrivileged: boolean;
  /** Run only the control plane: no local node agent (default false). */
  noAgent?: boolean;
  /** Thresholds of image garbage collection (kubelet's --image-gc-*-threshold). */
  imageGc?: ImageGcOptions;
}

const log = componentLogger('up');

/** A DNS-1123 name for this machine's Node. */
export function defaultNodeName(): string {
  const name = hostname()
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return name || 'flyces-node';
}

/** Refuses to start, with the reason, when this machine cannot run containers. */
export function checkHost(): void {
  if (process.getuid?.() !== 0)
    throw new Error('flyces up must run as root: it creates network namespaces and containers');
  const tools: [string, string][] = [
    ['runc', 'runc'],
    ['conmon', 'conmon'],
    ['ip', 'iproute2'],
  ];
  for (const [tool, pkg] of tools) {
    const found = tool.startsWith('/') ? canExecute(tool) : onPath(tool);
    if (!found)
      throw new Error(`${tool} is not installed (Debian package: ${pkg}); run scripts/setup.sh`);
  }
}

function canExecute(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
    .split(':')
    .some((dir) => canExecute(join(dir, name)));
}

/** The admin token, made once per data dir so kubeconfigs stay valid across restarts. */
function adminToken(dataDir: string): string {
  const path = join(dataDir, 'token');
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const token = randomBytes(24).toString('hex');
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return token;
}

export async function up(opts: UpOptions): Promise<void> {
  limitHeapGrowth();
  if (!opts.noAgent) checkHost();
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const token = adminToken(opts.dataDir);
  const hosts = ['127.0.0.1', 'localhost', defaultNodeName()];
  if (opts.bindAddress !== '0.0.0.0' && !hosts.includes(opts.bindAddress))
    hosts.push(opts.bindAddress);
  const tls = await ensureServingCert(join(opts.dataDir, 'tls'), hosts);

  // The components in this process skip TLS and TCP through a socket private to the data dir.
  const socketPath = privateSocketPath(opts.dataDir);
  const store = SqliteStore.open(join(opts.dataDir, 'store.db'));
  const stopCompactor = startCompactor(store, {});
  const api = new ApiServer({
    store,
    tokens: [token],
    host: opts.bindAddress,
    port: opts.port,
    tls,
    serviceCIDR: opts.serviceCidr,
    advertiseAddress: opts.advertiseAddress,
    socketPath,
  });
  const { port } = await api.start();
  const stopHeapLog = startHeapLog('main');
  const server = `https://127.0.0.1:${port}`;
  const kubeconfig = join(opts.dataDir, 'kubeconfig');
  writeKubeconfig(kubeconfig, kubeconfigText(server, tls.caPem, token));

  const clientConfig = { server, token, caPem: tls.caPem, socketPath };
  const client = new KubeClient({ ...clientConfig, userAgent: 'flyces-up' });
  // Scheduler and controllers run on a thread of their own (a core of their own), each
  // under its Lease, so a second control plane against the same store can never act at
  // the same time. The identity is this data dir's, so a restart after a crash takes the
  // leases back at once. They lose a lease when the store refuses writes for a while (a
  // full disk): they start again then, while the API server and the agent go on serving.
  const loops = await startControlLoopsThread(
    { ...clientConfig, userAgent: 'flyces-up-control-loops' },
    { identity: `${hostname()}_${opts.dataDir}`, restartWhenLost: true },
  );
  const informers = new InformerFactory(client);
  const node = opts.noAgent ? undefined : await localNode(opts, client, token, informers);
  if (!node) await releaseStaleForwarding(opts.dataDir);
  await informers.start();
  await node?.proxy.start();
  await node?.agent.start();
  log.info({ kubeconfig, server, agent: node !== undefined }, 'cluster is up');
  process.stderr.write(
    `\nflyCes is up. API server: ${server}\nKubeconfig written to ${kubeconfig}\n` +
      `  export KUBECONFIG=${kubeconfig}\n  kubectl get nodes\n${node ? RESTART_NOTE : NO_AGENT_NOTE}\n\n`,
  );

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  const syncsLeft = (await node?.agent.stop()) ?? 0;
  await node?.proxy.stop();
  await loops.stop();
  informers.stop();
  client.close();
  await api.stop();
  stopCompactor();
  stopHeapLog();
  await store.close();
  log.info('stopped');
  // Pod syncs the agent left (see Agent.stop) would keep the process alive until they end.
  if (syncsLeft > 0) process.exit();
}

/**
 * With no node here, forwarding that an earlier run on this data dir turned on (and was
 * killed before turning off) goes back off. A failure (no root) is only logged.
 */
async function releaseStaleForwarding(dataDir: string): Promise<void> {
  try {
    if (await releaseForwarding(forwardingFiles(dataDir)))
      log.info('turned IP forwarding back off, as an earlier run on this data dir left it');
  } catch (err) {
    log.warn({ err }, 'could not turn back off the IP forwarding an earlier run turned on');
  }
}

const RESTART_NOTE =
  'Press Ctrl-C to stop (running pods keep running and are adopted on the next start).';
const NO_AGENT_NOTE =
  'No local node (--no-agent): pods wait for nodes that join. Press Ctrl-C to stop.';

/**
 * This machine as a node: the agent running pods with miniC under the data dir, and the
 * Service proxy and cluster DNS for its pods.
 */
async function localNode(
  opts: UpOptions,
  client: KubeClient,
  token: string,
  informers: InformerFactory,
): Promise<{ agent: Agent; proxy: ServiceProxy }> {
  // registries.yaml is read on every pull; checking it now reports a mistake at start.
  const registriesConfig = join(opts.dataDir, 'registries.yaml');
  await loadRegistriesConfig(registriesConfig);
  const images = new ImageStore({ root: join(opts.dataDir, 'images'), registriesConfig });
  await images.removeLeftovers();
  const stateRoot = runtimeStateDir(opts.dataDir);
  await ensureStateDir(stateRoot, componentLogger('minic'));
  const runtime = new MiniC({
    root: join(opts.dataDir, 'runtime'),
    stateRoot,
    images,
    podCidr: opts.podCidr,
    bridge: opts.bridge,
  });
  // The pod bridge exists before any pod so that the cluster DNS can listen on it.
  const gateway = await runtime.prepareNetwork();
  const proxy = new ServiceProxy({
    informers,
    podCidr: opts.podCidr,
    clusterCidr: DEFAULT_CLUSTER_CIDR,
    nodeAddresses: [],
    dns: { host: gateway },
    table: bridgeTable(opts.bridge),
    forwarding: forwardingFiles(opts.dataDir),
    log: componentLogger('proxy'),
  });
  proxy.register();
  const agent = new Agent({
    client,
    runtime,
    images,
    tokens: [token],
    dns: {
      clusterDNS: [gateway],
      clusterDomain: 'cluster.local',
      hostResolvConf: () => readFileSync('/etc/resolv.conf', 'utf8'),
    },
    name: opts.nodeName ?? defaultNodeName(),
    internalIP: '127.0.0.1',
    podCIDR: opts.podCidr,
    agentPort: opts.agentPort,
    dataDir: opts.dataDir,
    labels: { 'node-role.kubernetes.io/control-plane': 'true' },
    allowHostPath: opts.allowHostPath,
    allowPrivileged: opts.allowPrivileged,
    imageGc: opts.imageGc,
    services: (namespace) => proxy.servicesFor(namespace),
    publishHostPorts: (ports) => proxy.setHostPorts(ports),
  });
  return { agent, proxy };
}
