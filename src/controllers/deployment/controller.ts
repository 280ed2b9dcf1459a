import { fromLabelSelector, type Selector } from '../../api/labels.js';
import { byGroupResource } from '../../api/resources.js';
import {
  controllerOf,
  objectKey,
  type Deployment,
  type Pod,
  type ReplicaSet,
} from '../../api/types.js';
import { EventRecorder } from '../../client/events.js';
import type { InformerFactory } from '../../client/factory.js';
import type { Informer } from '../../client/informer.js';
import { isReason, type KubeClient } from '../../client/rest.js';
import { deepEqual } from '../../util/equal.js';
import { QueueController } from '../base.js';
import { addWorkloadIndexes, CONTROLLER_INDEX, NAMESPACE_INDEX } from '../indexes.js';
import { isPodActive } from '../pods.js';
import { equalIgnoringHash, templateHash } from './hash.js';
import {
  deploymentRef,
  newReplicaSetAnnotations,
  newReplicaSetFor,
  REVISION_ANNOTATION,
  replicaSetsToPrune,
  revisionOf,
  splitReplicaSets,
  viewOf,
} from './replicasets.js';
import {
  newReplicaSetReplicas,
  oldReplicaSetTargets,
  resolveFenceposts,
  type ReplicaSetView,
} from './rollout.js';
import { computeDeploymentStatus, isComplete, untilDeadline, type RolloutEvent } from './status.js';

const DEPLOYMENTS = byGroupResource.get('apps/deployments')!;
const RS = byGroupResource.get('apps/replicasets')!;
const PODS = byGroupResource.get('/pods')!;

/** The state of one reconcile of one Deployment, updated as writes return newer copies. */
interface Rollout {
  d: Deployment;
  newRS?: ReplicaSet;
  /** Old ReplicaSets, oldest first. */
  old: ReplicaSet[];
  /** The revision the new ReplicaSet has or will get. */
  revision: number;
  event?: RolloutEvent;
}

export interface DeploymentControllerOptions {
  workers?: number;
}

/**
 * Rolls Deployments out through one ReplicaSet per pod template. RollingUpdate grows the
 * new ReplicaSet within maxSurge and shrinks old ones only as far as maxUnavailable allows;
 * Recreate scales old ones to zero, waits for their pods to go, then scales up the new one.
 * Writes the status `kubectl rollout status` reads and prunes history beyond
 * revisionHistoryLimit.
 *
 * Replica changes in the middle of a rollout are not spread proportionally over the
 * ReplicaSets as Kubernetes does: the new ReplicaSet is capped at spec.replicas and the old
 * ones drain under the usual availability rule, which converges to the same end state
 * (so the desired-replicas and max-replicas annotations are not written either).
 * A paused Deployment is scaled only when a single ReplicaSet has pods. The Progressing
 * condition is written once per reconcile: where Kubernetes writes FoundNewReplicaSet and
 * then at once NewReplicaSetAvailable, a watcher here sees only the second.
 */
export class DeploymentController extends QueueController {
  private readonly deployments: Informer<Deployment>;
  private readonly replicaSets: Informer<ReplicaSet>;
  private readonly pods: Informer<Pod>;
  private readonly events: EventRecorder;

  constructor(
    private readonly client: KubeClient,
    factory: InformerFactory,
    opts: DeploymentControllerOptions = {},
  ) {
    super('deployment-controller', opts.workers ?? 5);
    this.deployments = factory.informer<Deployment>(DEPLOYMENTS);
    this.replicaSets = factory.informer<ReplicaSet>(RS);
    this.pods = factory.informer<Pod>(PODS);
    this.events = new EventRecorder(client, 'deployment-controller');
  }

  register(): void {
    for (const informer of [this.deployments, this.replicaSets, this.pods]) {
      addWorkloadIndexes(informer);
    }
    this.deployments.addHandlers({
      onAdd: (d) => this.enqueue(d),
      onUpdate: (_old, d) => this.enqueue(d),
      onDelete: (d) => this.enqueue(d),
    });
    this.replicaSets.addHandlers({
      onAdd: (rs) => this.onReplicaSet(rs),
      onUpdate: (old, rs) => {
        if (controllerOf(old)?.uid !== controllerOf(rs)?.uid) this.onReplicaSet(old);
        this.onReplicaSet(rs);
      },
      onDelete: (rs) => this.onReplicaSet(rs),
    });
    this.pods.addHandlers({
      onAdd: (pod) => this.onPod(pod),
      onUpdate: (old, pod) => {
        const terminating = !!pod.metadata.deletionTimestamp !== !!old.metadata.deletionTimestamp;
        if (terminating || old.status?.phase !== pod.status?.phase) this.onPod(pod);
      },
      onDelete: (pod) => this.onPod(pod),
    });
  }

