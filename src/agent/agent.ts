import type { DnsSettings } from './dns-config.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { certificateUser } from '../apiserver/auth.js';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import type { Duplex } from 'node:stream';
import { ApiError } from '../api/errors.js';
import { byGroupResource } from '../api/resources.js';
import { objectKey, type ConfigMap, type NodeObject, type Pod, type Secret } from '../api/types.js';
import { BearerTokens } from '../util/bearer.js';
import { deepEqual } from '../util/equal.js';
import { EventRecorder } from '../client/events.js';
import { Informer } from '../client/informer.js';
import { isReason, type KubeClient } from '../client/rest.js';
import { runEachKey, WorkQueue } from '../client/workqueue.js';
import { componentLogger } from '../log.js';
import type {
  ContainerStatus,
  ImageService,
  RuntimeService,
  SandboxStatus,
} from '../runtime/runtime.js';
import { referencedObjects } from '../api/pod-references.js';
import { ConfigObjects } from './config-objects.js';
import { parseExecQuery, refuseExec, serveExec, type ExecRequest } from './exec.js';
import { parseAttachQuery, startAttach, type AttachTarget } from './attach.js';
import { ImageGc, type ImageGcOptions } from './image-gc.js';
import { streamLog } from './logs.js';
import { capacity, microTime, nodeObject, nodeStatus, type NodeIdentity } from './node-status.js';
import { instancesByName } from './pod-status.js';
import { PodWorker, shouldRestart } from './pod-worker.js';
import {
  diskEmptyDirs,
  hasStorageBounds,
  storageViolation,
  type StorageUse,
} from './ephemeral-storage.js';
import { HostPortBook } from './host-ports.js';
import { StartGate } from './start-gate.js';
import { StatusWrites } from './status-writes.js';
import { VolumeManager } from './volumes.js';
import type { HostPort } from '../proxy/rules.js';
import type { Service } from '../proxy/types.js';

/**
 * The node agent: registers its Node, keeps its Lease fresh, and runs the pods bound to it
 * with miniC. Pod keys go on a work queue from the pod informer (not for an update that only
 * shows a status the agent wrote, see StatusWrites), from a relist of the runtime every
 * second (so a container exit is noticed without an API event), and from each sync's
 * requeue (every 10 s at most, and when a back-off ends). Each pod is
 * synced as soon as its key comes, one sync at a time per pod and with no bound across
 * pods, so one that takes its grace period to stop or waits for an image holds up no other;
 * pods starting up take turns at a StartGate. Containers whose pod is gone are stopped and
 * removed.
 */

export interface AgentOptions extends NodeIdentity {
  client: KubeClient;
  runtime: RuntimeService;
  images: ImageService;
  /** Tokens accepted on the agent's own endpoint (the API server's, for logs). */
  tokens: string[];
  /**
   * Serve the endpoint over HTTPS with this certificate instead, and accept only clients
   * with a certificate from `caPem` for the API servers' identity (`flyces-apiserver`);
   * tokens are then not accepted.
   */
  tls?: { certPem: string; keyPem: string; caPem: string };
  /** Address the agent's HTTP endpoint listens on; default the internalIP. */
  bindAddress?: string;
  /** Whether pods may mount paths of this machine (hostPath volumes); default false. */
  allowHostPath?: boolean;
  /** Whether pods may run privileged containers; default false. */
  allowPrivileged?: boolean;
  /** Most processes one container may run; default 4096 (a fork bomb stops there). */
  pidsLimit?: number;
  /** Thresholds of image garbage collection on the data dir's disk. */
  imageGc?: ImageGcOptions;
  /** The cluster DNS pods are pointed at; without it pods get an empty resolv.conf. */
  dns?: DnsSettings;
  /**
   * The Services a container of a pod in `namespace` gets variables for: at least that
   * namespace's and the `kubernetes` Service of `default` (the node proxy's); none without it.
   */
  services?: (namespace: string) => readonly Service[];
  /** Hears the ports this node's pods publish (hostPort), whenever they change. */
  publishHostPorts?: (ports: HostPort[]) => void;
}

/**
 * How long a pod may still run under its activeDeadlineSeconds, counted from its start on
 * this node (status.startTime) as kubelet counts it; undefined without a deadline or start.
 */
