import { byGroupResource } from '../../api/resources.js';
import {
  HEADLESS_LABEL,
  MANAGED_BY_LABEL,
  SERVICE_NAME_LABEL,
  type EndpointSlice,
  type Endpoints,
  type Service,
} from '../../api/service.js';
import { controllerRef, objectKey, splitKey, type KObject, type Pod } from '../../api/types.js';
import type { InformerFactory } from '../../client/factory.js';
import type { Informer } from '../../client/informer.js';
import { isReason, type KubeClient } from '../../client/rest.js';
import { deepEqual } from '../../util/equal.js';
import { QueueController } from '../base.js';
import { NAMESPACE_INDEX } from '../indexes.js';
import {
  computeSlices,
  computeSubsets,
  mirrorSlices,
  slicePortsKey,
  truncateSubsets,
  type SliceContent,
} from './compute.js';

const SERVICES = byGroupResource.get('/services')!;
const PODS = byGroupResource.get('/pods')!;
const ENDPOINTS = byGroupResource.get('/endpoints')!;
const SLICES = byGroupResource.get('discovery.k8s.io/endpointslices')!;

/** Annotation on Endpoints that hold only part of the pods' addresses. */
export const OVER_CAPACITY = 'endpoints.kubernetes.io/over-capacity';
/** The managed-by value of the slices this controller writes, the one Kubernetes uses. */
export const CONTROLLER_NAME = 'endpointslice-controller.k8s.io';
/** The managed-by value of slices mirroring hand-written Endpoints, as in Kubernetes. */
export const MIRROR_NAME = 'endpointslicemirroring-controller.k8s.io';
/** Label on Endpoints that must not be mirrored into slices. */
const SKIP_MIRROR = 'endpointslice.kubernetes.io/skip-mirror';
/** How long a reconcile waits for the cache to show a slice it wrote. */
const WRITE_WAIT_MS = 5000;
/** Slices by the `namespace/name` of their Service. */
const SERVICE_INDEX = 'service-name';

export interface EndpointsControllerOptions {
  workers?: number;
  /** Most endpoints per slice (default 100). */
  maxEndpointsPerSlice?: number;
}

/**
 * Keeps the Endpoints and EndpointSlices of every Service with a selector: the pods the
 * selector picks, with their readiness, ports and nodes. Services without a selector are
 * left to whoever writes their Endpoints; this controller then removes only its own slices.
 * Endpoints of a Service seen deleted are deleted here; its slices go with it through their
 * owner reference, and are deleted here too if the garbage collector has not yet. Endpoints
 * of a Service deleted while no controller ran are left behind (Kubernetes deletes such
 * leftovers at start; flyCes does not yet).
 *
 * Slices written are remembered until the informer shows them, so a reconcile running on a
 * cache that lags its own writes waits instead of creating a slice twice.
 *
 * The hand-written Endpoints of a Service without a selector are mirrored into slices of
 * their own (managed by the mirroring controller's name), as Kubernetes' mirroring
 * controller does, so that readers of slices see them too.
 *
 * Not built: topology (zone) and hints.
 */
export class EndpointsController extends QueueController {
  private readonly services: Informer<Service>;
  private readonly pods: Informer<Pod>;
  private readonly endpoints: Informer<Endpoints>;
  private readonly slices: Informer<EndpointSlice>;
  private readonly maxPerSlice?: number;
  /** Keys of Services seen deleted whose Endpoints are still to be deleted. */
  private readonly deleted = new Set<string>();
  /** Per service key: slice name → resourceVersion written (0: deleted), and when. */
  private readonly written = new Map<string, Map<string, { rv: number; at: number }>>();

  constructor(
    private readonly client: KubeClient,
    factory: InformerFactory,
    opts: EndpointsControllerOptions = {},
  ) {
    super('endpoints-controller', opts.workers ?? 5);
    this.services = factory.informer<Service>(SERVICES);
    this.pods = factory.informer<Pod>(PODS);
    this.endpoints = factory.informer<Endpoints>(ENDPOINTS);
    this.slices = factory.informer<EndpointSlice>(SLICES);
    this.maxPerSlice = opts.maxEndpointsPerSlice;
  }