  private onReplicaSet(rs: ReplicaSet): void {
    const namespace = rs.metadata.namespace ?? '';
    const ref = controllerOf(rs);
    if (ref) {
      if (ref.kind === 'Deployment') this.queue.add(`${namespace}/${ref.name}`);
      return;
    }
    const labels = rs.metadata.labels ?? {};
    for (const d of this.deployments.byIndex(NAMESPACE_INDEX, namespace)) {
      if (selectorOf(d)?.matches(labels)) this.enqueue(d);
    }
  }

  /** Pods matter to rollouts through their ReplicaSet: counts for surge and Recreate. */
  private onPod(pod: Pod): void {
    const ref = controllerOf(pod);
    if (ref?.kind !== 'ReplicaSet') return;
    const rs = this.replicaSets.get(`${pod.metadata.namespace}/${ref.name}`);
    if (rs && rs.metadata.uid === ref.uid) this.onReplicaSet(rs);
  }

  protected async reconcile(key: string): Promise<number | void> {
    const cached = this.deployments.get(key);
    if (!cached) return;
    const d = structuredClone(cached);
    const selector = selectorOf(d);
    if (!selector) {
      this.log.warn({ deployment: key }, 'refusing to manage replica sets with an empty selector');
      return;
    }
    const owned = await this.claimReplicaSets(d, selector);
    if (d.metadata.deletionTimestamp) {
      const { newRS, old } = splitReplicaSets(d, owned);
      return this.finish({ d, newRS, old, revision: 0 });
    }
    if (d.spec.paused) return this.syncPaused(await this.prepare(d, owned));
    if (d.spec.strategy?.type === 'Recreate') return this.rolloutRecreate(d, owned);
    return this.rolloutRolling(d, owned);
  }

  /** The ReplicaSets this Deployment owns after adopting orphans and releasing strays. */
  private async claimReplicaSets(d: Deployment, selector: Selector): Promise<ReplicaSet[]> {
    const owned: ReplicaSet[] = [];
    for (const rs of this.replicaSets.byIndex(NAMESPACE_INDEX, d.metadata.namespace ?? '')) {
      const ref = controllerOf(rs);
      const matches = selector.matches(rs.metadata.labels ?? {});
      if (ref) {
        if (ref.uid !== d.metadata.uid) continue;
        if (matches) owned.push(rs);
        else if (!rs.metadata.deletionTimestamp) await this.setOwner(d, rs, false);
        continue;
      }
      if (!matches || rs.metadata.deletionTimestamp || d.metadata.deletionTimestamp) continue;
      const adopted = await this.setOwner(d, rs, true);
      if (adopted) owned.push(adopted);
    }
    return owned;
  }

  private async setOwner(
    d: Deployment,
    rs: ReplicaSet,
    adopt: boolean,
  ): Promise<ReplicaSet | undefined> {
    const others = (rs.metadata.ownerReferences ?? []).filter((r) => r.uid !== d.metadata.uid);
    const refs = adopt ? [...others, deploymentRef(d)] : others;
    try {
      const updated = await this.client.update<ReplicaSet>(RS, {
        ...rs,
        metadata: { ...rs.metadata, ownerReferences: refs.length ? refs : undefined },
      });
      const action = adopt ? 'adopted replica set' : 'released replica set';
      this.log.info({ deployment: objectKey(d), replicaset: objectKey(rs) }, action);
      return updated;
    } catch (err) {
      if (isReason(err, 'NotFound')) return undefined;
      throw err;
    }
  }

  /** Splits the ReplicaSets and brings the new one's and the Deployment's revision in line. */
  private async prepare(d: Deployment, owned: ReplicaSet[]): Promise<Rollout> {
    const { newRS, old } = splitReplicaSets(d, owned);
    const revision = Math.max(0, ...old.map(revisionOf)) + 1;
    const r: Rollout = { d, newRS, old, revision };
    if (!newRS) return r;
    r.newRS = await this.syncNewReplicaSet(d, newRS, revision);
    if (!d.status?.conditions?.some((c) => c.type === 'Progressing')) {
      const message = `Found new replica set "${newRS.metadata.name}"`;
      r.event = { reason: 'FoundNewReplicaSet', message };
    }
    r.d = await this.syncRevision(d, r.newRS);
    return r;
  }

