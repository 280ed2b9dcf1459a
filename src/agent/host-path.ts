import { promises as fs, type Stats } from 'node:fs';
import { ConfigError } from './env.js';

/**
 * A hostPath volume's `type`, checked (and for the *OrCreate types, the path made) before
 * the container starts, as kubelet does: Directory, File, Socket, CharDevice and
 * BlockDevice must find that kind of file at the path (links followed); DirectoryOrCreate
 * makes a missing directory with its parents (0755) and FileOrCreate a missing empty file
 * (0644; not its parent directory, which kubelet does not make either). Without a type
 * nothing is checked, and a missing path is made as a directory, as containerd does for
 * the mounts it is given (runc would fail the start instead).
 */

const KINDS: Record<string, { is: (st: Stats) => boolean; noun: string }> = {
  Directory: { is: (st) => st.isDirectory(), noun: 'a directory' },
  DirectoryOrCreate: { is: (st) => st.isDirectory(), noun: 'a directory' },
  File: { is: (st) => st.isFile(), noun: 'a file' },
  FileOrCreate: { is: (st) => st.isFile(), noun: 'a file' },
  Socket: { is: (st) => st.isSocket(), noun: 'a socket' },
  CharDevice: { is: (st) => st.isCharacterDevice(), noun: 'a character device' },
  BlockDevice: { is: (st) => st.isBlockDevice(), noun: 'a block device' },
};

/** What is wrong with what is at a hostPath for its type; undefined when it fits. */
export function hostPathProblem(type: string, st: Stats | undefined): string | undefined {
  if (type === '') return undefined;
  const kind = KINDS[type];
  // API validation refuses other types; a pod stored before it was there still fails here.
  if (!kind) return `has an unknown type ${JSON.stringify(type)}`;
  if (!st) return 'does not exist';
  return kind.is(st) ? undefined : `is not ${kind.noun}`;
}

/** Makes the path where its type asks for it, checks it; throws ConfigError naming the volume. */
export async function prepareHostPath(volume: string, path: string, type: string): Promise<void> {
  let st = await statOrUndefined(path);
  if (!st && (type === '' || type === 'DirectoryOrCreate' || type === 'FileOrCreate')) {
    try {
      if (type === 'FileOrCreate') await (await fs.open(path, 'wx', 0o644)).close();
      else await fs.mkdir(path, { recursive: true, mode: 0o755 });
    } catch (err) {
      // Made meanwhile by someone else: what is there now is checked below.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new ConfigError(
          `volume "${volume}": could not create hostPath ${path}: ${(err as Error).message}`,
        );
      }
    }
    st = await statOrUndefined(path);
  }
  const problem = hostPathProblem(type, st);
  if (problem) {
    throw new ConfigError(`volume "${volume}": hostPath type check failed: ${path} ${problem}`);
  }
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await fs.stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new ConfigError(`hostPath ${path}: ${(err as Error).message}`);
  }
}
