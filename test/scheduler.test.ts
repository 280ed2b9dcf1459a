import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { byGroupResource } from '../src/api/resources.js';
import type { NodeObject, Pod } from '../src/api/types.js';
import type { TestApiServer } from './helpers/apiserver.js';
import { startScheduling, until, type SchedulingCluster } from './helpers/sched.js';

/** The scheduler against a real API server, with Node objects standing in for machines. */

const nodes = byGroupResource.get('/nodes')!;
const pods = byGroupResource.get('/pods')!;
const events = byGroupResource.get('/events')!;

function nodeObject(name: string, cpu: string, labels: Record<string, string> = {}): NodeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } },
    status: {
      capacity: { cpu, memory: '8Gi', pods: '110' },
      allocatable: { cpu, memory: '8Gi', pods: '110' },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

function podObject(name: string, cpu: string, extra: Record<string, unknown> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: { containers: [{ name: 'c', image: 'i', resources: { requests: { cpu } } }], ...extra },
  };
}

describe('scheduler', () => {
  let api: TestApiServer;
  let cluster: SchedulingCluster;

  before(async () => {
    cluster = await startScheduling([
      nodeObject('small', '1'),
      nodeObject('gpu', '2', { accel: 'yes' }),
    ]);
    api = cluster.api;
  });

  after(() => cluster.stop());

  const nodeOf = (name: string) => cluster.nodeOf(name);

  test('a pod goes to the least allocated node that fits, and its selector is honoured', async () => {
    await api.client.create(pods, podObject('free', '100m'));
    assert.equal(await nodeOf('free'), 'gpu');
    await api.client.create(
      pods,
      podObject('picky', '100m', { nodeSelector: { 'kubernetes.io/hostname': 'small' } }),
    );
    assert.equal(await nodeOf('picky'), 'small');
  });

  test('a pod that fits nowhere stays Pending and says why, then is placed when a node comes', async () => {
    await api.client.create(pods, podObject('huge', '3'));
    const condition = await until('the Unschedulable condition', async () => {
      const pod = await api.client.get<Pod>(pods, 'default', 'huge');
      return pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    });
    assert.equal(condition.reason, 'Unschedulable');
    assert.equal(condition.message, '0/2 nodes are available: 2 Insufficient cpu.');
    const event = await until('a FailedScheduling event', async () => {
      const list = await api.client.list(events, 'default', {
        fieldSelector: 'involvedObject.name=huge',
      });
      return list.items.find((e) => e.reason === 'FailedScheduling');
    });
    assert.match(event.message, /Insufficient cpu/);
    assert.equal((await api.client.get<Pod>(pods, 'default', 'huge')).spec.nodeName, undefined);

    const big = nodeObject('big', '8');
    await api.client.create(nodes, big);
    await api.client.patch(nodes, undefined, 'big', { status: big.status }, 'merge', 'status');
    assert.equal(await nodeOf('huge'), 'big');
  });

  test('a burst never overcommits a node', async () => {
    await api.client.patch(nodes, undefined, 'big', { spec: { unschedulable: true } }, 'merge');
    await api.client.patch(nodes, undefined, 'gpu', { spec: { unschedulable: true } }, 'merge');
    // small has 1 cpu and already runs 'picky' (100m): room for nine more 100m pods.
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        api.client.create(pods, podObject(`burst-${i}`, '100m')),
      ),
    );
    await until('the burst to settle', async () => {
      const list = await api.client.list<Pod>(pods, 'default');
      const burst = list.items.filter((p) => p.metadata.name!.startsWith('burst-'));
      const unschedulable = burst.filter((p) =>
        p.status?.conditions?.some((c) => c.reason === 'Unschedulable'),
      );
      return burst.filter((p) => p.spec.nodeName).length + unschedulable.length === 20
        ? true
        : undefined;
    });
    const list = await api.client.list<Pod>(pods, 'default');
    const onSmall = list.items.filter((p) => p.spec.nodeName === 'small');
    assert.equal(onSmall.length, 10, 'exactly as many as fit');
  });
});
