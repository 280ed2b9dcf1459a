import type { DnsSettings } from './dns-config.js';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, isAbsolute, join, posix, sep } from 'node:path';
import type { Container, Pod } from '../api/types.js';
import type { Logger } from '../log.js';
import { run } from '../runtime/exec.js';
import { KeyedMutex, mountPoints } from '../runtime/fsutil.js';
import type { Mount } from '../runtime/runtime.js';
import { diskUsage } from '../util/disk-usage.js';
import { ConfigError, expand, type ConfigSource, type EnvContext } from './env.js';
import { prepareHostPath } from './host-path.js';
import { memoryVolumeBytes } from './memory-volume.js';
import { showsPodMetadata, volumePayload, type Payload } from './volume-payloads.js';

/**
 * A pod's volumes on this node, under `<dataDir>/pods/<uid>/volumes/<name>`: emptyDir (a
 * directory, or tmpfs for `medium: Memory`), the volumes of files (configMap, secret,
 * downwardAPI and projected; their content in volume-payloads.ts), written with Kubernetes'
 * `..data` symlink swap so a running container sees a change whole, secret and projected
 * ones on tmpfs so that a Secret's values never reach the disk, and hostPath when the node
 * allows it. The files follow their sources: refresh() after a ConfigMap or Secret changed,
 * refreshPodMetadata() on every sync of the pod, for its labels and annotations. A subPath
 * (or a subPathExpr, expanded with the container's environment) is bind-mounted through an
 * open file under `<dataDir>/pods/<uid>/volume-subpaths/`, so that what runc mounts is what
 * was checked to lie in the volume. Work on one pod's volumes is serialised; different pods
 * proceed concurrently.
 *
 * With a pod fsGroup, as kubelet does: an emptyDir belongs to that group with the setgid
 * bit, and the files of the volumes of files belong to it and are group-readable (a
 * secret's 0400 becomes 0440); the container's processes get the group as a supplemental one.
 *
 * Not supported yet: persistentVolumeClaim and the other sources (the container waits with
 * CreateContainerConfigError naming the type), the serviceAccountToken and
 * clusterTrustBundle sources of projected volumes (the same, naming the source),
 * and fsGroupChangePolicy. A disk-backed emptyDir's sizeLimit is not a bound of the file
 * system: the agent measures it and evicts the pod past it (ephemeral-storage.ts). A subPath of a volume
 * of files sees the content of the moment it was mounted, as in Kubernetes; where it is a
 * directory, an update empties it (the old generation's files are removed).
 */

/** Mounts and unmounts file systems; tests replace it to run without privileges. */
export interface Mounter {
  mountTmpfs(dir: string, options: string[]): Promise<void>;
  /** Bind-mounts `source`, taken as it is (a /proc/PID/fd/N link stays that file). */
  bindMount(source: string, target: string): Promise<void>;
  unmount(dir: string): Promise<void>;
  isMountPoint(dir: string): Promise<boolean>;
}

export interface VolumeOptions {
  /** The agent's data dir. */
  dataDir: string;
  source: ConfigSource;
  /** The node's allocatable resources: what a downwardAPI file shows for a missing limit. */
  allocatable?: EnvContext['allocatable'];
  /** Whether pods may mount paths of this machine; default false. */
  allowHostPath?: boolean;
  log?: Logger;
  mounter?: Mounter;
}

type Obj = Record<string, any>;

/** O_PATH: an open file that pins an inode without reading it (a FIFO does not block). */
const O_PATH = 0o10000000;
const SUBPATHS = 'volume-subpaths';
const DATA_LINK = '..data';
const DATA_TMP = '..data_tmp';
const MAX_SYMLINKS = 40;
/** Longest file path and path element in a volume of files, as in Kubernetes. */
const MAX_PATH = 4096;
const MAX_NAME = 255;
/**
 * Most bytes the configMap, secret, downwardAPI and projected volumes of one pod may hold
 * together: 32 objects at their 1 MiB limit. Kubernetes sets none, but `items` may name one
 * key many times and a pod may mount one Secret many times, so a pod spec of a few KiB could
 * otherwise have the agent write gigabytes, to its own memory where secrets go on tmpfs.
 */
export const MAX_POD_VOLUME_BYTES = 32 * 1024 * 1024;
/** The kinds of volume made of files that the agent writes (see writeAtomic). */
const ATOMIC_KINDS = ['configMap', 'secret', 'downwardAPI', 'projected'];
/** Kinds whose files may hold a Secret's values: on tmpfs (kubelet does the same). */
const TMPFS_KINDS = ['secret', 'projected'];
const SUPPORTED = ['emptyDir', 'hostPath', ...ATOMIC_KINDS];

