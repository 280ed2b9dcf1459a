import type { Pod } from '../../../api/types.js';
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
import {
  podAffinityGeneration,
  podLabels,
  type NodeInfo,
  type PodInfo,
  type PodLabels,
} from '../../framework/nodeinfo.js';
import {
  nameOnlyNamespaceLabels,
  podTerms,
  termMatches,
  type NamespaceLabels,
  type PodTerms,
  type Term,
} from './terms.js';

/**
 * InterPodAffinity places a pod relative to the pods already running, by topology domain
 * (the value of the term's topologyKey label on their nodes):
 * - required affinity: every term must find a matching pod in the node's domain, unless no
 *   pod in the cluster matches and the pod matches its own terms (the first of a group);
 * - required anti-affinity: no term may find a matching pod in the node's domain;
 * - symmetry: an existing pod's required anti-affinity keeps the incoming pod out of its
 *   domain when the term matches the incoming pod;
 * - preferred terms (both ways) and existing pods' required affinity score domains.
 * The pre-filter counts pods per domain over the whole snapshot, so each filter call only
 * looks up the node's label values. A filter given a copy of a snapshot node (NodeInfo.clone,
 * as preemption makes) corrects the counts for the copy's pods first.
 */

export const REASON_AFFINITY = "node(s) didn't match pod affinity rules";
export const REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules";
export const REASON_EXISTING_ANTI_AFFINITY =
  "node(s) didn't satisfy existing pods anti-affinity rules";

/** What an existing pod's required affinity adds to a domain's score (Kubernetes' default). */
const HARD_POD_AFFINITY_WEIGHT = 1;
const STATE_KEY = 'InterPodAffinity';

/** topologyKey → topology value → count (or score). */
type DomainCounts = Map<string, Map<string, number>>;

interface CycleData {
  terms: PodTerms;
  /** The incoming pod's namespace and labels. */
  self: PodLabels;
  nodes: readonly NodeInfo[];
  /** Existing pods matching all required affinity terms, per domain of each term's key. */
  affinity: DomainCounts;
  affinityTotal: number;
  /** Existing pods matching a required anti-affinity term, per domain. */
  antiAffinity: DomainCounts;
  /** Domains closed to the pod by existing pods' required anti-affinity. */
  existingAntiAffinity: DomainCounts;
  /** Whether any node holds a pod with affinity terms (for scoring). */
  anyPodWithAffinity: boolean;
  /** Per-domain scores, worked out on the first score call of the cycle. */
  scores?: DomainCounts;
}

function bump(counts: DomainCounts, key: string, value: string | undefined, by: number): void {
  if (value === undefined) return;
  let values = counts.get(key);
  if (!values) counts.set(key, (values = new Map()));
  values.set(value, (values.get(value) ?? 0) + by);
}

/** `base` − `minus` + `plus`, copying only the inner maps it changes. */
function adjust(base: DomainCounts, minus: DomainCounts, plus: DomainCounts): DomainCounts {
  if (minus.size === 0 && plus.size === 0) return base;
  const out: DomainCounts = new Map(base);
  const apply = (delta: DomainCounts, sign: number) => {
    for (const [key, values] of delta) {
      const inner = new Map(out.get(key));
      for (const [value, n] of values) inner.set(value, (inner.get(value) ?? 0) + sign * n);
      out.set(key, inner);
    }
  };
  apply(minus, -1);
  apply(plus, 1);
  return out;
}

function inDomain(counts: DomainCounts, key: string, labels: Record<string, string>): number {
  const value = labels[key];
  return value === undefined ? 0 : (counts.get(key)?.get(value) ?? 0);
}

/** The nodes of a snapshot that hold pods with affinity terms, and the generation seen. */
interface AffinityIndex {
  generation: number;
  nodes: NodeInfo[];
}

const indexes = new WeakMap<readonly NodeInfo[], AffinityIndex>();

/**
 * The nodes holding pods with pod (anti-)affinity, kept per snapshot array until a pod with
 * affinity comes or goes anywhere, so a plain pod's pre-filter does not visit every node.
 */
function nodesWithAffinity(nodes: readonly NodeInfo[]): NodeInfo[] {
  const generation = podAffinityGeneration();
  const known = indexes.get(nodes);
  if (known && known.generation === generation) return known.nodes;
  const index = { generation, nodes: nodes.filter((n) => n.podsWithAffinity.size > 0) };
  indexes.set(nodes, index);
  return index.nodes;
}

