import { Etcd3, type IKeyValue, type IRequestOp, type ITxnResponse } from 'etcd3';
import {
  StoreError,
  type KeyValue,
  type ListOptions,
  type ListResult,
  type Store,
  type Watch,
  type WatchHandlers,
} from '../store.js';
import { Codec } from './codec.js';
import { EtcdWatch } from './etcd-watch.js';
import { keyAfter, maxKey, prefixRange } from './keys.js';

export interface EtcdStoreOptions {
  /** Client URLs of the etcd members, e.g. `http://127.0.0.1:2379`. */
  hosts: string[];
  /** Prepended to every key, so several clusters can share one etcd (default none). */
  prefix?: string;
}

/** How long close() waits for etcd to confirm that watches are cancelled. */
const CLOSE_WAIT_MS = 1000;

/**
 * The Store backed by etcd, for clusters with more than one API server.
 *
 * Mapping onto etcd:
 * - Store revision = etcd revision - 1 (see `REVISION_OFFSET`): a new etcd, which is at
 *   revision 1 with no keys, is a store at revision 0. With a shared etcd (a prefix) the
 *   revision also counts the other tenants' writes; it stays one increasing counter.
 * - create, and update/delete with an expected modRevision, are etcd transactions that
 *   compare create_revision or mod_revision; a failed compare reads the key once more to
 *   tell NotFound from Conflict.
 * - delete returns the last value with its own modRevision; its DELETED event carries that
 *   value at the delete's revision, with `prev` = the last value.
 * - compact(R) compacts etcd one revision earlier than store revision R (at etcd revision
 *   R, by the offset). etcd's compaction at C keeps each key's newest version at or below C
 *   unless it is a delete, so compacting at R itself would lose a delete made at R and the
 *   previous value of an update made at R; one revision earlier keeps the events from R on,
 *   with their previous values, as the contract asks. The store itself then refuses lists
 *   below R and watches from before R - 1 with Compacted, which etcd would still serve.
 *   R beyond the current revision is a RangeError; R at or below the compacted revision
 *   does nothing.
 * - etcd does not report its compact revision directly. `compactedRevision()` finds it by
 *   bisecting over revisions with cheap reads (a read at r fails exactly when r is below
 *   it), starting from the highest compaction this store made or found before. Compacted
 *   errors carry the revision found that way. etcd has no revision below 1, so a compaction
 *   at store revision 1 by another client is indistinguishable from none and reads as 0.
 * - The refusals use the compaction this store knows of: until it learns of a compaction
 *   made elsewhere (from compactedRevision(), or from etcd refusing an older read), it may
 *   still serve the one revision below it, with correct data. A watch that etcd refuses
 *   ends through onError with Compacted.
 * - The client library retries failed requests (three times by default), so a write whose
 *   answer was lost may be applied and then reported as AlreadyExists or Conflict.
 */
export class EtcdStore implements Store {
  private closed = false;
  /** The highest store compaction known (made here or found in etcd). */
  private compacted = 0;
  private readonly watches = new Set<EtcdWatch>();

  private constructor(
    private readonly client: Etcd3,
    private readonly codec: Codec,
  ) {}

  /** Connects to etcd and reads its compaction state; rejects if etcd cannot be reached. */
  static async open(options: EtcdStoreOptions): Promise<EtcdStore> {
    const client = new Etcd3({ hosts: options.hosts });
    const store = new EtcdStore(client, new Codec(Buffer.from(options.prefix ?? '', 'utf8')));
    try {
      await store.compactedRevision();
    } catch (err) {
      client.close();
      throw err;
    }
    return store;
  }

