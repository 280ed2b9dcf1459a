import type { ControllerRevision, DaemonSet } from '../../api/apps-workloads.js';
import type { Selector } from '../../api/labels.js';
import { byGroupResource } from '../../api/resources.js';
import { controllerRef, objectKey, type NodeObject, type Pod } from '../../api/types.js';
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
} from '../history.js';
import { addWorkloadIndexes, CONTROLLER_INDEX } from '../indexes.js';
import { isPodAvailable } from '../pods.js';
import { Expectations } from '../replicaset/expectations.js';
import { daemonPodSpec, nodeVerdict, targetNode } from './eligibility.js';
import {
  computeStatus,
  manageNodes,
  rollingUpdate,
  updateBudget,
  type NodeSlot,
  type Plan,
} from './plan.js';

const DAEMONSETS = byGroupResource.get('apps/daemonsets')!;
const PODS = byGroupResource.get('/pods')!;
const NODES = byGroupResource.get('/nodes')!;

/** The label Kubernetes puts on daemon pods with the DaemonSet's generation (deprecated). */
const TEMPLATE_GENERATION_LABEL = 'pod-template-generation';

export interface DaemonSetControllerOptions {
  workers?: number;
  /** Time-to-live of expectations in ms (default 5 minutes). */
  expectationsTtlMs?: number;
}

/**
 * Runs one pod of each DaemonSet on every node its template fits (node selector, required
 * node affinity, taints against its tolerations). Pods are created unbound with a required
 * affinity naming their node, for the scheduler to bind. Templates are recorded as
 * ControllerRevisions; pods carry the revision's hash, and RollingUpdate replaces pods of
 * older revisions within maxUnavailable and maxSurge, while OnDelete waits for the user to
 * delete them.
 *
 * Failed daemon pods are deleted and recreated at once, without the growing backoff
 * Kubernetes applies to a node whose daemon keeps failing. Pods on a node that no longer
 * exists are deleted by this controller (Kubernetes leaves that to pod garbage collection).
 */
export class DaemonSetController extends QueueController {
  readonly expectations: Expectations;
  private readonly owners: PodOwners<DaemonSet>;
  private readonly daemonSets: Informer<DaemonSet>;
  private readonly pods: Informer<Pod>;
  private readonly nodes: Informer<NodeObject>;
  private readonly revisions: Informer<ControllerRevision>;
  private readonly events: EventRecorder;

  constructor(
    private readonly client: KubeClient,
    factory: InformerFactory,
    opts: DaemonSetControllerOptions = {},
  ) {
    super('daemonset-controller', opts.workers ?? 2);
    this.expectations = new Expectations(opts.expectationsTtlMs);
    this.daemonSets = factory.informer<DaemonSet>(DAEMONSETS);
    this.owners = new PodOwners('DaemonSet', this.daemonSets, this.expectations, this.queue);
    this.pods = factory.informer<Pod>(PODS);
    this.nodes = factory.informer<NodeObject>(NODES);
    this.revisions = factory.informer<ControllerRevision>(CONTROLLER_REVISIONS);
    this.events = new EventRecorder(client, 'daemonset-controller');
  }

  register(): void {
    for (const informer of [this.daemonSets, this.pods, this.revisions]) {
      addWorkloadIndexes(informer);
    }
    this.daemonSets.addHandlers({
      onAdd: (ds) => this.enqueue(ds),
      onUpdate: (_old, ds) => this.enqueue(ds),
      onDelete: (ds) => {
        this.owners.forget(objectKey(ds));
        this.enqueue(ds);
      },
    });
    this.pods.addHandlers(this.owners.podHandlers());
    this.nodes.addHandlers({
      onAdd: () => this.enqueueAll(),
      onUpdate: (old, node) => {
        if (nodeChanged(old, node)) this.enqueueAll();
      },
      onDelete: () => this.enqueueAll(),
    });
  }

  private enqueueAll(): void {
    for (const ds of this.daemonSets.list()) this.enqueue(ds);
  }

