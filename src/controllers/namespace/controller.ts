import { byGroupResource, RESOURCE_TYPES, type ResourceType } from '../../api/resources.js';
import type { Condition, KObject } from '../../api/types.js';
import type { InformerFactory } from '../../client/factory.js';
import type { Informer } from '../../client/informer.js';
import { isReason, type KubeClient } from '../../client/rest.js';
import { deepEqual } from '../../util/equal.js';
import { QueueController } from '../base.js';
import { namespaceConditions, type ContentReport } from './conditions.js';

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
 * for, not forced; meanwhile the namespace's conditions say what is left and what holds
 * it. A namespace whose content is going is looked at again every RECHECK_MS rather than
 * on watch events of every type.
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
    const report = await this.deleteContent(name);
    await this.writeConditions(name, report);
    if (report.remaining.size > 0 || report.failures.length > 0) {
      const remaining = Object.fromEntries(report.remaining);
      this.log.debug({ namespace: name, remaining }, 'waiting for namespace content to go');
      return RECHECK_MS;
    }
    await this.removeFinalizer(name);
  }

  /**
   * Asks every object left in the namespace to go, reading every namespaced type of the
   * served types table, so kinds added to the table later are covered too. Reports what
   * was still there (terminating objects included) and which finalizers hold it.
   */
  private async deleteContent(namespace: string): Promise<ContentReport> {
    const report: ContentReport = { remaining: new Map(), finalizers: new Map(), failures: [] };
    for (const rt of RESOURCE_TYPES) {
      if (!rt.namespaced) continue;
      const resource = rt.group ? `${rt.plural}.${rt.group}` : rt.plural;
      let items: KObject[];
      try {
        ({ items } = await this.client.list(rt, namespace));
      } catch (err) {
        report.failures.push(`listing ${resource}: ${(err as Error).message}`);
        continue;
      }
      if (items.length > 0) report.remaining.set(resource, items.length);
      for (const obj of items) {
        for (const f of obj.metadata.finalizers ?? []) {
          report.finalizers.set(f, (report.finalizers.get(f) ?? 0) + 1);
        }
        if (obj.metadata.deletionTimestamp) continue;
        const failure = await this.deleteOne(rt, namespace, obj.metadata.name!);
        if (failure) report.failures.push(`${resource} ${obj.metadata.name}: ${failure}`);
      }
    }
    return report;
  }

  /** Deletes one object; returns why it failed, if it did (NotFound is no failure). */
  private async deleteOne(
    rt: ResourceType,
    namespace: string,
    name: string,
  ): Promise<string | undefined> {
    try {
      await this.client.delete(rt, namespace, name, { propagationPolicy: 'Background' });
    } catch (err) {
      if (!isReason(err, 'NotFound')) return (err as Error).message;
    }
  }

  /** Writes the deletion conditions onto the namespace's status if they changed. */
  private async writeConditions(name: string, report: ContentReport): Promise<void> {
    const live = await this.client.get(NAMESPACES, undefined, name);
    const previous = (live.status?.conditions ?? []) as Condition[];
    const conditions = namespaceConditions(report, previous, new Date());
    if (deepEqual(previous, conditions)) return;
    await this.client.updateStatus(NAMESPACES, { ...live, status: { ...live.status, conditions } });
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
