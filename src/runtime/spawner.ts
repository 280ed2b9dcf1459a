import { Worker } from 'node:worker_threads';

/**
 * Spawns miniC's helper programs (runc, conmon, CNI plugins, ip, mount) from a worker
 * thread. Node's spawn returns only once the child has been forked and has executed its
 * program, and on a busy machine the child can wait several milliseconds for a CPU before
 * it does; in the agent's thread that stalls everything else the process serves (the API
 * server and controllers too, under `flyces up`). The worker takes that wait instead.
 *
 * Jobs are named functions of the worker (see spawner-worker.ts) with plain-data inputs
 * and results. The worker keeps the process alive only while it has jobs; if it dies,
 * its jobs fail and the next job starts a new one.
 */

/** The jobs the worker knows, by name. */
export type JobKind = 'capture' | 'conmon';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/** A job's answer: its result, or the message of the error it failed with. */
export interface JobReply {
  id: number;
  result?: unknown;
  error?: string;
}

class Spawner {
  private worker?: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  run<I, O>(kind: JobKind, input: I): Promise<O> {
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise<O>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, kind, input });
    });
  }

  private start(): Worker {
    const worker = new Worker(new URL('./spawner-worker.js', import.meta.url));
    worker.unref();
    worker.on('message', (reply: JobReply) => this.settle(reply));
    const fail = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      const jobs = [...this.pending.values()];
      this.pending.clear();
      for (const job of jobs) job.reject(new Error(`spawner thread failed: ${err.message}`));
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private settle(reply: JobReply): void {
    const job = this.pending.get(reply.id);
    if (!job) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker?.unref();
    if (reply.error !== undefined) job.reject(new Error(reply.error));
    else job.resolve(reply.result);
  }
}

const spawner = new Spawner();

/** Runs one job on the spawner's worker thread; rejects with the job's error message. */
export function offThread<I, O>(kind: JobKind, input: I): Promise<O> {
  return spawner.run<I, O>(kind, input);
}
