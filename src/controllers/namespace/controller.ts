import { byGroupResource, RESOURCE_TYPES } from '../../api/resources.js';
import type { KObject } from '../../api/types.js';
import type { InformerFactory } from '../../client/factory.js';
import type { Informer } from '../../client/informer.js';
import { isReason, type KubeClient } from '../../client/rest.js';
import { QueueController } from '../base.js';

const NAMESPACES = byGroupResource.get('/namespaces')!;

/** The finalizer the API server puts on a namespace being deleted; this controller owns it. */
export const NAMESPACE_FINALIZER = 'kubernetes';

/** How soon a terminating namespace whose content is still going away is looked at again. */
const RECHECK_MS = 500;

export interface NamespaceControllerOptions {
  workers?: number;
}

/**
 * Empties namespaces that are being deleted: deletes every namespaced object in them
 * (listing each resource type live, so nothing the cache has not seen yet survives), and
 * once nothing is left removes the `kubernetes` finalizer, which lets the API server
 * delete the namespace. Objects held by finalizers or graceful pod termination are waited
 * for, not forced.
 */
export class NamespaceController extends QueueController {
  private readonly namespaces: Informer<KObject>;

  constructor(
    private readonly client: KubeClient,
    factory: InformerFactory,
    opts: NamespaceControllerOptions = {},
  ) {
    super('namespace-controller', opts.workers ?? 2);
    this.namespaces = factory.informer(NAMESPACES);
  }

  register(): void {
    this.namespaces.addHandlers({
      onAdd: (ns) => this.enqueueIfTerminating(ns),
      onUpdate: (_old, ns) => this.enqueueIfTerminating(ns),
    });
  }

  private enqueueIfTerminating(ns: KObject): void {
    if (ns.metadata.deletionTimestamp) this.enqueue(ns);
  }

  protected async reconcile(name: string): Promise<number | void> {
    const ns = this.namespaces.get(name);
    if (!ns?.metadata.deletionTimestamp) return;
    if (!ns.metadata.finalizers?.includes(NAMESPACE_FINALIZER)) return;
    const remaining = await this.deleteContent(name);
    if (remaining > 0) {
      this.log.debug({ namespace: name, remaining }, 'waiting for namespace content to go');
      return RECHECK_MS;
    }
    await this.removeFinalizer(name);
  }

  /** Deletes what is left in the namespace; returns how many objects were still there. */
  private async deleteContent(namespace: string): Promise<number> {
    let remaining = 0;
    for (const rt of RESOURCE_TYPES) {
      if (!rt.namespaced) continue;
      const { items } = await this.client.list(rt, namespace);
      remaining += items.length;
      for (const obj of items) {
        if (obj.metadata.deletionTimestamp) continue;
        try {
          await this.client.delete(rt, namespace, obj.metadata.name!, {
            propagationPolicy: 'Background',
          });
        } catch (err) {
          if (!isReason(err, 'NotFound')) throw err;
        }
      }
    }
    return remaining;
  }

  private async removeFinalizer(name: string): Promise<void> {
    const live = await this.client.get(NAMESPACES, undefined, name);
    const finalizers = live.metadata.finalizers ?? [];
    if (!finalizers.includes(NAMESPACE_FINALIZER)) return;
    const rest = finalizers.filter((f) => f !== NAMESPACE_FINALIZER);
    live.metadata.finalizers = rest.length ? rest : undefined;
    await this.client.update(NAMESPACES, live);
    this.log.info({ namespace: name }, 'namespace emptied; finalizer removed');
  }
}
