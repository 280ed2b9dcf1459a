import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual as deepEqual } from 'node:util';
import type { Condition, Deployment, ReplicaSet } from '../src/api/types.js';
import type { KubeClient } from '../src/client/rest.js';
import {
  DEPLOYMENTS,
  deployment,
  isReady,
  kubectlOk,
  live,
  livePods,
  RS,
  sleep,
  startCluster,
  waitFor,
  waitRolledOut,
  type Cluster,
} from './helpers/workload.js';

/**
 * Deployment rollouts driven and checked with the real kubectl: rollout status, history,
 * undo, pause and resume, restart, the progress deadline, and the pod-count guarantees of
 * the RollingUpdate and Recreate strategies. A fake kubelet stands in for the node agent.
 */

const CHANGE_CAUSE = 'kubernetes.io/change-cause';
const REVISION = 'deployment.kubernetes.io/revision';

const get = (client: KubeClient, name = 'web') =>
  client.get<Deployment>(DEPLOYMENTS, 'default', name);

const progressing = (d: Deployment): Condition | undefined =>
  d.status?.conditions?.find((c) => c.type === 'Progressing');

const available = (d: Deployment): Condition | undefined =>
  d.status?.conditions?.find((c) => c.type === 'Available');

/** Waits until the Deployment's Progressing condition gives `reason`; returns the Deployment. */
function waitProgressing(client: KubeClient, reason: string, what: string, ms?: number) {
  return waitFor(
    what,
    async () => {
      const d = await get(client);
      return progressing(d)?.reason === reason && d;
    },
    ms,
  );
}

async function replicaSets(client: KubeClient): Promise<ReplicaSet[]> {
  return (await client.list<ReplicaSet>(RS, 'default')).items;
}

/** kubectl rollout status must succeed; returns its output. */
async function statusOk(c: Cluster, name = 'web'): Promise<string> {
  const r = await c.kubectl('rollout', 'status', `deployment/${name}`, '--timeout=30s');
  assert.equal(r.code, 0, `rollout status failed: ${r.stderr}`);
  assert.match(r.stdout, /successfully rolled out/);
  return r.stdout;
}

/** Every Progressing condition the Deployment passes through, from a watch on it. */
function recordReasons(client: KubeClient, from: string) {
  const reasons: string[] = [];
  const conditions: Condition[] = [];
  const handle = client.watch<Deployment>(
    DEPLOYMENTS,
    'default',
    { resourceVersion: from, fieldSelector: 'metadata.name=web' },
    (ev) => {
      const cond = ev.object?.status && progressing(ev.object);
      if (!cond || deepEqual(cond, conditions.at(-1))) return;
      conditions.push(cond);
      if (reasons.at(-1) !== cond.reason) reasons.push(cond.reason!);
    },
  );
  return { reasons, conditions, stop: () => handle.stop() };
}

test('the progress deadline: conditions, a self-requeue, and rollout status failing', async (t) => {
  const c = await startCluster(t);
  c.kubelet({ unready: (p) => p.spec.containers[0].image === 'broken' });
  const spec = deployment('web', 2);
  spec.spec.progressDeadlineSeconds = 2;
  const created = await c.client.create<Deployment>(DEPLOYMENTS, spec);
  const watch = recordReasons(c.client, created.metadata.resourceVersion!);
  t.after(() => watch.stop());
  await statusOk(c);

  const done = await get(c.client);
  const rsName = (await replicaSets(c.client))[0].metadata.name;
  assert.deepEqual(
    [progressing(done)?.status, progressing(done)?.reason, progressing(done)?.message],
    ['True', 'NewReplicaSetAvailable', `ReplicaSet "${rsName}" has successfully progressed.`],
  );
  assert.equal(available(done)?.reason, 'MinimumReplicasAvailable');
  assert.equal(available(done)?.status, 'True');

  const set = await c.kubectl('set', 'image', 'deployment/web', 'web=broken');
  assert.equal(set.code, 0, set.stderr);
  // No pod changes after the new pod starts unready: only a requeue can notice the deadline.
  const stuck = await waitProgressing(
    c.client,
    'ProgressDeadlineExceeded',
    'the deadline to pass',
    10_000,
  );
  const newRS = (await replicaSets(c.client)).find(
    (rs) => rs.metadata.annotations?.[REVISION] === '2',
  );
  const cond = progressing(stuck)!;
  assert.equal(cond.status, 'False');
  assert.equal(cond.message, `ReplicaSet "${newRS?.metadata.name}" has timed out progressing.`);
  assert.equal(cond.lastTransitionTime, cond.lastUpdateTime);
  // Measured from the last progress, and noticed soon after the deadline passed.
  const i = watch.conditions.findIndex((x) => x.reason === 'ProgressDeadlineExceeded');
  const last = watch.conditions[i - 1];
  const waited = Date.parse(cond.lastUpdateTime!) - Date.parse(last.lastUpdateTime!);
  assert.ok(waited >= 2000 && waited <= 4000, `timed out ${waited} ms after the last progress`);
  assert.equal(last.status, 'True');
  assert.equal(last.lastTransitionTime, watch.conditions[0].lastTransitionTime);
  assert.equal(available(stuck)?.status, 'True', 'the old pods still serve');
  const status = await c.kubectl('rollout', 'status', 'deployment/web', '--timeout=10s');
  assert.notEqual(status.code, 0);
  assert.match(status.stderr, /deployment "web" exceeded its progress deadline/);

  // A fixed template progresses again and completes.
  assert.equal((await c.kubectl('set', 'image', 'deployment/web', 'web=nginx:2')).code, 0);
  await statusOk(c);
  watch.stop();
  assert.deepEqual(watch.reasons, [
    'NewReplicaSetCreated',
    'ReplicaSetUpdated',
    'NewReplicaSetAvailable',
    'NewReplicaSetCreated',
    // The new ReplicaSet's first (unready) pod counts as progress, as in Kubernetes.
    'ReplicaSetUpdated',
    'ProgressDeadlineExceeded',
    'NewReplicaSetCreated',
    'ReplicaSetUpdated',
    'NewReplicaSetAvailable',
  ]);
});

