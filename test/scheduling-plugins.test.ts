import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { byGroupResource } from '../src/api/resources.js';
import type { NodeObject, Pod, PodSpec, Taint } from '../src/api/types.js';
import { isReason } from '../src/client/rest.js';
import type { TestApiServer } from './helpers/apiserver.js';
import { startScheduling, until, type SchedulingCluster } from './helpers/sched.js';

/**
 * The scheduler's plugins through a real API server: pod scheduling fields are validated
 * on create, and taints, node affinity and pod anti-affinity decide where pods land and
 * what an unschedulable pod's condition says.
 */

const pods = byGroupResource.get('/pods')!;
const ZONE = 'topology.kubernetes.io/zone';

function nodeObject(name: string, zone: string, taints?: Taint[]): NodeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, [ZONE]: zone } },
    spec: { taints },
    status: {
      capacity: { cpu: '4', memory: '8Gi', pods: '110' },
      allocatable: { cpu: '4', memory: '8Gi', pods: '110' },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

function podObject(name: string, spec: Partial<PodSpec>, labels?: Record<string, string>): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels },
    spec: { containers: [{ name: 'c', image: 'i' }], ...spec },
  };
}

describe('scheduling plugins', () => {
  let api: TestApiServer;
  let cluster: SchedulingCluster;

  before(async () => {
    const dedicated: Taint = { key: 'dedicated', value: 'db', effect: 'NoSchedule' };
    cluster = await startScheduling([
      nodeObject('a', 'z1'),
      nodeObject('b', 'z2'),
      nodeObject('db', 'z1', [dedicated]),
    ]);
    api = cluster.api;
  });

  after(() => cluster.stop());

  const nodeOf = (name: string) => cluster.nodeOf(name);

  test('invalid scheduling fields are refused with their field paths', async () => {
    const bad = podObject('bad', {
      tolerations: [{ key: 'k', operator: 'Foo' as never }],
      topologySpreadConstraints: [
        { maxSkew: 0, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule' },
      ],
    });
    await assert.rejects(api.client.create(pods, bad), (err: Error) => {
      assert.ok(isReason(err, 'Invalid'), err.message);
      assert.match(err.message, /spec\.tolerations\[0\]\.operator: Unsupported value: "Foo"/);
      assert.match(err.message, /spec\.topologySpreadConstraints\[0\]\.maxSkew/);
      return true;
    });
  });

  test('taints and tolerations', async () => {
    const tolerant = podObject('tolerant', {
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }],
      nodeSelector: { 'kubernetes.io/hostname': 'db' },
    });
    await api.client.create(pods, tolerant);
    assert.equal(await nodeOf('tolerant'), 'db');

    await api.client.create(pods, podObject('intolerant', { nodeSelector: { [ZONE]: 'z1' } }));
    assert.equal(await nodeOf('intolerant'), 'a');
  });

  test('an unschedulable pod says which plugin refused each node', async () => {
    const affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: ZONE, operator: 'In' as const, values: ['z1'] }] },
          ],
        },
      },
      podAntiAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          { topologyKey: ZONE, labelSelector: { matchLabels: { app: 'solo' } } },
        ],
      },
    };
    const first = { nodeSelector: { 'kubernetes.io/hostname': 'a' } };
    await api.client.create(pods, podObject('solo-1', first, { app: 'solo' }));
    assert.equal(await nodeOf('solo-1'), 'a');
    await api.client.create(pods, podObject('solo-2', { affinity }, { app: 'solo' }));
    const condition = await until('the Unschedulable condition', async () => {
      const pod = await api.client.get<Pod>(pods, 'default', 'solo-2');
      return pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    });
    assert.equal(
      condition.message,
      "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, " +
        "1 node(s) didn't match pod anti-affinity rules, " +
        '1 node(s) had untolerated taint {dedicated: db}.',
    );
  });
});
