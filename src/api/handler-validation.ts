import type { FieldError } from './errors.js';
import { isObj, type Obj } from './json-shape.js';
import { isPortNumber, portNameProblem, PORT_RANGE } from './service.js';
import type { Container } from './types.js';
import { keyedFieldPathErrors, resourceFieldRefErrors } from './volume-validation.js';

/**
 * Validation of what a container asks the node agent to run or look up for it: probes,
 * lifecycle hooks and the sources of env values, by Kubernetes' rules. Without these a
 * pod with a probe of no handler, or a secretKeyRef of no key, was stored and then
 * failed on the node (a container killed for its liveness probe over and over) instead
 * of being refused with the field to fix.
 */

const PROBE_HANDLERS = ['exec', 'httpGet', 'tcpSocket', 'grpc'] as const;
const HOOK_HANDLERS = ['exec', 'httpGet', 'tcpSocket', 'sleep'] as const;
const PROBE_COUNTS = [
  'initialDelaySeconds',
  'timeoutSeconds',
  'periodSeconds',
  'successThreshold',
  'failureThreshold',
] as const;
const NON_NEGATIVE = 'must be greater than or equal to 0';
/** An HTTP header name (RFC 7230 token). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A ConfigMap or Secret key. */
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
/** The fields an env fieldRef may name, besides a label or an annotation by its key. */
const FIELD_PATHS = new Set([
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'spec.nodeName',
  'spec.serviceAccountName',
  'status.hostIP',
  'status.hostIPs',
  'status.podIP',
  'status.podIPs',
]);

/**
 * The errors of `c`'s probes, lifecycle hooks and env sources. `grace` is the pod's
 * terminationGracePeriodSeconds (a sleep hook may not outlast it); `init` says `c` is an
 * init container, which may have neither probes nor hooks.
 */
export function validateHandlers(
  c: Container,
  path: string,
  grace: number | undefined,
  init: boolean,
): FieldError[] {
  const errs: FieldError[] = [];
  const fields = c as unknown as Obj;
  for (const kind of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
    if (fields[kind] === undefined || fields[kind] === null) continue;
    if (init) {
      errs.push({ field: `${path}.${kind}`, type: 'Forbidden', detail: INIT_DETAIL });
      continue;
    }
    errs.push(...validateProbe(fields[kind], `${path}.${kind}`, kind));
  }
  const lifecycle = fields.lifecycle;
  if (lifecycle !== undefined && lifecycle !== null) {
    if (init) errs.push({ field: `${path}.lifecycle`, type: 'Forbidden', detail: INIT_DETAIL });
    else errs.push(...validateLifecycle(lifecycle, `${path}.lifecycle`, grace ?? 30));
  }
  errs.push(...restartPolicyErrors(fields.restartPolicy, `${path}.restartPolicy`, init));
  const env = Array.isArray(c.env) ? c.env : [];
  env.forEach((e, i) => errs.push(...validateEnvSource(e, `${path}.env[${i}]`)));
  return errs;
}

/**
 * A container's own restartPolicy. Kubernetes takes it only on an init container, and only
 * Always, which makes that container a sidecar: started in turn with the init containers,
 * then kept running beside the app containers until they end. The agent does not run
 * sidecars yet (it would wait for such a container to exit, and the pod would stay in its
 * init phase for ever), so that is refused too, naming the field.
 */
function restartPolicyErrors(policy: unknown, path: string, init: boolean): FieldError[] {
  if (policy === undefined || policy === null) return [];
  if (!init) {
    return [{ field: path, type: 'Forbidden', detail: 'may not be set for non-init containers' }];
  }
  if (policy !== 'Always') {
    return [
      { field: path, type: 'Unsupported', value: policy, detail: 'supported values: "Always"' },
    ];
  }
  return [
    {
      field: path,
      type: 'Forbidden',
      detail:
        'sidecar containers (an init container with restartPolicy Always) are not supported yet',
    },
  ];
}

const INIT_DETAIL = 'may not be set for init containers';

