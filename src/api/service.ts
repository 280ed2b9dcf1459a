import type { FieldError } from './errors.js';
import type { KObject, ObjectMeta } from './types.js';
import { deepEqual } from '../util/equal.js';
import { isDns1123Label, isDns1123Subdomain, validateLabels } from './validation.js';

/**
 * Service (v1), Endpoints (v1) and EndpointSlice (discovery.k8s.io/v1): their shapes,
 * defaults and validation, as Kubernetes has them. The node proxy and cluster DNS read
 * these objects, so field names and values follow Kubernetes exactly.
 *
 * Not built: LoadBalancer services (refused at validation), dual-stack
 * (IPv4 only), externalIPs, and topology hints on slices.
 */

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface ServicePort {
  name?: string;
  protocol?: Protocol;
  appProtocol?: string;
  port: number;
  /** A port number or the name of a container port; defaults to `port`. */
  targetPort?: number | string;
  nodePort?: number;
}

export interface ServiceSpec {
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  ports?: ServicePort[];
  selector?: Record<string, string>;
  /** An IPv4 address, 'None' for a headless service, or absent to have one allocated. */
  clusterIP?: string;
  clusterIPs?: string[];
  sessionAffinity?: 'None' | 'ClientIP';
  sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
  internalTrafficPolicy?: 'Cluster' | 'Local';
  externalTrafficPolicy?: 'Cluster' | 'Local';
  ipFamilies?: string[];
  ipFamilyPolicy?: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
  publishNotReadyAddresses?: boolean;
  externalIPs?: string[];
  externalName?: string;
}

export interface Service extends KObject {
  spec: ServiceSpec;
}

export interface ObjectReference {
  kind: string;
  namespace?: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
}

export interface EndpointAddress {
  ip: string;
  hostname?: string;
  nodeName?: string;
  targetRef?: ObjectReference;
}

export interface EndpointPort {
  name?: string;
  port: number;
  protocol?: Protocol;
  appProtocol?: string;
}

export interface EndpointSubset {
  addresses?: EndpointAddress[];
  notReadyAddresses?: EndpointAddress[];
  ports?: EndpointPort[];
}

export interface Endpoints extends KObject {
  subsets?: EndpointSubset[];
}

export interface SliceEndpoint {
  addresses: string[];
  hostname?: string;
  conditions: { ready?: boolean; serving?: boolean; terminating?: boolean };
  nodeName?: string;
  targetRef?: ObjectReference;
}

export interface SlicePort {
  name?: string;
  port?: number;
  protocol?: Protocol;
  appProtocol?: string;
}

export interface EndpointSlice extends KObject {
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints: SliceEndpoint[] | null;
  ports?: SlicePort[] | null;
  metadata: ObjectMeta;
}

/** Label on an EndpointSlice naming the Service it belongs to. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
/** Label on an EndpointSlice naming the controller that manages it. */
export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
/** Label on the endpoints of a headless service. */
export const HEADLESS_LABEL = 'service.kubernetes.io/headless';

export const PROTOCOLS: Protocol[] = ['SCTP', 'TCP', 'UDP'];
/** The service types flyCes serves; LoadBalancer is not built. */
export const SERVICE_TYPES = ['ClusterIP', 'ExternalName', 'NodePort'];

/** An ExternalName service is a DNS alias: no cluster IP, no endpoints. */
export function isExternalName(svc: Service | undefined): boolean {
  return svc?.spec?.type === 'ExternalName';
}

/** Fields only services with a cluster IP have. */
const CLUSTER_IP_FIELDS = ['ipFamilies', 'ipFamilyPolicy', 'internalTrafficPolicy'] as const;

/** A headless service (`clusterIP: None`) gets no virtual IP; DNS names its pods. */
export function isHeadless(svc: Service): boolean {
  return svc.spec?.clusterIP === 'None';
}

/** Whether the service's ports take node ports. */
export function needsNodePorts(svc: Service): boolean {
  return svc.spec?.type === 'NodePort' || svc.spec?.type === 'LoadBalancer';
}

