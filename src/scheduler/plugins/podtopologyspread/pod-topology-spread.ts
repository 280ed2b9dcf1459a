import { fromLabelSelector, type Selector } from '../../../api/labels.js';
import type { LabelSelector, Pod, TopologySpreadConstraint } from '../../../api/types.js';
import {
  MAX_NODE_SCORE,
  SKIP,
  SUCCESS,
  unresolvable,
  unschedulable,
  type CycleState,
  type FilterPlugin,
  type PreFilterPlugin,
  type ScorePlugin,
  type Status,
} from '../../framework/interface.js';
import type { NodeInfo } from '../../framework/nodeinfo.js';
import { requiredNodeAffinity } from '../nodeaffinity/node-affinity.js';
import { untoleratedTaint } from '../tainttoleration/taint-toleration.js';

/**
 * PodTopologySpread spreads the pods a constraint selects (in the pod's namespace) evenly
 * over topology domains. A DoNotSchedule constraint filters out nodes where placing the pod
 * would make its domain exceed the least loaded eligible domain by more than maxSkew (the
 * least loaded counts as 0 while there are fewer domains than minDomains). ScheduleAnyway
 * constraints score: fewer matching pods in the node's domain is better.
 * Eligible domains come from nodes that carry every constraint's topology key and, by
 * default, match the pod's node affinity and selector (nodeAffinityPolicy Honor); taints
 * are ignored unless nodeTaintsPolicy is Honor. Counts are taken over the whole snapshot
 * in pre-filter (or on the first score call). Not supported: matchLabelKeys, and the
 * cluster-level default constraints Kubernetes applies to pods that set none.
 */

export const REASON_SPREAD = "node(s) didn't match pod topology spread constraints";
export const REASON_MISSING_LABEL =
  "node(s) didn't match pod topology spread constraints (missing required label)";

const FILTER_KEY = 'PodTopologySpread/filter';
const NODES_KEY = 'PodTopologySpread/nodes';
const SOFT_KEY = 'PodTopologySpread/score';
/** A score meaning "node lacks a topology key"; it normalises to 0. */
const IGNORED = -1;

interface Constraint {
  maxSkew: number;
  topologyKey: string;
  /** Undefined for a missing or invalid labelSelector, which selects no pod. */
  selector?: Selector;
  minDomains: number;
  honorAffinity: boolean;
  honorTaints: boolean;
}

interface Counts {
  constraints: Constraint[];
  /** Per constraint: topology value → matching pods, over eligible nodes. */
  domains: Map<string, number>[];
}

interface FilterData extends Counts {
  /** Per constraint: the smallest count over eligible domains (0 below minDomains). */
  min: number[];
  /** Per constraint: 1 when the constraint selects the incoming pod itself. */
  self: number[];
}

function parse(selector: LabelSelector | undefined): Selector | undefined {
  if (!selector) return undefined;
  try {
    return fromLabelSelector(selector);
  } catch {
    return undefined;
  }
}

function compile(pod: Pod, kind: TopologySpreadConstraint['whenUnsatisfiable']): Constraint[] {
  return (pod.spec.topologySpreadConstraints ?? [])
    .filter((c) => c && c.whenUnsatisfiable === kind)
    .map((c) => ({
      maxSkew: c.maxSkew,
      topologyKey: c.topologyKey,
      selector: parse(c.labelSelector),
      minDomains: c.minDomains ?? 1,
      honorAffinity: (c.nodeAffinityPolicy ?? 'Honor') === 'Honor',
      honorTaints: c.nodeTaintsPolicy === 'Honor',
    }));
}

function eligible(pod: Pod, node: NodeInfo, constraints: Constraint[]): boolean {
  const labels = node.labels;
  for (const c of constraints) if (labels[c.topologyKey] === undefined) return false;
  if (constraints.some((c) => c.honorAffinity)) {
    const required = requiredNodeAffinity(pod);
    if (!required.any && !required.matches(node.node)) return false;
  }
  if (constraints.some((c) => c.honorTaints)) {
    if (untoleratedTaint(node.taints, pod.spec.tolerations)) return false;
  }
  return true;
}

function matchingPods(pod: Pod, node: NodeInfo, selector: Selector | undefined): number {
  if (!selector) return 0;
  const namespace = pod.metadata.namespace;
  let n = 0;
  for (const info of node.pods.values()) {
    const meta = info.pod.metadata;
    if (meta.namespace !== namespace || meta.deletionTimestamp) continue;
    if (selector.matches(meta.labels ?? {})) n++;
  }
  return n;
}

