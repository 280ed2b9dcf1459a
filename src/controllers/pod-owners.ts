import { fromLabelSelector, type Selector } from '../api/labels.js';
import { controllerOf, objectKey, type KObject, type Pod } from '../api/types.js';
import type { EventHandlers, Informer } from '../client/informer.js';
import { CONTROLLER_INDEX, NAMESPACE_INDEX, ORPHAN_INDEX } from './indexes.js';
import { isPodReady } from './pods.js';
import type { Expectations } from './replicaset/expectations.js';

/** A workload that owns pods through its selector (DaemonSet, StatefulSet). */
export interface PodOwner extends KObject {
  spec: { selector?: unknown; minReadySeconds?: number };
}

/**
 * The pod side of a workload controller: which workload a pod event concerns, the
 * expectations it settles, and which workload to look at again. Creations are expected
 * under the workload's key and deletions under a second key, because one expectation
 * record holds either creations or deletions.
 */
export class PodOwners<T extends PodOwner> {
  constructor(
    private readonly kind: string,
    private readonly owners: Informer<T>,
    private readonly expectations: Expectations,
    private readonly queue: { add(key: string): void; addAfter(key: string, ms: number): void },
  ) {}

  /** The handlers to put on the pod informer. */
  podHandlers(): EventHandlers<Pod> {
    return {
      onAdd: (pod) => this.onPod(pod, pod.metadata.deletionTimestamp ? 'deleted' : 'added'),
      onUpdate: (old, pod) => {
        if (old.metadata.resourceVersion === pod.metadata.resourceVersion) return;
        const deleted = pod.metadata.deletionTimestamp && !old.metadata.deletionTimestamp;
        this.onPod(pod, deleted ? 'deleted' : 'updated');
        this.requeueForAvailability(old, pod);
      },
      onDelete: (pod) => this.onPod(pod, 'deleted'),
    };
  }

  /** Whether the pods created and deleted for the workload have all been seen. */
  satisfied(key: string): boolean {
    return this.expectations.satisfied(key) && this.expectations.satisfied(deletionsKey(key));
  }

  forget(key: string): void {
    this.expectations.delete(key);
    this.expectations.delete(deletionsKey(key));
  }

  /** The workload controlling the pod, if it is one of this kind and still exists. */
  ownerOf(pod: Pod): T | undefined {
    const ref = controllerOf(pod);
    if (!ref || ref.kind !== this.kind) return undefined;
    const owner = this.owners.get(`${pod.metadata.namespace}/${ref.name}`);
    return owner?.metadata.uid === ref.uid ? owner : undefined;
  }

  private onPod(pod: Pod, change: 'added' | 'updated' | 'deleted'): void {
    const owner = this.ownerOf(pod);
    if (!owner) {
      if (!controllerOf(pod) && change !== 'deleted') this.enqueueMatching(pod);
      return;
    }
    const key = objectKey(owner);
    if (change === 'added') this.expectations.creationObserved(key);
    if (change === 'deleted') {
      this.expectations.deletionObserved(deletionsKey(key), objectKey(pod));
    }
    this.queue.add(key);
  }

  /** An orphan pod may be adopted by a workload whose selector matches it. */
  private enqueueMatching(pod: Pod): void {
    const labels = pod.metadata.labels ?? {};
    for (const owner of this.owners.byIndex(NAMESPACE_INDEX, pod.metadata.namespace ?? '')) {
      if (selectorOf(owner)?.matches(labels)) this.queue.add(objectKey(owner));
    }
  }

  /** A pod that just became ready turns available minReadySeconds later: look again then. */
  private requeueForAvailability(old: Pod, pod: Pod): void {
    const owner = this.ownerOf(pod);
    const minReady = owner?.spec.minReadySeconds ?? 0;
    if (owner && minReady > 0 && !isPodReady(old) && isPodReady(pod)) {
      this.queue.addAfter(objectKey(owner), minReady * 1000 + 100);
    }
  }
}

/** The expectations key under which a workload's pod deletions are counted. */
export function deletionsKey(key: string): string {
  return `${key}#deletions`;
}

/** A workload's selector; undefined when it is empty or invalid (it then manages nothing). */
export function selectorOf(owner: PodOwner): Selector | undefined {
  try {
    const selector = fromLabelSelector(owner.spec?.selector as never);
    return selector.isEmpty() ? undefined : selector;
  } catch {
    return undefined;
  }
}

/**
 * The pods an owner may claim: its own (by controller uid) and the orphans of its
 * namespace, from an informer with the workload indexes; never the whole namespace.
 */
export function claimCandidates(pods: Informer<Pod>, owner: KObject): Pod[] {
  return [
    ...pods.byIndex(CONTROLLER_INDEX, owner.metadata.uid ?? ''),
    ...pods.byIndex(ORPHAN_INDEX, owner.metadata.namespace ?? ''),
  ];
}