// ---- defaults ----

/** Fills in what Kubernetes fills in for a Service a client left out. */
export function defaultService(obj: KObject): void {
  const spec = obj.spec as ServiceSpec | undefined;
  if (!spec || typeof spec !== 'object') return;
  spec.type ??= 'ClusterIP';
  spec.sessionAffinity ??= 'None';
  if (spec.sessionAffinity === 'ClientIP') {
    spec.sessionAffinityConfig ??= {};
    spec.sessionAffinityConfig.clientIP ??= {};
    spec.sessionAffinityConfig.clientIP.timeoutSeconds ??= 10800;
  }
  if (spec.type !== 'ExternalName') {
    spec.internalTrafficPolicy ??= 'Cluster';
    spec.ipFamilies ??= ['IPv4'];
    spec.ipFamilyPolicy ??= 'SingleStack';
  }
  if (needsNodePorts(obj as Service)) spec.externalTrafficPolicy ??= 'Cluster';
  if (Array.isArray(spec.ports)) {
    for (const p of spec.ports) {
      if (!p || typeof p !== 'object') continue;
      p.protocol ??= 'TCP';
      if (p.targetPort === undefined || p.targetPort === 0 || p.targetPort === '') {
        p.targetPort = p.port;
      }
    }
  }
  // clusterIPs mirrors clusterIP; whichever the client gave fills the other.
  if (spec.clusterIP && !spec.clusterIPs) spec.clusterIPs = [spec.clusterIP];
  else if (!spec.clusterIP && Array.isArray(spec.clusterIPs) && spec.clusterIPs.length > 0) {
    spec.clusterIP = spec.clusterIPs[0];
  }
  obj.status ??= { loadBalancer: {} };
}

/**
 * Before an update is validated: values the server allocated (clusterIP, node ports) are
 * kept when the client's copy leaves them out, as `kubectl apply` or `replace` of the
 * original manifest do; node ports are dropped when the new type takes none.
 */
export function prepareServiceUpdate(next: KObject, current: KObject): void {
  const spec = next.spec as ServiceSpec | undefined;
  const old = current.spec as ServiceSpec | undefined;
  if (!spec || typeof spec !== 'object' || !old) return;
  if (spec.type === 'ExternalName') {
    // Turning into an alias drops what only a cluster IP needs, unless the client changed it.
    if (old.type !== 'ExternalName') {
      if (spec.clusterIP === old.clusterIP) delete spec.clusterIP;
      if (deepEqual(spec.clusterIPs, old.clusterIPs)) delete spec.clusterIPs;
      for (const f of CLUSTER_IP_FIELDS) if (deepEqual(spec[f], old[f])) delete spec[f];
    }
  } else if (!spec.clusterIP && !(Array.isArray(spec.clusterIPs) && spec.clusterIPs.length > 0)) {
    if (old.clusterIP) spec.clusterIP = old.clusterIP;
    if (old.clusterIPs) spec.clusterIPs = [...old.clusterIPs];
  }
  const type = spec.type ?? 'ClusterIP';
  const takesNodePorts = type === 'NodePort' || type === 'LoadBalancer';
  if (!takesNodePorts && spec.externalTrafficPolicy === old.externalTrafficPolicy) {
    delete spec.externalTrafficPolicy;
  }
  if (!Array.isArray(spec.ports)) return;
  for (const p of spec.ports) {
    if (!p || typeof p !== 'object') continue;
    const before = (old.ports ?? []).find(
      (o) => o.port === p.port && (o.protocol ?? 'TCP') === (p.protocol ?? 'TCP'),
    );
    if (takesNodePorts && !p.nodePort && before?.nodePort) p.nodePort = before.nodePort;
    if (!takesNodePorts && p.nodePort !== undefined && p.nodePort === before?.nodePort) {
      delete p.nodePort;
    }
  }
}

// ---- validation ----

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Whether the value is an IPv4 address in dotted-quad form. */
export function isIPv4(value: unknown): value is string {
  return typeof value === 'string' && IPV4.test(value);
}

