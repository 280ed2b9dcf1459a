import { randomBytes } from 'node:crypto';
import {
  constants,
  promises as fs,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

/** Small file-system helpers shared by the image store and the runtime. */

/**
 * Writes `value` as JSON to `file` so that a reader sees either the old or the new
 * content, never a partial one: write a temporary file beside it, fsync, rename.
 */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomHex(6)}.tmp`);
  const handle = await fs.open(tmp, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(JSON.stringify(value, null, 2) + '\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    // A full disk fails the write, not the open: the empty file must not stay behind.
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Replaces `file` with `value` as JSON, at once and without fsync: a reader, or this
 * process after a crash of its own, sees the old or the new content, never a partial one
 * (temporary file, then rename). Only a crash of the whole machine may lose the write, or
 * leave a new file empty. For the runtime's records, small files written on every
 * container start: a machine crash ends every container they describe anyway, and their
 * reader takes an unreadable record for a missing one. Synchronous, as a few hundred bytes
 * are written sooner than one trip through the thread pool takes.
 */
export function replaceJsonSync(file: string, value: unknown): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomHex(6)}.tmp`);
  try {
    writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Parses a JSON file; undefined when it does not exist. */
export async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** readJson without the thread pool: for small files on a tmpfs, on a path that waits for them. */
export function readJsonSync<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

/** Names of the entries of a directory; empty when it does not exist. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
}

export function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && codes.includes(code);
}

export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/**
 * Serialises async work per key within this process: `run(key, fn)` starts fn once every
 * earlier call for the same key has settled. Different keys run concurrently.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const current = previous.then(fn, fn);
    const tail = current.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await current;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** The absolute path of an executable: a path as given, or a name looked up on PATH. */
export async function findExecutable(name: string): Promise<string> {
  if (name.includes('/')) return path.resolve(name);
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const candidate = path.join(dir, name);
    try {
      await fs.access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this PATH entry.
    }
  }
  throw new Error(`${name} not found on PATH`);
}

/** One line of a mountinfo file (proc(5)), its paths unescaped. */
export interface MountEntry {
  id: string;
  parent: string;
  /** The directory of the mounted file system that is mounted here. */
  root: string;
  point: string;
  type: string;
  superOptions: string[];
}

/** The mounts of a mountinfo text, in its order; lines without the " - " separator are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const mounts: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const [before, after] = line.split(' - ');
    if (!after) continue;
    const [id, parent, , root, point] = before.split(' ');
    const [type, , superOptions = ''] = after.split(' ');
    mounts.push({
      id,
      parent,
      root: unescapeMountField(root),
      point: unescapeMountField(point),
      type,
      superOptions: superOptions.split(','),
    });
  }
  return mounts;
}

/** Mount points of this process's mount namespace, unescaped. */
export function mountPoints(): string[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).map((m) => m.point);
}

/** A field of /proc/PID/mountinfo: spaces, tabs, newlines and backslashes come octal-escaped. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}
