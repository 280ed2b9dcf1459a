import { decodeBase64 } from '../api/config.js';
import { referencedObjects } from '../api/pod-references.js';
import { parseQuantity } from '../api/quantity.js';
import type { ConfigMap, Container, Pod, Secret } from '../api/types.js';
import type { Service } from '../proxy/types.js';

/**
 * A container's environment, computed the way kubelet computes it: `envFrom` sources in
 * order, then `env` entries, each value expanded with `$(VAR)` against the variables
 * defined before it. Pure functions over the pod and the objects it refers to; the caller
 * supplies lookups. Messages name objects and keys, never a value.
 */

/** Reads ConfigMaps and Secrets, e.g. from the agent's informer caches. */
export interface ConfigSource {
  configMap(namespace: string, name: string): ConfigMap | undefined;
  secret(namespace: string, name: string): Secret | undefined;
}

/** What the agent knows about where the pod runs, for fieldRef and resourceFieldRef. */
export interface EnvContext {
  source: ConfigSource;
  /** The sandbox's address; the API object may not carry it yet when containers start. */
  podIP?: string;
  hostIP?: string;
  /** The node's allocatable resources, the value of a limit the container lacks. */
  allocatable?: { cpu?: string; memory?: string; 'ephemeral-storage'?: string };
  /**
   * The Services of `namespace` and the `kubernetes` Service of `default` (more do no
   * harm), for the Service variables (see serviceEnv).
   */
  services?: (namespace: string) => readonly Service[];
}

/** A reference that cannot be resolved: the container waits with CreateContainerConfigError. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface EnvResult {
  env: { name: string; value: string }[];
  /** Event-worthy notes, e.g. envFrom keys skipped as invalid variable names. */
  warnings: string[];
}

const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/** Whether `name` is a valid environment variable name (Kubernetes' C identifier rule). */
export function isEnvVarName(name: string): boolean {
  return ENV_NAME.test(name);
}

/**
 * Names an `env` entry may have: printable ASCII without `=`, Kubernetes' relaxed rule. The
 * API server does not check them yet; a NUL byte in one would make the runtime fail with
 * an error that quotes the variable, value and all.
 */
const ENTRY_NAME = /^[\x20-\x3c\x3e-\x7e]+$/;

/**
 * Expands `$(NAME)` in `input` with `lookup`, as Kubernetes does: `$$` is a literal `$`,
 * an unknown or unterminated reference is left as written, any other `$` stays.
 */
export function expand(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  let i = 0;
  while (i < input.length) {
    const ch = input[i];
    if (ch !== '$' || i + 1 >= input.length) {
      out += ch;
      i++;
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close < 0) {
        out += '$(';
        i += 2;
        continue;
      }
      const name = input.slice(i + 2, close);
      out += lookup(name) ?? `$(${name})`;
      i = close + 1;
    } else {
      out += `$${next}`;
      i += 2;
    }
  }
  return out;
}

/** Computes a container's environment; throws ConfigError for a missing required reference. */
export function resolveEnv(pod: Pod, c: Container, ctx: EnvContext): EnvResult {
  const vars = new Map<string, string>();
  const warnings: string[] = [];
  const services = serviceEnv(pod, ctx.services?.(pod.metadata.namespace ?? 'default') ?? []);
  for (const from of asList(c.envFrom)) addEnvFrom(pod, from, ctx.source, vars, warnings);
  for (const e of c.env ?? []) {
    if (!ENTRY_NAME.test(e.name)) {
      throw new ConfigError(`env ${JSON.stringify(e.name)}: not a valid environment variable name`);
    }
    const value = envValue(pod, c, e, ctx, vars, services);
    if (value !== undefined) vars.set(e.name, value);
  }
  // The container's own variables win over the Service ones, which come last.
  for (const [name, value] of services) if (!vars.has(name)) vars.set(name, value);
  // The runtime would refuse it with an error that quotes the value, a Secret's perhaps.
  for (const [name, value] of vars) {
    if (value.includes('\0')) {
      throw new ConfigError(`env ${name}: its value holds a NUL byte, which no environment can`);
    }
  }
  return { env: [...vars].map(([name, value]) => ({ name, value })), warnings };
}

function asList(v: unknown): any[] {
  return Array.isArray(v) ? v : [];
}

function addEnvFrom(
  pod: Pod,
  from: any,
  source: ConfigSource,
  vars: Map<string, string>,
  warnings: string[],
): void {
  const ns = pod.metadata.namespace ?? 'default';
  const prefix = typeof from?.prefix === 'string' ? from.prefix : '';
  let values: Map<string, string> | undefined;
  let what: string;
  if (from?.configMapRef) {
    const ref = from.configMapRef;
    what = `configMap ${ns}/${ref.name}`;
    values = configMapValues(source, ns, ref.name, ref.optional === true);
  } else if (from?.secretRef) {
    const ref = from.secretRef;
    what = `secret ${ns}/${ref.name}`;
    values = secretValues(source, ns, ref.name, ref.optional === true);
  } else throw new ConfigError('envFrom entry must name a configMapRef or a secretRef');
  if (!values) return;
  const invalid: string[] = [];
  for (const [key, value] of values) {
    const name = prefix + key;
    if (isEnvVarName(name)) vars.set(name, value);
    else invalid.push(name);
  }
  if (invalid.length > 0) {
    warnings.push(
      `Keys [${invalid.sort().join(', ')}] from the EnvFrom ${what} were skipped since they ` +
        'are considered invalid environment variable names.',
    );
  }
}

