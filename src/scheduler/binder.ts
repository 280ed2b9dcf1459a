import { ApiError, type StatusObject } from '../api/errors.js';
import { isReason, type KubeClient } from '../client/rest.js';
import type { KObject, Pod } from '../api/types.js';
import { Code, SUCCESS, type BindPlugin, type Status } from './framework/interface.js';

/**
 * The default binder: sets spec.nodeName exactly once through the API server's binding
 * subresource. The binding names the pod's uid, so a pod deleted and re-created under the
 * same name is never bound by a decision made for the old one. A refusal because the pod
 * is gone or already bound is Unschedulable-and-unresolvable (do not retry here; the pod's
 * next version decides); other errors are Error (retry).
 *
 * Binds decided in one turn of the event loop go to the server together, in one bulk
 * request (see apiserver/binding.ts) that binds each as its own subresource POST would. A
 * server without the bulk path (404) gets one POST per pod from then on.
 */
export function defaultBinder(client: KubeClient): BindPlugin {
  const batcher = new BindingBatcher(client);
  return {
    name: 'DefaultBinder',
    async bind(_state, pod: Pod, nodeName: string): Promise<Status> {
      const { namespace, name, uid } = pod.metadata;
      try {
        await batcher.bind({
          apiVersion: 'v1',
          kind: 'Binding',
          metadata: { name, namespace, uid },
          target: { apiVersion: 'v1', kind: 'Node', name: nodeName },
        });
        return SUCCESS;
      } catch (err) {
        const reason = (err as Error).message ?? String(err);
        if (isReason(err, 'NotFound') || isReason(err, 'Conflict')) {
          return { code: Code.UnschedulableAndUnresolvable, reasons: [reason] };
        }
        return { code: Code.Error, reasons: [reason] };
      }
    },
  };
}

const BULK_PATH = '/flyces/v1/bindings';
/** Binds sent in one bulk request at most; more wait for the next. */
export const MAX_BATCH = 256;

interface PendingBind {
  binding: KObject;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Collects the binds asked for in one turn of the event loop and sends them in one bulk
 * request, or as soon as MAX_BATCH are waiting. Each bind's promise settles with its own
 * item's outcome; a failure of the whole request fails each of its binds with that error.
 */
export class BindingBatcher {
  private pending: PendingBind[] = [];
  /** False once the server answered that it has no bulk path. */
  private bulk = true;

  constructor(private readonly client: KubeClient) {}

  bind(binding: KObject): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ binding, resolve, reject });
      if (this.pending.length >= MAX_BATCH) this.flush();
      else if (this.pending.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    void this.send(batch);
  }

  private async send(batch: PendingBind[]): Promise<void> {
    if (!this.bulk) return void (await Promise.all(batch.map((b) => this.sendOne(b))));
    let answer: { items?: StatusObject[] };
    try {
      answer = await this.client.request('POST', BULK_PATH, {
        body: {
          apiVersion: 'flyces.io/v1',
          kind: 'BindingList',
          items: batch.map((b) => b.binding),
        },
      });
    } catch (err) {
      if (isReason(err, 'NotFound') && this.bulk) {
        this.bulk = false;
        return this.send(batch);
      }
      for (const b of batch) b.reject(err);
      return;
    }
    const items = answer?.items ?? [];
    batch.forEach((b, i) => {
      const status = items[i];
      if (status?.status === 'Success') return b.resolve();
      if (status?.reason)
        return b.reject(new ApiError(status.reason, status.message, status.details));
      b.reject(new Error(`the bulk bind answer has no result for item ${i}`));
    });
  }

  private async sendOne(b: PendingBind): Promise<void> {
    const { namespace, name } = b.binding.metadata;
    try {
      await this.client.request(
        'POST',
        `/api/v1/namespaces/${encodeURIComponent(namespace!)}/pods/${encodeURIComponent(name!)}/binding`,
        { body: b.binding },
      );
      b.resolve();
    } catch (err) {
      b.reject(err);
    }
  }
}