  register(): void {
    const byNamespace = (obj: KObject) => [obj.metadata.namespace ?? ''];
    this.services.addIndex(NAMESPACE_INDEX, byNamespace);
    this.pods.addIndex(NAMESPACE_INDEX, byNamespace);
    this.slices.addIndex(SERVICE_INDEX, (s) => {
      const name = s.metadata.labels?.[SERVICE_NAME_LABEL];
      return name ? [`${s.metadata.namespace}/${name}`] : [];
    });
    this.services.addHandlers({
      onAdd: (svc) => this.enqueue(svc),
      onUpdate: (_old, svc) => this.enqueue(svc),
      onDelete: (svc) => {
        this.deleted.add(objectKey(svc));
        this.enqueue(svc);
      },
    });
    this.pods.addHandlers({
      onAdd: (pod) => this.enqueueServicesOf(pod),
      onUpdate: (old, pod) => {
        if (old.metadata.resourceVersion === pod.metadata.resourceVersion) return;
        this.enqueueServicesOf(pod);
        if (!deepEqual(old.metadata.labels, pod.metadata.labels)) this.enqueueServicesOf(old);
      },
      onDelete: (pod) => this.enqueueServicesOf(pod),
    });
    // Someone else deleting or changing what we keep: put it back.
    const onEndpoints = (ep: Endpoints) => {
      if (this.services.get(objectKey(ep))) this.enqueue(ep);
    };
    this.endpoints.addHandlers({
      onAdd: onEndpoints,
      onUpdate: (_old, ep) => onEndpoints(ep),
      onDelete: onEndpoints,
    });
    const onSlice = (slice: EndpointSlice, deleted = false) => {
      const name = slice.metadata.labels?.[SERVICE_NAME_LABEL];
      if (!name) return;
      const key = `${slice.metadata.namespace}/${name}`;
      // A deletion comes after every write of ours the cache may still wait for.
      if (deleted) this.written.get(key)?.delete(slice.metadata.name!);
      this.queue.add(key);
    };
    this.slices.addHandlers({
      onUpdate: (_old, s) => onSlice(s),
      onDelete: (s) => onSlice(s, true),
    });
  }

  private enqueueServicesOf(pod: Pod): void {
    const labels = pod.metadata.labels ?? {};
    for (const svc of this.services.byIndex(NAMESPACE_INDEX, pod.metadata.namespace ?? '')) {
      if (selects(svc, labels)) this.enqueue(svc);
    }
  }

  protected async reconcile(key: string): Promise<number | void> {
    if (this.cacheBehindWrites(key)) return 100;
    const svc = this.services.get(key);
    if (!svc) {
      // Only the Endpoints of a Service seen deleted: Endpoints may be written before
      // the Service they are for.
      if (this.deleted.has(key)) await this.deleteEndpoints(key);
      this.deleted.delete(key);
      await this.syncSlices(key, undefined, [], CONTROLLER_NAME);
      await this.syncSlices(key, undefined, [], MIRROR_NAME);
      return;
    }
    this.deleted.delete(key);
    if (!hasSelector(svc)) {
      await this.syncSlices(key, svc, [], CONTROLLER_NAME);
      await this.syncSlices(key, svc, this.mirrored(svc), MIRROR_NAME);
      return;
    }
    const { namespace } = splitKey(key);
    const pods = this.pods
      .byIndex(NAMESPACE_INDEX, namespace)
      .filter((p) => selects(svc, p.metadata.labels ?? {}));
    await this.syncEndpoints(svc, pods);
    await this.syncSlices(key, svc, [], MIRROR_NAME);
    await this.syncSlices(key, svc, computeSlices(svc, pods, this.maxPerSlice), CONTROLLER_NAME);
  }

  /** The slices mirroring the hand-written Endpoints of a Service without a selector. */
  private mirrored(svc: Service): SliceContent[] {
    if (svc.spec.type === 'ExternalName') return [];
    const ep = this.endpoints.get(objectKey(svc));
    if (!ep || ep.metadata.labels?.[SKIP_MIRROR] === 'true') return [];
    return mirrorSlices(ep, this.maxPerSlice);
  }

  /** Whether the slice cache has not yet caught up with this controller's own writes. */
  private cacheBehindWrites(key: string): boolean {
    const written = this.written.get(key);
    if (!written) return false;
    const { namespace } = splitKey(key);
    const now = Date.now();
    for (const [name, { rv, at }] of written) {
      const cached = this.slices.get(`${namespace}/${name}`);
      // resourceVersions are the store's revision numbers in flyCes, so they order.
      const seen = rv === 0 ? !cached : !!cached && Number(cached.metadata.resourceVersion) >= rv;
      // A write the cache has not shown for this long was lost to a relist: stop waiting.
      if (!seen && now - at < WRITE_WAIT_MS) return true;
      written.delete(name);
    }
    this.written.delete(key);
    return false;
  }

  private remember(key: string, name: string, rv: number): void {
    let written = this.written.get(key);
    if (!written) this.written.set(key, (written = new Map()));
    written.set(name, { rv, at: Date.now() });
  }

  private async syncEndpoints(svc: Service, pods: Pod[]): Promise<void> {
    const { subsets, truncated } = truncateSubsets(computeSubsets(svc, pods));
    const labels = { ...(svc.metadata.labels ?? {}) };
    if (svc.spec.clusterIP === 'None') labels[HEADLESS_LABEL] = '';
    const current = this.endpoints.get(objectKey(svc));
    const annotations = { ...(current?.metadata.annotations ?? {}) };
    if (truncated) annotations[OVER_CAPACITY] = 'truncated';
    else delete annotations[OVER_CAPACITY];
    const meta = { name: svc.metadata.name, namespace: svc.metadata.namespace, labels };
    const desired: Endpoints = {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { ...meta, ...(truncated ? { annotations } : {}) },
      ...(subsets.length ? { subsets } : {}),
    };
    if (!current) {
      await this.client.create(ENDPOINTS, desired);
      this.log.info({ service: objectKey(svc), subsets: subsets.length }, 'created endpoints');
      return;
    }
    const sameMeta =
      deepEqual(current.metadata.labels ?? {}, labels) &&
      deepEqual(current.metadata.annotations ?? {}, annotations);
    if (sameMeta && deepEqual(current.subsets ?? [], subsets)) return;
    const next: Endpoints = {
      ...structuredClone(current),
      metadata: { ...current.metadata, labels, annotations },
    };
    if (subsets.length) next.subsets = subsets;
    else delete next.subsets;
    await this.client.update(ENDPOINTS, next);
    this.log.debug({ service: objectKey(svc), subsets: subsets.length }, 'updated endpoints');
  }

