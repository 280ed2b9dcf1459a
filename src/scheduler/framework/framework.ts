import type { Pod } from '../../api/types.js';
import {
  Code,
  isFilter,
  isPreFilter,
  isScore,
  type CycleState,
  type FilterPlugin,
  type Plugin,
  type PreFilterPlugin,
  type ScorePlugin,
  type Status,
} from './interface.js';
import type { NodeInfo } from './nodeinfo.js';

/**
 * Runs one scheduling cycle for a pod over a set of nodes: pre-filter, filter every node,
 * score the feasible ones and pick the best. When no node fits, the result counts each
 * reason across nodes, which becomes the "0/N nodes are available: ..." message.
 */

export interface ScheduleResult {
  /** The chosen node, or undefined when none fits. */
  node?: NodeInfo;
  /** How many nodes gave each reason for not fitting. */
  reasons: Map<string, number>;
  /** Nodes considered. */
  total: number;
  /** True when some node failed only for reasons a change in the cluster could fix. */
  resolvable: boolean;
}

export class Framework {
  private readonly preFilters: PreFilterPlugin[];
  private readonly filters: FilterPlugin[];
  private readonly scorers: ScorePlugin[];

  constructor(plugins: Plugin[]) {
    this.preFilters = plugins.filter(isPreFilter);
    this.filters = plugins.filter(isFilter);
    this.scorers = plugins.filter(isScore);
  }

  schedule(pod: Pod, nodes: Iterable<NodeInfo>): ScheduleResult {
    const state: CycleState = new Map();
    const reasons = new Map<string, number>();
    let total = 0;
    const refused = this.runPreFilters(state, pod);
    if (refused) {
      for (const r of refused.reasons) reasons.set(r, 1);
      return { reasons, total: 0, resolvable: refused.code === Code.Unschedulable };
    }
    const feasible: NodeInfo[] = [];
    let resolvable = false;
    for (const node of nodes) {
      total++;
      const failure = this.filterNode(state, pod, node);
      if (!failure) {
        feasible.push(node);
        continue;
      }
      if (failure.code === Code.Unschedulable) resolvable = true;
      for (const r of failure.reasons) reasons.set(r, (reasons.get(r) ?? 0) + 1);
    }
    if (feasible.length === 0) return { reasons, total, resolvable };
    return { node: this.best(state, pod, feasible), reasons, total, resolvable };
  }

  /** Runs every pre-filter into `state`; the first status that is not Success, if any. */
  runPreFilters(state: CycleState, pod: Pod): Status | undefined {
    for (const p of this.preFilters) {
      const status = p.preFilter(state, pod);
      if (status.code !== Code.Success) return { ...status, plugin: p.name };
    }
    return undefined;
  }

  /** Runs the filters on one node, cheapest first; the first failure, or undefined. */
  filterNode(state: CycleState, pod: Pod, node: NodeInfo): Status | undefined {
    for (const f of this.filters) {
      const status = f.filter(state, pod, node);
      if (status.code !== Code.Success) return status;
    }
    return undefined;
  }

  /** Highest total weighted score; ties go to the first node seen, rotated between pods. */
  private best(state: CycleState, pod: Pod, feasible: NodeInfo[]): NodeInfo {
    if (feasible.length === 1 || this.scorers.length === 0) return feasible[0];
    const totals = new Array<number>(feasible.length).fill(0);
    for (const scorer of this.scorers) {
      const scores = feasible.map((n) => scorer.score(state, pod, n));
      scorer.normalize?.(scores);
      const weight = scorer.weight ?? 1;
      scores.forEach((s, i) => (totals[i] += s * weight));
    }
    let bestIndex = 0;
    for (let i = 1; i < totals.length; i++) if (totals[i] > totals[bestIndex]) bestIndex = i;
    return feasible[bestIndex];
  }
}

/** Kubernetes' message for a pod that fits nowhere: "0/3 nodes are available: 3 Insufficient cpu." */
export function unschedulableMessage(result: ScheduleResult): string {
  const parts = [...result.reasons].map(([reason, count]) => `${count} ${reason}`).sort();
  const tail = parts.length > 0 ? ` ${parts.join(', ')}.` : '';
  return `0/${result.total} nodes are available:${tail || ' no nodes registered.'}`;
}
