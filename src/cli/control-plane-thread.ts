import { Worker } from 'node:worker_threads';
import type { ClientConfig } from '../client/rest.js';
import { componentLogger } from '../log.js';
import type { ControlLoopOptions, ControlLoops } from './control-plane.js';

/**
 * The control loops (scheduler and controllers, see control-plane.ts) on a thread of their
 * own. They are clients of the API server like any other, so they need nothing of this
 * thread but the way to reach it: each side gets a core, and the API server's thread no
 * longer parses the watch streams, runs the reconcilers and scores nodes between requests.
 *
 * The thread talks to this one through messages:
 *   to the thread:   { type: 'stop' }
 *   from the thread: { type: 'ready' } once the scheduler's caches synced,
 *                    { type: 'lost', lease } when a held lease was lost,
 *                    { type: 'stopped' } after stop() finished there.
 * A thread that ends unasked (an uncaught error, a crash) is logged and started again
 * after a delay doubling from `restartDelayMs` up to 30 s; the new one lists again and,
 * with the same identity, takes its leases back at once. A lost lease is not a crash: it
 * is reported through `onLost` and the process decides (it stops, as Kubernetes'
 * components do), unless `restartWhenLost` makes this its supervisor; a thread that fails
 * before it was ever ready fails start().
 */
export type ThreadOptions = Omit<ControlLoopOptions, 'onLost'> & {
  onLost?: (lease: string) => void;
  /**
   * A lost lease stops the thread's loops and a new thread campaigns again after the
   * restart delay, as a supervisor restarts a Kubernetes component that exited, while the
   * rest of the process goes on serving. For `flyces up`, whose loops lose their leases
   * whenever the store refuses writes for a while (a full disk), and which has no
   * supervisor of its own: the API server and the agent must outlive that.
   */
  restartWhenLost?: boolean;
  /** First delay before a dead thread is started again (default 1 s). */
  restartDelayMs?: number;
};

export interface ThreadData {
  client: ClientConfig;
  options: Omit<ControlLoopOptions, 'onLost'>;
}

export type FromThread =
  | { type: 'ready' }
  | { type: 'lost'; lease: string }
  | { type: 'stopped' }
  | { type: 'failed'; message: string };

const MAX_RESTART_DELAY_MS = 30_000;
/** stop() waits this long for the loops to finish and release their leases, then ends them. */
const STOP_TIMEOUT_MS = 40_000;

export class ControlLoopsThread implements ControlLoops {
  private readonly log = componentLogger('control-plane');
  private worker?: Worker;
  private exited: Promise<void> = Promise.resolve();
  private restartTimer?: NodeJS.Timeout;
  private stopping = false;
  private everReady = false;
  private failures = 0;
  private readonly options: Omit<ControlLoopOptions, 'onLost'>;

  constructor(
    private readonly client: ClientConfig,
    private readonly opts: ThreadOptions = {},
  ) {
    const options = { ...opts };
    delete options.onLost;
    delete options.restartDelayMs;
    delete options.restartWhenLost;
    this.options = options;
  }

  /** Whether a thread runs now (for tests and diagnostics). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** Starts the thread; resolves once its scheduler's caches synced, rejects if it failed. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => this.spawn(resolve, reject));
  }

  /** Stops the loops (they release their leases) and ends the thread; no restart follows. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (!worker) return;
    worker.postMessage({ type: 'stop' });
    const timer = setTimeout(() => {
      this.log.error("the control loops' thread did not stop in time; ending it");
      void worker.terminate();
    }, STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  private spawn(ready?: () => void, failed?: (err: Error) => void): void {
    const data: ThreadData = { client: this.client, options: this.options };
    const worker = new Worker(new URL('./control-plane-worker.js', import.meta.url), {
      workerData: data,
    });
    this.worker = worker;
    let why = 'it exited';
    let lost = false;
    worker.on('message', (msg: FromThread) => {
      if (msg.type === 'ready') {
        this.everReady = true;
        this.failures = 0;
        ready?.();
      } else if (msg.type === 'lost' && !this.opts.restartWhenLost) this.opts.onLost?.(msg.lease);
      else if (msg.type === 'lost') {
        this.log.error({ lease: msg.lease }, 'lost a leader lease; the control loops start again');
        if (!lost) worker.postMessage({ type: 'stop' });
        lost = true;
      } else if (msg.type === 'stopped') void worker.terminate();
      else if (msg.type === 'failed') {
        why = msg.message;
        void worker.terminate();
      }
    });
    worker.on('error', (err) => {
      why = err.stack ?? err.message;
      this.log.error({ err }, "the control loops' thread failed");
    });
    this.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        this.worker = undefined;
        resolve();
        if (this.stopping) return;
        if (!this.everReady) {
          failed?.(new Error(`the control loops' thread failed to start: ${why}`));
          return;
        }
        this.restart(code, lost);
      });
    });
  }

  private restart(code: number, lost: boolean): void {
    const first = this.opts.restartDelayMs ?? 1000;
    const delay = Math.min(first * 2 ** this.failures, MAX_RESTART_DELAY_MS);
    this.failures++;
    const what = lost ? 'stopped after a lost lease' : 'ended unexpectedly';
    this.log.error(
      { code, restartInMs: delay },
      `the control loops' thread ${what}; starting it again`,
    );
    this.restartTimer = setTimeout(() => {
      if (!this.stopping) this.spawn();
    }, delay);
  }
}

/** Starts the control loops on their own thread; resolves once they are ready. */
export async function startControlLoopsThread(
  client: ClientConfig,
  opts: ThreadOptions = {},
): Promise<ControlLoopsThread> {
  const thread = new ControlLoopsThread(client, opts);
  try {
    await thread.start();
  } catch (err) {
    await thread.stop();
    throw err;
  }
  return thread;
}
