import { referencedObjects } from '../api/pod-references.js';
import { byGroupResource, type ResourceType } from '../api/resources.js';
import type { KObject, Pod } from '../api/types.js';
import { isReason, type KubeClient } from '../client/rest.js';
import type { Logger } from '../log.js';

/**
 * The ConfigMaps and Secrets the pods of this node refer to, and only those: fetched one by
 * one when a pod needs them (the Node authorizer lets a node read nothing else), kept in
 * memory, and fetched again every `refreshMs` so that a change reaches env of new
 * containers and the files of configMap and secret volumes (Kubernetes' kubelet does the
 * same with its TTL cache of referenced objects). Objects no pod refers to any more are
 * dropped.
 *
 * Keys are `ConfigMap/<ns>/<name>` and `Secret/<ns>/<name>`, as referencedObjects makes them.
 * An object that does not exist (or may not be read) is remembered as absent, so that the
 * pod reports it missing; a fetch that fails otherwise keeps what was known.
 */

const TYPES: Record<string, ResourceType> = {
  ConfigMap: byGroupResource.get('/configmaps')!,
  Secret: byGroupResource.get('/secrets')!,
};
/** Fetches in flight at once. */
const FETCH_CONCURRENCY = 8;

interface Entry {
  obj?: KObject;
}

export interface ConfigObjectsOptions {
  client: KubeClient;
  /** Told when an object changed, appeared or went (not on its first fetch). */
  onChange: (key: string) => void;
  log: Logger;
}

export class ConfigObjects {
  private readonly entries = new Map<string, Entry>();
  private readonly fetching = new Map<string, Promise<void>>();

  constructor(private readonly opts: ConfigObjectsOptions) {}

  /** The cached object, undefined when absent or not fetched yet. */
  get(kind: 'ConfigMap' | 'Secret', namespace: string, name: string): KObject | undefined {
    return this.entries.get(`${kind}/${namespace}/${name}`)?.obj;
  }

  /**
   * Fetches what `pod` refers to and is not cached yet; rejects when a fetch failed for a
   * reason other than the object's absence, so the pod is synced again later.
   */
  async ensure(pod: Pod): Promise<void> {
    const missing = [...referencedObjects(pod)].filter((key) => !this.entries.has(key));
    // A pod may name thousands of objects; they are fetched a few at a time.
    await inLanes(missing, (key) => this.fetch(key, true));
  }

  /** Drops the objects none of `pods` refers to, then fetches the others again. */
  async refresh(pods: Pod[]): Promise<void> {
    const wanted = new Set<string>();
    for (const pod of pods) for (const key of referencedObjects(pod)) wanted.add(key);
    for (const key of this.entries.keys()) if (!wanted.has(key)) this.entries.delete(key);
    await inLanes([...this.entries.keys()], (key) =>
      this.fetch(key, false).catch((err: Error) =>
        this.opts.log.warn({ object: key, err: err.message }, 'could not refresh'),
      ),
    );
  }

  /** One fetch per key at a time; later callers share the one in flight. */
  private fetch(key: string, first: boolean): Promise<void> {
    let running = this.fetching.get(key);
    if (!running) {
      running = this.load(key, first).finally(() => this.fetching.delete(key));
      this.fetching.set(key, running);
    }
    return running;
  }

  private async load(key: string, first: boolean): Promise<void> {
    const [kind, namespace, name] = key.split('/');
    let obj: KObject | undefined;
    try {
      obj = await this.opts.client.get<KObject>(TYPES[kind], namespace, name);
    } catch (err) {
      if (!isReason(err, 'NotFound') && !isReason(err, 'Forbidden')) throw err;
    }
    const known = this.entries.get(key);
    this.entries.set(key, { obj });
    const before = known?.obj?.metadata.resourceVersion;
    if (!first && known && before !== obj?.metadata.resourceVersion) this.opts.onChange(key);
  }
}

/**
 * Runs `fn` on every key, FETCH_CONCURRENCY at a time; once all have run, rejects with the
 * first failure, if any.
 */
async function inLanes(keys: string[], fn: (key: string) => Promise<void>): Promise<void> {
  const queue = [...keys];
  const failures: unknown[] = [];
  const lane = async () => {
    for (let key = queue.pop(); key !== undefined; key = queue.pop()) {
      await fn(key).catch((err: unknown) => void failures.push(err));
    }
  };
  await Promise.all(Array.from({ length: FETCH_CONCURRENCY }, lane));
  if (failures.length > 0) throw failures[0];
}
