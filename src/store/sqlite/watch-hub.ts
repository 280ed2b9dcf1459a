import { componentLogger } from '../../log.js';
import { StoreError, type Watch, type WatchEvent, type WatchHandlers } from '../store.js';

const log = componentLogger('store', { backend: 'sqlite' });

/** Where a watcher that starts in the past reads the history it has to replay. */
export interface HistorySource {
  /**
   * Up to `limit` events for keys starting with `prefix` with revision > `after`, in
   * revision order. Called synchronously from a delivery turn, never inside a write.
   */
  readHistory(prefix: string, after: number, limit: number): WatchEvent[];
  /** The latest revision committed; every event up to it can be read from history. */
  latestRevision(): number;
}

type WatcherState = 'replaying' | 'live' | 'ended';

/**
 * Fans committed writes out to the watches of one store, in process.
 *
 * A new watcher starts in the `replaying` state with a cursor at its start revision and
 * reads history page by page. Live events are ignored while it replays, because they are
 * already in the history it will read. When a page comes back short, the watcher has read
 * everything up to the latest revision; since reading and switching happen in one
 * synchronous turn, no write can fall between them, and from then on it takes live events
 * with revision > cursor. That gives every event exactly once, in revision order.
 *
 * Handlers never run inside the writer's call. The event of a commit that holds one write
 * (a quiet server) reaches a live watcher in a microtask queued by the commit, so it goes
 * out (through the API server's cache, to every watch client) before the writer's own
 * continuation runs, not one turn of the event loop later, when whatever I/O arrived
 * meanwhile would be served first. The events of a commit of several writes (a busy
 * server's group commit) wait for the next turn, where they, and what their watchers do
 * about them, gather into larger batches: delivering those at once too cost the scheduler
 * bench 6-11 % of its throughput. Replay pages and the end of a watch each take a turn of
 * their own.
 */
export class WatchHub {
  private readonly watchers = new Set<Watcher>();

  constructor(
    private readonly source: HistorySource,
    private readonly pageSize: number,
  ) {}

  /** Registers a watcher for revisions > after; the caller has checked compaction. */
  add(prefix: string, after: number, handlers: WatchHandlers): Watch {
    const watcher = new Watcher(this, prefix, after, handlers);
    this.watchers.add(watcher);
    watcher.schedule();
    return { cancel: () => watcher.cancel() };
  }

  /**
   * Offers one committed event to every live watcher; called right after the commit.
   * `lone`: the commit held this write alone (delivered in a microtask, see above).
   */
  publish(event: WatchEvent, lone = false): void {
    for (const watcher of this.watchers) watcher.offer(event, lone);
  }

  /**
   * Ends the watchers still replaying from before `compactRevision`: the history they have
   * yet to read may be gone. Live watchers hold their events in memory and are unaffected.
   */
  compacted(compactRevision: number): void {
    for (const watcher of this.watchers) {
      if (!watcher.replayingBefore(compactRevision)) continue;
      const message = `watch history before revision ${compactRevision} was compacted`;
      watcher.end(new StoreError('Compacted', message, compactRevision));
    }
  }

  /** Ends every watcher with `err`, after the events already queued for it. */
  endAll(err: Error): void {
    for (const watcher of this.watchers) watcher.end(err);
  }

  /** @internal */
  remove(watcher: Watcher): void {
    this.watchers.delete(watcher);
  }

  /** @internal */
  readPage(prefix: string, after: number): { events: WatchEvent[]; complete: boolean } {
    const events = this.source.readHistory(prefix, after, this.pageSize);
    return { events, complete: events.length < this.pageSize };
  }

  /** @internal */
  latestRevision(): number {
    return this.source.latestRevision();
  }
}

class Watcher {
  private state: WatcherState = 'replaying';
  private queue: WatchEvent[] = [];
  private scheduled = false;
  private cancelled = false;
  private endError: Error | undefined;

  constructor(
    private readonly hub: WatchHub,
    private readonly prefix: string,
    /** The last revision queued (or replayed); the next event must be newer. */
    private cursor: number,
    private readonly handlers: WatchHandlers,
  ) {}

  offer(event: WatchEvent, lone: boolean): void {
    if (this.state !== 'live' || event.revision <= this.cursor) return;
    if (!event.kv.key.startsWith(this.prefix)) return;
    this.queue.push(event);
    this.cursor = event.revision;
    this.schedule(lone);
  }

  replayingBefore(compactRevision: number): boolean {
    return this.state === 'replaying' && this.cursor + 1 < compactRevision;
  }

  end(err: Error): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.endError = err;
    this.hub.remove(this);
    this.schedule();
  }

  cancel(): void {
    this.cancelled = true;
    this.state = 'ended';
    this.queue = [];
    this.hub.remove(this);
  }

  /** `soon`: in a microtask rather than on the next turn. */
  schedule(soon = false): void {
    if (this.scheduled || this.cancelled) return;
    this.scheduled = true;
    if (soon) queueMicrotask(() => this.flush());
    else setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    if (this.cancelled) return;
    if (this.state === 'replaying') this.replayPage();
    this.deliverQueue();
    if (this.cancelled) return;
    if (this.state === 'replaying') this.schedule();
    else if (this.state === 'ended' && this.endError) this.deliverEnd(this.endError);
  }

  private replayPage(): void {
    let page: { events: WatchEvent[]; complete: boolean };
    try {
      page = this.hub.readPage(this.prefix, this.cursor);
    } catch (err) {
      this.end(err as Error);
      return;
    }
    this.queue.push(...page.events);
    const last = page.events.at(-1);
    if (last) this.cursor = last.revision;
    if (!page.complete) return;
    // Everything up to the latest revision has been read in this same turn.
    this.cursor = Math.max(this.cursor, this.hub.latestRevision());
    this.state = 'live';
  }

  private deliverQueue(): void {
    // Handlers may write; those writes commit in a later turn, and their events follow it.
    const batch = this.queue;
    this.queue = [];
    for (const event of batch) {
      if (this.cancelled) return;
      try {
        this.handlers.onEvent(event);
      } catch (err) {
        log.warn({ err, prefix: this.prefix, revision: event.revision }, 'watch handler threw');
      }
    }
    if (this.queue.length > 0) this.schedule();
  }

  private deliverEnd(err: Error): void {
    if (this.queue.length > 0) return; // the scheduled turn delivers the rest first
    this.endError = undefined;
    try {
      this.handlers.onError?.(err);
    } catch (thrown) {
      log.warn({ err: thrown, prefix: this.prefix }, 'watch error handler threw');
    }
  }
}
