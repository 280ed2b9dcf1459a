import { spawn } from 'node:child_process';

import { inHelper } from './spawner.js';

/** Runs helper programs (runc, ip, mount) and reports their failures. */

export interface RunOptions {
  /** Environment of the child; defaults to a minimal one with PATH. */
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed. */
  input?: string;
  /** Kills the child after this long; default 60 s. */
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** A helper program that exited non-zero or could not be started. */
export class ExecError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    const detail = (stderr.trim() || stdout.trim()).slice(0, 2000);
    super(`${command} failed (exit ${exitCode ?? 'signal'})${detail ? `: ${detail}` : ''}`);
    this.name = 'ExecError';
  }
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** How a program ended: its exit code (null when killed), its output, and whether it timed out. */
export interface Completed extends RunResult {
  code: number | null;
  timedOut: boolean;
}

/**
 * Runs `file args...` to completion and reports how it ended; rejects only if it cannot
 * start. The child is spawned by the spawn helper process (see spawner.ts), so this process
 * neither forks nor waits for the child to exec.
 */
export async function runCapture(
  file: string,
  args: string[],
  options: RunOptions = {},
): Promise<Completed> {
  const env = options.env ?? { PATH: process.env.PATH ?? DEFAULT_PATH };
  const job = { file, args, env, input: options.input, timeoutMs: options.timeoutMs };
  const done = await inHelper<CaptureJob, Completed | { startError: string }>('capture', job);
  if ('startError' in done) throw new ExecError(commandName(file, args), null, '', done.startError);
  return done;
}

/** What runCaptureHere needs, as it crosses to the spawn helper. */
export interface CaptureJob {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
}

function commandName(file: string, args: string[]): string {
  return [file, ...args.slice(0, 2)].join(' ');
}

/** runCapture's work, in the calling process; the spawn helper runs it. */
export function runCaptureHere(job: CaptureJob): Promise<Completed> {
  const { file, args, env } = job;
  const options = job;
  const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.input ?? '');
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 60_000);
  const name = commandName(file, args);

  return new Promise((resolve, reject) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new ExecError(name, null, '', e.message));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** Runs `file args...` to completion; rejects with ExecError unless it exits 0. */
export async function run(
  file: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const done = await runCapture(file, args, options);
  if (done.code === 0) return { stdout: done.stdout, stderr: done.stderr };
  throw new ExecError(commandName(file, args), done.code, done.stdout, done.stderr);
}
