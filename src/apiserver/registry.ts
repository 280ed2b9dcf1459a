import { randomBytes, randomUUID } from 'node:crypto';
import {
  alreadyExists,
  ApiError,
  conflict,
  invalid,
  notFound,
  type FieldError,
} from '../api/errors.js';
import { unknownFields } from '../api/fields.js';
import { apiVersionOf, type ResourceType } from '../api/resources.js';
import { nowTimestamp, timestamp, type KObject } from '../api/types.js';
import { validateMeta, validateShape } from '../api/validation.js';
import { StoreError, type KeyValue, type Store } from '../store/store.js';
import { deepEqual } from '../util/equal.js';
import type { ServiceAllocations } from './service-allocation.js';
import type { AdmissionChain, AdmissionReader } from './admission/admission.js';
import { defaultAdmission } from './admission/chain.js';
import { decode } from './watch-cache.js';

/**
 * The registry: how objects of every resource type are created, read, updated and deleted
 * in the store, following Kubernetes' rules: uid and timestamps set by the server,
 * generation kept for the kinds Kubernetes keeps it for (see ResourceType.generation),
 * status written only through its subresource, optimistic concurrency on resourceVersion,
 * graceful deletion of pods, and finalizers.
 */

export interface WriteOptions {
  dryRun?: boolean;
  /** What to do with fields the type does not know: refuse, warn (default), or ignore. */
  fieldValidation?: 'Strict' | 'Warn' | 'Ignore';
  /** Receives the warnings a Warn validation produces, for the response's Warning headers. */
  warnings?: string[];
}

/** Applies the request's fieldValidation to an incoming object of kind `rt.kind`. */
function checkFields(rt: ResourceType, obj: unknown, opts: WriteOptions): void {
  const mode = opts.fieldValidation ?? 'Warn';
  if (mode === 'Ignore') return;
  const unknown = unknownFields(rt.kind, obj);
  if (unknown.length === 0) return;
  const list = unknown.map((f) => `unknown field "${f}"`);
  if (mode === 'Strict') {
    throw new ApiError(
      'BadRequest',
      `${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: strict decoding error: ${list.join(', ')}`,
    );
  }
  opts.warnings?.push(...list);
}

export interface DeleteOptions extends WriteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  preconditions?: { uid?: string; resourceVersion?: string };
}

/** The store key of an object: /registry/<group or core>/<plural>/[<namespace>/]<name>. */
export function storeKey(rt: ResourceType, namespace: string | undefined, name: string): string {
  return `${resourcePrefix(rt)}${rt.namespaced ? `${namespace}/` : ''}${name}`;
}

export function resourcePrefix(rt: ResourceType): string {
  return `/registry/${rt.group || 'core'}/${rt.plural}/`;
}

const NAMESPACES_KEY = '/registry/core/namespaces/';
/** The largest object stored, whatever built it (a patch can grow one past the body limit). */
const MAX_OBJECT_BYTES = 3 * 1024 * 1024;

/**
 * The stored form of an object: JSON with apiVersion, kind and metadata first, the order
 * the watch cache relies on to add the resourceVersion without decoding the text again.
 */
function encode(obj: KObject): string {
  const { apiVersion, kind, metadata, ...rest } = obj;
  const text = JSON.stringify({ apiVersion, kind, metadata, ...rest });
  if (text.length > MAX_OBJECT_BYTES) {
    throw new ApiError(
      'RequestEntityTooLarge',
      `the object is too large: ${text.length} bytes, at most ${MAX_OBJECT_BYTES}`,
    );
  }
  return text;
}

/**
 * Runs defaulting and validation, which read client data of any shape: a TypeError there
 * means a field had the wrong type, which is the client's error, not the server's.
 */
function asClientError<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TypeError) {
      throw new ApiError('BadRequest', `${name}: a field has the wrong type: ${err.message}`);
    }
    throw err;
  }
}
const MAX_CAS_RETRIES = 20;
/** Further suffixes tried when a generated name is taken. */
const GENERATE_NAME_RETRIES = 7;