  protected async reconcile(key: string): Promise<number | void> {
    const cached = this.daemonSets.get(key);
    if (!cached) {
      this.owners.forget(key);
      return;
    }
    const ds = structuredClone(cached);
    const selector = selectorOf(ds);
    if (!selector) {
      this.log.warn({ daemonset: key }, 'refusing to manage pods with an empty selector');
      return;
    }
    const pods = await this.claimPods(ds, selector);
    const { hash, collisionCount } = await this.syncRevisions(ds, pods);
    const slots = this.slotsOf(ds, pods);
    const now = Date.now();
    const minReady = ds.spec.minReadySeconds ?? 0;
    const available = (pod: Pod) => isPodAvailable(pod, minReady, now);

    let failure: unknown;
    if (!ds.metadata.deletionTimestamp && this.owners.satisfied(key)) {
      try {
        await this.execute(ds, key, this.plan(ds, slots, hash, available), hash);
      } catch (err) {
        failure = err;
      }
    }
    const status = computeStatus(ds, slots, hash, available);
    if (collisionCount) status.collisionCount = collisionCount;
    if (!deepEqual(ds.status, status))
      await this.client.updateStatus(DAEMONSETS, { ...ds, status });
    if (failure) throw failure;
    if (minReady > 0 && status.numberReady !== status.numberAvailable) return minReady * 1000;
  }

  private plan(
    ds: DaemonSet,
    slots: NodeSlot[],
    hash: string,
    available: (pod: Pod) => boolean,
  ): Plan {
    const rolling = ds.spec.updateStrategy?.type !== 'OnDelete';
    const desired = slots.filter((s) => s.verdict.shouldRun).length;
    const budget = updateBudget(ds, desired);
    const plan = manageNodes(slots, hash, rolling && budget.surge > 0);
    if (!rolling) return plan;
    const update = rollingUpdate(slots, hash, budget, available);
    return {
      createOn: [...plan.createOn, ...update.createOn],
      delete: [...plan.delete, ...update.delete],
    };
  }

  /**
   * One slot per node, plus one per node name that daemon pods point at but that no
   * longer exists (its pods are misscheduled and get deleted).
   */
  private slotsOf(ds: DaemonSet, pods: Pod[]): NodeSlot[] {
    const byNode = new Map<string, Pod[]>();
    for (const pod of pods) {
      if (pod.metadata.deletionTimestamp) continue;
      const node = targetNode(pod) ?? '';
      byNode.set(node, [...(byNode.get(node) ?? []), pod]);
    }
    const slots: NodeSlot[] = [];
    for (const node of this.nodes.list()) {
      const name = node.metadata.name!;
      const verdict = nodeVerdict(ds.spec.template.spec, node);
      slots.push({ node: name, verdict, pods: byNode.get(name) ?? [] });
      byNode.delete(name);
    }
    const gone = { shouldRun: false, shouldContinueRunning: false };
    for (const [node, list] of byNode) slots.push({ node, verdict: gone, pods: list });
    for (const slot of slots) slot.pods.sort(byCreation);
    return slots;
  }

  /** The pods this DaemonSet owns, after adopting matching orphans and releasing others. */
  private claimPods(ds: DaemonSet, selector: Selector): Promise<Pod[]> {
    const candidates = claimCandidates(this.pods, ds);
    return claimPods(this.client, { owner: ds, ref: ownerRef(ds), selector }, candidates, this.log);
  }

  /** Makes sure the current template has a revision and prunes history beyond the limit. */
  private async syncRevisions(
    ds: DaemonSet,
    pods: Pod[],
  ): Promise<{ hash: string; collisionCount: number }> {
    const owned = this.revisions.byIndex(CONTROLLER_INDEX, ds.metadata.uid ?? '');
    const { revision, collisionCount } = await ensureRevision(
      this.client,
      ds,
      'DaemonSet',
      owned,
      ds.status?.collisionCount ?? 0,
    );
    const hash = revision.metadata.labels?.[REVISION_HASH_LABEL] ?? '';
    const live = new Set([hash, revision.metadata.name!]);
    for (const pod of pods) live.add(pod.metadata.labels?.[REVISION_HASH_LABEL] ?? '');
    const victims = revisionsToPrune(owned, live, ds.spec.revisionHistoryLimit ?? 10);
    await pruneRevisions(this.client, victims);
    return { hash, collisionCount };
  }

