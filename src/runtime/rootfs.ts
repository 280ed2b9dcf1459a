import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  promises as fs,
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
 * The mount-point layer under `root` (ROOT/mountpoints), made on first use. It is made
 * whole under a temporary name and then renamed, so it is either complete or absent; its
 * modes are set outright, whatever the process's umask.
 */
export function ensureMountPointLayer(root: string): string {
  const dir = path.join(root, 'mountpoints');
  if (existsSync(dir)) return dir;
  mkdirSync(root, { recursive: true });
  const making = mkdtempSync(path.join(root, '.mountpoints-'));
  try {
    for (const sub of MOUNT_POINT_DIRS) mkdirSync(path.join(making, sub));
    for (const file of MOUNT_POINT_FILES) writeFileSync(path.join(making, file), '');
    for (const sub of ['', ...MOUNT_POINT_DIRS]) chmodSync(path.join(making, sub), 0o755);
    for (const file of MOUNT_POINT_FILES) chmodSync(path.join(making, file), 0o644);
    renameSync(making, dir);
  } catch (err) {
    rmSync(making, { recursive: true, force: true });
    // Made meanwhile by another caller: theirs is as good.
    if (!isErrno(err, 'EEXIST', 'ENOTEMPTY') || !existsSync(dir)) throw err;
  }
  return dir;
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
