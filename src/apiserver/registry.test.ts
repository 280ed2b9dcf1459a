import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.js';
import { byGroupResource } from '../api/resources.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { defaultAdmission } from './admission/chain.js';
import { Registry } from './registry.js';

const CONFIGMAPS = byGroupResource.get('/configmaps')!;
const NAMESPACES = byGroupResource.get('/namespaces')!;
const SECRETS = byGroupResource.get('/secrets')!;
const PODS = byGroupResource.get('/pods')!;
const SLICES = byGroupResource.get('discovery.k8s.io/endpointslices')!;
const DEPLOYMENTS = byGroupResource.get('apps/deployments')!;
const JOBS = byGroupResource.get('batch/jobs')!;

test('a generated name that is taken gets another suffix, a few times at most', async () => {
  const suffixes: string[] = [];
  const store = SqliteStore.open(':memory:');
  const registry = new Registry(store, undefined, defaultAdmission(), undefined, () =>
    suffixes.shift()!,
  );
  try {
    await registry.create(NAMESPACES, undefined, { metadata: { name: 'default' } });
    const make = () =>
      registry.create(CONFIGMAPS, 'default', { metadata: { generateName: 'cm-' } });

    suffixes.push('aaaaa');
    assert.equal((await make()).metadata.name, 'cm-aaaaa');
    suffixes.push('aaaaa', 'aaaaa', 'bbbbb');
    assert.equal((await make()).metadata.name, 'cm-bbbbb', 'two collisions, then a free name');

    // Eight names taken in a row (the first and seven retries): the create fails as a
    // conflict on the last name tried, and nothing is written.
    suffixes.push(...Array(8).fill('aaaaa'));
    await assert.rejects(
      make(),
      (err: unknown) => err instanceof ApiError && err.reason === 'AlreadyExists',
    );
    assert.equal(suffixes.length, 0, 'every retry drew a new suffix');
    const names = (await store.list('/registry/core/configmaps/')).items.map((kv) => kv.key);
    assert.deepEqual(names, [
      '/registry/core/configmaps/default/cm-aaaaa',
      '/registry/core/configmaps/default/cm-bbbbb',
    ]);

    // A name the client chose is never changed.
    await assert.rejects(
      registry.create(CONFIGMAPS, 'default', { metadata: { name: 'cm-aaaaa' } }),
      (err: unknown) => err instanceof ApiError && err.reason === 'AlreadyExists',
    );
  } finally {
    await store.close();
  }
});

test("a write's hint is given before the store's event for it can arrive", async () => {
  const store = SqliteStore.open(':memory:');
  const hinted: string[] = [];
  const registry = new Registry(store, undefined, defaultAdmission(), {
    written: (key, value) => void hinted.push(`${key} ${value}`),
    // Reads go to the store (a plain object's own valueOf would not do).
    valueOf: () => undefined,
  });
  try {
    await registry.create(NAMESPACES, undefined, { metadata: { name: 'default' } });
    const seen: { key: string; hintedFirst: boolean }[] = [];
    const watch = store.watch('/registry/core/configmaps/', await store.currentRevision(), {
      onEvent: (e) =>
        seen.push({ key: e.kv.key, hintedFirst: hinted.includes(`${e.kv.key} ${e.kv.value}`) }),
    });
    const cm = await registry.create(CONFIGMAPS, 'default', {
      metadata: { name: 'cm' },
      data: { a: '1' },
    });
    await registry.update(CONFIGMAPS, 'default', 'cm', { ...cm, data: { a: '2' } }, undefined);
    while (seen.length < 2) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, [
      { key: '/registry/core/configmaps/default/cm', hintedFirst: true },
      { key: '/registry/core/configmaps/default/cm', hintedFirst: true },
    ]);
    watch.cancel();
  } finally {
    await store.close();
  }
});

