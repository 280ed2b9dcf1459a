import { promises as fs } from 'node:fs';
import path from 'node:path';

/**
 * The addresses held in a pod network's lease directory, sorted: files named by an address
 * that name a holder. A released address keeps its file, emptied (see PodNetwork.lease).
 */
export async function heldLeases(dir: string): Promise<string[]> {
  const held: string[] = [];
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(name)) continue;
    const text = await fs.readFile(path.join(dir, name), 'utf8').catch(() => '');
    if (text.trim() !== '') held.push(name);
  }
  return held.sort();
}
