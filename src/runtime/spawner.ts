import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Spawns miniC's helper programs (runc, conmon, ip, mount) from a small
 * helper process (spawn-helper.ts) instead of from this one. Node's spawn forks the whole
 * process and returns only once the child has executed its program: in the agent's
 * process, which under `flyces up` also holds the API server and the controllers, each
 * fork copied the page tables of a large heap, stalled the other threads for that time,
 * and on a busy machine waited several milliseconds for the child to get a CPU. The
 * helper is small, and its waits are its own.
 *
 * Jobs are named functions of the helper with plain-data inputs and results. The helper
 * keeps this process alive only while it has jobs, ends when this process does, and if it
 * dies, its jobs fail and the next job starts a new one.
 */

/** The jobs the helper knows, by name. */
export type JobKind = 'capture' | 'conmon';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  /** A job that may wait indefinitely and must not keep this process alive meanwhile. */
  background: boolean;
}

/** A job's answer: its result, or the message of the error it failed with. */
export interface JobReply {
  id: number;
  result?: unknown;
  error?: string;
}

class Spawner {
  private helper?: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Pending jobs that are not background ones: while there are any, the helper holds. */
  private held = 0;

  run<I, O>(kind: JobKind, input: I, background = false): Promise<O> {
    const helper = this.helper ?? this.start();
    const id = this.nextId++;
    return new Promise<O>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, background });
      if (!background && ++this.held === 1) hold(helper, true);
      helper.send({ id, kind, input }, (err) => {
        if (err) this.failAll(helper, err);
      });
    });
  }

  private start(): ChildProcess {
    const file = fileURLToPath(new URL('./spawn-helper.js', import.meta.url));
    // No inherited flags (--cpu-prof, --inspect): the helper is not what they are for.
    const helper = fork(file, [], { execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    hold(helper, false);
    helper.on('message', (reply: JobReply) => this.settle(reply));
    helper.on('error', (err) => this.failAll(helper, err));
    helper.on('exit', (code, signal) =>
      this.failAll(helper, new Error(`exited (${signal ?? code})`)),
    );
    this.helper = helper;
    return helper;
  }

  private failAll(helper: ChildProcess, err: Error): void {
    if (this.helper !== helper) return;
    this.helper = undefined;
    helper.kill();
    const jobs = [...this.pending.values()];
    this.pending.clear();
    this.held = 0;
    for (const job of jobs) job.reject(new Error(`spawn helper failed: ${err.message}`));
  }

  private settle(reply: JobReply): void {
    const job = this.pending.get(reply.id);
    if (!job) return;
    this.pending.delete(reply.id);
    if (!job.background && --this.held === 0 && this.helper) hold(this.helper, false);
    if (reply.error !== undefined) job.reject(new Error(reply.error));
    else job.resolve(reply.result);
  }
}

/** Whether the helper (its process and its IPC channel) keeps this process alive. */
function hold(helper: ChildProcess, on: boolean): void {
  if (on) {
    helper.ref();
    helper.channel?.ref();
  } else {
    helper.unref();
    helper.channel?.unref();
  }
}

const spawner = new Spawner();

/**
 * Runs one job in the spawn helper; rejects with the job's error message. A `background`
 * job does not keep this process alive while it waits (a warm monitor's, see
 * warm-monitor.ts).
 */
export function inHelper<I, O>(kind: JobKind, input: I, background = false): Promise<O> {
  return spawner.run<I, O>(kind, input, background);
}
