import { byGroupResource } from '../../api/resources.js';
import { DEFAULT_SERVICE_ACCOUNT } from '../../api/service-account.js';
import type { KObject } from '../../api/types.js';
import type { InformerFactory } from '../../client/factory.js';
import type { Informer } from '../../client/informer.js';
import { isReason, type KubeClient } from '../../client/rest.js';
import { QueueController } from '../base.js';

const NAMESPACES = byGroupResource.get('/namespaces')!;
const SERVICE_ACCOUNTS = byGroupResource.get('/serviceaccounts')!;

/**
 * Keeps a `default` ServiceAccount in every namespace that is not being deleted, as
 * Kubernetes' serviceaccounts controller does: made when the namespace appears, and again
 * if someone deletes it.
 */
export class ServiceAccountController extends QueueController {
  private readonly namespaces: Informer<KObject>;
  private readonly accounts: Informer<KObject>;

  constructor(
    private readonly client: KubeClient,
    factory: InformerFactory,
    opts: { workers?: number } = {},
  ) {
    super('serviceaccount-controller', opts.workers ?? 1);
    this.namespaces = factory.informer(NAMESPACES);
    this.accounts = factory.informer(SERVICE_ACCOUNTS);
  }

  register(): void {
    this.namespaces.addHandlers({
      onAdd: (ns) => this.enqueue(ns),
      onUpdate: (_old, ns) => this.enqueue(ns),
    });
    this.accounts.addHandlers({
      onDelete: (sa) => {
        if (sa.metadata.name !== DEFAULT_SERVICE_ACCOUNT) return;
        const ns = this.namespaces.get(sa.metadata.namespace ?? '');
        if (ns) this.enqueue(ns);
      },
    });
  }

  protected async reconcile(name: string): Promise<void> {
    const ns = this.namespaces.get(name);
    if (!ns || ns.metadata.deletionTimestamp || ns.status?.phase === 'Terminating') return;
    if (this.accounts.get(`${name}/${DEFAULT_SERVICE_ACCOUNT}`)) return;
    try {
      await this.client.create(SERVICE_ACCOUNTS, {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: DEFAULT_SERVICE_ACCOUNT, namespace: name },
      });
      this.log.info({ namespace: name }, 'created the default service account');
    } catch (err) {
      // Made meanwhile (our cache was behind), or the namespace began to go.
      if (isReason(err, 'AlreadyExists') || isReason(err, 'Forbidden')) return;
      throw err;
    }
  }
}
