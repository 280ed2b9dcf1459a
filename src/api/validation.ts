import { validateContainerFields, validatePodFields } from './container-field-validation.js';
import type { FieldError } from './errors.js';
import { validateHandlers } from './handler-validation.js';
import { validateHostFields } from './host-validation.js';
import { fromLabelSelector, SelectorError } from './labels.js';
import { parseQuantity } from './quantity.js';
import { validateSchedulingFields } from './scheduling-validation.js';
import type { Container, KObject, LabelSelector, ObjectMeta, PodSpec } from './types.js';
import { validateVolumeMounts, validateVolumes } from './volume-validation.js';

/**
 * Validation of objects before they are stored. Each function returns the list of field
 * errors (empty when valid); field paths are written as Kubernetes writes them
 * (`spec.template.spec.containers[0].image`), so a user can find the offending line.
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL.test(value);
}

export function isDns1123Subdomain(value: string): boolean {
  return value.length <= 253 && DNS1123_SUBDOMAIN.test(value);
}

/** Checks a label or annotation key (`[prefix/]name`). */
export function qualifiedNameProblem(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return 'a qualified name must consist of at most one "/"';
  const name = parts[parts.length - 1];
  if (parts.length === 2 && !isDns1123Subdomain(parts[0])) {
    return 'prefix part must be a lowercase RFC 1123 subdomain';
  }
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) {
    return (
      "name part must consist of alphanumeric characters, '-', '_' or '.', and must " +
      'start and end with an alphanumeric character (at most 63 characters)'
    );
  }
  return undefined;
}

export function validateLabels(labels: unknown, path: string): FieldError[] {
  if (labels === undefined || labels === null) return [];
  if (typeof labels !== 'object' || Array.isArray(labels)) {
    return [{ field: path, type: 'Invalid', value: labels, detail: 'must be a map' }];
  }
  const errs: FieldError[] = [];
  for (const [key, value] of Object.entries(labels as Record<string, unknown>)) {
    const problem = qualifiedNameProblem(key);
    if (problem) errs.push({ field: path, type: 'Invalid', value: key, detail: problem });
    if (typeof value !== 'string') {
      errs.push({ field: `${path}.${key}`, type: 'Invalid', value, detail: 'must be a string' });
    } else if (value.length > 63 || !LABEL_VALUE.test(value)) {
      errs.push({
        field: `${path}.${key}`,
        type: 'Invalid',
        value,
        detail:
          "a valid label must be an empty string or consist of alphanumeric characters, '-', " +
          "'_' or '.', and must start and end with an alphanumeric character",
      });
    }
  }
  return errs;
}

function validateAnnotations(annotations: unknown, path: string): FieldError[] {
  if (annotations === undefined || annotations === null) return [];
  if (typeof annotations !== 'object' || Array.isArray(annotations)) {
    return [{ field: path, type: 'Invalid', value: annotations, detail: 'must be a map' }];
  }
  const errs: FieldError[] = [];
  let total = 0;
  for (const [key, value] of Object.entries(annotations as Record<string, unknown>)) {
    const problem = qualifiedNameProblem(key);
    if (problem) errs.push({ field: path, type: 'Invalid', value: key, detail: problem });
    if (typeof value !== 'string') {
      errs.push({ field: `${path}.${key}`, type: 'Invalid', value, detail: 'must be a string' });
    } else total += key.length + value.length;
  }
  if (total > 256 * 1024) {
    errs.push({ field: path, type: 'TooLong', detail: 'must have at most 262144 bytes' });
  }
  return errs;
}

/**
 * How a kind's names are checked: an RFC 1123 subdomain (most kinds), an RFC 1123 label, or
 * a DNS-1035 label (a label that starts with a letter: Services, whose names become DNS
 * names and environment variable prefixes).
 */
export type NameRule = 'subdomain' | 'label' | 'dns1035';

const NAME_RULES: Record<NameRule, { test: (name: string) => boolean; detail: string }> = {
  subdomain: {
    test: isDns1123Subdomain,
    detail:
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' " +
      "or '.', and must start and end with an alphanumeric character",
  },
  label: {
    test: isDns1123Label,
    detail:
      "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', " +
      'and must start and end with an alphanumeric character',
  },
  dns1035: {
    test: (name) => /^[a-z]/.test(name) && isDns1123Label(name),
    detail:
      "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start " +
      'with an alphabetic character, and end with an alphanumeric character',
  },
};