/** Mounts with mount(8) and reads mount points from /proc/self/mountinfo. */
export const systemMounter: Mounter = {
  async mountTmpfs(dir, options) {
    await run('mount', ['-t', 'tmpfs', '-o', options.join(','), 'tmpfs', dir]);
  },
  async bindMount(source, target) {
    await run('mount', ['--no-canonicalize', '--bind', source, target]);
  },
  async unmount(dir) {
    await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
  },
  async isMountPoint(dir) {
    // mountinfo lists real paths; the data dir may sit below a symlink.
    const real = await fs.realpath(dir).catch(() => dir);
    return mountPoints().includes(real);
  },
};

/** The pod's fsGroup, if it names one (a non-negative integer). */
function fsGroupOf(pod: Pod): number | undefined {
  const group = (pod.spec.securityContext as Obj | undefined)?.fsGroup;
  return Number.isInteger(group) && group >= 0 ? group : undefined;
}

/** The kind of a volume: the one source key beside `name`. */
export function volumeKind(v: Obj): string {
  return Object.keys(v).find((k) => k !== 'name' && v[k] !== undefined && v[k] !== null) ?? '';
}

export class VolumeManager {
  private readonly lock = new KeyedMutex();
  private readonly mounter: Mounter;
  /**
   * The digest of what each volume of files holds, by directory, once written here: a
   * container start then checks an unchanged volume without reading its files.
   */
  private readonly written = new Map<string, string>();
  /** The labels and annotations each pod's volumes last showed, by pod uid. */
  private readonly shownMetadata = new Map<string, string>();
  private readonly context: EnvContext;

  constructor(private readonly opts: VolumeOptions) {
    this.mounter = opts.mounter ?? systemMounter;
    this.context = { source: opts.source, allocatable: opts.allocatable };
  }

  /** The directory that holds every volume of the pod `uid`. */
  podDir(uid: string): string {
    return join(this.opts.dataDir, 'pods', uid);
  }

  /**
   * Sets up every volume of the pod (idempotent) and returns the container's mounts; `env`
   * is the container's environment, which a mount's subPathExpr is expanded with. Throws
   * ConfigError when a volume cannot be made or a mount would leave its volume.
   */
  async mountsFor(pod: Pod, c: Container, env: ReadonlyMap<string, string>): Promise<Mount[]> {
    const uid = pod.metadata.uid!;
    return this.lock.run(uid, async () => {
      const budget = { bytes: MAX_POD_VOLUME_BYTES };
      for (const v of podVolumes(pod)) await this.setUpVolume(pod, v, budget);
      const out: Mount[] = [];
      const mounts = Array.isArray(c.volumeMounts) ? (c.volumeMounts as Obj[]) : [];
      for (const [i, m] of mounts.entries()) out.push(await this.mountOf(pod, c, i, m, env));
      return out;
    });
  }

  /**
   * Rewrites the pod's volumes of files from their sources (a ConfigMap or Secret changed),
   * those already set up; the others are written when a container first mounts them.
   */
  async refresh(pod: Pod): Promise<void> {
    await this.refreshWhere(pod, () => true);
  }

  /**
   * Rewrites the pod's volumes that show its labels or annotations, if these changed since
   * they were last shown here (or the agent started since): meant for every sync of the
   * pod, where an unchanged pod costs a comparison and no file access.
   */
  async refreshPodMetadata(pod: Pod): Promise<void> {
    if (!podVolumes(pod).some(showsPodMetadata)) return;
    const uid = pod.metadata.uid!;
    const shown = JSON.stringify([pod.metadata.labels ?? {}, pod.metadata.annotations ?? {}]);
    if (this.shownMetadata.get(uid) === shown) return;
    await this.refreshWhere(pod, showsPodMetadata);
    this.shownMetadata.set(uid, shown);
  }

  private async refreshWhere(pod: Pod, chosen: (v: Obj) => boolean): Promise<void> {
    const uid = pod.metadata.uid!;
    await this.lock.run(uid, async () => {
      const budget = { bytes: MAX_POD_VOLUME_BYTES };
      for (const v of podVolumes(pod)) {
        if (!ATOMIC_KINDS.includes(volumeKind(v)) || !chosen(v)) continue;
        const dir = this.volumeDir(uid, v.name);
        if (!(await exists(join(dir, DATA_LINK)))) continue;
        await this.setUpVolume(pod, v, budget);
      }
    });
  }

