import type { ControllerRevision, StatefulSet } from '../../api/apps-workloads.js';
import type { Selector } from '../../api/labels.js';
import { byGroupResource } from '../../api/resources.js';
import { controllerRef, objectKey, type Pod, type PodTemplateSpec } from '../../api/types.js';
import { EventRecorder } from '../../client/events.js';
import type { InformerFactory } from '../../client/factory.js';
import type { Informer } from '../../client/informer.js';
import { isReason, type KubeClient } from '../../client/rest.js';
import { deepEqual } from '../../util/equal.js';
import { QueueController } from '../base.js';
import { claimPods } from '../claim.js';
import { claimCandidates, deletionsKey, PodOwners, selectorOf } from '../pod-owners.js';
import {
  CONTROLLER_REVISIONS,
  ensureRevision,
  pruneRevisions,
  REVISION_HASH_LABEL,
  revisionsToPrune,
  templateOfRevision,
} from '../history.js';
import { addWorkloadIndexes, CONTROLLER_INDEX } from '../indexes.js';
import { isPodReady } from '../pods.js';
import { Expectations } from '../replicaset/expectations.js';
import {
  computeSetStatus,
  isHealthy,
  maxUnavailableOf,
  ordinalOf,
  planSet,
  podName,
  revisionForOrdinal,
  type SetPlan,
} from './plan.js';

const STATEFULSETS = byGroupResource.get('apps/statefulsets')!;
const PODS = byGroupResource.get('/pods')!;

/** Labels that give a StatefulSet pod its identity. */
export const POD_NAME_LABEL = 'statefulset.kubernetes.io/pod-name';
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index';

export interface StatefulSetControllerOptions {
  workers?: number;
  /** Time-to-live of expectations in ms (default 5 minutes). */
  expectationsTtlMs?: number;
}

/** The revisions of one reconcile: what pods below the partition keep, what others get. */
interface Revisions {
  current: ControllerRevision;
  update: ControllerRevision;
  collisionCount: number;
}

/**
 * Runs each StatefulSet as pods with stable names `<set>-<ordinal>`, hostnames and
 * subdomain (the governing service), created lowest ordinal first and removed highest
 * first, and with OrderedReady each only after its predecessors are Running and Ready.
 * A pod that fails or is deleted is made again under the same name. Templates are
 * recorded as ControllerRevisions; RollingUpdate replaces pods from the highest ordinal
 * down to the partition, OnDelete only when the user deletes them.
 *
 * Pods whose identity labels or hostname were changed by hand are not repaired, and
 * volumeClaimTemplates are refused by validation since no PersistentVolumeClaims are served.
 */
export class StatefulSetController extends QueueController {
  readonly expectations: Expectations;
  private readonly owners: PodOwners<StatefulSet>;
  private readonly sets: Informer<StatefulSet>;
  private readonly pods: Informer<Pod>;
  private readonly revisions: Informer<ControllerRevision>;
  private readonly events: EventRecorder;

  constructor(
    private readonly client: KubeClient,
    factory: InformerFactory,
    opts: StatefulSetControllerOptions = {},
  ) {
    super('statefulset-controller', opts.workers ?? 2);
    this.expectations = new Expectations(opts.expectationsTtlMs);
    this.sets = factory.informer<StatefulSet>(STATEFULSETS);
    this.owners = new PodOwners('StatefulSet', this.sets, this.expectations, this.queue);
    this.pods = factory.informer<Pod>(PODS);
    this.revisions = factory.informer<ControllerRevision>(CONTROLLER_REVISIONS);
    this.events = new EventRecorder(client, 'statefulset-controller');
  }

  register(): void {
    for (const informer of [this.sets, this.pods, this.revisions]) addWorkloadIndexes(informer);
    this.sets.addHandlers({
      onAdd: (sts) => this.enqueue(sts),
      onUpdate: (_old, sts) => this.enqueue(sts),
      onDelete: (sts) => {
        this.owners.forget(objectKey(sts));
        this.enqueue(sts);
      },
    });
    this.pods.addHandlers(this.owners.podHandlers());
  }