/** What a port number outside 1-65535 is told (as Kubernetes words it). */
export const PORT_RANGE = 'must be between 1 and 65535, inclusive';

export function isPortNumber(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;
}

/** An IANA service name, as a named container port must be: `http`, `metrics-2`. */
export function portNameProblem(name: string): string | undefined {
  if (name.length > 15) return 'must be no more than 15 characters';
  if (!/^[-a-z0-9]+$/.test(name)) {
    return 'must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)';
  }
  if (name.includes('--')) return 'must not contain consecutive hyphens';
  if (!/[a-z]/.test(name)) return 'must contain at least one letter (a-z)';
  if (name.startsWith('-') || name.endsWith('-')) return 'must not begin or end with a hyphen';
  return undefined;
}

function unsupported(field: string, value: unknown, allowed: string[]): FieldError {
  const list = allowed.map((v) => JSON.stringify(v)).join(', ');
  return { field, type: 'Unsupported', value, detail: `supported values: ${list}` };
}

function validatePort(p: ServicePort, i: number, count: number, svc: Service): FieldError[] {
  const at = `spec.ports[${i}]`;
  if (!p || typeof p !== 'object') return [{ field: at, type: 'Invalid', value: p }];
  const errs: FieldError[] = [];
  if (p.name === undefined || p.name === '') {
    if (count > 1) errs.push({ field: `${at}.name`, type: 'Required' });
  } else if (typeof p.name !== 'string' || !isDns1123Label(p.name)) {
    errs.push({
      field: `${at}.name`,
      type: 'Invalid',
      value: p.name,
      detail:
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'" +
        ', and must start and end with an alphanumeric character',
    });
  }
  if (!isPortNumber(p.port)) {
    errs.push({ field: `${at}.port`, type: 'Invalid', value: p.port, detail: PORT_RANGE });
  }
  if (!PROTOCOLS.includes(p.protocol as Protocol)) {
    errs.push(unsupported(`${at}.protocol`, p.protocol, PROTOCOLS));
  }
  errs.push(...validateTargetPort(p.targetPort, `${at}.targetPort`));
  if (p.nodePort !== undefined && p.nodePort !== 0) {
    if (!needsNodePorts(svc)) {
      errs.push({
        field: `${at}.nodePort`,
        type: 'Forbidden',
        detail: `may not be used when \`type\` is '${svc.spec.type}'`,
      });
    } else if (!isPortNumber(p.nodePort)) {
      errs.push({
        field: `${at}.nodePort`,
        type: 'Invalid',
        value: p.nodePort,
        detail: PORT_RANGE,
      });
    }
  }
  return errs;
}

function validateTargetPort(target: unknown, field: string): FieldError[] {
  if (typeof target === 'number') {
    return isPortNumber(target)
      ? []
      : [{ field, type: 'Invalid', value: target, detail: PORT_RANGE }];
  }
  if (typeof target !== 'string') return [{ field, type: 'Invalid', value: target }];
  const problem = portNameProblem(target);
  return problem ? [{ field, type: 'Invalid', value: target, detail: problem }] : [];
}

/** Two ports may not share a name, a port and protocol, or a node port and protocol. */
function validatePortUniqueness(ports: ServicePort[]): FieldError[] {
  const errs: FieldError[] = [];
  const names = new Set<string>();
  const pairs = new Set<string>();
  const nodePorts = new Set<string>();
  ports.forEach((p, i) => {
    if (!p || typeof p !== 'object') return;
    if (p.name) {
      if (names.has(p.name)) {
        errs.push({ field: `spec.ports[${i}].name`, type: 'Duplicate', value: p.name });
      }
      names.add(p.name);
    }
    const pair = `${p.port}/${p.protocol}`;
    if (pairs.has(pair)) {
      errs.push({
        field: `spec.ports[${i}]`,
        type: 'Duplicate',
        value: { port: p.port, protocol: p.protocol },
      });
    }
    pairs.add(pair);
    if (!p.nodePort) return;
    const nodePair = `${p.nodePort}/${p.protocol}`;
    if (nodePorts.has(nodePair)) {
      errs.push({ field: `spec.ports[${i}].nodePort`, type: 'Duplicate', value: p.nodePort });
    }
    nodePorts.add(nodePair);
  });
  return errs;
}