  /** Unmounts and removes every volume of the pod `uid`; call after its containers stopped. */
  async removePodVolumes(uid: string): Promise<void> {
    await this.lock.run(uid, async () => {
      const root = this.podDir(uid);
      for (const dir of await subPathTargets(join(root, SUBPATHS))) {
        if (await this.mounter.isMountPoint(dir)) await this.mounter.unmount(dir);
      }
      const volumes = join(root, 'volumes');
      for (const name of await fs.readdir(volumes).catch(() => [] as string[])) {
        const dir = join(volumes, name);
        if (await this.mounter.isMountPoint(dir)) await this.mounter.unmount(dir);
      }
      const left = mountPoints().filter((m) => m === root || m.startsWith(root + sep));
      if (left.length > 0) throw new Error(`pod ${uid}: still mounted: ${left.join(', ')}`);
      for (const dir of this.written.keys())
        if (dir.startsWith(root + sep)) this.written.delete(dir);
      this.shownMetadata.delete(uid);
      await fs.rm(root, { recursive: true, force: true });
    });
  }

  /** The disk an emptyDir of the pod holds, in bytes; 0 for one in memory (tmpfs). */
  async emptyDirUsage(uid: string, name: string): Promise<number> {
    const dir = this.volumeDir(uid, name);
    if (await this.mounter.isMountPoint(dir).catch(() => false)) return 0;
    return diskUsage(dir);
  }

  private volumeDir(uid: string, name: string): string {
    return join(this.podDir(uid), 'volumes', name);
  }

  /** Sets up the volume `v`; `budget` is what the pod's volumes of files may still hold. */
  private async setUpVolume(pod: Pod, v: Obj, budget: { bytes: number }): Promise<void> {
    const kind = volumeKind(v);
    const dir = this.volumeDir(pod.metadata.uid!, v.name);
    if (kind === 'hostPath') return void (await this.hostPath(v));
    if (!SUPPORTED.includes(kind)) {
      throw new ConfigError(`volume "${v.name}": ${kind} volumes are not supported yet`);
    }
    await fs.mkdir(dir, { recursive: true, mode: 0o750 });
    const group = fsGroupOf(pod);
    if (kind === 'emptyDir') return this.emptyDir(pod, dir, v.emptyDir, group);
    // The volume's root is the container's: any user it runs as reads it (a tmpfs gets
    // the same mode).
    if (!TMPFS_KINDS.includes(kind)) await fs.chmod(dir, 0o755);
    else if (!(await this.mounter.isMountPoint(dir))) {
      await this.mounter.mountTmpfs(dir, ['mode=0755']);
      this.written.delete(dir);
    }
    const payload = volumePayload(pod, v, kind, this.context);
    if (group !== undefined) for (const file of payload.values()) file.mode |= 0o440;
    for (const { data } of payload.values()) budget.bytes -= data.length;
    if (budget.bytes < 0) {
      throw new ConfigError(
        `volume "${v.name}": the pod's configMap, secret, downwardAPI and projected volumes ` +
          `would hold more than ${MAX_POD_VOLUME_BYTES} bytes`,
      );
    }
    const digest = payloadDigest(payload);
    if (this.written.get(dir) === digest) return;
    await writeAtomic(dir, payload, group).catch((err: Error) => {
      throw err instanceof ConfigError
        ? new ConfigError(`volume "${v.name}": ${err.message}`)
        : err;
    });
    this.written.set(dir, digest);
  }

  private async emptyDir(pod: Pod, dir: string, src: Obj, group?: number): Promise<void> {
    await fs.chmod(dir, 0o777);
    if (src?.medium === 'Memory' && !(await this.mounter.isMountPoint(dir))) {
      const options = ['mode=0777'];
      const size = memoryVolumeBytes(pod, src.sizeLimit, this.opts.allocatable?.memory);
      if (size !== undefined) options.push(`size=${size}`);
      await this.mounter.mountTmpfs(dir, options);
    }
    if (group === undefined) return;
    // What the containers make in it belongs to the group too (setgid directory).
    await fs.chown(dir, -1, group);
    await fs.chmod(dir, 0o2777);
  }

