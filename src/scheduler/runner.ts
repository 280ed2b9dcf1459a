import { Worker } from 'node:worker_threads';
import type { LeaderElectionOptions } from '../client/leader-election.js';
import type { ClientConfig } from '../client/rest.js';
import { componentLogger } from '../log.js';

/**
 * Runs the scheduler in a worker thread of its own, so that it uses a second core beside
 * the API server of the same process. The scheduler reaches the API server only through
 * its client anyway (the Unix socket in `flyces up`), so the thread shares nothing but
 * that: it has its own client, its own pod and node informers, and campaigns for its
 * lease as the in-thread scheduler does (see leader.ts and worker.ts).
 *
 * A thread that dies unexpectedly (an uncaught exception, or an exit nobody asked for) is
 * logged and started again after a delay that doubles up to 30 s; the new one re-lists
 * and, holding the same identity, takes its lease back at once. A lost lease is not a
 * crash: the thread stops for good and `onLost` is told, as with runWhileLeading.
 */

/** What the worker thread is started with; must survive structured cloning. */
export interface SchedulerWorkerData {
  client: ClientConfig;
  lease: Omit<LeaderElectionOptions, 'client'>;
}

/** Messages from the parent to the worker. */
export type ToWorker = { type: 'stop' };

/** Messages from the worker to the parent. */
export type FromWorker =
  { type: 'synced' } | { type: 'leading' } | { type: 'lost' } | { type: 'stopped' };

export interface SchedulerWorkerOptions extends SchedulerWorkerData {
  /** Told once when the scheduler lost its lease; the thread has then stopped for good. */
  onLost?: () => void;
  /** The first delay before a dead thread is started again (default 1 s). */
  restartDelayMs?: number;
}

const MAX_RESTART_DELAY_MS = 30_000;
/**
 * How long stop() waits for the thread to finish its binds and release the lease before
 * it ends the thread: past the client's request timeout, so binds in flight settle first.
 */
const STOP_TIMEOUT_MS = 40_000;

export class SchedulerWorker {
  private readonly log = componentLogger('scheduler-runner');
  private worker?: Worker;
  private exited: Promise<void> = Promise.resolve();
  private restartTimer?: NodeJS.Timeout;
  private stopping = false;
  private lost = false;
  private failures = 0;
  private readonly synced: Promise<void>;
  private markSynced!: () => void;

  constructor(private readonly opts: SchedulerWorkerOptions) {
    this.synced = new Promise((resolve) => (this.markSynced = resolve));
  }

  /** Starts the thread; resolves once a scheduler's caches have synced (or stop() came). */
  start(): Promise<void> {
    this.spawn();
    return this.synced;
  }

  /** Whether a thread is running now; for tests and diagnostics. */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /**
   * Stops the scheduler: it finishes the binds in flight, releases its lease and the thread
   * ends. No restart follows. Resolves once the thread has ended.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    this.markSynced();
    const worker = this.worker;
    if (!worker) return;
    worker.postMessage({ type: 'stop' } satisfies ToWorker);
    const timer = setTimeout(() => {
      this.log.error('the scheduler thread did not stop in time; ending it');
      void worker.terminate();
    }, STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  private spawn(): void {
    const data: SchedulerWorkerData = { client: this.opts.client, lease: this.opts.lease };
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: data });
    this.worker = worker;
    worker.on('message', (message: FromWorker) => this.onMessage(message));
    worker.on('error', (err) => this.log.error({ err }, 'the scheduler thread failed'));
    this.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        this.worker = undefined;
        this.onExit(code);
        resolve();
      });
    });
  }

  private onMessage(message: FromWorker): void {
    switch (message.type) {
      case 'synced':
        this.markSynced();
        break;
      case 'leading':
        this.failures = 0;
        break;
      case 'lost':
        this.lost = true;
        this.opts.onLost?.();
        break;
      case 'stopped':
        break;
    }
  }

  private onExit(code: number): void {
    if (this.stopping || this.lost) return;
    const first = this.opts.restartDelayMs ?? 1000;
    const delay = Math.min(first * 2 ** this.failures, MAX_RESTART_DELAY_MS);
    this.failures++;
    this.log.error(
      { code, restartInMs: delay },
      'the scheduler thread ended unexpectedly; starting it again',
    );
    this.restartTimer = setTimeout(() => {
      if (!this.stopping) this.spawn();
    }, delay);
  }
}
