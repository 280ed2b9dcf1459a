import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { byGroupResource } from '../src/api/resources.js';
import {
  controllerOf,
  nowTimestamp,
  type Deployment,
  type KObject,
  type Pod,
  type ReplicaSet,
} from '../src/api/types.js';
import { isReason, type KubeClient } from '../src/client/rest.js';
import { ControllerManager } from '../src/controllers/manager.js';
import { startTestApiServer, type TestApiServer } from './helpers/apiserver.js';

const DEPLOYMENTS = byGroupResource.get('apps/deployments')!;
const RS = byGroupResource.get('apps/replicasets')!;
const PODS = byGroupResource.get('/pods')!;
const NAMESPACES = byGroupResource.get('/namespaces')!;

async function setup(t: TestContext): Promise<{ api: TestApiServer; client: KubeClient }> {
  const api = await startTestApiServer();
  const manager = new ControllerManager(api.client);
  await manager.start();
  t.after(async () => {
    await manager.stop();
    await api.stop();
  });
  return { api, client: api.client };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function deployment(name: string, replicas: number, image = 'nginx:1.25'): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'web', image }] },
      },
    },
  };
}

async function pods(client: KubeClient, namespace = 'default'): Promise<Pod[]> {
  return (await client.list<Pod>(PODS, namespace)).items.filter(
    (p) => !p.metadata.deletionTimestamp,
  );
}

function isReady(pod: Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** What a node agent would report for a started pod; the tests run no agent. */
async function markReady(client: KubeClient, pod: Pod): Promise<void> {
  const startedAt = nowTimestamp();
  const status = {
    phase: 'Running',
    conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: startedAt }],
    containerStatuses: pod.spec.containers.map((c) => ({
      name: c.name,
      ready: true,
      restartCount: 0,
      image: c.image,
      imageID: '',
      state: { running: { startedAt } },
      lastState: {},
    })),
  };
  try {
    await client.updateStatus(PODS, { ...pod, status });
  } catch (err) {
    if (!isReason(err, 'Conflict') && !isReason(err, 'NotFound')) throw err;
  }
}

/** Marks every pod ready shortly after it appears, until the returned stop is called. */
function fakeNode(client: KubeClient, check?: (pods: Pod[]) => void): () => Promise<void> {
  let stopped = false;
  let failure: unknown;
  const loop = (async () => {
    while (!stopped) {
      try {
        const current = await pods(client);
        check?.(current);
        await Promise.all(current.filter((p) => !isReady(p)).map((p) => markReady(client, p)));
      } catch (err) {
        failure ??= err;
      }
      await sleep(15);
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    if (failure) throw failure;
  };
}

async function getDeployment(client: KubeClient, name: string): Promise<Deployment> {
  return client.get<Deployment>(DEPLOYMENTS, 'default', name);
}

/** The checks `kubectl rollout status` makes before it reports success. */
function rolloutComplete(d: Deployment): boolean {
  const s = d.status ?? {};
  const want = d.spec.replicas ?? 1;
  const progressing = s.conditions?.find((c) => c.type === 'Progressing');
  return (
    (d.metadata.generation ?? 0) <= (s.observedGeneration ?? 0) &&
    progressing?.reason !== 'ProgressDeadlineExceeded' &&
    s.updatedReplicas === want &&
    s.replicas === want &&
    s.availableReplicas === want
  );
}

async function waitRolledOut(client: KubeClient, name: string): Promise<Deployment> {
  return waitFor(`deployment ${name} to roll out`, async () => {
    const d = await getDeployment(client, name);
    return rolloutComplete(d) && d;
  });
}

async function scaleTo(client: KubeClient, name: string, replicas: number): Promise<void> {
  await client.patch(DEPLOYMENTS, 'default', name, { spec: { replicas } });
}

test('a deployment gets one replica set and owned pods, and scales both ways', async (t) => {
  const { client } = await setup(t);
  const stopNode = fakeNode(client);
  t.after(() => stopNode().catch(() => undefined));
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

  const owned = await pods(client);
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
  assert.equal((await pods(client)).length, 5);
  await scaleTo(client, 'web', 1);
  const done = await waitRolledOut(client, 'web');
  assert.equal((await pods(client)).length, 1);
  assert.equal(done.metadata.annotations?.['deployment.kubernetes.io/revision'], '1');
  const available = done.status?.conditions?.find((c) => c.type === 'Available');
  assert.equal(available?.reason, 'MinimumReplicasAvailable');
});

test('a rolling update stays within maxSurge and maxUnavailable', async (t) => {
  const { api, client } = await setup(t);
  const replicas = 6;
  const spec = deployment('web', replicas);
  spec.spec.strategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } };
  const violations: string[] = [];
  let samples = 0;
  let checking = false;
  const stopNode = fakeNode(client, (current) => {
    if (!checking) return;
    samples++;
    const ready = current.filter(isReady).length;
    if (current.length > replicas + 1) violations.push(`${current.length} pods`);
    if (ready < replicas - 1) violations.push(`${ready} ready pods`);
  });
  t.after(() => stopNode().catch(() => undefined));
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
  await stopNode();

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
  const current = await pods(client);
  assert.ok(current.every((p) => p.spec.containers[0].image === 'nginx:1.26'));
  await assertKubectlRolloutStatus(t, api);
});

/** kubectl itself agrees the rollout finished, when kubectl is installed. */
async function assertKubectlRolloutStatus(t: TestContext, api: TestApiServer): Promise<void> {
  const kubeconfig = api.kubeconfig();
  const args = ['--kubeconfig', kubeconfig, 'rollout', 'status', 'deployment/web', '--timeout=20s'];
  // Asynchronously: the API server under test runs in this very process.
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)('kubectl', args, { encoding: 'utf8' }));
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') return t.diagnostic('kubectl is not installed; skipped');
    assert.fail(`kubectl rollout status failed: ${e.stderr ?? e.message}`);
  }
  assert.match(stdout, /successfully rolled out/);
}