  private async hostPath(v: Obj): Promise<string> {
    if (!this.opts.allowHostPath) {
      throw new ConfigError(`volume "${v.name}": hostPath volumes are not allowed on this node`);
    }
    const path = String(v.hostPath.path);
    await prepareHostPath(String(v.name), path, String(v.hostPath.type ?? ''));
    return path;
  }

  private async mountOf(
    pod: Pod,
    c: Container,
    index: number,
    m: Obj,
    env: ReadonlyMap<string, string>,
  ): Promise<Mount> {
    const v = podVolumes(pod).find((x) => x.name === m.name);
    if (!v) throw new ConfigError(`volumeMount ${m.name}: no such volume`);
    const kind = volumeKind(v);
    const root =
      kind === 'hostPath' ? await this.hostPath(v) : this.volumeDir(pod.metadata.uid!, v.name);
    const readOnly = m.readOnly === true || ATOMIC_KINDS.includes(kind);
    const mount = { containerPath: String(m.mountPath), hostPath: root, readOnly };
    if (!m.subPath && !m.subPathExpr) return mount;
    // The expansion may hold a Secret's value: messages show the expression instead.
    const shown = m.subPathExpr ? `subPathExpr ${m.subPathExpr}` : `subPath ${m.subPath}`;
    const sub = m.subPathExpr ? expandSubPathExpr(String(m.subPathExpr), env) : String(m.subPath);
    const resolved = await resolveSubPath(root, sub, shown);
    const target = join(this.podDir(pod.metadata.uid!), SUBPATHS, v.name, c.name, String(index));
    mount.hostPath = await pinSubPath(this.mounter, root, resolved, target, shown);
    return mount;
  }
}

/**
 * Bind-mounts the subPath at `path` onto `target`, a place of the agent's that no
 * container reaches, and returns `target` for runc to mount. A container sharing the
 * volume may swap a directory of the path for a symlink at any time, so the path is
 * opened first and the file opened is checked to lie in the volume: what is mounted is
 * that file, not what the path names by the time runc mounts it (kubelet does the same).
 */
export async function pinSubPath(
  mounter: Mounter,
  root: string,
  path: string,
  target: string,
  shown: string,
): Promise<string> {
  const file = await fs.open(path, O_PATH).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ENOENT' || err.code === 'ENOTDIR' || err.code === 'ELOOP'
      ? new ConfigError(`${shown} changed while it was being mounted`)
      : err;
  });
  try {
    const opened = await fs.readlink(`/proc/self/fd/${file.fd}`);
    if (!within(await fs.realpath(root), opened)) throw escapeError(shown);
    const isDir = (await file.stat()).isDirectory();
    if (await mounter.isMountPoint(target)) await mounter.unmount(target);
    // What an earlier start left (an empty directory or file) goes; never a mounted one.
    await fs
      .rmdir(target)
      .catch(() => fs.rm(target, { force: true }))
      .catch(() => undefined);
    await fs.mkdir(isDir ? target : dirname(target), { recursive: true, mode: 0o750 });
    if (!isDir) await (await fs.open(target, 'a', 0o600)).close();
    await mounter.bindMount(`/proc/${process.pid}/fd/${file.fd}`, target);
  } finally {
    await file.close();
  }
  return target;
}

/** The subPath mount points under `dir`: `<volume>/<container>/<index>`. */
async function subPathTargets(dir: string): Promise<string[]> {
  let out = [dir];
  for (let depth = 0; depth < 3; depth++) {
    const next: string[] = [];
    for (const d of out) {
      for (const name of await fs.readdir(d).catch(() => [] as string[])) next.push(join(d, name));
    }
    out = next;
  }
  return out;
}

/** Unmounts and removes the volumes of every pod under `dataDir`, for `flyces down`. */
export async function removeAllPodVolumes(dataDir: string): Promise<number> {
  const manager = new VolumeManager({ dataDir, source: NO_INPUTS.source });
  const uids = await fs.readdir(join(dataDir, 'pods')).catch(() => [] as string[]);
  for (const uid of uids) await manager.removePodVolumes(uid);
  return uids.length;
}

function podVolumes(pod: Pod): Obj[] {
  return Array.isArray(pod.spec.volumes) ? (pod.spec.volumes as Obj[]) : [];
}

function payloadDigest(payload: Payload): string {
  const hash = createHash('sha256');
  for (const [p, { data, mode }] of [...payload].sort(([a], [b]) => (a < b ? -1 : 1))) {
    hash.update(`${p}\0${mode}\0${data.length}\0`).update(data);
  }
  return hash.digest('hex');
}

