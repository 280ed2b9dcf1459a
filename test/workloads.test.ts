import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { ControllerRevision, DaemonSet, StatefulSet } from '../src/api/apps-workloads.js';
import { byGroupResource } from '../src/api/resources.js';
import type { KObject, NodeObject, Pod } from '../src/api/types.js';
import { isReason, type KubeClient } from '../src/client/rest.js';
import { targetNode } from '../src/controllers/daemonset/eligibility.js';
import { InformerFactory } from '../src/client/factory.js';
import { DaemonSetController } from '../src/controllers/daemonset/controller.js';
import { startTestApiServer } from './helpers/apiserver.js';
import {
  createNode,
  isReady,
  kubectlOk,
  listPods,
  live,
  NODES,
  PODS,
  sleep,
  startCluster,
  waitFor,
  type Cluster,
  type KubeletOptions,
} from './helpers/workload.js';

/**
 * DaemonSets and StatefulSets against a real API server and controller manager, with no
 * agent and no scheduler: the test binds daemon pods to the node their affinity names (as
 * the scheduler would), marks pods Running and Ready and finishes graceful deletions (as
 * agents would), and checks ordering and availability invariants on every pass.
 */

const DAEMONSETS = byGroupResource.get('apps/daemonsets')!;
const STATEFULSETS = byGroupResource.get('apps/statefulsets')!;
const REVISIONS = byGroupResource.get('apps/controllerrevisions')!;
const EVENTS = byGroupResource.get('/events')!;

interface Harness extends Cluster {
  /**
   * Starts the fake scheduler and agents: they bind daemon pods to their target node, mark
   * pods ready (only those `startIf` allows, for now), and remove pods whose graceful
   * deletion started. `sample` sees every pass's pods and may throw to fail the test.
   */
  fake(opts?: Pick<KubeletOptions, 'sample' | 'startIf'>): void;
}

async function setup(t: TestContext): Promise<Harness> {
  const c = await startCluster(t, {
    controllers: ['daemonset', 'statefulset', 'garbage-collector'],
  });
  return {
    ...c,
    fake: (opts) => c.kubelet({ ...opts, node: daemonNode, terminationMs: 0, periodMs: 15 }),
  };
}

/** Where the scheduler would put a daemon pod: the node its affinity names. */
function daemonNode(pod: Pod): string | undefined {
  const daemon = pod.metadata.ownerReferences?.some((r) => r.kind === 'DaemonSet');
  return daemon ? targetNode(pod) : undefined;
}

function daemonSet(name: string, image: string, nodeSelector?: Record<string, string>): DaemonSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name, namespace: 'default' },
    spec: {
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'agent', image }], ...(nodeSelector ? { nodeSelector } : {}) },
      },
    },
  };
}

function statefulSet(name: string, replicas: number, image: string): StatefulSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      serviceName: name,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'db', image }] },
      },
    },
  };
}

const podsOf = (pods: Pod[], app: string) => pods.filter((p) => p.metadata.labels?.app === app);

/** Nodes of the live pods of `app`, sorted. */
async function daemonNodes(client: KubeClient, app: string): Promise<string[]> {
  const pods = podsOf(live(await listPods(client)), app);
  return pods.map((p) => p.spec.nodeName ?? `unbound:${targetNode(p)}`).sort();
}

