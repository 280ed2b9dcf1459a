import { compileSelector, type LabelMatcher } from '../../framework/selector.js';
import type { LabelSelector, Pod, PodAffinityTerm } from '../../../api/types.js';
import type { PodLabels } from '../../framework/nodeinfo.js';

/**
 * Pod affinity terms compiled once per pod object: selectors parsed, namespaces resolved
 * to a set or a namespace selector. The scheduler hands the same Pod object to every cycle
 * and informer updates replace it, so a WeakMap keyed by the object is a safe cache.
 */

/** Labels of a namespace by name; undefined when the namespace is unknown. */
export type NamespaceLabels = (namespace: string) => Record<string, string> | undefined;

/**
 * Without a namespace lister, a namespace is taken to carry only the label Kubernetes puts
 * on every namespace, kubernetes.io/metadata.name; a namespaceSelector on other labels then
 * matches no namespace.
 */
export const nameOnlyNamespaceLabels: NamespaceLabels = (namespace) => ({
  'kubernetes.io/metadata.name': namespace,
});

export interface Term {
  topologyKey: string;
  /** Undefined when the term's labelSelector is absent or invalid: it matches no pod. */
  selector?: LabelMatcher;
  /** Namespaces named in the term (or the pod's own when none is named and no selector). */
  namespaces: Set<string>;
  /** Matches namespaces by their labels; an empty one matches every namespace. */
  namespaceSelector?: LabelMatcher;
  weight: number;
}

export interface PodTerms {
  requiredAffinity: Term[];
  requiredAntiAffinity: Term[];
  preferredAffinity: Term[];
  preferredAntiAffinity: Term[];
}

function parse(selector: LabelSelector | undefined): LabelMatcher | undefined {
  return selector ? compileSelector(selector) : undefined;
}

function compileTerm(term: PodAffinityTerm, pod: Pod, weight: number): Term {
  const named = term.namespaces ?? [];
  const nsSelector = term.namespaceSelector ? parse(term.namespaceSelector) : undefined;
  const namespaces = new Set(named);
  if (named.length === 0 && !term.namespaceSelector) {
    namespaces.add(pod.metadata.namespace ?? 'default');
  }
  return {
    topologyKey: term.topologyKey,
    selector: parse(term.labelSelector),
    namespaces,
    namespaceSelector: nsSelector,
    weight,
  };
}

const cache = new WeakMap<Pod, PodTerms>();

export function podTerms(pod: Pod): PodTerms {
  let terms = cache.get(pod);
  if (terms) return terms;
  const aff = pod.spec?.affinity?.podAffinity;
  const anti = pod.spec?.affinity?.podAntiAffinity;
  const required = (list: PodAffinityTerm[] | undefined) =>
    (list ?? []).filter((t) => t).map((t) => compileTerm(t, pod, 1));
  const preferred = (list: { weight: number; podAffinityTerm: PodAffinityTerm }[] | undefined) =>
    (list ?? [])
      .filter((w) => w && w.podAffinityTerm && w.weight > 0)
      .map((w) => compileTerm(w.podAffinityTerm, pod, w.weight));
  terms = {
    requiredAffinity: required(aff?.requiredDuringSchedulingIgnoredDuringExecution),
    requiredAntiAffinity: required(anti?.requiredDuringSchedulingIgnoredDuringExecution),
    preferredAffinity: preferred(aff?.preferredDuringSchedulingIgnoredDuringExecution),
    preferredAntiAffinity: preferred(anti?.preferredDuringSchedulingIgnoredDuringExecution),
  };
  cache.set(pod, terms);
  return terms;
}

/** Whether the term selects a pod: its namespace is one of the term's and its labels match. */
export function termMatches(term: Term, pod: PodLabels, nsLabels: NamespaceLabels): boolean {
  if (!term.selector) return false;
  const ns = pod.namespace;
  if (!term.namespaces.has(ns)) {
    const sel = term.namespaceSelector;
    if (!sel) return false;
    if (!sel(nsLabels(ns))) return false;
  }
  return term.selector(pod.labels);
}