test('a deployment that never becomes available is MinimumReplicasUnavailable', async (t) => {
  const c = await startCluster(t);
  c.kubelet({ unready: () => true });
  const spec = deployment('web', 2, 'broken');
  spec.spec.progressDeadlineSeconds = 2;
  await c.client.create(DEPLOYMENTS, spec);
  const d = await waitProgressing(c.client, 'ProgressDeadlineExceeded', 'the deadline to pass');
  assert.deepEqual(
    [available(d)?.status, available(d)?.reason],
    ['False', 'MinimumReplicasUnavailable'],
  );
  assert.equal(available(d)?.message, 'Deployment does not have minimum availability.');
  assert.equal(d.status?.unavailableReplicas, 2);
  const status = await c.kubectl('rollout', 'status', 'deployment/web', '--timeout=10s');
  assert.match(status.stderr, /exceeded its progress deadline/);

  // A status without a Progressing condition (as a crash before writing it would leave)
  // names the replica set found; the deadline then counts from there.
  const rsName = (await replicaSets(c.client))[0].metadata.name;
  const cleared = await get(c.client);
  await c.client.updateStatus(DEPLOYMENTS, {
    ...cleared,
    status: { ...cleared.status, conditions: [] },
  });
  const found = await waitProgressing(
    c.client,
    'FoundNewReplicaSet',
    'the replica set to be found',
  );
  assert.equal(progressing(found)?.message, `Found new replica set "${rsName}"`);
  await waitProgressing(c.client, 'ProgressDeadlineExceeded', 'the deadline to pass again');
});

test('a rollout paused midway does not time out; resumed, its deadline counts again', async (t) => {
  const c = await startCluster(t);
  c.kubelet({ unready: (p) => p.spec.containers[0].image === 'broken' });
  const spec = deployment('web', 2);
  spec.spec.progressDeadlineSeconds = 2;
  await c.client.create(DEPLOYMENTS, spec);
  await statusOk(c);
  assert.equal((await c.kubectl('set', 'image', 'deployment/web', 'web=broken')).code, 0);
  assert.equal((await c.kubectl('rollout', 'pause', 'deployment/web')).code, 0);
  await sleep(3500);
  const paused = await get(c.client);
  assert.deepEqual(
    [progressing(paused)?.status, progressing(paused)?.reason, progressing(paused)?.message],
    ['Unknown', 'DeploymentPaused', 'Deployment is paused'],
  );

  assert.equal((await c.kubectl('rollout', 'resume', 'deployment/web')).code, 0);
  const resumed = await waitProgressing(c.client, 'DeploymentResumed', 'the resume to show');
  assert.equal(progressing(resumed)?.status, 'Unknown');
  // Nothing changes after the resume: only the controller's own requeue sees the deadline.
  const stuck = await waitProgressing(
    c.client,
    'ProgressDeadlineExceeded',
    'the deadline to pass after the resume',
    8000,
  );
  const waited =
    Date.parse(progressing(stuck)!.lastUpdateTime!) -
    Date.parse(progressing(resumed)!.lastUpdateTime!);
  assert.ok(waited >= 2000 && waited <= 4000, `timed out ${waited} ms after the resume`);
});