test('DaemonSet follows nodes as they are added, relabelled and removed', async (t) => {
  const { client, fake } = await setup(t);
  await createNode(client, 'n1', { role: 'web' });
  await createNode(client, 'n2', { role: 'web' });
  await createNode(client, 'n3', { role: 'db' });
  fake();
  await client.create(DAEMONSETS, daemonSet('logs', 'fluent:1', { role: 'web' }));

  const want = async (nodes: string[]) =>
    waitFor(`daemon pods on ${nodes}`, async () => {
      const got = await daemonNodes(client, 'logs');
      return JSON.stringify(got) === JSON.stringify(nodes);
    });
  await want(['n1', 'n2']);

  const [pod] = podsOf(await listPods(client), 'logs');
  const keys = (pod.spec.tolerations as { key: string }[]).map((tol) => tol.key).sort();
  assert.deepEqual(keys, [
    'node.kubernetes.io/disk-pressure',
    'node.kubernetes.io/memory-pressure',
    'node.kubernetes.io/not-ready',
    'node.kubernetes.io/pid-pressure',
    'node.kubernetes.io/unreachable',
    'node.kubernetes.io/unschedulable',
  ]);
  const terms = (pod.spec.affinity as any).nodeAffinity
    .requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
  assert.deepEqual(terms[0].matchFields, [
    { key: 'metadata.name', operator: 'In', values: [pod.spec.nodeName] },
  ]);
  assert.ok(pod.metadata.labels?.['controller-revision-hash']);

  // A pod relabelled out of the selector is released, and its node gets a new daemon.
  await client.patch(PODS, 'default', pod.metadata.name!, { metadata: { labels: { app: 'x' } } });
  const released = await waitFor('the pod released', async () => {
    const p = await client.get<Pod>(PODS, 'default', pod.metadata.name!);
    return !p.metadata.ownerReferences?.length && p;
  });
  await want(['n1', 'n2']);
  await client.delete(PODS, 'default', released.metadata.name!);

  await createNode(client, 'n4', { role: 'web' });
  await want(['n1', 'n2', 'n4']);

  const n1 = await client.get<NodeObject>(NODES, undefined, 'n1');
  await client.update(NODES, { ...n1, metadata: { ...n1.metadata, labels: { role: 'db' } } });
  await want(['n2', 'n4']);

  await client.delete(NODES, undefined, 'n2');
  await want(['n4']);

  // An untolerated NoExecute taint evicts; a NoSchedule one would only stop new pods.
  const n4 = await client.get<NodeObject>(NODES, undefined, 'n4');
  const taints = [{ key: 'dedicated', value: 'gpu', effect: 'NoExecute' }];
  await client.update(NODES, { ...n4, spec: { ...n4.spec, taints } });
  await want([]);

  const ds = await waitFor('status', async () => {
    const got = await client.get<DaemonSet>(DAEMONSETS, 'default', 'logs');
    return got.status?.desiredNumberScheduled === 0 && got.status.numberMisscheduled === 0 && got;
  });
  assert.equal(ds.status?.observedGeneration, ds.metadata.generation);

  await waitFor('create and delete events', async () => {
    const events = (await client.list<KObject>(EVENTS, 'default')).items;
    const mine = events.filter((e) => e.involvedObject.name === 'logs');
    const reasons = new Set(mine.map((e) => e.reason));
    return reasons.has('SuccessfulCreate') && reasons.has('SuccessfulDelete');
  });
});

