import { tolerates } from '../../../api/taints.js';
import type { Pod, Taint, Toleration } from '../../../api/types.js';
import {
  normalizeByMax,
  SUCCESS,
  unresolvable,
  type CycleState,
  type FilterPlugin,
  type ScorePlugin,
  type Status,
} from '../../framework/interface.js';
import type { NodeInfo } from '../../framework/nodeinfo.js';

/**
 * TaintToleration keeps a pod off nodes with a NoSchedule or NoExecute taint it does not
 * tolerate, and prefers nodes with fewer PreferNoSchedule taints it does not tolerate.
 */

export function toleratedBy(tolerations: readonly Toleration[] | undefined, taint: Taint): boolean {
  return !!tolerations && tolerations.some((t) => tolerates(t, taint));
}

/** The first NoSchedule/NoExecute taint of the node that the tolerations do not tolerate. */
export function untoleratedTaint(
  taints: readonly Taint[] | undefined,
  tolerations: readonly Toleration[] | undefined,
): Taint | undefined {
  if (!taints) return undefined;
  for (const taint of taints) {
    if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue;
    if (!toleratedBy(tolerations, taint)) return taint;
  }
  return undefined;
}

export const taintToleration = {
  name: 'TaintToleration',
  weight: 3,

  filter(_state: CycleState, pod: Pod, node: NodeInfo): Status {
    const taint = untoleratedTaint(node.taints, pod.spec.tolerations);
    if (!taint) return SUCCESS;
    return unresolvable(`node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`);
  },

  /** How many PreferNoSchedule taints the pod does not tolerate (fewer is better). */
  score(_state: CycleState, pod: Pod, node: NodeInfo): number {
    const taints = node.taints;
    if (!taints) return 0;
    const tolerations = pod.spec.tolerations?.filter(
      (t) => !t.effect || t.effect === 'PreferNoSchedule',
    );
    let count = 0;
    for (const taint of taints) {
      if (taint.effect === 'PreferNoSchedule' && !toleratedBy(tolerations, taint)) count++;
    }
    return count;
  },

  normalize(scores: number[]): void {
    normalizeByMax(scores, true);
  },
} satisfies FilterPlugin & ScorePlugin;