test('the Recreate strategy never runs old and new pods together', async (t) => {
  const { client } = await setup(t);
  let mixed = 0;
  const stopNode = fakeNode(client, (current) => {
    const images = new Set(current.map((p) => p.spec.containers[0].image));
    if (images.size > 1) mixed++;
  });
  t.after(() => stopNode().catch(() => undefined));
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
  const { client } = await setup(t);
  const stopNode = fakeNode(client);
  t.after(() => stopNode().catch(() => undefined));
  await client.create(DEPLOYMENTS, deployment('web', 2));
  await waitRolledOut(client, 'web');
  const [victim] = await pods(client);
  await client.delete(PODS, 'default', victim.metadata.name!);
  await waitFor('a replacement pod', async () => {
    const current = await pods(client);
    const names = current.map((p) => p.metadata.name);
    return current.length === 2 && !names.includes(victim.metadata.name) && current.every(isReady);
  });
});

test('deleting a deployment in the background collects its replica sets and pods', async (t) => {
  const { client } = await setup(t);
  const stopNode = fakeNode(client);
  t.after(() => stopNode().catch(() => undefined));
  await client.create(DEPLOYMENTS, deployment('web', 3));
  await waitRolledOut(client, 'web');
  await client.delete(DEPLOYMENTS, 'default', 'web');
  await waitFor('replica sets and pods to be collected', async () => {
    const sets = (await client.list(RS, 'default')).items;
    return sets.length === 0 && (await client.list(PODS, 'default')).items.length === 0;
  });
});

test('foreground deletion removes pods and replica sets before the deployment', async (t) => {
  const { client } = await setup(t);
  const stopNode = fakeNode(client);
  t.after(() => stopNode().catch(() => undefined));
  await client.create(DEPLOYMENTS, deployment('web', 2));
  await waitRolledOut(client, 'web');
  await client.delete(DEPLOYMENTS, 'default', 'web', { propagationPolicy: 'Foreground' });
  let sawOwnerWithoutDependents = false;
  await waitFor('the deployment to go', async () => {
    const left = (await client.list(RS, 'default')).items.length;
    try {
      await getDeployment(client, 'web');
      if (left === 0 && (await client.list(PODS, 'default')).items.length > 0) {
        sawOwnerWithoutDependents = true;
      }
      return false;
    } catch (err) {
      return isReason(err, 'NotFound') && left === 0;
    }
  });
  assert.equal((await client.list(PODS, 'default')).items.length, 0);
  assert.equal(sawOwnerWithoutDependents, false);
});

test('orphan deletion leaves the replica set and its pods without the deployment', async (t) => {
  const { client } = await setup(t);
  const stopNode = fakeNode(client);
  t.after(() => stopNode().catch(() => undefined));
  await client.create(DEPLOYMENTS, deployment('web', 2));
  await waitRolledOut(client, 'web');
  await client.delete(DEPLOYMENTS, 'default', 'web', { propagationPolicy: 'Orphan' });
  await waitFor('the deployment to go', async () => {
    try {
      await getDeployment(client, 'web');
      return false;
    } catch (err) {
      return isReason(err, 'NotFound');
    }
  });
  await sleep(500);
  const sets = (await client.list<ReplicaSet>(RS, 'default')).items;
  assert.equal(sets.length, 1);
  assert.equal(sets[0].metadata.ownerReferences, undefined);
  const current = await pods(client);
  assert.equal(current.length, 2);
  assert.ok(current.every((p) => controllerOf(p)?.uid === sets[0].metadata.uid));
});

test('a deleted namespace is emptied and then removed', async (t) => {
  const { client } = await setup(t);
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
  await waitFor('the namespace to go', async () => {
    try {
      await client.get(NAMESPACES, undefined, 'doomed');
      return false;
    } catch (err) {
      return isReason(err, 'NotFound');
    }
  });
  for (const rt of [DEPLOYMENTS, RS, PODS]) {
    assert.equal((await client.list(rt, 'doomed')).items.length, 0, rt.plural);
  }
});

test('a replica set adopts matching orphans and releases pods that stop matching', async (t) => {
  const { client } = await setup(t);
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
    const current = await pods(client);
    const owned = current.filter((p) => controllerOf(p)?.uid === rs.metadata.uid);
    return current.length === 2 && owned.length === 2;
  });
  assert.ok((await pods(client)).some((p) => p.metadata.name === orphan.metadata.name));

  const stray = await client.get<Pod>(PODS, 'default', 'stray');
  stray.metadata.labels = { app: 'elsewhere' };
  await client.update(PODS, stray);
  await waitFor('the release and a replacement', async () => {
    const current = await pods(client);
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
      most = Math.max(most, (await pods(client)).length);
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
  await waitFor('the first pods', async () => (await pods(client)).length > 0);
  await first.stop();
  const midway = (await pods(client)).length;

  const second = new ControllerManager(client, { controllers: ['replicaset'] });
  await second.start();
  t.after(() => second.stop());
  await waitFor('all replicas', async () => (await pods(client)).length === replicas);
  await sleep(500);
  watching = false;
  await watcher;
  assert.ok(midway < replicas, `stopped midway (${midway} pods)`);
  assert.equal((await pods(client)).length, replicas);
  assert.ok(most <= replicas, `at most ${most} pods existed`);
  const status = (await client.get<ReplicaSet>(RS, 'default', 'burst')).status;
  assert.equal(status?.replicas, replicas);
});