test('DaemonSet rolling update never exceeds maxUnavailable; kubectl sees it roll out', async (t) => {
  const c = await setup(t);
  const { client, fake } = c;
  const nodes = ['a', 'b', 'c', 'd', 'e'];
  for (const n of nodes) await createNode(client, n);
  let worst = 0;
  const violations = new Set<string>();
  let updating = false;
  fake({
    sample(pods) {
      const perNode = new Map<string, number>();
      for (const p of live(podsOf(pods, 'proxy'))) {
        const node = targetNode(p) ?? '';
        perNode.set(node, (perNode.get(node) ?? 0) + 1);
      }
      for (const [node, n] of perNode) {
        if (n > 1) violations.add(`${n} daemon pods for node ${node} (maxSurge 0)`);
      }
      if (!updating) return;
      const ready = new Set(
        live(podsOf(pods, 'proxy'))
          .filter(isReady)
          .map((p) => p.spec.nodeName),
      );
      worst = Math.max(worst, nodes.length - ready.size);
      if (nodes.length - ready.size > 2) {
        violations.add(`${nodes.length - ready.size} nodes without a ready daemon (max 2)`);
      }
    },
  });
  const ds = daemonSet('proxy', 'proxy:1');
  ds.spec.updateStrategy = { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '40%' } };
  await client.create(DAEMONSETS, ds);
  const rolledOut = (image: string) =>
    waitFor(`all daemons on ${image}`, async () => {
      const d = await client.get<DaemonSet>(DAEMONSETS, 'default', 'proxy');
      const s = d.status;
      if (!s) return false;
      const pods = live(podsOf(await listPods(client), 'proxy'));
      return (
        s.observedGeneration === d.metadata.generation &&
        s.updatedNumberScheduled === nodes.length &&
        s.numberAvailable === nodes.length &&
        pods.length === nodes.length &&
        pods.every((p) => p.spec.containers[0].image === image)
      );
    });
  await rolledOut('proxy:1');

  updating = true;
  const patch = {
    spec: { template: { spec: { containers: [{ name: 'agent', image: 'proxy:2' }] } } },
  };
  await client.patch(DAEMONSETS, 'default', 'proxy', patch, 'strategic');
  await kubectlOk(c, ['rollout', 'status', 'ds/proxy', '--timeout=30s'], /successfully rolled out/);
  await rolledOut('proxy:2');
  assert.deepEqual([...violations], []);
  assert.ok(worst >= 1, 'the update went through unavailable nodes');

  const history = await kubectlOk(c, ['rollout', 'history', 'ds/proxy'], /REVISION/);
  assert.match(history, /^1\s.*\n2\s/m);
  await kubectlOk(c, ['rollout', 'history', 'ds/proxy', '--revision=1'], /Image:\s+proxy:1/);

  // Undo brings revision 1's template back, renumbered 3, as in Kubernetes.
  await kubectlOk(c, ['rollout', 'undo', 'ds/proxy'], /rolled back/);
  await rolledOut('proxy:1');
  const revisions = (await client.list<ControllerRevision>(REVISIONS, 'default')).items;
  assert.deepEqual(revisions.map((r) => r.revision).sort(), [2, 3]);
});

test('DaemonSet surge update starts each new pod before its old one goes', async (t) => {
  const { client, fake } = await setup(t);
  const nodes = ['a', 'b', 'c', 'd'];
  for (const n of nodes) await createNode(client, n);
  const violations = new Set<string>();
  let doubled = 0;
  fake({
    sample(pods) {
      const mine = live(podsOf(pods, 'surge'));
      const perNode = new Map<string, number>();
      for (const p of mine) perNode.set(targetNode(p)!, (perNode.get(targetNode(p)!) ?? 0) + 1);
      const both = [...perNode.values()].filter((n) => n === 2).length;
      doubled = Math.max(doubled, both);
      if (both > 1) violations.add(`${both} nodes with two daemons (maxSurge 1)`);
      if ([...perNode.values()].some((n) => n > 2)) violations.add('three daemons on a node');
      const ready = new Set(mine.filter(isReady).map((p) => p.spec.nodeName));
      if (perNode.size === nodes.length && ready.size < nodes.length) {
        violations.add(`${nodes.length - ready.size} nodes without a ready daemon (max 0)`);
      }
    },
  });
  const ds = daemonSet('surge', 'x:1');
  ds.spec.updateStrategy = {
    type: 'RollingUpdate',
    rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
  };
  await client.create(DAEMONSETS, ds);
  const updated = (image: string) =>
    waitFor(`daemons on ${image}`, async () => {
      const d = await client.get<DaemonSet>(DAEMONSETS, 'default', 'surge');
      const pods = live(podsOf(await listPods(client), 'surge'));
      return (
        d.status?.observedGeneration === d.metadata.generation &&
        d.status?.updatedNumberScheduled === nodes.length &&
        d.status?.numberAvailable === nodes.length &&
        pods.length === nodes.length &&
        pods.every((p) => isReady(p) && p.spec.containers[0].image === image)
      );
    });
  await updated('x:1');
  violations.clear();
  const patch = { spec: { template: { spec: { containers: [{ name: 'agent', image: 'x:2' }] } } } };
  await client.patch(DAEMONSETS, 'default', 'surge', patch, 'strategic');
  await updated('x:2');
  assert.deepEqual([...violations], []);
  assert.equal(doubled, 1, 'new pods started beside old ones');
});