  /**
   * Gives the existing new ReplicaSet the latest revision (it is older than the others after
   * a rollback), the Deployment's annotations and its minReadySeconds.
   */
  private async syncNewReplicaSet(
    d: Deployment,
    rs: ReplicaSet,
    revision: number,
  ): Promise<ReplicaSet> {
    const minReady = d.spec.minReadySeconds ?? 0;
    const annotations = newReplicaSetAnnotations(d, rs, revision);
    if (!annotations && (rs.spec.minReadySeconds ?? 0) === minReady) return rs;
    return this.client.update<ReplicaSet>(RS, {
      ...rs,
      metadata: { ...rs.metadata, annotations: annotations ?? rs.metadata.annotations },
      spec: { ...rs.spec, minReadySeconds: minReady },
    });
  }

  /** Copies the new ReplicaSet's revision onto the Deployment. */
  private async syncRevision(d: Deployment, rs: ReplicaSet): Promise<Deployment> {
    const revision = rs.metadata.annotations?.[REVISION_ANNOTATION];
    if (!revision || d.metadata.annotations?.[REVISION_ANNOTATION] === revision) return d;
    const annotations = { ...(d.metadata.annotations ?? {}), [REVISION_ANNOTATION]: revision };
    return this.client.update<Deployment>(DEPLOYMENTS, {
      ...d,
      metadata: { ...d.metadata, annotations },
    });
  }

  /** Creates the new ReplicaSet if there is none yet. */
  private async ensureNewReplicaSet(r: Rollout, replicas: number): Promise<ReplicaSet> {
    if (r.newRS) return r.newRS;
    const { d } = r;
    const hash = templateHash(d.spec.template, d.status?.collisionCount);
    const wanted = newReplicaSetFor(d, hash, r.revision, replicas);
    const name = wanted.metadata.name!;
    try {
      r.newRS = await this.client.create<ReplicaSet>(RS, wanted);
      this.log.info(
        { deployment: objectKey(d), replicaset: name, replicas },
        'created replica set',
      );
      if (replicas > 0) {
        this.events.normal(d, 'ScalingReplicaSet', `Scaled up replica set ${name} to ${replicas}`);
      }
    } catch (err) {
      if (!isReason(err, 'AlreadyExists')) throw err;
      r.newRS = await this.adoptExisting(d, name);
    }
    r.event = { reason: 'NewReplicaSetCreated', message: `Created new replica set "${name}"` };
    r.d = await this.syncRevision(r.d, r.newRS);
    return r.newRS;
  }

  /**
   * The ReplicaSet that already holds the new one's name: ours if it is ours with our
   * template (our cache had not seen it yet); otherwise the hash collided, so the collision
   * count goes up and the next attempt picks another name.
   */
  private async adoptExisting(d: Deployment, name: string): Promise<ReplicaSet> {
    const existing = await this.client.get<ReplicaSet>(RS, d.metadata.namespace, name);
    const ours = controllerOf(existing)?.uid === d.metadata.uid;
    if (ours && equalIgnoringHash(existing.spec.template, d.spec.template)) return existing;
    const collisionCount = (d.status?.collisionCount ?? 0) + 1;
    await this.client.updateStatus(DEPLOYMENTS, { ...d, status: { ...d.status, collisionCount } });
    throw new Error(
      `replica set ${name} exists with another template; collisionCount ${collisionCount}`,
    );
  }

  private async scale(d: Deployment, rs: ReplicaSet, replicas: number): Promise<ReplicaSet> {
    const from = rs.spec.replicas ?? 0;
    if (from === replicas) return rs;
    const updated = await this.client.update<ReplicaSet>(RS, {
      ...rs,
      spec: { ...rs.spec, replicas },
    });
    const direction = replicas > from ? 'up' : 'down';
    const name = rs.metadata.name;
    this.events.normal(
      d,
      'ScalingReplicaSet',
      `Scaled ${direction} replica set ${name} to ${replicas}`,
    );
    this.log.info(
      { deployment: objectKey(d), replicaset: name, from, to: replicas },
      'scaled replica set',
    );
    return updated;
  }

  private viewOf(rs: ReplicaSet): ReplicaSetView {
    return viewOf(rs, this.podsOf(rs).filter(isPodActive));
  }

