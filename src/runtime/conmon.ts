import path from 'node:path';
import { spawn } from 'node:child_process';
import { closeSync, openSync, promises as fs, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';

import { DEFAULT_PATH } from './exec.js';
import { isErrno } from './fsutil.js';
import type { ContainerStdio } from './runtime.js';
import { inHelper } from './spawner.js';

/**
 * Starts a container's monitor. conmon (2.1) daemonises, runs `runc create` for the
 * bundle, keeps the container's stdout/stderr in a CRI-format log file and writes the
 * exit code to `exitDir/<id>` when the container ends, so the container outlives the
 * process that started it. It reports the container's pid (or the runtime's error) as
 * one JSON line on the "sync pipe", fd 3 here; the caller then runs `runc start`.
 */

export interface ConmonPaths {
  conmon: string;
  runtime: string;
  /** runc's --root: miniC's own state directory, never the host's default. */
  runtimeRoot: string;
  bundle: string;
  pidFile: string;
  conmonPidFile: string;
  logPath: string;
  exitDir: string;
  persistDir: string;
  socketDir: string;
  /** conmon's own diagnostics go here (it writes nothing on success). */
  conmonLog: string;
  /**
   * Bytes the container's log may reach; conmon then starts the file afresh, so the log
   * holds the newest output up to this size (older output is dropped, not kept aside).
   */
  logSizeMax?: number;
  /** The container's stdin and terminal; none (stdin from /dev/null, no terminal) if absent. */
  stdio?: ContainerStdio;
}

export const SYNC_TIMEOUT_MS = 60_000;

/** Runs `runc create` under a new conmon; resolves with the container's pid. */
export async function createUnderConmon(id: string, name: string, p: ConmonPaths): Promise<number> {
  return pidOf(await startConmon(id, name, p), p);
}

/**
 * The container's pid from conmon's sync message, or the runtime's error (from the
 * message, or else from conmon's log).
 */
export async function pidOf(message: SyncMessage, p: ConmonPaths): Promise<number> {
  if (message.data > 0) return message.data;
  const detail = runtimeMessage(message.message ?? (await readTail(p.conmonLog)));
  throw new Error(`runtime failed to create the container: ${detail}`);
}

/** One line of runc's own log, as it writes them to stderr: `time="…" level=error msg="…"`. */
const RUNC_LOG_LINE = /^time="[^"]*" level=\w+ msg="((?:[^"\\]|\\.)*)"/;

/**
 * What runc said, without the time and level of its log lines: the same failure then reads
 * the same each time, so its Events count up instead of piling up one per try.
 */
export function runtimeMessage(text: string): string {
  const lines = text
    .split('\n')
    .map((line) => {
      const logged = RUNC_LOG_LINE.exec(line.trim());
      return logged ? logged[1].replace(/\\(.)/g, '$1') : line.trim();
    })
    .filter((line) => line !== '');
  return lines.join('; ') || 'no details';
}

/**
 * Starts conmon for container `id` and resolves with its sync message. A `warm` one's
 * `runc create` waits for the bundle's config.json to be written (a FIFO, see
 * warm-monitor.ts): it has no time limit and does not keep this process alive.
 */
export async function startConmon(
  id: string,
  name: string,
  p: ConmonPaths,
  warm = false,
): Promise<SyncMessage> {
  const args = [
    '--api-version',
    '1',
    '-c',
    id,
    '-u',
    id,
    '-n',
    name,
    '-r',
    p.runtime,
    '-b',
    p.bundle,
    '-p',
    p.pidFile,
    '-P',
    p.conmonPidFile,
    '-l',
    `k8s-file:${p.logPath}`,
    '--exit-dir',
    p.exitDir,
    '--persist-dir',
    p.persistDir,
    '--socket-dir-path',
    p.socketDir,
    '--log-level',
    'error',
    '--runtime-arg',
    `--root=${p.runtimeRoot}`,
  ];
  if (p.logSizeMax !== undefined) args.push('--log-size-max', String(p.logSizeMax));
  // conmon keeps the pipe's other end: the container's reads wait rather than end.
  if (p.stdio?.stdin) args.push('--stdin', ...(p.stdio.stdinOnce ? [] : ['--leave-stdin-open']));
  if (p.stdio?.tty) args.push('--terminal');
  // Spawned by the spawn helper process, as runCapture's children are.
  const job: ConmonJob = {
    conmon: p.conmon,
    args,
    conmonLog: p.conmonLog,
    // conmon drops an "oom" marker in its working directory too; keep it in the container's.
    cwd: path.dirname(p.bundle),
    syncTimeoutMs: warm ? 0 : SYNC_TIMEOUT_MS,
  };
  return inHelper<ConmonJob, SyncMessage>('conmon', job, warm);
}

/** What startConmonHere needs, as it crosses to the spawn helper. */
export interface ConmonJob {
  conmon: string;
  args: string[];
  conmonLog: string;
  cwd: string;
  /** How long to wait for the sync message; 0: as long as it takes. */
  syncTimeoutMs: number;
}

/**
 * Starts conmon, which daemonises, and resolves with the first message on its sync pipe:
 * the container's pid, or the runtime's error. Runs in the thread that calls it.
 */
export async function startConmonHere(job: ConmonJob): Promise<SyncMessage> {
  // Opened at once: a trip through the thread pool would come before every start.
  const log = openSync(job.conmonLog, 'a', 0o600);
  try {
    const child = spawn(job.conmon, job.args, {
      stdio: ['ignore', 'ignore', log, 'pipe'],
      env: { PATH: DEFAULT_PATH, _OCI_SYNCPIPE: '3' },
      cwd: job.cwd,
      detached: true,
    });
    child.unref();
    const spawned = new Promise<never>((_, reject) => child.on('error', reject));
    const message = readSyncMessage(child.stdio[3] as Readable, job.syncTimeoutMs);
    return await Promise.race([message, spawned]);
  } finally {
    closeSync(log);
  }
}

/** What conmon reports on its sync pipe: the container's pid, or -1 and the error. */
export interface SyncMessage {
  data: number;
  message?: string;
}

/** Reads the first JSON line conmon writes, then lets go of the pipe. */
function readSyncMessage(pipe: Readable, timeoutMs: number): Promise<SyncMessage> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const finish = (err: Error | undefined, msg?: SyncMessage): void => {
      if (timer) clearTimeout(timer);
      pipe.removeAllListeners('data');
      pipe.destroy();
      if (err) reject(err);
      else resolve(msg as SyncMessage);
    };
    const timer =
      timeoutMs > 0
        ? setTimeout(
            () => finish(new Error(`conmon did not report within ${timeoutMs / 1000} s`)),
            timeoutMs,
          )
        : undefined;
    pipe.setEncoding('utf8');
    pipe.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      try {
        finish(undefined, JSON.parse(buffered.slice(0, nl)) as SyncMessage);
      } catch {
        finish(new Error(`conmon wrote an unreadable message: ${buffered.slice(0, 200)}`));
      }
    });
    pipe.on('end', () => finish(new Error('conmon exited without reporting a pid')));
    pipe.on('error', (err) => finish(err));
  });
}

async function readTail(file: string): Promise<string> {
  try {
    const text = await fs.readFile(file, 'utf8');
    return text.trim().slice(-2000) || 'no details';
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 'no details';
    throw err;
  }
}

/**
 * Whether `pid` is a live conmon monitoring container `id` (guards against pid reuse). It
 * reads /proc synchronously: procfs answers from memory, and a listing asks this of every
 * container, where a round trip through the thread pool per file would cost more.
 */
export function conmonAlive(pid: number | undefined, id: string): boolean {
  if (!pid) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv[0].endsWith('conmon') && argv.includes(id);
  } catch {
    return false;
  }
}