function configMapValues(
  source: ConfigSource,
  ns: string,
  name: string,
  optional: boolean,
): Map<string, string> | undefined {
  const cm = source.configMap(ns, name);
  if (!cm) {
    if (optional) return undefined;
    throw new ConfigError(`configmap "${name}" not found`);
  }
  return new Map(Object.entries(cm.data ?? {}));
}

function secretValues(
  source: ConfigSource,
  ns: string,
  name: string,
  optional: boolean,
): Map<string, string> | undefined {
  const secret = source.secret(ns, name);
  if (!secret) {
    if (optional) return undefined;
    throw new ConfigError(`secret "${name}" not found`);
  }
  const out = new Map<string, string>();
  for (const [key, b64] of Object.entries(secret.data ?? {})) {
    out.set(key, decodeBase64(b64)?.toString('utf8') ?? '');
  }
  return out;
}

/**
 * The values of every Secret the pod refers to that the source has: what messages about the
 * pod's containers must not show (see hideValues), wherever the pod put them.
 */
export function referencedSecretValues(pod: Pod, source: ConfigSource): string[] {
  const values: string[] = [];
  for (const ref of referencedObjects(pod)) {
    const [kind, ns, name] = ref.split('/');
    if (kind !== 'Secret') continue;
    for (const b64 of Object.values(source.secret(ns, name)?.data ?? {}))
      values.push(decodeBase64(b64)?.toString('utf8') ?? '');
  }
  return values;
}

/** One env entry's value; undefined when an optional source is missing (the var is unset). */
function envValue(
  pod: Pod,
  c: Container,
  e: { name: string; value?: string; valueFrom?: any },
  ctx: EnvContext,
  vars: Map<string, string>,
  services: Map<string, string>,
): string | undefined {
  const from = e.valueFrom;
  if (from === undefined || from === null) {
    return expand(e.value ?? '', (name) => vars.get(name) ?? services.get(name));
  }
  if (from.fieldRef) return fieldRefValue(pod, from.fieldRef.fieldPath, ctx);
  if (from.resourceFieldRef) return resourceFieldValue(pod, c, from.resourceFieldRef, ctx);
  const ns = pod.metadata.namespace ?? 'default';
  if (from.configMapKeyRef) {
    const ref = from.configMapKeyRef;
    const values = configMapValues(ctx.source, ns, ref.name, ref.optional === true);
    return keyValue(values, ref, `ConfigMap ${ns}/${ref.name}`);
  }
  if (from.secretKeyRef) {
    const ref = from.secretKeyRef;
    const values = secretValues(ctx.source, ns, ref.name, ref.optional === true);
    return keyValue(values, ref, `Secret ${ns}/${ref.name}`);
  }
  throw new ConfigError(`env ${e.name}: valueFrom names no source the agent knows`);
}

function keyValue(
  values: Map<string, string> | undefined,
  ref: { key: string; optional?: boolean },
  what: string,
): string | undefined {
  if (!values) return undefined;
  const value = values.get(ref.key);
  if (value !== undefined || ref.optional === true) return value;
  throw new ConfigError(`couldn't find key ${ref.key} in ${what}`);
}

/**
 * The Service variables kubelet gives a container, Docker links' names included: for the
 * `kubernetes` Service of the default namespace always, and, unless the pod turns
 * `enableServiceLinks` off, for every Service of the pod's namespace. Only Services with a
 * cluster IP count (not headless, not ExternalName). A Service `my-db` with port 5432
 * named `pg` gives MY_DB_SERVICE_HOST, MY_DB_SERVICE_PORT, MY_DB_SERVICE_PORT_PG,
 * MY_DB_PORT (tcp://IP:5432, its first port) and, per port, MY_DB_PORT_5432_TCP with its
 * _PROTO, _PORT and _ADDR.
 */
