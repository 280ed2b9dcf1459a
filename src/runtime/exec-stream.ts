import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { DEFAULT_PATH } from './exec.js';
import { randomHex } from './fsutil.js';
import { killProcessTree } from './process-tree.js';
import type { ExecExit, ExecSession, ExecStreamOptions } from './runtime.js';

/**
 * Streaming `runc exec` for `kubectl exec`. Without a terminal, runc runs in the
 * foreground with its stdin, stdout and stderr piped to the caller. With a terminal, runc
 * must hand the pty it makes to someone: in the foreground it keeps it and copies between
 * the pty and its own stdio, but only when its own stdio is a terminal. Node cannot make a
 * pty without a native addon, so `script` (util-linux) makes one for runc and copies
 * between it and our pipes; a resize sets that outer pty's size with `stty`, and runc
 * passes the SIGWINCH it then gets on to the container's pty.
 */

/** Which runc and container a streamed exec runs with. */
export interface ExecTarget {
  runc: string;
  /** runc's --root (miniC's own). */
  root: string;
  id: string;
  /** A directory for the exec's pid and log files; one subdirectory per exec. */
  workDir: string;
  /** The container's OCI config, whose process an exec on a terminal starts from. */
  bundleConfig?: string;
}

/** Exit code a shell reports for a command it cannot find, and for one it cannot run. */
const NOT_FOUND_EXIT = 127;
const CANNOT_RUN_EXIT = 126;
/** runc exits with this when it could not start the process at all. */
const RUNC_EXEC_FAILED = 255;
const RESIZE_ATTEMPTS = 40;
const RESIZE_RETRY_MS = 50;

/** The terminal type an exec with a terminal gets when the container names none. */
const DEFAULT_TERM = 'xterm';

/** Starts `command` in container `target.id`; see ExecSession for the contract. */
export async function startExecStream(
  target: ExecTarget,
  command: string[],
  opts: ExecStreamOptions,
): Promise<ExecSession> {
  const dir = path.join(target.workDir, randomHex(8));
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const processFile =
    opts.tty && opts.size ? await writeTtyProcess(target, dir, command, opts.size) : undefined;
  const args = [
    `--root=${target.root}`,
    `--log=${path.join(dir, 'runc.log')}`,
    '--log-format=json',
    'exec',
    `--pid-file=${path.join(dir, 'pid')}`,
    ...(processFile
      ? [`--process=${processFile}`, target.id]
      : // Without the container's process at hand, TERM is set whatever the container's is.
        [...(opts.tty ? ['--tty', `--env=TERM=${DEFAULT_TERM}`] : []), target.id, ...command]),
  ];
  const child = opts.tty
    ? spawnUnderScript(target.runc, args, opts.size)
    : spawnPiped(target.runc, args, opts);
  const exited = waitForExit(child, dir);
  // One resize at a time, so that the last size asked for is the one that stays.
  let resizing = Promise.resolve();
  return {
    stdin: child.stdin ?? undefined,
    stdout: child.stdout!,
    stderr: child.stderr!,
    exited,
    resize: (cols, rows) => {
      if (opts.tty) resizing = resizing.then(() => resizeTerminal(child, cols, rows));
    },
    kill: () => void killExec(child, dir),
  };
}

/**
 * The process of an exec on a terminal of a known size, as an OCI process file: the
 * container's own process (user, env, cwd, capabilities) with the command and the console
 * size. runc sizes the terminal it makes before the command starts, which its flags cannot
 * do: with --tty alone the command runs on a 0x0 terminal until runc's first resize, and a
 * quick `stty size` sees that.
 */
async function writeTtyProcess(
  target: ExecTarget,
  dir: string,
  command: string[],
  size: { cols: number; rows: number },
): Promise<string | undefined> {
  if (!target.bundleConfig) return undefined;
  let base: Record<string, unknown>;
  try {
    const config = JSON.parse(await fs.readFile(target.bundleConfig, 'utf8')) as {
      process?: Record<string, unknown>;
    };
    if (!config.process) return undefined;
    base = config.process;
  } catch {
    return undefined;
  }
  const env = Array.isArray(base.env) ? (base.env as string[]) : [];
  const processSpec = {
    ...base,
    args: command,
    // As Docker's and containerd's exec: a terminal's type, unless the container names one.
    env: env.some((e) => e.startsWith('TERM=')) ? env : [...env, `TERM=${DEFAULT_TERM}`],
    terminal: true,
    consoleSize: { height: size.rows, width: size.cols },
  };
  const file = path.join(dir, 'process.json');
  await fs.writeFile(file, JSON.stringify(processSpec), { mode: 0o600 });
  return file;
}

