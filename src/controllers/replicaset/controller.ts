import type { ApiError } from '../../api/errors.js';
import { fromLabelSelector, type Selector } from '../../api/labels.js';
import { byGroupResource } from '../../api/resources.js';
import {
  controllerOf,
  controllerRef,
  objectKey,
  type OwnerReference,
  type Pod,
  type ReplicaSet,
} from '../../api/types.js';
import { EventRecorder } from '../../client/events.js';
import type { InformerFactory } from '../../client/factory.js';
import type { Informer } from '../../client/informer.js';
import { isReason, type KubeClient } from '../../client/rest.js';
import { deepEqual } from '../../util/equal.js';
import { QueueController } from '../base.js';
import { claimPods } from '../claim.js';
import { addWorkloadIndexes, NAMESPACE_INDEX } from '../indexes.js';
import { claimCandidates } from '../pod-owners.js';
import { isPodActive, isPodReady, selectVictims } from '../pods.js';
import { Expectations } from './expectations.js';
import { computeReplicaSetStatus } from './status.js';

const RS = byGroupResource.get('apps/replicasets')!;
const PODS = byGroupResource.get('/pods')!;

/** At most this many pods are created or deleted in one reconcile, as in Kubernetes. */
const BURST_REPLICAS = 500;

export interface ReplicaSetControllerOptions {
  workers?: number;
  /** Time-to-live of expectations in ms (default 5 minutes). */
  expectationsTtlMs?: number;
}

/**
 * Keeps the number of active pods owned by each ReplicaSet at spec.replicas. Pods are owned
 * through a controller owner reference; matching orphans are adopted and owned pods that
 * stop matching the selector are released. Creations and deletions in flight are tracked
 * as expectations, and a ReplicaSet is not scaled again until they have been observed.
 */
export class ReplicaSetController extends QueueController {
  readonly expectations: Expectations;
  private readonly replicaSets: Informer<ReplicaSet>;
  private readonly pods: Informer<Pod>;
  private readonly events: EventRecorder;

  constructor(
    private readonly client: KubeClient,
    factory: InformerFactory,
    opts: ReplicaSetControllerOptions = {},
  ) {
    super('replicaset-controller', opts.workers ?? 5);
    this.expectations = new Expectations(opts.expectationsTtlMs);
    this.replicaSets = factory.informer<ReplicaSet>(RS);
    this.pods = factory.informer<Pod>(PODS);
    this.events = new EventRecorder(client, 'replicaset-controller');
  }

  register(): void {
    addWorkloadIndexes(this.replicaSets);
    addWorkloadIndexes(this.pods);
    this.replicaSets.addHandlers({
      onAdd: (rs) => this.enqueue(rs),
      onUpdate: (_old, rs) => this.enqueue(rs),
      onDelete: (rs) => {
        this.expectations.delete(objectKey(rs));
        this.enqueue(rs);
      },
    });
    this.pods.addHandlers({
      onAdd: (pod) => this.onPodAdd(pod),
      onUpdate: (old, pod) => this.onPodUpdate(old, pod),
      onDelete: (pod) => this.onPodDelete(pod),
    });
  }

  private ownerOf(pod: Pod, ref: OwnerReference | undefined): ReplicaSet | undefined {
    if (!ref || ref.kind !== 'ReplicaSet') return undefined;
    const rs = this.replicaSets.get(`${pod.metadata.namespace}/${ref.name}`);
    return rs?.metadata.uid === ref.uid ? rs : undefined;
  }

  private matchingReplicaSets(pod: Pod): ReplicaSet[] {
    const labels = pod.metadata.labels ?? {};
    return this.replicaSets
      .byIndex(NAMESPACE_INDEX, pod.metadata.namespace ?? '')
      .filter((rs) => selectorOf(rs)?.matches(labels));
  }

  private onPodAdd(pod: Pod): void {
    // A pod first seen already terminating (e.g. after a relist) counts as a deletion.
    if (pod.metadata.deletionTimestamp) return this.onPodDelete(pod);
    const ref = controllerOf(pod);
    if (ref) {
      const rs = this.ownerOf(pod, ref);
      if (!rs) return;
      this.expectations.creationObserved(objectKey(rs));
      return this.enqueue(rs);
    }
    for (const rs of this.matchingReplicaSets(pod)) this.enqueue(rs);
  }

