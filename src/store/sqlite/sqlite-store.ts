import Database from 'better-sqlite3';
import {
  StoreError,
  type KeyValue,
  type ListOptions,
  type ListResult,
  type Store,
  type Watch,
  type WatchEvent,
  type WatchHandlers,
} from '../store.js';
import { compareKeys, prefixEnd } from './keys.js';
import {
  applySchema,
  prepareStatements,
  RangeStatements,
  type HistoryRow,
  type Statements,
} from './schema.js';
import { WatchHub } from './watch-hub.js';

export interface SqliteStoreOptions {
  /** Events a watch that starts in the past reads from the log per turn (default 1000). */
  watchPageSize?: number;
  /** Log rows compaction examines per turn before yielding (default 5000). */
  compactChunkRows?: number;
}

interface Written {
  kv: KeyValue;
  prev?: KeyValue;
}

/**
 * The embedded Store backend: one SQLite file (or memory) owned by one process.
 *
 * Every write is one SQLite transaction, run synchronously inside the async method, so
 * writes take revisions in the order the methods are called and a write is committed
 * before its promise settles. Watches are served in process (see `WatchHub`): a second
 * process writing to the same file would neither be seen by watchers nor keep the cached
 * revision counter true, so exactly one process may open a file at a time.
 *
 * Semantics beyond the Store contract:
 * - `delete` returns the key's last value with the modRevision it had before the delete.
 *   Its DELETED event carries that value with `kv.modRevision` = the delete's revision
 *   (the resourceVersion Kubernetes gives a deleted object) and `prev` = the last value
 *   with its own modRevision.
 * - `compact(R)`: `compactedRevision()` becomes R. The state at R and every event with
 *   revision >= R stay available, so `list({ revision })` works for revision >= R and
 *   `watch(prefix, after)` for after >= R - 1; older ones fail with Compacted and
 *   `compactRevision` = R. R beyond the current revision is a RangeError; R at or below
 *   the compacted revision does nothing.
 * - A list or watch at a revision beyond the current one is a RangeError for list and
 *   allowed for watch (it delivers changes once the store gets there).
 * - `limit: 0` means no limit, as in etcd.
 */
export class SqliteStore implements Store {
  private revision: number;
  private compactRevision: number;
  private closed = false;
  private readonly stmts: Statements;
  private readonly ranges: RangeStatements;
  private readonly hub: WatchHub;
  private readonly compactChunkRows: number;
  private readonly createTx: (key: string, value: string) => Written;
  private readonly updateTx: (key: string, value: string, expected?: number) => Written;
  private readonly deleteTx: (key: string, expected?: number) => Written;

  /**
   * Opens (creating if needed) the store at `path`, or a private in-memory one for
   * ':memory:'. Synchronous; throws if the file cannot be opened or is not a store.
   */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    const db = new Database(path);
    try {
      applySchema(db);
      return new SqliteStore(db, options);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  private constructor(
    private readonly db: Database.Database,
    options: SqliteStoreOptions,
  ) {
    this.stmts = prepareStatements(db);
    this.ranges = new RangeStatements(db);
    this.compactChunkRows = options.compactChunkRows ?? 5000;
    this.compactRevision = (this.stmts.getMeta.get('compacted') as number | undefined) ?? 0;
    // The log always keeps the newest row, but meta covers a log emptied by other means.
    const logged = (this.stmts.maxRevision.get() as number | null) ?? 0;
    const saved = (this.stmts.getMeta.get('revision') as number | undefined) ?? 0;
    this.revision = Math.max(logged, saved, this.compactRevision);
    this.hub = new WatchHub(
      {
        readHistory: (prefix, after, limit) => this.readHistory(prefix, after, limit),
        latestRevision: () => this.revision,
      },
      options.watchPageSize ?? 1000,
    );
    this.createTx = db.transaction((key: string, value: string) => this.doCreate(key, value));
    this.updateTx = db.transaction((key: string, value: string, expected?: number) =>
      this.doUpdate(key, value, expected),
    );
    this.deleteTx = db.transaction((key: string, expected?: number) =>
      this.doDelete(key, expected),
    );
  }

  async currentRevision(): Promise<number> {
    this.ensureOpen();
    return this.revision;
  }

  async compactedRevision(): Promise<number> {
    this.ensureOpen();
    return this.compactRevision;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.ensureOpen();
    return this.stmts.get.get(key) as KeyValue | undefined;
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.ensureOpen();
    const revision = this.readRevision(opts.revision);
    const upper = prefixEnd(prefix);
    const after = opts.startAfter !== undefined && compareKeys(opts.startAfter, prefix) >= 0;
    const shape = this.ranges.pick(after, upper !== undefined);
    const params: Record<string, unknown> = {
      lower: after ? opts.startAfter : prefix,
      limit: opts.limit ? opts.limit : -1,
    };
    if (upper !== undefined) params.upper = upper;
    if (revision === this.revision) {
      return { items: shape.listCurrent.all(params) as KeyValue[], revision };
    }
    params.revision = revision;
    return { items: shape.listAtRevision.all(params) as KeyValue[], revision };
  }

  async create(key: string, value: string): Promise<KeyValue> {
    this.ensureOpen();
    const { kv } = this.createTx(key, value);
    this.committed({ type: 'ADDED', revision: kv.modRevision, kv });
    return { ...kv };
  }

  async update(key: string, value: string, expectedModRevision?: number): Promise<KeyValue> {
    this.ensureOpen();
    const { kv, prev } = this.updateTx(key, value, expectedModRevision);
    this.committed({ type: 'MODIFIED', revision: kv.modRevision, kv, prev });
    return { ...kv };
  }

  async delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    this.ensureOpen();
    const { kv, prev } = this.deleteTx(key, expectedModRevision);
    this.committed({ type: 'DELETED', revision: kv.modRevision, kv, prev });
    return { ...prev! };
  }

