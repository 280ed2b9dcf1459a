import type {
  NodeObject,
  NodeSelectorRequirement,
  NodeSelectorTerm,
  Pod,
} from '../../../api/types.js';
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
 * are ORed; the expressions and fields inside a term are ANDed. Pods are compiled once per
 * object (the scheduler hands the same Pod object to every cycle).
 */

export const REASON_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector";

type NodeTest = (node: NodeObject) => boolean;

/** The required part of a pod's node placement, compiled for repeated matching. */
export interface RequiredNodeAffinity {
  /** True when the pod places no constraint on nodes. */
  readonly any: boolean;
  matches(node: NodeObject): boolean;
}

interface Compiled {
  required: RequiredNodeAffinity;
  /** Nodes the required terms can match at all, when every term names them by field. */
  nodeNames?: ReadonlySet<string>;
  preferred: { weight: number; test: NodeTest }[];
}

const compiled = new WeakMap<Pod, Compiled>();

function integer(text: string | undefined): number | undefined {
  if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
  return Number(text);
}

function expressionTest(
  req: NodeSelectorRequirement,
  read: (n: NodeObject) => string | undefined,
): NodeTest {
  const values = req.values ?? [];
  switch (req.operator) {
    case 'In':
      return (n) => {
        const v = read(n);
        return v !== undefined && values.includes(v);
      };
    case 'NotIn':
      return (n) => {
        const v = read(n);
        return v === undefined || !values.includes(v);
      };
    case 'Exists':
      return (n) => read(n) !== undefined;
    case 'DoesNotExist':
      return (n) => read(n) === undefined;
    case 'Gt':
    case 'Lt': {
      const bound = values.length === 1 ? integer(values[0]) : undefined;
      if (bound === undefined) return () => false;
      const gt = req.operator === 'Gt';
      return (n) => {
        const v = integer(read(n));
        return v !== undefined && (gt ? v > bound : v < bound);
      };
    }
    default:
      return () => false;
  }
}

/** A term as one test; an empty term matches no node, as in Kubernetes. */
export function compileTerm(term: NodeSelectorTerm | undefined): NodeTest {
  const tests: NodeTest[] = [];
  for (const e of term?.matchExpressions ?? []) {
    tests.push(expressionTest(e, (n) => n.metadata.labels?.[e.key]));
  }
  for (const f of term?.matchFields ?? []) {
    if (f.key !== 'metadata.name' || (f.operator !== 'In' && f.operator !== 'NotIn')) {
      return () => false;
    }
    tests.push(expressionTest(f, (n) => n.metadata.name));
  }
  if (tests.length === 0) return () => false;
  return (n) => tests.every((t) => t(n));
}

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
  const selector = pod.spec.nodeSelector;
  const selectorEntries = selector ? Object.entries(selector) : [];
  const affinity = pod.spec.affinity?.nodeAffinity;
  const required = affinity?.requiredDuringSchedulingIgnoredDuringExecution;
  const terms = required ? (required.nodeSelectorTerms ?? []).map(compileTerm) : undefined;
  const matches = (n: NodeObject): boolean => {
    const labels = n.metadata.labels ?? {};
    for (const [k, v] of selectorEntries) if (labels[k] !== v) return false;
    return terms === undefined || terms.some((t) => t(n));
  };
  const preferred = (affinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [])
    .filter((p) => p && p.weight > 0)
    .map((p) => ({ weight: p.weight, test: compileTerm(p.preference) }));
  return {
    required: { any: selectorEntries.length === 0 && terms === undefined, matches },
    nodeNames: required ? namedNodes(required.nodeSelectorTerms ?? []) : undefined,
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