  private onPodUpdate(old: Pod, pod: Pod): void {
    if (old.metadata.resourceVersion === pod.metadata.resourceVersion) return;
    const ref = controllerOf(pod);
    const oldRef = controllerOf(old);
    if (pod.metadata.deletionTimestamp && !old.metadata.deletionTimestamp) {
      const rs = this.ownerOf(pod, ref);
      if (rs) this.expectations.deletionObserved(objectKey(rs), objectKey(pod));
    }
    if (oldRef && oldRef.uid !== ref?.uid) {
      const previous = this.ownerOf(old, oldRef);
      if (previous) this.enqueue(previous);
    }
    const rs = this.ownerOf(pod, ref);
    if (rs) {
      this.enqueue(rs);
      this.requeueForAvailability(rs, old, pod);
      return;
    }
    const labelsChanged = !deepEqual(old.metadata.labels, pod.metadata.labels);
    if (!ref && (labelsChanged || oldRef)) {
      for (const match of this.matchingReplicaSets(pod)) this.enqueue(match);
    }
  }

  /** A pod that just became ready turns available minReadySeconds later: look again then. */
  private requeueForAvailability(rs: ReplicaSet, old: Pod, pod: Pod): void {
    const minReady = rs.spec.minReadySeconds ?? 0;
    if (minReady > 0 && !isPodReady(old) && isPodReady(pod)) {
      this.queue.addAfter(objectKey(rs), minReady * 1000 + 100);
    }
  }

  private onPodDelete(pod: Pod): void {
    const rs = this.ownerOf(pod, controllerOf(pod));
    if (!rs) return;
    this.expectations.deletionObserved(objectKey(rs), objectKey(pod));
    this.enqueue(rs);
  }

  protected async reconcile(key: string): Promise<number | void> {
    const cached = this.replicaSets.get(key);
    if (!cached) {
      this.expectations.delete(key);
      return;
    }
    const rs = structuredClone(cached);
    const selector = selectorOf(rs);
    if (!selector) {
      this.log.warn({ replicaset: key }, 'refusing to manage pods with an empty selector');
      return;
    }
    const needsSync = this.expectations.satisfied(key);
    const active = (await this.claimPods(rs, selector)).filter(isPodActive);
    let failure: unknown;
    if (needsSync && !rs.metadata.deletionTimestamp) {
      try {
        await this.manageReplicas(rs, key, active);
      } catch (err) {
        failure = err;
      }
    }
    const requeue = await this.syncStatus(rs, active);
    if (failure) throw failure;
    return requeue;
  }

  /** The pods this ReplicaSet owns after adopting matching orphans and releasing others. */
  private claimPods(rs: ReplicaSet, selector: Selector): Promise<Pod[]> {
    const claimant = { owner: rs, ref: ownerRef(rs), selector };
    return claimPods(this.client, claimant, claimCandidates(this.pods, rs), this.log);
  }

  private async manageReplicas(rs: ReplicaSet, key: string, active: Pod[]): Promise<void> {
    const diff = active.length - (rs.spec.replicas ?? 1);
    if (diff < 0) {
      await this.createPods(rs, key, Math.min(-diff, BURST_REPLICAS));
    } else if (diff > 0) {
      await this.deletePods(rs, key, selectVictims(active, Math.min(diff, BURST_REPLICAS)));
    }
  }

