import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApiError } from '../src/api/errors.js';
import { byGroupResource } from '../src/api/resources.js';
import {
  controllerOf,
  type Condition,
  type Deployment,
  type KObject,
  type ReplicaSet,
} from '../src/api/types.js';
import { isReason, type KubeClient, type WatchEvent } from '../src/client/rest.js';
import {
  CONFIGMAPS,
  DEPLOYMENTS,
  deployment,
  NAMESPACES,
  PODS,
  RS,
  sleep,
  startCluster,
  waitFor,
  waitGone,
  waitRolledOut,
  type Cluster,
} from './helpers/workload.js';

/**
 * Garbage collection, finalizers and namespace deletion, driven with kubectl and the API:
 * the three propagation policies on a Deployment, finalizers holding objects, and a
 * namespace emptied before it goes. Ordering is proven from watch events, whose
 * resourceVersions come from the store's single revision counter.
 */

const SECRETS = byGroupResource.get('/secrets')!;
const LEASES = byGroupResource.get('coordination.k8s.io/leases')!;

interface Recorded {
  kind: string;
  name: string;
  type: string;
  rv: number;
  obj: KObject;
}

/** Records every watch event of the given types in `namespace` from `from` on. */
function record(c: Cluster, namespace: string, from: string, types = [DEPLOYMENTS, RS, PODS]) {
  const events: Recorded[] = [];
  const handles = types.map((rt) =>
    c.client.watch(
      namespace === '' ? NAMESPACES : rt,
      namespace || undefined,
      {
        resourceVersion: from,
      },
      (ev: WatchEvent) => {
        if (ev.type === 'BOOKMARK' || ev.type === 'ERROR') return;
        events.push({
          kind: ev.object.kind!,
          name: ev.object.metadata.name!,
          type: ev.type,
          rv: Number(ev.object.metadata.resourceVersion),
          obj: ev.object,
        });
      },
    ),
  );
  return { events, stop: () => handles.forEach((h) => h.stop()) };
}

/** A rolled-out Deployment of two pods, with the kubelet terminating pods slowly. */
async function rolledOutDeployment(t: TestContext): Promise<{ c: Cluster; d: Deployment }> {
  const c = await startCluster(t);
  c.kubelet({ terminationMs: 400 });
  await c.client.create(DEPLOYMENTS, deployment('web', 2));
  return { c, d: await waitRolledOut(c.client) };
}

async function list(client: KubeClient, rt = RS): Promise<KObject[]> {
  return (await client.list(rt, 'default')).items;
}

/** Deletes the Deployment with kubectl or the API, with the propagation policy given. */
async function deleteDeployment(c: Cluster, via: 'kubectl' | 'api', policy: string) {
  if (via === 'api') {
    await c.client.delete(DEPLOYMENTS, 'default', 'web', { propagationPolicy: policy });
    return;
  }
  const r = await c.kubectl(
    'delete',
    'deployment/web',
    `--cascade=${policy.toLowerCase()}`,
    '--wait=false',
  );
  assert.equal(r.code, 0, r.stderr);
}

