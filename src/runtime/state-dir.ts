import { createHash } from 'node:crypto';
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmdirSync,
  rmSync,
  statfsSync,
} from 'node:fs';
import path from 'node:path';

import type { Logger } from '../log.js';
import { run } from './exec.js';
import { mountPoints, parseMountinfo } from './fsutil.js';

/**
 * Where an agent keeps its runtime's state root (see MiniCOptions.stateRoot): a directory
 * of its own under /run/flyces, on a tmpfs. containerd and CRI-O keep the same kind of
 * state under /run, which systemd machines mount as a tmpfs; where /run is on disk (as on
 * some VMs and containers), the agent mounts a small tmpfs of its own there. The files
 * are small (records, a bundle's config, runc's state, pid and exit files) and every
 * container start writes several, which a journalled file system makes slow when the disk
 * is busy. A reboot empties it, as it ends every container those files describe; the
 * containers' writable layers and logs and the pod address leases stay on disk, under the
 * data dir, and the next runtime removes what no record names (MiniC.removeLeftovers).
 */

const STATE_PARENT = '/run/flyces';
const TMPFS_MAGIC = 0x01021994;
/** A ceiling, not a reservation: a tmpfs takes memory only for what it holds. */
const TMPFS_SIZE = '256m';

/**
 * The state root of the agent whose data dir is `dataDir`: one per data dir, whichever
 * path names it (through a symlink or not), so that `flyces down` finds the records
 * `flyces up` wrote; otherwise it would take the containers for a reboot's leftovers.
 */
export function runtimeStateDir(dataDir: string): string {
  const key = createHash('sha256').update(canonicalPath(dataDir)).digest('hex').slice(0, 16);
  return path.join(STATE_PARENT, key);
}

/** `p` with its symlinks resolved, as far as it exists; the rest as it will be made. */
function canonicalPath(p: string): string {
  const rest: string[] = [];
  for (let dir = path.resolve(p); ; dir = path.dirname(dir)) {
    try {
      return path.join(realpathSync(dir), ...rest);
    } catch {
      if (dir === path.dirname(dir)) return path.resolve(p);
      rest.unshift(path.basename(dir));
    }
  }
}

/**
 * Makes `dir` and sees that it is on a tmpfs, mounting one there when it is not. A
 * directory that already holds something stays as it is (its containers' state is in
 * it), and so does one where mounting fails: the runtime works on disk too, only slower.
 * Nor is anything mounted from a mount namespace of this process's own (a systemd unit
 * with PrivateTmp or ProtectSystem runs in one): the tmpfs would end with the process,
 * and with it the state of containers that keep running.
 */
export async function ensureStateDir(dir: string, log: Logger): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (statfsSync(dir).type === TMPFS_MAGIC) return;
  if (readdirSync(dir).length > 0) {
    log.warn({ dir }, 'runtime state stays on disk: its directory is not empty');
    return;
  }
  if (!inInitMountNamespace()) {
    log.warn(
      { dir },
      'runtime state stays on disk: this process has a mount namespace of its own, and a ' +
        'tmpfs mounted in it would end with the process while its containers run',
    );
    return;
  }
  try {
    const options = `mode=0700,size=${TMPFS_SIZE},nosuid,nodev`;
    await run('mount', ['-t', 'tmpfs', '-o', options, 'flyces-state', dir]);
  } catch (err) {
    log.warn({ dir, err: (err as Error).message }, 'runtime state stays on disk: no tmpfs');
  }
}

/** Whether this process shares PID 1's mount namespace, where a mount outlives the process. */
function inInitMountNamespace(): boolean {
  try {
    return readlinkSync('/proc/self/ns/mnt') === readlinkSync('/proc/1/ns/mnt');
  } catch {
    // PID 1's namespace links can be closed even to root (as on some VMs); its mount table
    // is not, and a mount has the same id in two tables only if they are one namespace's.
  }
  try {
    return rootMountId('/proc/self/mountinfo') === rootMountId('/proc/1/mountinfo');
  } catch {
    // Not known: mount nothing that could be lost.
    return false;
  }
}

/** The id of the mount at "/" (the last one, if several are stacked) in a mountinfo file. */
function rootMountId(file: string): string {
  const root = parseMountinfo(readFileSync(file, 'utf8'))
    .filter((m) => m.point === '/')
    .at(-1);
  if (!root) throw new Error(`${file} lists no mount at /`);
  return root.id;
}

/** Unmounts the tmpfs at `dir`, if one is mounted there, and deletes the directory. */
export async function releaseStateDir(dir: string): Promise<void> {
  while (mountPoints().includes(dir)) await run('umount', [dir]);
  rmSync(dir, { recursive: true, force: true });
  try {
    rmdirSync(path.dirname(dir));
  } catch {
    // Another agent's state is there, or it was never made.
  }
}