/** Validates metadata common to every object. */
export function validateMeta(
  meta: ObjectMeta | undefined,
  namespaced: boolean,
  nameRule: NameRule,
): FieldError[] {
  if (!meta || typeof meta !== 'object') {
    return [{ field: 'metadata', type: 'Required' }];
  }
  const errs: FieldError[] = [];
  const name = meta.name;
  const rule = NAME_RULES[nameRule];
  if (!name) {
    errs.push({
      field: 'metadata.name',
      type: 'Required',
      detail: 'name or generateName is required',
    });
  } else if (!rule.test(name)) {
    errs.push({ field: 'metadata.name', type: 'Invalid', value: name, detail: rule.detail });
  }
  if (namespaced && meta.namespace !== undefined && !isDns1123Label(meta.namespace)) {
    errs.push({ field: 'metadata.namespace', type: 'Invalid', value: meta.namespace });
  }
  errs.push(...validateLabels(meta.labels, 'metadata.labels'));
  errs.push(...validateAnnotations(meta.annotations, 'metadata.annotations'));
  const finalizers = meta.finalizers;
  if (
    finalizers !== undefined &&
    (!Array.isArray(finalizers) || finalizers.some((f) => typeof f !== 'string'))
  ) {
    errs.push({
      field: 'metadata.finalizers',
      type: 'Invalid',
      value: finalizers,
      detail: 'must be a list of strings',
    });
  }
  const owners = meta.ownerReferences;
  const ownerOk = (o: unknown) =>
    !!o &&
    typeof o === 'object' &&
    ['apiVersion', 'kind', 'name', 'uid'].every((k) => typeof (o as any)[k] === 'string');
  if (owners !== undefined && (!Array.isArray(owners) || !owners.every(ownerOk))) {
    errs.push({
      field: 'metadata.ownerReferences',
      type: 'Invalid',
      value: owners,
      detail: 'must be a list of references with apiVersion, kind, name and uid',
    });
  }
  return errs;
}

function validateQuantities(map: unknown, path: string): FieldError[] {
  if (map === undefined) return [];
  if (typeof map !== 'object' || map === null) {
    return [{ field: path, type: 'Invalid', value: map, detail: 'must be a map' }];
  }
  const errs: FieldError[] = [];
  for (const [name, value] of Object.entries(map as Record<string, unknown>)) {
    const parsed = parseQuantity(value as string);
    if (parsed === undefined || (typeof value !== 'string' && typeof value !== 'number')) {
      errs.push({
        field: `${path}.${name}`,
        type: 'Invalid',
        value,
        detail:
          "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
      });
    } else if (parsed < 0) {
      errs.push({
        field: `${path}.${name}`,
        type: 'Invalid',
        value,
        detail: 'must be greater than or equal to 0',
      });
    }
  }
  return errs;
}

