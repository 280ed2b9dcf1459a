import type { IWatchResponse, Watcher } from 'etcd3';
import { componentLogger } from '../../log.js';
import type { Watch, WatchHandlers } from '../store.js';
import type { Codec } from './codec.js';

const log = componentLogger('store', { backend: 'etcd' });

/** What a watch needs from the store that started it. */
export interface WatchOwner {
  codec: Codec;
  /** Turns the server's refusal of a watch into the error to report (e.g. Compacted). */
  explain(err: Error, afterRevision: number): Promise<Error>;
  /** The watch has ended; the store stops tracking it. */
  forget(watch: EtcdWatch): void;
}

/**
 * One Store watch over one etcd watcher. etcd delivers the events of a watcher in revision
 * order, once each, and the client resumes a broken stream after the last revision it saw;
 * this class adds the Store's rules on top: no handler call after cancel() (also from
 * inside a handler), a throwing handler only loses its own event, and onError at most once.
 */
export class EtcdWatch implements Watch {
  private done = false;
  private serverEnded = false;

  constructor(
    private readonly watcher: Watcher,
    private readonly owner: WatchOwner,
    private readonly afterRevision: number,
    private readonly handlers: WatchHandlers,
  ) {
    watcher.on('data', (res) => this.deliver(res));
    watcher.on('error', (err) => void this.refused(err));
  }

  cancel(): void {
    if (this.done) return;
    this.done = true;
    this.owner.forget(this);
    // A watcher the server already cancelled is unknown to it; asking again would make the
    // client library fail on the answer.
    if (!this.serverEnded) this.stopped = this.watcher.cancel().catch(() => undefined);
  }

  /** Resolves once the server has confirmed a cancel() (or at once if none is pending). */
  stopped: Promise<unknown> = Promise.resolve();

  /** Ends the watch and reports `err` through onError, once. */
  fail(err: Error): void {
    if (this.done) return;
    this.cancel();
    try {
      this.handlers.onError?.(err);
    } catch (thrown) {
      log.warn({ err: thrown }, 'watch error handler threw');
    }
  }

  private deliver(res: IWatchResponse): void {
    for (const raw of res.events) {
      if (this.done) return;
      const event = this.owner.codec.event(raw);
      try {
        this.handlers.onEvent(event);
      } catch (err) {
        log.warn({ err, revision: event.revision }, 'watch handler threw');
      }
    }
  }

  private async refused(err: Error): Promise<void> {
    this.serverEnded = true;
    if (this.done) return;
    const reason = await this.owner.explain(err, this.afterRevision);
    this.fail(reason);
  }
}
