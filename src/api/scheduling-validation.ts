import type { FieldError } from './errors.js';
import { isObj } from './json-shape.js';
import type {
  LabelSelector,
  NodeSelectorTerm,
  PodAffinityTerm,
  PodSpec,
  Toleration,
  TopologySpreadConstraint,
} from './types.js';
import { isDns1123Label, isDns1123Subdomain, validateLabels } from './validation.js';

/**
 * Validation of the pod fields the scheduler reads: affinity, tolerations, topology spread
 * constraints and priority. Field paths and messages follow Kubernetes' so that kubectl
 * users see the same errors (`spec.tolerations[0].operator: Unsupported value: "Foo"`).
 */

type Errs = FieldError[];

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const INT32_MAX = 2 ** 31 - 1;

function supported(...values: string[]): string {
  return `supported values: ${values.map((v) => JSON.stringify(v)).join(', ')}`;
}

/** A list field: its items with their paths, or an error when it is not a list. */
function items<T>(value: unknown, path: string, errs: Errs): [T, string][] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    errs.push({ field: path, type: 'Invalid', value, detail: 'must be a list' });
    return [];
  }
  return value.map((v, i) => [v as T, `${path}[${i}]`]);
}

/** A label key (`[prefix/]name`), checked with the label rules of validation.ts. */
function checkKey(key: unknown, path: string, errs: Errs): void {
  if (key === undefined || key === '') {
    errs.push({ field: path, type: 'Required' });
    return;
  }
  if (typeof key !== 'string') {
    errs.push({ field: path, type: 'Invalid', value: key, detail: 'must be a string' });
    return;
  }
  for (const e of validateLabels({ [key]: '' }, path)) errs.push({ ...e, field: path });
}

function checkWeight(weight: unknown, path: string, errs: Errs): void {
  if (!Number.isInteger(weight) || (weight as number) < 1 || (weight as number) > 100) {
    errs.push({
      field: path,
      type: 'Invalid',
      value: weight,
      detail: 'must be in the range 1-100',
    });
  }
}