function spawnPiped(runc: string, args: string[], opts: ExecStreamOptions): ChildProcess {
  const child = spawn(runc, args, {
    env: { PATH: DEFAULT_PATH },
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  child.stdin?.on('error', () => undefined);
  return child;
}

/**
 * runc under `script`, which gives it a terminal; `--return` passes runc's exit code on.
 * The size is set before runc starts because runc copies it to the container's terminal
 * as it makes it, so the command never sees a terminal of size 0x0.
 */
function spawnUnderScript(
  runc: string,
  args: string[],
  size?: { cols: number; rows: number },
): ChildProcess {
  const stty = size ? `stty cols ${size.cols} rows ${size.rows}; ` : '';
  const line = `${stty}exec ${[runc, ...args].map(shellQuote).join(' ')}`;
  const child = spawn('script', ['--quiet', '--return', '--command', line, '/dev/null'], {
    env: { PATH: DEFAULT_PATH, SHELL: '/bin/sh', TERM: 'xterm' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin!.on('error', () => undefined);
  return child;
}

/** Quotes one word for /bin/sh. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

async function waitForExit(child: ChildProcess, dir: string): Promise<ExecExit> {
  const code = await new Promise<number>((resolve) => {
    child.on('error', () => resolve(RUNC_EXEC_FAILED));
    child.on('close', (exitCode, signal) => resolve(exitCode ?? signalExit(signal)));
  });
  try {
    if (code !== RUNC_EXEC_FAILED) return { exitCode: code };
    const startError = await runcError(path.join(dir, 'runc.log'));
    if (!startError) return { exitCode: code };
    const missing = /not found|no such file/i.test(startError);
    return { exitCode: missing ? NOT_FOUND_EXIT : CANNOT_RUN_EXIT, startError };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** The exit code a shell shows for a process killed by a signal. */
function signalExit(signal: NodeJS.Signals | null): number {
  const signals: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return 128 + (signals[signal ?? ''] ?? 0);
}

/** The last error runc logged (it logs nothing else at its default level). */
async function runcError(logFile: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await fs.readFile(logFile, 'utf8');
  } catch {
    return undefined;
  }
  let message: string | undefined;
  for (const line of text.split('\n')) {
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if (entry.level === 'error' && entry.msg) message = entry.msg;
    } catch {
      continue;
    }
  }
  return message;
}

/**
 * Kills the command and what it started, not runc: SIGKILL on runc would leave the command
 * running in the container, and runc waits for the command's children that hold its output
 * (see killProcessTree). Before runc has written the pid file, runc gets SIGTERM, which it
 * forwards to the command once it runs.
 */
async function killExec(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const pid = Number(await fs.readFile(path.join(dir, 'pid'), 'utf8').catch(() => ''));
  if (pid > 0) return killProcessTree(pid);
  child.kill('SIGTERM');
}

/** Sets the size of the terminal runc runs on, found through runc's stdin. */
async function resizeTerminal(child: ChildProcess, cols: number, rows: number): Promise<void> {
  if (!Number.isInteger(cols) || !Number.isInteger(rows)) return;
  // kubectl sends the first size at once, often before script has started runc.
  for (let attempt = 0; attempt < RESIZE_ATTEMPTS; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const tty = await runcTerminal(child);
    if (tty) {
      const size = ['cols', String(cols), 'rows', String(rows)];
      await new Promise<void>((resolve) =>
        execFile('stty', ['-F', tty, ...size], { env: { PATH: DEFAULT_PATH } }, () => resolve()),
      );
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, RESIZE_RETRY_MS));
  }
}

/** The pty script made for runc (its child's stdin); undefined until it exists. */
async function runcTerminal(child: ChildProcess): Promise<string | undefined> {
  try {
    const children = await fs.readFile(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8');
    const first = children.trim().split(/\s+/)[0];
    if (!first) return undefined;
    const tty = await fs.readlink(`/proc/${first}/fd/0`);
    return tty.startsWith('/dev/pts/') ? tty : undefined;
  } catch {
    return undefined;
  }
}