  watch(prefix: string, afterRevision: number, handlers: WatchHandlers): Watch {
    this.ensureOpen();
    if (!Number.isInteger(afterRevision) || afterRevision < 0) {
      throw new RangeError(`watch revision must be a non-negative integer: ${afterRevision}`);
    }
    if (afterRevision + 1 < this.compactRevision) {
      throw this.compactedError(afterRevision + 1);
    }
    return this.hub.add(prefix, afterRevision, handlers);
  }

  async compact(revision: number): Promise<void> {
    this.ensureOpen();
    if (!Number.isInteger(revision) || revision < 0 || revision > this.revision) {
      throw new RangeError(`cannot compact at ${revision}; current revision ${this.revision}`);
    }
    if (revision <= this.compactRevision) return;
    this.setMetaTx(revision);
    this.compactRevision = revision;
    this.hub.compacted(revision);
    await this.pruneLog(revision);
  }

  /** Closes the file; watches end with Closed after the events already queued for them. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.hub.endAll(new StoreError('Closed', 'store is closed'));
    this.db.close();
  }

  private doCreate(key: string, value: string): Written {
    if (this.stmts.get.get(key)) {
      throw new StoreError('AlreadyExists', `key ${key} already exists`);
    }
    const revision = this.revision + 1;
    this.stmts.insertLog.run(revision, key, value, revision, null, 0);
    this.stmts.insertCurrent.run(key, value, revision, revision);
    return { kv: { key, value, createRevision: revision, modRevision: revision } };
  }

  private doUpdate(key: string, value: string, expected?: number): Written {
    const prev = this.existing(key, expected);
    const revision = this.revision + 1;
    const { createRevision, modRevision } = prev;
    this.stmts.insertLog.run(revision, key, value, createRevision, modRevision, 0);
    this.stmts.updateCurrent.run(value, revision, key);
    return { kv: { key, value, createRevision, modRevision: revision }, prev };
  }

  private doDelete(key: string, expected?: number): Written {
    const prev = this.existing(key, expected);
    const revision = this.revision + 1;
    const { createRevision, modRevision } = prev;
    this.stmts.insertLog.run(revision, key, null, createRevision, modRevision, 1);
    this.stmts.deleteCurrent.run(key);
    return { kv: { ...prev, modRevision: revision }, prev };
  }

  /** The key's current value, checked against the caller's expected modRevision. */
  private existing(key: string, expected: number | undefined): KeyValue {
    const kv = this.stmts.get.get(key) as KeyValue | undefined;
    if (!kv) throw new StoreError('NotFound', `key ${key} not found`);
    if (expected !== undefined && kv.modRevision !== expected) {
      const message = `key ${key} is at revision ${kv.modRevision}, expected ${expected}`;
      throw new StoreError('Conflict', message);
    }
    return kv;
  }

  /** Runs after the transaction has committed, so watchers never see a rolled-back write. */
  private committed(event: WatchEvent): void {
    this.revision = event.revision;
    this.hub.publish(event);
  }

  private readRevision(requested: number | undefined): number {
    if (requested === undefined) return this.revision;
    if (!Number.isInteger(requested) || requested < 0 || requested > this.revision) {
      throw new RangeError(`cannot read at ${requested}; current revision ${this.revision}`);
    }
    if (requested < this.compactRevision) throw this.compactedError(requested);
    return requested;
  }

  private readHistory(prefix: string, after: number, limit: number): WatchEvent[] {
    const upper = prefixEnd(prefix);
    const params: Record<string, unknown> = { after, lower: prefix, limit };
    if (upper !== undefined) params.upper = upper;
    const rows = this.ranges.pick(false, upper !== undefined).history.all(params);
    return (rows as HistoryRow[]).map(historyEvent);
  }

  private setMetaTx(compactRevision: number): void {
    this.db.transaction(() => {
      this.stmts.setMeta.run('compacted', compactRevision);
      this.stmts.setMeta.run('revision', this.revision);
    })();
  }

  /**
   * Deletes the log rows that compaction at `until` made useless, a chunk per turn so
   * that writers and readers are not held up by a long delete.
   */
  private async pruneLog(until: number): Promise<void> {
    let from = this.stmts.minRevision.get() as number | null;
    while (from !== null && from < until && !this.closed) {
      const chunkEnd = this.stmts.chunkEnd.get(from, this.compactChunkRows) as number | undefined;
      const to = Math.min(chunkEnd ?? until, until);
      this.stmts.prune.run({ from, to, until });
      from = to;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private compactedError(revision: number): StoreError {
    const message = `revision ${revision} has been compacted; oldest is ${this.compactRevision}`;
    return new StoreError('Compacted', message, this.compactRevision);
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreError('Closed', 'store is closed');
  }
}

/** Rebuilds the watch event a log row was written with. */
function historyEvent(row: HistoryRow): WatchEvent {
  const { revision, key, createRevision } = row;
  const prev: KeyValue | undefined =
    row.prevRevision === null
      ? undefined
      : { key, value: row.prevValue!, createRevision, modRevision: row.prevRevision };
  if (row.deleted) {
    if (!prev) throw new Error(`log row ${revision} deletes ${key} but its value is gone`);
    const kv = { key, value: prev.value, createRevision, modRevision: revision };
    return { type: 'DELETED', revision, kv, prev };
  }
  const kv = { key, value: row.value!, createRevision, modRevision: revision };
  return prev ? { type: 'MODIFIED', revision, kv, prev } : { type: 'ADDED', revision, kv };
}