  async currentRevision(): Promise<number> {
    this.ensureOpen();
    const res = await this.call(() =>
      this.client.kv.range({ key: this.probeKey(), count_only: true }),
    );
    return this.codec.fromEtcd(res.header.revision);
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.ensureOpen();
    const res = await this.call(() => this.client.kv.range({ key: this.codec.key(key) }));
    const [raw] = res.kvs;
    return raw ? this.codec.kv(raw) : undefined;
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.ensureOpen();
    const range = prefixRange(this.codec.key(prefix));
    const start =
      opts.startAfter === undefined
        ? range.key
        : maxKey(range.key, keyAfter(this.codec.key(opts.startAfter)));
    if (opts.revision !== undefined && opts.revision < this.compacted) {
      throw this.compactedError(`list at ${opts.revision}`);
    }
    const revision = opts.revision === undefined ? 0 : this.codec.toEtcd(opts.revision);
    const request = { key: start, range_end: range.rangeEnd, limit: opts.limit ?? 0, revision };
    const res = await this.call(() => this.client.kv.range(request)).catch(async (err) => {
      if (!(err instanceof StoreError && err.code === 'Compacted')) throw err;
      await this.compactedRevision();
      throw this.compactedError(`list at ${opts.revision}`);
    });
    return {
      items: res.kvs.map((raw) => this.codec.kv(raw)),
      revision: opts.revision ?? this.codec.fromEtcd(res.header.revision),
    };
  }

