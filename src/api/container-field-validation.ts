import type { FieldError } from './errors.js';
import { isObj, type Obj } from './json-shape.js';
import { parseQuantity } from './quantity.js';
import { portNameProblem } from './service.js';
import type { Container, PodSpec } from './types.js';

/**
 * Validation of the pod and container fields the node acts on that validation.ts does not
 * check: resource names and requests against limits, port names, user and group ids, and
 * the DNS policy. Each of these was stored as given and then failed on the node (a
 * container of runAsUser -1 crash-looped) or meant nothing (a limit of "memroy").
 */

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const RESOURCE_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const STANDARD_RESOURCES = new Set(['cpu', 'memory', 'ephemeral-storage']);
const DNS_POLICIES = ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'];
const MAX_ID = 2 ** 31 - 1;

/** The errors of a container's resources, port names and securityContext ids. */
export function validateContainerFields(c: Container, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const resources = (c as unknown as Obj).resources;
  if (isObj(resources)) errs.push(...validateResources(resources, `${path}.resources`));
  errs.push(...validatePortNames(c.ports, `${path}.ports`));
  const security = (c as unknown as Obj).securityContext;
  if (isObj(security)) errs.push(...validateIds(security, `${path}.securityContext`, false));
  return errs;
}

/** The errors of the pod-level fields: its securityContext ids and its DNS policy. */
export function validatePodFields(spec: PodSpec, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const fields = spec as unknown as Obj;
  if (isObj(fields.securityContext)) {
    errs.push(...validateIds(fields.securityContext, `${path}.securityContext`, true));
  }
  const policy = fields.dnsPolicy;
  if (policy !== undefined && !DNS_POLICIES.includes(policy as string)) {
    errs.push({
      field: `${path}.dnsPolicy`,
      type: 'Unsupported',
      value: policy,
      detail: `supported values: ${DNS_POLICIES.map((p) => `"${p}"`).join(', ')}`,
    });
  }
  if (policy === 'None' && !isObj(fields.dnsConfig)) {
    errs.push({
      field: `${path}.dnsConfig`,
      type: 'Required',
      detail: 'a dnsPolicy of None needs a dnsConfig',
    });
  }
  return errs;
}

function validateResources(resources: Obj, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const requests = isObj(resources.requests) ? resources.requests : {};
  const limits = isObj(resources.limits) ? resources.limits : {};
  for (const [kind, map] of [
    ['requests', requests],
    ['limits', limits],
  ] as const) {
    for (const name of Object.keys(map)) {
      if (!isResourceName(name)) {
        errs.push({
          field: `${path}.${kind}[${name}]`,
          type: 'Invalid',
          value: name,
          detail:
            'must be cpu, memory, ephemeral-storage, hugepages-<size> or a name with a domain (example.com/gpu)',
        });
      }
    }
  }
  for (const [name, request] of Object.entries(requests)) {
    const limit = limits[name];
    if (!isOvercommitAllowed(name)) {
      errs.push(...exactRequestErrors(name, request, limit, path));
      continue;
    }
    if (limit === undefined) continue;
    const r = parseQuantity(request as string);
    const l = parseQuantity(limit as string);
    // Quantities that do not parse are reported by validation.ts.
    if (r === undefined || l === undefined || r <= l) continue;
    errs.push({
      field: `${path}.requests[${name}]`,
      type: 'Invalid',
      value: request,
      detail: `must not exceed the ${name} limit (${String(limit)})`,
    });
  }
  for (const [kind, map] of [
    ['requests', requests],
    ['limits', limits],
  ] as const) {
    for (const [name, value] of Object.entries(map)) {
      const q = parseQuantity(value as string);
      if (!isExtendedResource(name) || q === undefined || Number.isInteger(q)) continue;
      errs.push({
        field: `${path}.${kind}[${name}]`,
        type: 'Invalid',
        value,
        detail: 'must be an integer',
      });
    }
  }
  return errs;
}

/**
 * Extended resources (a name with a domain: example.com/gpu) and hugepages cannot be
 * overcommitted: as in Kubernetes, a request needs a limit, and must equal it.
 */
function exactRequestErrors(
  name: string,
  request: unknown,
  limit: unknown,
  path: string,
): FieldError[] {
  if (limit === undefined) {
    return [
      {
        field: `${path}.limits[${name}]`,
        type: 'Required',
        detail: 'Limit must be set for non overcommitable resources',
      },
    ];
  }
  const r = parseQuantity(request as string);
  const l = parseQuantity(limit as string);
  if (r === undefined || l === undefined || r === l) return [];
  return [
    {
      field: `${path}.requests[${name}]`,
      type: 'Invalid',
      value: request,
      detail: `must be equal to ${name} limit of ${String(limit)}`,
    },
  ];
}

function isExtendedResource(name: string): boolean {
  return name.includes('/') && isResourceName(name);
}

function isOvercommitAllowed(name: string): boolean {
  return !isExtendedResource(name) && !name.startsWith('hugepages-');
}

function isResourceName(name: string): boolean {
  if (STANDARD_RESOURCES.has(name) || /^hugepages-[0-9]+[A-Za-z]*$/.test(name)) return true;
  const slash = name.indexOf('/');
  if (slash <= 0) return false;
  const domain = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  return (
    domain.length <= 253 &&
    DNS_SUBDOMAIN.test(domain) &&
    rest.length <= 63 &&
    RESOURCE_NAME.test(rest) &&
    !domain.endsWith('kubernetes.io')
  );
}

function validatePortNames(ports: unknown, path: string): FieldError[] {
  if (!Array.isArray(ports)) return [];
  const errs: FieldError[] = [];
  const seen = new Set<string>();
  ports.forEach((p: unknown, i) => {
    const name = isObj(p) ? p.name : undefined;
    if (name === undefined || name === '') return;
    const at = `${path}[${i}].name`;
    if (typeof name !== 'string' || portNameProblem(name) !== undefined) {
      errs.push({
        field: at,
        type: 'Invalid',
        value: name,
        detail:
          'must be at most 15 lower-case letters, digits and inner single dashes, with a letter',
      });
    } else if (seen.has(name)) {
      errs.push({ field: at, type: 'Duplicate', value: name });
    } else seen.add(name);
  });
  return errs;
}

/** runAsUser, runAsGroup and (for a pod) fsGroup and supplementalGroups: 0 to 2^31-1. */
function validateIds(security: Obj, path: string, pod: boolean): FieldError[] {
  const errs: FieldError[] = [];
  const check = (value: unknown, at: string) => {
    if (value === undefined || value === null) return;
    if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > MAX_ID) {
      errs.push({
        field: at,
        type: 'Invalid',
        value,
        detail: `must be between 0 and ${MAX_ID}, inclusive`,
      });
    }
  };
  check(security.runAsUser, `${path}.runAsUser`);
  check(security.runAsGroup, `${path}.runAsGroup`);
  if (pod) {
    check(security.fsGroup, `${path}.fsGroup`);
    const groups = security.supplementalGroups;
    if (Array.isArray(groups)) {
      groups.forEach((g, i) => check(g, `${path}.supplementalGroups[${i}]`));
    }
  }
  return errs;
}