for (const via of ['kubectl', 'api'] as const) {
  test(`background deletion (${via}): the owner goes at once, its dependents after`, async (t) => {
    const { c, d } = await rolledOutDeployment(t);
    const rec = record(c, 'default', d.metadata.resourceVersion!);
    t.after(() => rec.stop());
    await deleteDeployment(c, via, 'Background');
    await assert.rejects(c.client.get(DEPLOYMENTS, 'default', 'web'), (err) =>
      isReason(err, 'NotFound'),
    );
    await waitFor('the dependents to go', async () => {
      return (await list(c.client)).length === 0 && (await list(c.client, PODS)).length === 0;
    });
    await sleep(100);
    const deleted = rec.events.filter((e) => e.type === 'DELETED');
    const owner = deleted.find((e) => e.kind === 'Deployment')!;
    const dependents = deleted.filter((e) => e.kind !== 'Deployment');
    assert.equal(dependents.length, 3, 'one replica set and two pods');
    assert.ok(
      dependents.every((e) => e.rv > owner.rv),
      'dependents went after the owner',
    );
  });

  test(`foreground deletion (${via}): the owner waits for blocking dependents`, async (t) => {
    const { c, d } = await rolledOutDeployment(t);
    const rec = record(c, 'default', d.metadata.resourceVersion!);
    t.after(() => rec.stop());
    await deleteDeployment(c, via, 'Foreground');
    const marked = await c.client.get<Deployment>(DEPLOYMENTS, 'default', 'web');
    assert.ok(marked.metadata.deletionTimestamp, 'marked for deletion');
    assert.deepEqual(marked.metadata.finalizers, ['foregroundDeletion']);
    assert.equal(marked.metadata.deletionGracePeriodSeconds, 0);
    await waitGone('the deployment', () => c.client.get(DEPLOYMENTS, 'default', 'web'));
    await sleep(100);
    const deleted = rec.events.filter((e) => e.type === 'DELETED');
    const owner = deleted.find((e) => e.kind === 'Deployment')!;
    const rs = deleted.find((e) => e.kind === 'ReplicaSet')!;
    const pods = deleted.filter((e) => e.kind === 'Pod');
    assert.equal(pods.length, 2);
    assert.ok(
      pods.every((p) => p.rv < rs.rv),
      'the pods went before their replica set',
    );
    assert.ok(rs.rv < owner.rv, 'the replica set went before the deployment');
    // The replica set itself was deleted in the foreground, on its own pods.
    const rsMarked = rec.events.find(
      (e) => e.kind === 'ReplicaSet' && e.obj.metadata.deletionTimestamp,
    );
    assert.ok(rsMarked?.obj.metadata.finalizers?.includes('foregroundDeletion'));
  });

  test(`orphan deletion (${via}): dependents stay, without the owner reference`, async (t) => {
    const { c, d } = await rolledOutDeployment(t);
    const rec = record(c, 'default', d.metadata.resourceVersion!);
    t.after(() => rec.stop());
    const rsBefore = (await list(c.client)) as ReplicaSet[];
    const podsBefore = await list(c.client, PODS);
    await deleteDeployment(c, via, 'Orphan');
    await waitGone('the deployment', () => c.client.get(DEPLOYMENTS, 'default', 'web'));
    await sleep(300);
    const sets = (await list(c.client)) as ReplicaSet[];
    assert.deepEqual(
      sets.map((s) => s.metadata.uid),
      rsBefore.map((s) => s.metadata.uid),
    );
    assert.equal(sets[0].metadata.ownerReferences, undefined);
    const pods = await list(c.client, PODS);
    assert.deepEqual(
      pods.map((p) => p.metadata.uid).sort(),
      podsBefore.map((p) => p.metadata.uid).sort(),
    );
    assert.ok(pods.every((p) => controllerOf(p)?.uid === sets[0].metadata.uid));
    const orphaning = rec.events.find(
      (e) => e.kind === 'Deployment' && e.obj.metadata.finalizers?.includes('orphan'),
    );
    assert.ok(orphaning?.obj.metadata.deletionTimestamp, 'held by the orphan finalizer first');
  });
}

