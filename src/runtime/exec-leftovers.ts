import { promises as fs } from 'node:fs';
import path from 'node:path';

import { killProcessTree, processRuns } from './process-tree.js';

/**
 * What the exec sessions of an agent that was killed leave: each session has a directory (a
 * stream, `<dir>/pid`) or a pid file (`<name>.pid`, a probe or hook) under the runtime's exec
 * directory, where runc wrote the pid of the command it ran in the container. The clients of
 * those sessions went with the agent, so their commands are ended, as a session whose client
 * goes away is, and the files removed.
 */

/** Linux reports process start times in these ticks (USER_HZ), whatever the kernel's HZ. */
const TICKS_PER_SECOND = 100;

/**
 * Slack when comparing a process's start with its pid file's time: the boot time is known to
 * the second only. A pid taken over by another process is only reused after the pid space
 * wraps, long after the file was written.
 */
const START_SLACK_MS = 1_500;

/**
 * Ends the commands named by exec entries older than `before` (ms since the epoch) and removes
 * the entries; returns the pids it ended. Newer entries belong to sessions of this process.
 */
export async function endExecLeftovers(workDir: string, before: number): Promise<number[]> {
  let entries: string[];
  try {
    entries = await fs.readdir(workDir);
  } catch {
    return [];
  }
  const bootMs = await bootTimeMs();
  const ended: number[] = [];
  for (const entry of entries) {
    const where = path.join(workDir, entry);
    const pidFile = entry.endsWith('.pid') ? where : path.join(where, 'pid');
    const made = await fs.stat(where).catch(() => undefined);
    if (!made || made.mtimeMs >= before) continue;
    const pid = await readPid(pidFile);
    const written = await fs.stat(pidFile).catch(() => undefined);
    if (pid && written && bootMs !== undefined) {
      const started = await startTimeMs(pid, bootMs);
      if (started !== undefined && started <= written.mtimeMs + START_SLACK_MS) {
        if (processRuns(pid)) {
          await killProcessTree(pid);
          ended.push(pid);
        }
      }
    }
    await fs.rm(where, { recursive: true, force: true });
  }
  return ended;
}

async function readPid(file: string): Promise<number | undefined> {
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 1 ? pid : undefined;
}

/** When the kernel booted (ms since the epoch), from /proc/stat's btime. */
async function bootTimeMs(): Promise<number | undefined> {
  const text = await fs.readFile('/proc/stat', 'utf8').catch(() => '');
  const match = /^btime (\d+)$/m.exec(text);
  return match ? Number(match[1]) * 1000 : undefined;
}

/** When process `pid` started (ms since the epoch); undefined once it is gone. */
async function startTimeMs(pid: number, bootMs: number): Promise<number | undefined> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  // Fields after the command name, which may hold spaces: state is field 3, starttime 22.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[22 - 3]);
  return Number.isFinite(ticks) ? bootMs + (ticks * 1000) / TICKS_PER_SECOND : undefined;
}
