import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { byGroupResource } from '../src/api/resources.js';
import type { Deployment, NodeObject, Pod } from '../src/api/types.js';
import { HollowAgent } from '../src/agent/hollow.js';
import { kubeconfigText, writeKubeconfig } from '../src/cli/kubeconfig.js';
import { InformerFactory } from '../src/client/factory.js';
import { ControllerManager } from '../src/controllers/manager.js';
import { Scheduler } from '../src/scheduler/scheduler.js';
import { startTestApiServer, type TestApiServer } from './helpers/apiserver.js';

/** Hollow nodes carrying a Deployment through scheduler and controllers, in-process and CLI. */

const NODES = byGroupResource.get('/nodes')!;
const PODS = byGroupResource.get('/pods')!;
const LEASES = byGroupResource.get('coordination.k8s.io/leases')!;
const DEPLOYMENTS = byGroupResource.get('apps/deployments')!;

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await fn();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function deployment(name: string, replicas: number): Deployment {
  const labels = { app: name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [{ name: 'c', image: 'web:1', resources: { requests: { cpu: '10m' } } }],
        },
      },
    },
  };
}

describe('hollow nodes', () => {
  let api: TestApiServer;
  let informers: InformerFactory;
  let scheduler: Scheduler;
  let schedulerDone: Promise<void>;
  let manager: ControllerManager;
  let hollow: HollowAgent;

  before(async () => {
    api = await startTestApiServer();
    hollow = new HollowAgent({ client: api.client, count: 50, maxPods: 10 });
    await hollow.start();
    informers = new InformerFactory(api.client);
    scheduler = new Scheduler(api.client, informers);
    scheduler.register();
    manager = new ControllerManager(api.client, { informers });
    await manager.start();
    schedulerDone = scheduler.run();
  });

  after(async () => {
    await hollow?.stop();
    await manager?.stop();
    scheduler?.stop();
    await schedulerDone;
    informers?.stop();
    await api?.stop();
  });

  test('50 nodes carry a 200-pod Deployment to Running, then drop it', async () => {
    const nodes = await api.client.list<NodeObject>(NODES, undefined, {
      labelSelector: 'flyces.io/hollow=true',
    });
    assert.equal(nodes.items.length, 50);
    const leases = await api.client.list(LEASES, 'kube-node-lease');
    assert.deepEqual(
      leases.items.map((l) => l.metadata.name).sort(),
      hollow.nodeNames.slice().sort(),
    );

    await api.client.create(DEPLOYMENTS, deployment('load', 200));
    await until(
      'the Deployment to report 200 available',
      async () => {
        const d = await api.client.get<Deployment>(DEPLOYMENTS, 'default', 'load');
        return (d.status as { availableReplicas?: number } | undefined)?.availableReplicas === 200
          ? true
          : undefined;
      },
      40_000,
    );
    const pods = (await api.client.list<Pod>(PODS, 'default')).items;
    assert.equal(pods.length, 200);
    const perNode = new Map<string, number>();
    const ips = new Set<string>();
    for (const pod of pods) {
      assert.equal(pod.status?.phase, 'Running');
      assert.match(pod.status?.podIP ?? '', /^10\.64\.\d+\.\d+$/);
      assert.match(pod.status?.hostIP ?? '', /^172\.16\./);
      assert.ok(pod.status?.containerStatuses?.[0].state.running);
      ips.add(pod.status!.podIP!);
      perNode.set(pod.spec.nodeName!, (perNode.get(pod.spec.nodeName!) ?? 0) + 1);
    }
    assert.equal(ips.size, 200, 'pod IPs are unique');
    assert.ok(perNode.size >= 20, `spread over ${perNode.size} nodes`);
    assert.ok(Math.max(...perNode.values()) <= 10, 'no node above its max-pods');
    // No agent stands behind a hollow node, so the API server must not dial its address.
    const logs = api.client.request(
      'GET',
      `/api/v1/namespaces/default/pods/${pods[0].metadata.name}/log`,
    );
    await assert.rejects(logs, /has not reported its agent endpoint/);

    await api.client.delete(DEPLOYMENTS, 'default', 'load', { propagationPolicy: 'Foreground' });
    await until('all pods to be gone', async () => {
      const left = await api.client.list<Pod>(PODS, 'default');
      return left.items.length === 0 ? true : undefined;
    });
  });

  test('flyces agent --hollow 3 registers Ready nodes and exits 0 on SIGTERM', async () => {
    const kubeconfig = join(api.dir, 'kubeconfig');
    writeKubeconfig(kubeconfig, kubeconfigText(api.url, api.caPem, api.token));
    const child: ChildProcess = spawn(
      process.execPath,
      [
        'bin/flyces.js',
        'agent',
        '--hollow',
        '3',
        '--name-prefix',
        'cli-',
        '--kubeconfig',
        kubeconfig,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FLYCES_LOG_LEVEL: 'warn' } },
    );
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c));
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    try {
      await until('3 Ready cli nodes', async () => {
        const list = await api.client.list<NodeObject>(NODES);
        const ready = list.items.filter(
          (n) =>
            n.metadata.name!.startsWith('cli-') &&
            n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        );
        return ready.length === 3 ? true : undefined;
      });
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
  });

  test('flyces agent without --hollow says how real agents join', async () => {
    const child = spawn(process.execPath, ['bin/flyces.js', 'agent'], { stdio: 'pipe' });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 1);
    assert.match(stderr, /flyces up/);
  });
});
