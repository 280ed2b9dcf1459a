import type { NodeObject, NodeSelectorRequirement, NodeSelectorTerm, PodSpec } from './types.js';

/**
 * Node selector terms and a pod's required placement, as Kubernetes matches them against a
 * node: the scheduler's NodeAffinity plugin and the DaemonSet controller (which decides
 * where daemon pods belong) both use these, so the two can never disagree about a node.
 *
 * Required terms are ORed; the expressions and fields inside one term are ANDed; an empty
 * term (or one with an unsupported field) matches no node. `Gt` and `Lt` take exactly one
 * integer value and compare it with the label's value read as an integer. The only field a
 * term may name is `metadata.name`, with `In` or `NotIn`.
 */

export type NodeTest = (node: NodeObject) => boolean;

/** The required part of a pod's node placement, compiled for repeated matching. */
export interface RequiredPlacement {
  /** True when the pod places no constraint on nodes. */
  readonly any: boolean;
  matches(node: NodeObject): boolean;
}

function integer(text: string | undefined): number | undefined {
  if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
  return Number(text);
}

function requirementTest(
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

/** A term as one test. */
export function compileTerm(term: NodeSelectorTerm | undefined): NodeTest {
  const tests: NodeTest[] = [];
  for (const e of term?.matchExpressions ?? []) {
    tests.push(requirementTest(e, (n) => n.metadata.labels?.[e.key]));
  }
  for (const f of term?.matchFields ?? []) {
    if (f.key !== 'metadata.name' || (f.operator !== 'In' && f.operator !== 'NotIn')) {
      return () => false;
    }
    tests.push(requirementTest(f, (n) => n.metadata.name));
  }
  if (tests.length === 0) return () => false;
  return (n) => tests.every((t) => t(n));
}

/** The required node affinity terms of a pod spec, undefined when it has none. */
export function requiredTerms(spec: PodSpec): NodeSelectorTerm[] | undefined {
  const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  return required ? (required.nodeSelectorTerms ?? []) : undefined;
}

/** A pod spec's nodeSelector and required node affinity as one matcher (nodeName aside). */
export function requiredPlacement(spec: PodSpec): RequiredPlacement {
  const selector = Object.entries(spec.nodeSelector ?? {});
  const terms = requiredTerms(spec)?.map(compileTerm);
  const matches = (n: NodeObject): boolean => {
    const labels = n.metadata.labels ?? {};
    for (const [k, v] of selector) if (labels[k] !== v) return false;
    return terms === undefined || terms.some((t) => t(n));
  };
  return { any: selector.length === 0 && terms === undefined, matches };
}