test('foreground deletion waits only for dependents that block their owner', async (t) => {
  for (const block of [true, false]) {
    await t.test(`blockOwnerDeletion ${block}`, async (t) => {
      const c = await startCluster(t);
      const owner = await c.client.create<KObject>(CONFIGMAPS, configMap('owner'));
      const dep = configMap('dependent', ['example.com/hold']);
      dep.metadata.ownerReferences = [
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          name: 'owner',
          uid: owner.metadata.uid!,
          blockOwnerDeletion: block,
        },
      ];
      await c.client.create(CONFIGMAPS, dep);
      await c.client.delete(CONFIGMAPS, 'default', 'owner', { propagationPolicy: 'Foreground' });
      const held = await waitFor('the dependent to be marked', async () => {
        const cm = await c.client.get(CONFIGMAPS, 'default', 'dependent');
        return cm.metadata.deletionTimestamp ? cm : undefined;
      });
      // Its own foregroundDeletion finalizer (it has no dependents) may already be gone.
      assert.equal(held.metadata.finalizers?.[0], 'example.com/hold');
      if (block) {
        await sleep(1500);
        const stillThere = await c.client.get(CONFIGMAPS, 'default', 'owner');
        assert.deepEqual(stillThere.metadata.finalizers, ['foregroundDeletion']);
        await release(c.client, 'dependent');
        await waitGone('the owner', () => c.client.get(CONFIGMAPS, 'default', 'owner'));
      } else {
        await waitGone('the owner', () => c.client.get(CONFIGMAPS, 'default', 'owner'));
        const dependent = await c.client.get(CONFIGMAPS, 'default', 'dependent');
        assert.ok(dependent.metadata.deletionTimestamp, 'the dependent still finalizing');
        await release(c.client, 'dependent');
      }
      await waitGone('the dependent', () => c.client.get(CONFIGMAPS, 'default', 'dependent'));
    });
  }
});

function configMap(name: string, finalizers?: string[], namespace = 'default'): KObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace, ...(finalizers ? { finalizers } : {}) },
    data: { k: 'v' },
  };
}

/** Removes the test's own finalizer, keeping any others (the GC's among them). */
async function release(client: KubeClient, name: string, namespace = 'default') {
  for (;;) {
    const cm = await client.get(CONFIGMAPS, namespace, name);
    const rest = (cm.metadata.finalizers ?? []).filter((f) => f !== 'example.com/hold');
    try {
      await client.update(CONFIGMAPS, { ...cm, metadata: { ...cm.metadata, finalizers: rest } });
      return;
    } catch (err) {
      if (!isReason(err, 'Conflict')) throw err;
    }
  }
}

test('finalizers hold a deleted object until the last one is removed', async (t) => {
  const c = await startCluster(t);
  await c.client.create(CONFIGMAPS, configMap('held', ['example.com/a', 'example.com/b']));
  const del = await c.kubectl('delete', 'configmap/held', '--wait=false');
  assert.equal(del.code, 0, del.stderr);
  const marked = await c.client.get(CONFIGMAPS, 'default', 'held');
  assert.ok(marked.metadata.deletionTimestamp);
  assert.equal(marked.metadata.deletionGracePeriodSeconds, 0);

  // Deleting again changes nothing; other updates still work; no finalizer can be added.
  await c.client.delete(CONFIGMAPS, 'default', 'held');
  const again = await c.client.get(CONFIGMAPS, 'default', 'held');
  assert.equal(again.metadata.deletionTimestamp, marked.metadata.deletionTimestamp);
  const patched = await c.kubectl(
    'patch',
    'configmap/held',
    '--type=merge',
    '-p',
    '{"data":{"k":"w"}}',
  );
  assert.equal(patched.code, 0, patched.stderr);
  const add = await c.kubectl(
    'patch',
    'configmap/held',
    '--type=json',
    '-p',
    '[{"op":"add","path":"/metadata/finalizers/-","value":"example.com/c"}]',
  );
  assert.notEqual(add.code, 0);
  assert.match(add.stderr, /no new finalizers can be added if the object is being deleted/);
  const current = await c.client.get(CONFIGMAPS, 'default', 'held');
  await assert.rejects(
    c.client.update(CONFIGMAPS, {
      ...current,
      metadata: { ...current.metadata, finalizers: ['example.com/a', 'example.com/b', 'x.io/c'] },
    }),
    (err) => isReason(err, 'Invalid'),
  );

  const one = await c.kubectl(
    'patch',
    'configmap/held',
    '--type=json',
    '-p',
    '[{"op":"remove","path":"/metadata/finalizers/0"}]',
  );
  assert.equal(one.code, 0, one.stderr);
  const left = await c.client.get(CONFIGMAPS, 'default', 'held');
  assert.deepEqual(left.metadata.finalizers, ['example.com/b']);
  assert.equal(left.data.k, 'w');
  const last = await c.kubectl(
    'patch',
    'configmap/held',
    '--type=merge',
    '-p',
    '{"metadata":{"finalizers":null}}',
  );
  assert.equal(last.code, 0, last.stderr);
  await assert.rejects(c.client.get(CONFIGMAPS, 'default', 'held'), (err) =>
    isReason(err, 'NotFound'),
  );
});

