import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';

/** How many entries of a directory are looked at at once. */
const BATCH = 256;

/**
 * The disk space a file or directory tree takes, in bytes, as `du` counts it: allocated
 * blocks, each inode once. Links are not followed and other file systems mounted inside
 * are not entered; what vanishes while it is read counts as nothing. 0 when `root` is
 * missing. A directory's entries are looked at BATCH at a time through the thread pool, so
 * a big tree costs little of the event loop and not one round trip per file.
 */
export async function diskUsage(root: string): Promise<number> {
  const top = await fs.lstat(root).catch(() => undefined);
  if (!top) return 0;
  const seen = new Set<number>();
  let total = 0;
  const count = (st: Stats) => {
    if (st.nlink > 1 && !st.isDirectory()) {
      if (seen.has(st.ino)) return;
      seen.add(st.ino);
    }
    total += st.blocks * 512;
  };
  count(top);
  if (!top.isDirectory()) return total;
  const dirs = [root];
  while (dirs.length > 0) {
    const dir = dirs.pop()!;
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    for (let i = 0; i < names.length; i += BATCH) {
      const files = names.slice(i, i + BATCH).map((name) => path.join(dir, name));
      const stats = await Promise.all(files.map((file) => fs.lstat(file).catch(() => undefined)));
      stats.forEach((st, k) => {
        if (!st || st.dev !== top.dev) return;
        count(st);
        if (st.isDirectory()) dirs.push(files[k]);
      });
    }
  }
  return total;
}
