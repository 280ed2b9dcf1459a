import {
  NOT_READY_TAINT,
  tolerates,
  UNREACHABLE_TAINT,
  type Taint,
  type Toleration,
} from '../../api/taints.js';
import type { NodeObject, Pod } from '../../api/types.js';

/**
 * The pure part of node lifecycle: which taints a node's Ready condition calls for, and
 * when a pod on a tainted node must be evicted.
 */

/** The taints this controller owns; all others on a node are left as they are. */
const OWNED = new Set([NOT_READY_TAINT, UNREACHABLE_TAINT]);

/**
 * The taints the node's Ready condition calls for: not-ready when the agent reports
 * Ready=False, unreachable when nobody has heard from it (Unknown), none when Ready.
 * Both effects are set, as Kubernetes does: NoSchedule keeps new pods away, NoExecute
 * evicts the ones there after their toleration.
 */
export function wantedTaints(node: NodeObject): Taint[] {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  let key: string | undefined;
  if (!ready || ready.status === 'Unknown') key = ready ? UNREACHABLE_TAINT : undefined;
  else if (ready.status === 'False') key = NOT_READY_TAINT;
  if (!key) return [];
  return [
    { key, effect: 'NoSchedule' },
    { key, effect: 'NoExecute' },
  ];
}

/**
 * The node's taints with the owned ones brought in line with `wanted`; undefined when
 * nothing changes. Taints that stay keep their timeAdded, which eviction counts from.
 */
export function reconcileTaints(
  current: Taint[],
  wanted: Taint[],
  now: string,
): Taint[] | undefined {
  const same = (a: Taint, b: Taint) => a.key === b.key && a.effect === b.effect;
  const kept = current.filter((t) => !OWNED.has(t.key) || wanted.some((w) => same(w, t)));
  const added = wanted
    .filter((w) => !current.some((t) => same(w, t)))
    .map((w) => (w.effect === 'NoExecute' ? { ...w, timeAdded: now } : w));
  if (added.length === 0 && kept.length === current.length) return undefined;
  return [...kept, ...added];
}

/**
 * When a pod on a node with these taints must go: `now` for a NoExecute taint it does not
 * tolerate, the earliest end of its tolerations' seconds (counted from each taint's
 * timeAdded) otherwise, or undefined when it may stay for good.
 */
export function evictionTime(pod: Pod, taints: Taint[], nowMs: number): number | undefined {
  const tolerations = (pod.spec.tolerations ?? []) as Toleration[];
  let at: number | undefined;
  for (const taint of taints) {
    if (taint.effect !== 'NoExecute') continue;
    const matching = tolerations.filter((t) => tolerates(t, taint));
    if (matching.length === 0) return nowMs;
    const seconds = matching.map((t) => t.tolerationSeconds);
    // A matching toleration without seconds tolerates the taint for good.
    if (seconds.some((s) => s === undefined || s === null)) continue;
    const added = Date.parse(taint.timeAdded ?? '') || nowMs;
    const end = added + Math.max(0, Math.min(...(seconds as number[]))) * 1000;
    at = at === undefined ? end : Math.min(at, end);
  }
  return at;
}
