/**
 * Expectations remember the pod creations and deletions a controller has asked for but not
 * yet seen in its informer, per owner key. While any are outstanding the owner is not
 * scaled again, so a watch that lags behind our own writes never makes us create or delete
 * twice. Records expire after a time-to-live (5 minutes by default), in case an event is
 * never seen (a create that failed silently, a watch that restarted past it).
 *
 * Methods may be called from event handlers and workers alike; all of them are synchronous.
 */
export class Expectations {
  private readonly records = new Map<string, ExpectationRecord>();

  constructor(
    private readonly ttlMs = 5 * 60_000,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Records that `count` pods are about to be created for `key`. */
  expectCreations(key: string, count: number): void {
    this.records.set(key, { adds: count, deletes: new Set(), at: this.clock() });
  }

  /** Records that the pods named by `podKeys` are about to be deleted for `key`. */
  expectDeletions(key: string, podKeys: string[]): void {
    this.records.set(key, { adds: 0, deletes: new Set(podKeys), at: this.clock() });
  }

  /** One expected creation happened (its pod was seen) or will never happen (it failed). */
  creationObserved(key: string): void {
    const record = this.records.get(key);
    if (record && record.adds > 0) record.adds--;
  }

  /** The pod `podKey` was seen deleted (or its deletion failed); counts each pod once. */
  deletionObserved(key: string, podKey: string): void {
    this.records.get(key)?.deletes.delete(podKey);
  }

  /** Whether `key` may be acted on: nothing outstanding, no record, or the record expired. */
  satisfied(key: string): boolean {
    const record = this.records.get(key);
    if (!record) return true;
    if (record.adds <= 0 && record.deletes.size === 0) return true;
    return this.clock() - record.at > this.ttlMs;
  }

  /** Outstanding creations and deletions for `key`, for logs and tests. */
  pending(key: string): { adds: number; deletes: number } {
    const record = this.records.get(key);
    return { adds: record?.adds ?? 0, deletes: record?.deletes.size ?? 0 };
  }

  /** Forgets `key`, e.g. once its owner is gone. */
  delete(key: string): void {
    this.records.delete(key);
  }
}

interface ExpectationRecord {
  adds: number;
  deletes: Set<string>;
  at: number;
}
