import { ApiError } from '../api/errors.js';
import { RESOURCE_TYPES } from '../api/resources.js';
import type { KObject } from '../api/types.js';
import { componentLogger } from '../log.js';
import type { Store, Watch, WatchEvent } from '../store/store.js';
import { resourcePrefix } from './registry.js';

/**
 * The API server's watch cache: a copy of every object kept from one store watch, plus a
 * window of recent changes. Lists and watches are served from it, not from the store; each
 * object is decoded and serialized once per revision, however many watchers see it.
 *
 * One cache covers the whole `/registry/` key space. Objects are grouped by resource prefix
 * (`/registry/core/pods/`), so a list of one resource never scans another.
 */

/**
 * One object at one revision, as every reader shares it: its JSON (with resourceVersion)
 * and a small view holding only what selectors look at (name, namespace, labels and the
 * resource's selectable fields). The decoded object is not kept: thousands of revisions sit
 * in the window, and a decoded object takes several times the memory of its JSON. `obj`
 * decodes it again for the few readers that need all of it (tables, deletecollection).
 */
export class CachedObject {
  private readonly serialized: string;
  /** The fields selectors read, at the same paths as in the object. */
  readonly view: KObject;

  /**
   * `view`, when given, must be viewOf(key, value decoded) and `value` the registry's own
   * encoding, which never holds metadata.resourceVersion: decoding it again is spared.
   */
  constructor(
    readonly key: string,
    value: string,
    readonly revision: number,
    view?: KObject,
  ) {
    const serialized = withResourceVersion(value, revision, view !== undefined);
    if (view && serialized !== undefined) {
      this.view = view;
      this.serialized = serialized;
      return;
    }
    const obj = decode(value, revision);
    this.view = viewOf(key, obj);
    this.serialized = serialized ?? JSON.stringify(obj);
  }

  json(): string {
    return this.serialized;
  }

  /** The whole object, decoded anew on every call; mutating it changes nothing cached. */
  get obj(): KObject {
    return JSON.parse(this.serialized) as KObject;
  }
}