function validateContainer(c: Container, path: string, names: Set<string>): FieldError[] {
  const errs: FieldError[] = [];
  if (!c || typeof c !== 'object') return [{ field: path, type: 'Invalid', value: c }];
  if (!c.name) errs.push({ field: `${path}.name`, type: 'Required' });
  else if (!isDns1123Label(c.name)) {
    errs.push({
      field: `${path}.name`,
      type: 'Invalid',
      value: c.name,
      detail: 'must be a DNS label',
    });
  } else if (names.has(c.name)) {
    errs.push({ field: `${path}.name`, type: 'Duplicate', value: c.name });
  } else names.add(c.name);
  if (!c.image || typeof c.image !== 'string' || c.image.trim() !== c.image) {
    errs.push({ field: `${path}.image`, type: c.image ? 'Invalid' : 'Required', value: c.image });
  }
  for (const key of ['command', 'args'] as const) {
    const list = c[key];
    if (list !== undefined && (!Array.isArray(list) || list.some((s) => typeof s !== 'string'))) {
      errs.push({
        field: `${path}.${key}`,
        type: 'Invalid',
        value: list,
        detail: 'must be a list of strings',
      });
    }
  }
  (c.env ?? []).forEach((e, i) => {
    if (!e || typeof e.name !== 'string' || e.name === '') {
      errs.push({ field: `${path}.env[${i}].name`, type: 'Required' });
    } else if (!isEnvVarName(e.name)) {
      errs.push({
        field: `${path}.env[${i}].name`,
        type: 'Invalid',
        value: e.name,
        detail: ENV_NAME_DETAIL,
      });
    } else if (e.value !== undefined && typeof e.value !== 'string') {
      errs.push({
        field: `${path}.env[${i}].value`,
        type: 'Invalid',
        value: e.value,
        detail: 'must be a string',
      });
    }
  });
  // envFrom is not in the Container type the API reads (the agent resolves it).
  const envFrom = (c as { envFrom?: { prefix?: unknown }[] }).envFrom;
  (Array.isArray(envFrom) ? envFrom : []).forEach((from, i) => {
    const prefix = from?.prefix;
    if (typeof prefix === 'string' && prefix !== '' && !isEnvVarName(prefix)) {
      errs.push({
        field: `${path}.envFrom[${i}].prefix`,
        type: 'Invalid',
        value: prefix,
        detail: ENV_NAME_DETAIL,
      });
    }
  });
  (c.ports ?? []).forEach((p, i) => {
    const port = p?.containerPort;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      errs.push({
        field: `${path}.ports[${i}].containerPort`,
        type: 'Invalid',
        value: port,
        detail: 'must be between 1 and 65535, inclusive',
      });
    }
    // 0 or none: not published on the node.
    const hostPort = p?.hostPort;
    if (
      hostPort !== undefined &&
      (!Number.isInteger(hostPort) || hostPort < 0 || hostPort > 65535)
    ) {
      errs.push({
        field: `${path}.ports[${i}].hostPort`,
        type: 'Invalid',
        value: hostPort,
        detail: 'must be between 1 and 65535, inclusive',
      });
    }
    const protocol = p?.protocol;
    if (protocol !== undefined && !['TCP', 'UDP', 'SCTP'].includes(protocol)) {
      errs.push({
        field: `${path}.ports[${i}].protocol`,
        type: 'Unsupported',
        value: protocol,
        detail: 'supported values: "SCTP", "TCP", "UDP"',
      });
    }
  });
  errs.push(...validateQuantities(c.resources?.requests, `${path}.resources.requests`));
  errs.push(...validateQuantities(c.resources?.limits, `${path}.resources.limits`));
  const policy = c.imagePullPolicy;
  if (policy !== undefined && !['Always', 'IfNotPresent', 'Never'].includes(policy)) {
    errs.push({ field: `${path}.imagePullPolicy`, type: 'Unsupported', value: policy });
  }
  return errs;
}

const ENV_NAME_DETAIL =
  "a valid environment variable name must consist only of printable ASCII characters other than '='";

/** Kubernetes' relaxed rule for environment variable names (and envFrom prefixes). */
function isEnvVarName(name: string): boolean {
  return /^[\x20-\x7e]+$/.test(name) && !name.includes('=');
}

