import { ApiError } from '../api/errors.js';

/**
 * Fair dispatch of the API server's writes, a small version of Kubernetes' API Priority and
 * Fairness: at most `limit` writes run at once; the others wait in one queue per flow
 * (who is asking: user and client), and a free slot goes to the waiting flow that was
 * given one least recently. A controller
 * that sends thousands of writes then delays its own later writes, not a user's single
 * `kubectl` request or a node's status report, which get the next turn.
 *
 * A flow whose queue is full is refused with 429 and Retry-After, as Kubernetes refuses
 * when its queues are full; clients retry later. Reads and watches are not queued (they are
 * served from the watch cache), and neither are exempt requests (leader-election leases,
 * whose renewals must never wait behind a burst).
 */
export interface FairnessOptions {
  /** Writes run at once (default 64). */
  limit?: number;
  /** Writes one flow may have waiting (default 2,000). */
  queueLength?: number;
}

interface Waiter {
  start(): void;
}

export class FairDispatcher {
  private readonly limit: number;
  private readonly queueLength: number;
  private running = 0;
  /** Flows with waiting writes. */
  private readonly queues = new Map<string, Waiter[]>();
  /** When each flow was last given a slot (a counter), so the least recent goes next. */
  private readonly lastServed = new Map<string, number>();
  private turn = 0;

  constructor(opts: FairnessOptions = {}) {
    this.limit = opts.limit ?? 64;
    this.queueLength = opts.queueLength ?? 2000;
  }

  /** Writes running and waiting now (for tests and diagnostics). */
  get load(): { running: number; waiting: number } {
    let waiting = 0;
    for (const q of this.queues.values()) waiting += q.length;
    return { running: this.running, waiting };
  }

  /** Runs `fn` when `flow` gets its turn; the slot is held until its promise settles. */
  async run<T>(flow: string, fn: () => Promise<T>): Promise<T> {
    await this.admit(flow);
    try {
      return await fn();
    } finally {
      this.running--;
      this.next();
    }
  }

  private admit(flow: string): Promise<void> {
    if (this.running < this.limit && this.queues.size === 0) {
      this.running++;
      this.served(flow);
      return Promise.resolve();
    }
    let queue = this.queues.get(flow);
    if (queue && queue.length >= this.queueLength) {
      throw new ApiError(
        'TooManyRequests',
        'too many requests from this client are waiting; try again later',
        { retryAfterSeconds: 1 },
      );
    }
    if (!queue) this.queues.set(flow, (queue = []));
    return new Promise((resolve) => queue!.push({ start: resolve }));
  }

  /** Gives free slots to the waiting flows, the one served least recently first. */
  private next(): void {
    while (this.running < this.limit && this.queues.size > 0) {
      let flow = '';
      let oldest = Infinity;
      for (const f of this.queues.keys()) {
        const at = this.lastServed.get(f) ?? -1;
        if (at < oldest) [flow, oldest] = [f, at];
      }
      const queue = this.queues.get(flow)!;
      const waiter = queue.shift()!;
      if (queue.length === 0) this.queues.delete(flow);
      this.running++;
      this.served(flow);
      waiter.start();
    }
  }

  private served(flow: string): void {
    this.lastServed.delete(flow);
    this.lastServed.set(flow, this.turn++);
    // Only recent turns matter; flows long gone are forgotten.
    if (this.lastServed.size > 10_000) {
      this.lastServed.delete(this.lastServed.keys().next().value!);
    }
  }
}