  private podsOf(rs: ReplicaSet): Pod[] {
    return this.pods.byIndex(CONTROLLER_INDEX, rs.metadata.uid ?? '');
  }

  private async rolloutRolling(d: Deployment, owned: ReplicaSet[]): Promise<number | void> {
    const { maxSurge, maxUnavailable } = resolveFenceposts(d);
    const desired = d.spec.replicas ?? 1;
    const r = await this.prepare(d, owned);
    const empty: ReplicaSetView = { name: '', replicas: 0, pods: 0, available: 0 };
    const initial = newReplicaSetReplicas(
      desired,
      maxSurge,
      empty,
      r.old.map((rs) => this.viewOf(rs)),
    );
    const newRS = await this.ensureNewReplicaSet(r, initial);

    const newView = this.viewOf(newRS);
    const all = [newView, ...r.old.map((rs) => this.viewOf(rs))];
    const target = newReplicaSetReplicas(desired, maxSurge, newView, all);
    if (target !== (newRS.spec.replicas ?? 0)) {
      r.newRS = await this.scale(r.d, newRS, target);
      return this.finish(r);
    }

    const targets = oldReplicaSetTargets(desired, maxUnavailable, newView, all.slice(1));
    if (targets.size > 0) {
      r.old = await Promise.all(
        r.old.map((rs) => {
          const to = targets.get(rs.metadata.name!);
          return to === undefined ? rs : this.scale(r.d, rs, to);
        }),
      );
      return this.finish(r);
    }
    return this.finish(r, true);
  }

  private async rolloutRecreate(d: Deployment, owned: ReplicaSet[]): Promise<number | void> {
    const r = await this.prepare(d, owned);
    if (r.old.some((rs) => (rs.spec.replicas ?? 0) > 0)) {
      r.old = await Promise.all(r.old.map((rs) => this.scale(r.d, rs, 0)));
      return this.finish(r);
    }
    const oldPodsLeft = r.old.some(
      (rs) =>
        (rs.status?.replicas ?? 0) > 0 ||
        this.podsOf(rs).some(
          (p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed',
        ),
    );
    if (oldPodsLeft) return this.finish(r);
    const desired = d.spec.replicas ?? 1;
    const newRS = await this.ensureNewReplicaSet(r, desired);
    r.newRS = await this.scale(r.d, newRS, desired);
    return this.finish(r, true);
  }

  /** While paused nothing rolls out; a Deployment with pods in one ReplicaSet still scales. */
  private async syncPaused(r: Rollout): Promise<number | void> {
    const all = r.newRS ? [r.newRS, ...r.old] : r.old;
    const withPods = all.filter((rs) => (rs.spec.replicas ?? 0) > 0);
    const desired = r.d.spec.replicas ?? 1;
    const single = withPods.length === 1 ? withPods[0] : all.length === 1 ? all[0] : undefined;
    if (single && (single.spec.replicas ?? 0) !== desired) {
      const scaled = await this.scale(r.d, single, desired);
      if (single === r.newRS) r.newRS = scaled;
      else r.old = r.old.map((rs) => (rs === single ? scaled : rs));
    }
    return this.finish(r);
  }

  /** Prunes history once complete (if asked) and writes the status if it changed. */
  private async finish(r: Rollout, cleanup = false): Promise<number | void> {
    const all = r.newRS ? [r.newRS, ...r.old] : r.old;
    const now = new Date();
    const status = computeDeploymentStatus(r.d, all, r.newRS, now, r.event);
    if (cleanup && r.newRS && isComplete(r.d, status)) await this.prune(r);
    if (!deepEqual(r.d.status, status)) {
      await this.client.updateStatus(DEPLOYMENTS, { ...r.d, status });
    }
    return untilDeadline(r.d, status, now);
  }

  private async prune(r: Rollout): Promise<void> {
    const limit = r.d.spec.revisionHistoryLimit ?? 10;
    for (const rs of replicaSetsToPrune(r.old, limit)) {
      const { namespace, name, uid } = rs.metadata;
      try {
        await this.client.delete(RS, namespace, name!, { preconditions: { uid } });
        this.log.info({ deployment: objectKey(r.d), replicaset: name }, 'pruned old replica set');
      } catch (err) {
        if (!isReason(err, 'NotFound')) throw err;
      }
    }
  }
}

function selectorOf(d: Deployment): Selector | undefined {
  try {
    const selector = fromLabelSelector(d.spec?.selector);
    return selector.isEmpty() ? undefined : selector;
  } catch {
    return undefined;
  }
}
