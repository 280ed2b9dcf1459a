import { objectKey, type Pod } from '../api/types.js';
import { deepEqual } from '../util/equal.js';

/**
 * The scheduling queue holds every pending pod the scheduler is responsible for, in one of
 * three places:
 *
 * - active: ready to be tried, highest `spec.priority` first, then the earliest queued;
 * - backoff: failed recently and waits out its backoff (1 s doubling per attempt, at most
 *   10 s) before it becomes active again;
 * - unschedulable: fitted nowhere; it waits for a cluster event that could make it fit
 *   (`moveAll`), or for the slow periodic flush (60 s) done by `tick`.
 *
 * A popped pod is "in flight" until the scheduler calls `done` (bound or assumed),
 * `requeueUnschedulable` or `requeueBackoff`. If a cluster event arrived while it was in
 * flight, an unschedulable verdict sends it to backoff instead, so the event is not lost.
 *
 * Time comes from a `Clock` so tests can drive it; nothing here sets timers: the owner
 * calls `tick()` periodically (the scheduler does so every 200 ms).
 */

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export const INITIAL_BACKOFF_MS = 1_000;
export const MAX_BACKOFF_MS = 10_000;
/** Unschedulable pods go back to the active queue at least this often. */
export const UNSCHEDULABLE_FLUSH_MS = 60_000;

export type Place = 'active' | 'backoff' | 'unschedulable' | 'inflight';

/** A pending pod as the queue tracks it. */
export interface QueuedPod {
  key: string;
  pod: Pod;
  /** When the pod entered the active queue last: the tie-breaker between equal priorities. */
  queuedAt: number;
  /** Scheduling attempts so far; the backoff doubles with each failed one. */
  attempts: number;
  /** When the last attempt failed; the backoff counts from here. */
  failedAt: number;
  /** When the pod was declared unschedulable, for the periodic flush. */
  unschedulableAt: number;
  /** The scheduling cycle that popped the pod last. */
  cycle: number;
  place: Place;
  /** Bumped whenever the pod's active-heap entry is replaced; older entries are skipped. */
  seq: number;
}

/** The priority the scheduler orders and preempts by; pods without one count as 0. */
export function podPriority(pod: Pod): number {
  const p = pod.spec?.priority;
  return typeof p === 'number' ? p : 0;
}

interface HeapEntry {
  info: QueuedPod;
  seq: number;
  priority: number;
  queuedAt: number;
}

function before(a: HeapEntry, b: HeapEntry): boolean {
  if (a.priority !== b.priority) return a.priority > b.priority;
  return a.queuedAt < b.queuedAt || (a.queuedAt === b.queuedAt && a.seq < b.seq);
}

/** A binary heap of active entries; entries made stale by later updates are skipped on pop. */
class ActiveHeap {
  private readonly items: HeapEntry[] = [];

  get size(): number {
    return this.items.length;
  }

  push(entry: HeapEntry): void {
    const items = this.items;
    items.push(entry);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): HeapEntry | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < items.length && before(items[l], items[best])) best = l;
      if (r < items.length && before(items[r], items[best])) best = r;
      if (best === i) break;
      [items[i], items[best]] = [items[best], items[i]];
      i = best;
    }
    return top;
  }
}

export class SchedulingQueue {
  private readonly pods = new Map<string, QueuedPod>();
  private readonly active = new ActiveHeap();
  /** The pods in backoff and in the unschedulable set, so that ticks and events visit only them. */
  private readonly inPlace: Record<'backoff' | 'unschedulable', Set<QueuedPod>> = {
    backoff: new Set(),
    unschedulable: new Set(),
  };
  private readonly waiters: ((info: QueuedPod | undefined) => void)[] = [];
  private schedulingCycle = 0;
  private moveRequestCycle = -1;
  private seq = 0;
  private closed = false;

  constructor(private readonly clock: Clock = systemClock) {}

  /** Adds a new pending pod, or hands a waiting one its newer version (see `update`). */
  add(pod: Pod): void {
    const key = objectKey(pod);
    const known = this.pods.get(key);
    if (known) return this.update(pod);
    const info: QueuedPod = {
      key,
      pod,
      queuedAt: this.clock.now(),
      attempts: 0,
      failedAt: 0,
      unschedulableAt: 0,
      cycle: 0,
      place: 'active',
      seq: 0,
    };
    this.pods.set(key, info);
    this.pushActive(info);
  }

  /**
   * A pending pod changed. The queue keeps the new version wherever the pod waits; an
   * unschedulable pod whose spec, labels or annotations changed is tried again (through
   * backoff if it is still backing off), since the change may make it fit.
   */
  update(pod: Pod): void {
    const info = this.pods.get(objectKey(pod));
    if (!info) return this.add(pod);
    const old = info.pod;
    info.pod = pod;
    if (info.place === 'active' && podPriority(old) !== podPriority(pod)) this.pushActive(info);
    if (info.place === 'unschedulable' && schedulingInputsChanged(old, pod)) this.requeue(info);
  }