function validateClusterIP(svc: Service): FieldError[] {
  const spec = svc.spec;
  const ip = spec.clusterIP;
  const errs: FieldError[] = [];
  if (ip !== undefined && ip !== '' && ip !== 'None' && !isIPv4(ip)) {
    errs.push({
      field: 'spec.clusterIP',
      type: 'Invalid',
      value: ip,
      detail: 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
    });
  }
  const ips = spec.clusterIPs;
  if (ips !== undefined && !Array.isArray(ips)) {
    errs.push({ field: 'spec.clusterIPs', type: 'Invalid', value: ips, detail: 'must be a list' });
  } else if (ips && ips.length > 1) {
    errs.push({
      field: 'spec.clusterIPs',
      type: 'Invalid',
      value: ips,
      detail: 'may specify no more than one IP for each IP family',
    });
  } else if (ips && ips.length === 1 && ips[0] !== (ip ?? '')) {
    errs.push({
      field: 'spec.clusterIPs[0]',
      type: 'Invalid',
      value: ips[0],
      detail: 'must match `clusterIP` if specified',
    });
  }
  if (ip === 'None' && needsNodePorts(svc)) {
    errs.push({
      field: 'spec.clusterIPs[0]',
      type: 'Invalid',
      value: ip,
      detail: `may not be set to 'None' for ${spec.type} services`,
    });
  }
  return errs;
}

function validatePolicies(svc: Service): FieldError[] {
  const spec = svc.spec;
  const errs: FieldError[] = [];
  if (!['None', 'ClientIP'].includes(spec.sessionAffinity as string)) {
    errs.push(unsupported('spec.sessionAffinity', spec.sessionAffinity, ['ClientIP', 'None']));
  }
  const timeout = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
  if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 1 || timeout > 86400)) {
    errs.push({
      field: 'spec.sessionAffinityConfig.clientIP.timeoutSeconds',
      type: 'Invalid',
      value: timeout,
      detail: 'must be greater than 0 and less than 86400',
    });
  }
  const internal = spec.internalTrafficPolicy;
  if (internal !== undefined && internal !== 'Cluster' && internal !== 'Local') {
    errs.push(unsupported('spec.internalTrafficPolicy', internal, ['Cluster', 'Local']));
  }
  const external = spec.externalTrafficPolicy;
  if (external !== undefined && !needsNodePorts(svc)) {
    errs.push({
      field: 'spec.externalTrafficPolicy',
      type: 'Invalid',
      value: external,
      detail: "may only be set for 'NodePort' and 'LoadBalancer' services",
    });
  } else if (external !== undefined && external !== 'Cluster' && external !== 'Local') {
    errs.push(unsupported('spec.externalTrafficPolicy', external, ['Cluster', 'Local']));
  }
  return errs;
}

function validateFamilies(spec: ServiceSpec): FieldError[] {
  const errs: FieldError[] = [];
  const families = spec.ipFamilies;
  if (families !== undefined && !Array.isArray(families)) {
    errs.push({ field: 'spec.ipFamilies', type: 'Invalid', value: families });
  } else {
    (families ?? []).forEach((f, i) => {
      if (f !== 'IPv4') errs.push(unsupported(`spec.ipFamilies[${i}]`, f, ['IPv4']));
    });
  }
  const policy = spec.ipFamilyPolicy;
  if (policy === 'RequireDualStack') {
    errs.push({
      field: 'spec.ipFamilyPolicy',
      type: 'Invalid',
      value: policy,
      detail: 'this cluster is not configured for dual-stack services',
    });
  } else if (policy !== undefined && policy !== 'SingleStack' && policy !== 'PreferDualStack') {
    const allowed = ['PreferDualStack', 'RequireDualStack', 'SingleStack'];
    errs.push(unsupported('spec.ipFamilyPolicy', policy, allowed));
  }
  return errs;
}

