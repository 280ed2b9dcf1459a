import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { Socket } from 'node:net';
import path from 'node:path';

import { ExecError, run, runCapture, type Completed } from './exec.js';
import { isErrno, readJsonSync } from './fsutil.js';
import { killProcessTree } from './process-tree.js';

/**
 * The few runc commands miniC needs, always against miniC's own `--root`. Containers are
 * created under `root`; `earlierRoot` is where an earlier version of miniC kept runc's
 * state (under the data dir, on disk), and a container found there is driven there.
 */
export class Runc {
  constructor(
    readonly binary: string,
    readonly root: string,
    private readonly earlierRoot?: string,
  ) {}

  /** The root that holds container `id`: the current one unless only the earlier one has it. */
  rootFor(id: string): string {
    if (this.earlierRoot === undefined || existsSync(path.join(this.root, id))) return this.root;
    return existsSync(path.join(this.earlierRoot, id)) ? this.earlierRoot : this.root;
  }

  private run(id: string, args: string[]): Promise<{ stdout: string }> {
    return run(this.binary, [`--root=${this.rootFor(id)}`, ...args]);
  }

  /**
   * Runs a command inside a running container; its exit code is a result, not an error.
   * runc writes the command's pid to `pidFile`; when `timeoutMs` is up, the command and
   * what it started are killed (not runc, whose SIGKILL would leave them running in the
   * container), and runc itself only if it has not ended EXEC_KILL_GRACE_MS later.
   */
  async exec(
    id: string,
    command: string[],
    timeoutMs: number,
    pidFile: string,
  ): Promise<Completed> {
    const args = [`--root=${this.rootFor(id)}`, 'exec', `--pid-file=${pidFile}`, id, ...command];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void killByPidFile(pidFile);
    }, timeoutMs);
    try {
      const done = await runCapture(this.binary, args, {
        timeoutMs: timeoutMs + EXEC_KILL_GRACE_MS,
      });
      return { ...done, timedOut: timedOut || done.timedOut };
    } finally {
      clearTimeout(timer);
      rmSync(pidFile, { force: true });
    }
  }

  /**
   * Starts a created container's process, as `runc start` does but without running runc:
   * `runc create` leaves the container's init blocked opening `ROOT/ID/exec.fifo` for
   * writing; once the fifo has a reader, init writes a byte to it and executes the process,
   * which closes it. runc then deletes the fifo (while it exists, runc reports the container
   * as created). This knows runc's state directory (as cgroupPaths does, unchanged from runc
   * 1.0 through 1.1); where there is no fifo, `runc start` runs instead. `alive` tells
   * whether init still runs, for an init that died before it could write. With init's pid,
   * a fifo that init does not hold (the file was replaced) fails the start at once rather
   * than when the start's time is up.
   */
  async start(id: string, alive: () => boolean = () => true, initPid?: number): Promise<void> {
    const fifo = path.join(this.rootFor(id), id, 'exec.fifo');
    const fd = openFifo(fifo);
    if (fd === undefined) {
      await this.run(id, ['start', id]);
      return;
    }
    const held = initPid === undefined ? () => true : () => holdsFile(initPid, fd);
    await awaitStartByte(fd, alive, held);
    rmSync(fifo, { force: true });
  }

  /** Sends a signal; false when the container is gone or not running. */
  async kill(id: string, signal: string): Promise<boolean> {
    try {
      await this.run(id, ['kill', id, signal]);
      return true;
    } catch (err) {
      if (isGone(err)) return false;
      throw err;
    }
  }

  /** Deletes the container whatever its state; a missing container is not an error. */
  async forceDelete(id: string): Promise<void> {
    try {
      await this.run(id, ['delete', '--force', id]);
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }

  /**
   * Removes runc's state directory of a container runc cannot load (its state file is
   * unreadable), once its process has ended: `runc delete` fails on such a container for
   * ever, so it could not be removed. Like start, this knows runc's state directory.
   */
  removeUnloadable(id: string): void {
    rmSync(path.join(this.rootFor(id), id), { recursive: true, force: true });
  }

  /** runc's status (created, running, paused, stopped), or undefined if it has no such id. */
  async state(id: string): Promise<string | undefined> {
    try {
      const { stdout } = await this.run(id, ['state', id]);
      return (JSON.parse(stdout) as { status: string }).status;
    } catch (err) {
      if (isGone(err)) return undefined;
      throw err;
    }
  }

  /**
   * Every container under our roots and its status, by id. runc fails the whole listing
   * when a container is deleted while it reads the root, so that case is tried again.
   */
  async list(): Promise<Map<string, string>> {
    const roots = [this.root];
    // The earlier root costs a run of runc only while it holds containers.
    if (this.earlierRoot !== undefined && listDirSync(this.earlierRoot).length > 0)
      roots.push(this.earlierRoot);
    const all = new Map<string, string>();
    for (const root of roots) {
      for (const [id, status] of await this.listRoot(root)) if (!all.has(id)) all.set(id, status);
    }
    return all;
  }

  private async listRoot(root: string): Promise<Map<string, string>> {
    let stdout = '';
    for (let attempt = 1; ; attempt++) {
      try {
        stdout = (await run(this.binary, [`--root=${root}`, 'list', '--format', 'json'])).stdout;
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
   * internal state.json (stable through runc 1.1), because `runc state` omits them. Read
   * synchronously: a start waits for it, and the file is small and on the state root's tmpfs.
   * Throws where the file is missing, unreadable or names no cgroup: runc then knows no
   * such container, or could neither stop nor delete it.
   */
  cgroupPaths(id: string): string[] {
    const file = path.join(this.rootFor(id), id, 'state.json');
    let state: { cgroup_paths?: Record<string, string> } | undefined;
    try {
      state = readJsonSync(file);
    } catch (err) {
      throw new Error(`runc's state file ${file} is unreadable: ${(err as Error).message}`);
    }
    if (!state) throw new Error(`runc has no state file for container ${id} (${file})`);
    const paths = Object.values(state.cgroup_paths ?? {}).filter((p) => typeof p === 'string');
    // A container always has cgroups: a state that names none is as broken as junk.
    if (paths.length === 0) throw new Error(`runc's state file ${file} names no cgroups`);
    return [...new Set(paths)];
  }
}

/** How long runc may take to end after an exec's command was killed at its timeout. */
const EXEC_KILL_GRACE_MS = 2_000;

/** Kills the command an exec runs (see killProcessTree), once runc has named it. */
async function killByPidFile(pidFile: string): Promise<void> {
  let pid = 0;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    // runc has not started the command yet; runCapture's own timeout kills runc then.
  }
  if (pid > 0) await killProcessTree(pid);
}

function listDirSync(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function isGone(err: unknown): boolean {
  if (!(err instanceof ExecError)) return false;
  return /does not exist|not running|container not found|process already finished/i.test(
    err.stderr + err.stdout,
  );
}

const START_TIMEOUT_MS = 30_000;
const LIVENESS_EVERY_MS = 100;

/** Opens a fifo for reading without waiting for a writer; undefined if it is not one. */
function openFifo(file: string): number | undefined {
  let fd: number;
  try {
    // Non-blocking, so the open returns at once (libuv adds O_CLOEXEC itself).
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  if (fstatSync(fd).isFIFO()) return fd;
  closeSync(fd);
  return undefined;
}

/**
 * Whether process `pid` has the file open that `fd` is (same device and inode), or its
 * fds cannot be read (then nothing is known against it).
 */
function holdsFile(pid: number, fd: number): boolean {
  const { dev, ino } = fstatSync(fd);
  const dir = `/proc/${pid}/fd`;
  let fds: string[];
  try {
    fds = readdirSync(dir);
  } catch {
    return true;
  }
  return fds.some((n) => {
    try {
      const st = statSync(path.join(dir, n));
      return st.ino === ino && st.dev === dev;
    } catch {
      return false;
    }
  });
}

/**
 * Reads the exec fifo to its end (init closes it when it executes the process) and
 * resolves if init wrote to it. Takes ownership of `fd`.
 */
function awaitStartByte(fd: number, alive: () => boolean, held: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    // The fifo is read through the event loop; its end comes when the last writer closes.
    const pipe = new Socket({ fd, readable: true, writable: false });
    let bytes = 0;
    let deadChecks = 0;
    const finish = (err?: Error) => {
      clearInterval(check);
      clearTimeout(deadline);
      pipe.destroy();
      if (err) reject(err);
      else resolve();
    };
    // Init gone twice in a row: by then a byte it wrote before dying would have been read.
    // Init writes as soon as the fifo has a reader, so one look at what it holds, if
    // nothing came by the first check, tells a fifo it will never write to.
    let looked = false;
    const check = setInterval(() => {
      deadChecks = alive() ? 0 : deadChecks + 1;
      if (deadChecks >= 2) return finish(new Error('container process is already dead'));
      if (bytes > 0 || looked) return;
      looked = true;
      if (!held()) finish(new Error("the exec fifo is not the one the container's init holds"));
    }, LIVENESS_EVERY_MS);
    const deadline = setTimeout(
      () => finish(new Error(`container process did not start in ${START_TIMEOUT_MS} ms`)),
      START_TIMEOUT_MS,
    );
    pipe.on('data', (chunk: Buffer) => (bytes += chunk.length));
    pipe.on('end', () =>
      finish(bytes > 0 ? undefined : new Error('container was started already')),
    );
    pipe.on('error', (err) => finish(err));
  });
}