function validateProbe(probe: unknown, path: string, kind: string): FieldError[] {
  if (!isObj(probe))
    return [{ field: path, type: 'Invalid', value: probe, detail: 'must be an object' }];
  const errs = validateHandler(probe, path, PROBE_HANDLERS);
  for (const key of PROBE_COUNTS) {
    const v = probe[key];
    if (v !== undefined && (!Number.isInteger(v) || (v as number) < 0)) {
      errs.push({ field: `${path}.${key}`, type: 'Invalid', value: v, detail: NON_NEGATIVE });
    }
  }
  const success = probe.successThreshold;
  if (kind !== 'readinessProbe' && Number.isInteger(success) && (success as number) > 1) {
    errs.push({
      field: `${path}.successThreshold`,
      type: 'Invalid',
      value: success,
      detail: 'must be 1',
    });
  }
  const grace = probe.terminationGracePeriodSeconds;
  if (grace !== undefined && grace !== null) {
    if (kind === 'readinessProbe') {
      errs.push({
        field: `${path}.terminationGracePeriodSeconds`,
        type: 'Forbidden',
        detail: 'may not be set for readiness probes',
      });
    } else if (!Number.isInteger(grace) || (grace as number) < 1) {
      errs.push({
        field: `${path}.terminationGracePeriodSeconds`,
        type: 'Invalid',
        value: grace,
        detail: 'must be greater than 0',
      });
    }
  }
  return errs;
}

function validateLifecycle(lifecycle: unknown, path: string, grace: number): FieldError[] {
  if (!isObj(lifecycle)) {
    return [{ field: path, type: 'Invalid', value: lifecycle, detail: 'must be an object' }];
  }
  const errs: FieldError[] = [];
  for (const hook of ['postStart', 'preStop'] as const) {
    const handler = lifecycle[hook];
    if (handler === undefined || handler === null) continue;
    if (!isObj(handler)) {
      errs.push({ field: `${path}.${hook}`, type: 'Invalid', value: handler });
      continue;
    }
    errs.push(...validateHandler(handler, `${path}.${hook}`, HOOK_HANDLERS));
    const sleep = handler.sleep;
    if (isObj(sleep)) {
      const seconds = sleep.seconds;
      if (!Number.isInteger(seconds) || (seconds as number) < 0 || (seconds as number) > grace) {
        errs.push({
          field: `${path}.${hook}.sleep.seconds`,
          type: 'Invalid',
          value: seconds,
          detail: `must be between 0 and the pod's terminationGracePeriodSeconds (${grace})`,
        });
      }
    }
  }
  return errs;
}

/** Exactly one handler of `allowed`, and that handler's own fields. */
function validateHandler(handler: Obj, path: string, allowed: readonly string[]): FieldError[] {
  const present = allowed.filter((name) => handler[name] !== undefined && handler[name] !== null);
  if (present.length === 0) {
    return [
      {
        field: path,
        type: 'Required',
        detail: `must specify a handler type (one of ${allowed.join(', ')})`,
      },
    ];
  }
  const errs: FieldError[] = present.slice(1).map((name) => ({
    field: `${path}.${name}`,
    type: 'Forbidden',
    detail: 'may not specify more than 1 handler type',
  }));
  const name = present[0];
  const action = handler[name];
  const at = `${path}.${name}`;
  if (!isObj(action)) return [...errs, { field: at, type: 'Invalid', value: action }];
  if (name === 'exec') errs.push(...validateExec(action, at));
  if (name === 'httpGet') errs.push(...validateHttpGet(action, at));
  if (name === 'tcpSocket') errs.push(...validatePort(action.port, `${at}.port`, true));
  if (name === 'grpc') errs.push(...validatePort(action.port, `${at}.port`, false));
  return errs;
}

function validateExec(exec: Obj, path: string): FieldError[] {
  const command = exec.command;
  if (command === undefined || (Array.isArray(command) && command.length === 0)) {
    return [{ field: `${path}.command`, type: 'Required' }];
  }
  if (!Array.isArray(command) || command.some((s) => typeof s !== 'string')) {
    return [
      {
        field: `${path}.command`,
        type: 'Invalid',
        value: command,
        detail: 'must be a list of strings',
      },
    ];
  }
  return [];
}

