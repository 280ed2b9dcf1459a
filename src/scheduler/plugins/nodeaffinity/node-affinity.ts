import {
  compileTerm,
  requiredPlacement,
  requiredTerms,
  type NodeTest,
  type RequiredPlacement,
} from '../../../api/node-selector.js';
import type { NodeSelectorTerm, Pod } from '../../../api/types.js';
import {
  normalizeByMax,
  SKIP,
  SUCCESS,
  unresolvable,
  type CycleState,
  type FilterPlugin,
  type PreFilterPlugin,
  type ScorePlugin,
  type Status,
} from '../../framework/interface.js';
import type { NodeInfo } from '../../framework/nodeinfo.js';

/**
 * NodeAffinity keeps a pod on nodes matching its nodeSelector and its required node
 * affinity, and prefers nodes matching its preferred terms by their weights. Required terms
 * are ORed; the expressions and fields inside a term are ANDed (the matching itself is
 * src/api/node-selector.ts, shared with the DaemonSet controller). Pods are compiled once
 * per object (the scheduler hands the same Pod object to every cycle).
 */

export const REASON_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector";

/** The required part of a pod's node placement, compiled for repeated matching. */
export type RequiredNodeAffinity = RequiredPlacement;

interface Compiled {
  required: RequiredNodeAffinity;
  /** Nodes the required terms can match at all, when every term names them by field. */
  nodeNames?: ReadonlySet<string>;
  preferred: { weight: number; test: NodeTest }[];
}

const compiled = new WeakMap<Pod, Compiled>();

/**
 * The node names the terms allow when each term has a matchFields `metadata.name In`
 * requirement (as DaemonSet pods do); undefined when some term matches by labels alone.
 */
function namedNodes(terms: NodeSelectorTerm[]): ReadonlySet<string> | undefined {
  const names = new Set<string>();
  for (const term of terms) {
    const byName = term?.matchFields?.find((f) => f.key === 'metadata.name' && f.operator === 'In');
    if (!byName) return undefined;
    for (const n of byName.values ?? []) names.add(n);
  }
  return terms.length > 0 ? names : undefined;
}

function compile(pod: Pod): Compiled {
  const affinity = pod.spec.affinity?.nodeAffinity;
  const terms = requiredTerms(pod.spec);
  const preferred = (affinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [])
    .filter((p) => p && p.weight > 0)
    .map((p) => ({ weight: p.weight, test: compileTerm(p.preference) }));
  return {
    required: requiredPlacement(pod.spec),
    nodeNames: terms ? namedNodes(terms) : undefined,
    preferred,
  };
}

function compiledFor(pod: Pod): Compiled {
  let c = compiled.get(pod);
  if (!c) compiled.set(pod, (c = compile(pod)));
  return c;
}

/** The pod's nodeSelector and required node affinity as one matcher. */
export function requiredNodeAffinity(pod: Pod): RequiredNodeAffinity {
  return compiledFor(pod).required;
}

const STATE_KEY = 'NodeAffinity';

export const nodeAffinity = {
  name: 'NodeAffinity',
  weight: 2,

  preFilter(state: CycleState, pod: Pod): Status {
    const c = compiledFor(pod);
    state.set(STATE_KEY, c);
    if (c.required.any) return SKIP;
    if (c.nodeNames) return { ...SUCCESS, reasons: [REASON_NODE_AFFINITY], nodeNames: c.nodeNames };
    return SUCCESS;
  },

  filter(state: CycleState, pod: Pod, node: NodeInfo): Status {
    const c = (state.get(STATE_KEY) as Compiled | undefined) ?? compiledFor(pod);
    if (c.required.any || c.required.matches(node.node)) return SUCCESS;
    return unresolvable(REASON_NODE_AFFINITY);
  },

  /** Sum of the weights of the preferred terms the node matches. */
  score(state: CycleState, pod: Pod, node: NodeInfo): number {
    const c = (state.get(STATE_KEY) as Compiled | undefined) ?? compiledFor(pod);
    let sum = 0;
    for (const p of c.preferred) if (p.test(node.node)) sum += p.weight;
    return sum;
  },

  normalize(scores: number[]): void {
    normalizeByMax(scores, false);
  },

  skipScore(state: CycleState, pod: Pod): boolean {
    const c = (state.get(STATE_KEY) as Compiled | undefined) ?? compiledFor(pod);
    return c.preferred.length === 0;
  },
} satisfies PreFilterPlugin & FilterPlugin & ScorePlugin;