export interface InterPodAffinityOptions {
  /** Namespace labels for namespaceSelector; by default only kubernetes.io/metadata.name. */
  namespaceLabels?: NamespaceLabels;
}

/** Creates the plugin; `namespaceLabels` resolves terms' namespaceSelectors. */
export function interPodAffinity(options: InterPodAffinityOptions = {}) {
  const nsLabels = options.namespaceLabels ?? nameOnlyNamespaceLabels;
  const matches = (t: Term, p: PodLabels) => termMatches(t, p, nsLabels);

  function countExistingAntiAffinity(data: CycleData, node: NodeInfo): void {
    const labels = node.labels;
    for (const info of node.podsWithRequiredAntiAffinity.values()) {
      for (const t of podTerms(info.pod).requiredAntiAffinity) {
        if (matches(t, data.self))
          bump(data.existingAntiAffinity, t.topologyKey, labels[t.topologyKey], 1);
      }
    }
  }

  function countIncoming(data: CycleData, node: NodeInfo): void {
    const labels = node.labels;
    const { requiredAffinity, requiredAntiAffinity } = data.terms;
    for (const info of node.pods.values()) {
      if (requiredAffinity.length > 0 && requiredAffinity.every((t) => matches(t, info))) {
        data.affinityTotal++;
        for (const t of requiredAffinity)
          bump(data.affinity, t.topologyKey, labels[t.topologyKey], 1);
      }
      for (const t of requiredAntiAffinity) {
        if (matches(t, info)) bump(data.antiAffinity, t.topologyKey, labels[t.topologyKey], 1);
      }
    }
  }

  function preFilter(state: CycleState, pod: Pod, nodes: readonly NodeInfo[]): Status {
    const terms = podTerms(pod);
    const data: CycleData = {
      terms,
      self: podLabels(pod),
      nodes,
      affinity: new Map(),
      affinityTotal: 0,
      antiAffinity: new Map(),
      existingAntiAffinity: new Map(),
      anyPodWithAffinity: false,
    };
    const withAffinity = nodesWithAffinity(nodes);
    data.anyPodWithAffinity = withAffinity.length > 0;
    for (const node of withAffinity) {
      if (node.podsWithRequiredAntiAffinity.size > 0) countExistingAntiAffinity(data, node);
    }
    if (terms.requiredAffinity.length > 0 || terms.requiredAntiAffinity.length > 0) {
      for (const node of nodes) if (node.pods.size > 0) countIncoming(data, node);
    }
    state.set(STATE_KEY, data);
    const nothingToCheck =
      data.existingAntiAffinity.size === 0 &&
      terms.requiredAffinity.length === 0 &&
      terms.requiredAntiAffinity.length === 0;
    return nothingToCheck ? SKIP : SUCCESS;
  }

  /** Counts of one node's pods alone, with the cycle's terms. */
  function nodeCounts(data: CycleData, node: NodeInfo): CycleData {
    const alone: CycleData = {
      ...data,
      affinity: new Map(),
      affinityTotal: 0,
      antiAffinity: new Map(),
      existingAntiAffinity: new Map(),
    };
    countExistingAntiAffinity(alone, node);
    const { requiredAffinity, requiredAntiAffinity } = data.terms;
    if (requiredAffinity.length > 0 || requiredAntiAffinity.length > 0) countIncoming(alone, node);
    return alone;
  }

  /**
   * The cycle's counts with a copied node's pods in place of its original's: preemption
   * filters copies with victims removed, and what the victims added must not count.
   */
  function forCopy(data: CycleData, copy: NodeInfo, original: NodeInfo): CycleData {
    const minus = nodeCounts(data, original);
    const plus = nodeCounts(data, copy);
    return {
      ...data,
      affinity: adjust(data.affinity, minus.affinity, plus.affinity),
      affinityTotal: data.affinityTotal - minus.affinityTotal + plus.affinityTotal,
      antiAffinity: adjust(data.antiAffinity, minus.antiAffinity, plus.antiAffinity),
      existingAntiAffinity: adjust(
        data.existingAntiAffinity,
        minus.existingAntiAffinity,
        plus.existingAntiAffinity,
      ),
    };
  }

  function filter(state: CycleState, pod: Pod, node: NodeInfo): Status {
    let data = state.get(STATE_KEY) as CycleData | undefined;
    if (!data) return SUCCESS;
    if (node.cloneOf) data = forCopy(data, node, node.cloneOf);
    const labels = node.labels;
    for (const [key, values] of data.existingAntiAffinity) {
      const value = labels[key];
      if (value !== undefined && (values.get(value) ?? 0) > 0) {
        return unschedulable(REASON_EXISTING_ANTI_AFFINITY);
      }
    }
    for (const t of data.terms.requiredAntiAffinity) {
      if (inDomain(data.antiAffinity, t.topologyKey, labels) > 0) {
        return unschedulable(REASON_ANTI_AFFINITY);
      }
    }
    const affinity = data.terms.requiredAffinity;
    if (affinity.length === 0) return SUCCESS;
    const satisfied = affinity.every(
      (t) =>
        labels[t.topologyKey] !== undefined && inDomain(data.affinity, t.topologyKey, labels) > 0,
    );
    if (satisfied) return SUCCESS;
    // The first pod of a group that selects itself may go anywhere its labels allow.
    const firstOfGroup = data.affinityTotal === 0 && affinity.every((t) => matches(t, data.self));
    const topologyKnown = affinity.every((t) => labels[t.topologyKey] !== undefined);
    if (firstOfGroup && topologyKnown) return SUCCESS;
    return unresolvable(REASON_AFFINITY);
  }

  function scoreExisting(
    scores: DomainCounts,
    self: PodLabels,
    info: PodInfo,
    labels: Record<string, string>,
  ): void {
    const terms = podTerms(info.pod);
    const add = (t: Term, weight: number) => {
      if (matches(t, self)) bump(scores, t.topologyKey, labels[t.topologyKey], weight);
    };
    for (const t of terms.requiredAffinity) add(t, HARD_POD_AFFINITY_WEIGHT);
    for (const t of terms.preferredAffinity) add(t, t.weight);
    for (const t of terms.preferredAntiAffinity) add(t, -t.weight);
  }

  /** Per-domain scores over every node: the incoming pod's preferences and the reverse. */
  function domainScores(data: CycleData): DomainCounts {
    const scores: DomainCounts = new Map();
    const { preferredAffinity, preferredAntiAffinity } = data.terms;
    const incoming = preferredAffinity.length > 0 || preferredAntiAffinity.length > 0;
    if (!incoming && !data.anyPodWithAffinity) return scores;
    for (const node of incoming ? data.nodes : nodesWithAffinity(data.nodes)) {
      const labels = node.labels;
      const pods = incoming ? node.pods : node.podsWithAffinity;
      for (const [key, info] of pods) {
        for (const t of preferredAffinity) {
          if (matches(t, info)) bump(scores, t.topologyKey, labels[t.topologyKey], t.weight);
        }
        for (const t of preferredAntiAffinity) {
          if (matches(t, info)) bump(scores, t.topologyKey, labels[t.topologyKey], -t.weight);
        }
        if (node.podsWithAffinity.has(key)) scoreExisting(scores, data.self, info, labels);
      }
    }
    return scores;
  }

  function score(state: CycleState, pod: Pod, node: NodeInfo): number {
    const data = state.get(STATE_KEY) as CycleData | undefined;
    if (!data) return 0;
    const scores = (data.scores ??= domainScores(data));
    if (scores.size === 0) return 0;
    const labels = node.labels;
    let sum = 0;
    for (const key of scores.keys()) sum += inDomain(scores, key, labels);
    return sum;
  }

  return {
    name: 'InterPodAffinity',
    weight: 2,
    preFilter,
    filter,
    score,
    skipScore(state: CycleState): boolean {
      const data = state.get(STATE_KEY) as CycleData | undefined;
      if (!data) return true;
      const { preferredAffinity, preferredAntiAffinity } = data.terms;
      return (
        !data.anyPodWithAffinity &&
        preferredAffinity.length === 0 &&
        preferredAntiAffinity.length === 0
      );
    },
    /** Min-max to 0..100; scores may be negative (anti-affinity), all equal gives 0. */
    normalize(scores: number[]): void {
      let min = Infinity;
      let max = -Infinity;
      for (const s of scores) {
        if (s < min) min = s;
        if (s > max) max = s;
      }
      const spread = max - min;
      for (let i = 0; i < scores.length; i++) {
        scores[i] = spread > 0 ? Math.floor(((scores[i] - min) * MAX_NODE_SCORE) / spread) : 0;
      }
    },
  } satisfies PreFilterPlugin & FilterPlugin & ScorePlugin;
}