export function deadlineLeftMs(pod: Pod, now: number): number | undefined {
  const seconds = pod.spec?.activeDeadlineSeconds;
  const start = Date.parse(pod.status?.startTime ?? '');
  if (typeof seconds !== 'number' || !Number.isFinite(start)) return undefined;
  return start + seconds * 1000 - now;
}

function isReady(status: NodeObject['status'] | undefined): boolean {
  return status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/**
 * The node's heartbeat: a Lease renewed every 4 s and valid for 16 s. The node lifecycle
 * controller calls the node unreachable once its Lease is 16 s old (Kubernetes: 10 s and
 * 40 s), which is the first part of moving its pods elsewhere within 30 s.
 */
const LEASE_SECONDS = 16;
const LEASE_RENEW_MS = 4_000;
const STATUS_EVERY_MS = 30_000;
const DEFAULT_PIDS_LIMIT = 4096;
/** kubelet looks at image disk usage every 5 minutes too. */
const IMAGE_GC_EVERY_MS = 300_000;
/** How often the pod network is checked (and repaired) behind everyone's back. */
const NETWORK_CHECK_EVERY_MS = 10_000;
/** How often pods' ephemeral storage is measured (kubelet's housekeeping: 10 s). */
const STORAGE_CHECK_EVERY_MS = 10_000;
const RELIST_MS = 1_000;
/**
 * How long the agent's Events wait: a pod's status, reported right after its container
 * started, goes first. Sent together, the Created and Started Events and the status were
 * one store commit, and the status reached the pod's watchers 1.3-2.5 ms later (four
 * pairs of bench runs, from the container's start to Running seen, 40 pods each).
 */
const EVENT_DELAY_MS = 5;
/** How often the ConfigMaps and Secrets pods refer to are fetched again (changes show then). */
const CONFIG_REFRESH_MS = 5_000;
const ORPHAN_GRACE_SECONDS = 10;
/**
 * How long stop() waits for pod syncs in progress. A pod stopping within its grace period
 * (30 s by default, up to hours) would otherwise hold the agent's stop as long; the next
 * agent takes such a pod up again from the API (it is still being deleted).
 */
const STOP_WAIT_MS = 3_000;
/**
 * Pods that start up at once (see StartGate); each pod's sync runs as soon as it is queued.
 * Bursts of 50 on two cores, median and last Running: bare `runc run` 571/672 ms all at once,
 * 381/677 four at a time, 346/638 eight at a time; flyCes (bench/pod-startup.ts) 924/1726
 * two at a time, 754/1318 four, 871/1474 eight.
 */
const START_SLOTS = 2 * availableParallelism();
/** The client certificate CN the API servers present to agents. */
export const API_SERVER_IDENTITY = 'flyces-apiserver';

export class Agent {
  private readonly log;
  private readonly tokens: BearerTokens;
  private readonly pods: Informer<Pod>;
  /** The ConfigMaps and Secrets this node's pods refer to (only those may be read). */
  private readonly objects: ConfigObjects;
  private readonly volumes: VolumeManager;
  private readonly queue = new WorkQueue(500, 30_000);
  /** The statuses this agent wrote, so that their updates sync nothing (see StatusWrites). */
  private readonly statusWrites = new StatusWrites();
  private readonly worker: PodWorker;
  private readonly events: EventRecorder;
  private readonly timers: NodeJS.Timeout[] = [];
  /** The pod network check in progress, if any (see NETWORK_CHECK_EVERY_MS). */
  private networkCheck?: Promise<void>;
  private lastStates = new Map<string, string>();
  private server?: Server | HttpsServer;
  private stopped = false;
  private workers?: Promise<void>;
  /** Sandboxes of pods that are gone, being stopped beside the syncs (see syncPod). */
  private readonly removing = new Set<string>();
  /** Pods to evict for their ephemeral storage, by uid, with why (see checkEphemeralStorage). */
  private readonly evictions = new Map<string, string>();
  private measuringStorage = false;
  /** The ports this node's pods publish, kept from their events (see hostPortsChanged). */
  private readonly hostPorts = new HostPortBook();
  /** Exec sessions in progress (their sockets left the HTTP server at the upgrade). */
  private readonly upgraded = new Set<Duplex>();

  constructor(private readonly opts: AgentOptions) {
    this.log = componentLogger('agent', { node: opts.name });
    this.tokens = new BearerTokens(opts.tokens);
    this.pods = new Informer<Pod>(opts.client, byGroupResource.get('/pods')!, {
      fieldSelector: `spec.nodeName=${opts.name}`,
    });
    this.events = new EventRecorder(opts.client, 'flyces-agent', opts.name, EVENT_DELAY_MS);
    this.objects = new ConfigObjects({
      client: opts.client,
      onChange: (key) => this.configChanged(key),
      log: this.log,
    });
    const source = {
      configMap: (ns: string, name: string) =>
        this.objects.get('ConfigMap', ns, name) as ConfigMap | undefined,
      secret: (ns: string, name: string) =>
        this.objects.get('Secret', ns, name) as Secret | undefined,
    };
    this.volumes = new VolumeManager({
      dataDir: opts.dataDir,
      source,
      allocatable: capacity(opts),
      allowHostPath: opts.allowHostPath,
      log: this.log,
    });
    this.worker = new PodWorker(
      opts.runtime,
      opts.images,
      this.events,
      opts.internalIP,
      this.log,
      {
        changed: (pod) => this.queue.add(objectKey(pod)),
        waiting: (pod, status) => this.reportStatus(pod, status),
      },
      {
        source,
        // What resourceFieldRef shows for a limit a container lacks.
        allocatable: capacity(opts),
        volumes: this.volumes,
        allowPrivileged: opts.allowPrivileged,
        pidsLimit: opts.pidsLimit ?? DEFAULT_PIDS_LIMIT,
        dns: opts.dns,
        services: opts.services,
      },
      new StartGate(START_SLOTS),
    );
  }

  /** Starts serving, registers the node, and starts syncing pods. */
  async start(): Promise<void> {
    await this.listen();
    await this.register();
    await this.renewLease();
    this.every(LEASE_RENEW_MS, () => this.renewLease());
    this.every(STATUS_EVERY_MS, () => this.updateNodeStatus());
    const gc = new ImageGc(
      this.opts.images,
      this.opts.runtime,
      this.opts.dataDir,
      this.log,
      this.opts.imageGc,
    );
    this.every(IMAGE_GC_EVERY_MS, async () => void (await gc.collect()));
    const repairNetwork = this.opts.runtime.repairNetwork?.bind(this.opts.runtime);
    if (repairNetwork) {
      this.every(NETWORK_CHECK_EVERY_MS, async () => {
        // Awaited by stop(), so that no bridge is made again after the agent stopped.
        this.networkCheck = repairNetwork().then(() => undefined);
        await this.networkCheck;
      });
    }
    this.every(STORAGE_CHECK_EVERY_MS, () => this.checkEphemeralStorage());
    const changed = (p: Pod, gone = false) => {
      // A pod being deleted needs no more waiting for its start (see PodWorker.abandon).
      if (gone || p.metadata.deletionTimestamp) this.worker.abandon(p.metadata.uid!);
      // A pod gone from the API (a force deletion) has its containers stopped within
      // ORPHAN_GRACE_SECONDS, as those of pods that went while the agent was away.
      const grace = gone ? ORPHAN_GRACE_SECONDS : p.metadata.deletionGracePeriodSeconds;
      if (typeof grace === 'number') this.worker.shortenGrace(p.metadata.uid!, grace);
      if (gone) this.evictions.delete(p.metadata.uid!);
      if (gone) this.statusWrites.forget(p.metadata.uid!);
      this.queue.add(objectKey(p));
      this.hostPortsChanged(p, gone);
    };
    this.pods.addHandlers({
      onAdd: (p) => changed(p),
      onUpdate: (old, p) => {
        if (!this.statusWrites.isOwn(old, p)) return changed(p);
        this.log.debug({ pod: objectKey(p) }, 'own status write seen');
        // The pod's IP, which the status write brings, is what its host ports need.
        this.hostPortsChanged(p, false);
      },
      onDelete: (p) => changed(p, true),
    });
    this.pods.start();
    await this.pods.hasSynced();
    this.every(CONFIG_REFRESH_MS, () => this.objects.refresh(this.pods.list()));
    this.workers = runEachKey(
      this.queue,
      (key) => this.syncPod(key),
      (key, err) => this.log.error({ pod: key, err }, 'pod sync failed'),
    );
    await this.relist();
    this.every(RELIST_MS, () => this.relist());
    this.log.info({ port: this.opts.agentPort }, 'agent started');
  }

  /**
   * Stops the agent; containers keep running and are adopted by the next agent. Waits up to
   * STOP_WAIT_MS for the pod syncs in progress, and returns how many it left running: those
   * may hold the event loop (a grace period's timer), so the caller exits the process once
   * it has shut down the rest, as a crash would leave them, which the runtime survives.
   */
  async stop(): Promise<number> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await this.networkCheck?.catch(() => undefined);
    this.pods.stop();
    this.queue.shutDown();
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), STOP_WAIT_MS);
    });
    const ended = await Promise.race([this.workers?.then(() => true), waited]);
    clearTimeout(timer);
    const left = ended ? [] : this.queue.inProgress();
    if (left.length > 0)
      this.log.warn({ pods: left }, 'pod syncs still in progress are left to the next start');
    this.worker.stop();
    // Streams in progress (logs -f, exec) end too: the server's close waits for every one.
    const closed = new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
    this.server?.closeAllConnections();
    for (const socket of this.upgraded) socket.destroy();
    await closed;
    await this.opts.runtime.close?.().catch((err: unknown) => {
      this.log.warn({ err: (err as Error).message }, 'the runtime did not close cleanly');
    });
    return left.length;
  }

  /** Publishes the node's host ports again when this pod's event changed them. */
  private hostPortsChanged(pod: Pod, gone: boolean): void {
    const publish = this.opts.publishHostPorts;
    if (!publish) return;
    const changed = gone ? this.hostPorts.remove(pod) : this.hostPorts.update(pod);
    if (changed) publish(this.hostPorts.list());
  }

  /** Queues the pods that name a ConfigMap or Secret, and rewrites their volumes of it. */
  private configChanged(ref: string): void {
    const namespace = ref.split('/')[1];
    for (const pod of this.pods.list()) {
      if (pod.metadata.namespace !== namespace) continue;
      if (!referencedObjects(pod).has(ref)) continue;
      this.queue.add(objectKey(pod));
      this.volumes.refresh(pod).catch((err) => this.volumeRefreshFailed(pod, err));
    }
  }

  private volumeRefreshFailed(pod: Pod, err: unknown): void {
    const message = (err as Error).message;
    this.log.warn({ pod: objectKey(pod), err: message }, 'volume refresh failed');
    this.events.warning(pod, 'FailedMount', `MountVolume.SetUp failed: ${message}`);
  }

  private every(ms: number, fn: () => Promise<void>): void {
    const timer = setInterval(() => {
      fn().catch((err) => this.log.warn({ err: (err as Error).message }, 'periodic task failed'));
    }, ms);
    this.timers.push(timer);
  }

  private async register(): Promise<void> {
    const rt = byGroupResource.get('/nodes')!;
    const node = nodeObject(this.opts);
    try {
      const created = await this.opts.client.create<NodeObject>(rt, node);
      this.log.info('node registered');
      this.events.normal(created, 'Starting', 'Starting flyces agent.');
      if (isReady(created.status)) this.nodeReadyEvent(created);
    } catch (err) {
      if (!isReason(err, 'AlreadyExists')) throw err;
      const existing = await this.opts.client.get<NodeObject>(rt, undefined, this.opts.name);
      existing.metadata.labels = { ...existing.metadata.labels, ...node.metadata.labels };
      if (!existing.spec?.podCIDR && node.spec?.podCIDR) {
        existing.spec = { ...(existing.spec ?? {}), ...node.spec };
      }
      const updated = await this.opts.client.update<NodeObject>(rt, existing);
      this.events.normal(updated, 'Starting', 'Starting flyces agent.');
      await this.updateNodeStatus();
      this.log.info('node re-registered');
    }
  }

  private async updateNodeStatus(): Promise<void> {
    const rt = byGroupResource.get('/nodes')!;
    const node = await this.opts.client.get<NodeObject>(rt, undefined, this.opts.name);
    const status = nodeStatus(this.opts, node.status);
    await this.opts.client.patch(rt, undefined, this.opts.name, { status }, 'merge', 'status');
    // As kubelet: an Event when the node turns Ready (at start, or once the node lifecycle
    // controller had called it not ready).
    if (isReady(status) && !isReady(node.status)) this.nodeReadyEvent(node);
  }

  private nodeReadyEvent(node: NodeObject): void {
    this.events.normal(node, 'NodeReady', `Node ${this.opts.name} status is now: NodeReady`);
  }

  /**
   * Posts the node's status at once when the node lifecycle controller marked it not
   * ready while the agent was cut off, so the node's taints go without waiting for the
   * next periodic status.
   */
  private async reportReadyAgain(): Promise<void> {
    const rt = byGroupResource.get('/nodes')!;
    const node = await this.opts.client.get<NodeObject>(rt, undefined, this.opts.name);
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status !== 'True') await this.updateNodeStatus();
  }

  private async renewLease(): Promise<void> {
    const rt = byGroupResource.get('coordination.k8s.io/leases')!;
    const spec = {
      holderIdentity: this.opts.name,
      leaseDurationSeconds: LEASE_SECONDS,
      renewTime: microTime(),
    };
    try {
      await this.opts.client.patch(rt, 'kube-node-lease', this.opts.name, { spec }, 'merge');
      await this.reportReadyAgain();
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
      await this.opts.client.create(rt, {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.opts.name, namespace: 'kube-node-lease' },
        spec,
      });
    }
  }

  /** Compares the runtime's containers with the last look and queues pods that changed. */
  private async relist(): Promise<void> {
    if (this.stopped) return;
    const { sandboxes, containers } = await this.runtimeState();
    const bySandbox = new Map(sandboxes.map((s) => [s.id, s]));
    const states = new Map<string, string>();
    for (const c of containers) {
      const sandbox = bySandbox.get(c.sandboxId);
      if (!sandbox) continue;
      const key = `${sandbox.podNamespace}/${sandbox.podName}`;
      const state = `${c.state}/${c.exitCode ?? ''}`;
      states.set(c.id, state);
      if (this.lastStates.get(c.id) !== state) this.queue.add(key);
    }
    for (const sandbox of sandboxes) {
      const pod = this.pods.get(`${sandbox.podNamespace}/${sandbox.podName}`);
      if (!pod || pod.metadata.uid !== sandbox.podUid)
        this.queue.add(`${sandbox.podNamespace}/${sandbox.podName}`);
    }
    this.lastStates = states;
  }

  private async runtimeState(): Promise<{
    sandboxes: SandboxStatus[];
    containers: ContainerStatus[];
  }> {
    const [sandboxes, containers] = await Promise.all([
      this.opts.runtime.listSandboxes(),
      this.opts.runtime.listContainers(),
    ]);
    return { sandboxes, containers };
  }

  /** What the runtime has for one pod name: its sandboxes (any uid) and their containers. */
  /**
   * Measures what the pods with an ephemeral storage bound take of the disk, and queues
   * the eviction of those past it (done by their next sync, see syncPod).
   */
  private async checkEphemeralStorage(): Promise<void> {
    const usage = this.opts.runtime.containerDiskUsage?.bind(this.opts.runtime);
    // A walk of big layers may outlast the period: one at a time.
    if (!usage || this.measuringStorage) return;
    this.measuringStorage = true;
    try {
      await this.measureStorage(usage);
    } finally {
      this.measuringStorage = false;
    }
  }

  private async measureStorage(usage: (id: string) => Promise<number>): Promise<void> {
    for (const pod of this.pods.list()) {
      const uid = pod.metadata.uid!;
      const phase = pod.status?.phase;
      if (!hasStorageBounds(pod) || phase === 'Succeeded' || phase === 'Failed') continue;
      if (pod.metadata.deletionTimestamp || this.evictions.has(uid)) continue;
      const { sandboxes, containers } = await this.podRuntimeState(
        pod.metadata.namespace ?? 'default',
        pod.metadata.name!,
      );
      const mine = new Set(sandboxes.filter((s) => s.podUid === uid).map((s) => s.id));
      const use: StorageUse = { containers: new Map(), emptyDirs: new Map() };
      for (const c of containers) {
        if (mine.has(c.sandboxId) && c.state === 'running') {
          use.containers.set(c.name, await usage(c.id));
        }
      }
      for (const d of diskEmptyDirs(pod)) {
        use.emptyDirs.set(d.name, await this.volumes.emptyDirUsage(uid, d.name));
      }
      const why = storageViolation(pod, use);
      if (why === undefined) continue;
      this.log.warn(
        { pod: objectKey(pod), reason: why },
        'evicting a pod for its ephemeral storage',
      );
      this.evictions.set(uid, why);
      this.queue.add(objectKey(pod));
    }
  }

  private async podRuntimeState(
    namespace: string,
    name: string,
  ): Promise<{ sandboxes: SandboxStatus[]; containers: ContainerStatus[] }> {
    const runtime = this.opts.runtime;
    const sandboxes = await runtime.listSandboxes({ podNamespace: namespace, podName: name });
    if (sandboxes.length === 0) return { sandboxes, containers: [] };
    const containers = await runtime.listContainers({ sandboxIds: sandboxes.map((s) => s.id) });
    return { sandboxes, containers };
  }

  /** Reconciles one pod key; returns ms until it should be looked at again. */
  private async syncPod(key: string): Promise<number | void> {
    this.log.debug({ pod: key }, 'pod sync');
    const pod = this.pods.get(key);
    const [namespace, name] = key.split('/');
    const { sandboxes: mine, containers } = await this.podRuntimeState(namespace, name);
    const stale = mine.filter((s) => s.podUid !== pod?.metadata.uid && !this.removing.has(s.id));
    if (stale.length > 0) this.removeGone(key, stale, containers);
    if (!pod) return;
    const current = mine.filter((s) => s.podUid === pod.metadata.uid);
    if (pod.metadata.deletionTimestamp) return this.finishDeletion(pod, current, containers);
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
    const evicted = this.evictions.get(pod.metadata.uid!);
    if (evicted !== undefined) {
      const status = await this.worker.fail(pod, current, containers, 'Evicted', evicted, true);
      await this.reportStatus(pod, status);
      // What the pod filled is freed now, as kubelet tears a stopped pod's volumes down: a
      // Failed pod may stay for long, and its ReplicaSet's next pod may fill as much again.
      await this.volumes.removePodVolumes(pod.metadata.uid!);
      // Kept until the pod is gone: a sync queued meanwhile (its container's exit) may see
      // the pod as it was before this status, and must fail it again, not restart it.
      return;
    }
    let left = deadlineLeftMs(pod, Date.now());
    if (left !== undefined && left <= 0) {
      const status = await this.worker.fail(
        pod,
        current,
        containers,
        'DeadlineExceeded',
        'Pod was active on the node longer than the specified deadline',
      );
      await this.reportStatus(pod, status);
      return;
    }
    await this.objects.ensure(pod);
    await this.volumes.refreshPodMetadata(pod).catch((err) => this.volumeRefreshFailed(pod, err));
    const result = await this.worker.sync(pod, current, containers);
    if (result.status) await this.reportStatus(pod, result.status);
    // Looked at again when its deadline comes, if that is before the next sync. The start
    // time may be the one just reported: that write syncs the pod no more.
    left = deadlineLeftMs({ ...pod, status: { ...pod.status, ...result.status } }, Date.now());
    return left === undefined
      ? result.requeueAfterMs
      : Math.min(result.requeueAfterMs ?? left, left);
  }

  /**
   * Stops and removes the sandboxes of a pod that is gone, beside the syncs rather than in
   * one: a pod deleted with --force and created again under its name (a new uid) starts at
   * once, as with kubelet, instead of after the old one's ORPHAN_GRACE_SECONDS.
   */
  private removeGone(key: string, stale: SandboxStatus[], containers: ContainerStatus[]): void {
    const ids = stale.map((s) => s.id);
    this.log.info({ pod: key, sandboxes: ids }, 'removing containers of a pod that is gone');
    for (const id of ids) this.removing.add(id);
    this.worker
      .terminate(undefined, stale, containers, ORPHAN_GRACE_SECONDS)
      .catch((err) => this.log.error({ pod: key, err }, 'could not remove a gone pod'))
      .finally(() => {
        for (const id of ids) this.removing.delete(id);
      });
  }

  private async finishDeletion(
    pod: Pod,
    sandboxes: SandboxStatus[],
    containers: ContainerStatus[],
  ): Promise<void> {
    const grace =
      pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30;
    // As kubelet: the containers' ends and the terminal phase are shown before the pod goes.
    await this.worker.terminate(pod, sandboxes, containers, grace, (status) =>
      this.reportStatus(pod, status).catch((err: unknown) => {
        this.log.warn({ pod: objectKey(pod), err }, 'could not report the final status');
      }),
    );
    try {
      await this.opts.client.delete(
        byGroupResource.get('/pods')!,
        pod.metadata.namespace,
        pod.metadata.name!,
        {
          gracePeriodSeconds: 0,
          preconditions: { uid: pod.metadata.uid },
        },
      );
      this.log.info({ pod: objectKey(pod) }, 'pod deleted');
    } catch (err) {
      if (!isReason(err, 'NotFound') && !isReason(err, 'Conflict')) throw err;
    }
  }

  private async reportStatus(pod: Pod, status: Pod['status']): Promise<void> {
    const old = pod.status ?? {};
    if (deepEqual({ ...old, ...status }, old)) return;
    this.statusWrites.sent(pod.metadata.uid!, status ?? {});
    try {
      await this.opts.client.patch(
        byGroupResource.get('/pods')!,
        pod.metadata.namespace,
        pod.metadata.name!,
        { status },
        'merge',
        'status',
      );
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
  }

  /** Replaces the endpoint's serving certificate (after a renewal); new connections use it. */
  setServingCertificate(cert: { certPem: string; keyPem: string }): void {
    const tls = this.opts.tls;
    if (!tls || !this.server) return;
    this.opts.tls = { ...tls, ...cert };
    (this.server as HttpsServer).setSecureContext(this.secureOptions());
  }

  private secureOptions() {
    const tls = this.opts.tls!;
    return { cert: tls.certPem, key: tls.keyPem, ca: tls.caPem };
  }

  /** Whether a request to the endpoint comes from the API server. */
  private allowed(req: IncomingMessage): boolean {
    if (!this.opts.tls) return this.tokens.accepts(req.headers.authorization);
    return certificateUser(req.socket as TLSSocket)?.name === API_SERVER_IDENTITY;
  }

  private listen(): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.serve(req, res);
    const server = this.opts.tls
      ? createHttpsServer({ ...this.secureOptions(), requestCert: true }, handler)
      : createServer(handler);
    server.on('upgrade', (req, socket, head) => void this.serveUpgrade(req, socket, head));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.agentPort, this.opts.bindAddress ?? this.opts.internalIP, () => {
        this.opts.agentPort = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (!this.allowed(req)) throw new ApiError('Unauthorized', 'Unauthorized');
      const url = new URL(req.url ?? '/', 'http://agent');
      const parts = url.pathname.split('/').filter((p) => p);
      if (url.pathname === '/healthz') {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
        return;
      }
      if (parts[0] === 'containerLogs' && parts.length === 4) {
        await this.serveLogs(parts[1], parts[2], parts[3], url.searchParams, res);
        return;
      }
      throw new ApiError('NotFound', `no such agent endpoint: ${url.pathname}`);
    } catch (err) {
      const apiErr =
        err instanceof ApiError ? err : new ApiError('InternalError', (err as Error).message);
      if (res.headersSent) return void res.end();
      const body = JSON.stringify(apiErr.toStatus());
      res.writeHead(apiErr.code, { 'Content-Type': 'application/json' }).end(body);
    }
  }

  /** `kubectl exec` and `kubectl attach`: `/exec/NS/POD/CONTAINER?command=...`, `/attach/...`. */
  private async serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => undefined);
    this.upgraded.add(socket);
    socket.on('close', () => this.upgraded.delete(socket));
    try {
      if (!this.allowed(req)) throw new ApiError('Unauthorized', 'Unauthorized');
      const url = new URL(req.url ?? '/', 'http://agent');
      const parts = url.pathname.split('/').filter((p) => p);
      if (parts[0] === 'attach' && parts.length === 4) {
        await this.serveAttach(req, socket, head, parts[1], parts[2], parts[3], url.searchParams);
        return;
      }
      if (parts[0] !== 'exec' || parts.length !== 4)
        throw new ApiError('NotFound', `no such agent endpoint: ${url.pathname}`);
      const exec = parseExecQuery(url.searchParams);
      const id = await this.runningContainer(parts[1], parts[2], parts[3]);
      const start = (r: ExecRequest) => this.opts.runtime.execStream(id, r.command, r);
      serveExec(req, socket, head, exec, start, this.log);
    } catch (err) {
      refuseExec(socket, err);
    }
  }

  /**
   * `kubectl attach`: `/attach/NS/POD/CONTAINER?stdin=...`, upgraded to a WebSocket and
   * served as an exec is (see attach.ts).
   */
  private async serveAttach(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    namespace: string,
    name: string,
    container: string,
    query: URLSearchParams,
  ): Promise<void> {
    const attach = parseAttachQuery(query);
    const pod = this.pods.get(`${namespace}/${name}`);
    const spec = [...(pod?.spec.initContainers ?? []), ...(pod?.spec.containers ?? [])].find(
      (c) => c.name === container,
    );
    if (attach.stdin && spec && spec.stdin !== true) {
      throw new ApiError(
        'BadRequest',
        `container ${container} in pod ${name} has no stdin to attach to: its spec does not ` +
          'set stdin: true (attach without -i to see its output)',
      );
    }
    const id = await this.runningContainer(namespace, name, container);
    const status = await this.opts.runtime.containerStatus(id);
    if (!status)
      throw new ApiError('BadRequest', `container ${container} is not running in pod ${name}`);
    const runtime = this.opts.runtime;
    const target: AttachTarget = {
      logPath: status.logPath,
      running: async () => (await runtime.containerStatus(id))?.state === 'running',
      stdin: runtime.attachStdin ? () => runtime.attachStdin!(id) : undefined,
      resize: runtime.resizeTerminal ? (c, r) => runtime.resizeTerminal!(id, c, r) : undefined,
    };
    serveExec(req, socket, head, attach, (r) => startAttach(target, r), this.log, 'attach');
  }

  /** The id of the running instance of a pod's container; a Status error otherwise. */
  private async runningContainer(
    namespace: string,
    name: string,
    container: string,
  ): Promise<string> {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod) throw new ApiError('NotFound', `pod "${name}" not found on node ${this.opts.name}`);
    const { sandboxes, containers } = await this.podRuntimeState(namespace, name);
    const ids = new Set(sandboxes.filter((s) => s.podUid === pod.metadata.uid).map((s) => s.id));
    const mine = containers.filter((c) => ids.has(c.sandboxId));
    const current = instancesByName(mine).get(container)?.[0];
    if (current?.state !== 'running') {
      throw new ApiError('BadRequest', `container ${container} is not running in pod ${name}`);
    }
    return current.id;
  }

  private async serveLogs(
    namespace: string,
    name: string,
    container: string,
    q: URLSearchParams,
    res: ServerResponse,
  ): Promise<void> {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod) throw new ApiError('NotFound', `pod "${name}" not found on node ${this.opts.name}`);
    const { sandboxes, containers } = await this.podRuntimeState(namespace, name);
    const ids = new Set(sandboxes.filter((s) => s.podUid === pod.metadata.uid).map((s) => s.id));
    const instances =
      instancesByName(containers.filter((c) => ids.has(c.sandboxId))).get(container) ?? [];
    const previous = q.get('previous') === 'true';
    // While a crashed container waits to restart, the crashed instance is the previous one;
    // one that stays ended (it completed, or the policy is Never) is the current one still.
    const latest = instances[0];
    const restarts = latest?.state === 'exited' && willRestart(pod, container, latest);
    const target = previous ? (restarts ? latest : instances[1]) : latest;
    if (!target) {
      if (previous)
        throw new ApiError(
          'BadRequest',
          `previous terminated container "${container}" in pod "${name}" not found`,
        );
      const waiting =
        pod.status?.containerStatuses?.find((s) => s.name === container)?.state?.waiting?.reason ??
        'ContainerCreating';
      throw new ApiError(
        'BadRequest',
        `container "${container}" in pod "${name}" is waiting to start: ${waiting}`,
      );
    }
    const num = (key: string) => (q.get(key) === null ? undefined : Number(q.get(key)));
    const sinceSeconds = num('sinceSeconds');
    const sinceTime = q.get('sinceTime');
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    // Sent now, not with the first line: a quiet container's `logs -f` is answered at once.
    res.flushHeaders();
    await streamLog(target.logPath, res, {
      tailLines: num('tailLines'),
      limitBytes: num('limitBytes'),
      timestamps: q.get('timestamps') === 'true',
      since:
        sinceSeconds !== undefined
          ? Date.now() - sinceSeconds * 1000
          : sinceTime
            ? Date.parse(sinceTime)
            : undefined,
      follow: q.get('follow') === 'true' && !previous,
      done: async () => (await this.opts.runtime.containerStatus(target.id))?.state !== 'running',
    });
  }
}

/** Whether an ended instance of a pod's container is started again (init: only on failure). */
function willRestart(pod: Pod, name: string, ended: ContainerStatus): boolean {
  if (!(pod.spec.initContainers ?? []).some((c) => c.name === name))
    return shouldRestart(pod, ended);
  return ended.exitCode !== 0 && pod.spec.restartPolicy !== 'Never';
}
