import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { listDir, readJson, replaceJsonSync } from './fsutil.js';
import type { ContainerStatus, ContainerStdio, HostAlias } from './runtime.js';

/**
 * What miniC keeps under its state root, one JSON file per sandbox and per container, each
 * replaced atomically (see replaceJsonSync): the facts a new MiniC reads back after the
 * agent restarted. The state root is a tmpfs for an agent (see state-dir.ts), so a reboot,
 * which ends every container, empties it too. Records an earlier miniC wrote under its
 * root on disk are read and kept there.
 */

export interface SandboxRecord {
  id: string;
  podUid: string;
  podName: string;
  podNamespace: string;
  hostname: string;
  fqdn?: string;
  hostAliases?: HostAlias[];
  labels: Record<string, string>;
  attempt: number;
  netns: string;
  /** The pod uses the node's network namespace: no netns and no attachment of its own. */
  hostNetwork?: boolean;
  /**
   * The id the network was attached under, when not the sandbox's id (a spare network's).
   * The names of this field and the next are from when CNI plugins attached pods.
   */
  cniId?: string;
  /** The network it was attached to (pod-network.ts' NetworkConfig), so detaching undoes that. */
  cniConfig: Record<string, unknown>;
  ip?: string;
  state: 'ready' | 'notready';
  createdAt: string;
}

/** What miniC keeps on disk for a container: its status less what is read live. */
export type ContainerRecord = Omit<ContainerStatus, 'state' | 'logPath'> & {
  stopSignal: string;
  /**
   * The container's cgroup directories, removed with it: where runc will make them from its
   * creation on, then runc's own account of them once its start has read runc's state.
   */
  cgroupPaths?: string[];
  /** The pid of the container's conmon, from its pid file once started. */
  conmonPid?: number;
  /** The image layer directories its root file system stacks (see rootfs.ts). */
  layerDirs?: string[];
  /** The file mounted at its terminationMessagePath, read when it ends (termination.ts). */
  termination?: { file: string; fallbackToLogs: boolean };
  /** Its stdin and terminal (ContainerConfig.stdio), which its monitor is started with. */
  stdio?: ContainerStdio;
};

/**
 * When a container finished, for its record: `exitedAt` (conmon's exit file's time), but
 * never before `startedAt`. The file's time comes from the kernel's coarse clock, a few ms
 * behind the one the start was read from, so a container that exits at once could
 * otherwise show as finished before it started.
 */
export function finishedAtFor(startedAt: string | undefined, exitedAt: Date): string {
  const started = startedAt === undefined ? NaN : Date.parse(startedAt);
  return started > exitedAt.getTime() ? startedAt! : exitedAt.toISOString();
}

/** One sandbox per pod uid and attempt, as `runSandbox` derives it. */
export function sandboxId(podUid: string, attempt: number): string {
  return createHash('sha256').update(`${podUid}/${attempt}`).digest('hex');
}

const ID = /^[a-f0-9]{64}$/;

interface Loaded {
  sandboxes: Map<string, SandboxRecord>;
  containers: Map<string, ContainerRecord>;
}

/**
 * Reads and writes the records of one miniC root. The files are read once, on first use;
 * from then on this process's copy answers, and every write goes to the file first and
 * then to the copy. That holds because one process drives a root at a time (see MiniC);
 * a MiniC made later, in this process or another, reads the files afresh. Callers get
 * copies, so a record changes only through a write.
 */
export class RuntimeRecords {
  private loaded?: Promise<Loaded>;
  /** Ids whose records an earlier miniC wrote on disk; they are kept there. */
  private readonly earlier = new Set<string>();

  /** `stateRoot` holds the records; `diskRoot` the containers' writable layers and logs. */
  constructor(
    private readonly stateRoot: string,
    private readonly diskRoot: string = stateRoot,
  ) {}

  /** The sandbox's directory under the state root: its record and /etc files. */
  sandboxDir(id: string): string {
    return path.join(this.stateRoot, 'sandboxes', id);
  }

  /** The container's directory under the state root: its record, bundle and conmon's files. */
  containerStateDir(id: string): string {
    return path.join(this.stateRoot, 'containers', id);
  }

  /** The container's directory on disk: its writable layer and its log. */
  containerDir(id: string): string {
    return path.join(this.diskRoot, 'containers', id);
  }

  private sandboxFile(id: string): string {
    const root = this.earlier.has(id) ? this.diskRoot : this.stateRoot;
    return path.join(root, 'sandboxes', id, 'sandbox.json');
  }

  private containerFile(id: string): string {
    const root = this.earlier.has(id) ? this.diskRoot : this.stateRoot;
    return path.join(root, 'containers', id, 'container.json');
  }

  private load(): Promise<Loaded> {
    this.loaded ??= (async () => {
      const loaded: Loaded = { sandboxes: new Map(), containers: new Map() };
      const roots = [this.stateRoot];
      if (this.diskRoot !== this.stateRoot) roots.push(this.diskRoot);
      for (const root of roots) {
        await this.loadKind(root, 'sandboxes', 'sandbox.json', loaded.sandboxes);
        await this.loadKind(root, 'containers', 'container.json', loaded.containers);
      }
      return loaded;
    })();
    return this.loaded;
  }

