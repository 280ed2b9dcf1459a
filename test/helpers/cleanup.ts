import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { promisify } from 'node:util';

/** Clean-up steps the runtime's process tests share, for what a failed test left. */

const exec = promisify(execFile);

/** Lazily unmounts every mount at or below `dir`. */
export async function unmountUnder(dir: string): Promise<void> {
  const mounts = await fs.readFile('/proc/self/mounts', 'utf8');
  for (const line of mounts.split('\n')) {
    const target = line.split(' ')[1];
    if (target?.startsWith(dir)) await exec('umount', ['-l', target]).catch(() => undefined);
  }
}

/**
 * Removes the cgroup directories a test's runtime made under `parent` (its cgroupParent)
 * in every hierarchy, deepest first; ones still in use stay.
 */
export async function removeCgroupsUnder(parent: string): Promise<void> {
  const found = await exec('find', [
    ...['/sys/fs/cgroup', '-maxdepth', '8', '-depth', '-type', 'd'],
    ...['-path', `*/${parent}*`],
  ]).catch(() => ({ stdout: '' }));
  for (const dir of found.stdout.split('\n').filter((d) => d)) {
    await fs.rmdir(dir).catch(() => undefined);
  }
}