async function exists(path: string): Promise<boolean> {
  return fs.lstat(path).then(
    () => true,
    () => false,
  );
}

/**
 * `expr` with each `$(VAR)` replaced by the container's variable, as kubelet expands a
 * subPathExpr: a variable that is unset or empty is an error, and so is a result that is
 * absolute or climbs with `..`. Messages name the expression and variables, not values.
 */
export function expandSubPathExpr(expr: string, env: ReadonlyMap<string, string>): string {
  const missing = new Set<string>();
  const out = expand(expr, (name) => {
    const value = env.get(name);
    if (!value) missing.add(name);
    return value ?? '';
  });
  if (missing.size > 0) {
    throw new ConfigError(`subPathExpr ${expr}: missing value for ${[...missing].join(', ')}`);
  }
  if (isAbsolute(out) || out.split('/').includes('..')) {
    throw new ConfigError(`subPathExpr ${expr} must expand to a relative path without '..'`);
  }
  return out;
}

/**
 * `payload` with every path in its clean form (no `.` or empty elements, no trailing `/`),
 * the form a container sees. Throws ConfigError for a path that is empty, absolute, climbs
 * with `..`, starts with `..` (the names the writer keeps for itself), is longer than the
 * file system takes, or is a file that another path needs as its directory.
 */
function cleanPayload(payload: Payload): Payload {
  const out: Payload = new Map();
  for (const [p, file] of payload) {
    const why = pathProblem(p);
    if (why) throw new ConfigError(`invalid file path ${JSON.stringify(p)}: ${why}`);
    out.set(posix.normalize(p).replace(/\/+$/, ''), file);
  }
  for (const p of out.keys()) {
    for (let i = p.indexOf('/'); i > 0; i = p.indexOf('/', i + 1)) {
      if (!out.has(p.slice(0, i))) continue;
      throw new ConfigError(`file path ${p.slice(0, i)} is also the directory of ${p}`);
    }
  }
  return out;
}

function pathProblem(p: string): string | undefined {
  const parts = p.split('/').filter((e) => e !== '' && e !== '.');
  if (p.startsWith('/')) return 'must be a relative path';
  if (p.includes('\0')) return 'must not contain a NUL byte';
  if (parts.length === 0) return 'must name a file';
  if (parts.includes('..')) return "must not contain '..'";
  if (parts[0].startsWith('..')) return "must not start with '..'";
  if (Buffer.byteLength(p) > MAX_PATH) return `must have at most ${MAX_PATH} bytes`;
  if (parts.some((e) => Buffer.byteLength(e) > MAX_NAME)) {
    return `each element must have at most ${MAX_NAME} bytes`;
  }
  return undefined;
}

/**
 * Writes `payload` into `dir` so that readers see the old files or the new, never a mix:
 * the files go into a fresh `..<time>` directory, `..data` is switched to it with one
 * rename, and each top-level name is a symlink through `..data`. Nothing is written when
 * the content is unchanged; a write that fails leaves the old files as they were. The
 * files belong to `group` when one is given (a pod's fsGroup).
 */
export async function writeAtomic(dir: string, files: Payload, group?: number): Promise<boolean> {
  const payload = cleanPayload(files);
  const current = await fs.readlink(join(dir, DATA_LINK)).catch(() => undefined);
  if (current && (await sameContent(join(dir, current), payload))) {
    await syncUserLinks(dir, payload);
    return false;
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '_').replace('T', '_').replace('Z', '');
  const fresh = await fs.mkdtemp(join(dir, `..${stamp}.`));
  try {
    await writeFiles(fresh, payload, group);
  } catch (err) {
    await fs.rm(fresh, { recursive: true, force: true });
    throw err;
  }
  await fs.rm(join(dir, DATA_TMP), { force: true });
  await fs.symlink(fresh.slice(dir.length + 1), join(dir, DATA_TMP));
  await fs.rename(join(dir, DATA_TMP), join(dir, DATA_LINK));
  await syncUserLinks(dir, payload);
  // The generation replaced goes, and any an agent that stopped half-way left behind.
  for (const name of await fs.readdir(dir)) {
    if (!name.startsWith('..') || name === DATA_LINK || join(dir, name) === fresh) continue;
    await fs.rm(join(dir, name), { recursive: true, force: true });
  }
  return true;
}