  async create(key: string, value: string): Promise<KeyValue> {
    this.ensureOpen();
    const raw = this.codec.key(key);
    const res = await this.call(() =>
      this.client.kv.txn({
        compare: [{ key: raw, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key: raw, value: Buffer.from(value, 'utf8') } }],
      }),
    );
    if (!res.succeeded) throw new StoreError('AlreadyExists', `${key} already exists`);
    const revision = this.codec.fromEtcd(res.header.revision);
    return { key, value, createRevision: revision, modRevision: revision };
  }

  async update(key: string, value: string, expectedModRevision?: number): Promise<KeyValue> {
    this.ensureOpen();
    const raw = this.codec.key(key);
    const put = { key: raw, value: Buffer.from(value, 'utf8'), prev_kv: true };
    const res = await this.guarded(key, expectedModRevision, { request_put: put });
    const prev = res.responses[0]!.response_put.prev_kv;
    return {
      key,
      value,
      createRevision: this.codec.fromEtcd(prev.create_revision),
      modRevision: this.codec.fromEtcd(res.header.revision),
    };
  }

  async delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    this.ensureOpen();
    const del = { key: this.codec.key(key), prev_kv: true };
    const res = await this.guarded(key, expectedModRevision, { request_delete_range: del });
    return this.codec.kv(res.responses[0]!.response_delete_range.prev_kvs[0]!);
  }

  watch(prefix: string, afterRevision: number, handlers: WatchHandlers): Watch {
    this.ensureOpen();
    if (afterRevision + 1 < this.compacted) {
      throw this.compactedError(`watch after ${afterRevision}`);
    }
    const range = prefixRange(this.codec.key(prefix));
    const watcher = this.client
      .watch()
      .inRange({ start: range.key, end: range.rangeEnd })
      .withPreviousKV()
      .startRevision(String(this.codec.toEtcd(afterRevision + 1)))
      .watcher();
    const owner = {
      codec: this.codec,
      explain: (err: Error, after: number) => this.explainWatchError(err, after),
      forget: (watch: EtcdWatch) => this.watches.delete(watch),
    };
    const watch = new EtcdWatch(watcher, owner, afterRevision, handlers);
    this.watches.add(watch);
    return watch;
  }

  async compact(revision: number): Promise<void> {
    this.ensureOpen();
    if (revision <= this.compacted) return;
    const current = await this.currentRevision();
    if (revision > current) {
      throw new RangeError(`cannot compact at ${revision}, beyond the current ${current}`);
    }
    const target = this.codec.toEtcd(revision) - 1;
    try {
      await this.call(() => this.client.kv.compact({ revision: target }));
    } catch (err) {
      // Someone compacted at or beyond `revision` already: nothing is left to do.
      if (!(err instanceof StoreError && err.code === 'Compacted')) throw err;
    }
    this.compacted = Math.max(this.compacted, revision);
  }

  async compactedRevision(): Promise<number> {
    this.ensureOpen();
    // A store compaction at R is an etcd compaction at toEtcd(R) - 1, numerically R.
    let low = Math.max(1, this.codec.toEtcd(this.compacted) - 1);
    let high = this.codec.toEtcd(await this.currentRevision());
    // Invariant: etcd keeps `high`; every revision below `low` is known to be compacted.
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      if (await this.readableAt(middle)) high = middle;
      else low = middle + 1;
    }
    const found = low === 1 ? 0 : low;
    this.compacted = Math.max(this.compacted, found);
    return this.compacted;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const watches = [...this.watches];
    for (const watch of watches) watch.fail(closedError());
    // Cancelling first keeps the client from reconnecting watchers after it is closed.
    const cancelled = Promise.all(watches.map((watch) => watch.stopped));
    await Promise.race([cancelled, new Promise((r) => setTimeout(r, CLOSE_WAIT_MS).unref())]);
    this.client.close();
  }

  /**
   * Runs `op` on the key if it exists and, with `expected`, still has that modRevision;
   * otherwise NotFound or Conflict.
   */
  private async guarded(key: string, expected: number | undefined, op: IRequestOp) {
    const raw = this.codec.key(key);
    const compare =
      expected === undefined
        ? { key: raw, target: 'Create' as const, result: 'Greater' as const, create_revision: 0 }
        : {
            key: raw,
            target: 'Mod' as const,
            result: 'Equal' as const,
            mod_revision: this.codec.toEtcd(expected),
          };
    const res: ITxnResponse = await this.call(() =>
      this.client.kv.txn({
        compare: [compare],
        success: [op],
        failure: [{ request_range: { key: raw, keys_only: true } }],
      }),
    );
    if (res.succeeded) return res;
    const found: IKeyValue[] = res.responses[0]!.response_range.kvs;
    if (found.length === 0) throw new StoreError('NotFound', `${key} not found`);
    throw new StoreError('Conflict', `${key} was modified since revision ${expected}`);
  }

  private async readableAt(etcdRevision: number): Promise<boolean> {
    try {
      const key = this.probeKey();
      await this.call(() =>
        this.client.kv.range({ key, count_only: true, revision: etcdRevision }),
      );
      return true;
    } catch (err) {
      if (err instanceof StoreError && err.code === 'Compacted') return false;
      throw err;
    }
  }

  /** Runs an etcd request, turning etcd's answers into Store errors. */
  private async call<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      throw this.translate(err);
    }
  }

  private translate(err: unknown): unknown {
    const message = err instanceof Error ? err.message : String(err);
    if (this.closed) return closedError();
    if (message.includes('required revision has been compacted')) {
      return new StoreError('Compacted', message);
    }
    if (message.includes('required revision is a future revision')) {
      return new RangeError(`etcd: ${message}`);
    }
    return err;
  }

  private async explainWatchError(err: Error, afterRevision: number): Promise<Error> {
    if (this.closed) return closedError();
    try {
      const compacted = await this.compactedRevision();
      if (afterRevision + 1 < compacted) return this.compactedError(`watch after ${afterRevision}`);
    } catch {
      // etcd cannot say why: report the watch's own error.
    }
    return err;
  }

  private compactedError(what: string): StoreError {
    const revision = this.compacted;
    return new StoreError('Compacted', `${what}: compacted up to ${revision}`, revision);
  }

  /** Any key will do for reads that only want a revision; etcd refuses the empty key. */
  private probeKey(): Buffer {
    return prefixRange(this.codec.key('')).key;
  }

  private ensureOpen(): void {
    if (this.closed) throw closedError();
  }
}

function closedError(): StoreError {
  return new StoreError('Closed', 'the store is closed');
}