function validateHttpGet(get: Obj, path: string): FieldError[] {
  const errs = validatePort(get.port, `${path}.port`, true);
  const scheme = get.scheme;
  if (scheme !== undefined && scheme !== 'HTTP' && scheme !== 'HTTPS') {
    errs.push({
      field: `${path}.scheme`,
      type: 'Unsupported',
      value: scheme,
      detail: 'supported values: "HTTP", "HTTPS"',
    });
  }
  const headers = get.httpHeaders;
  (Array.isArray(headers) ? headers : []).forEach((h: unknown, i) => {
    const name = isObj(h) ? h.name : undefined;
    if (typeof name !== 'string' || !HEADER_NAME.test(name)) {
      errs.push({
        field: `${path}.httpHeaders[${i}].name`,
        type: 'Invalid',
        value: name,
        detail: 'must be a valid HTTP header name',
      });
    }
  });
  return errs;
}

/** A port number, or (where `named`) the name of one of the container's ports. */
function validatePort(port: unknown, path: string, named: boolean): FieldError[] {
  if (port === undefined || port === null || port === '')
    return [{ field: path, type: 'Required' }];
  if (typeof port === 'number') {
    if (isPortNumber(port)) return [];
    return [{ field: path, type: 'Invalid', value: port, detail: PORT_RANGE }];
  }
  if (named && typeof port === 'string') {
    if (/^\d+$/.test(port)) return validatePort(Number(port), path, false);
    if (portNameProblem(port) === undefined) return [];
    return [
      {
        field: path,
        type: 'Invalid',
        value: port,
        detail:
          'must be a port number or a port name of at most 15 lower-case letters, digits and inner dashes, with a letter',
      },
    ];
  }
  return [{ field: path, type: 'Invalid', value: port, detail: PORT_RANGE }];
}

function validateEnvSource(e: unknown, path: string): FieldError[] {
  if (!isObj(e) || e.valueFrom === undefined || e.valueFrom === null) return [];
  const from = e.valueFrom;
  if (!isObj(from)) return [{ field: `${path}.valueFrom`, type: 'Invalid', value: from }];
  const errs: FieldError[] = [];
  if (typeof e.value === 'string' && e.value !== '') {
    // The value itself is not shown: it may be what the user meant to keep in a Secret.
    errs.push({
      field: `${path}.valueFrom`,
      type: 'Forbidden',
      detail: 'may not be specified when `value` is not empty',
    });
  }
  const sources = ['fieldRef', 'resourceFieldRef', 'configMapKeyRef', 'secretKeyRef'];
  const present = sources.filter((s) => from[s] !== undefined && from[s] !== null);
  if (present.length !== 1) {
    errs.push({
      field: `${path}.valueFrom`,
      type: 'Invalid',
      detail: `must specify exactly one of: ${sources.map((s) => `\`${s}\``).join(', ')}`,
    });
    return errs;
  }
  const source = present[0];
  const ref = from[source];
  const at = `${path}.valueFrom.${source}`;
  if (!isObj(ref)) return [...errs, { field: at, type: 'Invalid', value: ref }];
  if (source === 'fieldRef') errs.push(...validateFieldPath(ref.fieldPath, `${at}.fieldPath`));
  if (source === 'resourceFieldRef') errs.push(...resourceFieldRefErrors(at, ref, false));
  if (source === 'configMapKeyRef' || source === 'secretKeyRef') {
    if (typeof ref.name !== 'string' || ref.name === '') {
      errs.push({ field: `${at}.name`, type: 'Required' });
    }
    errs.push(...validateKey(ref.key, `${at}.key`));
  }
  return errs;
}

function validateFieldPath(fieldPath: unknown, path: string): FieldError[] {
  if (typeof fieldPath !== 'string' || fieldPath === '') return [{ field: path, type: 'Required' }];
  if (FIELD_PATHS.has(fieldPath)) return [];
  const keyed = keyedFieldPathErrors(fieldPath, path);
  if (keyed) return keyed;
  const supported = [...FIELD_PATHS];
  return [
    {
      field: path,
      type: 'Unsupported',
      value: fieldPath,
      detail: `supported values: ${supported.map((p) => `"${p}"`).join(', ')}, and metadata.labels['KEY'] or metadata.annotations['KEY']`,
    },
  ];
}

function validateKey(key: unknown, path: string): FieldError[] {
  if (typeof key !== 'string' || key === '') return [{ field: path, type: 'Required' }];
  if (key.length <= 253 && CONFIG_KEY.test(key) && key !== '.' && key !== '..') return [];
  return [
    {
      field: path,
      type: 'Invalid',
      value: key,
      detail: "a valid key must consist of alphanumeric characters, '-', '_' or '.'",
    },
  ];
}
