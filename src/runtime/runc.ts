import { ExecError, run, runCapture, type Completed } from './exec.js';
import { readJson } from './fsutil.js';
import path from 'node:path';

/** The few runc commands miniC needs, always against miniC's own `--root`. */
export class Runc {
  constructor(
    readonly binary: string,
    readonly root: string,
  ) {}

  private run(args: string[]): Promise<{ stdout: string }> {
    return run(this.binary, [`--root=${this.root}`, ...args]);
  }

  /** Runs a command inside a running container; its exit code is a result, not an error. */
  exec(id: string, command: string[], timeoutMs: number): Promise<Completed> {
    return runCapture(this.binary, [`--root=${this.root}`, 'exec', id, ...command], { timeoutMs });
  }

  async start(id: string): Promise<void> {
    await this.run(['start', id]);
  }

  /** Sends a signal; false when the container is gone or not running. */
  async kill(id: string, signal: string): Promise<boolean> {
    try {
      await this.run(['kill', id, signal]);
      return true;
    } catch (err) {
      if (isGone(err)) return false;
      throw err;
    }
  }

  /** Deletes the container whatever its state; a missing container is not an error. */
  async forceDelete(id: string): Promise<void> {
    try {
      await this.run(['delete', '--force', id]);
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }

  /** runc's status (created, running, paused, stopped), or undefined if it has no such id. */
  async state(id: string): Promise<string | undefined> {
    try {
      const { stdout } = await this.run(['state', id]);
      return (JSON.parse(stdout) as { status: string }).status;
    } catch (err) {
      if (isGone(err)) return undefined;
      throw err;
    }
  }

  /** Status of every container under this root, by id. */
  /**
   * Every container under our root and its status. runc fails the whole listing when a
   * container is deleted while it reads the root, so that case is tried again.
   */
  async list(): Promise<Map<string, string>> {
    let stdout = '';
    for (let attempt = 1; ; attempt++) {
      try {
        stdout = (await this.run(['list', '--format', 'json'])).stdout;
        break;
      } catch (err) {
        const vanished = err instanceof ExecError && /no such file or directory/.test(err.stderr);
        if (!vanished || attempt >= 5) throw err;
      }
    }
    const entries = (JSON.parse(stdout || 'null') ?? []) as { id: string; status: string }[];
    return new Map(entries.map((e) => [e.id, e.status]));
  }

  /**
   * The container's cgroup directories, from runc's state file. This reads runc's
   * internal state.json (stable through runc 1.1), because `runc state` omits them.
   */
  async cgroupPaths(id: string): Promise<string[]> {
    const state = await readJson<{ cgroup_paths?: Record<string, string> }>(
      path.join(this.root, id, 'state.json'),
    );
    return [...new Set(Object.values(state?.cgroup_paths ?? {}))];
  }
}

function isGone(err: unknown): boolean {
  if (!(err instanceof ExecError)) return false;
  return /does not exist|not running|container not found|process already finished/i.test(
    err.stderr + err.stdout,
  );
}
