import type { ResourceType } from '../api/resources.js';
import { objectKey, type KObject } from '../api/types.js';
import { componentLogger, type Logger } from '../log.js';
import type { KubeClient, WatchEvent, WatchHandle } from './rest.js';

/**
 * An informer keeps a local copy of one resource (optionally narrowed by namespace and
 * selectors) by listing once and then watching from the list's resourceVersion. Handlers
 * hear every change after the cache has applied it. If the watch breaks it resumes from the
 * last resourceVersion seen; if that is too old (410) it lists again and tells handlers
 * about whatever changed meanwhile, so nothing is missed.
 */

export interface EventHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
}

export interface InformerOptions<T extends KObject = KObject> {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Calls onUpdate for every cached object at this interval; 0 (default) for never. */
  resyncMs?: number;
  /**
   * Applied to every object before it is cached and handed to handlers, e.g. to drop the
   * fields a component never reads so that a cache of many objects takes less memory. It
   * must keep metadata.name, namespace and resourceVersion.
   */
  transform?: (obj: T) => T;
}

export type IndexFunc<T> = (obj: T) => string[];

export class Informer<T extends KObject = KObject> {
  private readonly log: Logger;
  private readonly items = new Map<string, T>();
  private readonly handlers: EventHandlers<T>[] = [];
  private readonly indexers = new Map<string, IndexFunc<T>>();
  private readonly indices = new Map<string, Map<string, Set<string>>>();
  private resourceVersion = '';
  private watch?: WatchHandle;
  private stopped = false;
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private resyncTimer?: NodeJS.Timeout;

  constructor(
    private readonly client: KubeClient,
    readonly rt: ResourceType,
    private readonly opts: InformerOptions<T> = {},
  ) {
    this.log = componentLogger('informer', { resource: rt.plural });
  }

  addHandlers(handlers: EventHandlers<T>): void {
    this.handlers.push(handlers);
    if (this.synced) for (const obj of this.items.values()) handlers.onAdd?.(obj);
  }

  /** Adds an index; `byIndex(name, value)` then returns the objects whose fn yields value. */
  addIndex(name: string, fn: IndexFunc<T>): void {
    this.indexers.set(name, fn);
    const index = new Map<string, Set<string>>();
    this.indices.set(name, index);
    for (const [key, obj] of this.items) this.indexAdd(name, fn, key, obj);
  }

  start(): void {
    void this.run();
    if (this.opts.resyncMs) {
      this.resyncTimer = setInterval(() => {
        for (const obj of this.items.values()) this.emit((h) => h.onUpdate?.(obj, obj));
      }, this.opts.resyncMs);
      this.resyncTimer.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    this.watch?.stop();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    for (const waiter of this.syncWaiters.splice(0)) waiter();
  }

  /** Resolves once the first list has been loaded into the cache. */
  hasSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get isSynced(): boolean {
    return this.synced;
  }

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  list(): T[] {
    return [...this.items.values()];
  }

  byIndex(name: string, value: string): T[] {
    const keys = this.indices.get(name)?.get(value);
    if (!keys) return [];
    return [...keys].map((k) => this.items.get(k)!).filter((o) => o !== undefined);
  }

  /** The last resourceVersion the cache has seen. */
  get lastSyncResourceVersion(): string {
    return this.resourceVersion;
  }

  private query(): Record<string, string | undefined> {
    return { labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector };
  }

  private async run(): Promise<void> {
    let backoff = 200;
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        const expired = await this.watchOnce();
        if (expired) needList = true;
        backoff = 200;
      } catch (err) {
        if (this.stopped) return;
        this.log.warn({ err: (err as Error).message }, 'list/watch failed; retrying');
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 10_000);
        needList = true;
      }
    }
  }

  private async relist(): Promise<void> {
    const list = await this.client.list<T>(this.rt, this.opts.namespace, this.query());
    const seen = new Set<string>();
    for (const item of list.items) {
      const obj = this.opts.transform ? this.opts.transform(item) : item;
      const key = objectKey(obj);
      seen.add(key);
      this.apply('MODIFIED', key, obj);
    }
    for (const [key, obj] of [...this.items]) if (!seen.has(key)) this.apply('DELETED', key, obj);
    this.resourceVersion = list.resourceVersion;
    if (!this.synced) {
      this.synced = true;
      for (const waiter of this.syncWaiters.splice(0)) waiter();
    }
  }

  /** Watches until the stream ends; true when the server said our version expired. */
  private async watchOnce(): Promise<boolean> {
    let expired = false;
    const query = {
      ...this.query(),
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: true,
    };
    const handle = this.client.watch(
      this.rt,
      this.opts.namespace,
      query,
      (event: WatchEvent<T>) => {
        if (event.type === 'ERROR') {
          const status = event.object as unknown as { code?: number; message?: string };
          if (status.code === 410) expired = true;
          else this.log.warn({ status: status.message }, 'watch error');
          return;
        }
        const rv = event.object?.metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        if (event.type === 'BOOKMARK') return;
        const obj = this.opts.transform ? this.opts.transform(event.object) : event.object;
        this.apply(event.type, objectKey(obj), obj);
      },
    );
    this.watch = handle;
    await handle.done;
    if (!expired && !this.stopped) await sleep(50);
    return expired;
  }

  private apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', key: string, obj: T): void {
    const old = this.items.get(key);
    if (type === 'DELETED') {
      if (!old) return;
      this.items.delete(key);
      this.reindex(key, old, undefined);
      this.emit((h) => h.onDelete?.(obj));
      return;
    }
    if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) return;
    this.items.set(key, obj);
    this.reindex(key, old, obj);
    if (old) this.emit((h) => h.onUpdate?.(old, obj));
    else this.emit((h) => h.onAdd?.(obj));
  }

  private reindex(key: string, old: T | undefined, obj: T | undefined): void {
    for (const [name, fn] of this.indexers) {
      if (old) {
        const index = this.indices.get(name)!;
        for (const value of fn(old)) index.get(value)?.delete(key);
      }
      if (obj) this.indexAdd(name, fn, key, obj);
    }
  }

  private indexAdd(name: string, fn: IndexFunc<T>, key: string, obj: T): void {
    const index = this.indices.get(name)!;
    for (const value of fn(obj)) {
      let set = index.get(value);
      if (!set) {
        set = new Set();
        index.set(value, set);
      }
      set.add(key);
    }
  }

  private emit(call: (h: EventHandlers<T>) => void): void {
    for (const h of this.handlers) {
      try {
        call(h);
      } catch (err) {
        this.log.error({ err }, 'event handler failed');
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
