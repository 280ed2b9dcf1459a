import { componentLogger } from '../log.js';
import { StoreError, type Store } from './store.js';

const log = componentLogger('store', { task: 'compactor' });

export interface CompactorOptions {
  /** How many of the latest revisions stay watchable and listable (default 10000). */
  keepRevisions?: number;
  /** How often to compact, in milliseconds (default 5 minutes, as Kubernetes does). */
  intervalMs?: number;
}

/**
 * Compacts `store` every `intervalMs` to `currentRevision - keepRevisions`, so history
 * stays bounded while watchers that fall less than `keepRevisions` behind can resume.
 * A watcher further behind gets Compacted and re-lists, as Kubernetes clients do on 410.
 *
 * Returns a function that stops the compactor; a compaction already running finishes.
 * The timer does not keep the process alive, and the compactor stops by itself when the
 * store is closed. Failures are logged and retried at the next interval.
 */
export function startCompactor(store: Store, options: CompactorOptions = {}): () => void {
  const keep = options.keepRevisions ?? 10_000;
  const intervalMs = options.intervalMs ?? 5 * 60_000;
  let running = false;

  const timer = setInterval(() => {
    if (running) return; // a slow compaction must not pile up behind itself
    running = true;
    compactOnce(store, keep)
      .catch((err: unknown) => {
        if (err instanceof StoreError && err.code === 'Closed') clearInterval(timer);
        else log.warn({ err }, 'compaction failed');
      })
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Compacts to `currentRevision - keep` if that is newer than the last compaction. */
export async function compactOnce(store: Store, keep: number): Promise<number | undefined> {
  const target = (await store.currentRevision()) - keep;
  if (target <= (await store.compactedRevision())) return undefined;
  await store.compact(target);
  log.debug({ revision: target }, 'compacted');
  return target;
}
