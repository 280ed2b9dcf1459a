import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  controllerOf,
  type Deployment,
  type KObject,
  type Pod,
  type ReplicaSet,
} from '../src/api/types.js';
import { isReason, type KubeClient } from '../src/client/rest.js';
import { ControllerManager } from '../src/controllers/manager.js';
import { startTestApiServer } from './helpers/apiserver.js';
import {
  DEPLOYMENTS,
  deployment,
  isReady,
  kubectlOk,
  listPods,
  live,
  livePods,
  NAMESPACES,
  PODS,
  RS,
  rolloutComplete,
  sleep,
  startCluster,
  waitFor,
  waitGone,
  waitRolledOut,
  type Cluster,
  type KubeletOptions,
} from './helpers/workload.js';

/**
 * Deployments, ReplicaSets, garbage collection and namespaces against a real API server
 * and the whole controller manager, with no scheduler: the fake kubelet leaves pods
 * unbound, reports them Running and Ready, and leaves their deletion to the API server.
 */

/** Starts the fake kubelet the way these tests have it: every 15 ms, on unbound pods. */
function fakeNode(c: Cluster, sample?: KubeletOptions['sample']) {
  return c.kubelet({ node: () => undefined, terminationMs: Infinity, periodMs: 15, sample });
}

/** Starts a cluster with the fake node and waits for Deployment `web` to roll out. */
async function rolledOutWeb(t: TestContext, replicas: number): Promise<KubeClient> {
  const c = await startCluster(t);
  fakeNode(c);
  await c.client.create(DEPLOYMENTS, deployment('web', replicas));
  await waitRolledOut(c.client, 'web');
  return c.client;
}

async function getDeployment(client: KubeClient, name: string): Promise<Deployment> {
  return client.get<Deployment>(DEPLOYMENTS, 'default', name);
}

async function scaleTo(client: KubeClient, name: string, replicas: number): Promise<void> {
  await client.patch(DEPLOYMENTS, 'default', name, { spec: { replicas } });
}

test('a deployment gets one replica set and owned pods, and scales both ways', async (t) => {
  const c = await startCluster(t);
  const { client } = c;
  fakeNode(c);
  const d = await client.create<Deployment>(DEPLOYMENTS, deployment('web', 3));
  await waitRolledOut(client, 'web');

  const sets = (await client.list<ReplicaSet>(RS, 'default')).items;
  assert.equal(sets.length, 1);
  const rs = sets[0];
  const hash = rs.metadata.labels?.['pod-template-hash'];
  assert.ok(hash, 'replica set carries the template hash');
  assert.equal(rs.metadata.name, `web-${hash}`);
  assert.equal(rs.spec.selector.matchLabels?.['pod-template-hash'], hash);
  assert.equal(controllerOf(rs)?.uid, d.metadata.uid);
  assert.equal(rs.metadata.annotations?.['deployment.kubernetes.io/revision'], '1');

  const owned = await livePods(client);
  assert.equal(owned.length, 3);
  for (const pod of owned) {
    const ref = controllerOf(pod);
    assert.equal(ref?.uid, rs.metadata.uid);
    assert.equal(ref?.blockOwnerDeletion, true);
    assert.equal(pod.metadata.labels?.['pod-template-hash'], hash);
    assert.match(pod.metadata.name!, new RegExp(`^web-${hash}-[a-z0-9]{5}$`));
  }

  await scaleTo(client, 'web', 5);
  await waitRolledOut(client, 'web');
  assert.equal((await livePods(client)).length, 5);
  await scaleTo(client, 'web', 1);
  const done = await waitRolledOut(client, 'web');
  assert.equal((await livePods(client)).length, 1);
  assert.equal(done.metadata.annotations?.['deployment.kubernetes.io/revision'], '1');
  const available = done.status?.conditions?.find((c) => c.type === 'Available');
  assert.equal(available?.reason, 'MinimumReplicasAvailable');
});

