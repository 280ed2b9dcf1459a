import {
  byGroupResource,
  RESOURCE_TYPES,
  typeForKind,
  type ResourceType,
} from '../../api/resources.js';
import { objectKey, splitKey, type KObject, type OwnerReference } from '../../api/types.js';
import type { InformerFactory } from '../../client/factory.js';
import type { Informer } from '../../client/informer.js';
import { isReason, type KubeClient } from '../../client/rest.js';
import { QueueController } from '../base.js';
import { addOwnerIndex, OWNER_INDEX } from '../indexes.js';

const ORPHAN = 'orphan';
const FOREGROUND = 'foregroundDeletion';

/** How often an owner waiting in foreground deletion looks again at its dependents. */
const FOREGROUND_RECHECK_MS = 1000;

export interface GarbageCollectorOptions {
  workers?: number;
}

/**
 * Deletes objects whose owners are all gone, and carries out the `orphan` and
 * `foregroundDeletion` finalizers of owners being deleted.
 *
 * Every resource type but Events is watched; queue keys are `<group>/<plural>|<namespace>/<name>`. An
 * owner is judged gone only when a live GET agrees with the cache (not found, or found
 * with another uid), and the dependent is re-read live and deleted with uid and
 * resourceVersion preconditions, so a lagging cache never deletes anything wrongly. Owner
 * references to kinds the API does not serve are left alone.
 */
/**
 * Resources the collector does not watch, as in Kubernetes: Events are the most numerous
 * and most often written objects of a cluster and are never owned (they expire instead),
 * so caching them would cost memory and a decode of every one for nothing.
 */
const IGNORED = new Set(['/events', 'events.k8s.io/events']);

export class GarbageCollector extends QueueController {
  private readonly informers = new Map<ResourceType, Informer<KObject>>();

  constructor(
    private readonly client: KubeClient,
    factory: InformerFactory,
    opts: GarbageCollectorOptions = {},
  ) {
    super('garbage-collector', opts.workers ?? 5);
    for (const rt of RESOURCE_TYPES) {
      if (!IGNORED.has(`${rt.group}/${rt.plural}`)) this.informers.set(rt, factory.informer(rt));
    }
  }

  register(): void {
    for (const [rt, informer] of this.informers) {
      addOwnerIndex(informer);
      informer.addHandlers({
        onAdd: (obj) => this.onChange(rt, obj),
        onUpdate: (_old, obj) => this.onChange(rt, obj),
        onDelete: (obj) => this.onDelete(obj),
      });
    }
  }

  private keyOf(rt: ResourceType, obj: KObject): string {
    const { namespace, name } = obj.metadata;
    return `${rt.group}/${rt.plural}|${namespace ? `${namespace}/` : ''}${name}`;
  }

  private onChange(rt: ResourceType, obj: KObject): void {
    const finalizers = obj.metadata.finalizers ?? [];
    const ownerWork = finalizers.includes(ORPHAN) || finalizers.includes(FOREGROUND);
    if (obj.metadata.ownerReferences?.length || (ownerWork && obj.metadata.deletionTimestamp)) {
      this.queue.add(this.keyOf(rt, obj));
    }
  }

  /** A deleted object may leave dependents without owners, or an owner waiting on it. */
  private onDelete(obj: KObject): void {
    for (const [depType, dep] of this.dependentsOf(obj.metadata.uid ?? '')) {
      this.queue.add(this.keyOf(depType, dep));
    }
    for (const ref of obj.metadata.ownerReferences ?? []) {
      const { ownerType, owner } = this.cachedOwner(ref, obj.metadata.namespace);
      if (ownerType && typeof owner === 'object' && owner.metadata.deletionTimestamp) {
        this.queue.add(this.keyOf(ownerType, owner));
      }
    }
  }

  /** Cached objects of every type that name `uid` among their owners. */
  private dependentsOf(uid: string): [ResourceType, KObject][] {
    const found: [ResourceType, KObject][] = [];
    for (const [rt, informer] of this.informers) {
      for (const obj of informer.byIndex(OWNER_INDEX, uid)) found.push([rt, obj]);
    }
    return found;
  }

  protected async reconcile(key: string): Promise<number | void> {
    const bar = key.indexOf('|');
    const rt = byGroupResource.get(key.slice(0, bar));
    const obj = rt && this.informers.get(rt)?.get(key.slice(bar + 1));
    if (!rt || !obj) return;
    const finalizers = obj.metadata.finalizers ?? [];
    if (obj.metadata.deletionTimestamp && finalizers.includes(ORPHAN)) {
      await this.orphanDependents(rt, obj);
    }
    let requeue: number | void = undefined;
    if (obj.metadata.deletionTimestamp && finalizers.includes(FOREGROUND)) {
      requeue = await this.deleteDependents(rt, obj);
    }
    if (!this.ownersCached(obj)) await this.collectIfOwnerless(rt, key.slice(bar + 1));
    return requeue;
  }

  /**
   * The owner a reference names, as the cache has it: the object itself, `missing` when
   * the cache has no owner with that uid, or `unknown` for kinds the API does not serve.
   */
  private cachedOwner(ref: OwnerReference, namespace: string | undefined) {
    const ownerType = typeForKind(ref.apiVersion, ref.kind);
    if (!ownerType) return { ownerType, owner: 'unknown' as const };
    const ns = ownerType.namespaced ? namespace : undefined;
    const cached = this.informers.get(ownerType)?.get(ns ? `${ns}/${ref.name}` : ref.name);
    return {
      ownerType,
      ns,
      owner: cached?.metadata.uid === ref.uid ? cached : ('missing' as const),
    };
  }