type Mutator = (current: KObject) => KObject | Promise<KObject>;

/**
 * The API server's watch cache as the registry uses it: told of every value just written,
 * and read (eventually consistent, as Kubernetes' admission reads its informers) for the
 * lookups of admission, where a miss falls back to the store.
 */
export interface WriteHints {
  /** `value`, the encoding of `obj`, is about to be written at `key` (it may fail). */
  written(key: string, value: string, obj: KObject): void;
  /** The write of `value` at `key` announced by written() failed: no event will carry it. */
  withdrawn?(key: string, value: string): void;
  /** The JSON of the object at `key` as the cache has it, if it has it. */
  valueOf?(key: string): string | undefined;
  /** The JSON of every object under a resource prefix, as the cache has them. */
  valuesUnder?(prefix: string): string[];
}

export class Registry {
  private readonly reader: AdmissionReader;

  constructor(
    private readonly store: Store,
    /** Cluster IPs and node ports of Services, reserved around their writes. */
    private readonly allocations?: ServiceAllocations,
    private readonly admission: AdmissionChain = defaultAdmission(),
    private readonly hints?: WriteHints,
    /** Makes the suffix of a generated name (tests pass their own). */
    private readonly nameSuffix: () => string = randomSuffix,
  ) {
    this.reader = {
      get: async (rt, namespace, name) => {
        const key = storeKey(rt, namespace, name);
        const cached = this.hints?.valueOf?.(key);
        if (cached !== undefined) return JSON.parse(cached) as KObject;
        const kv = await this.store.get(key);
        return kv && decode(kv.value, kv.modRevision);
      },
      list: async (rt) => {
        const cached = this.hints?.valuesUnder?.(resourcePrefix(rt));
        if (cached) return cached.map((v) => JSON.parse(v) as KObject);
        const { items } = await this.store.list(resourcePrefix(rt));
        return items.map((kv) => decode(kv.value, kv.modRevision));
      },
    };
  }

  async get(rt: ResourceType, namespace: string | undefined, name: string): Promise<KObject> {
    const kv = await this.store.get(storeKey(rt, namespace, name));
    if (!kv) throw notFound(rt.plural, rt.group, name);
    return decode(kv.value, kv.modRevision);
  }

  async create(
    rt: ResourceType,
    namespace: string | undefined,
    body: unknown,
    opts: WriteOptions = {},
  ): Promise<KObject> {
    checkFields(rt, body, opts);
    const named = Boolean((body as KObject | undefined)?.metadata?.name);
    const obj = asClientError(rt.kind, () => this.prepareCreate(rt, namespace, body));
    await this.checkNamespace(rt, obj.metadata.namespace, obj.metadata.name!);
    await this.admission.admit({ operation: 'CREATE', rt, object: obj }, this.reader);
    const allocation = await this.allocations?.beforeCreate(obj, !!opts.dryRun);
    if (opts.dryRun) return obj;
    // A generated name that is taken already gets another suffix, a few times over, as
    // Kubernetes does: with thousands of pods per ReplicaSet, collisions do happen.
    const generated = !named && typeof obj.metadata.generateName === 'string';
    for (let attempt = 0; ; attempt++) {
      const name = obj.metadata.name!;
      try {
        const key = storeKey(rt, obj.metadata.namespace, name);
        const value = encode(obj);
        const kv = await this.hinted(key, value, obj, () => this.store.create(key, value));
        // `obj` is what was encoded and nobody else holds it: no need to decode it again.
        obj.metadata.resourceVersion = String(kv.modRevision);
        return obj;
      } catch (err) {
        const taken = err instanceof StoreError && err.code === 'AlreadyExists';
        if (taken && generated && attempt < GENERATE_NAME_RETRIES) {
          obj.metadata.name = obj.metadata.generateName + this.nameSuffix();
          continue;
        }
        await allocation?.undo();
        if (taken) throw alreadyExists(rt.plural, rt.group, name);
        throw err;
      }
    }
  }

