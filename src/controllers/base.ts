import { objectKey, type KObject } from '../api/types.js';
import { isReason } from '../client/rest.js';
import { runWorkers, WorkQueue } from '../client/workqueue.js';
import { componentLogger, type Logger } from '../log.js';
import type { Controller } from './controller.js';

/**
 * The common body of a queue-driven controller: one work queue of keys, `workers` loops
 * that reconcile them, and a logger named after the controller. Subclasses register their
 * handlers (which only enqueue keys) and implement `reconcile`, which may run for different
 * keys concurrently but never twice for the same key at once.
 */
export abstract class QueueController implements Controller {
  readonly queue = new WorkQueue();
  protected readonly log: Logger;
  /** Set by stop(); long reconciles check it between steps to end early. */
  protected stopped = false;

  constructor(
    readonly name: string,
    private readonly workers: number,
  ) {
    this.log = componentLogger(name);
  }

  abstract register(): void;

  /**
   * Drives the object named by `key` toward its desired state. Throwing retries the key
   * with backoff; returning a number asks to run again after that many milliseconds.
   */
  protected abstract reconcile(key: string): Promise<number | void>;

  run(): Promise<void> {
    return runWorkers(
      this.queue,
      this.workers,
      (key) => this.reconcile(key),
      (key, err) => this.onError(key, err),
    );
  }

  stop(): void {
    this.stopped = true;
    this.queue.shutDown();
  }

  /** Queues the key of an object. */
  protected enqueue(obj: KObject): void {
    this.queue.add(objectKey(obj));
  }

  private onError(key: string, err: unknown): void {
    // A conflict only means our cache was behind; the retry reads the newer copy.
    if (isReason(err, 'Conflict') || isReason(err, 'NotFound')) {
      this.log.debug({ object: key, err: (err as Error).message }, 'reconcile raced; retrying');
      return;
    }
    this.log.warn({ object: key, err: (err as Error)?.message ?? String(err) }, 'reconcile failed');
  }
}