/**
 * Counts matching pods per domain. Policies are per constraint in Kubernetes; here a node
 * is eligible for all of a pod's constraints or none, using the strictest policy any of
 * them asks for.
 */
function count(pod: Pod, nodes: readonly NodeInfo[], constraints: Constraint[]): Counts {
  const domains = constraints.map(() => new Map<string, number>());
  for (const node of nodes) {
    if (!eligible(pod, node, constraints)) continue;
    const labels = node.labels;
    constraints.forEach((c, i) => {
      const value = labels[c.topologyKey];
      domains[i].set(value, (domains[i].get(value) ?? 0) + matchingPods(pod, node, c.selector));
    });
  }
  return { constraints, domains };
}

function preFilter(state: CycleState, pod: Pod, nodes: readonly NodeInfo[]): Status {
  state.set(NODES_KEY, nodes);
  if (!pod.spec.topologySpreadConstraints?.length) return SKIP;
  const constraints = compile(pod, 'DoNotSchedule');
  if (constraints.length === 0) return SKIP;
  const counts = count(pod, nodes, constraints);
  const min = counts.domains.map((d, i) => {
    if (d.size < constraints[i].minDomains) return 0;
    let m = Infinity;
    for (const v of d.values()) if (v < m) m = v;
    return m === Infinity ? 0 : m;
  });
  const labels = pod.metadata.labels ?? {};
  const self = constraints.map((c) => (c.selector?.matches(labels) ? 1 : 0));
  state.set(FILTER_KEY, { ...counts, min, self } satisfies FilterData);
  return SUCCESS;
}

function filter(state: CycleState, _pod: Pod, node: NodeInfo): Status {
  const data = state.get(FILTER_KEY) as FilterData | undefined;
  if (!data) return SUCCESS;
  const labels = node.labels;
  for (let i = 0; i < data.constraints.length; i++) {
    const c = data.constraints[i];
    const value = labels[c.topologyKey];
    if (value === undefined) return unresolvable(REASON_MISSING_LABEL);
    const skew = (data.domains[i].get(value) ?? 0) + data.self[i] - data.min[i];
    if (skew > c.maxSkew) return unschedulable(REASON_SPREAD);
  }
  return SUCCESS;
}

interface ScoreData extends Counts {
  /** Per constraint: log(domains + 2), so constraints over more domains weigh more. */
  weights: number[];
}

function scoreData(state: CycleState, pod: Pod): ScoreData | undefined {
  const cached = state.get(SOFT_KEY) as ScoreData | null | undefined;
  if (cached !== undefined) return cached ?? undefined;
  const constraints = pod.spec.topologySpreadConstraints?.length
    ? compile(pod, 'ScheduleAnyway')
    : [];
  if (constraints.length === 0) {
    state.set(SOFT_KEY, null);
    return undefined;
  }
  const nodes = (state.get(NODES_KEY) as readonly NodeInfo[] | undefined) ?? [];
  const counts = count(pod, nodes, constraints);
  const weights = counts.domains.map((d) => Math.log(d.size + 2));
  const data = { ...counts, weights };
  state.set(SOFT_KEY, data);
  return data;
}

function score(state: CycleState, pod: Pod, node: NodeInfo): number {
  const data = scoreData(state, pod);
  if (!data) return 0;
  const labels = node.labels;
  let sum = 0;
  for (let i = 0; i < data.constraints.length; i++) {
    const c = data.constraints[i];
    const value = labels[c.topologyKey];
    if (value === undefined) return IGNORED;
    sum += ((data.domains[i].get(value) ?? 0) + c.maxSkew - 1) * data.weights[i];
  }
  return Math.round(sum);
}

/** Fewer matching pods is better: the emptiest domain gets 100; ignored nodes get 0. */
function normalize(scores: number[]): void {
  let min = Infinity;
  let max = 0;
  for (const s of scores) {
    if (s === IGNORED) continue;
    if (s < min) min = s;
    if (s > max) max = s;
  }
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    if (s === IGNORED) scores[i] = 0;
    else if (max === 0) scores[i] = MAX_NODE_SCORE;
    else scores[i] = Math.floor((MAX_NODE_SCORE * (max + min - s)) / max);
  }
}

export const podTopologySpread = {
  name: 'PodTopologySpread',
  weight: 2,
  preFilter,
  filter,
  score,
  normalize,
  skipScore: (state: CycleState, pod: Pod) => scoreData(state, pod) === undefined,
} satisfies PreFilterPlugin & FilterPlugin & ScorePlugin;
