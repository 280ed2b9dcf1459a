import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, openSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';

import {
  StoreError,
  type KeyValue,
  type ListOptions,
  type ListResult,
  type Store,
  type Watch,
  type WatchEvent,
  type WatchEventType,
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

/** A write waiting for the next group commit; `run` does it at the revision it is given. */
interface PendingWrite {
  type: WatchEventType;
  run: (revision: number) => Written;
  resolve: (written: Written) => void;
  reject: (err: unknown) => void;
}

/**
 * The embedded Store backend: one SQLite file (or memory) owned by one process.
 *
 * Writes are group-committed: the writes called in one turn of the event loop wait for the
 * next `setImmediate` and are then made in one SQLite transaction. Each write checks its
 * precondition (Conflict, NotFound, AlreadyExists) before it changes a row, so a refused
 * write leaves nothing behind and does not undo the others; any other failure inside the
 * transaction (a fault of SQLite itself) rolls the whole batch back and fails it. A
 * burst of writes thus shares one commit instead of paying for one each. Writes still take
 * revisions in the order the methods are called, a write is committed before its promise
 * settles, and a read never sees a write whose promise has not settled yet. Watches are served in process (see `WatchHub`): a second
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
  /** Runs a batch of pending writes in one transaction; results line up with the batch. */
  private readonly batchTx: (batch: PendingWrite[]) => (Written | Error)[];
  private pending: PendingWrite[] = [];

  /**
   * Opens (creating if needed) the store at `path`, or a private in-memory one for
   * ':memory:'. Synchronous; throws if the file cannot be opened or is not a store.
   */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    let db: Database.Database | undefined;
    try {
      if (path !== ':memory:') keepPrivate(path);
      db = new Database(path);
      applySchema(db);
      if (path !== ':memory:') for (const side of ['-wal', '-shm']) keepPrivate(path + side, false);
      return new SqliteStore(db, options);
    } catch (err) {
      db?.close();
      throw new Error(`cannot open the store ${path}: ${(err as Error).message}${fullDisk(path)}`, {
        cause: err,
      });
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
    this.batchTx = db.transaction((batch: PendingWrite[]) => this.runBatch(batch));
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
    const { kv } = await this.enqueue('ADDED', (rev) => this.doCreate(key, value, rev));
    return { ...kv };
  }

  async update(key: string, value: string, expectedModRevision?: number): Promise<KeyValue> {
    const update = (rev: number) => this.doUpdate(key, value, rev, expectedModRevision);
    const { kv } = await this.enqueue('MODIFIED', update);
    return { ...kv };
  }

  async delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    const del = (rev: number) => this.doDelete(key, rev, expectedModRevision);
    const { prev } = await this.enqueue('DELETED', del);
    return { ...prev! };
  }

  /** Queues a write for the next group commit; the first of a batch schedules it. */
  private enqueue(type: WatchEventType, run: (revision: number) => Written): Promise<Written> {
    this.ensureOpen();
    return new Promise((resolve, reject) => {
      this.pending.push({ type, run, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => this.flush());
    });
  }

  /**
   * Commits the queued writes in one transaction, then publishes their events and settles
   * their promises in revision order. If the commit itself fails, every write of the batch
   * fails with that error and none took a revision.
   */
  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    if (this.closed) {
      for (const write of batch) write.reject(new StoreError('Closed', 'store is closed'));
      return;
    }
    let results: (Written | Error)[];
    try {
      results = this.batchTx(batch);
    } catch (err) {
      for (const write of batch) write.reject(err);
      return;
    }
    batch.forEach((write, i) => {
      const result = results[i];
      if (result instanceof Error) return write.reject(result);
      const { kv, prev } = result;
      const event: WatchEvent = { type: write.type, revision: kv.modRevision, kv };
      if (prev) event.prev = prev;
      this.committed(event, batch.length === 1);
      write.resolve(result);
    });
  }

  /**
   * Inside the batch's transaction: each write at the next revision. A write refused with a
   * StoreError changed nothing (see doCreate, doUpdate, doDelete) and takes no revision;
   * anything else is rethrown, which rolls the batch back. Savepoints per write would
   * cover that case too, at two more statements for every write.
   */
  private runBatch(batch: PendingWrite[]): (Written | Error)[] {
    let revision = this.revision;
    return batch.map((write) => {
      try {
        const written = write.run(revision + 1);
        revision++;
        return written;
      } catch (err) {
        if (err instanceof StoreError) return err;
        throw err;
      }
    });
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

  /**
   * Commits the writes still queued, then closes the file; watches end with Closed after
   * the events already queued for them.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.hub.endAll(new StoreError('Closed', 'store is closed'));
    this.db.close();
  }

  // The writes below check before they change anything: see runBatch.
  private doCreate(key: string, value: string, revision: number): Written {
    if (this.stmts.get.get(key)) {
      throw new StoreError('AlreadyExists', `key ${key} already exists`);
    }
    this.stmts.insertLog.run(revision, key, value, revision, null, 0);
    this.stmts.insertCurrent.run(key, value, revision, revision);
    return { kv: { key, value, createRevision: revision, modRevision: revision } };
  }

  private doUpdate(key: string, value: string, revision: number, expected?: number): Written {
    const prev = this.existing(key, expected);
    const { createRevision, modRevision } = prev;
    this.stmts.insertLog.run(revision, key, value, createRevision, modRevision, 0);
    this.stmts.updateCurrent.run(value, revision, key);
    return { kv: { key, value, createRevision, modRevision: revision }, prev };
  }

  private doDelete(key: string, revision: number, expected?: number): Written {
    const prev = this.existing(key, expected);
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
  private committed(event: WatchEvent, lone = false): void {
    this.revision = event.revision;
    this.hub.publish(event, lone);
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

/**
 * Says so when the disk of `path` has no space left: SQLite reports only "disk I/O error"
 * when it cannot make the files of its write-ahead log there.
 */
function fullDisk(path: string): string {
  if (path === ':memory:') return '';
  try {
    const fs = statfsSync(dirname(path));
    return fs.bavail === 0 ? ` (no space left on the device of ${dirname(path)})` : '';
  } catch {
    return '';
  }
}

/**
 * The store holds every Secret: its file is readable by its owner only (0600), whatever
 * the mode of the directory it is in or the process's umask, also when an earlier version
 * made it with another mode. SQLite gives its -wal and -shm files the database's mode.
 */
function keepPrivate(file: string, create = true): void {
  if (create) closeSync(openSync(file, 'a', 0o600));
  else if (!existsSync(file)) return;
  chmodSync(file, 0o600);
}
