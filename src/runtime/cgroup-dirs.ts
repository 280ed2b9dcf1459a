import { readFileSync } from 'node:fs';
import path from 'node:path';

import { unescapeMountField } from './fsutil.js';

/**
 * The cgroup directories of container `id` that process `pid` is in, from the process's own
 * membership (/proc/PID/cgroup) and this process's cgroup mounts: what removal needs where
 * runc's record of them is lost. Only directories named after the container are taken.
 */
export function processCgroupDirs(pid: number, id: string): string[] {
  try {
    return cgroupDirsOf(
      readFileSync(`/proc/${pid}/cgroup`, 'utf8'),
      readFileSync('/proc/self/mountinfo', 'utf8'),
      id,
    );
  } catch {
    return [];
  }
}

/** processCgroupDirs on the texts of /proc/PID/cgroup and /proc/self/mountinfo. */
export function cgroupDirsOf(procCgroup: string, mountinfo: string, id: string): string[] {
  const mounts = visibleCgroupMounts(mountinfo);
  const dirs = new Set<string>();
  for (const line of procCgroup.split('\n')) {
    const match = /^\d+:([^:]*):(\/.*)$/.exec(line);
    if (!match) continue;
    const segments = match[2].split('/').filter((s) => s !== '');
    if (segments.at(-1) !== id) continue;
    const controllers = match[1] === '' ? [] : match[1].split(',');
    for (const m of mounts) {
      const fits =
        controllers.length === 0 ? m.v2 : !m.v2 && controllers.every((c) => m.options.has(c));
      const rel = fits ? segmentsBelow(m.root, segments) : undefined;
      if (rel) dirs.add(path.posix.join(m.point, ...rel));
    }
  }
  return [...dirs];
}

interface CgroupMount {
  /** The directory of the hierarchy mounted, split into segments. */
  root: string[];
  point: string;
  v2: boolean;
  options: Set<string>;
}

/** A line of mountinfo: its parent mount's id, its fields before " - " and after. */
interface MountLine {
  parent: string;
  fields: string[];
  fs: string[];
}

/**
 * The cgroup mounts of a mountinfo text that its paths reach. A mount with another mounted
 * on top of it (at the same point, the other's parent being this one) is covered, and a
 * path into it, or into a mount below it, names whatever covers it.
 */
function visibleCgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts = new Map<string, MountLine>();
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    if (!after) continue;
    const fields = before.split(' ');
    mounts.set(fields[0], { parent: fields[1], fields, fs: after.split(' ') });
  }
  const covered = new Set<string>();
  for (const [id, m] of mounts) {
    if (m.parent !== id && mounts.get(m.parent)?.fields[4] === m.fields[4]) covered.add(m.parent);
  }
  const visible: CgroupMount[] = [];
  for (const [id, { fields, fs }] of mounts) {
    const [type, , superOptions = ''] = fs;
    if ((type !== 'cgroup' && type !== 'cgroup2') || isHidden(mounts, covered, id)) continue;
    visible.push({
      root: unescapeMountField(fields[3])
        .split('/')
        .filter((s) => s !== ''),
      point: unescapeMountField(fields[4]),
      v2: type === 'cgroup2',
      options: new Set(superOptions.split(',')),
    });
  }
  return visible;
}

/** Whether mount `id` or one it hangs below is covered; see visibleCgroupMounts. */
function isHidden(mounts: Map<string, MountLine>, covered: Set<string>, id: string): boolean {
  if (covered.has(id)) return true;
  const seen = new Set([id]);
  let at = mounts.get(id)!;
  let parent = mounts.get(at.parent);
  while (parent && !seen.has(at.parent)) {
    // A parent at the same point is the one this mount covers: it hides nothing from it.
    if (parent.fields[4] !== at.fields[4] && covered.has(at.parent)) return true;
    seen.add(at.parent);
    at = parent;
    parent = mounts.get(at.parent);
  }
  return false;
}

/**
 * The segments of a cgroup's path below a mount's root, or undefined where the cgroup is not
 * strictly below it. Both are compared as written, never resolved: a `..` (a cgroup outside
 * the reader's cgroup namespace) only matches the same `..`, and none may follow the root.
 */
function segmentsBelow(root: string[], cgroup: string[]): string[] | undefined {
  if (cgroup.length <= root.length || root.some((s, i) => cgroup[i] !== s)) return undefined;
  const rel = cgroup.slice(root.length);
  return rel.some((s) => s === '..' || s === '.') ? undefined : rel;
}
