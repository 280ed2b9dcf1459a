import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  promises as fs,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { run } from './exec.js';
import { isErrno } from './fsutil.js';

/**
 * A container's root file system: the image's layers as overlayfs lower directories with
 * an upper and work directory of the container's own.
 *
 * The overlay is not mounted on the host. It is the first mount of the container's OCI
 * spec, with destination "/": runc mounts it over the (empty) `DIR/bundle/rootfs` inside
 * the container's own mount namespace, before the other mounts and before pivot_root. So
 * starting a container costs no `mount` process, the mount ends with the container's
 * namespace, and nothing is left mounted on the host if the agent dies. The layers a
 * container uses are therefore not visible in the host's mount table; the runtime tells
 * the image store which ones are in use (see MiniC.layersInUse).
 *
 * Below the image's layers lies one more, shared by every container: the mount-point layer,
 * with an empty directory or file at each path a container always has something mounted
 * on (/proc, /dev, /sys and the pod's /etc/hosts, /etc/hostname, /etc/resolv.conf; see
 * spec.ts). Where an image lacks one of them, runc finds it there instead of creating it,
 * so a start writes nothing into the container's writable layer (seven new files and
 * directories for an image that has none of them: on a busy ext4 disk each new inode can
 * cost a millisecond). Being the lowest layer, it shows only where the image has nothing:
 * an image's own file, directory or symlink at any of these paths hides it, as the
 * image's upper layers hide its lower ones. Docker's per-container "init" layer serves
 * the same end.
 */

const MOUNT_POINT_DIRS = ['proc', 'dev', 'sys', 'etc'];
const MOUNT_POINT_FILES = ['etc/hosts', 'etc/hostname', 'etc/resolv.conf'];

/**
 * The mount-point layer under `root` (ROOT/mountpoints), made on first use and checked
 * whole. It is made under a temporary name and then renamed, so it is either complete or
 * absent; its modes are set outright, whatever the process's umask. Whatever is found at
 * its path and is not exactly such a layer (a file, a symlink, a directory with other
 * content or modes) is refused rather than shown to every container.
 */
export function ensureMountPointLayer(root: string): string {
  const dir = path.join(root, 'mountpoints');
  if (!lstatSync(dir, { throwIfNoEntry: false })) makeMountPointLayer(root, dir);
  checkMountPointLayer(dir);
  return dir;
}

/** A half-made layer this much older than now was left by a process that died making it. */
const ABANDONED_AFTER_MS = 60_000;

function makeMountPointLayer(root: string, dir: string): void {
  mkdirSync(root, { recursive: true });
  removeAbandoned(root);
  const making = mkdtempSync(path.join(root, '.mountpoints-'));
  try {
    for (const sub of MOUNT_POINT_DIRS) mkdirSync(path.join(making, sub));
    for (const file of MOUNT_POINT_FILES) writeFileSync(path.join(making, file), '');
    for (const sub of ['', ...MOUNT_POINT_DIRS]) chmodSync(path.join(making, sub), 0o755);
    for (const file of MOUNT_POINT_FILES) chmodSync(path.join(making, file), 0o644);
    renameSync(making, dir);
  } catch (err) {
    rmSync(making, { recursive: true, force: true });
    // Made meanwhile by another caller: theirs is as good (and is checked as ours is).
    if (!isErrno(err, 'EEXIST', 'ENOTEMPTY') || !existsSync(dir)) throw err;
  }
}

/**
 * Removes the temporary directories of layers whose making was cut short (the process
 * died before the rename). One being made now by another caller is younger, and stays.
 */
function removeAbandoned(root: string): void {
  for (const name of readdirSync(root)) {
    if (!name.startsWith('.mountpoints-')) continue;
    const st = lstatSync(path.join(root, name), { throwIfNoEntry: false });
    if (st?.isDirectory() && Date.now() - st.mtimeMs > ABANDONED_AFTER_MS)
      rmSync(path.join(root, name), { recursive: true, force: true });
  }
}