/** The stored JSON of objects the registry wrote: type meta first, then metadata. */
const CANONICAL_HEAD = /^\{"apiVersion":"[^"\\]*","kind":"[^"\\]*","metadata":\{/;

/**
 * The stored JSON with `metadata.resourceVersion` spliced in, without decoding and
 * encoding it again; undefined when the text is not in the registry's canonical order or
 * may already hold a resourceVersion (the caller then goes the long way). Text of unknown
 * origin that names a resourceVersion anywhere (an Event's involvedObject does) is taken
 * to; `fromRegistry` says the text is the registry's encoding, whose metadata never has one.
 */
export function withResourceVersion(
  value: string,
  revision: number,
  fromRegistry = false,
): string | undefined {
  const head = CANONICAL_HEAD.exec(value);
  if (!head || (!fromRegistry && value.includes('"resourceVersion"'))) return undefined;
  const at = head[0].length;
  const field = `"resourceVersion":"${revision}"`;
  return value.slice(0, at) + field + (value[at] === '}' ? '' : ',') + value.slice(at);
}

let selectableByPrefix: Map<string, string[]> | undefined;

/** The selectable fields of the resource stored under a prefix (besides name, namespace). */
function selectableFieldsOf(prefix: string): string[] {
  selectableByPrefix ??= new Map(
    RESOURCE_TYPES.map((rt) => [resourcePrefix(rt), rt.selectableFields ?? []]),
  );
  return selectableByPrefix.get(prefix) ?? [];
}

/** The selector view of an object stored at `key`. */
export function viewOf(key: string, obj: KObject): KObject {
  return selectorView(obj, selectableFieldsOf(resourcePrefixOf(key)));
}

/**
 * A copy of the parts of `obj` that label and field selectors can look at. The labels are
 * copied too, so later changes to `obj` leave the view as it was.
 */
export function selectorView(obj: KObject, fields: string[]): KObject {
  const { name, namespace, uid } = obj.metadata;
  const labels = obj.metadata.labels && { ...obj.metadata.labels };
  const view: KObject = { metadata: { name, namespace, labels, uid } } as KObject;
  for (const path of fields) {
    const parts = path.split('.');
    let from: any = obj;
    for (const part of parts)
      from = from === null || typeof from !== 'object' ? undefined : from[part];
    if (from === undefined) continue;
    let to: any = view;
    for (const part of parts.slice(0, -1)) to = to[part] ??= {};
    to[parts[parts.length - 1]] = from;
  }
  return view;
}

/** Write hints kept at most (see WatchCache.written). */
const HINTS_MAX = 10_000;

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface CacheEvent {
  type: EventType;
  revision: number;
  prefix: string;
  object: CachedObject;
  prev?: CachedObject;
}

export type CacheListener = (event: CacheEvent) => void;

/** Splits `/registry/core/pods/default/web` into its resource prefix `/registry/core/pods/`. */
export function resourcePrefixOf(key: string): string {
  const parts = key.split('/');
  return parts.slice(0, 4).join('/') + '/';
}

export interface WatchCacheOptions {
  /** How many recent changes to keep for watches that start in the past. */
  windowSize?: number;
  /** How many bytes of stored values the window may hold (default 256 MiB). */
  windowBytes?: number;
}

export class WatchCache {
  private readonly log = componentLogger('watch-cache');
  private readonly byPrefix = new Map<string, Map<string, CachedObject>>();
  private readonly window: CacheEvent[] = [];
  /** The stored size of each window event, kept beside it. */
  private readonly sizes: number[] = [];
  private windowStart = 0;
  private readonly listeners = new Map<string, Set<CacheListener>>();
  /** Views of values just written by this API server, by key; see written(). */
  private readonly hints = new Map<string, { value: string; view: KObject }>();
  private readonly waiters: { revision: number; resolve: () => void }[] = [];
  private storeWatch?: Watch;
  private rev = 0;
  /** Changes after this revision are all in the window; older ones are gone. */
  private floor = 0;
  private readonly windowSize: number;
  private readonly windowBytes: number;
  /** Bytes of the stored values of the events in the window. */
  private bytesInWindow = 0;

  constructor(
    private readonly store: Store,
    opts: WatchCacheOptions = {},
  ) {
    this.windowSize = opts.windowSize ?? 100_000;
    this.windowBytes = opts.windowBytes ?? 256 * 1024 * 1024;
  }

  /** Loads every object and starts following the store. Call once before serving. */
  async start(): Promise<void> {
    const { items, revision } = await this.store.list('/registry/');
    for (const kv of items) {
      const cached = new CachedObject(kv.key, kv.value, kv.modRevision);
      this.objects(resourcePrefixOf(kv.key)).set(kv.key, cached);
    }
    this.rev = revision;
    this.floor = revision;
    this.storeWatch = this.store.watch('/registry/', revision, {
      onEvent: (event) => this.apply(event),
      onError: (err) => this.log.error({ err }, 'store watch ended; the cache no longer follows'),
    });
  }

  stop(): void {
    this.storeWatch?.cancel();
  }

  /** The store revision the cache has caught up to. */
  get revision(): number {
    return this.rev;
  }

  /** Resolves once the cache has seen every write up to `revision`. */
  waitFor(revision: number, timeoutMs = 10_000): Promise<void> {
    if (this.rev >= revision) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new ApiError('Timeout', `Too large resource version: ${revision}, current: ${this.rev}`, {
            retryAfterSeconds: 1,
          }),
        );
      }, timeoutMs);
      this.waiters.push({
        revision,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  objects(prefix: string): Map<string, CachedObject> {
    let map = this.byPrefix.get(prefix);
    if (!map) {
      map = new Map();
      this.byPrefix.set(prefix, map);
    }
    return map;
  }

  get(key: string): CachedObject | undefined {
    return this.byPrefix.get(resourcePrefixOf(key))?.get(key);
  }

  /**
   * The changes after `revision` for a resource prefix, or a 410 Gone error when the
   * window no longer reaches back that far (the client must list again).
   */
  eventsSince(prefix: string, revision: number): CacheEvent[] {
    if (revision < this.floor) {
      throw new ApiError('Expired', `too old resource version: ${revision} (${this.floor})`);
    }
    const out: CacheEvent[] = [];
    for (let i = this.firstIndexAfter(revision); i < this.window.length; i++) {
      const event = this.window[i];
      if (event.prefix === prefix) out.push(event);
    }
    return out;
  }

  private firstIndexAfter(revision: number): number {
    let lo = this.windowStart;
    let hi = this.window.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.window[mid].revision <= revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Told by the registry that it is about to write `value` at `key`, the encoding of `obj`
   * (before the write, as the store's event for it may come before its answer): when that
   * event arrives with the very same text, the cache takes its selector view from `obj`
   * instead of decoding the text again. The view is taken now, so `obj` may change
   * afterwards. A hint whose write failed is withdrawn (withdrawn); one that still finds no
   * matching event is dropped at the key's next event, and HINTS_MAX bounds the rest.
   */
  written(key: string, value: string, obj: KObject): void {
    if (this.hints.size >= HINTS_MAX) this.hints.clear();
    this.hints.set(key, { value, view: viewOf(key, obj) });
  }

  /**
   * Told by the registry that its write of `value` at `key` failed: the hint goes now rather
   * than at the key's next event, which may never come (a refused create of a taken name, an
   * update that lost a race), so that it does not hold the text meanwhile. A later hint for
   * the key with other text is left alone.
   */
  withdrawn(key: string, value: string): void {
    if (this.hints.get(key)?.value === value) this.hints.delete(key);
  }

  /** The JSON of the object at `key` as the cache has it now (it may lag the store a little). */
  valueOf(key: string): string | undefined {
    return this.byPrefix.get(resourcePrefixOf(key))?.get(key)?.json();
  }

  /** The JSON of every object under a resource prefix, as the cache has them now. */
  valuesUnder(prefix: string): string[] {
    return [...(this.byPrefix.get(prefix)?.values() ?? [])].map((c) => c.json());
  }

  /** Registers a listener for live changes of one resource prefix; returns its remover. */
  listen(prefix: string, listener: CacheListener): () => void {
    let set = this.listeners.get(prefix);
    if (!set) {
      set = new Set();
      this.listeners.set(prefix, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  private apply(event: WatchEvent): void {
    const key = event.kv.key;
    const prefix = resourcePrefixOf(key);
    const map = this.objects(prefix);
    const prev = map.get(key);
    const hint = this.hints.get(key);
    if (hint) this.hints.delete(key);
    // Comparing the same string instance is a pointer check; other texts differ early.
    const view = hint?.value === event.kv.value ? hint.view : undefined;
    const object = new CachedObject(key, event.kv.value, event.revision, view);
    if (event.type === 'DELETED') map.delete(key);
    else map.set(key, object);
    const cacheEvent: CacheEvent = {
      type: event.type,
      revision: event.revision,
      prefix,
      object,
      prev,
    };
    this.rev = event.revision;
    this.remember(cacheEvent, event.kv.value.length);
    for (const listener of this.listeners.get(prefix) ?? []) {
      try {
        listener(cacheEvent);
      } catch (err) {
        this.log.error({ err, key }, 'watch listener failed');
      }
    }
    this.wakeWaiters();
  }

  /** Keeps an event in the window, evicting the oldest past the count or byte bound. */
  private remember(event: CacheEvent, size: number): void {
    this.window.push(event);
    this.sizes.push(size);
    this.bytesInWindow += size;
    const over = () =>
      this.window.length - this.windowStart > this.windowSize ||
      (this.bytesInWindow > this.windowBytes && this.window.length - this.windowStart > 1);
    while (over()) {
      this.floor = this.window[this.windowStart].revision;
      this.bytesInWindow -= this.sizes[this.windowStart];
      this.windowStart++;
    }
    // Drop the consumed head in one splice now and then rather than shifting every time.
    if (this.windowStart > 10_000 && this.windowStart * 2 > this.window.length) {
      this.window.splice(0, this.windowStart);
      this.sizes.splice(0, this.windowStart);
      this.windowStart = 0;
    }
  }

  private wakeWaiters(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i].revision <= this.rev) {
        this.waiters[i].resolve();
        this.waiters.splice(i, 1);
      }
    }
  }
}

/** Decodes a stored value and sets its resourceVersion to the revision it was read at. */
export function decode(value: string, revision: number): KObject {
  const obj = JSON.parse(value) as KObject;
  obj.metadata ??= {};
  obj.metadata.resourceVersion = String(revision);
  return obj;
}
