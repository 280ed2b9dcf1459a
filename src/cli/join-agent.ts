import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from '../agent/agent.js';
import { NodeCredentialManager } from '../agent/credentials.js';
import type { ImageGcOptions } from '../agent/image-gc.js';
import { nodeObject } from '../agent/node-status.js';
import { RouteManager } from '../agent/routes.js';
import { byGroupResource } from '../api/resources.js';
import type { NodeObject } from '../api/types.js';
import { InformerFactory } from '../client/factory.js';
import { Informer } from '../client/informer.js';
import { isReason, KubeClient } from '../client/rest.js';
import { DEFAULT_CLUSTER_CIDR } from '../controllers/nodeipam/controller.js';
import { componentLogger, type Logger } from '../log.js';
import { claimForwarding, forwardingFiles, releaseForwarding } from '../proxy/ip-forward.js';
import { ServiceProxy } from '../proxy/service-proxy.js';
import type { HostPort } from '../proxy/rules.js';
import type { Service } from '../proxy/types.js';
import type { ImageService, RuntimeService } from '../runtime/runtime.js';
import { readClusterSettings } from './cluster-settings.js';
import { NoRuntime } from './no-runtime.js';
import { primaryAddress } from './server.js';
import { checkHost, defaultNodeName } from './up.js';

/**
 * `flyces agent --server URL --token TOKEN`: a machine joins a cluster as a node. With
 * the token it gets certificates of its own (credentials.ts) and uses only those from then
 * on; it registers its Node, waits for the node-ipam controller to give it a pod range
 * (unless --pod-cidr), starts miniC on that range, turns on IP forwarding and keeps routes
 * to the other nodes' pod ranges (routes.ts). As `flyces up` does, it runs the node's half
 * of Services (a ServiceProxy in this machine's network namespace: nft rules in a table
 * named after the node, NodePorts on the node IP, the cluster DNS on the pod bridge's
 * gateway) and gives pods a resolv.conf naming that DNS server. Its endpoint is HTTPS and
 * serves only the API servers. `--no-runtime` (hidden, for tests) runs no containers, and
 * then touches neither IP forwarding, routes nor Service rules.
 */

export interface JoinAgentOptions {
  server: string;
  token?: string;
  nodeName?: string;
  dataDir: string;
  nodeIp?: string;
  podCidr?: string;
  /**
   * The whole cluster's pod range (the server's --cluster-cidr), for the forward guard;
   * default what the server published (kube-public/flyces-cluster), else 10.42.0.0/16.
   */
  clusterCidr?: string;
  agentPort: number;
  bridge: string;
  runtime: boolean;
  allowHostPath: boolean;
  allowPrivileged: boolean;
  /** Thresholds of image garbage collection (kubelet's --image-gc-*-threshold). */
  imageGc?: ImageGcOptions;
}

const NODES = byGroupResource.get('/nodes')!;
const POD_CIDR_WAIT_MS = 500;
const ROUTE_RESYNC_MS = 5_000;

/** The cluster's pod range as the server published it; the default when it did not. */
async function publishedClusterCidr(client: KubeClient, log: Logger): Promise<string> {
  const settings = await readClusterSettings(client);
  const cidr = settings?.clusterCIDR;
  if (cidr) {
    log.info({ clusterCIDR: cidr }, "using the cluster's pod range the server published");
    return cidr;
  }
  log.warn(
    { clusterCIDR: DEFAULT_CLUSTER_CIDR },
    'the server published no cluster pod range; assuming the default (see --cluster-cidr)',
  );
  return DEFAULT_CLUSTER_CIDR;
}

/** Runs the joined agent until SIGINT or SIGTERM. */
export async function joinAgentCommand(o: JoinAgentOptions): Promise<void> {
  if (o.runtime) checkHost();
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const name = o.nodeName ?? defaultNodeName();
  const nodeIP = o.nodeIp ?? primaryAddress();
  const log = componentLogger('agent', { node: name });
  const creds = new NodeCredentialManager({
    server: o.server,
    nodeName: name,
    addresses: [nodeIP],
    dataDir: o.dataDir,
    log,
  });
  const set = await creds.load(o.token);
  const client = new KubeClient({
    server: o.server,
    token: '',
    caPem: set.caPem,
    clientCert: set.client,
    userAgent: `flyces-agent/${name}`,
  });
  const clusterCidr = o.clusterCidr ?? (await publishedClusterCidr(client, log));
  const identity = { name, internalIP: nodeIP, agentPort: o.agentPort, dataDir: o.dataDir };
  const podCIDR = o.podCidr ?? (await waitForPodCidr(client, nodeObject(identity), log));
  const { runtime, images, gateway } = await makeRuntime(o, podCIDR);
  const proxy = gateway
    ? await startServiceProxy(
        client,
        { ...o, podCidr: podCIDR, clusterCidr },
        name,
        nodeIP,
        gateway,
      )
    : undefined;
  const agent = new Agent({
    client,
    runtime,
    images,
    tokens: [],
    ...identity,
    podCIDR,
    dns: gateway
      ? {
          clusterDNS: [gateway],
          clusterDomain: 'cluster.local',
          hostResolvConf: () => readFileSync('/etc/resolv.conf', 'utf8'),
        }
      : undefined,
    bindAddress: '0.0.0.0',
    tls: { ...set.serving, caPem: set.caPem },
    allowHostPath: o.allowHostPath,
    allowPrivileged: o.allowPrivileged,
    imageGc: o.imageGc,
    services: proxy?.services,
    publishHostPorts: proxy?.setHostPorts,
  });
  await agent.start();
  creds.startRenewal((renewed) => {
    client.setClientCertificate(renewed.client);
    agent.setServingCertificate(renewed.serving);
  });
  const routes = o.runtime ? startRoutes(client, name, log) : undefined;
  process.stderr.write(`node ${name} joined ${o.server} (pod range ${podCIDR})\n`);

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  log.info('stopping');
  creds.stop();
  routes?.stop();
  const syncsLeft = await agent.stop();
  await proxy?.stop();
  client.close();
  // Pod syncs the agent left (see Agent.stop) would keep the process alive until they end.
  if (syncsLeft > 0) process.exit();
}

