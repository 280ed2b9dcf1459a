import { promises as fs } from 'node:fs';
import path from 'node:path';
import { readJson, replaceJsonSync } from '../runtime/fsutil.js';

/**
 * IP forwarding (`net.ipv4.ip_forward`), which a node needs on for Service rules and routes
 * to other nodes' pods, and which flyCes hands back as it found it. A machine that did not
 * forward before gets a record in the data dir, written before forwarding is turned on;
 * whoever finds the record later (the clean stop, `flyces down`, the next start on the
 * data dir) knows that flyCes turned it on, even when the process that did was killed.
 * Without a record, forwarding was on already and flyCes never turns it off.
 *
 * The record notes the kernel's boot id: forwarding is off again after a reboot, so a
 * record from an earlier boot is dropped without touching it (the machine's own start-up
 * settings may have turned it on since).
 *
 * The setting belongs to the machine (its network namespace), not to a data dir: two
 * clusters on one machine each see what the other left, and the one that turned
 * forwarding on turns it off when it stops, under the other's feet.
 */

/** The record's name in the data dir. */
export const FORWARDING_RECORD = 'ip-forward.json';

/** The files claimForwarding and releaseForwarding read and write. */
export interface ForwardingFiles {
  /** The data dir's record, `DATA_DIR/ip-forward.json`. */
  record: string;
  /** The sysctl file, /proc/sys/net/ipv4/ip_forward; tests point it at a file of their own. */
  ipForwardFile?: string;
  /** The kernel's boot id; a missing or empty file means "unknown", taken as this boot. */
  bootIdFile?: string;
}

const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';
const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';

/** The files of a data dir, with the real sysctl file. */
export function forwardingFiles(dataDir: string): ForwardingFiles {
  return { record: path.join(dataDir, FORWARDING_RECORD) };
}

async function bootId(files: ForwardingFiles): Promise<string> {
  return (await fs.readFile(files.bootIdFile ?? BOOT_ID_FILE, 'utf8').catch(() => '')).trim();
}

/**
 * Whether the record says flyCes turned forwarding on during this boot. A record of an
 * earlier boot is removed here. One that cannot be read is taken as this boot's: it was
 * written whole (temporary file, then rename), so only someone else could have spoiled it.
 */
async function recorded(files: ForwardingFiles): Promise<boolean> {
  let noted: { bootId?: unknown } | undefined;
  try {
    noted = await readJson<{ bootId?: unknown }>(files.record);
  } catch {
    return true;
  }
  if (noted === undefined) return false;
  const now = await bootId(files);
  if (now === '' || typeof noted?.bootId !== 'string' || noted.bootId === now) return true;
  await fs.rm(files.record, { force: true });
  return false;
}

async function isOn(sysctl: string): Promise<boolean> {
  return (await fs.readFile(sysctl, 'utf8')).trim() !== '0';
}

/**
 * Turns forwarding on unless it is on already, recording first that flyCes did. Resolves to
 * whether flyCes owns forwarding: it turned it on now, or the record says an earlier run on
 * this data dir did (that run was killed before it could turn it off; the record is kept
 * and forwarding turned on again if someone turned it off meanwhile).
 */
export async function claimForwarding(files: ForwardingFiles): Promise<boolean> {
  const sysctl = files.ipForwardFile ?? IP_FORWARD;
  const ours = await recorded(files);
  if (await isOn(sysctl)) return ours;
  if (!ours) replaceJsonSync(files.record, { bootId: await bootId(files), at: new Date() });
  await fs.writeFile(sysctl, '1\n');
  return true;
}

/**
 * Turns forwarding off if the record says flyCes turned it on, then removes the record.
 * Resolves to whether it did. Safe to call when nothing was claimed, and twice.
 */
export async function releaseForwarding(files: ForwardingFiles): Promise<boolean> {
  if (!(await recorded(files))) return false;
  await fs.writeFile(files.ipForwardFile ?? IP_FORWARD, '0\n');
  await fs.rm(files.record, { force: true });
  return true;
}