test('a deleted namespace is emptied of every kind, waits for finalizers, then goes', async (t) => {
  const c = await startCluster(t);
  c.kubelet({ terminationMs: 300 });
  // `kubectl create namespace` sends protobuf, which the API server does not read yet.
  await c.client.create(NAMESPACES, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'doomed' },
  });
  const d = deployment('web', 2);
  d.metadata.namespace = 'doomed';
  await c.client.create(DEPLOYMENTS, d);
  await c.client.create(CONFIGMAPS, configMap('held', ['example.com/hold'], 'doomed'));
  await c.client.create(SECRETS, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 's', namespace: 'doomed' },
    data: { k: 'dg==' },
  });
  await c.client.create(LEASES, {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'l', namespace: 'doomed' },
    spec: {},
  });
  await waitFor('the pods', async () => (await c.client.list(PODS, 'doomed')).items.length === 2);

  const del = await c.kubectl('delete', 'namespace', 'doomed', '--wait=false');
  assert.equal(del.code, 0, del.stderr);
  const get = await c.kubectl('get', 'namespace', 'doomed');
  assert.match(get.stdout, /doomed\s+Terminating/);

  const manifest = join(c.api.dir, 'late.json');
  writeFileSync(manifest, JSON.stringify(configMap('late', undefined, 'doomed')));
  const refused = await c.kubectl('create', '-f', manifest);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /forbidden/i);
  assert.match(
    refused.stderr,
    /unable to create new content in namespace doomed because it is being terminated/,
  );
  await assert.rejects(
    c.client.create(CONFIGMAPS, configMap('late2', undefined, 'doomed')),
    (err: ApiError) =>
      isReason(err, 'Forbidden') &&
      err.code === 403 &&
      err.message.startsWith('configmaps "late2" is forbidden: ') &&
      err.details?.causes?.[0]?.reason === 'NamespaceTerminating',
  );

  // Everything but the held config map goes; the namespace says what holds it.
  const waiting = await waitFor('only the held object to remain', async () => {
    const ns = await c.client.get(NAMESPACES, undefined, 'doomed');
    const conds = (ns.status?.conditions ?? []) as Condition[];
    const left = conds.find((x) => x.type === 'NamespaceContentRemaining');
    return left?.message === 'Objects left: configmaps: 1 object' && ns;
  });
  const conds = waiting.status.conditions as Condition[];
  const byType = (type: string) => conds.find((x) => x.type === type);
  assert.equal(waiting.status.phase, 'Terminating');
  assert.deepEqual(waiting.metadata.finalizers, ['kubernetes']);
  assert.equal(byType('NamespaceContentRemaining')?.status, 'True');
  assert.deepEqual(
    [
      byType('NamespaceFinalizersRemaining')?.status,
      byType('NamespaceFinalizersRemaining')?.reason,
    ],
    ['True', 'SomeFinalizersRemain'],
  );
  assert.match(byType('NamespaceFinalizersRemaining')!.message!, /example\.com\/hold: 1 object/);
  for (const rt of [DEPLOYMENTS, RS, PODS, SECRETS, LEASES]) {
    assert.equal((await c.client.list(rt, 'doomed')).items.length, 0, rt.plural);
  }
  const describe = await c.kubectl('describe', 'namespace', 'doomed');
  assert.match(describe.stdout, /NamespaceFinalizersRemaining/);

  await sleep(700);
  await c.client.get(NAMESPACES, undefined, 'doomed'); // still there while held
  await release(c.client, 'held', 'doomed');
  await waitGone('the namespace', () => c.client.get(NAMESPACES, undefined, 'doomed'));
  const gone = await c.kubectl('get', 'namespace', 'doomed');
  assert.match(gone.stderr, /NotFound|not found/);
});
