import {
  chmodSync,
  existsSync,
  mkdirSync,
  promises as fs,
  readFileSync,
  renameSync,
  rmSync,
  watch,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

import { componentLogger, type Logger } from '../log.js';
import { diskUsage } from '../util/disk-usage.js';
import { endExecLeftovers } from './exec-leftovers.js';
import { processRuns } from './process-tree.js';
import { PodNetwork, netnsPath } from './pod-network.js';
import {
  conmonAlive,
  createUnderConmon,
  pidOf,
  startConmon,
  SYNC_TIMEOUT_MS,
  type ConmonPaths,
  type SyncMessage,
} from './conmon.js';
import { writeEtcFiles, writeHosts } from './etc-files.js';
import {
  findExecutable,
  isErrno,
  KeyedMutex,
  randomHex,
  readJson,
  replaceJsonSync,
} from './fsutil.js';
import type { ImageStore } from './images.js';
import {
  finishedAtFor,
  isRuntimeId,
  RuntimeRecords,
  sandboxId,
  type ContainerRecord,
  type SandboxRecord,
} from './records.js';

export { sandboxId };
import { MountPointLayer, rootfsMount, unmountRootfs } from './rootfs.js';
import { startExecStream } from './exec-stream.js';
import { attachStdin, resizeTerminal } from './attach.js';
import { SandboxSetups, type SandboxSetup } from './sandbox-setup.js';
import { Starts } from './idle-refill.js';
import { imageIdentity } from './image-user.js';
import { stopSignalOf } from './signals.js';
import { terminationMessage } from './termination.js';
import { SpareNetworks, spareFile } from './spare-network.js';
import { hasWarmSpec, letGo, release, WARM_SPEC, WarmMonitors, writeSpec } from './warm-monitor.js';
import { run } from './exec.js';
import { processCgroupDirs, runcCgroupDirs } from './cgroup-dirs.js';
import { Runc } from './runc.js';
import {
  hideValues,
  RuntimeError,
  type ContainerConfig,
  type AttachedStdin,
  type ContainerFilter,
  type SandboxFilter,
  type ContainerState,
  type ContainerStatus,
  type ExecResult,
  type ExecSession,
  type ExecStreamOptions,
  type RuntimeService,
  type SandboxConfig,
  type SandboxStatus,
} from './runtime.js';
import { buildSpec, hostNofileLimit } from './spec.js';

/** How a MiniC runtime is set up on a node. */
export interface MiniCOptions {
  /**
   * Directory miniC owns on disk, e.g. DATA/runtime: the containers' writable layers and
   * logs, the pod network's address leases and the spare network's description.
   */
  root: string;
  /**
   * Directory for what matters only while the machine is up: the records of sandboxes
   * and containers, runc's state, bundles, conmon's files and each sandbox's /etc files;
   * default ROOT/state. An agent gives a tmpfs (see state-dir.ts), as containerd and CRI-O
   * keep theirs under /run, so that the small files a container's start writes do not wait
   * on the disk. A reboot empties it, as it ends every container it describes.
   */
  stateRoot?: string;
  /** Where container images come from. */
  images: ImageStore;
  /** This node's pod subnet; default 10.42.0.0/24. */
  podCidr?: string;
  /** The node's pod bridge; default flyces0. */
  bridge?: string;
  /** OCI runtime binary, a path or a name found on PATH; default runc. */
  runtimePath?: string;
  /** conmon binary, a path or a name found on PATH; default conmon. */
  conmonPath?: string;
  /**
   * Parent of the containers' cgroups, given to runc as `PARENT/<sandbox>/<container>`.
   * Default `flyces`: a relative path, which runc places below its own cgroup, so the
   * containers stay inside the cgroup the agent runs in. An absolute path starts at the
   * hierarchy's root instead.
   */
  cgroupParent?: string;
  /** Size at which a container's log file starts afresh; default 10 MiB, as kubelet's. */
  logSizeMax?: number;
  /**
   * Where the kernel's boot id is read, which tells a reboot (see removeLeftovers); default
   * /proc/sys/kernel/random/boot_id. A file that is missing or empty means "unknown".
   */
  bootIdFile?: string;
  logger?: Logger;
}

const EXIT_POLL_MS = 20;
const KILL_WAIT_MS = 10_000;
const CONMON_EXIT_WAIT_MS = 2_000;
const START_FAILED_EXIT_CODE = 128;
/**
 * Largest spec written into a warm monitor's FIFO (see warm-monitor.ts): it must fit the
 * pipe's 64 KiB at once. A larger one starts the container afresh.
 */
const MAX_WARM_SPEC = 60_000;
/** What conmon leaves in a bundle besides the spec: a fresh conmon makes them anew. */
const CONMON_BUNDLE_FILES = ['attach', 'ctl', 'winsz'];

function wrap(code: RuntimeError['code'], what: string, err: unknown): RuntimeError {
  if (err instanceof RuntimeError) return err;
  return new RuntimeError(code, `${what}: ${(err as Error).message}`);
}

/** Hides `values` in an error's message and stack (see hideValues), before it is logged. */
function hideIn(err: unknown, values: string[] | undefined): void {
  if (!(err instanceof Error) || !values?.length) return;
  err.message = hideValues(err.message, values);
  if (err.stack) err.stack = hideValues(err.stack, values);
}

/** A container's directories on disk (its log is there too): the overlay's. */
const CONTAINER_DISK_SUBDIRS = ['upper', 'work'];
/** The file in a container's directory on disk mounted at its terminationMessagePath. */
const TERMINATION_LOG = 'termination-log';
/** A container's directories under the state root: its bundle and conmon's. */
const CONTAINER_STATE_SUBDIRS = ['bundle/rootfs', 'exit', 'persist'];

/** The kernel's id of the running boot: a reboot changes it. */
const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';

/**
 * Where a runtime root notes the pod network its last `prepareNetwork` attached pods to,
 * so that `flyces down` finds the bridge without being told.
 */
export function networkFile(root: string): string {
  return path.join(root, 'network.json');
}

/** The bridge the runtime at `root` last attached pods to, if it noted one. */
export function recordedBridge(root: string): string | undefined {
  try {
    const { bridge } = JSON.parse(readFileSync(networkFile(root), 'utf8')) as { bridge?: unknown };
    return typeof bridge === 'string' ? bridge : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The id a sandbox's network was attached under (its lease and veth name): its own, or its
 * spare's. Records keep it as `cniId`, the name from when CNI plugins attached pods.
 */
function cniIdOf(rec: SandboxRecord): string {
  return rec.cniId ?? rec.id;
}

function reasonFor(exitCode: number | undefined, oom: boolean): string {
  if (oom) return 'OOMKilled';
  return exitCode === 0 ? 'Completed' : 'Error';
}

/**
 * miniC's RuntimeService: sandboxes are network namespaces on the pod bridge, containers
 * are runc bundles on overlayfs run under conmon. Every fact lives on disk under `root`,
 * so a new MiniC on the same root (the agent restarted) sees the same sandboxes and
 * containers, running ones included. Calls for one sandbox or container are serialised
 * within the process; different ones run concurrently. Two processes must not drive the
 * same root at once.
 */
export class MiniC implements RuntimeService {
  readonly root: string;
  readonly stateRoot: string;
  private readonly images: ImageStore;
  private readonly network: PodNetwork;
  private readonly log: Logger;
  private readonly locks = new KeyedMutex();
  /** When each stop waiting for its container to exit sends SIGKILL (ms since the epoch). */
  private readonly killAt = new Map<string, number>();
  private readonly setups = new SandboxSetups();
  /** Sandbox set-ups, container creates and starts in flight (see idle-refill.ts). */
  private readonly starts = new Starts();
  private readonly spares: SpareNetworks;
  private readonly monitors: WarmMonitors;
  /** Layer directories of containers being created, by container id (see layersInUse). */
  private readonly creating = new Map<string, string[]>();
  /**
   * Each created container's hiddenValues, until its start: its start's error can quote its
   * command. Kept in memory only (a Secret's value goes into no record on disk); a container
   * created by an earlier run of the agent is not started, but removed and created again.
   */
  private readonly hidden = new Map<string, string[]>();
  private sparesStarted?: Promise<void>;
  private monitorsStarted?: Promise<void>;
  private readonly records: RuntimeRecords;
  private readonly cgroupParent: string;
  private readonly logSizeMax: number;
  private readonly bootIdFile: string;
  private readonly mountPoints: MountPointLayer;
  private readonly binaries: Promise<{ runc: Runc; runtime: string; conmon: string }>;
  /** The host's hard limit of open files; this process's limits do not change. */
  private readonly nofileLimit = hostNofileLimit();
  /** When this runtime was made: exec sessions from before it are an earlier agent's. */
  private readonly madeAt = Date.now();

  constructor(options: MiniCOptions) {
    this.root = path.resolve(options.root);
    this.stateRoot = path.resolve(options.stateRoot ?? path.join(this.root, 'state'));
    this.records = new RuntimeRecords(this.stateRoot, this.root);
    this.images = options.images;
    this.cgroupParent = options.cgroupParent ?? 'flyces';
    this.logSizeMax = options.logSizeMax ?? 10 * 1024 * 1024;
    this.bootIdFile = options.bootIdFile ?? BOOT_ID_FILE;
    this.mountPoints = new MountPointLayer(this.root);
    this.log = options.logger ?? componentLogger('minic', { root: this.root });
    this.network = new PodNetwork({
      podCidr: options.podCidr ?? '10.42.0.0/24',
      bridge: options.bridge ?? 'flyces0',
      // Where host-local kept them, so that a node that ran the CNI plugins keeps its leases.
      ipamDir: path.join(this.root, 'cni', 'networks'),
      scratchDir: path.join(this.stateRoot, 'network'),
      log: this.log,
    });
    // Container root file systems are mounted inside the containers (see rootfs.ts), so
    // the image store asks here which layers they stack before it deletes any.
    this.images.setLayerUsers(() => this.layersInUse());
    this.spares = new SpareNetworks(
      this.network,
      spareFile(this.root),
      this.log,
      async (netns) => (await this.records.sandboxes((r) => r.netns === netns)).length > 0,
      this.starts,
    );
    this.monitors = new WarmMonitors({
      file: path.join(this.root, 'warm-monitor.json'),
      bundle: (id) => path.join(this.records.containerStateDir(id), 'bundle'),
      prepare: (id) => this.prepareWarm(id),
      start: (id) => this.startWarmConmon(id),
      reap: (id) => this.reapConmon(id),
      remove: (id) => this.records.removeContainer(id),
      claimed: async (id) => (await this.records.readContainer(id)) !== undefined,
      starts: this.starts,
      log: this.log,
    });
    this.binaries = this.findBinaries(options);
    // Reported when first used; this only avoids an unhandled rejection meanwhile.
    this.binaries.catch(() => undefined);
    this.nofileLimit.catch(() => undefined);
  }

  private async findBinaries(
    options: MiniCOptions,
  ): Promise<{ runc: Runc; runtime: string; conmon: string }> {
    const runtime = await findExecutable(options.runtimePath ?? 'runc');
    const conmon = await findExecutable(options.conmonPath ?? 'conmon');
    const runc = new Runc(runtime, path.join(this.stateRoot, 'runc'), path.join(this.root, 'runc'));
    return { runc, runtime, conmon };
  }

  /**
   * Where container `id` keeps its bundle, exit file, pid files and conmon's log: under the
   * state root, or, for a container an earlier miniC made, in its directory on disk.
   */
  private containerStateDir(id: string): string {
    const dir = this.records.containerStateDir(id);
    if (existsSync(path.join(dir, 'bundle'))) return dir;
    const earlier = this.records.containerDir(id);
    return existsSync(path.join(earlier, 'bundle')) ? earlier : dir;
  }

  /** Where sandbox `id` keeps its /etc files (like containerStateDir). */
  private sandboxStateDir(id: string): string {
    const dir = this.records.sandboxDir(id);
    if (existsSync(path.join(dir, 'hosts'))) return dir;
    const earlier = path.join(this.root, 'sandboxes', id);
    return existsSync(path.join(earlier, 'hosts')) ? earlier : dir;
  }

  // ---- sandboxes ----

  /**
   * Creates the pod's network namespace and attaches it to the pod network. The id is
   * derived from the pod uid and `config.attempt` (0 when absent), so calling it again for
   * a ready sandbox returns that sandbox, and for a stopped one re-attaches it.
   *
   * While it runs, containers may already be created and started for the sandbox (its id
   * is `sandboxIdFor(config)`): createContainer goes ahead once the record exists,
   * startContainer runs `runc create` once the namespace exists and starts the process
   * only once the network is attached. When the set-up fails, those calls fail too and
   * the containers made meanwhile are removed with the sandbox.
   */
  async runSandbox(config: SandboxConfig): Promise<SandboxStatus> {
    const id = this.sandboxIdFor(config);
    // Registered before the first await, so calls that follow this one see the set-up.
    const { setup, owner } = this.setups.begin(id);
    try {
      return await this.starts.busy(() =>
        this.locks.run(id, () => this.setUpSandbox(id, config, setup)),
      );
    } finally {
      if (owner) {
        setup.finish();
        this.setups.end(id, setup);
      }
    }
  }

  /**
   * The layer directories of every container this runtime has, running or not, and of
   * those being created (claimed when their image was resolved, until their record is
   * written or their creation failed).
   */
  async layersInUse(): Promise<Set<string>> {
    const containers = await this.records.containers();
    const layers = new Set(containers.flatMap((c) => c.layerDirs ?? []));
    for (const dirs of this.creating.values()) for (const dir of dirs) layers.add(dir);
    return layers;
  }

  /** The id runSandbox gives the sandbox of `config`. */
  sandboxIdFor(config: SandboxConfig): string {
    return sandboxId(config.podUid, config.attempt ?? 0);
  }

  private async setUpSandbox(
    id: string,
    config: SandboxConfig,
    setup: SandboxSetup,
  ): Promise<SandboxStatus> {
    const existing = await this.records.readSandbox(id);
    if (existing?.state === 'ready') return this.sandboxStatus(existing);
    const log = this.log.child({ sandbox: id, pod: `${config.podNamespace}/${config.podName}` });
    // A new sandbox takes the spare network if one is ready (see spare-network.ts).
    const spare = existing || config.hostNetwork === true ? undefined : this.spares.take();
    const rec: SandboxRecord = existing ?? {
      id,
      podUid: config.podUid,
      podName: config.podName,
      podNamespace: config.podNamespace,
      hostname: config.hostname,
      ...(config.fqdn ? { fqdn: config.fqdn } : {}),
      ...(config.hostAliases?.length ? { hostAliases: config.hostAliases } : {}),
      labels: { ...config.labels },
      attempt: config.attempt ?? 0,
      netns: spare?.netns ?? `flyces-${id.slice(0, 12)}`,
      cniId: spare?.cniId,
      ip: spare?.ip,
      hostNetwork: config.hostNetwork === true,
      cniConfig: spare?.cniConfig ?? this.network.bridgeConfig(),
      state: 'notready',
      createdAt: new Date().toISOString(),
    };
    const resolvConf = config.resolvConf ?? '';
    setup.sandbox = rec;
    setup.described.resolve();
    try {
      const etcDir = this.sandboxStateDir(id);
      mkdirSync(this.records.sandboxDir(id), { recursive: true });
      if (rec.hostNetwork) rec.ip = config.hostIP ?? '127.0.0.1';
      // /etc/hosts names the pod's address once the attachment has given it; containers bind-mount
      // the file, so it is rewritten in place before any of their processes starts.
      writeEtcFiles(etcDir, rec, rec.ip, resolvConf);
      // The record comes first, so that no namespace exists that no record names.
      await this.records.writeSandbox(rec);
      if (spare) this.spares.recorded(spare);
      setup.recorded.resolve();
      if (spare) {
        setup.netns.resolve();
      } else if (!rec.hostNetwork) {
        rec.ip = (await this.network.attach(cniIdOf(rec), rec.netns, rec.cniConfig)).ip;
        setup.netns.resolve();
      }
      rec.state = 'ready';
      await this.records.writeSandbox(rec);
      if (!rec.hostNetwork) writeHosts(etcDir, rec, rec.ip);
    } catch (err) {
      log.error({ err }, 'sandbox network setup failed');
      setup.fail(wrap('NetworkError', `sandbox ${id}`, err));
      await this.cleanUpFailedSetup(rec, setup, !existing, log);
      throw wrap('NetworkError', `sandbox ${id}`, err);
    }
    setup.ready.resolve();
    log.info({ ip: rec.ip, netns: rec.netns }, 'sandbox ready');
    return this.sandboxStatus(rec);
  }

  /**
   * Undoes a failed set-up as far as it can, each part whatever became of the others: the
   * containers created for the sandbox meanwhile (their starts fail with the set-up), the
   * network, and for a new sandbox its namespace and files.
   */
  private async cleanUpFailedSetup(
    rec: SandboxRecord,
    setup: SandboxSetup,
    isNew: boolean,
    log: Logger,
  ): Promise<void> {
    const warn = (err: unknown) => log.warn({ err }, 'cleanup after failed sandbox setup');
    await setup.settled();
    for (const id of setup.containers) await this.removeContainer(id).catch(warn);
    await this.teardownNetwork(rec, false).catch(warn);
    if (!isNew) return;
    if (!rec.hostNetwork) await this.network.deleteNetns(rec.netns).catch(warn);
    await this.records.removeSandbox(rec.id);
  }

  private async teardownNetwork(rec: SandboxRecord, deleteNetns: boolean): Promise<void> {
    if (rec.hostNetwork) return;
    // A namespace deleted behind the runtime's back (or lost in a reboot) still gets DEL,
    // which releases its address; that it cannot undo more is only worth a warning.
    const present = existsSync(netnsPath(rec.netns));
    const detached = this.network.detach(cniIdOf(rec), rec.netns, rec.cniConfig, rec.ip);
    await detached.catch((err: unknown) => {
      if (present) throw err;
      this.log.warn({ err, sandbox: rec.id }, 'could not release the address of a lost netns');
    });
    if (deleteNetns) await this.network.deleteNetns(rec.netns);
  }

  async repairNetwork(): Promise<string[]> {
    return this.network.repair();
  }

  /** Stops every container of the sandbox (without grace) and detaches its network. */
  async stopSandbox(id: string): Promise<void> {
    await this.locks.run(id, () => this.stopSandboxLocked(id));
  }

  private async stopSandboxLocked(id: string): Promise<void> {
    const rec = await this.records.readSandbox(id);
    if (!rec) return;
    for (const c of await this.records.containers((r) => r.sandboxId === id)) {
      await this.stopContainer(c.id, 0);
    }
    try {
      await this.teardownNetwork(rec, false);
    } catch (err) {
      throw wrap('NetworkError', `sandbox ${id}`, err);
    }
    if (rec.state !== 'notready') {
      rec.state = 'notready';
      await this.records.writeSandbox(rec);
      this.log.info({ sandbox: id }, 'sandbox stopped');
    }
  }

  /** Stops the sandbox, removes its containers, its namespace and its files. */
  async removeSandbox(id: string): Promise<void> {
    await this.locks.run(id, async () => {
      const rec = await this.records.readSandbox(id);
      if (!rec) return;
      await this.stopSandboxLocked(id);
      for (const c of await this.records.containers((r) => r.sandboxId === id)) {
        await this.removeContainer(c.id);
      }
      await this.network.deleteNetns(rec.netns);
      await this.records.removeSandbox(id);
      this.log.info({ sandbox: id }, 'sandbox removed');
    });
  }

  /**
   * Sets up the pod bridge and its gateway address now and returns that address; then
   * keeps a spare pod network ready for the next sandbox (see spare-network.ts).
   */
  async prepareNetwork(): Promise<string> {
    const gateway = await this.network.ensureBridge();
    mkdirSync(this.root, { recursive: true });
    replaceJsonSync(networkFile(this.root), this.network.bridgeConfig());
    await this.removeLeftovers().catch((err: unknown) => {
      this.log.warn({ err }, 'could not remove what containers of a previous boot left');
    });
    await this.endExecLeftovers();
    this.sparesStarted ??= this.spares.start().catch((err: unknown) => {
      this.log.warn({ err }, 'could not take over the spare pod network');
    });
    await this.sparesStarted;
    this.monitorsStarted ??= this.monitors.start().catch((err: unknown) => {
      this.log.warn({ err }, 'could not release the warm container monitor left before');
    });
    await this.monitorsStarted;
    return gateway;
  }

  /**
   * Removes what no record names any more: containers' directories on disk and pod
   * addresses. The records live on the state root, which a reboot empties (every
   * container ended with it); their writable layers, logs and address leases are on
   * disk. Runs before this runtime makes or takes anything (agent start, `flyces down`).
   *
   * Only after a reboot: the kernel's boot id must differ from the one noted under the
   * root when a runtime last ran there. A state root found empty on the same boot (lost,
   * or another one than the agent's) says nothing about containers that may still run, so
   * nothing is removed then; what a crash midway through a creation left stays until the
   * next reboot.
   */
  async removeLeftovers(): Promise<void> {
    const bootFile = path.join(this.root, 'boot.json');
    // Where the kernel does not say (an emulated /proc), a reboot cannot be told: nothing goes.
    const bootId = (await fs.readFile(this.bootIdFile, 'utf8').catch(() => '')).trim();
    const noted = await readJson<{ bootId?: unknown }>(bootFile).catch(() => undefined);
    if (bootId === '' || noted?.bootId === bootId) return;
    // No boot noted: a new root, or one an earlier miniC kept, whose records are all there.
    if (typeof noted?.bootId === 'string') await this.removeUnrecorded();
    // Noted where a runtime has run (prepareNetwork makes the root), so that `flyces down`
    // given a data dir that was never used makes nothing there.
    if (existsSync(this.root)) replaceJsonSync(bootFile, { bootId });
  }

  /** Ends the commands of exec sessions whose agent was killed (see exec-leftovers.ts). */
  private async endExecLeftovers(): Promise<void> {
    try {
      const ended = await endExecLeftovers(path.join(this.stateRoot, 'exec'), this.madeAt);
      if (ended.length > 0) {
        this.log.info({ pids: ended }, 'ended the commands of exec sessions an earlier agent left');
      }
    } catch (err) {
      this.log.warn({ err }, 'could not end the exec sessions an earlier agent left');
    }
  }

  private async removeUnrecorded(): Promise<void> {
    const containers = new Set((await this.records.containers()).map((c) => c.id));
    const diskDir = path.join(this.root, 'containers');
    for (const id of await fs.readdir(diskDir).catch(() => [] as string[])) {
      if (!isRuntimeId(id) || containers.has(id) || this.creating.has(id)) continue;
      await unmountRootfs(this.records.containerDir(id));
      await fs.rm(this.records.containerDir(id), { recursive: true, force: true });
      this.log.info({ container: id }, 'removed the files of a container no record names');
    }
    const held = new Set((await this.records.sandboxes()).map((rec) => cniIdOf(rec)));
    const spare = await readJson<{ cniId?: unknown }>(spareFile(this.root)).catch(() => undefined);
    if (typeof spare?.cniId === 'string') held.add(spare.cniId);
    const released = await this.network.releaseLeasesExcept(held);
    if (released.length > 0) this.log.info({ addresses: released }, 'released stale pod addresses');
  }

  /**
   * Releases the warm container monitor (its report would go to this process only) and
   * makes no more; the spare pod network stays for the next runtime to take over.
   */
  async close(): Promise<void> {
    await this.monitors.remove();
  }

  /** Deletes the spare pod network, if there is one, and makes no more (`flyces down`). */
  async removeSpareNetwork(): Promise<void> {
    // Taken over once per runtime: a second start would discard a spare being made.
    this.sparesStarted ??= this.spares.start().catch(() => undefined);
    await this.sparesStarted;
    await this.spares.remove();
    await this.monitors.remove();
  }

  async listSandboxes(filter?: SandboxFilter): Promise<SandboxStatus[]> {
    const records = await this.records.sandboxes(
      filter && ((r) => r.podNamespace === filter.podNamespace && r.podName === filter.podName),
    );
    return Promise.all(records.map((rec) => this.sandboxStatus(rec)));
  }

  private async sandboxStatus(rec: SandboxRecord): Promise<SandboxStatus> {
    // A namespace that vanished (host reboot, someone else's cleanup) is not ready. A stat
    // answered from memory: the relist asks it of every sandbox each second, and a trip
    // through the thread pool costs far more than the call.
    const ready = rec.state === 'ready' && (rec.hostNetwork || existsSync(netnsPath(rec.netns)));
    return {
      id: rec.id,
      podUid: rec.podUid,
      podName: rec.podName,
      podNamespace: rec.podNamespace,
      labels: { ...rec.labels },
      state: ready ? 'ready' : 'notready',
      ip: rec.ip,
      createdAt: rec.createdAt,
    };
  }

  // ---- containers ----

  /**
   * Writes the container's bundle (config.json) and mounts its root file system (overlay
   * of the image's layers). Returns the new container's id; it is in state `created`.
   */
  async createContainer(sandboxId: string, config: ContainerConfig): Promise<string> {
    // Within `busy`: the warm monitor it takes stays named for a restart until its record is.
    return this.starts.busy(() => this.createTracked(sandboxId, config));
  }

  private async createTracked(sandboxId: string, config: ContainerConfig): Promise<string> {
    const setup = this.setups.get(sandboxId);
    if (!setup) return this.createInSandbox(sandboxId, config);
    if (setup.failure) throw wrap('CreateContainerError', `sandbox ${sandboxId}`, setup.failure);
    return setup.track(
      setup.described.done.then(
        () => this.createInSandbox(sandboxId, config, setup),
        (err: unknown) => Promise.reject(wrap('CreateContainerError', `sandbox ${sandboxId}`, err)),
      ),
    );
  }

  private async createInSandbox(
    sandboxId: string,
    config: ContainerConfig,
    setup?: SandboxSetup,
  ): Promise<string> {
    const sandbox = setup?.sandbox ?? (await this.records.readSandbox(sandboxId));
    if (!sandbox) throw new RuntimeError('NotFound', `sandbox ${sandboxId} not found`);
    if (sandbox.state !== 'ready' && !setup) {
      throw new RuntimeError('CreateContainerError', `sandbox ${sandboxId} is not ready`);
    }
    // A warm monitor (warm-monitor.ts) gives the container its id, conmon already running;
    // not to one that needs a stdin or a terminal, which conmon must be started with.
    const stdio = config.stdio?.stdin || config.stdio?.tty ? config.stdio : undefined;
    const warm = stdio ? undefined : this.monitors.take();
    const id = warm?.id ?? randomHex(32);
    const claim = (found: { layerDirs: string[] }) => this.creating.set(id, found.layerDirs);
    const image = await this.images.resolveImage(config.image, claim).catch(async (err) => {
      if (warm) await this.dropWarm(id);
      throw err;
    });
    if (!image) {
      if (warm) await this.dropWarm(id);
      throw new RuntimeError('ImageNotFound', `image ${config.image} not found`);
    }

    const dir = this.records.containerDir(id);
    const stateDir = this.records.containerStateDir(id);
    const log = this.log.child({ container: id, sandbox: sandboxId, name: config.name });
    try {
      // A handful of mkdir calls: made at once, they cost less than a trip each through
      // the thread pool, which a busy agent makes long.
      for (const sub of CONTAINER_DISK_SUBDIRS) mkdirSync(path.join(dir, sub), { recursive: true });
      for (const sub of CONTAINER_STATE_SUBDIRS)
        mkdirSync(path.join(stateDir, sub), { recursive: true });
      const sbDir = this.sandboxStateDir(sandboxId);
      const cgroupsPath = this.cgroupsPath(sandboxId, id);
      const termination = this.terminationFile(dir, config);
      const spec = buildSpec({
        config: termination
          ? {
              ...config,
              mounts: [
                ...(config.mounts ?? []),
                { hostPath: termination.file, containerPath: config.terminationMessage!.path },
              ],
            }
          : config,
        image: image.config,
        hostname: sandbox.hostname,
        netnsPath: sandbox.hostNetwork ? undefined : netnsPath(sandbox.netns),
        etcFiles: {
          hosts: path.join(sbDir, 'hosts'),
          hostname: path.join(sbDir, 'hostname'),
          resolvConf: path.join(sbDir, 'resolv.conf'),
        },
        cgroupsPath,
        nofileLimit: await this.nofileLimit,
        rootfs: rootfsMount(dir, image.layerDirs, this.mountPoints.path()),
        imageUser: await imageIdentity(
          image.config.User,
          image.layerDirs,
          config.security?.runAsUser,
        ),
      });
      // The bundle is new and runc reads it only at start, so it needs no atomic write. A
      // warm monitor's runc waits on config.json: the spec goes beside it until the start.
      const specFile = warm ? WARM_SPEC : 'config.json';
      writeFileSync(path.join(stateDir, 'bundle', specFile), JSON.stringify(spec), {
        mode: 0o600,
      });
      // Recorded after its sandbox, so a record never names a sandbox that has none.
      await setup?.recorded.done;
      await this.records.addContainer({
        id,
        sandboxId,
        name: config.name,
        image: config.image,
        imageId: image.id,
        attempt: config.attempt,
        labels: { ...config.labels },
        createdAt: new Date().toISOString(),
        stopSignal: stopSignalOf(image.config.StopSignal),
        layerDirs: image.layerDirs,
        // Where runc will make them: a start that fails before runc's state names them
        // (runc create failed, runc or conmon killed) leaves them to removal all the same.
        cgroupPaths: runcCgroupDirs(cgroupsPath),
        termination,
        ...(stdio ? { stdio: { ...stdio } } : {}),
      });
      this.creating.delete(id);
      setup?.containers.add(id);
    } catch (err) {
      hideIn(err, config.hiddenValues);
      log.error({ err }, 'create failed');
      this.creating.delete(id);
      if (warm) await this.dropWarm(id).catch(() => undefined);
      await this.records.removeContainer(id).catch(() => undefined);
      throw wrap('CreateContainerError', `container ${config.name}`, err);
    }
    if (config.hiddenValues?.length) this.hidden.set(id, config.hiddenValues);
    log.info({ image: config.image }, 'container created');
    return id;
  }

  /**
   * The file a container may leave its termination message in, made empty and writable by
   * any user the container runs as; on disk beside its writable layer, which bounds it as
   * kubelet's is (the state root is a small tmpfs the container must not fill). None
   * without a terminationMessagePath, or with one that is not absolute.
   */
  private terminationFile(
    dir: string,
    config: ContainerConfig,
  ): { file: string; fallbackToLogs: boolean } | undefined {
    const wanted = config.terminationMessage;
    if (!wanted || !path.isAbsolute(wanted.path)) return undefined;
    const file = path.join(dir, TERMINATION_LOG);
    // A warm monitor's directories have it already (see prepareWarm), empty.
    if (!existsSync(file)) {
      writeFileSync(file, '', { flag: 'w' });
      chmodSync(file, 0o666);
    }
    return { file, fallbackToLogs: wanted.fallbackToLogs };
  }

  /** Its writable layer, its log and its termination message file: all on the node's disk. */
  async containerDiskUsage(id: string): Promise<number> {
    const dir = this.records.containerDir(id);
    const layer = await diskUsage(path.join(dir, 'upper'));
    // The container may write its message file without bound (it is read up to 4 KiB).
    const message = await diskUsage(path.join(dir, TERMINATION_LOG));
    return layer + message + (await diskUsage(this.logPath(id)));
  }

  /** Starts a created container under conmon; resolves once the process runs. */
  async startContainer(id: string): Promise<void> {
    await this.starts.busy(() => this.startLocked(id));
  }

  private async startLocked(id: string): Promise<void> {
    await this.locks.run(id, async () => {
      const rec = await this.records.readContainer(id);
      if (!rec) throw new RuntimeError('NotFound', `container ${id} not found`);
      if (rec.startedAt || rec.finishedAt) {
        throw new RuntimeError('RunContainerError', `container ${id} was already started`);
      }
      const { runc, runtime, conmon } = await this.binaries;
      const dir = this.containerStateDir(id);
      const setup = this.setups.get(rec.sandboxId);
      mkdirSync(path.join(this.stateRoot, 'sock'), { recursive: true });
      let pid: number | undefined;
      let startedAt: string | undefined;
      try {
        await setup?.netns.done;
        const paths = { ...this.conmonPaths(id, dir, { runc, runtime, conmon }), stdio: rec.stdio };
        const initPid = hasWarmSpec(paths.bundle)
          ? await this.startWarm(id, rec.name, paths)
          : await createUnderConmon(id, rec.name, paths);
        // The process starts only on a ready network; `runc create` above did not need it.
        pid = initPid;
        const alive = () => processRuns(initPid) && !existsSync(path.join(dir, 'exit', id));
        const started = Promise.resolve(setup?.ready.done).then(() => {
          // The process runs its command from here on: its start, which it may outlive
          // by no more than a moment before it exits (see finishedAtFor).
          startedAt = new Date().toISOString();
          return runc.start(id, alive, initPid);
        });
        started.catch(() => undefined); // awaited below, once the cgroups are known
        // Known before anything else can fail, so that removal finds the cgroups; read
        // while the process starts.
        try {
          rec.cgroupPaths = runc.cgroupPaths(id);
        } catch (err) {
          // runc's record of them is lost; the process's own membership still names them.
          const named = processCgroupDirs(initPid, id);
          rec.cgroupPaths = [...new Set([...(rec.cgroupPaths ?? []), ...named])];
          throw err;
        }
        rec.conmonPid = this.conmonPid(id);
        await started;
      } catch (err) {
        const deleted = await runc.forceDelete(id).then(
          () => true,
          () => false,
        );
        if (pid !== undefined) await endUnmanaged(runc, id, pid, deleted);
        hideIn(err, this.hidden.get(id));
        this.hidden.delete(id);
        // Mostly the container's own settings (a command that is not there): no stack.
        const message = (err as Error).message.trim();
        this.log.warn({ container: id, err: message }, 'start failed');
        // Reported as exited with 128 (StartError), as containerd does for one that never ran.
        await this.recordExit(rec, START_FAILED_EXIT_CODE, new Date(), false, message);
        throw wrap('RunContainerError', `container ${rec.name}`, err);
      }
      this.hidden.delete(id);
      rec.startedAt = startedAt ?? new Date().toISOString();
      await this.records.writeContainer(rec);
      this.log.info({ container: id, sandbox: rec.sandboxId, name: rec.name }, 'container started');
    });
  }

  private conmonPaths(
    id: string,
    dir: string,
    bin: { runc: Runc; runtime: string; conmon: string },
  ): ConmonPaths {
    return {
      conmon: bin.conmon,
      runtime: bin.runtime,
      runtimeRoot: bin.runc.root,
      bundle: path.join(dir, 'bundle'),
      pidFile: path.join(dir, 'container.pid'),
      conmonPidFile: path.join(dir, 'conmon.pid'),
      logPath: this.logPath(id),
      exitDir: path.join(dir, 'exit'),
      persistDir: path.join(dir, 'persist'),
      socketDir: path.join(this.stateRoot, 'sock'),
      conmonLog: path.join(dir, 'conmon.log'),
      logSizeMax: this.logSizeMax,
    };
  }

  /** A warm monitor's directories: the container's, with config.json a FIFO. */
  private async prepareWarm(id: string): Promise<void> {
    const stateDir = this.records.containerStateDir(id);
    for (const sub of CONTAINER_DISK_SUBDIRS)
      mkdirSync(path.join(this.records.containerDir(id), sub), { recursive: true });
    // Made now, while idle, for the container that takes it (see terminationFile).
    const termination = path.join(this.records.containerDir(id), TERMINATION_LOG);
    writeFileSync(termination, '', { flag: 'w' });
    chmodSync(termination, 0o666);
    for (const sub of CONTAINER_STATE_SUBDIRS)
      mkdirSync(path.join(stateDir, sub), { recursive: true });
    mkdirSync(path.join(this.stateRoot, 'sock'), { recursive: true });
    await run('mkfifo', ['-m', '0600', path.join(stateDir, 'bundle', 'config.json')]);
  }

  private async startWarmConmon(id: string): Promise<SyncMessage> {
    const bin = await this.binaries;
    const paths = this.conmonPaths(id, this.records.containerStateDir(id), bin);
    // conmon's name for the container is only its journald field; none is known yet.
    return startConmon(id, id, paths, true);
  }

  /**
   * Starts a container whose create took a warm monitor: its spec into the FIFO, then
   * conmon's report. A monitor this process did not take (a restart came between create
   * and start), or a spec too large for the pipe, is released and the container started
   * afresh under a new conmon.
   */
  private async startWarm(id: string, name: string, paths: ConmonPaths): Promise<number> {
    const spec = readFileSync(path.join(paths.bundle, WARM_SPEC));
    const warm = this.monitors.handOver(id);
    if (warm && spec.length <= MAX_WARM_SPEC) {
      let written = false;
      try {
        writeSpec(warm, spec);
        written = true;
        // runc has the FIFO open; the spec file takes its place for those that read the
        // bundle later (`runc exec` takes its process defaults from it, and so do ours).
        renameSync(path.join(paths.bundle, WARM_SPEC), path.join(paths.bundle, 'config.json'));
      } catch (err) {
        // Nobody reads (its runc is gone) or no FIFO: started afresh below.
        this.log.warn({ container: id, err }, 'could not hand the spec to the warm monitor');
      }
      // Once runc has the spec, its error is the container's, as a fresh start reports it.
      if (written) return pidOf(await withTimeout(warm.synced, SYNC_TIMEOUT_MS), paths);
    }
    this.log.info({ container: id }, 'warm monitor not usable; starting the container afresh');
    if (warm) letGo(warm);
    release(paths.bundle);
    await this.reapConmon(id);
    for (const file of CONMON_BUNDLE_FILES) rmSync(path.join(paths.bundle, file), { force: true });
    rmSync(path.join(paths.exitDir, id), { force: true });
    renameSync(path.join(paths.bundle, WARM_SPEC), path.join(paths.bundle, 'config.json'));
    return createUnderConmon(id, name, paths);
  }

  /** Lets go of the warm monitor a create took and then failed, and of its directories. */
  private async dropWarm(id: string): Promise<void> {
    this.monitors.forget(id);
    release(path.join(this.records.containerStateDir(id), 'bundle'));
    await this.reapConmon(id);
    await this.records.removeContainer(id);
  }

  /** Where conmon writes the container's exit code when it ends. */
  private exitFile(id: string): string {
    return path.join(this.containerStateDir(id), 'exit', id);
  }

  /** The cgroups path runc is given for a container: PARENT/SANDBOX/CONTAINER. */
  private cgroupsPath(sandboxId: string, id: string): string {
    return path.join(this.cgroupParent, sandboxId, id);
  }

  private logPath(id: string): string {
    return path.join(this.records.containerDir(id), 'container.log');
  }

  /**
   * Sends the image's stop signal, waits up to graceSeconds for the exit, then SIGKILL.
   * Resolves once the container has exited; a container that is not running is left as
   * it is.
   */
  async stopContainer(id: string, graceSeconds: number): Promise<void> {
    // Before the lock, which a stop in progress holds for its whole grace period.
    const own = Date.now() + graceSeconds * 1000;
    this.killAt.set(id, Math.min(this.killAt.get(id) ?? Infinity, own));
    await this.locks.run(id, async () => {
      try {
        await this.stopLocked(id, () => this.killAt.get(id) ?? own);
      } finally {
        this.killAt.delete(id);
      }
    });
  }

  /** stopContainer's work, under the container's lock, with SIGKILL due at `killAt()`. */
  private async stopLocked(id: string, killAt: () => number): Promise<void> {
    const rec = await this.records.readContainer(id);
    if (!rec) throw new RuntimeError('NotFound', `container ${id} not found`);
    const { runc } = await this.binaries;
    const status = await this.observe(rec, await this.liveState(rec));
    if (status.state !== 'running') return;

    const log = this.log.child({ container: id, sandbox: rec.sandboxId, name: rec.name });
    const started = Date.now();
    // A stop signal runc refuses (a record from before stopSignalOf) must not keep the
    // container from stopping: it gets SIGKILL at once instead.
    const signalled = await runc.kill(id, rec.stopSignal).catch((err: Error) => {
      log.warn({ signal: rec.stopSignal, err: err.message }, 'stop signal refused');
      return false;
    });
    if (signalled && (await this.waitForExit(id, killAt))) {
      log.info({ signal: rec.stopSignal }, 'container stopped');
    } else {
      await runc.kill(id, 'SIGKILL');
      const deadline = Date.now() + KILL_WAIT_MS;
      if (!(await this.waitForExit(id, () => deadline)) && !(await this.dies(runc, id))) {
        throw new RuntimeError('RunContainerError', `container ${id} did not die on SIGKILL`);
      }
      const graceSeconds = Math.round((Date.now() - started) / 1000);
      log.info({ graceSeconds }, 'container killed after grace period');
    }
    await this.observe(rec, await this.liveState(rec));
  }

  /**
   * Whether runc stops reporting the container running within KILL_WAIT_MS: asked when no
   * conmon is there to write its exit (a killed process takes a moment to end, more on a
   * busy machine, and runc says running until it has).
   */
  private async dies(runc: Runc, id: string): Promise<boolean> {
    const deadline = Date.now() + KILL_WAIT_MS;
    for (;;) {
      if ((await runc.state(id)) !== 'running') return true;
      if (Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, EXIT_POLL_MS));
    }
  }

  /**
   * Resolves true once conmon has written the container's exit file, false at `deadline()`
   * (ms since the epoch, asked again at every check, so it may move) or when conmon is gone
   * without writing it. Wakes on directory events and checks every few milliseconds as
   * well, since events can be missed.
   */
  private async waitForExit(id: string, deadline: () => number): Promise<boolean> {
    const dir = this.containerStateDir(id);
    const file = path.join(dir, 'exit', id);
    let wake: () => void = () => undefined;
    const watcher = watch(path.join(dir, 'exit'), () => wake());
    watcher.on('error', () => undefined);
    try {
      for (;;) {
        if (existsSync(file)) return true;
        const left = deadline() - Date.now();
        if (left <= 0) return false;
        if (!conmonAlive(this.conmonPid(id), id)) return existsSync(file);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, EXIT_POLL_MS));
          wake = () => (clearTimeout(timer), resolve());
        });
      }
    } finally {
      watcher.close();
    }
  }

  /**
   * conmon's pid from its pid file, read synchronously (it is small and on the state root's
   * tmpfs); undefined where the file is missing, unreadable or holds no pid: conmon is then
   * taken for gone, and runc tells the container's state.
   */
  private conmonPid(id: string): number | undefined {
    let text: string;
    try {
      text = readFileSync(path.join(this.containerStateDir(id), 'conmon.pid'), 'utf8');
    } catch {
      return undefined;
    }
    const pid = Number(text.trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  }

  /**
   * Removes the container: kills it if it still runs, deletes its runc state, waits for
   * its conmon, unmounts its root file system and deletes its cgroups and files.
   */
  async removeContainer(id: string): Promise<void> {
    this.hidden.delete(id);
    const rec = await this.records.readContainer(id);
    if (!rec) return;
    await this.stopContainer(id, 0);
    await this.locks.run(id, async () => {
      // A start that was still running when this was called may have added cgroups since.
      // A record from before miniC noted them at creation may name none: then they are
      // sought where a runc started from here would have made them.
      const cgroups =
        (await this.records.readContainer(id))?.cgroupPaths ??
        rec.cgroupPaths ??
        runcCgroupDirs(this.cgroupsPath(rec.sandboxId, id));
      const { runc } = await this.binaries;
      // A warm monitor's runc still waiting for the spec (never started) ends first.
      this.monitors.forget(id);
      release(path.join(this.containerStateDir(id), 'bundle'));
      await runc.forceDelete(id);
      await this.reapConmon(id);
      // Only a container an earlier miniC made has its root file system mounted here.
      await unmountRootfs(this.records.containerDir(id));
      await this.removeCgroups(rec, cgroups);
      await this.records.removeContainer(id);
      this.log.info({ container: id, sandbox: rec.sandboxId, name: rec.name }, 'container removed');
    });
  }

  /** Waits briefly for the container's conmon to exit, then kills it by its pid. */
  private async reapConmon(id: string): Promise<void> {
    const pid = this.conmonPid(id);
    const deadline = Date.now() + CONMON_EXIT_WAIT_MS;
    while (conmonAlive(pid, id)) {
      if (Date.now() > deadline) {
        this.log.warn({ container: id, pid }, 'conmon did not exit; killing it');
        process.kill(pid as number, 'SIGKILL');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, EXIT_POLL_MS));
    }
  }

  /**
   * Removes the container's cgroup directories, which runc deletes only where its state
   * names them, then the pod's directory above each where no other container of the pod
   * uses it. Only directories named PARENT/SANDBOX/CONTAINER after this container are
   * touched, and only rmdir is used: a cgroup that still holds a process stays, and is
   * logged, since nothing here can empty it.
   */
  private async removeCgroups(rec: ContainerRecord, paths: string[]): Promise<void> {
    const log = this.log.child({ container: rec.id, sandbox: rec.sandboxId });
    const own = `/${rec.sandboxId}/${rec.id}`;
    for (const dir of paths) {
      if (!dir.endsWith(own)) {
        log.warn({ dir }, "not removing a cgroup that is not named after the container's");
        continue;
      }
      const left = await removeCgroupDir(dir);
      if (left) log.warn({ dir, err: left }, 'cgroup still in use; left in place');
      // Another container of the pod may still use the pod's cgroup: then it stays.
      else await removeCgroupDir(path.dirname(dir));
    }
  }

  /**
   * Every container's status. `runc list` forks a Go binary (about 10 ms), so it runs only
   * when some started container has no live conmon to vouch for it.
   */
  async listContainers(filter?: ContainerFilter): Promise<ContainerStatus[]> {
    const ids = filter && new Set(filter.sandboxIds);
    const records = await this.records.containers(ids && ((r) => ids.has(r.sandboxId)));
    if (records.length === 0) return [];
    const monitored = await Promise.all(records.map((rec) => this.monitored(rec)));
    const unsure = records.some((rec, i) => rec.startedAt && !rec.finishedAt && !monitored[i]);
    const states = unsure ? await (await this.binaries).runc.list() : new Map<string, string>();
    return Promise.all(
      records.map((rec, i) => this.observe(rec, monitored[i] ? 'running' : states.get(rec.id))),
    );
  }

  /**
   * Whether a started container still runs by conmon's account: conmon stays until it has
   * written the exit file, so no exit file and a live conmon mean the process is there. An
   * exit in between shows in the exit file, which `observe` reads again.
   */
  private async monitored(rec: ContainerRecord): Promise<boolean> {
    if (!rec.startedAt || rec.finishedAt) return false;
    if (existsSync(this.exitFile(rec.id))) return false;
    return conmonAlive(rec.conmonPid ?? this.conmonPid(rec.id), rec.id);
  }

  /**
   * runc's word for the container's state, asked of runc only when conmon cannot vouch:
   * a started container whose exit file is missing and whose conmon lives is running,
   * one with an exit file has stopped, and `observe` looks no further for the others.
   */
  private async liveState(rec: ContainerRecord): Promise<string | undefined> {
    if (!rec.startedAt || rec.finishedAt) return undefined;
    if (existsSync(this.exitFile(rec.id))) return 'stopped';
    if (conmonAlive(rec.conmonPid ?? this.conmonPid(rec.id), rec.id)) return 'running';
    return (await this.binaries).runc.state(rec.id);
  }

  private async isRunning(id: string): Promise<boolean> {
    const rec = await this.records.readContainer(id);
    return (
      rec !== undefined && (await this.observe(rec, await this.liveState(rec))).state === 'running'
    );
  }

  async containerStatus(id: string): Promise<ContainerStatus | undefined> {
    const rec = await this.records.readContainer(id);
    if (!rec) return undefined;
    return this.observe(rec, await this.liveState(rec));
  }

  async execStream(id: string, command: string[], opts: ExecStreamOptions): Promise<ExecSession> {
    const { runc } = await this.binaries;
    if (!(await this.isRunning(id))) {
      throw new RuntimeError('NotFound', `container ${id} is not running`);
    }
    const workDir = path.join(this.stateRoot, 'exec');
    const bundleConfig = path.join(this.containerStateDir(id), 'bundle', 'config.json');
    return startExecStream(
      { runc: runc.binary, root: runc.rootFor(id), id, workDir, bundleConfig },
      command,
      opts,
    );
  }

  async attachStdin(id: string): Promise<AttachedStdin> {
    if (!(await this.isRunning(id))) {
      throw new RuntimeError('NotFound', `container ${id} is not running`);
    }
    if (!(await this.records.readContainer(id))?.stdio?.stdin) {
      throw new RuntimeError('NotFound', `container ${id} was not started with a stdin`);
    }
    return attachStdin(path.join(this.containerStateDir(id), 'bundle'));
  }

  resizeTerminal(id: string, cols: number, rows: number): void {
    resizeTerminal(path.join(this.containerStateDir(id), 'bundle'), cols, rows);
  }

  async execSync(id: string, command: string[], timeoutMs: number): Promise<ExecResult> {
    const { runc } = await this.binaries;
    if (!(await this.isRunning(id))) {
      throw new RuntimeError('NotFound', `container ${id} is not running`);
    }
    const workDir = path.join(this.stateRoot, 'exec');
    await fs.mkdir(workDir, { recursive: true, mode: 0o700 });
    const pidFile = path.join(workDir, `${randomHex(8)}.pid`);
    const done = await runc.exec(id, command, timeoutMs, pidFile);
    const output = (done.stdout + done.stderr).slice(0, 10 * 1024);
    return {
      exitCode: done.timedOut ? undefined : (done.code ?? undefined),
      timedOut: done.timedOut,
      output,
    };
  }

  /**
   * The container's status from its record, conmon's exit file and runc's state. The
   * first time an exit is seen it is written into the record.
   */
  private async observe(rec: ContainerRecord, runcState?: string): Promise<ContainerStatus> {
    let state: ContainerState = rec.finishedAt ? 'exited' : 'created';
    if (rec.startedAt && !rec.finishedAt) {
      const exited = await this.readExit(rec);
      if (exited) {
        state = 'exited';
      } else if (runcState === 'running' || runcState === 'paused') {
        state = 'running';
      } else if (runcState === 'stopped' && (await this.waitForExit(rec.id, inASecond()))) {
        // conmon writes the exit file a moment after runc sees the process end.
        await this.readExit(rec);
        state = 'exited';
      } else {
        state = 'exited';
        await this.recordExit(rec, undefined, new Date(), false);
      }
    }
    return {
      id: rec.id,
      sandboxId: rec.sandboxId,
      name: rec.name,
      image: rec.image,
      imageId: rec.imageId,
      attempt: rec.attempt,
      labels: { ...rec.labels },
      state,
      createdAt: rec.createdAt,
      startedAt: rec.startedAt,
      finishedAt: rec.finishedAt,
      exitCode: rec.exitCode,
      reason: rec.reason,
      message: rec.message,
      logPath: this.logPath(rec.id),
    };
  }

  /** Reads conmon's exit file into the record; false if the container has not exited. */
  private async readExit(rec: ContainerRecord): Promise<boolean> {
    if (rec.finishedAt) return true;
    const dir = this.containerStateDir(rec.id);
    const file = this.exitFile(rec.id);
    let text: string;
    let mtime: Date;
    // Asked on every status listing of a running container, where the file is missing:
    // a stat answered from memory, not a trip through the thread pool.
    if (!existsSync(file)) return false;
    try {
      [text, mtime] = await Promise.all([
        fs.readFile(file, 'utf8'),
        fs.stat(file).then((s) => s.mtime),
      ]);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
    const code = Number.parseInt(text.trim(), 10);
    const oom = existsSync(path.join(dir, 'persist', 'oom'));
    await this.recordExit(rec, Number.isNaN(code) ? undefined : code, mtime, oom);
    return true;
  }

  private async recordExit(
    rec: ContainerRecord,
    exitCode: number | undefined,
    at: Date,
    oom: boolean,
    startError?: string,
  ): Promise<void> {
    rec.exitCode = exitCode;
    rec.finishedAt = finishedAtFor(rec.startedAt, at);
    rec.reason = startError === undefined ? reasonFor(exitCode, oom) : 'StartError';
    rec.message =
      startError ??
      (rec.termination &&
        (await terminationMessage({
          messageFile: rec.termination.file,
          logFile: this.logPath(rec.id),
          fallbackToLogs: rec.termination.fallbackToLogs,
          exitCode,
        })));
    if (exitCode === undefined) {
      this.log.warn({ container: rec.id }, 'container ended without an exit code (conmon gone)');
    }
    await this.records.writeContainer(rec);
  }
}