test('StatefulSet starts in order, replaces lost pods by name and stops from the top', async (t) => {
  const { client, fake } = await setup(t);
  const violations: string[] = [];
  const seen = new Map<string, string>();
  let scaledDown = false;
  fake({
    sample(pods) {
      const mine = podsOf(pods, 'db');
      const byName = new Map(mine.map((p) => [p.metadata.name!, p]));
      for (const p of mine) {
        if (seen.get(p.metadata.name!) === p.metadata.uid) continue;
        seen.set(p.metadata.name!, p.metadata.uid!);
        const ord = Number(p.metadata.name!.split('-')[1]);
        for (let i = 0; i < ord; i++) {
          const before = byName.get(`db-${i}`);
          if (!before || !isReady(before))
            violations.push(`db-${ord} created before db-${i} ready`);
        }
      }
      if (scaledDown && !byName.has('db-1') && byName.has('db-2')) {
        violations.push('db-1 went before db-2');
      }
    },
  });
  await client.create(STATEFULSETS, statefulSet('db', 3, 'pg:15'));
  const readySet = (n: number) =>
    waitFor(`${n} ready`, async () => {
      const s = await client.get<StatefulSet>(STATEFULSETS, 'default', 'db');
      const pods = live(podsOf(await listPods(client), 'db'));
      return s.status?.readyReplicas === n && pods.length === n && s.status?.replicas === n && s;
    });
  await readySet(3);

  const pods = podsOf(await listPods(client), 'db').sort((a, b) =>
    a.metadata.name!.localeCompare(b.metadata.name!),
  );
  assert.deepEqual(
    pods.map((p) => p.metadata.name),
    ['db-0', 'db-1', 'db-2'],
  );
  for (const [i, p] of pods.entries()) {
    assert.equal(p.spec.hostname, `db-${i}`);
    assert.equal(p.spec.subdomain, 'db');
    assert.equal(p.metadata.labels?.['statefulset.kubernetes.io/pod-name'], `db-${i}`);
    assert.equal(p.metadata.labels?.['apps.kubernetes.io/pod-index'], String(i));
  }

  await client.delete(PODS, 'default', 'db-1');
  await waitFor('db-1 again', async () => {
    const again = (await listPods(client)).find((p) => p.metadata.name === 'db-1');
    return again && again.metadata.uid !== pods[1].metadata.uid && isReady(again);
  });

  const db2 = (await listPods(client)).find((p) => p.metadata.name === 'db-2')!;
  await client.updateStatus(PODS, { ...db2, status: { ...db2.status, phase: 'Failed' } });
  await waitFor('db-2 recreated after failing', async () => {
    const again = (await listPods(client)).find((p) => p.metadata.name === 'db-2');
    return again && again.metadata.uid !== db2.metadata.uid && isReady(again);
  });
  // Events are written in the background; wait for them rather than race them.
  await waitFor('the recreation events', async () => {
    const events = (await client.list<KObject>(EVENTS, 'default')).items;
    const messages = events.filter((e) => e.involvedObject.name === 'db').map((e) => e.message);
    return (
      messages.includes('create Pod db-2 in StatefulSet db successful') &&
      messages.includes('StatefulSet default/db is recreating failed Pod db-2')
    );
  });

  scaledDown = true;
  await client.patch(STATEFULSETS, 'default', 'db', { spec: { replicas: 1 } });
  await readySet(1);
  assert.deepEqual(violations, []);
  assert.deepEqual(
    live(podsOf(await listPods(client), 'db')).map((p) => p.metadata.name),
    ['db-0'],
  );
});