export function serviceEnv(pod: Pod, services: readonly Service[]): Map<string, string> {
  const ns = pod.metadata.namespace ?? 'default';
  const links = pod.spec?.enableServiceLinks !== false;
  const chosen = new Map<string, Service>();
  for (const svc of services) {
    const name = svc.metadata?.name;
    const ip = svc.spec?.clusterIP;
    if (!name || !ip || ip === 'None' || !(svc.spec?.ports?.length ?? 0)) continue;
    const master = svc.metadata?.namespace === 'default' && name === 'kubernetes';
    if ((master && !chosen.has(name)) || (links && svc.metadata?.namespace === ns)) {
      chosen.set(name, svc);
    }
  }
  const out = new Map<string, string>();
  for (const [name, svc] of [...chosen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const prefix = linkName(name);
    const ip = svc.spec!.clusterIP!;
    const ports = svc.spec!.ports!;
    out.set(`${prefix}_SERVICE_HOST`, ip);
    out.set(`${prefix}_SERVICE_PORT`, String(ports[0].port));
    for (const p of ports) {
      if (p.name) out.set(`${prefix}_SERVICE_PORT_${linkName(p.name)}`, String(p.port));
    }
    const host = ip.includes(':') ? `[${ip}]` : ip;
    ports.forEach((p, i) => {
      const proto = (p.protocol ?? 'TCP').toLowerCase();
      const url = `${proto}://${host}:${p.port}`;
      if (i === 0) out.set(`${prefix}_PORT`, url);
      const each = `${prefix}_PORT_${p.port}_${proto.toUpperCase()}`;
      out.set(each, url);
      out.set(`${each}_PROTO`, proto);
      out.set(`${each}_PORT`, String(p.port));
      out.set(`${each}_ADDR`, ip);
    });
  }
  return out;
}

/** A Service or port name as a variable name's part: upper case, dashes as underscores. */
function linkName(name: string): string {
  return name.toUpperCase().replace(/-/g, '_');
}

const MAP_FIELD = /^metadata\.(labels|annotations)\['(.*)'\]$/;

/** The value of a downward API field path, as kubelet supports it for env. */
export function fieldRefValue(pod: Pod, fieldPath: unknown, ctx: EnvContext): string {
  const m = typeof fieldPath === 'string' ? MAP_FIELD.exec(fieldPath) : null;
  if (m) {
    const map = m[1] === 'labels' ? pod.metadata.labels : pod.metadata.annotations;
    return map?.[m[2]] ?? '';
  }
  const status = pod.status ?? {};
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata.name ?? '';
    case 'metadata.namespace':
      return pod.metadata.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata.uid ?? '';
    case 'spec.nodeName':
      return pod.spec.nodeName ?? '';
    case 'spec.serviceAccountName':
      return (pod.spec.serviceAccountName as string | undefined) ?? '';
    // Pods and nodes here have one address each, so the lists hold just that one.
    case 'status.podIP':
    case 'status.podIPs':
      return ctx.podIP ?? status.podIP ?? '';
    case 'status.hostIP':
    case 'status.hostIPs':
      return ctx.hostIP ?? status.hostIP ?? '';
    default:
      throw new ConfigError(`unsupported fieldRef fieldPath: ${String(fieldPath)}`);
  }
}

const FIELD_RESOURCES = ['cpu', 'memory', 'ephemeral-storage'];

/**
 * The value of a resourceFieldRef: a limit falls back to the node's allocatable, as in
 * Kubernetes, and a request to the limit the container declares (as API defaulting would
 * have set it), then to 0: a container without requests asked for nothing, whatever the
 * node holds. CPU is rounded up to whole divisors in millicores (so a divisor is at least
 * 1m), memory and storage to whole divisors of bytes. A divisor of 0 counts as 1.
 */
export function resourceFieldValue(
  pod: Pod,
  c: Container,
  ref: { containerName?: string; resource?: string; divisor?: string | number },
  ctx: EnvContext,
): string {
  const target = ref.containerName
    ? [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].find(
        (x) => x.name === ref.containerName,
      )
    : c;
  if (!target) throw new ConfigError(`resourceFieldRef: no container "${ref.containerName}"`);
  const [kind, name] = (ref.resource ?? '').split('.');
  if ((kind !== 'limits' && kind !== 'requests') || !FIELD_RESOURCES.includes(name)) {
    throw new ConfigError(`unsupported resourceFieldRef resource: ${ref.resource}`);
  }
  const declared = target.resources?.limits?.[name];
  const allocatable = ctx.allocatable?.[name as keyof typeof ctx.allocatable];
  const text =
    kind === 'limits'
      ? (declared ?? allocatable)
      : (target.resources?.requests?.[name] ?? declared);
  const value = text === undefined ? 0 : parseQuantity(text);
  // A zero divisor means "unset", as in Kubernetes: typed clients serialize the empty
  // Quantity as "0" (kubectl rollout undo sends the template back that way).
  const given = parseQuantity(ref.divisor ?? '1');
  const divisor = given === 0 ? 1 : given;
  const tooSmall = name === 'cpu' && divisor !== undefined && Math.round(divisor * 1000) <= 0;
  if (value === undefined || divisor === undefined || divisor <= 0 || tooSmall) {
    throw new ConfigError(`resourceFieldRef ${ref.resource}: invalid quantity or divisor`);
  }
  if (name === 'cpu') {
    return String(Math.ceil(Math.round(value * 1000) / Math.round(divisor * 1000)));
  }
  return String(Math.ceil(value / divisor));
}
