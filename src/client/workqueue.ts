/**
 * Longest stretch of queue-driven work before `get()` lets the event loop take a turn. At
 * 10 ms a scheduler that needs 5 ms a pod got half the throughput it had; at 50 ms it keeps
 * it, and a request waits at most this long per turn it needs.
 */
const MAX_SLICE_MS = 50;
let sliceStart = 0;
let sliceOpen = false;

/**
 * Whether the work done since the event loop's last turn has run long enough that the
 * next key should wait for the next turn. A consumer that takes keys from a full queue and
 * works on them synchronously (the scheduler) chains through promise callbacks only, which
 * run before any I/O: without this, requests and watch events would wait for the whole
 * queue to drain.
 */
function sliceUsedUp(): boolean {
  const now = performance.now();
  if (!sliceOpen) {
    sliceOpen = true;
    sliceStart = now;
    setImmediate(() => {
      sliceOpen = false;
    });
    return false;
  }
  return now - sliceStart > MAX_SLICE_MS;
}

/** The longest delay a Node timer keeps (2^31 - 1 ms, about 24.8 days). */
const TIMER_MAX_MS = 2 ** 31 - 1;

/**
 * A rate-limited work queue of keys, with the guarantees reconcilers rely on:
 * a key is never handed to two workers at once; a key added while it is being processed is
 * processed again afterwards; adding a key that is already waiting does nothing. Failed keys
 * come back after a per-key exponential backoff that resets on success. Keys that are
 * waiting are handed out at once, but after about 50 ms of work driven by queues the next
 * one is handed out on the event loop's next turn, so I/O is served in between.
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { timer: NodeJS.Timeout; due: number }>();
  private readonly waiting: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;

  constructor(
    private readonly baseDelayMs = 5,
    private readonly maxDelayMs = 300_000,
  ) {}

  /** Queues a key unless it is already waiting. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const waiter = this.waiting.shift();
    if (waiter) {
      this.dirty.delete(key);
      this.processing.add(key);
      waiter(key);
    } else this.queue.push(key);
  }

  /** Queues a key after a delay; of two pending delays for one key, the sooner wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const due = Date.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending && pending.due <= due) return;
    if (pending) clearTimeout(pending.timer);
    // A longer timer would fire at once (Node's limit): one that ends early sets the next.
    const timer = setTimeout(
      () => {
        this.delayed.delete(key);
        const left = due - Date.now();
        if (left > 0) this.addAfter(key, left);
        else this.add(key);
      },
      Math.min(delayMs, TIMER_MAX_MS),
    );
    this.delayed.set(key, { timer, due });
  }

  /** Queues a key after its backoff, which doubles with each failure. */
  addRateLimited(key: string): void {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    this.addAfter(key, Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** failures));
  }

  /** Clears a key's failure count (call after it reconciled successfully). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key to work on; undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) {
      this.dirty.delete(key);
      this.processing.add(key);
      if (!sliceUsedUp()) return Promise.resolve(key);
      return new Promise((resolve) => setImmediate(() => resolve(key)));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Marks a key's processing finished; re-queues it if it was added meanwhile. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) {
      this.dirty.delete(key);
      this.add(key);
    }
  }

  get length(): number {
    return this.queue.length;
  }

  /** The keys handed out and not yet done. */
  inProgress(): string[] {
    return [...this.processing];
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    for (const waiter of this.waiting.splice(0)) waiter(undefined);
  }
}

/** Reconciles one key handed out by the queue, then requeues it as the outcome asks. */
async function reconcileKey(
  queue: WorkQueue,
  key: string,
  reconcile: (key: string) => Promise<number | void>,
  onError: (key: string, err: unknown) => void,
): Promise<void> {
  try {
    const requeueAfter = await reconcile(key);
    queue.forget(key);
    if (typeof requeueAfter === 'number') queue.addAfter(key, requeueAfter);
  } catch (err) {
    onError(key, err);
    queue.addRateLimited(key);
  } finally {
    queue.done(key);
  }
}

/**
 * Runs `workers` loops that take keys from the queue and reconcile them. A reconcile that
 * throws is retried with backoff; one that returns a number asks to run again after that
 * many milliseconds. Resolves when the queue shuts down.
 */
export async function runWorkers(
  queue: WorkQueue,
  workers: number,
  reconcile: (key: string) => Promise<number | void>,
  onError: (key: string, err: unknown) => void,
): Promise<void> {
  const loop = async () => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      await reconcileKey(queue, key, reconcile, onError);
    }
  };
  await Promise.all(Array.from({ length: workers }, loop));
}

/**
 * Reconciles each key as soon as it is handed out, however many others are in progress:
 * for reconciles that can wait a long time (a pod's grace period, an image pull), where a
 * fixed number of workers would let a few slow keys hold up every other. A key is still
 * never reconciled twice at once, and retries and requeues work as in runWorkers. Resolves
 * when the queue shuts down and the reconciles in progress have ended.
 */
export async function runEachKey(
  queue: WorkQueue,
  reconcile: (key: string) => Promise<number | void>,
  onError: (key: string, err: unknown) => void,
): Promise<void> {
  const inProgress = new Set<Promise<void>>();
  for (;;) {
    const key = await queue.get();
    if (key === undefined) break;
    const run = reconcileKey(queue, key, reconcile, onError).finally(() => inProgress.delete(run));
    inProgress.add(run);
  }
  await Promise.all(inProgress);
}
