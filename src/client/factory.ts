import type { ResourceType } from '../api/resources.js';
import type { KObject } from '../api/types.js';
import { Informer, type InformerOptions } from './informer.js';
import type { KubeClient } from './rest.js';

/**
 * Shares informers between the components of one process: asking twice for the same
 * resource and options returns the same informer, so each collection is watched once.
 */
export class InformerFactory {
  private readonly informers = new Map<string, Informer<any>>();
  private readonly started = new Set<Informer<any>>();

  constructor(readonly client: KubeClient) {}

  /** A shared informer; shared ones take no transform, as every user sees the same objects. */
  informer<T extends KObject = KObject>(
    rt: ResourceType,
    opts: Omit<InformerOptions, 'transform'> = {},
  ): Informer<T> {
    const key = `${rt.group}/${rt.plural}|${opts.namespace ?? ''}|${opts.labelSelector ?? ''}|${opts.fieldSelector ?? ''}`;
    let informer = this.informers.get(key);
    if (!informer) {
      informer = new Informer<T>(this.client, rt, opts);
      this.informers.set(key, informer);
    }
    return informer as Informer<T>;
  }

  /** Starts every informer made so far and resolves when all have synced. */
  async start(): Promise<void> {
    for (const informer of this.informers.values()) {
      if (this.started.has(informer)) continue;
      this.started.add(informer);
      informer.start();
    }
    await Promise.all([...this.informers.values()].map((i) => i.hasSynced()));
  }

  stop(): void {
    for (const informer of this.informers.values()) informer.stop();
  }
}
