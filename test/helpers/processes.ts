import { promises as fs } from 'node:fs';
import path from 'node:path';

import { REPO } from './cluster.js';

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

/**
 * A script for another process that makes a MiniC of the built runtime (its options as
 * JSON in argv[2], the image store's root as `imagesRoot`), runs `steps` (with `m` the
 * MiniC and `sleep(ms)` at hand), then stays alive until it is killed.
 */
export function minicChildScript(steps: string[]): string {
  const built = (file: string) => JSON.stringify(path.join(REPO, 'dist/src/runtime', file));
  return [
    `import { ImageStore } from ${built('images.js')};`,
    `import { MiniC } from ${built('minic.js')};`,
    'const o = JSON.parse(process.argv[2]);',
    'const images = new ImageStore({ root: o.imagesRoot });',
    'const m = new MiniC({ ...o, images });',
    'const sleep = (ms) => new Promise((r) => setTimeout(r, ms));',
    ...steps,
    'setInterval(() => undefined, 1000);',
  ].join('\n');
}