  /** Whether the cache holds every owner the object names: then there is nothing to ask. */
  private ownersCached(obj: KObject): boolean {
    return (obj.metadata.ownerReferences ?? []).every(
      (ref) => this.cachedOwner(ref, obj.metadata.namespace).owner !== 'missing',
    );
  }

  /** Whether an owner exists: the cache's yes is trusted, its no is checked with the server. */
  private async ownerExists(ref: OwnerReference, namespace: string | undefined): Promise<boolean> {
    const { ownerType, ns, owner } = this.cachedOwner(ref, namespace);
    // An owner of a kind we cannot look up is assumed present: deleting on a guess is worse.
    if (!ownerType || owner !== 'missing') return true;
    try {
      const live = await this.client.get(ownerType, ns, ref.name);
      return live.metadata.uid === ref.uid;
    } catch (err) {
      if (isReason(err, 'NotFound')) return false;
      throw err;
    }
  }

  /**
   * Deletes the object if none of its owners exist; drops references to missing owners if
   * only some are gone. Decides on a fresh read of the object, not the cached copy.
   */
  private async collectIfOwnerless(rt: ResourceType, objKey: string): Promise<void> {
    const { namespace, name } = splitKey(objKey);
    let live: KObject;
    try {
      live = await this.client.get(rt, namespace || undefined, name);
    } catch (err) {
      if (isReason(err, 'NotFound')) return;
      throw err;
    }
    const refs = live.metadata.ownerReferences ?? [];
    if (refs.length === 0 || live.metadata.deletionTimestamp) return;
    const exists = await Promise.all(refs.map((ref) => this.ownerExists(ref, namespace)));
    if (exists.every(Boolean)) return;
    const { uid, resourceVersion } = live.metadata;
    if (exists.some(Boolean)) {
      const kept = refs.filter((_ref, i) => exists[i]);
      await this.client.update(rt, {
        ...live,
        metadata: { ...live.metadata, ownerReferences: kept },
      });
      this.log.info({ object: objKey, kind: rt.kind }, 'removed references to deleted owners');
      return;
    }
    try {
      await this.client.delete(rt, namespace || undefined, name, {
        propagationPolicy: 'Background',
        preconditions: { uid, resourceVersion },
      });
      this.log.info({ object: objKey, kind: rt.kind }, 'deleted object whose owners are gone');
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
  }

  /** Removes the owner's references from its dependents, then the orphan finalizer. */
  private async orphanDependents(rt: ResourceType, owner: KObject): Promise<void> {
    const uid = owner.metadata.uid ?? '';
    for (const [depType, dep] of this.dependentsOf(uid)) {
      await this.updateLive(depType, dep, (obj) => {
        const refs = (obj.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid);
        if (refs.length === (obj.metadata.ownerReferences ?? []).length) return false;
        obj.metadata.ownerReferences = refs.length ? refs : undefined;
        return true;
      });
    }
    await this.removeFinalizer(rt, owner, ORPHAN);
    this.log.info({ object: objectKey(owner), kind: rt.kind }, 'orphaned dependents');
  }

  /**
   * Deletes the owner's dependents (in the foreground themselves, so chains unwind from the
   * bottom) and removes the finalizer once no dependent that blocks the owner remains.
   */
  private async deleteDependents(rt: ResourceType, owner: KObject): Promise<number | void> {
    const uid = owner.metadata.uid ?? '';
    let blocking = 0;
    for (const [depType, dep] of this.dependentsOf(uid)) {
      const ref = dep.metadata.ownerReferences?.find((r) => r.uid === uid);
      if (ref?.blockOwnerDeletion) blocking++;
      if (dep.metadata.deletionTimestamp) continue;
      try {
        await this.client.delete(depType, dep.metadata.namespace, dep.metadata.name!, {
          propagationPolicy: 'Foreground',
          preconditions: { uid: dep.metadata.uid },
        });
      } catch (err) {
        if (!isReason(err, 'NotFound') && !isReason(err, 'Conflict')) throw err;
      }
    }
    if (blocking > 0) return FOREGROUND_RECHECK_MS;
    await this.removeFinalizer(rt, owner, FOREGROUND);
  }

  private async removeFinalizer(rt: ResourceType, obj: KObject, finalizer: string): Promise<void> {
    await this.updateLive(rt, obj, (live) => {
      const finalizers = live.metadata.finalizers ?? [];
      if (!finalizers.includes(finalizer)) return false;
      const rest = finalizers.filter((f) => f !== finalizer);
      live.metadata.finalizers = rest.length ? rest : undefined;
      return true;
    });
  }

  /** Reads the object live, applies `change`, and writes it back if change returned true. */
  private async updateLive(
    rt: ResourceType,
    obj: KObject,
    change: (live: KObject) => boolean,
  ): Promise<void> {
    const { namespace, name } = obj.metadata;
    try {
      const live = await this.client.get(rt, namespace, name!);
      if (live.metadata.uid !== obj.metadata.uid || !change(live)) return;
      await this.client.update(rt, live);
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
  }
}
