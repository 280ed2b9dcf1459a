import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../api/errors.js';
import { byGroupResource, type ResourceType } from '../../api/resources.js';
import { objectKey, type KObject, type Pod, type ReplicaSet } from '../../api/types.js';
import { InformerFactory } from '../../client/factory.js';
import type { KubeClient } from '../../client/rest.js';
import { ReplicaSetController } from './controller.js';

/**
 * The ReplicaSet controller against an API of plain maps and informers fed by hand, so a
 * test decides exactly when the controller's watch "sees" the pods it created: the
 * lagging watch and the restart the expectations exist for.
 */

const RS = byGroupResource.get('apps/replicasets')!;
const PODS = byGroupResource.get('/pods')!;

/** Pods as the API holds them, and the calls the controller made. */
class FakeApi {
  readonly pods = new Map<string, Pod>();
  created = 0;
  deleted: string[] = [];
  /** Reasons of the events recorded. */
  events: string[] = [];
  private rv = 100;
  /** Called before each pod creation with its number (1-based); may throw to fail it. */
  beforeCreate?: (n: number) => void;

  readonly client = {
    create: async (rt: ResourceType, obj: KObject) => {
      if (rt.kind !== 'Pod') {
        this.events.push((obj as KObject & { reason: string }).reason);
        return obj;
      }
      this.beforeCreate?.(this.created + 1);
      this.created++;
      const pod = structuredClone(obj) as Pod;
      pod.metadata.name = `${obj.metadata.generateName}${this.created}`;
      pod.metadata.uid = `pod-${this.created}`;
      pod.metadata.resourceVersion = String(++this.rv);
      this.pods.set(objectKey(pod), pod);
      return pod;
    },
    delete: async (_rt: ResourceType, namespace: string, name: string) => {
      this.deleted.push(name);
      this.pods.delete(`${namespace}/${name}`);
      return {};
    },
    update: async (_rt: ResourceType, obj: KObject) => this.bump(obj),
    updateStatus: async (_rt: ResourceType, obj: KObject) => this.bump(obj),
    patch: async () => ({}),
  };

  private bump(obj: KObject): KObject {
    return { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
  }
}

/** Informer caches are filled through apply(), the method a watch event calls. */
type Feedable = { apply(type: string, key: string, obj: KObject): void };

/** One controller instance with its own informers, as after a process start. */
class Instance {
  readonly controller: ReplicaSetController;
  private readonly rsCache: Feedable;
  private readonly podCache: Feedable;

  constructor(api: FakeApi) {
    const client = api.client as unknown as KubeClient;
    const factory = new InformerFactory(client);
    this.controller = new ReplicaSetController(client, factory, { workers: 1 });
    this.controller.register();
    this.rsCache = factory.informer(RS) as unknown as Feedable;
    this.podCache = factory.informer(PODS) as unknown as Feedable;
  }

  setReplicaSet(rs: ReplicaSet, type = 'ADDED'): void {
    this.rsCache.apply(type, objectKey(rs), rs);
  }

  /** Lets the watch deliver pods the API holds. */
  observe(pods: Pod[]): void {
    for (const pod of pods) this.podCache.apply('ADDED', objectKey(pod), pod);
  }

  observeDeleted(pod: Pod): void {
    this.podCache.apply('DELETED', objectKey(pod), pod);
  }

  /** A resync: reconcile the key as a worker would, errors included. */
  async reconcile(key = 'default/web'): Promise<unknown> {
    const run = this.controller as unknown as { reconcile(key: string): Promise<unknown> };
    return run.reconcile(key).catch((err: unknown) => err);
  }
}

function replicaSet(replicas: number, generation = 1): ReplicaSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: 'web',
      namespace: 'default',
      uid: 'rs-uid',
      generation,
      resourceVersion: String(generation),
    },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'c', image: 'busybox' }] },
      },
    },
  };
}