test('StatefulSet rolling update honours the partition; kubectl get, rollout status and history', async (t) => {
  const c = await setup(t);
  const { client, fake } = c;
  const order: string[] = [];
  const firstSeen = new Map<string, number>();
  let mostNotReady = 0;
  fake({
    sample(pods) {
      const mine = live(podsOf(pods, 'web'));
      for (const p of mine) {
        const tag = `${p.metadata.name}@${p.spec.containers[0].image}`;
        if (p.spec.containers[0].image === 'web:2' && !order.includes(tag)) order.push(tag);
        if (!firstSeen.has(p.metadata.uid!)) firstSeen.set(p.metadata.uid!, Date.now());
      }
      if (order.length > 0) {
        mostNotReady = Math.max(mostNotReady, 3 - mine.filter(isReady).length);
      }
    },
    // Replacements take a while to start, so waiting for them is what keeps order.
    startIf: (pod) => Date.now() - (firstSeen.get(pod.metadata.uid!) ?? Date.now()) > 150,
  });
  const sts = statefulSet('web', 3, 'web:1');
  sts.spec.updateStrategy = { type: 'RollingUpdate', rollingUpdate: { partition: 1 } };
  await client.create(STATEFULSETS, sts);
  const status = (check: (s: NonNullable<StatefulSet['status']>) => boolean) =>
    waitFor('statefulset status', async () => {
      const got = await client.get<StatefulSet>(STATEFULSETS, 'default', 'web');
      const s = got.status;
      return s && s.observedGeneration === got.metadata.generation && check(s) && got;
    });
  await status((s) => s.readyReplicas === 3 && s.currentRevision === s.updateRevision);

  const patch = { spec: { template: { spec: { containers: [{ name: 'db', image: 'web:2' }] } } } };
  await client.patch(STATEFULSETS, 'default', 'web', patch, 'strategic');
  const partial = await status((s) => s.updatedReplicas === 2 && s.readyReplicas === 3);
  assert.notEqual(partial.status?.currentRevision, partial.status?.updateRevision);
  assert.deepEqual(order, ['web-2@web:2', 'web-1@web:2']);
  await kubectlOk(
    c,
    ['rollout', 'status', 'sts/web', '--timeout=20s'],
    /partitioned roll out complete: 2 new pods have been updated/,
  );
  const web0 = (await listPods(client)).find((p) => p.metadata.name === 'web-0');
  assert.equal(web0?.spec.containers[0].image, 'web:1');

  await client.patch(STATEFULSETS, 'default', 'web', {
    spec: { updateStrategy: { rollingUpdate: { partition: 0 } } },
  });
  const done = await status((s) => s.updatedReplicas === 3 && s.readyReplicas === 3);
  assert.equal(done.status?.currentRevision, done.status?.updateRevision);
  assert.deepEqual(order, ['web-2@web:2', 'web-1@web:2', 'web-0@web:2']);

  assert.equal(mostNotReady, 1, 'one pod at a time was replaced');
  const table = await kubectlOk(c, ['get', 'sts'], /READY/);
  assert.match(table, /^NAME\s+READY\s+AGE\s*\nweb\s+3\/3\s/m);
  await kubectlOk(c, ['rollout', 'status', 'sts/web', '--timeout=20s'], /3 new pods/);
  const history = await kubectlOk(c, ['rollout', 'history', 'sts/web'], /REVISION/);
  assert.match(history, /^1\s.*\n2\s/m);

  await kubectlOk(c, ['rollout', 'undo', 'sts/web'], /rolled back/);
  await status((s) => s.updatedReplicas === 3 && s.readyReplicas === 3);
  const images = live(podsOf(await listPods(client), 'web')).map((p) => p.spec.containers[0].image);
  assert.deepEqual(images, ['web:1', 'web:1', 'web:1']);
});