  /** Forgets a pod (deleted, bound elsewhere, or no longer this scheduler's). */
  delete(key: string): void {
    const info = this.pods.get(key);
    if (!info) return;
    this.moveTo(info, 'inflight');
    info.seq = -1;
    this.pods.delete(key);
  }

  /** Resolves with the next pod to schedule, or undefined once the queue is closed. */
  pop(): Promise<QueuedPod | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const info = this.popActive();
    if (info) return Promise.resolve(info);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The next active pod if there is one now, without waiting. */
  tryPop(): QueuedPod | undefined {
    return this.closed ? undefined : this.popActive();
  }

  /** The pod was assumed on a node: the queue lets it go. */
  done(key: string): void {
    this.pods.delete(key);
  }

  /**
   * The attempt found no node. The pod waits in the unschedulable set, or in backoff if a
   * cluster event arrived while it was being scheduled.
   */
  requeueUnschedulable(info: QueuedPod): void {
    if (!this.owns(info)) return;
    info.failedAt = this.clock.now();
    if (this.moveRequestCycle >= info.cycle) {
      this.moveTo(info, 'backoff');
      return;
    }
    this.moveTo(info, 'unschedulable');
    info.unschedulableAt = info.failedAt;
  }

  /** The attempt failed for another reason (an API error while binding): retry after backoff. */
  requeueBackoff(info: QueuedPod): void {
    if (!this.owns(info)) return;
    info.failedAt = this.clock.now();
    this.moveTo(info, 'backoff');
  }

  /**
   * A cluster event that may make unschedulable pods fit: all of them (or those `which`
   * accepts) go to active, or to backoff while their backoff lasts.
   */
  moveAll(which: (pod: Pod) => boolean = () => true): void {
    for (const info of this.inPlace.unschedulable) if (which(info.pod)) this.requeue(info);
    this.moveRequestCycle = this.schedulingCycle;
  }

  /** Moves pods whose backoff ended to active, and flushes long-unschedulable ones. */
  tick(): void {
    const now = this.clock.now();
    for (const info of this.inPlace.backoff) {
      if (now >= this.backoffEnd(info)) this.pushActive(info);
    }
    for (const info of this.inPlace.unschedulable) {
      if (now - info.unschedulableAt >= UNSCHEDULABLE_FLUSH_MS) this.requeue(info);
    }
  }

  /** When the pod's current backoff ends. */
  backoffEnd(info: QueuedPod): number {
    const exponent = Math.max(0, info.attempts - 1);
    return info.failedAt + Math.min(MAX_BACKOFF_MS, INITIAL_BACKOFF_MS * 2 ** exponent);
  }

  /** Where a pod waits, or undefined if the queue does not hold it. */
  placeOf(key: string): Place | undefined {
    return this.pods.get(key)?.place;
  }

  /** Pods held, by place; for tests and metrics. */
  counts(): Record<Place, number> {
    const counts = { active: 0, backoff: 0, unschedulable: 0, inflight: 0 };
    for (const info of this.pods.values()) counts[info.place]++;
    return counts;
  }

  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }

  private owns(info: QueuedPod): boolean {
    return this.pods.get(info.key) === info && info.place === 'inflight';
  }

  private requeue(info: QueuedPod): void {
    if (info.attempts > 0 && this.clock.now() < this.backoffEnd(info)) this.moveTo(info, 'backoff');
    else this.pushActive(info);
  }

  private pushActive(info: QueuedPod): void {
    if (info.place !== 'active') info.queuedAt = this.clock.now();
    this.moveTo(info, 'active');
    info.seq = ++this.seq;
    const entry = { info, seq: info.seq, priority: podPriority(info.pod), queuedAt: info.queuedAt };
    const waiter = this.waiters.shift();
    if (!waiter) {
      this.active.push(entry);
      return;
    }
    this.startAttempt(info);
    waiter(info);
  }

  private popActive(): QueuedPod | undefined {
    for (let entry = this.active.pop(); entry; entry = this.active.pop()) {
      const info = entry.info;
      if (info.place !== 'active' || info.seq !== entry.seq || this.pods.get(info.key) !== info)
        continue;
      this.startAttempt(info);
      return info;
    }
    return undefined;
  }

  private moveTo(info: QueuedPod, place: Place): void {
    if (info.place === 'backoff' || info.place === 'unschedulable') {
      this.inPlace[info.place].delete(info);
    }
    info.place = place;
    if (place === 'backoff' || place === 'unschedulable') this.inPlace[place].add(info);
  }

  private startAttempt(info: QueuedPod): void {
    this.moveTo(info, 'inflight');
    info.attempts++;
    info.cycle = ++this.schedulingCycle;
  }
}

/** Whether a change to a pending pod could change where it fits. */
function schedulingInputsChanged(old: Pod, pod: Pod): boolean {
  return (
    !deepEqual(old.spec, pod.spec) ||
    !deepEqual(old.metadata.labels, pod.metadata.labels) ||
    !deepEqual(old.metadata.annotations, pod.metadata.annotations)
  );
}
