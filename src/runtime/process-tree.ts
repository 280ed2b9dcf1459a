import { promises as fs, readFileSync } from 'node:fs';

/**
 * Ending a command that runs inside a container together with everything it started. Killing
 * only the command leaves its children behind: the container's init adopts them and they run
 * on for as long as the container does (`sh -c 'tail -f x | grep y'` keeps its tail and grep),
 * and while they hold the stdio pipes that `runc exec` copies from, runc does not exit either.
 */

/** Rounds of looking for new children before the processes found so far are killed anyway. */
const MAX_ROUNDS = 20;

/**
 * Kills `pid` and all its descendants with SIGKILL. Each round stops (SIGSTOP) the processes
 * found so far, so that none can fork behind the scan, and looks for their children again;
 * when a round finds no new one, all are killed (SIGKILL ends stopped processes too). A
 * process that has already gone is skipped. Resolves once the signals are sent.
 */
export async function killProcessTree(pid: number): Promise<void> {
  const found = new Set<number>([pid]);
  let fresh = [pid];
  for (let round = 0; round < MAX_ROUNDS && fresh.length > 0; round++) {
    for (const p of fresh) signal(p, 'SIGSTOP');
    const next: number[] = [];
    for (const p of fresh) {
      for (const child of await childrenOf(p)) {
        if (found.has(child)) continue;
        found.add(child);
        next.push(child);
      }
    }
    fresh = next;
  }
  for (const p of found) signal(p, 'SIGKILL');
}

/** The direct children of a process, from every one of its threads; none once it is gone. */
export async function childrenOf(pid: number): Promise<number[]> {
  let tasks: string[];
  try {
    tasks = await fs.readdir(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const task of tasks) {
    const text = await fs.readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '');
    for (const word of text.split(/\s+/)) if (word) children.push(Number(word));
  }
  return children;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Gone already: nothing left to stop or kill.
  }
}

/** Whether a process exists and has not ended (a zombie has ended). */
export function processRuns(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
