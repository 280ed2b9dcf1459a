import { promises as fs } from 'node:fs';
import path from 'node:path';
import { run } from './exec.js';

/**
 * A container's root file system: the image's layers as overlayfs lower directories with
 * an upper and work directory of the container's own, mounted at `DIR/bundle/rootfs`.
 */

export async function mountRootfs(dir: string, layerDirs: string[]): Promise<void> {
  const lower = [...layerDirs].reverse();
  if (lower.length === 0) {
    await fs.mkdir(path.join(dir, 'empty'));
    lower.push(path.join(dir, 'empty'));
  }
  const upper = path.join(dir, 'upper');
  const work = path.join(dir, 'work');
  const options = `lowerdir=${lower.join(':')},upperdir=${upper},workdir=${work}`;
  // The kernel takes mount options in one page.
  if (options.length >= 4096) {
    throw new Error(`image has too many layers (${lower.length}) for one overlay mount here`);
  }
  await run('mount', ['-t', 'overlay', 'overlay', '-o', options, path.join(dir, 'bundle/rootfs')]);
}

export async function unmountRootfs(dir: string): Promise<void> {
  const target = path.join(dir, 'bundle', 'rootfs');
  const mounts = await fs.readFile('/proc/self/mounts', 'utf8');
  if (!mounts.split('\n').some((line) => line.split(' ')[1] === target)) return;
  await run('umount', [target]);
}