  private prepareCreate(rt: ResourceType, namespace: string | undefined, body: unknown): KObject {
    const shapeErrs = validateShape(body);
    const obj = body as KObject;
    if (shapeErrs.length > 0) throw invalid(rt.kind, rt.group, '', shapeErrs);
    checkTypeMeta(rt, obj);
    obj.apiVersion = apiVersionOf(rt);
    obj.kind = rt.kind;
    obj.metadata ??= {};
    const meta = obj.metadata;
    if (rt.namespaced) {
      if (meta.namespace && namespace && meta.namespace !== namespace) {
        throw new ApiError(
          'BadRequest',
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      meta.namespace = namespace ?? meta.namespace ?? 'default';
    } else delete meta.namespace;
    if (!meta.name && typeof meta.generateName === 'string' && meta.generateName) {
      meta.name = meta.generateName + this.nameSuffix();
    }
    for (const field of ['resourceVersion', 'deletionTimestamp', 'deletionGracePeriodSeconds']) {
      delete meta[field];
    }
    meta.uid = randomUUID();
    meta.creationTimestamp = nowTimestamp();
    if (rt.generation) meta.generation = 1;
    else delete meta.generation;
    if (rt.tracksGeneration) obj.status = {};
    rt.defaults?.(obj);
    this.validate(rt, obj);
    return obj;
  }

  private validate(rt: ResourceType, obj: KObject, old?: KObject): void {
    const errs: FieldError[] = validateMeta(obj.metadata, rt.namespaced, rt.nameRule);
    // As Kubernetes does, the metadata's errors and the kind's own come back in one answer;
    // only an object without metadata is not looked at further.
    if (obj.metadata && typeof obj.metadata === 'object') {
      errs.push(...(rt.validate?.(obj, old) ?? []));
    }
    if (errs.length > 0) throw invalid(rt.kind, rt.group, obj.metadata?.name ?? '', errs);
  }

  private async checkNamespace(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
  ): Promise<void> {
    if (!rt.namespaced) return;
    // The cache first (a namespace is read on every create); the store when it has not
    // seen the namespace yet, which may have been created a moment ago.
    const key = NAMESPACES_KEY + namespace;
    const value = this.hints?.valueOf?.(key) ?? (await this.store.get(key))?.value;
    if (value === undefined) throw notFound('namespaces', '', namespace ?? '');
    const ns = JSON.parse(value) as KObject;
    if (ns.metadata.deletionTimestamp) {
      const why =
        `unable to create new content in namespace ${namespace} ` +
        'because it is being terminated';
      const what = rt.group ? `${rt.plural}.${rt.group}` : rt.plural;
      // The cause lets controllers tell this refusal from a failure worth retrying.
      throw new ApiError('Forbidden', `${what} "${name}" is forbidden: ${why}`, {
        name,
        group: rt.group,
        kind: rt.plural,
        causes: [{ reason: 'NamespaceTerminating', message: why, field: 'metadata.namespace' }],
      });
    }
  }

  /**
   * Replaces an object (PUT). With a resourceVersion in the body the write is conditional;
   * without one it applies to whatever is current. `subresource` 'status' writes only the
   * status; the main resource never writes status for types that have the subresource.
   */
  async update(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    body: unknown,
    subresource: string | undefined,
    opts: WriteOptions = {},
  ): Promise<KObject> {
    const shapeErrs = validateShape(body);
    if (shapeErrs.length > 0) throw invalid(rt.kind, rt.group, name, shapeErrs);
    const next = body as KObject;
    checkTypeMeta(rt, next);
    if (next.metadata?.name !== undefined && next.metadata.name !== name) {
      throw new ApiError(
        'BadRequest',
        `the name of the object (${next.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    const precondition = next.metadata?.resourceVersion;
    return this.mutate(
      rt,
      namespace,
      name,
      precondition,
      subresource,
      () => structuredClone(next),
      opts,
    );
  }

  /**
   * Reads the current object, applies `mutator`, and writes the result with compare-and-swap,
   * retrying on a concurrent write unless the caller pinned a resourceVersion.
   */
  async mutate(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    precondition: string | undefined,
    subresource: string | undefined,
    mutator: Mutator,
    opts: WriteOptions = {},
  ): Promise<KObject> {
    const key = storeKey(rt, namespace, name);
    for (let attempt = 0; attempt < MAX_CAS_RETRIES; attempt++) {
      const kv = await this.store.get(key);
      if (!kv) throw notFound(rt.plural, rt.group, name);
      if (precondition && precondition !== String(kv.modRevision)) {
        throw conflict(rt.plural, rt.group, name);
      }
      // Two decodes of the stored text: the mutator may change its copy in place, and
      // parsing again is cheaper than a deep copy.
      const current = decode(kv.value, kv.modRevision);
      const proposed = await mutator(decode(kv.value, kv.modRevision));
      // A binding's changes are the server's own; fieldValidation is about client data.
      if (attempt === 0 && subresource !== 'binding') checkFields(rt, proposed, opts);
      const next = asClientError(rt.kind, () =>
        this.prepareUpdate(rt, current, proposed, subresource),
      );
      const req = { operation: 'UPDATE', rt, object: next, old: current } as const;
      await this.admission.admit(req, this.reader);
      const allocation = await this.allocations?.beforeUpdate(current, next, !!opts.dryRun);
      if (opts.dryRun) return next;
      try {
        const written = await this.write(key, kv, current, next);
        await allocation?.commit();
        return written;
      } catch (err) {
        await allocation?.undo();
        if (!(err instanceof StoreError) || err.code !== 'Conflict' || precondition) {
          if (err instanceof StoreError && err.code === 'Conflict')
            throw conflict(rt.plural, rt.group, name);
          if (err instanceof StoreError && err.code === 'NotFound')
            throw notFound(rt.plural, rt.group, name);
          throw err;
        }
      }
    }
    throw conflict(rt.plural, rt.group, name);
  }

  /** Writes `next` over `current`: nothing if unchanged, a delete if the last finalizer went. */
  private async write(
    key: string,
    kv: KeyValue,
    current: KObject,
    next: KObject,
  ): Promise<KObject> {
    delete next.metadata.resourceVersion;
    const currentMeta = { ...current.metadata, resourceVersion: undefined };
    if (deepEqual({ ...current, metadata: currentMeta }, next)) return current;
    const finalizersGone = !next.metadata.finalizers || next.metadata.finalizers.length === 0;
    if (next.metadata.deletionTimestamp && finalizersGone && !isPendingPodTermination(next)) {
      const deleted = await this.store.delete(key, kv.modRevision);
      await this.allocations?.afterDelete(next);
      return decode(JSON.stringify(next), deleted.modRevision);
    }
    const value = encode(next);
    const update = () => this.store.update(key, value, kv.modRevision);
    const written = await this.hinted(key, value, next, update);
    // `next` was built for this write alone, so it can be handed out as the result.
    next.metadata.resourceVersion = String(written.modRevision);
    return next;
  }

  /**
   * Runs the store write of `value` at `key`, the encoding of `obj`, telling the watch cache
   * before it (the store's event may come before the write's answer) and, if it fails, after
   * it: a failed write's hint would otherwise hold its text until the key changes again.
   */
  private async hinted(
    key: string,
    value: string,
    obj: KObject,
    write: () => Promise<KeyValue>,
  ): Promise<KeyValue> {
    this.hints?.written(key, value, obj);
    try {
      return await write();
    } catch (err) {
      this.hints?.withdrawn?.(key, value);
      throw err;
    }
  }

  private prepareUpdate(
    rt: ResourceType,
    current: KObject,
    proposed: KObject,
    subresource: string | undefined,
  ): KObject {
    const shapeErrs = validateShape(proposed);
    if (shapeErrs.length > 0)
      throw invalid(rt.kind, rt.group, current.metadata.name ?? '', shapeErrs);
    let next: KObject;
    // What `next` is compared with: the stored object, or, where `next` was defaulted, the
    // stored object as defaulting leaves it now. Kubernetes defaults an object whenever it
    // reads it from storage, so a default added since the object was stored is no change of
    // its spec: it neither moves its generation nor breaks a field's immutability.
    let old = current;
    if (subresource === 'status') {
      next = { ...current, status: proposed.status };
      next.metadata = { ...current.metadata };
    } else if (subresource === 'binding') {
      next = { ...proposed, apiVersion: apiVersionOf(rt), kind: rt.kind };
      next.metadata = keepServerMeta(current, proposed.metadata ?? {});
    } else {
      next = { ...proposed, apiVersion: apiVersionOf(rt), kind: rt.kind };
      next.metadata = keepServerMeta(current, proposed.metadata ?? {});
      if (rt.subresources.includes('status')) next.status = current.status;
      rt.prepareForUpdate?.(next, current);
      rt.defaults?.(next);
      old = defaultedCopy(rt, current);
      if (generationChanged(rt, next, old)) {
        next.metadata.generation = (current.metadata.generation ?? 1) + 1;
      }
    }
    // Objects an older flyCes stored with a generation their kind has none of lose it here.
    if (!rt.generation) delete next.metadata.generation;
    if (current.metadata.deletionTimestamp) {
      const added = (next.metadata.finalizers ?? []).filter(
        (f) => !current.metadata.finalizers?.includes(f),
      );
      if (added.length > 0) {
        throw invalid(rt.kind, rt.group, current.metadata.name ?? '', [
          {
            field: 'metadata.finalizers',
            type: 'Forbidden',
            detail: 'no new finalizers can be added if the object is being deleted',
          },
        ]);
      }
    }
    // A binding only sets spec.nodeName and the PodScheduled condition of a pod that was
    // valid, and bindPod checked the node name: as in Kubernetes, the pod is not validated
    // again (that walk of the whole pod was a good part of every bind's cost).
    if (subresource !== 'binding') this.validate(rt, next, old);
    return next;
  }

  /**
   * Deletes an object. Pods bound to a node are deleted gracefully: they get a
   * deletionTimestamp and the node's agent removes them once their containers stopped.
   * Objects with finalizers are only marked; the last finalizer's removal deletes them.
   */
  async delete(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    opts: DeleteOptions = {},
  ): Promise<KObject> {
    const key = storeKey(rt, namespace, name);
    for (let attempt = 0; attempt < MAX_CAS_RETRIES; attempt++) {
      const kv = await this.store.get(key);
      if (!kv) throw notFound(rt.plural, rt.group, name);
      const current = decode(kv.value, kv.modRevision);
      checkPreconditions(rt, current, opts);
      const next = asClientError(rt.kind, () => this.planDelete(rt, current, opts));
      if (opts.dryRun) return next ?? current;
      try {
        if (next === undefined) {
          const deleted = await this.store.delete(key, kv.modRevision);
          await this.allocations?.afterDelete(current);
          return decode(kv.value, deleted.modRevision);
        }
        return await this.write(key, kv, current, next);
      } catch (err) {
        if (err instanceof StoreError && err.code === 'NotFound')
          throw notFound(rt.plural, rt.group, name);
        if (!(err instanceof StoreError && err.code === 'Conflict')) throw err;
      }
    }
    throw conflict(rt.plural, rt.group, name);
  }

  /** The object to write instead of deleting it, or undefined to delete it now. */
  private planDelete(rt: ResourceType, current: KObject, opts: DeleteOptions): KObject | undefined {
    const next = structuredClone(current);
    delete next.metadata.resourceVersion;
    const meta = next.metadata;
    const finalizers = new Set(meta.finalizers ?? []);
    if (opts.propagationPolicy === 'Orphan') finalizers.add('orphan');
    if (opts.propagationPolicy === 'Foreground') finalizers.add('foregroundDeletion');
    if (rt.kind === 'Namespace') finalizers.add('kubernetes');
    const grace = rt.kind === 'Pod' ? podGracePeriod(current, opts) : 0;
    if (finalizers.size === 0 && grace === 0) return undefined;

    meta.finalizers = finalizers.size > 0 ? [...finalizers] : undefined;
    if (!meta.finalizers) delete meta.finalizers;
    const existingGrace = meta.deletionGracePeriodSeconds;
    if (!meta.deletionTimestamp || (existingGrace !== undefined && grace < existingGrace)) {
      meta.deletionTimestamp = timestamp(new Date(Date.now() + grace * 1000));
      meta.deletionGracePeriodSeconds = grace;
    }
    if (rt.kind === 'Namespace') next.status = { ...(next.status ?? {}), phase: 'Terminating' };
    return next;
  }
}

/** The grace period a pod deletion gets: none for unbound or finished pods. */
function podGracePeriod(pod: KObject, opts: DeleteOptions): number {
  if (!pod.spec?.nodeName) return 0;
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return 0;
  const grace = opts.gracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
  return Math.max(0, grace);
}

/** A pod marked for deletion stays until its agent deletes it with grace 0. */
function isPendingPodTermination(obj: KObject): boolean {
  return obj.kind === 'Pod' && (obj.metadata.deletionGracePeriodSeconds ?? 0) > 0;
}

function checkPreconditions(rt: ResourceType, current: KObject, opts: DeleteOptions): void {
  const pre = opts.preconditions;
  if (!pre) return;
  const name = current.metadata.name ?? '';
  if (pre.uid && pre.uid !== current.metadata.uid) {
    throw new ApiError(
      'Conflict',
      `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`,
      { name, group: rt.group, kind: rt.plural },
    );
  }
  if (pre.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) {
    throw conflict(rt.plural, rt.group, name);
  }
}

function checkTypeMeta(rt: ResourceType, obj: KObject): void {
  const want = apiVersionOf(rt);
  if (obj.apiVersion !== undefined && obj.apiVersion !== want) {
    throw new ApiError(
      'BadRequest',
      `apiVersion ${JSON.stringify(obj.apiVersion)} does not match the resource's ${want}`,
    );
  }
  if (obj.kind !== undefined && obj.kind !== rt.kind) {
    throw new ApiError(
      'BadRequest',
      `kind ${JSON.stringify(obj.kind)} does not match the resource's ${rt.kind}`,
    );
  }
}

/** A copy of `obj` with its kind's defaults of today; `obj` itself if the kind has none. */
function defaultedCopy(rt: ResourceType, obj: KObject): KObject {
  if (!rt.defaults) return obj;
  const copy = structuredClone(obj);
  rt.defaults(copy);
  return copy;
}

/** Whether an update changes what the kind's metadata.generation counts (see ResourceType). */
function generationChanged(rt: ResourceType, next: KObject, current: KObject): boolean {
  if (rt.generation === 'spec') return !deepEqual(next.spec, current.spec);
  if (rt.generation !== 'content') return false;
  const { metadata: nextMeta, ...nextContent } = next;
  const { metadata: currentMeta, ...currentContent } = current;
  return !deepEqual(nextContent, currentContent) || !deepEqual(nextMeta.labels, currentMeta.labels);
}

/** Metadata the server owns; a client's copy of these fields is ignored. */
function keepServerMeta(current: KObject, proposed: KObject['metadata']): KObject['metadata'] {
  const cur = current.metadata;
  const meta = { ...proposed };
  for (const field of [
    'name',
    'namespace',
    'uid',
    'creationTimestamp',
    'generation',
    'deletionTimestamp',
    'deletionGracePeriodSeconds',
  ] as const) {
    if (cur[field] === undefined) delete meta[field];
    else meta[field] = cur[field] as never;
  }
  return meta;
}

function randomSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  const bytes = randomBytes(5);
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}