  protected async reconcile(key: string): Promise<number | void> {
    const cached = this.sets.get(key);
    if (!cached) {
      this.owners.forget(key);
      return;
    }
    const sts = structuredClone(cached);
    const selector = selectorOf(sts);
    if (!selector) {
      this.log.warn({ statefulset: key }, 'refusing to manage pods with an empty selector');
      return;
    }
    const pods = await this.claimPods(sts, selector);
    const revisions = await this.syncRevisions(sts, pods);
    const now = Date.now();
    const minReady = sts.spec.minReadySeconds ?? 0;

    let failure: unknown;
    if (!sts.metadata.deletionTimestamp && this.owners.satisfied(key)) {
      const plan = planSet({
        replicas: sts.spec.replicas ?? 1,
        parallel: sts.spec.podManagementPolicy === 'Parallel',
        pods: new Map(pods.map((p) => [ordinalOf(sts.metadata.name!, p.metadata.name!)!, p])),
        updateRevision: revisions.update.metadata.name!,
        rollingUpdate:
          sts.spec.updateStrategy?.type === 'OnDelete'
            ? undefined
            : {
                partition: sts.spec.updateStrategy?.rollingUpdate?.partition ?? 0,
                maxUnavailable: maxUnavailableOf(sts),
              },
        healthy: (pod) => isHealthy(pod, minReady, now),
      });
      try {
        await this.execute(sts, key, plan, revisions);
      } catch (err) {
        failure = err;
      }
    }
    await this.syncStatus(sts, pods, revisions, now);
    if (failure) throw failure;
    const waiting = pods.some((p) => isPodReady(p) && !isHealthy(p, minReady, now));
    if (minReady > 0 && waiting) return minReady * 1000;
  }

  private async syncStatus(
    sts: StatefulSet,
    pods: Pod[],
    revisions: Revisions,
    now: number,
  ): Promise<void> {
    const status = computeSetStatus(
      sts,
      pods,
      revisions.current.metadata.name!,
      revisions.update.metadata.name!,
      revisions.collisionCount,
      now,
    );
    if (deepEqual(sts.status, status)) return;
    await this.client.updateStatus(STATEFULSETS, { ...sts, status });
  }

  /**
   * The pods of this set: pods with a member name (`<set>-<n>`) that match the selector,
   * after adopting such orphans and releasing owned pods that no longer match.
   */
  private claimPods(sts: StatefulSet, selector: Selector): Promise<Pod[]> {
    const name = sts.metadata.name!;
    const accepts = (pod: Pod) => ordinalOf(name, pod.metadata.name!) !== undefined;
    const candidates = claimCandidates(this.pods, sts);
    const claimant = { owner: sts, ref: ownerRef(sts), selector, accepts };
    return claimPods(this.client, claimant, candidates, this.log);
  }

  /**
   * The update revision (the current template's) and the current one (the revision the
   * status names, while it still exists), and history pruned beyond the limit.
   */
  private async syncRevisions(sts: StatefulSet, pods: Pod[]): Promise<Revisions> {
    const owned = this.revisions.byIndex(CONTROLLER_INDEX, sts.metadata.uid ?? '');
    const ensured = await ensureRevision(
      this.client,
      sts,
      'StatefulSet',
      owned,
      sts.status?.collisionCount ?? 0,
    );
    const update = ensured.revision;
    const named = sts.status?.currentRevision;
    const current = owned.find((r) => named && r.metadata.name === named) ?? update;
    const live = new Set([update.metadata.name!, current.metadata.name!]);
    for (const pod of pods) live.add(pod.metadata.labels?.[REVISION_HASH_LABEL] ?? '');
    const victims = revisionsToPrune(owned, live, sts.spec.revisionHistoryLimit ?? 10);
    await pruneRevisions(this.client, victims);
    return { current, update, collisionCount: ensured.collisionCount };
  }

