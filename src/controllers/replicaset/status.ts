import type { Pod, ReplicaSet } from '../../api/types.js';
import { isPodAvailable, isPodReady } from '../pods.js';

/** The status fields the ReplicaSet controller maintains. */
export type ReplicaSetStatus = NonNullable<ReplicaSet['status']>;

/**
 * Computes a ReplicaSet's status from the active pods it owns at `now` (ms). Fields the
 * controller does not manage (conditions) are carried over from the current status.
 */
export function computeReplicaSetStatus(
  rs: ReplicaSet,
  activePods: Pod[],
  now: number,
): ReplicaSetStatus {
  const templateLabels = rs.spec.template?.metadata?.labels ?? {};
  const minReady = rs.spec.minReadySeconds ?? 0;
  const fullyLabeled = activePods.filter((pod) => {
    const labels = pod.metadata.labels ?? {};
    return Object.entries(templateLabels).every(([k, v]) => labels[k] === v);
  });
  const status: ReplicaSetStatus = {
    replicas: activePods.length,
    fullyLabeledReplicas: fullyLabeled.length,
    readyReplicas: activePods.filter(isPodReady).length,
    availableReplicas: activePods.filter((p) => isPodAvailable(p, minReady, now)).length,
    observedGeneration: rs.metadata.generation,
  };
  if (rs.status?.conditions?.length) status.conditions = rs.status.conditions;
  return status;
}