function validateExternalName(spec: ServiceSpec): FieldError[] {
  const errs: FieldError[] = [];
  const name = spec.externalName;
  if (!name) errs.push({ field: 'spec.externalName', type: 'Required' });
  else if (typeof name !== 'string' || !isDns1123Subdomain(name.replace(/\.$/, ''))) {
    errs.push({
      field: 'spec.externalName',
      type: 'Invalid',
      value: name,
      detail:
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-'" +
        " or '.', and must start and end with an alphanumeric character",
    });
  }
  const forbidden = (field: string) => ({
    field,
    type: 'Forbidden' as const,
    detail: 'may not be set for ExternalName services',
  });
  if (spec.clusterIP || (Array.isArray(spec.clusterIPs) && spec.clusterIPs.length > 0)) {
    errs.push(forbidden('spec.clusterIPs'));
  }
  for (const f of CLUSTER_IP_FIELDS) if (spec[f] !== undefined) errs.push(forbidden(`spec.${f}`));
  return errs;
}

/** Validates a Service, and against `old` on update (clusterIP is immutable). */
export function validateService(obj: KObject, old?: KObject): FieldError[] {
  const svc = obj as Service;
  const spec = svc.spec;
  if (!spec || typeof spec !== 'object') return [{ field: 'spec', type: 'Required' }];
  const errs: FieldError[] = [];
  if (!SERVICE_TYPES.includes(spec.type as string)) {
    errs.push(unsupported('spec.type', spec.type, SERVICE_TYPES));
    return errs;
  }
  const ports = spec.ports;
  if (ports !== undefined && !Array.isArray(ports)) {
    errs.push({ field: 'spec.ports', type: 'Invalid', value: ports, detail: 'must be a list' });
  } else if (!ports || ports.length === 0) {
    const optional = isHeadless(svc) || isExternalName(svc);
    if (!optional) errs.push({ field: 'spec.ports', type: 'Required' });
  } else {
    ports.forEach((p, i) => errs.push(...validatePort(p, i, ports.length, svc)));
    errs.push(...validatePortUniqueness(ports));
  }
  errs.push(...validateLabels(spec.selector, 'spec.selector'));
  if (isExternalName(svc)) errs.push(...validateExternalName(spec));
  else errs.push(...validateClusterIP(svc), ...validateFamilies(spec));
  errs.push(...validatePolicies(svc));
  // The cluster IP may change only when the service turns into or out of an alias.
  const oldIP = (old as Service | undefined)?.spec?.clusterIP;
  const aliasChange = isExternalName(old as Service) || isExternalName(svc);
  if (old && !aliasChange && (spec.clusterIP ?? '') !== (oldIP ?? '')) {
    errs.push({
      field: 'spec.clusterIP',
      type: 'Invalid',
      value: spec.clusterIP ?? '',
      detail: 'field is immutable',
    });
  }
  return errs;
}

function validateAddress(a: EndpointAddress, field: string): FieldError[] {
  if (!a || typeof a !== 'object') return [{ field, type: 'Invalid', value: a }];
  if (!isIPv4(a.ip)) {
    return [
      { field: `${field}.ip`, type: 'Invalid', value: a.ip, detail: 'must be a valid IP address' },
    ];
  }
  return [];
}

function validateEndpointPort(p: EndpointPort, field: string, count: number): FieldError[] {
  if (!p || typeof p !== 'object') return [{ field, type: 'Invalid', value: p }];
  const errs: FieldError[] = [];
  if (count > 1 && !p.name) errs.push({ field: `${field}.name`, type: 'Required' });
  if (!isPortNumber(p.port)) {
    errs.push({ field: `${field}.port`, type: 'Invalid', value: p.port, detail: PORT_RANGE });
  }
  if (p.protocol !== undefined && !PROTOCOLS.includes(p.protocol)) {
    errs.push(unsupported(`${field}.protocol`, p.protocol, PROTOCOLS));
  }
  return errs;
}