test('a rolling update stays within maxSurge and maxUnavailable', async (t) => {
  const c = await startCluster(t);
  const { client } = c;
  const replicas = 6;
  const spec = deployment('web', replicas);
  spec.spec.strategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } };
  const violations: string[] = [];
  let samples = 0;
  let checking = false;
  const node = fakeNode(c, (pods) => {
    if (!checking) return;
    samples++;
    const current = live(pods);
    const ready = current.filter(isReady).length;
    if (current.length > replicas + 1) violations.push(`${current.length} pods`);
    if (ready < replicas - 1) violations.push(`${ready} ready pods`);
  });
  await client.create(DEPLOYMENTS, spec);
  await waitRolledOut(client, 'web');

  checking = true;
  const d = await getDeployment(client, 'web');
  d.spec.template.spec.containers[0].image = 'nginx:1.26';
  await client.update(DEPLOYMENTS, d);
  const done = await waitFor('the new template to roll out', async () => {
    const current = await getDeployment(client, 'web');
    return current.metadata.generation === 2 && rolloutComplete(current) && current;
  });
  checking = false;
  await node.stop();

  assert.deepEqual(violations, []);
  assert.ok(samples >= 3, `sampled the rollout ${samples} times`);
  assert.equal(done.metadata.annotations?.['deployment.kubernetes.io/revision'], '2');
  const progressing = done.status?.conditions?.find((c) => c.type === 'Progressing');
  assert.equal(progressing?.reason, 'NewReplicaSetAvailable');
  assert.equal(done.status?.unavailableReplicas, 0);
  const sets = (await client.list<ReplicaSet>(RS, 'default')).items;
  assert.equal(sets.length, 2, 'the old replica set stays as history');
  const old = sets.find(
    (rs) => rs.metadata.annotations?.['deployment.kubernetes.io/revision'] === '1',
  );
  assert.equal(old?.spec.replicas, 0);
  const current = await livePods(client);
  assert.ok(current.every((p) => p.spec.containers[0].image === 'nginx:1.26'));
  // kubectl itself agrees the rollout finished.
  await kubectlOk(
    c,
    ['rollout', 'status', 'deployment/web', '--timeout=20s'],
    /successfully rolled out/,
  );
});

test('the Recreate strategy never runs old and new pods together', async (t) => {
  const c = await startCluster(t);
  const { client } = c;
  let mixed = 0;
  fakeNode(c, (pods) => {
    const images = new Set(live(pods).map((p) => p.spec.containers[0].image));
    if (images.size > 1) mixed++;
  });
  const spec = deployment('web', 3);
  spec.spec.strategy = { type: 'Recreate' };
  await client.create(DEPLOYMENTS, spec);
  await waitRolledOut(client, 'web');
  await client.patch(DEPLOYMENTS, 'default', 'web', {
    spec: { template: { spec: { containers: [{ name: 'web', image: 'nginx:1.26' }] } } },
  });
  await waitFor('recreate rollout', async () => {
    const d = await getDeployment(client, 'web');
    return d.metadata.generation === 2 && rolloutComplete(d);
  });
  assert.equal(mixed, 0);
});

test('a deleted pod is replaced', async (t) => {
  const client = await rolledOutWeb(t, 2);
  const [victim] = await livePods(client);
  await client.delete(PODS, 'default', victim.metadata.name!);
  await waitFor('a replacement pod', async () => {
    const current = await livePods(client);
    const names = current.map((p) => p.metadata.name);
    return current.length === 2 && !names.includes(victim.metadata.name) && current.every(isReady);
  });
});

test('deleting a deployment in the background collects its replica sets and pods', async (t) => {
  const client = await rolledOutWeb(t, 3);
  await client.delete(DEPLOYMENTS, 'default', 'web');
  await waitFor('replica sets and pods to be collected', async () => {
    const sets = (await client.list(RS, 'default')).items;
    return sets.length === 0 && (await listPods(client)).length === 0;
  });
});

test('foreground deletion removes pods and replica sets before the deployment', async (t) => {
  const client = await rolledOutWeb(t, 2);
  await client.delete(DEPLOYMENTS, 'default', 'web', { propagationPolicy: 'Foreground' });
  let sawOwnerWithoutDependents = false;
  await waitFor('the deployment to go', async () => {
    const left = (await client.list(RS, 'default')).items.length;
    try {
      await getDeployment(client, 'web');
      if (left === 0 && (await listPods(client)).length > 0) {
        sawOwnerWithoutDependents = true;
      }
      return false;
    } catch (err) {
      return isReason(err, 'NotFound') && left === 0;
    }
  });
  assert.equal((await listPods(client)).length, 0);
  assert.equal(sawOwnerWithoutDependents, false);
});