/**
 * After a failed start, where runc's state of the container is gone or unreadable: runc can
 * then neither end its process (which may have started meanwhile) nor delete it. The
 * process is ended by its pid and, where runc could not delete the container, runc's state
 * directory of it removed once the process is gone.
 */
async function endUnmanaged(runc: Runc, id: string, pid: number, deleted: boolean) {
  // Still the container's process only while it is in the container's cgroup.
  const runs = () => processRuns(pid) && readProcFile(`/proc/${pid}/cgroup`).includes(id);
  if (runs()) process.kill(pid, 'SIGKILL');
  if (deleted) return;
  const deadline = Date.now() + CONMON_EXIT_WAIT_MS;
  while (runs() && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, EXIT_POLL_MS));
  }
  if (!runs()) runc.removeUnloadable(id);
}

/**
 * Removes a cgroup directory (which rmdir does only when it holds no process and no child
 * cgroup); resolves with the error where it is still in use, undefined where it is gone.
 */
async function removeCgroupDir(dir: string): Promise<NodeJS.ErrnoException | undefined> {
  try {
    await fs.rmdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    if (isErrno(err, 'EBUSY', 'ENOTEMPTY')) return err as NodeJS.ErrnoException;
    throw err;
  }
  return undefined;
}

function readProcFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Rejects when `promise` has not settled within `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`conmon did not report within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** A deadline one second from now, for waitForExit. */
function inASecond(): () => number {
  const deadline = Date.now() + 1000;
  return () => deadline;
}
