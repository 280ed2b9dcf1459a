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
import { nodeList } from './snapshot.js';

/**
 * Runs one scheduling cycle for a pod over a set of nodes: pre-filter, filter nodes until
 * enough feasible ones are found (all of them on small clusters), score the feasible ones
 * and pick the best. When no node fits, the result counts each reason across nodes, which
 * becomes the "0/N nodes are available: ..." message.
 */

export interface ScheduleResult {
  /** The chosen node, or undefined when none fits. */
  node?: NodeInfo;
  /** How many nodes gave each reason for not fitting. */
  reasons: Map<string, number>;
  /** Nodes in the snapshot (all of them were filtered whenever no node fits). */
  total: number;
  /** True when some node failed only for reasons a change in the cluster could fix. */
  resolvable: boolean;
}

/** State key of the filters that run this cycle (pre-filters may skip some). */
const ACTIVE_FILTERS = 'framework/activeFilters';
/** State key of the node names pre-filters narrowed the cycle to, with the reason. */
const NODE_NAMES = 'framework/nodeNames';

interface NameRestriction {
  names: ReadonlySet<string>;
  reasons: string[];
}

const nameIndexes = new WeakMap<readonly NodeInfo[], Map<string, NodeInfo>>();

/** The nodes of a snapshot array by name, built once per array. */
function byName(nodes: readonly NodeInfo[]): Map<string, NodeInfo> {
  let index = nameIndexes.get(nodes);
  if (!index) nameIndexes.set(nodes, (index = new Map(nodes.map((n) => [n.name, n]))));
  return index;
}
/** Below this many nodes every node is filtered; sampling never looks at fewer. */
const MIN_FEASIBLE_NODES = 100;
/** The adaptive percentage of nodes to filter never drops below this. */
const MIN_FEASIBLE_PERCENTAGE = 5;

/**
 * How many feasible nodes are enough to stop filtering, as Kubernetes' adaptive
 * percentageOfNodesToScore: 50% minus one point per 125 nodes, at least 5%, at least 100.
 */
export function feasibleNodesToFind(total: number): number {
  if (total < MIN_FEASIBLE_NODES) return total;
  const percentage = Math.max(MIN_FEASIBLE_PERCENTAGE, 50 - total / 125);
  return Math.max(MIN_FEASIBLE_NODES, Math.floor((total * percentage) / 100));
}

export class Framework {
  private readonly preFilters: PreFilterPlugin[];
  private readonly filters: FilterPlugin[];
  private readonly scorers: ScorePlugin[];
  /** Where the next cycle starts filtering, so a sampled cycle does not favour the first nodes. */
  private nextStart = 0;
  /** The nodes of the last schedule() call, for runPreFilters callers that give none. */
  private lastNodes: readonly NodeInfo[] = [];

  /**
   * The nodes of a snapshot map as the array schedule() takes: cached between calls when
   * the map is a NodeSnapshot, copied when it is a plain Map.
   */
  static nodeList(snapshot: Map<string, NodeInfo>): readonly NodeInfo[] {
    return nodeList(snapshot);
  }

  constructor(plugins: Plugin[]) {
    this.preFilters = plugins.filter(isPreFilter);
    this.filters = plugins.filter(isFilter);
    this.scorers = plugins.filter(isScore);
  }

  /**
   * Chooses a node for the pod. `nodes` must not change during the call; the framework does
   * not keep it beyond the next call. Not safe to run concurrently with itself.
   */
  schedule(pod: Pod, nodes: readonly NodeInfo[]): ScheduleResult {
    const state: CycleState = new Map();
    const reasons = new Map<string, number>();
    const total = nodes.length;
    const refused = this.runPreFilters(state, pod, nodes);
    if (refused) {
      if (total > 0) for (const r of refused.reasons) reasons.set(r, total);
      return { reasons, total, resolvable: refused.code === Code.Unschedulable };
    }
    const restriction = state.get(NODE_NAMES) as NameRestriction | undefined;
    if (restriction) return this.scheduleAmong(state, pod, nodes, restriction);
    const wanted = feasibleNodesToFind(total);
    const feasible: NodeInfo[] = [];
    let resolvable = false;
    const start = total === 0 ? 0 : this.nextStart % total;
    let seen = 0;
    while (seen < total && feasible.length < wanted) {
      const node = nodes[(start + seen) % total];
      seen++;
      const failure = this.filterNode(state, pod, node);
      if (!failure) {
        feasible.push(node);
        continue;
      }
      if (failure.code === Code.Unschedulable) resolvable = true;
      for (const r of failure.reasons) reasons.set(r, (reasons.get(r) ?? 0) + 1);
    }
    this.nextStart = total === 0 ? 0 : (start + seen) % total;
    if (feasible.length === 0) return { reasons, total, resolvable };
    return { node: this.best(state, pod, feasible), reasons, total, resolvable };
  }

