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
import { compileSelector, type LabelMatcher } from '../../framework/selector.js';
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
 * are ignored unless nodeTaintsPolicy is Honor (both per constraint). Counts are taken
 * over the whole snapshot in pre-filter (or on the first score call); a filter given a
 * copy of a snapshot node (NodeInfo.clone, as preemption makes) corrects them for the
 * copy's pods. Not supported:
 * matchLabelKeys, and the cluster-level default constraints Kubernetes applies to pods
 * that set none (such pods are not spread at all).
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
  selector?: LabelMatcher;
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

function parse(selector: LabelSelector | undefined): LabelMatcher | undefined {
  return selector ? compileSelector(selector) : undefined;
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

function hasAllKeys(node: NodeInfo, constraints: Constraint[]): boolean {
  const labels = node.labels;
  for (let i = 0; i < constraints.length; i++) {
    if (labels[constraints[i].topologyKey] === undefined) return false;
  }
  return true;
}

function matchingPods(namespace: string, node: NodeInfo, selector: LabelMatcher): number {
  let n = 0;
  for (const info of node.pods.values()) {
    if (info.namespace === namespace && !info.terminating && selector(info.labels)) n++;
  }
  return n;
}

/**
 * Counts matching pods per domain, over nodes that carry every constraint's topology key
 * and pass each constraint's node affinity and taint policies.
 */
function count(pod: Pod, nodes: readonly NodeInfo[], constraints: Constraint[]): Counts {
  const domains = constraints.map(() => new Map<string, number>());
  const namespace = pod.metadata.namespace ?? 'default';
  const affinity = requiredNodeAffinity(pod);
  const checkAffinity = !affinity.any && constraints.some((c) => c.honorAffinity);
  const checkTaints = constraints.some((c) => c.honorTaints);
  const tolerations = pod.spec.tolerations;
  for (const node of nodes) {
    if (!hasAllKeys(node, constraints)) continue;
    const affinityOk = !checkAffinity || affinity.matches(node.node);
    const taintsOk = !checkTaints || !untoleratedTaint(node.taints, tolerations);
    for (let i = 0; i < constraints.length; i++) {
      const c = constraints[i];
      if ((c.honorAffinity && !affinityOk) || (c.honorTaints && !taintsOk)) continue;
      const value = node.labels[c.topologyKey];
      const matched = c.selector ? matchingPods(namespace, node, c.selector) : 0;
      domains[i].set(value, (domains[i].get(value) ?? 0) + matched);
    }
  }
  return { constraints, domains };
}

function preFilter(state: CycleState, pod: Pod, nodes: readonly NodeInfo[]): Status {
  state.set(NODES_KEY, nodes);
  if (!pod.spec.topologySpreadConstraints?.length) return SKIP;
  const constraints = compile(pod, 'DoNotSchedule');
  if (constraints.length === 0) return SKIP;
  const counts = count(pod, nodes, constraints);
  const labels = pod.metadata.labels ?? {};
  const self = constraints.map((c) => (c.selector?.(labels) ? 1 : 0));
  state.set(FILTER_KEY, { ...counts, min: minima(counts), self } satisfies FilterData);
  return SUCCESS;
}

/** Per constraint, the smallest count over its domains; 0 while there are too few. */
function minima({ constraints, domains }: Counts): number[] {
  return domains.map((d, i) => {
    if (d.size < constraints[i].minDomains) return 0;
    let m = Infinity;
    for (const v of d.values()) if (v < m) m = v;
    return m === Infinity ? 0 : m;
  });
}

/**
 * The cycle's counts with a copied node's pods in place of its original's: preemption
 * filters copies with victims removed, and what the victims added must not count.
 */
function forCopy(data: FilterData, pod: Pod, copy: NodeInfo, original: NodeInfo): FilterData {
  const minus = count(pod, [original], data.constraints).domains;
  const plus = count(pod, [copy], data.constraints).domains;
  const domains = data.domains.map((d, i) => {
    if (minus[i].size === 0 && plus[i].size === 0) return d;
    const out = new Map(d);
    for (const [value, n] of minus[i]) out.set(value, (out.get(value) ?? 0) - n);
    for (const [value, n] of plus[i]) out.set(value, (out.get(value) ?? 0) + n);
    return out;
  });
  const counts = { constraints: data.constraints, domains };
  return { ...counts, min: minima(counts), self: data.self };
}

function filter(state: CycleState, pod: Pod, node: NodeInfo): Status {
  let data = state.get(FILTER_KEY) as FilterData | undefined;
  if (!data) return SUCCESS;
  if (node.cloneOf) data = forCopy(data, pod, node, node.cloneOf);
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
