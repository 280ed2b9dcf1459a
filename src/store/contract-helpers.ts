import assert from 'node:assert/strict';
import {
  StoreError,
  type KeyValue,
  type Store,
  type StoreErrorCode,
  type Watch,
  type WatchEvent,
} from './store.js';

/** Events and errors one watch has received so far. */
export interface Recorder {
  events: WatchEvent[];
  errors: Error[];
  watch: Watch;
  /** Resolves once `count` events have arrived; rejects after `timeoutMs`. */
  until(count: number, timeoutMs?: number): Promise<void>;
  /** Resolves once an error has arrived; rejects after `timeoutMs`. */
  untilError(timeoutMs?: number): Promise<Error>;
}

/** Starts a watch that records what it receives. */
export function record(store: Store, prefix: string, after: number): Recorder {
  const events: WatchEvent[] = [];
  const errors: Error[] = [];
  const watch = store.watch(prefix, after, {
    onEvent: (event) => events.push(event),
    onError: (err) => errors.push(err),
  });
  return {
    events,
    errors,
    watch,
    until: (count, timeoutMs = 5000) =>
      waitFor(
        () => events.length >= count,
        timeoutMs,
        () => `${events.length}/${count} events`,
      ),
    untilError: async (timeoutMs = 5000) => {
      await waitFor(
        () => errors.length > 0,
        timeoutMs,
        () => 'an error',
      );
      return errors[0]!;
    },
  };
}

/** Polls `done` until it holds; fails with what was awaited after `timeoutMs`. */
export async function waitFor(
  done: () => boolean,
  timeoutMs: number,
  what: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what()}`);
    await sleep(2);
  }
}

/** Gives pending deliveries time to arrive, to check that no more do. */
/** Waits until `done()` holds (a backend may deliver a watch's first event late), or 5 s. */
export async function until(done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await sleep(5);
}

export function settle(): Promise<void> {
  return sleep(30);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Lets queued callbacks (replay pages, deliveries) run between writes. */
export function yieldTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Asserts that `promise` rejects with a StoreError of `code` (and compactRevision). */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: StoreErrorCode,
  compactRevision?: number,
): Promise<void> {
  await assert.rejects(promise, (err) => isStoreError(err, code, compactRevision));
}

/** Asserts that `fn` throws a StoreError of `code` synchronously. */
export function throwsWith(fn: () => unknown, code: StoreErrorCode): void {
  assert.throws(fn, (err) => isStoreError(err, code));
}

function isStoreError(err: unknown, code: StoreErrorCode, compactRevision?: number): boolean {
  assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
  assert.equal(err.code, code);
  if (compactRevision !== undefined) assert.equal(err.compactRevision, compactRevision);
  return true;
}

/**
 * Asserts that a watch from `after` is refused with Compacted and `compactRevision`.
 * The contract says watch() throws; a backend that learns about compaction only from its
 * server may instead end the watch through onError, which this accepts as well.
 */
export async function watchIsCompacted(
  store: Store,
  prefix: string,
  after: number,
  compactRevision: number,
): Promise<void> {
  let recorder: Recorder;
  try {
    recorder = record(store, prefix, after);
  } catch (err) {
    isStoreError(err, 'Compacted', compactRevision);
    return;
  }
  const err = await recorder.untilError();
  isStoreError(err, 'Compacted', compactRevision);
  assert.deepEqual(recorder.events, [], 'no events before the Compacted error');
}

/** The keys of a list, for compact assertions. */
export function keysOf(items: KeyValue[]): string[] {
  return items.map((kv) => kv.key);
}
