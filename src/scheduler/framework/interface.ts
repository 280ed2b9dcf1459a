import type { Pod } from '../../api/types.js';
import type { NodeInfo } from './nodeinfo.js';

/**
 * The scheduler's plugin framework. A pod goes through the extension points in order:
 * pre-filter (once per pod), filter (per node: can the pod run there?), score (per feasible
 * node: how good is it?), then bind. Each plugin answers with a Status; "does not fit" is an
 * outcome, not an exception.
 */

export enum Code {
  Success = 'Success',
  /** The pod cannot run on this node, but could if the cluster changed. */
  Unschedulable = 'Unschedulable',
  /** The pod cannot run on this node whatever changes (e.g. a nodeName that differs). */
  UnschedulableAndUnresolvable = 'UnschedulableAndUnresolvable',
  /** Something went wrong inside the plugin. */
  Error = 'Error',
  /**
   * From a pre-filter: the pod gives this plugin nothing to check, so the framework skips
   * the plugin's filter for this cycle (the pod passes it on every node).
   */
  Skip = 'Skip',
}

export interface Status {
  code: Code;
  /** Short reasons as Kubernetes prints them, e.g. "Insufficient cpu". */
  reasons: string[];
  /** The plugin that gave the status. */
  plugin?: string;
  /**
   * From a pre-filter that succeeds: only nodes with these names can fit (a DaemonSet pod's
   * matchFields on metadata.name), so the framework filters no other node and counts the
   * others under `reasons`.
   */
  nodeNames?: ReadonlySet<string>;
}

export const SUCCESS: Status = Object.freeze({ code: Code.Success, reasons: [] }) as Status;

export const SKIP: Status = Object.freeze({ code: Code.Skip, reasons: [] }) as Status;

export function unschedulable(...reasons: string[]): Status {
  return { code: Code.Unschedulable, reasons };
}

export function unresolvable(...reasons: string[]): Status {
  return { code: Code.UnschedulableAndUnresolvable, reasons };
}

/** Per-pod state a pre-filter computes once and filters/scorers read for each node. */
export type CycleState = Map<string, unknown>;

export interface Plugin {
  readonly name: string;
}

export interface PreFilterPlugin extends Plugin {
  /**
   * Runs once per pod before any filter and stores what the filters need in `state`.
   * `nodes` is the whole snapshot (not only the sample that gets filtered), for plugins
   * that count pods across the cluster; a pre-filter must not change it.
   */
  preFilter(state: CycleState, pod: Pod, nodes: readonly NodeInfo[]): Status;
}

export interface FilterPlugin extends Plugin {
  filter(state: CycleState, pod: Pod, node: NodeInfo): Status;
}

export interface ScorePlugin extends Plugin {
  /** Higher is better; scores are normalised to 0..100 across nodes when normalize is set. */
  score(state: CycleState, pod: Pod, node: NodeInfo): number;
  normalize?(scores: number[]): void;
  weight?: number;
  /**
   * True when this plugin would give every node the same score for the pod (it has nothing
   * to prefer), so the framework may leave it out: equal scores change no ranking. Called
   * after the pre-filters, once per cycle.
   */
  skipScore?(state: CycleState, pod: Pod): boolean;
}

/** Highest score a node can get from one plugin after normalising. */
export const MAX_NODE_SCORE = 100;

/**
 * Scales scores in place to 0..MAX_NODE_SCORE by the highest one; with `reverse`, the
 * lowest raw score gets the most (for "fewer is better" counts). All zero stays all zero,
 * or all MAX_NODE_SCORE when reversed.
 */
export function normalizeByMax(scores: number[], reverse: boolean): void {
  let max = 0;
  for (const s of scores) if (s > max) max = s;
  for (let i = 0; i < scores.length; i++) {
    if (max === 0) scores[i] = reverse ? MAX_NODE_SCORE : 0;
    else {
      const scaled = Math.floor((scores[i] * MAX_NODE_SCORE) / max);
      scores[i] = reverse ? MAX_NODE_SCORE - scaled : scaled;
    }
  }
}

export function isPreFilter(p: Plugin): p is PreFilterPlugin {
  return typeof (p as PreFilterPlugin).preFilter === 'function';
}

export function isFilter(p: Plugin): p is FilterPlugin {
  return typeof (p as FilterPlugin).filter === 'function';
}

export function isScore(p: Plugin): p is ScorePlugin {
  return typeof (p as ScorePlugin).score === 'function';
}

/**
 * Reserve: told when the scheduler has counted a pod on a node (assumed it), before the
 * bind, so a plugin can hold per-node state of its own. A failure ends the attempt; every
 * reserve plugin's `unreserve` then runs, as it does when the bind fails later. `unreserve`
 * must be idempotent and must not fail.
 */
export interface ReservePlugin extends Plugin {
  reserve(state: CycleState, pod: Pod, nodeName: string): Status;
  unreserve(state: CycleState, pod: Pod, nodeName: string): void;
}

/** What a post-filter (preemption) achieved for a pod that fits nowhere. */
export interface PostFilterResult {
  /** The node the pod should be placed on once room is made there. */
  nominatedNodeName?: string;
  status: Status;
}

/**
 * PostFilter: runs when no node fits the pod. `filtered` is every node the cycle looked at;
 * a plugin may make room (preemption) and nominate a node. The first plugin that returns
 * Success ends the post-filter phase.
 */
export interface PostFilterPlugin extends Plugin {
  postFilter(state: CycleState, pod: Pod, filtered: NodeInfo[]): Promise<PostFilterResult>;
}

/**
 * Bind: writes the decision to the API. A plugin returns undefined when it does not handle
 * the pod (the next one is asked), a Success status when bound, or an Error status (or
 * throws) when the bind failed; the scheduler then unreserves and retries the pod.
 */
export interface BindPlugin extends Plugin {
  bind(state: CycleState, pod: Pod, nodeName: string): Promise<Status | undefined>;
}

export function isReserve(p: Plugin): p is ReservePlugin {
  return typeof (p as ReservePlugin).reserve === 'function';
}

export function isPostFilter(p: Plugin): p is PostFilterPlugin {
  return typeof (p as PostFilterPlugin).postFilter === 'function';
}

export function isBind(p: Plugin): p is BindPlugin {
  return typeof (p as BindPlugin).bind === 'function';
}