/** Registers the node (without status) if needed and waits until it has a pod range. */
async function waitForPodCidr(
  client: KubeClient,
  node: NodeObject,
  log: ReturnType<typeof componentLogger>,
): Promise<string> {
  try {
    // No status yet: the node is not Ready before its agent serves and heartbeats.
    await client.create(NODES, { ...node, status: undefined });
  } catch (err) {
    if (!isReason(err, 'AlreadyExists')) throw err;
  }
  log.info('waiting for the node-ipam controller to give this node a pod range');
  for (;;) {
    const current = await client.get<NodeObject>(NODES, undefined, node.metadata.name!);
    if (current.spec?.podCIDR) return current.spec.podCIDR;
    await new Promise((r) => setTimeout(r, POD_CIDR_WAIT_MS));
  }
}

async function makeRuntime(
  o: JoinAgentOptions,
  podCidr: string,
): Promise<{ runtime: RuntimeService; images: ImageService; gateway?: string }> {
  if (!o.runtime) {
    // No pods here: forwarding an earlier run on this data dir turned on goes back off.
    await releaseForwarding(forwardingFiles(o.dataDir)).catch((err: unknown) =>
      componentLogger('agent').warn({ err }, 'could not turn IP forwarding back off'),
    );
    const none = new NoRuntime();
    return { runtime: none, images: none };
  }
  const { ImageStore } = await import('../runtime/images.js');
  const { MiniC } = await import('../runtime/minic.js');
  const images = new ImageStore({
    root: join(o.dataDir, 'images'),
    registriesConfig: join(o.dataDir, 'registries.yaml'),
  });
  await images.removeLeftovers();
  const { ensureStateDir, runtimeStateDir } = await import('../runtime/state-dir.js');
  const stateRoot = runtimeStateDir(o.dataDir);
  await ensureStateDir(stateRoot, componentLogger('minic'));
  const runtime = new MiniC({
    root: join(o.dataDir, 'runtime'),
    stateRoot,
    images,
    podCidr,
    bridge: o.bridge,
  });
  // Pods of other nodes are reached through this machine's routes: it must forward. The
  // Service proxy turns it off again when it stops, if this claim turned it on.
  await claimForwarding(forwardingFiles(o.dataDir));
  // The pod bridge exists before any pod so that the cluster DNS can listen on it.
  const gateway = await runtime.prepareNetwork();
  return { runtime, images, gateway };
}

/** nft table names allow letters, digits and underscores. */
export function proxyTable(node: string): string {
  return `flyces_${node.replace(/[^a-zA-Z0-9_]/g, '_')}`;
}

/**
 * Starts the node's Service rules and cluster DNS; resolves once the rules reflect the
 * Services and endpoints of the synced caches, so pods started after it find them.
 */
async function startServiceProxy(
  client: KubeClient,
  o: JoinAgentOptions & { podCidr: string; clusterCidr: string },
  node: string,
  nodeIP: string,
  gateway: string,
): Promise<{
  stop(): Promise<void>;
  services: (namespace: string) => Service[];
  setHostPorts: (ports: HostPort[]) => void;
}> {
  const informers = new InformerFactory(client);
  const proxy = new ServiceProxy({
    informers,
    podCidr: o.podCidr,
    clusterCidr: o.clusterCidr,
    nodeAddresses: [nodeIP],
    dns: { host: gateway },
    table: proxyTable(node),
    forwarding: forwardingFiles(o.dataDir),
    log: componentLogger('proxy', { node }),
  });
  proxy.register();
  await informers.start();
  await proxy.start();
  return {
    async stop() {
      await proxy.stop();
      informers.stop();
    },
    services: (namespace) => proxy.servicesFor(namespace),
    setHostPorts: (ports) => proxy.setHostPorts(ports),
  };
}

/**
 * Keeps the routes to other nodes' pod ranges in step with the Node objects, on every Node
 * change and every ROUTE_RESYNC_MS besides: the kernel drops routes through a link that
 * goes down, and nothing about the Nodes changes when it comes back.
 */
function startRoutes(
  client: KubeClient,
  self: string,
  log: ReturnType<typeof componentLogger>,
): { stop(): void } {
  const manager = new RouteManager(self, log);
  const nodes = new Informer<NodeObject>(client, NODES);
  const sync = () => void manager.sync(nodes.list());
  nodes.addHandlers({ onAdd: sync, onUpdate: sync, onDelete: sync });
  nodes.start();
  const resync = setInterval(sync, ROUTE_RESYNC_MS);
  return {
    stop: () => {
      clearInterval(resync);
      nodes.stop();
    },
  };
}
