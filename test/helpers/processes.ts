import { promises as fs } from 'node:fs';

/** Pids of the processes whose command line names `text` (a container id: its conmon, its runc). */
export async function processesOf(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) pids.push(Number(entry));
  }
  return pids;
}

/**
 * What `fn` gives once it gives something (a throw counts as nothing yet), asked every
 * `pollMs`; fails naming `what` after `ms`.
 */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  ms = 10_000,
  pollMs = 25,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