test('a lagging watch never makes the controller create or delete too many pods', async () => {
  const table: {
    name: string;
    run: (api: FakeApi, c: Instance) => Promise<void>;
    created: number;
    deleted?: number;
  }[] = [
    {
      name: 'many resyncs before any created pod is observed',
      run: async (api, c) => {
        c.setReplicaSet(replicaSet(5));
        for (let i = 0; i < 10; i++) await c.reconcile();
      },
      created: 5,
    },
    {
      name: 'resyncs with part of the pods observed',
      run: async (api, c) => {
        c.setReplicaSet(replicaSet(5));
        await c.reconcile();
        c.observe([...api.pods.values()].slice(0, 3));
        for (let i = 0; i < 10; i++) await c.reconcile();
      },
      created: 5,
    },
    {
      name: 'scaled up again before the first pods are observed',
      run: async (api, c) => {
        c.setReplicaSet(replicaSet(3));
        await c.reconcile();
        c.setReplicaSet(replicaSet(6, 2), 'MODIFIED');
        for (let i = 0; i < 5; i++) await c.reconcile();
        assert.equal(api.created, 3, 'waits for its first creations');
        c.observe([...api.pods.values()]);
        for (let i = 0; i < 5; i++) await c.reconcile();
      },
      created: 6,
    },
    {
      name: 'a failed creation is not waited for',
      run: async (api, c) => {
        let failed = false;
        api.beforeCreate = (n) => {
          if (n === 2 && !failed) {
            failed = true;
            throw new Error('admission said no');
          }
        };
        c.setReplicaSet(replicaSet(4));
        assert.ok((await c.reconcile()) instanceof Error, 'the failure retries the key');
        assert.equal(api.created, 2, 'slow start: the batch that failed ended the burst');
        c.observe([...api.pods.values()]);
        for (let i = 0; i < 5; i++) await c.reconcile();
      },
      created: 4,
    },
    {
      name: 'a namespace being deleted refuses creations: no retry, no event',
      run: async (api, c) => {
        api.beforeCreate = () => {
          const why = 'unable to create new content in namespace default: being terminated';
          throw new ApiError('Forbidden', why, {
            causes: [{ reason: 'NamespaceTerminating', message: why }],
          });
        };
        c.setReplicaSet(replicaSet(3));
        assert.equal(await c.reconcile(), undefined);
        assert.deepEqual(api.events, []);
      },
      created: 0,
    },
    {
      name: 'many resyncs before deletions are observed',
      run: async (api, c) => {
        c.setReplicaSet(replicaSet(4));
        await c.reconcile();
        c.observe([...api.pods.values()]);
        c.setReplicaSet(replicaSet(2, 2), 'MODIFIED');
        for (let i = 0; i < 10; i++) await c.reconcile();
      },
      created: 4,
      deleted: 2,
    },
  ];
  for (const tc of table) {
    const api = new FakeApi();
    const c = new Instance(api);
    await tc.run(api, c);
    assert.equal(api.created, tc.created, `${tc.name}: pods created`);
    assert.equal(api.deleted.length, tc.deleted ?? 0, `${tc.name}: pods deleted`);
    c.controller.stop();
  }
});

test('a controller restarted mid-scale-up counts the pods its predecessor made', async () => {
  const api = new FakeApi();
  const first = new Instance(api);
  // The process stops while the third pod is being created: the burst ends after its batch.
  api.beforeCreate = (n) => {
    if (n === 3) first.controller.stop();
  };
  first.setReplicaSet(replicaSet(10));
  await first.reconcile();
  const midway = api.created;
  assert.ok(midway > 0 && midway < 10, `stopped midway, after ${midway} pods`);
  api.beforeCreate = undefined;

  // A new instance lists what exists, then resyncs as often as it likes.
  const second = new Instance(api);
  second.setReplicaSet(replicaSet(10));
  second.observe([...api.pods.values()]);
  for (let i = 0; i < 5; i++) await second.reconcile();
  assert.equal(api.created, 10);
  second.observe([...api.pods.values()]);
  for (let i = 0; i < 3; i++) await second.reconcile();
  assert.equal(api.created, 10);
  assert.equal(api.pods.size, 10);
  second.controller.stop();
});