  /**
   * Creates `count` pods in slow-start batches of 1, 2, 4, ...: a failing batch ends the
   * burst, so a quota or admission problem costs one failed request, not hundreds.
   */
  private async createPods(rs: ReplicaSet, key: string, count: number): Promise<void> {
    this.expectations.expectCreations(key, count);
    this.log.info({ replicaset: key, count }, 'creating pods');
    let remaining = count;
    for (let batch = 1; remaining > 0; batch *= 2) {
      if (this.stopped) break;
      const size = Math.min(batch, remaining);
      remaining -= size;
      const results = await Promise.allSettled(
        Array.from({ length: size }, () => this.createPod(rs)),
      );
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      for (let i = 0; i < failed.length; i++) this.expectations.creationObserved(key);
      if (failed.length > 0) {
        for (let i = 0; i < remaining; i++) this.expectations.creationObserved(key);
        // Nothing can be created in a namespace being deleted, and this ReplicaSet goes too.
        if (failed.every((f) => isNamespaceTerminating(f.reason))) return;
        throw failed[0].reason;
      }
    }
    // Pods never attempted (stopping) will never be observed.
    for (let i = 0; i < remaining; i++) this.expectations.creationObserved(key);
  }

  private async createPod(rs: ReplicaSet): Promise<void> {
    try {
      const pod = await this.client.create<Pod>(PODS, podFromTemplate(rs));
      this.events.normal(rs, 'SuccessfulCreate', `Created pod: ${pod.metadata.name}`);
    } catch (err) {
      if (!isNamespaceTerminating(err)) {
        this.events.warning(rs, 'FailedCreate', `Error creating: ${(err as Error).message}`);
      }
      throw err;
    }
  }

  private async deletePods(rs: ReplicaSet, key: string, victims: Pod[]): Promise<void> {
    this.expectations.expectDeletions(key, victims.map(objectKey));
    this.log.info({ replicaset: key, count: victims.length }, 'deleting pods');
    const results = await Promise.allSettled(victims.map((pod) => this.deletePod(rs, key, pod)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async deletePod(rs: ReplicaSet, key: string, pod: Pod): Promise<void> {
    const { namespace, name, uid } = pod.metadata;
    try {
      await this.client.delete(PODS, namespace, name!, { preconditions: { uid } });
      this.events.normal(rs, 'SuccessfulDelete', `Deleted pod: ${name}`);
    } catch (err) {
      // The deletion will never be observed as such, so stop waiting for it.
      this.expectations.deletionObserved(key, objectKey(pod));
      if (isReason(err, 'NotFound')) return;
      this.events.warning(rs, 'FailedDelete', `Error deleting: ${(err as Error).message}`);
      throw err;
    }
  }

  /** Writes the status if it changed; returns when to look again for pods turning available. */
  private async syncStatus(rs: ReplicaSet, active: Pod[]): Promise<number | void> {
    const status = computeReplicaSetStatus(rs, active, Date.now());
    if (!deepEqual(rs.status, status)) {
      await this.client.updateStatus(RS, { ...rs, status });
    }
    const minReady = rs.spec.minReadySeconds ?? 0;
    if (minReady > 0 && status.readyReplicas !== status.availableReplicas) {
      return minReady * 1000;
    }
  }
}

/** Whether a create was refused because its namespace is being deleted. */
function isNamespaceTerminating(err: unknown): boolean {
  if (!isReason(err, 'Forbidden')) return false;
  return !!(err as ApiError).details?.causes?.some((c) => c.reason === 'NamespaceTerminating');
}

function selectorOf(rs: ReplicaSet): Selector | undefined {
  try {
    const selector = fromLabelSelector(rs.spec?.selector);
    return selector.isEmpty() ? undefined : selector;
  } catch {
    return undefined;
  }
}

/** The controller owner reference a ReplicaSet puts on its pods. */
export function ownerRef(rs: ReplicaSet): OwnerReference {
  return controllerRef(rs, 'apps/v1', 'ReplicaSet');
}

/** A new pod for a ReplicaSet: its template's labels, annotations and spec, named by the server. */
export function podFromTemplate(rs: ReplicaSet): Pod {
  const template = rs.spec.template ?? { spec: { containers: [] } };
  const meta = template.metadata ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${rs.metadata.name}-`,
      namespace: rs.metadata.namespace,
      labels: { ...(meta.labels ?? {}) },
      ...(meta.annotations ? { annotations: { ...meta.annotations } } : {}),
      ownerReferences: [ownerRef(rs)],
    },
    spec: structuredClone(template.spec),
  };
}