  private async execute(ds: DaemonSet, key: string, plan: Plan, hash: string): Promise<void> {
    if (plan.createOn.length === 0 && plan.delete.length === 0) return;
    this.log.info(
      { daemonset: key, create: plan.createOn.length, delete: plan.delete.length },
      'syncing daemon pods',
    );
    for (const { pod, reason } of plan.delete) {
      if (reason !== 'failed') continue;
      const node = targetNode(pod) ?? '';
      const message = `Found failed daemon pod ${objectKey(pod)} on node ${node}, will try to kill it`;
      this.events.warning(ds, 'FailedDaemonPod', message);
    }
    this.expectations.expectCreations(key, plan.createOn.length);
    this.expectations.expectDeletions(
      deletionsKey(key),
      plan.delete.map((d) => objectKey(d.pod)),
    );
    const results = await Promise.allSettled([
      ...plan.createOn.map((node) => this.createPod(ds, key, node, hash)),
      ...plan.delete.map(({ pod }) => this.deletePod(ds, key, pod)),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async createPod(ds: DaemonSet, key: string, node: string, hash: string): Promise<void> {
    try {
      const pod = await this.client.create<Pod>(PODS, daemonPod(ds, node, hash));
      this.events.normal(ds, 'SuccessfulCreate', `Created pod: ${pod.metadata.name}`);
    } catch (err) {
      this.expectations.creationObserved(key);
      this.events.warning(ds, 'FailedCreate', `Error creating: ${(err as Error).message}`);
      throw err;
    }
  }

  private async deletePod(ds: DaemonSet, key: string, pod: Pod): Promise<void> {
    const { namespace, name, uid } = pod.metadata;
    try {
      await this.client.delete(PODS, namespace, name!, { preconditions: { uid } });
      this.events.normal(ds, 'SuccessfulDelete', `Deleted pod: ${name}`);
    } catch (err) {
      this.expectations.deletionObserved(deletionsKey(key), objectKey(pod));
      if (isReason(err, 'NotFound')) return;
      this.events.warning(ds, 'FailedDelete', `Error deleting: ${(err as Error).message}`);
      throw err;
    }
  }
}

/** Whether a node changed in a way that can change where daemons run. */
function nodeChanged(old: NodeObject, node: NodeObject): boolean {
  return (
    !deepEqual(old.metadata.labels, node.metadata.labels) ||
    !deepEqual(old.spec?.taints, node.spec?.taints) ||
    old.spec?.unschedulable !== node.spec?.unschedulable
  );
}

function byCreation(a: Pod, b: Pod): number {
  const at = (p: Pod) => p.metadata.creationTimestamp ?? '';
  return at(a) < at(b) ? -1 : at(a) > at(b) ? 1 : a.metadata.name! < b.metadata.name! ? -1 : 1;
}

function ownerRef(ds: DaemonSet) {
  return controllerRef(ds, 'apps/v1', 'DaemonSet');
}

/** A daemon pod for `node`: the template with the revision hash, tolerations and affinity. */
export function daemonPod(ds: DaemonSet, node: string, hash: string): Pod {
  const meta = ds.spec.template.metadata ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${ds.metadata.name}-`,
      namespace: ds.metadata.namespace,
      labels: {
        ...(meta.labels ?? {}),
        [REVISION_HASH_LABEL]: hash,
        [TEMPLATE_GENERATION_LABEL]: String(ds.metadata.generation ?? 1),
      },
      ...(meta.annotations ? { annotations: { ...meta.annotations } } : {}),
      ownerReferences: [ownerRef(ds)],
    },
    spec: daemonPodSpec(ds.spec.template.spec, node),
  };
}