test('kubectl get ds,sts prints the Kubernetes columns', async (t) => {
  const c = await setup(t);
  const { client, fake } = c;
  await createNode(client, 'n1', { disk: 'ssd' });
  fake();
  await client.create(DAEMONSETS, daemonSet('ssd', 'x:1', { disk: 'ssd' }));
  await client.create(STATEFULSETS, statefulSet('one', 1, 'x:1'));
  await waitFor('ready', async () => {
    const ds = await client.get<DaemonSet>(DAEMONSETS, 'default', 'ssd');
    const sts = await client.get<StatefulSet>(STATEFULSETS, 'default', 'one');
    return ds.status?.numberAvailable === 1 && sts.status?.readyReplicas === 1;
  });
  const out = await kubectlOk(c, ['get', 'ds,sts'], /NAME/);
  assert.match(
    out,
    /NAME\s+DESIRED\s+CURRENT\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+NODE SELECTOR\s+AGE/,
  );
  assert.match(out, /daemonset\.apps\/ssd\s+1\s+1\s+1\s+1\s+1\s+disk=ssd\s+\d+s/);
  assert.match(out, /NAME\s+READY\s+AGE/);
  assert.match(out, /statefulset\.apps\/one\s+1\/1\s+\d+s/);

  // The garbage collector removes what the workloads owned: pods and revisions.
  await kubectlOk(c, ['delete', 'ds/ssd', 'sts/one'], /deleted/);
  await waitFor('owned objects gone', async () => {
    const pods = await listPods(client);
    const revisions = (await client.list(REVISIONS, 'default')).items;
    return pods.length === 0 && revisions.length === 0;
  });
});

test('volumeClaimTemplates are refused, naming the field', async (t) => {
  const { client } = await setup(t);
  const sts = statefulSet('vol', 1, 'x:1');
  sts.spec.volumeClaimTemplates = [{ metadata: { name: 'data' }, spec: {} }];
  await assert.rejects(client.create(STATEFULSETS, sts), (err: Error) => {
    assert.ok(isReason(err, 'Invalid'));
    assert.match(err.message, /spec\.volumeClaimTemplates: Forbidden: .*PersistentVolumeClaims/);
    return true;
  });
});

test('a lagging pod watch never makes the DaemonSet controller create twice', async (t) => {
  const api = await startTestApiServer();
  const factory = new InformerFactory(api.client);
  const controller = new DaemonSetController(api.client, factory);
  t.after(async () => {
    controller.stop();
    factory.stop();
    await api.stop();
  });
  for (const n of ['a', 'b', 'c']) await createNode(api.client, n);
  await api.client.create(DAEMONSETS, daemonSet('lag', 'x:1'));
  controller.register();
  await factory.start();
  await waitFor('the DaemonSet in the cache', async () => controller.queue.length > 0);

  // Freeze the pod cache: the controller's own creations are never seen.
  factory.informer(PODS).stop();
  const run = (controller as unknown as { reconcile(key: string): Promise<unknown> }).reconcile;
  // As the work queue would: a status write that raced the DaemonSet cache is retried.
  const reconcile = async (key: string) => {
    for (;;) {
      try {
        return await run.call(controller, key);
      } catch (err) {
        if (!isReason(err, 'Conflict')) throw err;
        await sleep(20);
      }
    }
  };
  await reconcile('default/lag');
  assert.deepEqual(controller.expectations.pending('default/lag'), { adds: 3, deletes: 0 });
  await reconcile('default/lag');
  await reconcile('default/lag');
  const pods = podsOf(await listPods(api.client), 'lag');
  assert.deepEqual(pods.map((p) => targetNode(p)).sort(), ['a', 'b', 'c']);
});