test('orphan deletion leaves the replica set and its pods without the deployment', async (t) => {
  const client = await rolledOutWeb(t, 2);
  await client.delete(DEPLOYMENTS, 'default', 'web', { propagationPolicy: 'Orphan' });
  await waitGone('the deployment', () => getDeployment(client, 'web'));
  await sleep(500);
  const sets = (await client.list<ReplicaSet>(RS, 'default')).items;
  assert.equal(sets.length, 1);
  assert.equal(sets[0].metadata.ownerReferences, undefined);
  const current = await livePods(client);
  assert.equal(current.length, 2);
  assert.ok(current.every((p) => controllerOf(p)?.uid === sets[0].metadata.uid));
});

test('a deleted namespace is emptied and then removed', async (t) => {
  const { client } = await startCluster(t);
  await client.create(NAMESPACES, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'doomed' },
  });
  const d = deployment('web', 2);
  d.metadata.namespace = 'doomed';
  await client.create(DEPLOYMENTS, d);
  await waitFor('pods in the namespace', async () => {
    return (await client.list(PODS, 'doomed')).items.length === 2;
  });
  await client.delete(NAMESPACES, undefined, 'doomed');
  await waitGone('the namespace', () => client.get(NAMESPACES, undefined, 'doomed'));
  for (const rt of [DEPLOYMENTS, RS, PODS]) {
    assert.equal((await client.list(rt, 'doomed')).items.length, 0, rt.plural);
  }
});

test('a replica set adopts matching orphans and releases pods that stop matching', async (t) => {
  const { client } = await startCluster(t);
  const orphan = await client.create<Pod>(PODS, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'stray', namespace: 'default', labels: { app: 'adopt' } },
    spec: { containers: [{ name: 'c', image: 'busybox' }] },
  });
  const rs = await client.create<ReplicaSet>(RS, {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name: 'adopt', namespace: 'default' },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'adopt' } },
      template: {
        metadata: { labels: { app: 'adopt' } },
        spec: { containers: [{ name: 'c', image: 'busybox' }] },
      },
    },
  });
  await waitFor('two owned pods', async () => {
    const current = await livePods(client);
    const owned = current.filter((p) => controllerOf(p)?.uid === rs.metadata.uid);
    return current.length === 2 && owned.length === 2;
  });
  assert.ok((await livePods(client)).some((p) => p.metadata.name === orphan.metadata.name));

  const stray = await client.get<Pod>(PODS, 'default', 'stray');
  stray.metadata.labels = { app: 'elsewhere' };
  await client.update(PODS, stray);
  await waitFor('the release and a replacement', async () => {
    const current = await livePods(client);
    const released = current.find((p) => p.metadata.name === 'stray');
    const owned = current.filter((p) => controllerOf(p)?.uid === rs.metadata.uid);
    return released && !released.metadata.ownerReferences?.length && owned.length === 2;
  });
});

test('a restarted manager never creates more pods than replicas', async (t) => {
  const api = await startTestApiServer();
  t.after(() => api.stop());
  const { client } = api;
  const replicas = 120;
  let most = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      most = Math.max(most, (await livePods(client)).length);
      await sleep(10);
    }
  })();
  const rs: ReplicaSet = {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name: 'burst', namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'burst' } },
      template: {
        metadata: { labels: { app: 'burst' } },
        spec: { containers: [{ name: 'c', image: 'busybox' }] },
      },
    },
  };
  const first = new ControllerManager(client, { controllers: ['replicaset'] });
  await first.start();
  await client.create(RS, rs as KObject);
  await waitFor('the first pods', async () => (await livePods(client)).length > 0);
  await first.stop();
  const midway = (await livePods(client)).length;

  const second = new ControllerManager(client, { controllers: ['replicaset'] });
  await second.start();
  t.after(() => second.stop());
  await waitFor('all replicas', async () => (await livePods(client)).length === replicas);
  await sleep(500);
  watching = false;
  await watcher;
  assert.ok(midway < replicas, `stopped midway (${midway} pods)`);
  assert.equal((await livePods(client)).length, replicas);
  assert.ok(most <= replicas, `at most ${most} pods existed`);
  const status = (await client.get<ReplicaSet>(RS, 'default', 'burst')).status;
  assert.equal(status?.replicas, replicas);
});
