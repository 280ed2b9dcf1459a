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
  return dirsOfMembership(procCgroup, visibleCgroupMounts(mountinfo), (cgroup) =>
    cgroup.at(-1) === id ? cgroup : undefined,
  );
}

/** This process's cgroup membership and cgroup mounts, read once (see runcCgroupDirs). */
let thisProcess: { procCgroup: string; mounts: CgroupMount[] } | undefined;

/**
 * The directories, one per cgroup hierarchy, where runc puts a container whose spec names
 * `cgroupsPath` when this process or a child of it runs runc (conmon and runc stay in the
 * cgroups of the agent that starts them): a relative path goes below the runner's own
 * cgroup in each hierarchy, an absolute one below the hierarchy's root. Known before runc
 * runs, so that a container whose `runc create` failed, or whose runc was killed before
 * miniC read runc's state, still has its directories removed.
 *
 * This process's membership and mounts are read at the first call only (parsing the mounts
 * costs about a tenth of a millisecond, too much for every container's creation): a process
 * moved to other cgroups while it runs, or a hierarchy mounted later, is not followed, and
 * the directories named are then those its first cgroups would have held.
 */
export function runcCgroupDirs(cgroupsPath: string): string[] {
  try {
    thisProcess ??= {
      procCgroup: readFileSync('/proc/self/cgroup', 'utf8'),
      mounts: visibleCgroupMounts(readFileSync('/proc/self/mountinfo', 'utf8')),
    };
  } catch {
    return [];
  }
  return runcDirs(thisProcess.procCgroup, thisProcess.mounts, cgroupsPath);
}

/** runcCgroupDirs for a runner whose /proc/PID/cgroup and mountinfo are given. */
export function runcCgroupDirsOf(
  procCgroup: string,
  mountinfo: string,
  cgroupsPath: string,
): string[] {
  return runcDirs(procCgroup, visibleCgroupMounts(mountinfo), cgroupsPath);
}

function runcDirs(procCgroup: string, mounts: CgroupMount[], cgroupsPath: string): string[] {
  const rel = cgroupsPath.split('/').filter((s) => s !== '');
  // runc would resolve these; a path that leaves its parent is none of the runtime's.
  if (rel.length === 0 || rel.some((s) => s === '..' || s === '.')) return [];
  const absolute = cgroupsPath.startsWith('/');
  return dirsOfMembership(procCgroup, mounts, (own) => (absolute ? rel : [...own, ...rel]));
}

/**
 * For each hierarchy a process is in (a line of its /proc/PID/cgroup), the directories
 * through which `mounts` reach the cgroup that `cgroupOf` makes of the process's own one
 * (its path split into segments), where it makes one.
 */
function dirsOfMembership(
  procCgroup: string,
  mounts: CgroupMount[],
  cgroupOf: (own: string[]) => string[] | undefined,
): string[] {
  const dirs = new Set<string>();
  for (const line of procCgroup.split('\n')) {
    const match = /^\d+:([^:]*):(\/.*)$/.exec(line);
    if (!match) continue;
    const segments = cgroupOf(match[2].split('/').filter((s) => s !== ''));
    if (!segments) continue;
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