  /** Reads the records of one kind under `root` that `into` does not have yet. */
  private async loadKind<T>(
    root: string,
    kind: string,
    name: string,
    into: Map<string, T>,
  ): Promise<void> {
    for (const id of (await listDir(path.join(root, kind))).filter(isRuntimeId)) {
      if (into.has(id)) continue;
      const rec = await readRecord<T>(path.join(root, kind, id, name));
      if (!rec) continue;
      into.set(id, rec);
      if (root !== this.stateRoot) this.earlier.add(id);
    }
  }

  /** Whether an earlier miniC wrote this record (under the root on disk). */
  async isEarlier(id: string): Promise<boolean> {
    await this.load();
    return this.earlier.has(id);
  }

  async readSandbox(id: string): Promise<SandboxRecord | undefined> {
    return copySandbox((await this.load()).sandboxes.get(id));
  }

  async writeSandbox(rec: SandboxRecord): Promise<void> {
    const { sandboxes } = await this.load();
    replaceJsonSync(this.sandboxFile(rec.id), rec);
    sandboxes.set(rec.id, copySandbox(rec)!);
  }

  /** Removes the sandbox's directories and its record. */
  async removeSandbox(id: string): Promise<void> {
    const { sandboxes } = await this.load();
    sandboxes.delete(id);
    this.earlier.delete(id);
    await fs.rm(this.sandboxDir(id), { recursive: true, force: true });
    await fs.rm(path.join(this.diskRoot, 'sandboxes', id), { recursive: true, force: true });
  }

  /** Every sandbox record, in no order. */
  /** Every sandbox's record, or those `which` keeps (chosen before they are copied). */
  async sandboxes(which?: (rec: SandboxRecord) => boolean): Promise<SandboxRecord[]> {
    const all = [...(await this.load()).sandboxes.values()];
    return (which ? all.filter(which) : all).map((rec) => copySandbox(rec)!);
  }

  async readContainer(id: string): Promise<ContainerRecord | undefined> {
    return copyContainer((await this.load()).containers.get(id));
  }

  /** Writes the record of a new container. */
  async addContainer(rec: ContainerRecord): Promise<void> {
    const { containers } = await this.load();
    replaceJsonSync(this.containerFile(rec.id), rec);
    containers.set(rec.id, copyContainer(rec)!);
  }

  /**
   * Writes a container's record anew. A container removed meanwhile (its status can be
   * observed while it is being removed) stays removed: nothing is written for it.
   */
  async writeContainer(rec: ContainerRecord): Promise<void> {
    const { containers } = await this.load();
    if (!containers.has(rec.id)) return;
    replaceJsonSync(this.containerFile(rec.id), rec);
    if (containers.has(rec.id)) containers.set(rec.id, copyContainer(rec)!);
  }

  /** Removes the container's directories (state and disk) and its record. */
  async removeContainer(id: string): Promise<void> {
    const { containers } = await this.load();
    containers.delete(id);
    this.earlier.delete(id);
    await fs.rm(this.containerStateDir(id), { recursive: true, force: true });
    await fs.rm(this.containerDir(id), { recursive: true, force: true });
  }

  /** Every container record under the root, in no order. */
  /** Every container's record, or those `which` keeps (chosen before they are copied). */
  async containers(which?: (rec: ContainerRecord) => boolean): Promise<ContainerRecord[]> {
    const all = [...(await this.load()).containers.values()];
    return (which ? all.filter(which) : all).map((rec) => copyContainer(rec)!);
  }
}

/**
 * A record file's content; undefined when it is missing or unreadable, which only a crash
 * of the machine leaves behind (see replaceJsonSync), after which nothing it described runs.
 */
async function readRecord<T>(file: string): Promise<T | undefined> {
  try {
    return await readJson<T>(file);
  } catch (err) {
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** Whether `name` has the form of a sandbox's or container's id (64 hex digits). */
export function isRuntimeId(name: string): boolean {
  return ID.test(name);
}

// Copies as deep as the records are: a caller may change what it got, not the kept one.
// (The CNI config is never changed after the sandbox is made, so it is shared.)
function copySandbox(rec: SandboxRecord | undefined): SandboxRecord | undefined {
  return rec && { ...rec, labels: { ...rec.labels } };
}

function copyContainer(rec: ContainerRecord | undefined): ContainerRecord | undefined {
  if (!rec) return undefined;
  const out = { ...rec, labels: { ...rec.labels } };
  if (rec.cgroupPaths) out.cgroupPaths = [...rec.cgroupPaths];
  if (rec.layerDirs) out.layerDirs = [...rec.layerDirs];
  if (rec.termination) out.termination = { ...rec.termination };
  if (rec.stdio) out.stdio = { ...rec.stdio };
  return out;
}
