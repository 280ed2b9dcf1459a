import type { Deployment } from '../../api/types.js';

/**
 * The arithmetic of a rolling update, free of I/O so it can be tested by table: how far
 * maxSurge and maxUnavailable reach, how far the new ReplicaSet may grow, and how far old
 * ReplicaSets may shrink without dropping below the availability floor.
 */

/** What the rollout needs to know about one ReplicaSet. */
export interface ReplicaSetView {
  name: string;
  /** spec.replicas. */
  replicas: number;
  /**
   * Pods that may exist for it right now: the largest of spec.replicas, status.replicas and
   * the active pods seen, so pods still awaiting deletion count against the surge.
   */
  pods: number;
  /**
   * Available pods it will keep: status.availableReplicas capped at spec.replicas, since a
   * pending scale-down removes pods its status may still count.
   */
  available: number;
}

/** Resolves an int-or-percent against `total`; percentages round up or down as asked. */
export function resolveIntOrPercent(
  value: number | string | undefined,
  total: number,
  roundUp: boolean,
): number {
  if (value === undefined) return 0;
  if (typeof value === 'number') return value;
  const match = /^(\d+)%$/.exec(value);
  if (!match) return Number.parseInt(value, 10) || 0;
  const exact = (Number(match[1]) * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

/**
 * maxSurge (rounded up) and maxUnavailable (rounded down) of a Deployment, as Kubernetes
 * resolves them: if both come to zero, one pod may be unavailable so the rollout can move.
 * Recreate deployments have neither.
 */
export function resolveFenceposts(d: Deployment): { maxSurge: number; maxUnavailable: number } {
  if (d.spec.strategy?.type === 'Recreate') return { maxSurge: 0, maxUnavailable: 0 };
  const desired = d.spec.replicas ?? 1;
  const ru = d.spec.strategy?.rollingUpdate ?? {};
  const maxSurge = resolveIntOrPercent(ru.maxSurge ?? '25%', desired, true);
  let maxUnavailable = resolveIntOrPercent(ru.maxUnavailable ?? '25%', desired, false);
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  return { maxSurge, maxUnavailable: Math.min(maxUnavailable, desired) };
}

/** The replicas the new ReplicaSet should have now, growing only within maxSurge. */
export function newReplicaSetReplicas(
  desired: number,
  maxSurge: number,
  newRS: ReplicaSetView,
  all: ReplicaSetView[],
): number {
  if (newRS.replicas >= desired) return desired;
  const current = all.reduce((n, rs) => n + Math.max(rs.replicas, rs.pods), 0);
  const maxTotal = desired + maxSurge;
  if (current >= maxTotal) return newRS.replicas;
  return newRS.replicas + Math.min(maxTotal - current, desired - newRS.replicas);
}

/**
 * New spec.replicas for old ReplicaSets (listed oldest first), keyed by name, for those
 * that should shrink. Unhealthy pods go first, within what the new ReplicaSet's unavailable
 * pods leave; then available ones, as long as total availability stays at or above
 * desired - maxUnavailable.
 */
export function oldReplicaSetTargets(
  desired: number,
  maxUnavailable: number,
  newRS: ReplicaSetView | undefined,
  old: ReplicaSetView[],
): Map<string, number> {
  const targets = new Map(old.map((rs) => [rs.name, rs.replicas]));
  const all = newRS ? [newRS, ...old] : old;
  const total = all.reduce((n, rs) => n + rs.replicas, 0);
  const minAvailable = desired - maxUnavailable;
  const newUnavailable = newRS ? Math.max(0, newRS.replicas - newRS.available) : 0;
  const maxScaledDown = total - minAvailable - newUnavailable;
  if (maxScaledDown <= 0) return new Map();

  let cleaned = 0;
  for (const rs of old) {
    if (cleaned >= maxScaledDown) break;
    const unhealthy = rs.replicas - rs.available;
    if (unhealthy <= 0) continue;
    const down = Math.min(maxScaledDown - cleaned, unhealthy);
    targets.set(rs.name, rs.replicas - down);
    cleaned += down;
  }

  let budget = all.reduce((n, rs) => n + rs.available, 0) - minAvailable;
  for (const rs of old) {
    if (budget <= 0) break;
    const current = targets.get(rs.name)!;
    const down = Math.min(current, budget);
    targets.set(rs.name, current - down);
    budget -= down;
  }
  return new Map(
    [...targets].filter(([name, n]) => n !== old.find((r) => r.name === name)!.replicas),
  );
}
