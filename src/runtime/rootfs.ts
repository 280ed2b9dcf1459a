import { mkdirSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { run } from './exec.js';

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
 */

/** The spec mount of the container's root file system (see above). */
export interface RootfsMount {
  destination: '/';
  type: 'overlay';
  source: 'overlay';
  options: string[];
}

export function rootfsMount(dir: string, layerDirs: string[]): RootfsMount {
  const lower = [...layerDirs].reverse();
  if (lower.length === 0) {
    // overlayfs needs a lower directory; an image without layers gets an empty one.
    mkdirSync(path.join(dir, 'empty'), { recursive: true });
    lower.push(path.join(dir, 'empty'));
  }
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
      `image has too many layers (${lower.length}) for one overlay mount here: ` +
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
