import type { Pod, Taint, Toleration } from './types.js';

export type { Taint, Toleration };

/**
 * Taints and tolerations as Kubernetes defines them, and the tolerations every pod gets
 * for nodes that stop being ready. Kubernetes' keys and effects are used, so pods written
 * for Kubernetes tolerate flyCes' taints the same way.
 */

export const NOT_READY_TAINT = 'node.kubernetes.io/not-ready';
export const UNREACHABLE_TAINT = 'node.kubernetes.io/unreachable';

/**
 * Whether one toleration tolerates one taint: the same effect (or any), and the same key
 * and value (operator Equal, the default) or the same key (Exists); Exists with no key
 * tolerates every taint.
 */
export function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  const operator = t.operator || 'Equal';
  if (!t.key) return operator === 'Exists';
  if (t.key !== taint.key) return false;
  if (operator === 'Exists') return true;
  return operator === 'Equal' && (t.value ?? '') === (taint.value ?? '');
}

/** Seconds a pod tolerates a not-ready or unreachable node unless it says otherwise. */
export const DEFAULT_TOLERATION_SECONDS = 8;

/**
 * Gives a pod the tolerations for not-ready and unreachable nodes it does not have, with
 * flyCes' default seconds (Kubernetes' DefaultTolerationSeconds admission gives 300 s;
 * flyCes aims to move pods off a dead node within 30 s).
 */
export function addDefaultTolerations(pod: Pod, seconds = DEFAULT_TOLERATION_SECONDS): void {
  const spec = pod.spec as { tolerations?: unknown };
  if (spec.tolerations !== undefined && !Array.isArray(spec.tolerations)) return;
  const list = (spec.tolerations ?? []) as Toleration[];
  for (const key of [NOT_READY_TAINT, UNREACHABLE_TAINT]) {
    const taint: Taint = { key, effect: 'NoExecute' };
    if (list.some((t) => t && typeof t === 'object' && tolerates(t, taint))) continue;
    list.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: seconds });
  }
  spec.tolerations = list;
}