  /**
   * A cycle over the few nodes pre-filters named: all of them are filtered, and the other
   * nodes count under the reasons the pre-filter gave.
   */
  private scheduleAmong(
    state: CycleState,
    pod: Pod,
    nodes: readonly NodeInfo[],
    restriction: NameRestriction,
  ): ScheduleResult {
    const index = byName(nodes);
    const reasons = new Map<string, number>();
    const feasible: NodeInfo[] = [];
    let resolvable = false;
    let named = 0;
    for (const name of restriction.names) {
      const node = index.get(name);
      if (!node) continue;
      named++;
      const failure = this.filterNode(state, pod, node);
      if (!failure) feasible.push(node);
      else {
        if (failure.code === Code.Unschedulable) resolvable = true;
        for (const r of failure.reasons) reasons.set(r, (reasons.get(r) ?? 0) + 1);
      }
    }
    const others = nodes.length - named;
    if (others > 0)
      for (const r of restriction.reasons) reasons.set(r, (reasons.get(r) ?? 0) + others);
    const total = nodes.length;
    if (feasible.length === 0) return { reasons, total, resolvable };
    return { node: this.best(state, pod, feasible), reasons, total, resolvable };
  }

  /**
   * Runs every pre-filter into `state`; the first status that is neither Success nor Skip,
   * if any. `nodes` defaults to the snapshot of the last schedule() call. The filters of
   * plugins whose pre-filter answered Skip are left out of filterNode with this state.
   */
  runPreFilters(
    state: CycleState,
    pod: Pod,
    nodes: readonly NodeInfo[] = this.lastNodes,
  ): Status | undefined {
    this.lastNodes = nodes;
    let skipped: Set<string> | undefined;
    let restriction: NameRestriction | undefined;
    for (const p of this.preFilters) {
      const status = p.preFilter(state, pod, nodes);
      if (status.code !== Code.Success && status.code !== Code.Skip) {
        return { ...status, plugin: p.name };
      }
      if (status.code === Code.Skip) (skipped ??= new Set()).add(p.name);
      if (status.nodeNames) restriction = narrow(restriction, status);
    }
    if (restriction) state.set(NODE_NAMES, restriction);
    const active = skipped ? this.filters.filter((f) => !skipped.has(f.name)) : this.filters;
    state.set(ACTIVE_FILTERS, active);
    return undefined;
  }

  /**
   * Runs the filters on one node, cheapest first; the first failure, or undefined. Uses the
   * filters runPreFilters left active in `state` (all of them when it did not run).
   */
  filterNode(state: CycleState, pod: Pod, node: NodeInfo): Status | undefined {
    const filters = (state.get(ACTIVE_FILTERS) as FilterPlugin[] | undefined) ?? this.filters;
    for (let i = 0; i < filters.length; i++) {
      const status = filters[i].filter(state, pod, node);
      if (status.code !== Code.Success) return status;
    }
    return undefined;
  }

  /**
   * Highest total weighted score; ties go to the first node seen (where filtering starts
   * moves on between cycles on clusters large enough to be sampled).
   */
  private best(state: CycleState, pod: Pod, feasible: NodeInfo[]): NodeInfo {
    if (feasible.length === 1 || this.scorers.length === 0) return feasible[0];
    const totals = new Array<number>(feasible.length).fill(0);
    const scores = new Array<number>(feasible.length);
    for (const scorer of this.scorers) {
      if (scorer.skipScore?.(state, pod)) continue;
      for (let i = 0; i < feasible.length; i++) scores[i] = scorer.score(state, pod, feasible[i]);
      scorer.normalize?.(scores);
      const weight = scorer.weight ?? 1;
      for (let i = 0; i < feasible.length; i++) totals[i] += scores[i] * weight;
    }
    let bestIndex = 0;
    for (let i = 1; i < totals.length; i++) if (totals[i] > totals[bestIndex]) bestIndex = i;
    return feasible[bestIndex];
  }
}

/** The names both restrictions allow; the first restriction's reasons describe the rest. */
function narrow(current: NameRestriction | undefined, status: Status): NameRestriction {
  const names = status.nodeNames!;
  if (!current) return { names, reasons: status.reasons };
  return {
    names: new Set([...current.names].filter((n) => names.has(n))),
    reasons: current.reasons,
  };
}

/** Kubernetes' message for a pod that fits nowhere: "0/3 nodes are available: 3 Insufficient cpu." */
export function unschedulableMessage(result: ScheduleResult): string {
  const parts = [...result.reasons].map(([reason, count]) => `${count} ${reason}`).sort();
  const tail = parts.length > 0 ? ` ${parts.join(', ')}.` : '';
  return `0/${result.total} nodes are available:${tail || ' no nodes registered.'}`;
}
