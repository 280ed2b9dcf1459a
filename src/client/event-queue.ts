import type { KObject } from '../api/types.js';
import type { EventRecorder } from './events.js';

export interface EventQueueOptions {
  /** Events that may wait; past this, new ones are dropped (default 1000, as Kubernetes). */
  capacity?: number;
  /** Events written at the same time (default 2). */
  senders?: number;
}

type Queued = [obj: KObject, type: 'Normal' | 'Warning', reason: string, message: string];

/**
 * Records Events in the background, as Kubernetes' event broadcaster does: `record` only
 * queues and returns at once, and a few senders write the queued Events in order through an
 * EventRecorder (which folds repeats and limits each object's burst). When the queue is
 * full the new Event is dropped and counted, so a burst of work (thousands of binds a
 * second) never waits for its Events, and the API server spends itself on the binds first.
 */
export class EventQueue {
  private readonly capacity: number;
  private readonly senders: number;
  private queue: Queued[] = [];
  private head = 0;
  private active = 0;
  private droppedCount = 0;
  private idle: (() => void)[] = [];

  constructor(
    private readonly recorder: EventRecorder,
    opts: EventQueueOptions = {},
  ) {
    this.capacity = opts.capacity ?? 1000;
    this.senders = opts.senders ?? 2;
  }

  /** Queues an Event about `obj`; never blocks, never throws. */
  record(obj: KObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    if (this.pending >= this.capacity) {
      this.droppedCount++;
      return;
    }
    this.queue.push([obj, type, reason, message]);
    if (this.active < this.senders) void this.send();
  }

  /** Events waiting to be written. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /** Events dropped so far because the queue was full. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Resolves once every queued Event has been written or has failed; for shutdown. */
  drain(): Promise<void> {
    if (this.active === 0 && this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private async send(): Promise<void> {
    this.active++;
    while (this.pending > 0) {
      const [obj, type, reason, message] = this.take();
      // EventRecorder.record logs and swallows its failures.
      await this.recorder.record(obj, type, reason, message);
    }
    this.active--;
    if (this.active === 0) for (const resolve of this.idle.splice(0)) resolve();
  }

  private take(): Queued {
    const next = this.queue[this.head++];
    // Drop the consumed head now and then rather than shifting the array every time.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return next;
  }
}
