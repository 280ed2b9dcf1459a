import { byGroupResource } from '../api/resources.js';
import { nowTimestamp, type KObject } from '../api/types.js';
import { componentLogger } from '../log.js';
import { isReason, type KubeClient } from './rest.js';

/**
 * Records core/v1 Events about objects, as `kubectl describe` and `kubectl get events` show
 * them. Repeats of the same event (same object, type, reason and message) within ten minutes
 * bump the existing Event's count instead of creating another. Recording never throws: an
 * Event that cannot be written is logged and dropped.
 */
export class EventRecorder {
  private readonly log = componentLogger('events');
  private readonly recent = new Map<
    string,
    { name: string; namespace: string; count: number; at: number }
  >();
  private readonly rt = byGroupResource.get('/events')!;

  constructor(
    private readonly client: KubeClient,
    private readonly component: string,
    private readonly host?: string,
  ) {}

  normal(obj: KObject, reason: string, message: string): void {
    void this.record(obj, 'Normal', reason, message);
  }

  warning(obj: KObject, reason: string, message: string): void {
    void this.record(obj, 'Warning', reason, message);
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
    this.prune(now);
    const seen = this.recent.get(dedupKey);
    try {
      if (seen) {
        seen.count++;
        seen.at = now;
        const patch = { count: seen.count, lastTimestamp: nowTimestamp() };
        await this.client.patch(this.rt, seen.namespace, seen.name, patch);
        return;
      }
      const name = `${obj.metadata.name}.${(now * 1000 + Math.floor(Math.random() * 1000)).toString(16)}`;
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
      this.recent.set(dedupKey, { name, namespace, count: 1, at: now });
    } catch (err) {
      if (seen && isReason(err, 'NotFound')) this.recent.delete(dedupKey);
      this.log.warn(
        { err: (err as Error).message, reason, object: `${namespace}/${obj.metadata.name}` },
        'could not record event',
      );
    }
  }

  private prune(now: number): void {
    if (this.recent.size < 4096) return;
    for (const [key, entry] of this.recent) if (now - entry.at > 600_000) this.recent.delete(key);
  }
}