async function writeFiles(dir: string, payload: Payload, group?: number): Promise<void> {
  const made = new Set([dir]);
  for (const [p, { data, mode }] of payload) {
    const file = join(dir, p);
    if (!made.has(dirname(file))) {
      await fs.mkdir(dirname(file), { recursive: true, mode: 0o755 });
      made.add(dirname(file));
    }
    await fs.writeFile(file, data, { mode });
    if (group !== undefined) await fs.chown(file, -1, group);
    await fs.chmod(file, mode);
  }
  await fs.chmod(dir, 0o755);
}

/** Makes a `name -> ..data/name` link for each top-level name and drops links no longer used. */
async function syncUserLinks(dir: string, payload: Payload): Promise<void> {
  const wanted = new Set([...payload.keys()].map((p) => p.split('/')[0]));
  const present = await fs.readdir(dir);
  for (const name of present) {
    if (name.startsWith('..') || wanted.has(name)) continue;
    const st = await fs.lstat(join(dir, name));
    if (st.isSymbolicLink()) await fs.unlink(join(dir, name));
  }
  const have = new Set(present);
  for (const name of wanted) {
    if (!have.has(name)) await fs.symlink(`${DATA_LINK}/${name}`, join(dir, name));
  }
}

async function sameContent(dir: string, payload: Payload): Promise<boolean> {
  const found = await listFiles(dir, '').catch(() => undefined);
  if (!found || found.length !== payload.size) return false;
  for (const p of found) {
    const want = payload.get(p);
    if (!want) return false;
    const st = await fs.stat(join(dir, p));
    if ((st.mode & 0o7777) !== want.mode) return false;
    if (!(await fs.readFile(join(dir, p))).equals(want.data)) return false;
  }
  return true;
}

async function listFiles(dir: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else out.push(rel);
  }
  return out;
}

/**
 * The host path of `subPath` within the volume at `root`, resolved one component at a time
 * with lstat so that no symlink can lead out: `..` and absolute paths are refused, a
 * symlink's target is followed only if relative and inside the volume, and missing
 * components are created as directories (as kubelet does). The result has no symlinks.
 * Messages name the path as `shown`, never by its parts.
 *
 * A container that shares the volume can still swap a checked directory for a symlink
 * after this check: pinSubPath closes that window.
 */
export async function resolveSubPath(
  root: string,
  subPath: string,
  shown = `subPath ${subPath}`,
): Promise<string> {
  if (isAbsolute(subPath) || subPath.split('/').includes('..') || subPath.includes('\0')) {
    throw new ConfigError(`${shown} must be a relative path without '..' or NUL bytes`);
  }
  const base = await fs.realpath(root);
  const pending = subPath.split('/').filter((p) => p && p !== '.');
  let cur = base;
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      cur = dirname(cur);
      if (!within(base, cur)) throw escapeError(shown);
      continue;
    }
    const next = join(cur, part);
    const st = await fs.lstat(next).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      return undefined;
    });
    if (!st) {
      await fs.mkdir(next, { mode: 0o755 });
    } else if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw new ConfigError(`${shown}: too many symlinks`);
      const target = await fs.readlink(next);
      if (isAbsolute(target)) throw escapeError(shown);
      pending.unshift(...target.split('/').filter((p) => p && p !== '.'));
      continue;
    } else if (!st.isDirectory() && pending.length > 0) {
      throw new ConfigError(`${shown} runs through a file, not a directory`);
    }
    cur = next;
  }
  return cur;
}

function within(base: string, path: string): boolean {
  return path === base || path.startsWith(base + sep);
}

function escapeError(shown: string): ConfigError {
  return new ConfigError(`${shown} leads outside the volume`);
}

/** What the agent hands `containerConfig` beyond the pod and the container. */
export interface ContainerInputs extends EnvContext {
  /** Sets up the pod's volumes; without it a container with volumeMounts cannot start. */
  volumes?: VolumeManager;
  /** Most processes one container may run; kubelet's podPidsLimit, per container here. */
  pidsLimit?: number;
  /** Whether this node runs privileged containers; default false. */
  allowPrivileged?: boolean;
  /** Hears event-worthy notes, such as envFrom keys skipped as invalid names. */
  warn?(message: string): void;
  /** Where pods' DNS queries go (their resolv.conf); none without it. */
  dns?: DnsSettings;
}

/** Inputs for an agent that knows no ConfigMaps, Secrets or volumes. */
export const NO_INPUTS: ContainerInputs = {
  source: { configMap: () => undefined, secret: () => undefined },
};