test('a failed write withdraws its hint, so no hint outlives its write', async () => {
  const store = SqliteStore.open(':memory:');
  // Hints still waiting for their write's event, by key, as the watch cache keeps them.
  const outstanding = new Map<string, string>();
  const suffixes: string[] = [];
  const registry = new Registry(
    store,
    undefined,
    defaultAdmission(),
    {
      written: (key, value) => void outstanding.set(key, value),
      withdrawn: (key, value) => {
        if (outstanding.get(key) === value) outstanding.delete(key);
      },
      // Reads go to the store (a plain object's own valueOf would not do).
      valueOf: () => undefined,
    },
    () => suffixes.shift()!,
  );
  const watch = store.watch('/registry/', 0, {
    onEvent: (e) => {
      if (outstanding.get(e.kv.key) === e.kv.value) outstanding.delete(e.kv.key);
    },
  });
  const create = (metadata: Record<string, string>) =>
    registry.create(CONFIGMAPS, 'default', { metadata, data: { a: '1' } });
  /** An update of cm that reads it, lets `meanwhile` write, then writes its own change. */
  const raced = async (pinned: boolean, meanwhile: () => Promise<unknown>) => {
    const rv = (await registry.get(CONFIGMAPS, 'default', 'cm')).metadata.resourceVersion;
    let first = true;
    return registry.mutate(
      CONFIGMAPS,
      'default',
      'cm',
      pinned ? rv : undefined,
      undefined,
      async (cm) => {
        if (first) await meanwhile();
        first = false;
        return { ...cm, data: { a: String(Math.random()) } };
      },
    );
  };
  const touch = () =>
    registry.update(
      CONFIGMAPS,
      'default',
      'cm',
      { metadata: { name: 'cm' }, data: { a: 'touched' } },
      undefined,
    );
  try {
    await registry.create(NAMESPACES, undefined, { metadata: { name: 'default' } });
    await create({ name: 'cm' });
    await create({ name: 'g-xxxxx' });
    const cases: { name: string; write: () => Promise<unknown>; fails?: string }[] = [
      {
        name: 'a create of a taken name',
        write: () => create({ name: 'cm' }),
        fails: 'AlreadyExists',
      },
      {
        name: 'a generated name that is taken, then a free one',
        write: () => {
          suffixes.push('xxxxx', 'yyyyy');
          return create({ generateName: 'g-' });
        },
      },
      {
        name: 'a pinned update that loses a race',
        write: () => raced(true, touch),
        fails: 'Conflict',
      },
      {
        name: 'an unpinned update that loses a race, then tries again',
        write: () => raced(false, touch),
      },
      {
        name: 'an update of an object deleted meanwhile',
        write: () => raced(false, () => registry.delete(CONFIGMAPS, 'default', 'cm')),
        fails: 'NotFound',
      },
    ];
    for (const c of cases) {
      const outcome = await c.write().then(
        () => undefined,
        (err: unknown) => (err instanceof ApiError ? err.reason : String(err)),
      );
      assert.equal(outcome, c.fails, c.name);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual([...outstanding.keys()], [], c.name);
    }
  } finally {
    watch.cancel();
    await store.close();
  }
});

test('metadata.generation is kept for the kinds Kubernetes keeps it for, and only those', async () => {
  const store = SqliteStore.open(':memory:');
  const registry = new Registry(store, undefined, defaultAdmission());
  type Change = (o: any) => void;
  const cases: {
    name: string;
    rt: typeof PODS;
    body: object;
    created: number | undefined;
    changes: [string, Change, number | undefined][];
  }[] = [
    {
      name: 'ConfigMap',
      rt: CONFIGMAPS,
      body: { metadata: { name: 'cm', generation: 7 }, data: { a: '1' } },
      created: undefined,
      changes: [['data', (o) => (o.data = { a: '2' }), undefined]],
    },
    {
      name: 'Secret',
      rt: SECRETS,
      body: { metadata: { name: 's' }, stringData: { a: '1' } },
      created: undefined,
      changes: [['data', (o) => (o.data = { a: 'Mg==' }), undefined]],
    },
    {
      name: 'Pod',
      rt: PODS,
      body: { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'i:1' }] } },
      created: 1,
      changes: [
        ['labels', (o) => (o.metadata.labels = { a: 'b' }), 1],
        ['image', (o) => (o.spec.containers[0].image = 'i:2'), 2],
      ],
    },
    {
      name: 'EndpointSlice',
      rt: SLICES,
      body: {
        metadata: { name: 'e' },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['10.42.0.5'] }],
        ports: [{ port: 80 }],
      },
      created: 1,
      changes: [
        ['annotations', (o) => (o.metadata.annotations = { a: 'b' }), 1],
        ['endpoints', (o) => (o.endpoints[0].addresses = ['10.42.0.6']), 2],
        ['labels', (o) => (o.metadata.labels = { 'kubernetes.io/service-name': 'x' }), 3],
      ],
    },
  ];
  try {
    await registry.create(NAMESPACES, undefined, { metadata: { name: 'default' } });
    for (const c of cases) {
      let obj = await registry.create(c.rt, 'default', c.body);
      assert.equal(obj.metadata.generation, c.created, `${c.name} created`);
      for (const [what, change, want] of c.changes) {
        change(obj);
        obj = await registry.update(c.rt, 'default', obj.metadata.name!, obj, undefined);
        assert.equal(obj.metadata.generation, want, `${c.name} after a change of ${what}`);
      }
    }
  } finally {
    await store.close();
  }
});

