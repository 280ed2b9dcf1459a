/**
 * The Store contract: a key-value store with one strictly increasing revision, in the
 * manner of etcd. Every successful write takes the next revision. Keys are strings such
 * as `/registry/pods/default/web-1`; values are the serialized object (JSON text).
 *
 * Backends live in folders of their own (`sqlite/`, later `etcd/`) and are checked by the
 * shared contract suite in `contract.ts`.
 */

/** One key as stored, with the revisions that created and last modified it. */
export interface KeyValue {
  key: string;
  value: string;
  /** Revision of the write that created the key (etcd's create_revision). */
  createRevision: number;
  /** Revision of the last write to the key (etcd's mod_revision); the resourceVersion. */
  modRevision: number;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One change, delivered to watchers in revision order, exactly once. */
export interface WatchEvent {
  type: WatchEventType;
  /** The revision of the write; for DELETED, the revision of the delete. */
  revision: number;
  /** The key after the write; for DELETED, the last value before the delete. */
  kv: KeyValue;
  /** The value before the write, when there was one. */
  prev?: KeyValue;
}

export interface ListResult {
  items: KeyValue[];
  /** The store revision at which the list was read. */
  revision: number;
}

export interface ListOptions {
  /** Read the keys as they were at this revision; must not be compacted. */
  revision?: number;
  /** Return at most this many keys (ordered by key). */
  limit?: number;
  /** Start after this key (exclusive), for paging. */
  startAfter?: string;
}

export interface Watch {
  /** Stops delivery; no handler call happens after it returns. */
  cancel(): void;
}

export interface WatchHandlers {
  /** Called for each change with revision > the watch's start revision, in order. */
  onEvent(event: WatchEvent): void;
  /** Called once if the watch ends for a reason other than cancel() (e.g. store closed). */
  onError?(err: Error): void;
}

/** Stable error codes for expected store outcomes. */
export type StoreErrorCode = 'NotFound' | 'AlreadyExists' | 'Conflict' | 'Compacted' | 'Closed';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    /** For Compacted: the oldest revision still available. */
    readonly compactRevision?: number,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export interface Store {
  /** The latest revision written (0 for an empty store). */
  currentRevision(): Promise<number>;

  /** The key's current value, or undefined. */
  get(key: string): Promise<KeyValue | undefined>;

  /** Keys starting with prefix, ordered by key. */
  list(prefix: string, opts?: ListOptions): Promise<ListResult>;

  /** Creates the key; AlreadyExists if it is there. */
  create(key: string, value: string): Promise<KeyValue>;

  /**
   * Replaces the key's value. With expectedModRevision, the write happens only if the key's
   * modRevision still equals it (compare-and-swap), otherwise Conflict. NotFound if absent.
   */
  update(key: string, value: string, expectedModRevision?: number): Promise<KeyValue>;

  /**
   * Deletes the key and returns its last value; the delete takes a revision of its own.
   * With expectedModRevision, Conflict if the key changed. NotFound if absent.
   */
  delete(key: string, expectedModRevision?: number): Promise<KeyValue>;

  /**
   * Watches keys with the prefix for changes after `afterRevision` (exclusive): the events of
   * revisions afterRevision+1 .. now are replayed first, then live changes follow. Throws
   * Compacted if afterRevision+1 has been compacted away (the client must re-list).
   */
  watch(prefix: string, afterRevision: number, handlers: WatchHandlers): Watch;

  /** Forgets history before `revision`; watches and lists at older revisions get Compacted. */
  compact(revision: number): Promise<void>;

  /** The oldest revision whose history is still kept. */
  compactedRevision(): Promise<number>;

  close(): Promise<void>;
}