  private async deleteEndpoints(key: string): Promise<void> {
    const ep = this.endpoints.get(key);
    if (!ep) return;
    try {
      await this.client.delete(ENDPOINTS, ep.metadata.namespace, ep.metadata.name!, {
        preconditions: { uid: ep.metadata.uid },
      });
      this.log.info({ service: key }, 'deleted endpoints of a deleted service');
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
  }

  /**
   * Makes the service's managed slices hold `desired`: existing slices are reused, those
   * with the same ports first, missing ones created, surplus ones deleted.
   */
  private async syncSlices(
    key: string,
    svc: Service | undefined,
    desired: SliceContent[],
    manager: string,
  ): Promise<void> {
    const existing = this.slices
      .byIndex(SERVICE_INDEX, key)
      .filter((s) => s.metadata.labels?.[MANAGED_BY_LABEL] === manager);
    const unused = [...existing];
    const pairs: [SliceContent, EndpointSlice | undefined][] = [];
    const rest: SliceContent[] = [];
    for (const want of desired) {
      const i = unused.findIndex((s) => slicePortsKey(s.ports) === slicePortsKey(want.ports));
      if (i >= 0) pairs.push([want, unused.splice(i, 1)[0]]);
      else rest.push(want);
    }
    for (const want of rest) pairs.push([want, unused.shift()]);
    for (const [want, slice] of pairs) await this.writeSlice(key, svc!, want, slice, manager);
    for (const slice of unused) await this.deleteSlice(key, slice);
  }

  private async writeSlice(
    key: string,
    svc: Service,
    want: SliceContent,
    slice: EndpointSlice | undefined,
    manager: string,
  ): Promise<void> {
    // Mirrored slices carry the labels of the Endpoints they mirror, ours the Service's.
    const source = manager === MIRROR_NAME ? this.endpoints.get(key) : svc;
    const labels: Record<string, string> = {
      ...(source?.metadata.labels ?? {}),
      [SERVICE_NAME_LABEL]: svc.metadata.name!,
      [MANAGED_BY_LABEL]: manager,
    };
    if (svc.spec.clusterIP === 'None') labels[HEADLESS_LABEL] = '';
    if (!slice) {
      const created = await this.client.create<EndpointSlice>(SLICES, {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          generateName: `${svc.metadata.name}-`,
          namespace: svc.metadata.namespace,
          labels,
          ownerReferences: [controllerRef(svc, 'v1', 'Service')],
        },
        addressType: 'IPv4',
        endpoints: want.endpoints,
        ports: want.ports,
      });
      this.remember(key, created.metadata.name!, Number(created.metadata.resourceVersion));
      this.log.debug({ service: key, slice: created.metadata.name }, 'created endpoint slice');
      return;
    }
    const same =
      deepEqual(slice.metadata.labels ?? {}, labels) &&
      deepEqual(slice.endpoints ?? [], want.endpoints) &&
      deepEqual(slice.ports ?? [], want.ports);
    if (same) return;
    const next = {
      ...structuredClone(slice),
      metadata: { ...slice.metadata, labels },
      endpoints: want.endpoints,
      ports: want.ports,
    };
    const updated = await this.client.update<EndpointSlice>(SLICES, next);
    this.remember(key, slice.metadata.name!, Number(updated.metadata.resourceVersion));
    this.log.debug({ service: key, slice: slice.metadata.name }, 'updated endpoint slice');
  }

  private async deleteSlice(key: string, slice: EndpointSlice): Promise<void> {
    try {
      await this.client.delete(SLICES, slice.metadata.namespace, slice.metadata.name!, {
        preconditions: { uid: slice.metadata.uid },
      });
      this.log.debug({ service: key, slice: slice.metadata.name }, 'deleted endpoint slice');
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
    this.remember(key, slice.metadata.name!, 0);
  }
}

/**
 * Whether the service manages endpoints from pods; an ExternalName alias never does, as
 * in Kubernetes. An empty selector counts as none here;
 * in Kubernetes `selector: {}` would select every pod of the namespace.
 */
function hasSelector(svc: Service): boolean {
  if (svc.spec?.type === 'ExternalName') return false;
  return Object.keys(svc.spec?.selector ?? {}).length > 0;
}

function selects(svc: Service, labels: Record<string, string>): boolean {
  if (!hasSelector(svc)) return false;
  return Object.entries(svc.spec.selector!).every(([k, v]) => labels[k] === v);
}