/** Endpoint ports default to TCP. */
export function defaultEndpoints(obj: KObject): void {
  for (const subset of (obj as Endpoints).subsets ?? []) {
    for (const p of subset?.ports ?? []) if (p && typeof p === 'object') p.protocol ??= 'TCP';
  }
}

/** Checks addresses (IPv4) and ports of Endpoints written by anyone, controller or user. */
export function validateEndpoints(obj: KObject): FieldError[] {
  const subsets = (obj as Endpoints).subsets;
  if (subsets === undefined || subsets === null) return [];
  if (!Array.isArray(subsets)) return [{ field: 'subsets', type: 'Invalid', value: subsets }];
  const errs: FieldError[] = [];
  subsets.forEach((s, i) => {
    const at = `subsets[${i}]`;
    (s?.addresses ?? []).forEach((a, j) =>
      errs.push(...validateAddress(a, `${at}.addresses[${j}]`)),
    );
    (s?.notReadyAddresses ?? []).forEach((a, j) =>
      errs.push(...validateAddress(a, `${at}.notReadyAddresses[${j}]`)),
    );
    const ports = s?.ports ?? [];
    ports.forEach((p, j) =>
      errs.push(...validateEndpointPort(p, `${at}.ports[${j}]`, ports.length)),
    );
  });
  return errs;
}

/** Slice ports default to TCP; every endpoint carries a conditions object. */
export function defaultEndpointSlice(obj: KObject): void {
  const slice = obj as EndpointSlice;
  for (const p of slice.ports ?? []) if (p && typeof p === 'object') p.protocol ??= 'TCP';
  for (const e of slice.endpoints ?? []) {
    if (e && typeof e === 'object') e.conditions ??= {};
  }
}

/** Checks a slice's address type (immutable), addresses and ports. */
export function validateEndpointSlice(obj: KObject, old?: KObject): FieldError[] {
  const slice = obj as EndpointSlice;
  const errs: FieldError[] = [];
  const types = ['FQDN', 'IPv4', 'IPv6'];
  if (!types.includes(slice.addressType)) {
    errs.push(
      slice.addressType
        ? unsupported('addressType', slice.addressType, types)
        : { field: 'addressType', type: 'Required' },
    );
  } else if (old && old.addressType !== slice.addressType) {
    errs.push({
      field: 'addressType',
      type: 'Invalid',
      value: slice.addressType,
      detail: 'field is immutable',
    });
  }
  const endpoints = slice.endpoints ?? [];
  if (!Array.isArray(endpoints)) return [...errs, { field: 'endpoints', type: 'Invalid' }];
  if (endpoints.length > 1000) {
    errs.push({ field: 'endpoints', type: 'TooLong', detail: 'must have at most 1000 items' });
  }
  endpoints.forEach((e, i) => {
    const at = `endpoints[${i}].addresses`;
    if (!e || !Array.isArray(e.addresses) || e.addresses.length === 0) {
      errs.push({ field: at, type: 'Required' });
      return;
    }
    e.addresses.forEach((a, j) => {
      const ok = slice.addressType !== 'IPv4' || isIPv4(a);
      if (!ok)
        errs.push({
          field: `${at}[${j}]`,
          type: 'Invalid',
          value: a,
          detail: 'must be a valid IPv4 address',
        });
    });
  });
  const ports = slice.ports ?? [];
  if (!Array.isArray(ports)) return [...errs, { field: 'ports', type: 'Invalid' }];
  ports.forEach((p, i) => {
    if (p?.port !== undefined && p.port !== null && !isPortNumber(p.port)) {
      errs.push({ field: `ports[${i}].port`, type: 'Invalid', value: p.port, detail: PORT_RANGE });
    }
    if (p?.name && !isDns1123Label(p.name)) {
      errs.push({ field: `ports[${i}].name`, type: 'Invalid', value: p.name });
    }
  });
  return errs;
}
