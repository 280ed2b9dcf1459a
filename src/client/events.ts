import { byGroupResource } from '../api/resources.js';
import { nowTimestamp, type KObject } from '../api/types.js';
import { componentLogger } from '../log.js';
import { isReason, type KubeClient } from './rest.js';

/** How many recent events and objects a recorder remembers (least recently used go). */
const REMEMBERED = 4096;
/** A repeat within this time bumps the count of the Event already written. */
const REPEAT_WINDOW_MS = 600_000;
/** Events one object may get in a burst, then one per refill period, as in Kubernetes. */
const SPAM_BURST = 25;
const SPAM_REFILL_MS = 300_000;

interface Recent {
  name: string;
  namespace: string;
  count: number;
  at: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Map as a bounded LRU: `touch` moves a key to the young end, the oldest go past `max`. */
function touch<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) map.delete(map.keys().next().value!);
}

/**
 * Records core/v1 Events about objects, as `kubectl describe` and `kubectl get events` show
 * them. Repeats of the same event (same object, type, reason and message) within ten minutes
 * bump the existing Event's count instead of creating another. Recording never throws: an
 * Event that cannot be written is logged and dropped.
 *
 * Like Kubernetes' spam filter, each object gets at most 25 Events in a burst and then one
 * per five minutes from one recorder; the others are dropped (logged at debug), so a
 * ReplicaSet creating a thousand pods writes 25 SuccessfulCreate Events, not a thousand.
 * Kubernetes also folds similar events into one "combined" Event; flyCes does not.
 */
export class EventRecorder {
  private readonly log = componentLogger('events');
  private readonly recent = new Map<string, Recent>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly rt = byGroupResource.get('/events')!;
  private queued: [KObject, 'Normal' | 'Warning', string, string][] = [];
  /** Makes the names of Events written in the same millisecond differ. */
  private sequence = Math.floor(Math.random() * 1000);

  /**
   * `delayMs`: how long an Event waits before it is sent, beyond the caller's turn of the
   * event loop; see `later`.
   */
  constructor(
    private readonly client: KubeClient,
    private readonly component: string,
    private readonly host?: string,
    private readonly delayMs = 0,
  ) {}

  normal(obj: KObject, reason: string, message: string): void {
    this.later(obj, 'Normal', reason, message);
  }

  warning(obj: KObject, reason: string, message: string): void {
    this.later(obj, 'Warning', reason, message);
  }

  /**
   * Records the Event once the caller's turn of the event loop is over, as Kubernetes'
   * recorder hands Events to a goroutine of their own: what was being done when it
   * happened (a container's start) is not kept waiting for the request. With `delayMs`,
   * Events wait a little longer, so that what their caller reports next (the agent: a
   * pod's status, right after its container started) reaches the API server first rather
   * than queued behind them.
   */
  private later(obj: KObject, type: 'Normal' | 'Warning', reason: string, message: string) {
    this.queued.push([obj, type, reason, message]);
    if (this.queued.length > 1) return;
    const send = () => {
      const batch = this.queued;
      this.queued = [];
      for (const args of batch) void this.record(...args);
    };
    if (this.delayMs > 0) setTimeout(send, this.delayMs);
    else setImmediate(send);
  }

  async record(
    obj: KObject,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    const namespace = obj.metadata.namespace || 'default';
    const dedupKey = `${obj.metadata.uid}|${type}|${reason}|${message}`;
    const now = Date.now();
    let seen = this.recent.get(dedupKey);
    if (seen && now - seen.at > REPEAT_WINDOW_MS) {
      this.recent.delete(dedupKey);
      seen = undefined;
    }
    if (!this.allow(obj, now)) {
      this.log.debug({ reason, object: `${namespace}/${obj.metadata.name}` }, 'event dropped');
      return;
    }
    try {
      if (seen) {
        seen.count++;
        seen.at = now;
        touch(this.recent, dedupKey, seen, REMEMBERED);
        const patch = { count: seen.count, lastTimestamp: nowTimestamp() };
        await this.client.patch(this.rt, seen.namespace, seen.name, patch);
        return;
      }
      this.sequence = (this.sequence + 1) % 1000;
      const name = `${obj.metadata.name}.${(now * 1000 + this.sequence).toString(16)}`;
      const timestamp = nowTimestamp();
      await this.client.create(this.rt, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: {
          kind: obj.kind,
          namespace: obj.metadata.namespace,
          name: obj.metadata.name,
          uid: obj.metadata.uid,
          apiVersion: obj.apiVersion,
          resourceVersion: obj.metadata.resourceVersion,
        },
        reason,
        message,
        type,
        count: 1,
        firstTimestamp: timestamp,
        lastTimestamp: timestamp,
        source: { component: this.component, ...(this.host ? { host: this.host } : {}) },
        reportingComponent: this.component,
        reportingInstance: this.host ?? '',
      });
      touch(this.recent, dedupKey, { name, namespace, count: 1, at: now }, REMEMBERED);
    } catch (err) {
      if (seen && isReason(err, 'NotFound')) this.recent.delete(dedupKey);
      this.log.warn(
        { err: (err as Error).message, reason, object: `${namespace}/${obj.metadata.name}` },
        'could not record event',
      );
    }
  }

  /** Takes a token from the object's bucket; false when it has none left. */
  private allow(obj: KObject, now: number): boolean {
    const key = obj.metadata.uid ?? `${obj.kind}/${obj.metadata.namespace}/${obj.metadata.name}`;
    const bucket = this.buckets.get(key) ?? { tokens: SPAM_BURST, at: now };
    const refilled = Math.floor((now - bucket.at) / SPAM_REFILL_MS);
    if (refilled > 0) {
      bucket.tokens = Math.min(SPAM_BURST, bucket.tokens + refilled);
      bucket.at += refilled * SPAM_REFILL_MS;
    }
    touch(this.buckets, key, bucket, REMEMBERED);
    if (bucket.tokens === 0) return false;
    if (bucket.tokens === SPAM_BURST) bucket.at = now;
    bucket.tokens--;
    return true;
  }
}