test('pause holds a rollout past its deadline, scaling works, resume rolls out', async (t) => {
  const c = await startCluster(t);
  c.kubelet();
  const spec = deployment('web', 2);
  spec.spec.progressDeadlineSeconds = 2; // timestamps have whole seconds: 1 s may pass in 0.1 s
  await c.client.create(DEPLOYMENTS, spec);
  await statusOk(c);
  const before = (await livePods(c.client)).map((p) => p.metadata.name).sort();

  assert.equal((await c.kubectl('rollout', 'pause', 'deployment/web')).code, 0);
  assert.equal((await c.kubectl('set', 'image', 'deployment/web', 'web=nginx:2')).code, 0);
  await sleep(3500);
  const paused = await get(c.client);
  assert.deepEqual(
    [progressing(paused)?.status, progressing(paused)?.reason],
    ['Unknown', 'DeploymentPaused'],
  );
  assert.equal((await replicaSets(c.client)).length, 1, 'no new replica set while paused');
  assert.deepEqual((await livePods(c.client)).map((p) => p.metadata.name).sort(), before);

  assert.equal((await c.kubectl('scale', 'deployment/web', '--replicas=3')).code, 0);
  await waitFor('the paused deployment to scale', async () => {
    const pods = await livePods(c.client);
    const d = await get(c.client);
    return pods.length === 3 && pods.every(isReady) && d.status?.availableReplicas === 3;
  });
  assert.ok((await livePods(c.client)).every((p) => p.spec.containers[0].image === 'nginx:1'));
  assert.equal((await replicaSets(c.client)).length, 1);

  assert.equal((await c.kubectl('rollout', 'resume', 'deployment/web')).code, 0);
  await statusOk(c);
  const done = await waitRolledOut(c.client);
  assert.equal(done.metadata.annotations?.[REVISION], '2');
  const pods = await livePods(c.client);
  assert.equal(pods.length, 3);
  assert.ok(pods.every((p) => p.spec.containers[0].image === 'nginx:2'));
});

test('rollout history and undo, with change-cause, --revision and --to-revision', async (t) => {
  const c = await startCluster(t);
  c.kubelet();
  const spec = deployment('web', 2, 'nginx:1');
  spec.metadata.annotations = { [CHANGE_CAUSE]: 'first' };
  await c.client.create(DEPLOYMENTS, spec);
  await statusOk(c);
  // The template and the cause in one write...
  const patch = JSON.stringify({
    metadata: { annotations: { [CHANGE_CAUSE]: 'second' } },
    spec: { template: { spec: { containers: [{ name: 'web', image: 'nginx:2' }] } } },
  });
  assert.equal((await c.kubectl('patch', 'deployment/web', '-p', patch)).code, 0);
  await statusOk(c);
  // ...or the cause annotated after the new replica set exists.
  assert.equal((await c.kubectl('set', 'image', 'deployment/web', 'web=nginx:3')).code, 0);
  const annotate = await c.kubectl(
    'annotate',
    'deployment/web',
    `${CHANGE_CAUSE}=third`,
    '--overwrite',
  );
  assert.equal(annotate.code, 0, annotate.stderr);
  await statusOk(c);

  const history = await waitFor('the third cause on its replica set', async () => {
    const r = await c.kubectl('rollout', 'history', 'deployment/web');
    return /3\s+third/.test(r.stdout) && r;
  });
  assert.match(history.stdout, /REVISION\s+CHANGE-CAUSE/);
  assert.match(history.stdout, /1\s+first\n2\s+second\n3\s+third/);
  const second = await c.kubectl('rollout', 'history', 'deployment/web', '--revision=2');
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /revision #2/);
  assert.match(second.stdout, /Image:\s+nginx:2/);
  assert.match(second.stdout, /second/);

  const undo = await c.kubectl('rollout', 'undo', 'deployment/web');
  assert.equal(undo.code, 0, undo.stderr);
  assert.match(undo.stdout, /rolled back/);
  await statusOk(c);
  let d = await waitRolledOut(c.client);
  assert.equal(d.spec.template.spec.containers[0].image, 'nginx:2');
  assert.equal(d.metadata.annotations?.[REVISION], '4');
  assert.equal(d.metadata.annotations?.[CHANGE_CAUSE], 'second');
  const after = await waitFor('revision 2 to become 4', async () => {
    const r = await c.kubectl('rollout', 'history', 'deployment/web');
    return /4\s+second/.test(r.stdout) && r;
  });
  assert.match(after.stdout, /1\s+first\n3\s+third\n4\s+second/);
  assert.equal((await replicaSets(c.client)).length, 3, 'undo reuses the old replica set');

  const to1 = await c.kubectl('rollout', 'undo', 'deployment/web', '--to-revision=1');
  assert.equal(to1.code, 0, to1.stderr);
  await statusOk(c);
  d = await waitRolledOut(c.client);
  assert.equal(d.metadata.annotations?.[REVISION], '5');
  const pods = await livePods(c.client);
  assert.ok(pods.every((p) => p.spec.containers[0].image === 'nginx:1'));
  const missing = await c.kubectl('rollout', 'undo', 'deployment/web', '--to-revision=9');
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /unable to find specified revision 9/);
});

