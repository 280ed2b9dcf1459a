import type { IEvent, IKeyValue } from 'etcd3';
import type { KeyValue, WatchEvent } from '../store.js';

/**
 * etcd's revisions start at 1 on a new cluster, with no keys written; the Store contract
 * starts an empty store at 0. Store revision = etcd revision - 1 maps the one onto the
 * other for every revision, so a dedicated etcd reads as the contract asks.
 */
export const REVISION_OFFSET = 1;

/** Translates keys and revisions between the Store's view and etcd's. */
export class Codec {
  /** `prefix` is prepended to every Store key, so stores can share one etcd. */
  constructor(readonly prefix: Buffer) {}

  key(key: string): Buffer {
    return Buffer.concat([this.prefix, Buffer.from(key, 'utf8')]);
  }

  storeKey(raw: Buffer): string {
    return raw.subarray(this.prefix.length).toString('utf8');
  }

  toEtcd(revision: number): number {
    return revision + REVISION_OFFSET;
  }

  fromEtcd(revision: string | number): number {
    return Number(revision) - REVISION_OFFSET;
  }

  kv(raw: IKeyValue): KeyValue {
    return {
      key: this.storeKey(raw.key),
      value: raw.value.toString('utf8'),
      createRevision: this.fromEtcd(raw.create_revision),
      modRevision: this.fromEtcd(raw.mod_revision),
    };
  }

  /**
   * A watch event in Store terms. A put whose create and mod revisions agree created the
   * key. A delete carries the last value at the delete's revision; etcd only sends that
   * value (as prev_kv) when the watch asked for it, which every Store watch does.
   */
  event(raw: IEvent): WatchEvent {
    const revision = this.fromEtcd(raw.kv.mod_revision);
    const prev = raw.prev_kv ? this.kv(raw.prev_kv) : undefined;
    if (raw.type === 'Delete') {
      const last = prev ?? { ...this.kv(raw.kv), createRevision: 0 };
      const kv = { ...last, modRevision: revision };
      return prev ? { type: 'DELETED', revision, kv, prev } : { type: 'DELETED', revision, kv };
    }
    const kv = this.kv(raw.kv);
    const type = kv.createRevision === kv.modRevision ? 'ADDED' : 'MODIFIED';
    return prev ? { type, revision, kv, prev } : { type, revision, kv };
  }
}
