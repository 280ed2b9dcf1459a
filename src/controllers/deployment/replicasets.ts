import {
  controllerRef,
  type Deployment,
  type OwnerReference,
  type Pod,
  type ReplicaSet,
} from '../../api/types.js';
import { equalIgnoringHash, TEMPLATE_HASH_LABEL } from './hash.js';
import type { ReplicaSetView } from './rollout.js';

/** The annotation holding a rollout's revision number, on ReplicaSets and the Deployment. */
export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';

/** Earlier revisions a ReplicaSet held before a rollback gave it a newer one, comma-separated. */
export const REVISION_HISTORY_ANNOTATION = 'deployment.kubernetes.io/revision-history';

/** Deployment annotations that describe the Deployment itself and are never copied. */
const NOT_COPIED = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION_ANNOTATION,
  REVISION_HISTORY_ANNOTATION,
  'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas',
  'deprecated.deployment.rollback.to',
]);

/**
 * The annotations the new ReplicaSet should carry: the Deployment's own (such as
 * `kubernetes.io/change-cause`, which `kubectl rollout history` reads from the ReplicaSet)
 * added over its existing ones, and `revision`, with the revision it replaces appended to
 * the revision history. Undefined when nothing would change. Annotations removed from the
 * Deployment stay on the ReplicaSet, as in Kubernetes.
 */
export function newReplicaSetAnnotations(
  d: Deployment,
  rs: ReplicaSet,
  revision: number,
): Record<string, string> | undefined {
  const current = rs.metadata.annotations ?? {};
  const next = { ...current };
  for (const [k, v] of Object.entries(d.metadata.annotations ?? {})) {
    if (!NOT_COPIED.has(k)) next[k] = v;
  }
  const had = revisionOf(rs);
  if (had < revision) {
    next[REVISION_ANNOTATION] = String(revision);
    if (had > 0) {
      const history = current[REVISION_HISTORY_ANNOTATION];
      next[REVISION_HISTORY_ANNOTATION] = history ? `${history},${had}` : String(had);
    }
  }
  const changed = Object.keys(next).some((k) => next[k] !== current[k]);
  return changed ? next : undefined;
}

/** The revision number of a ReplicaSet; 0 when it has none. */
export function revisionOf(rs: ReplicaSet): number {
  const n = Number.parseInt(rs.metadata.annotations?.[REVISION_ANNOTATION] ?? '', 10);
  return Number.isNaN(n) ? 0 : n;
}

/** Oldest first: by revision, then by creation time, then by name. */
export function compareOldestFirst(a: ReplicaSet, b: ReplicaSet): number {
  const rev = revisionOf(a) - revisionOf(b);
  if (rev !== 0) return rev;
  const at = (rs: ReplicaSet) => Date.parse(rs.metadata.creationTimestamp ?? '') || 0;
  const time = at(a) - at(b);
  if (time !== 0) return time;
  return (a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1;
}

/**
 * Splits a Deployment's ReplicaSets into the new one (whose template equals the
 * Deployment's, ignoring the hash label; the oldest if several do) and the old ones,
 * oldest first.
 */
export function splitReplicaSets(
  d: Deployment,
  owned: ReplicaSet[],
): { newRS?: ReplicaSet; old: ReplicaSet[] } {
  const sorted = [...owned].sort((a, b) => {
    const at = (rs: ReplicaSet) => Date.parse(rs.metadata.creationTimestamp ?? '') || 0;
    return at(a) - at(b) || compareOldestFirst(a, b);
  });
  const newRS = sorted.find((rs) => equalIgnoringHash(rs.spec.template, d.spec.template));
  const old = owned.filter((rs) => rs !== newRS).sort(compareOldestFirst);
  return { newRS, old };
}

/** The controller owner reference a Deployment puts on its ReplicaSets. */
export function deploymentRef(d: Deployment): OwnerReference {
  return controllerRef(d, 'apps/v1', 'Deployment');
}

/** The ReplicaSet for a Deployment's current template, with hash, revision and replicas. */
export function newReplicaSetFor(
  d: Deployment,
  hash: string,
  revision: number,
  replicas: number,
): ReplicaSet {
  const template = structuredClone(d.spec.template);
  template.metadata = { ...(template.metadata ?? {}) };
  template.metadata.labels = { ...(template.metadata.labels ?? {}), [TEMPLATE_HASH_LABEL]: hash };
  const selector = structuredClone(d.spec.selector);
  selector.matchLabels = { ...(selector.matchLabels ?? {}), [TEMPLATE_HASH_LABEL]: hash };
  const rs: ReplicaSet = {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `${d.metadata.name}-${hash}`,
      namespace: d.metadata.namespace,
      labels: { ...template.metadata.labels },
      ownerReferences: [deploymentRef(d)],
    },
    spec: {
      replicas,
      minReadySeconds: d.spec.minReadySeconds ?? 0,
      selector,
      template,
    },
  };
  rs.metadata.annotations = newReplicaSetAnnotations(d, rs, revision);
  return rs;
}

/**
 * The rollout's view of a ReplicaSet, given the active pods the cache holds for it: pods
 * count as the most any source says may exist, availability as the least it will keep.
 */
export function viewOf(rs: ReplicaSet, activePods: Pod[]): ReplicaSetView {
  const replicas = rs.spec.replicas ?? 0;
  const pods = Math.max(replicas, rs.status?.replicas ?? 0, activePods.length);
  const available = Math.min(rs.status?.availableReplicas ?? 0, replicas);
  return { name: rs.metadata.name!, replicas, pods, available };
}

/**
 * Old ReplicaSets that may be deleted to keep at most `limit` of them: only those scaled
 * to zero with no pods left and whose status has caught up, oldest first.
 */
export function replicaSetsToPrune(old: ReplicaSet[], limit: number): ReplicaSet[] {
  const idle = old
    .filter(
      (rs) =>
        (rs.spec.replicas ?? 0) === 0 &&
        (rs.status?.replicas ?? 0) === 0 &&
        !rs.metadata.deletionTimestamp &&
        (rs.status?.observedGeneration ?? 0) >= (rs.metadata.generation ?? 0),
    )
    .sort(compareOldestFirst);
  return idle.slice(0, Math.max(0, idle.length - Math.max(0, limit)));
}
