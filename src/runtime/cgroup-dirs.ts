import { readFileSync } from 'node:fs';
import path from 'node:path';

import { parseMountinfo, type MountEntry } from './fsutil.js';

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

/**
 * The cgroup mounts of a mountinfo text that its paths reach. A mount with another mounted
 * on top of it (at the same point, the other's parent being this one) is covered, and a
 * path into it, or into a mount below it, names whatever covers it.
 */
function visibleCgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts = new Map(parseMountinfo(mountinfo).map((m) => [m.id, m]));
  const covered = new Set<string>();
  for (const [id, m] of mounts) {
    if (m.parent !== id && mounts.get(m.parent)?.point === m.point) covered.add(m.parent);
  }
  const visible: CgroupMount[] = [];
  for (const [id, m] of mounts) {
    if ((m.type !== 'cgroup' && m.type !== 'cgroup2') || isHidden(mounts, covered, id)) continue;
    visible.push({
      root: m.root.split('/').filter((s) => s !== ''),
      point: m.point,
      v2: m.type === 'cgroup2',
      options: new Set(m.superOptions),
    });
  }
  return visible;
}

/** Whether mount `id` or one it hangs below is covered; see visibleCgroupMounts. */
function isHidden(mounts: Map<string, MountEntry>, covered: Set<string>, id: string): boolean {
  if (covered.has(id)) return true;
  const seen = new Set([id]);
  let at = mounts.get(id)!;
  let parent = mounts.get(at.parent);
  while (parent && !seen.has(at.parent)) {
    // A parent at the same point is the one this mount covers: it hides nothing from it.
    if (parent.point !== at.point && covered.has(at.parent)) return true;
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