  private async execute(
    sts: StatefulSet,
    key: string,
    plan: SetPlan,
    revisions: Revisions,
  ): Promise<void> {
    if (plan.create.length === 0 && plan.delete.length === 0) return;
    this.log.info(
      {
        statefulset: key,
        create: plan.create,
        delete: plan.delete.map((d) => `${d.pod.metadata.name} (${d.reason})`),
      },
      'syncing stateful pods',
    );
    for (const { pod, reason } of plan.delete) {
      if (reason !== 'failed') continue;
      const message = `StatefulSet ${key} is recreating failed Pod ${pod.metadata.name}`;
      this.events.warning(sts, 'RecreatingFailedPod', message);
    }
    this.expectations.expectCreations(key, plan.create.length);
    this.expectations.expectDeletions(
      deletionsKey(key),
      plan.delete.map((d) => objectKey(d.pod)),
    );
    const results = await Promise.allSettled([
      ...plan.create.map((ord) => this.createPod(sts, key, ord, revisions)),
      ...plan.delete.map(({ pod }) => this.deletePod(sts, key, pod)),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async createPod(
    sts: StatefulSet,
    key: string,
    ord: number,
    revisions: Revisions,
  ): Promise<void> {
    const currentName = revisions.current.metadata.name!;
    const updateName = revisions.update.metadata.name!;
    const revisionName = revisionForOrdinal(sts, ord, currentName, updateName);
    const revision = revisionName === currentName ? revisions.current : revisions.update;
    const template = templateOfRevision(revision) ?? sts.spec.template;
    const pod = statefulPod(sts, ord, template, revisionName);
    const set = sts.metadata.name;
    try {
      await this.client.create<Pod>(PODS, pod);
      const message = `create Pod ${pod.metadata.name} in StatefulSet ${set} successful`;
      this.events.normal(sts, 'SuccessfulCreate', message);
    } catch (err) {
      this.expectations.creationObserved(key);
      // Our own earlier create, not yet in the cache: nothing to report.
      if (isReason(err, 'AlreadyExists')) return;
      const message =
        `create Pod ${pod.metadata.name} in StatefulSet ${set} failed error: ` +
        (err as Error).message;
      this.events.warning(sts, 'FailedCreate', message);
      throw err;
    }
  }

  private async deletePod(sts: StatefulSet, key: string, pod: Pod): Promise<void> {
    const { namespace, name, uid } = pod.metadata;
    const set = sts.metadata.name;
    try {
      await this.client.delete(PODS, namespace, name!, { preconditions: { uid } });
      const message = `delete Pod ${name} in StatefulSet ${set} successful`;
      this.events.normal(sts, 'SuccessfulDelete', message);
    } catch (err) {
      this.expectations.deletionObserved(deletionsKey(key), objectKey(pod));
      if (isReason(err, 'NotFound')) return;
      const message = `delete Pod ${name} in StatefulSet ${set} failed error: ${(err as Error).message}`;
      this.events.warning(sts, 'FailedDelete', message);
      throw err;
    }
  }
}

function ownerRef(sts: StatefulSet) {
  return controllerRef(sts, 'apps/v1', 'StatefulSet');
}

/**
 * The pod of ordinal `ord`, made from `template` of revision `revisionName`: its stable
 * name, identity labels, hostname and subdomain.
 */
export function statefulPod(
  sts: StatefulSet,
  ord: number,
  template: PodTemplateSpec,
  revisionName: string,
): Pod {
  const name = podName(sts.metadata.name!, ord);
  const meta = template.metadata ?? {};
  const spec = structuredClone(template.spec);
  spec.hostname = name;
  if (sts.spec.serviceName) spec.subdomain = sts.spec.serviceName;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: sts.metadata.namespace,
      labels: {
        ...(meta.labels ?? {}),
        [REVISION_HASH_LABEL]: revisionName,
        [POD_NAME_LABEL]: name,
        [POD_INDEX_LABEL]: String(ord),
      },
      ...(meta.annotations ? { annotations: { ...meta.annotations } } : {}),
      ownerReferences: [ownerRef(sts)],
    },
    spec,
  };
}