const PROBED = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: web
          image: nginx:1
          ports: [{ name: http, containerPort: 8080 }]
          readinessProbe:
            httpGet: { port: http }
            periodSeconds: 2
`;

/** Drops the probe defaults from a stored template, as a flyCes before them stored it. */
async function storeWithoutProbeDefaults(c: Cluster, key: string): Promise<void> {
  const kv = await c.api.store.get(key);
  assert.ok(kv, key);
  const obj = JSON.parse(kv.value);
  const probe = obj.spec.template.spec.containers[0].readinessProbe;
  for (const field of ['timeoutSeconds', 'successThreshold', 'failureThreshold']) {
    delete probe[field];
  }
  delete probe.httpGet.scheme;
  delete probe.httpGet.path;
  await c.api.store.update(key, JSON.stringify(obj));
}

test('templates get the Pod defaults; re-applied or stored without them, nothing rolls', async (t) => {
  const c = await startCluster(t);
  c.kubelet();
  const manifest = join(c.api.dir, 'web.yaml');
  writeFileSync(manifest, PROBED);
  await kubectlOk(c, ['apply', '-f', manifest]);
  await statusOk(c);
  const d = await get(c.client);
  const container = d.spec.template.spec.containers[0];
  assert.deepEqual(container.readinessProbe, {
    httpGet: { port: 'http', path: '/', scheme: 'HTTP' },
    periodSeconds: 2,
    timeoutSeconds: 1,
    successThreshold: 1,
    failureThreshold: 3,
  });
  assert.equal(container.ports?.[0]?.protocol, 'TCP');
  assert.equal(container.terminationMessagePath, '/dev/termination-log');
  const history = await kubectlOk(c, ['rollout', 'history', 'deployment/web', '--revision=1']);
  const readiness = 'http-get http://:http/ delay=0s timeout=1s period=2s #success=1 #failure=3';
  assert.ok(history.includes(readiness), history);
  assert.ok((await kubectlOk(c, ['describe', 'deployment/web'])).includes(readiness));
  const [rs] = await replicaSets(c.client);
  const hash = rs.metadata.labels?.['pod-template-hash'];
  const pods = (await livePods(c.client)).map((p) => p.metadata.name).sort();

  await kubectlOk(c, ['apply', '-f', manifest], /deployment.apps\/web unchanged/);

  // As a flyCes before template defaults stored them; the next write of the Deployment
  // gives its template the defaults, which its ReplicaSet's template still lacks.
  await storeWithoutProbeDefaults(c, '/registry/apps/deployments/default/web');
  await storeWithoutProbeDefaults(c, `/registry/apps/replicasets/default/${rs.metadata.name}`);
  const generation = (await get(c.client)).metadata.generation!;
  await kubectlOk(c, ['label', 'deployment/web', 'tier=front']);
  assert.equal((await get(c.client)).metadata.generation, generation, 'defaults are no change');
  await kubectlOk(c, ['scale', 'deployment/web', '--replicas=3']);
  await waitFor('three ready pods', async () => (await livePods(c.client)).length === 3);
  await statusOk(c);
  const sets = await replicaSets(c.client);
  assert.deepEqual(
    sets.map((s) => s.metadata.labels?.['pod-template-hash']),
    [hash],
    'still the one replica set',
  );
  const now = (await livePods(c.client)).map((p) => p.metadata.name);
  assert.ok(
    pods.every((name) => now.includes(name)),
    'no pod replaced',
  );
});

test('rollout restart replaces every pod; history keeps revisionHistoryLimit', async (t) => {
  const c = await startCluster(t);
  c.kubelet();
  const spec = deployment('web', 3);
  spec.spec.revisionHistoryLimit = 1;
  await c.client.create(DEPLOYMENTS, spec);
  await statusOk(c);
  const before = new Set((await livePods(c.client)).map((p) => p.metadata.name));

  const restart = await c.kubectl('rollout', 'restart', 'deployment/web');
  assert.equal(restart.code, 0, restart.stderr);
  assert.match(restart.stdout, /restarted/);
  await statusOk(c);
  const d = await waitRolledOut(c.client);
  assert.ok(d.spec.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt']);
  assert.equal(d.metadata.annotations?.[REVISION], '2');
  const pods = await waitFor('the old pods to go', async () => {
    const current = await livePods(c.client);
    return current.length === 3 && current;
  });
  assert.ok(
    pods.every((p) => !before.has(p.metadata.name)),
    'every pod was replaced',
  );

  assert.equal((await c.kubectl('set', 'image', 'deployment/web', 'web=nginx:2')).code, 0);
  await statusOk(c);
  const history = await waitFor('revision 1 to be pruned', async () => {
    const r = await c.kubectl('rollout', 'history', 'deployment/web');
    return !/^1\s/m.test(r.stdout) && r.stdout;
  });
  assert.match(history, /REVISION\s+CHANGE-CAUSE\n2\s+<none>\n3\s+<none>/);
  assert.equal((await replicaSets(c.client)).length, 2);
});

test('RollingUpdate never exceeds maxSurge nor drops below maxUnavailable', async (t) => {
  const table: { replicas: number; maxSurge: number | string; maxUnavailable: number | string }[] =
    [
      { replicas: 4, maxSurge: 1, maxUnavailable: 0 },
      { replicas: 4, maxSurge: 0, maxUnavailable: 1 },
      { replicas: 8, maxSurge: '25%', maxUnavailable: '25%' },
    ];
  for (const c of table) {
    await t.test(
      `${c.replicas} replicas, maxSurge ${c.maxSurge}, maxUnavailable ${c.maxUnavailable}`,
      async (t) => {
        const most = c.replicas + (typeof c.maxSurge === 'number' ? c.maxSurge : c.replicas / 4);
        const least =
          c.replicas - (typeof c.maxUnavailable === 'number' ? c.maxUnavailable : c.replicas / 4);
        const cl = await startCluster(t);
        let checking = false;
        const samples: { pods: number; ready: number }[] = [];
        cl.kubelet({
          terminationMs: 100,
          sample: (pods) => {
            if (!checking) return;
            const active = live(pods);
            samples.push({ pods: active.length, ready: active.filter(isReady).length });
          },
        });
        const spec = deployment('web', c.replicas);
        spec.spec.strategy = {
          type: 'RollingUpdate',
          rollingUpdate: { maxSurge: c.maxSurge, maxUnavailable: c.maxUnavailable },
        };
        await cl.client.create(DEPLOYMENTS, spec);
        await statusOk(cl);

        checking = true;
        assert.equal((await cl.kubectl('set', 'image', 'deployment/web', 'web=nginx:2')).code, 0);
        await statusOk(cl);
        checking = false;
        const over = samples.filter((s) => s.pods > most);
        const under = samples.filter((s) => s.ready < least);
        assert.deepEqual(over, [], `more than ${most} pods`);
        assert.deepEqual(under, [], `fewer than ${least} ready pods`);
        assert.ok(
          samples.some((s) => s.pods !== c.replicas || s.ready !== c.replicas),
          'sampled mid-rollout',
        );
        const pods = await livePods(cl.client);
        assert.equal(pods.length, c.replicas);
        assert.ok(pods.every((p) => p.spec.containers[0].image === 'nginx:2'));
      },
    );
  }
});

test('Recreate never runs old and new pods at once, terminating ones included', async (t) => {
  const c = await startCluster(t);
  let checking = false;
  const samples: { images: number; terminating: number }[] = [];
  c.kubelet({
    terminationMs: 300,
    sample: (pods) => {
      if (!checking) return;
      const images = new Set(pods.map((p) => p.spec.containers[0].image));
      const terminating = pods.filter((p) => p.metadata.deletionTimestamp).length;
      samples.push({ images: images.size, terminating });
    },
  });
  const spec = deployment('web', 3);
  spec.spec.strategy = { type: 'Recreate' };
  await c.client.create(DEPLOYMENTS, spec);
  await statusOk(c);

  checking = true;
  assert.equal((await c.kubectl('set', 'image', 'deployment/web', 'web=nginx:2')).code, 0);
  await statusOk(c);
  checking = false;
  assert.deepEqual(
    samples.filter((s) => s.images > 1),
    [],
  );
  assert.ok(
    samples.some((s) => s.terminating > 0),
    'old pods lingered while terminating, and no new pod came meanwhile',
  );
  const pods = await livePods(c.client);
  assert.equal(pods.length, 3);
  assert.ok(pods.every((p) => p.spec.containers[0].image === 'nginx:2'));
});