/** Throws unless `dir` holds exactly the mount-point layer's entries, with their modes. */
function checkMountPointLayer(dir: string): void {
  const refuse = (what: string) =>
    new Error(
      `${dir} is not the mount-point layer every container has at the bottom of its root ` +
        `file system (${what}); remove it, and it is made again`,
    );
  const expected: [string, 'directory' | 'file'][] = [
    ['', 'directory'],
    ...MOUNT_POINT_DIRS.map((d): [string, 'directory'] => [d, 'directory']),
    ...MOUNT_POINT_FILES.map((f): [string, 'file'] => [f, 'file']),
  ];
  for (const [rel, kind] of expected) {
    const name = rel || '.';
    const st = lstatSync(path.join(dir, rel), { throwIfNoEntry: false });
    if (!st) throw refuse(`${name} is missing`);
    const fits = kind === 'directory' ? st.isDirectory() : st.isFile() && st.size === 0;
    if (!fits) throw refuse(`${name} is not an empty ${kind}`);
    const mode = kind === 'directory' ? 0o755 : 0o644;
    if ((st.mode & 0o7777) !== mode) {
      throw refuse(`${name} has mode ${(st.mode & 0o7777).toString(8)}, not ${mode.toString(8)}`);
    }
    if (kind === 'directory') {
      const want = expected.filter(([r]) => r !== rel && path.dirname(r) === (rel || '.'));
      const extra = readdirSync(path.join(dir, rel)).filter(
        (e) => !want.some(([r]) => path.basename(r) === e),
      );
      if (extra.length > 0) throw refuse(`${name} also holds ${extra.join(', ')}`);
    }
  }
}

/**
 * The mount-point layer of a runtime root as container creates use it: made or checked
 * whole once, then, for each create, only that the same directory is still there, unchanged
 * at its top (one lstat: its device, inode and change time). A layer removed meanwhile is
 * made again; one replaced by anything else is checked again, and refused if it is not
 * the layer. (A change deeper inside it, such as a file added to its etc/, is not seen
 * until the runtime restarts: checking it whole costs some 60 µs a create.)
 */
export class MountPointLayer {
  private readonly dir: string;
  private checked?: { dev: number; ino: number; ctimeMs: number };

  constructor(private readonly root: string) {
    this.dir = path.join(root, 'mountpoints');
  }

  path(): string {
    const st = lstatSync(this.dir, { throwIfNoEntry: false });
    const known = this.checked;
    if (
      st &&
      known &&
      st.dev === known.dev &&
      st.ino === known.ino &&
      st.ctimeMs === known.ctimeMs
    ) {
      return this.dir;
    }
    this.checked = undefined;
    ensureMountPointLayer(this.root);
    const made = lstatSync(this.dir);
    this.checked = { dev: made.dev, ino: made.ino, ctimeMs: made.ctimeMs };
    return this.dir;
  }
}

/** The spec mount of the container's root file system (see above). */
export interface RootfsMount {
  destination: '/';
  type: 'overlay';
  source: 'overlay';
  options: string[];
}

/**
 * The overlay of a container in `dir`: the image's layers (`layerDirs`, base first) on top
 * of the mount-point layer (see ensureMountPointLayer), which also serves as the lower
 * directory overlayfs needs for an image without layers.
 */
export function rootfsMount(dir: string, layerDirs: string[], mountPoints: string): RootfsMount {
  const lower = [...layerDirs].reverse();
  lower.push(mountPoints);
  const upper = path.join(dir, 'upper');
  const work = path.join(dir, 'work');
  // Overlay options split on ',' and lowerdir on ':'; such a path would name other ones.
  const odd = [...lower, upper, work].find((d) => /[,:\\]/.test(d));
  if (odd !== undefined) {
    throw new Error(`overlay cannot name the directory "${odd}" (it has ',', ':' or '\\')`);
  }
  const options = `lowerdir=${lower.join(':')},upperdir=${upper},workdir=${work}`;
  // The kernel takes mount options in one page, counted in bytes (paths may not be ASCII).
  const bytes = Buffer.byteLength(options);
  if (bytes >= 4096) {
    throw new Error(
      `image has too many layers (${layerDirs.length}) for one overlay mount here: ` +
        `its options take ${bytes} bytes, the limit is 4095`,
    );
  }
  return { destination: '/', type: 'overlay', source: 'overlay', options: [options] };
}

/**
 * Unmounts a root file system mounted on the host, as miniC did before the overlay moved
 * into the container's namespace: containers made then may still be around.
 */
export async function unmountRootfs(dir: string): Promise<void> {
  const target = path.join(dir, 'bundle', 'rootfs');
  const mounts = await fs.readFile('/proc/self/mounts', 'utf8');
  if (!mounts.split('\n').some((line) => line.split(' ')[1] === target)) return;
  await run('umount', [target]);
}