/** Values of a selector requirement as its operator demands. */
function checkValues(operator: string, values: unknown, path: string, errs: Errs): void {
  const list = Array.isArray(values) ? values : [];
  if (values !== undefined && !Array.isArray(values)) {
    errs.push({ field: path, type: 'Invalid', value: values, detail: 'must be a list' });
    return;
  }
  switch (operator) {
    case 'In':
    case 'NotIn':
      if (list.length === 0) {
        errs.push({
          field: path,
          type: 'Required',
          detail: "must be specified when `operator` is 'In' or 'NotIn'",
        });
      }
      break;
    case 'Exists':
    case 'DoesNotExist':
      if (list.length > 0) {
        errs.push({
          field: path,
          type: 'Forbidden',
          detail: "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        });
      }
      break;
    case 'Gt':
    case 'Lt':
      if (list.length !== 1) {
        errs.push({
          field: path,
          type: 'Required',
          detail: "must be specified single value when `operator` is 'Lt' or 'Gt'",
        });
      } else if (typeof list[0] !== 'string' || !/^-?\d+$/.test(list[0])) {
        errs.push({
          field: `${path}[0]`,
          type: 'Invalid',
          value: list[0],
          detail: 'must be an integer',
        });
      }
      break;
  }
}

function checkRequirement(req: unknown, path: string, operators: string[], errs: Errs): void {
  if (!isObj(req)) {
    errs.push({ field: path, type: 'Invalid', value: req, detail: 'must be an object' });
    return;
  }
  checkKey(req.key, `${path}.key`, errs);
  const op = req.operator;
  if (op === undefined || op === '') {
    errs.push({ field: `${path}.operator`, type: 'Required' });
  } else if (typeof op !== 'string' || !operators.includes(op)) {
    errs.push({
      field: `${path}.operator`,
      type: 'Unsupported',
      value: op,
      detail: supported(...operators),
    });
  } else {
    checkValues(op, req.values, `${path}.values`, errs);
  }
}

const SET_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'];
const NODE_OPERATORS = [...SET_OPERATORS, 'Gt', 'Lt'];

/** A structured label selector (matchLabels and matchExpressions). */
export function validateLabelSelector(sel: LabelSelector | undefined, path: string): Errs {
  if (sel === undefined || sel === null) return [];
  if (!isObj(sel))
    return [{ field: path, type: 'Invalid', value: sel, detail: 'must be an object' }];
  const errs = validateLabels(sel.matchLabels, `${path}.matchLabels`);
  for (const [req, at] of items(sel.matchExpressions, `${path}.matchExpressions`, errs)) {
    checkRequirement(req, at, SET_OPERATORS, errs);
  }
  return errs;
}

function checkNodeSelectorTerm(term: NodeSelectorTerm, path: string, errs: Errs): void {
  if (!isObj(term)) {
    errs.push({ field: path, type: 'Invalid', value: term, detail: 'must be an object' });
    return;
  }
  for (const [req, at] of items(term.matchExpressions, `${path}.matchExpressions`, errs)) {
    checkRequirement(req, at, NODE_OPERATORS, errs);
  }
  for (const [req, at] of items(term.matchFields, `${path}.matchFields`, errs)) {
    if (isObj(req) && req.key !== 'metadata.name') {
      errs.push({
        field: `${at}.key`,
        type: 'Unsupported',
        value: req.key,
        detail: supported('metadata.name'),
      });
      continue;
    }
    checkRequirement(req, at, ['In', 'NotIn'], errs);
    const values = isObj(req) ? req.values : undefined;
    if (Array.isArray(values) && values.length > 1) {
      errs.push({
        field: `${at}.values`,
        type: 'Invalid',
        value: values,
        detail: "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
      });
    }
  }
}

function checkNodeAffinity(na: unknown, path: string, errs: Errs): void {
  if (!isObj(na)) {
    errs.push({ field: path, type: 'Invalid', value: na, detail: 'must be an object' });
    return;
  }
  const reqPath = `${path}.requiredDuringSchedulingIgnoredDuringExecution`;
  const required = na.requiredDuringSchedulingIgnoredDuringExecution;
  if (required !== undefined && required !== null) {
    const terms = isObj(required) ? required.nodeSelectorTerms : undefined;
    if (!Array.isArray(terms) || terms.length === 0) {
      errs.push({
        field: `${reqPath}.nodeSelectorTerms`,
        type: 'Required',
        detail: 'must have at least one node selector term',
      });
    }
    for (const [term, at] of items<NodeSelectorTerm>(terms, `${reqPath}.nodeSelectorTerms`, errs)) {
      checkNodeSelectorTerm(term, at, errs);
    }
  }
  const prefPath = `${path}.preferredDuringSchedulingIgnoredDuringExecution`;
  for (const [p, at] of items<Record<string, unknown>>(
    na.preferredDuringSchedulingIgnoredDuringExecution,
    prefPath,
    errs,
  )) {
    checkWeight(p?.weight, `${at}.weight`, errs);
    if (!isObj(p?.preference)) errs.push({ field: `${at}.preference`, type: 'Required' });
    else checkNodeSelectorTerm(p.preference as NodeSelectorTerm, `${at}.preference`, errs);
  }
}

function checkPodAffinityTerm(term: PodAffinityTerm, path: string, errs: Errs): void {
  if (!isObj(term)) {
    errs.push({ field: path, type: 'Invalid', value: term, detail: 'must be an object' });
    return;
  }
  checkKey(term.topologyKey, `${path}.topologyKey`, errs);
  errs.push(...validateLabelSelector(term.labelSelector, `${path}.labelSelector`));
  errs.push(...validateLabelSelector(term.namespaceSelector, `${path}.namespaceSelector`));
  for (const [ns, at] of items<unknown>(term.namespaces, `${path}.namespaces`, errs)) {
    if (typeof ns !== 'string' || !isDns1123Label(ns)) {
      errs.push({ field: at, type: 'Invalid', value: ns, detail: 'must be a namespace name' });
    }
  }
}

function checkPodAffinity(pa: unknown, path: string, errs: Errs): void {
  if (!isObj(pa)) {
    errs.push({ field: path, type: 'Invalid', value: pa, detail: 'must be an object' });
    return;
  }
  const reqPath = `${path}.requiredDuringSchedulingIgnoredDuringExecution`;
  for (const [term, at] of items<PodAffinityTerm>(
    pa.requiredDuringSchedulingIgnoredDuringExecution,
    reqPath,
    errs,
  )) {
    checkPodAffinityTerm(term, at, errs);
  }
  const prefPath = `${path}.preferredDuringSchedulingIgnoredDuringExecution`;
  for (const [p, at] of items<Record<string, unknown>>(
    pa.preferredDuringSchedulingIgnoredDuringExecution,
    prefPath,
    errs,
  )) {
    checkWeight(p?.weight, `${at}.weight`, errs);
    checkPodAffinityTerm(p?.podAffinityTerm as PodAffinityTerm, `${at}.podAffinityTerm`, errs);
  }
}

function checkAffinity(affinity: unknown, path: string, errs: Errs): void {
  if (affinity === undefined || affinity === null) return;
  if (!isObj(affinity)) {
    errs.push({ field: path, type: 'Invalid', value: affinity, detail: 'must be an object' });
    return;
  }
  if (affinity.nodeAffinity != null)
    checkNodeAffinity(affinity.nodeAffinity, `${path}.nodeAffinity`, errs);
  if (affinity.podAffinity != null)
    checkPodAffinity(affinity.podAffinity, `${path}.podAffinity`, errs);
  if (affinity.podAntiAffinity != null) {
    checkPodAffinity(affinity.podAntiAffinity, `${path}.podAntiAffinity`, errs);
  }
}

const EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];

function checkToleration(t: Toleration, path: string, errs: Errs): void {
  if (!isObj(t)) {
    errs.push({ field: path, type: 'Invalid', value: t, detail: 'must be an object' });
    return;
  }
  if (t.key) checkKey(t.key, `${path}.key`, errs);
  const op = t.operator ?? '';
  if (op !== '' && op !== 'Equal' && op !== 'Exists') {
    errs.push({
      field: `${path}.operator`,
      type: 'Unsupported',
      value: op,
      detail: supported('Equal', 'Exists'),
    });
  }
  if (!t.key && op !== 'Exists' && (op === '' || op === 'Equal')) {
    errs.push({
      field: `${path}.operator`,
      type: 'Invalid',
      value: op,
      detail:
        'operator must be Exists when `key` is empty, which means "match all values and all keys"',
    });
  }
  if (op === 'Exists' && t.value) {
    errs.push({
      field: `${path}.value`,
      type: 'Invalid',
      value: t.value,
      detail: "value must be empty when `operator` is 'Exists'",
    });
  } else if (
    t.value !== undefined &&
    (typeof t.value !== 'string' || t.value.length > 63 || !LABEL_VALUE.test(t.value))
  ) {
    errs.push({
      field: `${path}.value`,
      type: 'Invalid',
      value: t.value,
      detail: 'must be a valid label value',
    });
  }
  if (t.effect && !EFFECTS.includes(t.effect as string)) {
    errs.push({
      field: `${path}.effect`,
      type: 'Unsupported',
      value: t.effect,
      detail: supported(...EFFECTS),
    });
  }
  if (t.tolerationSeconds !== undefined && t.tolerationSeconds !== null) {
    if (!Number.isInteger(t.tolerationSeconds)) {
      errs.push({
        field: `${path}.tolerationSeconds`,
        type: 'Invalid',
        value: t.tolerationSeconds,
        detail: 'must be an integer',
      });
    } else if (t.effect !== 'NoExecute') {
      errs.push({
        field: `${path}.effect`,
        type: 'Invalid',
        value: t.effect ?? '',
        detail: "effect must be 'NoExecute' when `tolerationSeconds` is set",
      });
    }
  }
}

function checkSpreadConstraint(c: TopologySpreadConstraint, path: string, errs: Errs): void {
  if (!isObj(c)) {
    errs.push({ field: path, type: 'Invalid', value: c, detail: 'must be an object' });
    return;
  }
  if (!Number.isInteger(c.maxSkew) || c.maxSkew < 1) {
    errs.push({
      field: `${path}.maxSkew`,
      type: 'Invalid',
      value: c.maxSkew,
      detail: 'must be greater than zero',
    });
  }
  checkKey(c.topologyKey, `${path}.topologyKey`, errs);
  const when = c.whenUnsatisfiable as unknown;
  if (when === undefined || when === '') {
    errs.push({ field: `${path}.whenUnsatisfiable`, type: 'Required' });
  } else if (when !== 'DoNotSchedule' && when !== 'ScheduleAnyway') {
    errs.push({
      field: `${path}.whenUnsatisfiable`,
      type: 'Unsupported',
      value: when,
      detail: supported('DoNotSchedule', 'ScheduleAnyway'),
    });
  }
  if (c.minDomains !== undefined && c.minDomains !== null) {
    if (!Number.isInteger(c.minDomains) || c.minDomains < 1) {
      errs.push({
        field: `${path}.minDomains`,
        type: 'Invalid',
        value: c.minDomains,
        detail: 'must be greater than zero',
      });
    } else if (when !== 'DoNotSchedule') {
      errs.push({
        field: `${path}.minDomains`,
        type: 'Invalid',
        value: c.minDomains,
        detail: 'can only use minDomains if whenUnsatisfiable=DoNotSchedule',
      });
    }
  }
  for (const key of ['nodeAffinityPolicy', 'nodeTaintsPolicy'] as const) {
    const v = c[key] as unknown;
    if (v !== undefined && v !== null && v !== 'Honor' && v !== 'Ignore') {
      errs.push({
        field: `${path}.${key}`,
        type: 'Unsupported',
        value: v,
        detail: supported('Honor', 'Ignore'),
      });
    }
  }
  errs.push(...validateLabelSelector(c.labelSelector, `${path}.labelSelector`));
}

function checkSpread(list: unknown, path: string, errs: Errs): void {
  const seen = new Set<string>();
  for (const [c, at] of items<TopologySpreadConstraint>(list, path, errs)) {
    checkSpreadConstraint(c, at, errs);
    if (!isObj(c)) continue;
    const pair = `{${c.topologyKey}, ${c.whenUnsatisfiable}}`;
    if (seen.has(pair)) errs.push({ field: at, type: 'Duplicate', value: pair });
    seen.add(pair);
  }
}

function checkPriority(spec: PodSpec, path: string, errs: Errs): void {
  const p = spec.priority as unknown;
  if (p !== undefined && p !== null) {
    if (!Number.isInteger(p) || (p as number) < -INT32_MAX - 1 || (p as number) > INT32_MAX) {
      errs.push({
        field: `${path}.priority`,
        type: 'Invalid',
        value: p,
        detail: 'must be a 32-bit integer',
      });
    }
  }
  const name = spec.priorityClassName as unknown;
  if (name !== undefined && name !== null && name !== '') {
    if (typeof name !== 'string' || !isDns1123Subdomain(name)) {
      errs.push({
        field: `${path}.priorityClassName`,
        type: 'Invalid',
        value: name,
        detail:
          'a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, ' +
          "'-' or '.', and must start and end with an alphanumeric character",
      });
    }
  }
}

/** Validates a pod spec's scheduling fields; `path` is the spec's path (`spec`). */
export function validateSchedulingFields(spec: PodSpec, path: string): FieldError[] {
  const errs: Errs = [];
  checkAffinity(spec.affinity, `${path}.affinity`, errs);
  for (const [t, at] of items<Toleration>(spec.tolerations, `${path}.tolerations`, errs)) {
    checkToleration(t, at, errs);
  }
  checkSpread(spec.topologySpreadConstraints, `${path}.topologySpreadConstraints`, errs);
  checkPriority(spec, path, errs);
  return errs;
}