export function validatePodSpec(spec: PodSpec | undefined, path: string): FieldError[] {
  if (!spec || typeof spec !== 'object') return [{ field: path, type: 'Required' }];
  const names = new Set<string>();
  const volumes = validateVolumes(spec.volumes, `${path}.volumes`);
  const errs: FieldError[] = [...volumes.errs];
  const grace = spec.terminationGracePeriodSeconds;
  const check = (c: Container, at: string, init: boolean) => {
    errs.push(...validateContainer(c, at, names));
    if (c && typeof c === 'object') {
      errs.push(...validateVolumeMounts(c, `${at}.volumeMounts`, volumes.names));
      errs.push(...validateHandlers(c, at, Number.isInteger(grace) ? grace : undefined, init));
      errs.push(...validateContainerFields(c, at));
    }
  };
  if (!Array.isArray(spec.containers) || spec.containers.length === 0) {
    errs.push({ field: `${path}.containers`, type: 'Required' });
  } else {
    spec.containers.forEach((c, i) => check(c, `${path}.containers[${i}]`, false));
  }
  if (spec.initContainers !== undefined && !Array.isArray(spec.initContainers)) {
    errs.push({ field: `${path}.initContainers`, type: 'Invalid', value: spec.initContainers });
  } else {
    (spec.initContainers ?? []).forEach((c, i) => check(c, `${path}.initContainers[${i}]`, true));
  }
  const policy = spec.restartPolicy;
  if (policy !== undefined && !['Always', 'OnFailure', 'Never'].includes(policy)) {
    errs.push({ field: `${path}.restartPolicy`, type: 'Unsupported', value: policy });
  }
  if (grace !== undefined && (!Number.isInteger(grace) || grace < 0)) {
    errs.push({ field: `${path}.terminationGracePeriodSeconds`, type: 'Invalid', value: grace });
  }
  const deadline = spec.activeDeadlineSeconds;
  if (deadline !== undefined && !isDeadline(deadline)) {
    errs.push({
      field: `${path}.activeDeadlineSeconds`,
      type: 'Invalid',
      value: deadline,
      detail: `must be between 1 and ${MAX_INT32}, inclusive`,
    });
  }
  errs.push(...validatePodFields(spec, path));
  errs.push(...validateHostFields(spec, path));
  errs.push(...validateLabels(spec.nodeSelector, `${path}.nodeSelector`));
  errs.push(...validateSchedulingFields(spec, path));
  return errs;
}

const MAX_INT32 = 2 ** 31 - 1;

/** A pod's activeDeadlineSeconds: whole seconds, 1 to 2^31-1 as in Kubernetes. */
function isDeadline(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_INT32;
}

/** Validates a selector and that it selects the template's labels. */
export function validateSelector(
  selector: LabelSelector | undefined,
  templateLabels: Record<string, string> | undefined,
  path: string,
  templatePath: string,
): FieldError[] {
  if (!selector || typeof selector !== 'object') return [{ field: path, type: 'Required' }];
  const empty = !selector.matchLabels && !selector.matchExpressions;
  if (empty) {
    return [
      {
        field: path,
        type: 'Invalid',
        value: selector,
        detail: 'empty selector is invalid for deployment',
      },
    ];
  }
  const errs = validateLabels(selector.matchLabels, `${path}.matchLabels`);
  try {
    const sel = fromLabelSelector(selector);
    if (!sel.matches(templateLabels ?? {})) {
      errs.push({
        field: templatePath,
        type: 'Invalid',
        value: templateLabels ?? {},
        detail: '`selector` does not match template `labels`',
      });
    }
  } catch (err) {
    if (!(err instanceof SelectorError)) throw err;
    errs.push({ field: path, type: 'Invalid', value: selector, detail: err.message });
  }
  return errs;
}

const INT32_MAX = 2 ** 31 - 1;

export function validateReplicas(value: unknown, path: string): FieldError[] {
  if (value === undefined) return [];
  if (typeof value !== 'number') {
    return [
      { field: path, type: 'Invalid', value, detail: 'must be an integer, not a ' + typeof value },
    ];
  }
  if (!Number.isInteger(value) || (value as number) < 0) {
    return [{ field: path, type: 'Invalid', value, detail: 'must be greater than or equal to 0' }];
  }
  if ((value as number) > INT32_MAX) {
    return [{ field: path, type: 'Invalid', value, detail: `must be at most ${INT32_MAX}` }];
  }
  return [];
}

/** Checks the type of a top-level object before anything else reads it. */
export function validateShape(obj: unknown): FieldError[] {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
    return [{ field: '<root>', type: 'Invalid', detail: 'must be a JSON object' }];
  }
  const o = obj as KObject;
  const errs: FieldError[] = [];
  if (o.metadata !== undefined && (typeof o.metadata !== 'object' || Array.isArray(o.metadata))) {
    errs.push({
      field: 'metadata',
      type: 'Invalid',
      value: o.metadata,
      detail: 'must be an object',
    });
  }
  for (const key of ['spec', 'status'] as const) {
    const v = o[key];
    if (v !== undefined && v !== null && (typeof v !== 'object' || Array.isArray(v))) {
      errs.push({ field: key, type: 'Invalid', value: v, detail: 'must be an object' });
    }
  }
  return errs;
}
