import { spawn } from 'node:child_process';

/** Runs helper programs (runc, ip, mount, CNI plugins) and reports their failures. */

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

/** Runs `file args...` to completion; rejects with ExecError unless it exits 0. */
export function run(file: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const env = options.env ?? { PATH: process.env.PATH ?? DEFAULT_PATH };
  const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  const name = [file, ...args.slice(0, 2)].join(' ');

  return new Promise((resolve, reject) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new ExecError(name, null, '', e.message));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) resolve({ stdout, stderr });
      else reject(new ExecError(name, code, stdout, stderr));
    });
  });
}