test('a ConfigMap stored with a generation loses it at its next write', async () => {
  const store = SqliteStore.open(':memory:');
  const registry = new Registry(store, undefined, defaultAdmission());
  try {
    await registry.create(NAMESPACES, undefined, { metadata: { name: 'default' } });
    const old = await registry.create(CONFIGMAPS, 'default', { metadata: { name: 'old' } });
    // As an older flyCes stored it.
    const meta = { ...old.metadata, generation: 1 };
    delete meta.resourceVersion;
    const key = '/registry/core/configmaps/default/old';
    await store.update(key, JSON.stringify({ ...old, metadata: meta }));
    const stored = await registry.get(CONFIGMAPS, 'default', 'old');
    assert.equal(stored.metadata.generation, 1);
    stored.data = { a: '1' };
    const written = await registry.update(CONFIGMAPS, 'default', 'old', stored, undefined);
    assert.equal(written.metadata.generation, undefined);
  } finally {
    await store.close();
  }
});

test("workloads stored without today's template defaults: an update compares them defaulted", async () => {
  const store = SqliteStore.open(':memory:');
  const registry = new Registry(store);
  try {
    await registry.create(NAMESPACES, undefined, { metadata: { name: 'default' } });
    const template = (restartPolicy: string) => ({
      metadata: { labels: { app: 'a' } },
      spec: {
        restartPolicy,
        containers: [{ name: 'c', image: 'i:1', livenessProbe: { exec: { command: ['true'] } } }],
      },
    });
    const d = await registry.create(DEPLOYMENTS, 'default', {
      metadata: { name: 'a' },
      spec: { selector: { matchLabels: { app: 'a' } }, template: template('Always') },
    });
    const probe = d.spec.template.spec.containers[0].livenessProbe;
    assert.deepEqual(probe, {
      exec: { command: ['true'] },
      timeoutSeconds: 1,
      periodSeconds: 10,
      successThreshold: 1,
      failureThreshold: 3,
    });
    const job = await registry.create(JOBS, 'default', {
      metadata: { name: 'a' },
      spec: { template: template('Never') },
    });
    assert.equal(job.spec.template.spec.containers[0].livenessProbe.failureThreshold, 3);

    // As a flyCes before template defaults stored them.
    for (const key of ['/registry/apps/deployments/default/a', '/registry/batch/jobs/default/a']) {
      const stored = JSON.parse((await store.get(key))!.value);
      stored.spec.template.spec.containers[0].livenessProbe = { exec: { command: ['true'] } };
      await store.update(key, JSON.stringify(stored));
    }
    const oldD = await registry.get(DEPLOYMENTS, 'default', 'a');
    const labelled = { ...oldD, metadata: { ...oldD.metadata, labels: { x: 'y' } } };
    const updated = await registry.update(DEPLOYMENTS, 'default', 'a', labelled, undefined);
    assert.equal(updated.metadata.generation, 1, 'the defaults are no change of its spec');
    assert.equal(updated.spec.template.spec.containers[0].livenessProbe.periodSeconds, 10);

    const oldJob = await registry.get(JOBS, 'default', 'a');
    const suspended = { ...oldJob, spec: { ...oldJob.spec, suspend: true } };
    const job2 = await registry.update(JOBS, 'default', 'a', suspended, undefined);
    assert.equal(job2.spec.suspend, true, 'the template is not changed by its defaults');
  } finally {
    await store.close();
  }
});
