import { networkInterfaces } from 'node:os';
import { ApiError } from '../api/errors.js';
import { byGroupResource, type ResourceType } from '../api/resources.js';
import { SERVICE_NAME_LABEL, type EndpointSlice, type Endpoints } from '../api/service.js';
import type { KObject } from '../api/types.js';
import { deepEqual } from '../util/equal.js';
import type { Registry } from './registry.js';

/**
 * The `kubernetes` Service in namespace `default`: how pods reach the API server. Written
 * at API server start, as Kubernetes' bootstrap controller does: the Service (first IP of
 * the service range, port 443 to the API server's port) if missing, and its Endpoints and
 * EndpointSlice pointing at this API server's address, created or corrected.
 *
 * With several API servers each one writes its own address, so the last to start wins;
 * Kubernetes keeps a lease per API server and lists them all. flyCes does not yet.
 */

const SERVICES = byGroupResource.get('/services')!;
const ENDPOINTS = byGroupResource.get('/endpoints')!;
const SLICES = byGroupResource.get('discovery.k8s.io/endpointslices')!;
const NAME = 'kubernetes';
const NAMESPACE = 'default';

export interface KubernetesServiceOptions {
  clusterIP: string;
  /** The address pods reach the API server on. */
  address: string;
  /** The port the API server listens on. */
  port: number;
}

/**
 * The address to advertise for an API server bound to `host`: the host itself unless it is
 * a wildcard, else the first non-loopback IPv4 address of this machine, else loopback.
 */
export function advertiseAddress(host: string | undefined): string {
  if (host && host !== '0.0.0.0' && host !== '::' && /^[\d.]+$/.test(host)) return host;
  for (const list of Object.values(networkInterfaces())) {
    for (const addr of list ?? [])
      if (addr.family === 'IPv4' && !addr.internal) return addr.address;
  }
  return '127.0.0.1';
}

/** Writes the `kubernetes` Service, Endpoints and EndpointSlice as described above. */
export async function ensureKubernetesService(
  registry: Registry,
  opts: KubernetesServiceOptions,
): Promise<void> {
  const meta = {
    name: NAME,
    namespace: NAMESPACE,
    labels: { component: 'apiserver', provider: 'kubernetes' },
  };
  const port = { name: 'https', port: 443, protocol: 'TCP', targetPort: opts.port };
  const service: KObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta,
    spec: { type: 'ClusterIP', clusterIP: opts.clusterIP, sessionAffinity: 'None', ports: [port] },
  };
  await upsert(
    registry,
    SERVICES,
    service,
    (s) => s.spec?.ports,
    (latest) => ({
      ...latest,
      spec: { ...latest.spec, ports: [port] },
    }),
  );

  const endpoints: Endpoints = {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { ...meta, labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } },
    subsets: [
      {
        addresses: [{ ip: opts.address }],
        ports: [{ name: 'https', port: opts.port, protocol: 'TCP' }],
      },
    ],
  };
  await upsert(registry, ENDPOINTS, endpoints, (e) => e.subsets);

  const slice: EndpointSlice = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { ...meta, labels: { [SERVICE_NAME_LABEL]: NAME } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [opts.address], conditions: { ready: true } }],
    ports: [{ name: 'https', port: opts.port, protocol: 'TCP' }],
  };
  await upsert(registry, SLICES, slice, (s) => [s.endpoints, s.ports]);
}

async function getIfThere(registry: Registry, rt: ResourceType): Promise<KObject | undefined> {
  try {
    return await registry.get(rt, NAMESPACE, NAME);
  } catch (err) {
    if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
    return undefined;
  }
}

/**
 * Creates the object, or rewrites it when the part `content` picks out differs. Another API
 * server starting at the same time may create it first; its copy is then corrected.
 */
async function upsert(
  registry: Registry,
  rt: ResourceType,
  obj: KObject,
  content: (o: KObject) => unknown,
  fix: (latest: KObject) => KObject = (latest) => ({
    ...structuredClone(obj),
    metadata: { ...latest.metadata, labels: obj.metadata.labels },
  }),
): Promise<void> {
  let current = await getIfThere(registry, rt);
  if (!current) {
    try {
      await registry.create(rt, NAMESPACE, structuredClone(obj));
      return;
    } catch (err) {
      current = await getIfThere(registry, rt);
      if (!current) throw err;
    }
  }
  if (deepEqual(content(current), content(obj))) return;
  await registry.mutate(rt, NAMESPACE, NAME, undefined, undefined, fix);
}
