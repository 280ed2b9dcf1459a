import type { Pod, PodStatus } from '../api/types.js';
import { deepEqual } from '../util/equal.js';

/**
 * Which pod updates the agent caused itself. The agent writes each pod's status (a merge
 * patch of the status subresource), and that write comes back through the pod informer
 * like any other update. A sync on it learns nothing the sync that wrote it did not know,
 * and when the status differs at every sync (a failure message naming a new directory each
 * time) it made a loop: sync, write, update, sync.
 *
 * As kubelet, which syncs a pod on changes of its configuration (spec, labels,
 * annotations, deletion) and not on its status, of which it is the source, the agent skips
 * an update when nothing but the status changed and every status field that changed holds
 * what the agent wrote. Unlike kubelet it does sync on a status someone else wrote (the
 * node lifecycle controller marking the pod not ready, a PATCH by hand): the sync writes
 * the agent's view back at once instead of at the pod's next periodic look.
 */

/** Metadata fields a status write changes. */
const WRITE_METADATA = ['resourceVersion', 'managedFields'];
/** Writes kept per pod that the watch has not shown yet; older ones are dropped. */
const MAX_PENDING = 8;

/** Whether anything but the status, and the metadata a status write changes, differs. */
export function configChanged(old: Pod, pod: Pod): boolean {
  const strip = (p: Pod) => {
    const metadata: Record<string, unknown> = { ...p.metadata };
    for (const field of WRITE_METADATA) delete metadata[field];
    return { ...p, metadata, status: undefined };
  };
  return !deepEqual(strip(old), strip(pod));
}

/** The top-level status fields whose values differ between two statuses. */
export function changedStatusFields(old: PodStatus | undefined, now: PodStatus | undefined) {
  const a = (old ?? {}) as Record<string, unknown>;
  const b = (now ?? {}) as Record<string, unknown>;
  const fields = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...fields].filter((f) => !deepEqual(a[f], b[f]));
}

/**
 * The statuses the agent sent for each pod (by uid) that the watch has not shown yet, in
 * the order sent. A pod's writes are sent one at a time, by its sync, so the watch shows
 * them in that order: the update that shows one also tells that those before it are past.
 */
export class StatusWrites {
  private readonly pending = new Map<string, Record<string, unknown>[]>();

  /** Records a status about to be sent for the pod `uid`. */
  sent(uid: string, status: PodStatus): void {
    const list = this.pending.get(uid) ?? [];
    // As the API server keeps it: undefined fields are not sent.
    list.push(JSON.parse(JSON.stringify(status)) as Record<string, unknown>);
    if (list.length > MAX_PENDING) list.shift();
    this.pending.set(uid, list);
  }

  /**
   * Whether the update from `old` to `pod` needs no sync: only the status changed (or not
   * even that, but the resourceVersion), and each status field that changed has the value
   * of one write the agent sent. An update of the same resourceVersion (an informer's
   * periodic resync) and a status anybody else set are not the agent's own.
   */
  isOwn(old: Pod, pod: Pod): boolean {
    if (old.metadata.resourceVersion === pod.metadata.resourceVersion) return false;
    if (configChanged(old, pod)) return false;
    const changed = changedStatusFields(old.status, pod.status);
    if (changed.length === 0) return true;
    const list = this.pending.get(pod.metadata.uid!) ?? [];
    const now = (pod.status ?? {}) as Record<string, unknown>;
    for (let i = list.length - 1; i >= 0; i--) {
      const sent = list[i];
      if (!changed.every((f) => f in sent && deepEqual(sent[f], now[f]))) continue;
      // The writes sent before it are past; it stays, as the last one seen.
      list.splice(0, i);
      return true;
    }
    return false;
  }

  /** Drops what is kept for the pod `uid` (it is gone). */
  forget(uid: string): void {
    this.pending.delete(uid);
  }
}
