import { referencedObjects } from '../api/pod-references.js';
import type { Pod } from '../api/types.js';
import type { CacheEvent, WatchCache } from './watch-cache.js';

/**
 * Which ConfigMaps and Secrets each node may read: those its bound pods refer to, as the
 * graph behind Kubernetes' Node authorizer. The pods of each node are indexed from the
 * watch cache's pod events, using only the small selector view of each event (its
 * `spec.nodeName`), so the hot path of pod writes pays almost nothing; a node's
 * references are worked out from its few pods when it asks for an object, and kept until
 * one of its pods changes.
 */
export class NodeReferences {
  private readonly podsOf = new Map<string, Set<string>>();
  private readonly nodeOf = new Map<string, string>();
  /** Each node's references as last worked out; dropped when one of its pods changes. */
  private readonly refsOf = new Map<string, Set<string>>();
  private started = false;

  constructor(
    private readonly cache: WatchCache,
    private readonly podsPrefix = '/registry/core/pods/',
  ) {}

  /** Whether a pod bound to `node` refers to `ref` (`Secret/<ns>/<name>` or `ConfigMap/...`). */
  refers(node: string, ref: string): boolean {
    this.start();
    let refs = this.refsOf.get(node);
    if (!refs) {
      refs = new Set();
      const pods = this.cache.objects(this.podsPrefix);
      for (const key of this.podsOf.get(node) ?? []) {
        const cached = pods.get(key);
        if (cached) for (const r of referencedObjects(cached.obj as Pod)) refs.add(r);
      }
      this.refsOf.set(node, refs);
    }
    return refs.has(ref);
  }

  /** Indexes the cached pods and follows their changes; in one turn, so nothing is missed. */
  private start(): void {
    if (this.started) return;
    this.started = true;
    for (const [key, cached] of this.cache.objects(this.podsPrefix)) {
      this.place(key, nodeNameOf(cached.view));
    }
    this.cache.listen(this.podsPrefix, (event: CacheEvent) => {
      const node = event.type === 'DELETED' ? undefined : nodeNameOf(event.object.view);
      const was = this.nodeOf.get(event.object.key);
      if (was !== undefined) this.refsOf.delete(was);
      if (node !== undefined) this.refsOf.delete(node);
      this.place(event.object.key, node);
    });
  }

  private place(key: string, node: string | undefined): void {
    const was = this.nodeOf.get(key);
    if (was === node) return;
    if (was !== undefined) {
      const set = this.podsOf.get(was);
      set?.delete(key);
      if (set?.size === 0) this.podsOf.delete(was);
      this.nodeOf.delete(key);
    }
    if (node) {
      this.nodeOf.set(key, node);
      let set = this.podsOf.get(node);
      if (!set) this.podsOf.set(node, (set = new Set()));
      set.add(key);
    }
  }
}

function nodeNameOf(view: { spec?: unknown }): string | undefined {
  const name = (view.spec as { nodeName?: unknown } | undefined)?.nodeName;
  return typeof name === 'string' && name ? name : undefined;
}
