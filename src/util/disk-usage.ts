import { promises as fs } from 'node:fs';
import path from 'node:path';

/**
 * The disk space a file or directory tree takes, in bytes, as `du` counts it: allocated
 * blocks, each inode once. Links are not followed and other file systems mounted inside
 * are not entered; what vanishes while it is read counts as nothing. 0 when `root` is
 * missing.
 */
export async function diskUsage(root: string): Promise<number> {
  let top: Awaited<ReturnType<typeof fs.lstat>>;
  try {
    top = await fs.lstat(root);
  } catch {
    return 0;
  }
  const seen = new Set<string>();
  let total = 0;
  const count = (st: { ino: number; nlink: number; blocks: number }) => {
    if (st.nlink > 1) {
      const key = String(st.ino);
      if (seen.has(key)) return;
      seen.add(key);
    }
    total += st.blocks * 512;
  };
  count(top);
  if (!top.isDirectory()) return total;
  const dirs = [root];
  while (dirs.length > 0) {
    const dir = dirs.pop()!;
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const file = path.join(dir, name);
      let st: Awaited<ReturnType<typeof fs.lstat>>;
      try {
        st = await fs.lstat(file);
      } catch {
        continue;
      }
      if (st.dev !== top.dev) continue;
      count(st);
      if (st.isDirectory()) dirs.push(file);
    }
  }
  return total;
}
