import { test } from 'node:test';
import assert from 'node:assert/strict';
import { byGroupResource, RESOURCE_TYPES, type ResourceType } from '../../api/resources.js';
import type { Condition, KObject } from '../../api/types.js';
import { InformerFactory } from '../../client/factory.js';
import type { KubeClient } from '../../client/rest.js';
import { namespaceConditions, type ContentReport } from './conditions.js';
import { NamespaceController } from './controller.js';

const NAMESPACES = byGroupResource.get('/namespaces')!;

/** An API of plain maps: enough of KubeClient for the namespace controller. */
function fakeApi(content: Map<string, KObject[]>, namespace: KObject) {
  const listed: string[] = [];
  const deleted: string[] = [];
  let ns = structuredClone(namespace);
  const client = {
    list: async (rt: ResourceType) => {
      listed.push(rt.group ? `${rt.plural}.${rt.group}` : rt.plural);
      return { items: content.get(rt.plural) ?? [], resourceVersion: '1' };
    },
    delete: async (rt: ResourceType, _ns: string, name: string) => {
      deleted.push(`${rt.plural}/${name}`);
      return {};
    },
    get: async () => structuredClone(ns),
    updateStatus: async (_rt: ResourceType, obj: KObject) => (ns = structuredClone(obj)),
    update: async (_rt: ResourceType, obj: KObject) => (ns = structuredClone(obj)),
  };
  return { client: client as unknown as KubeClient, listed, deleted, current: () => ns };
}

function terminating(): KObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: 'doomed',
      resourceVersion: '5',
      deletionTimestamp: '2024-01-01T00:00:00Z',
      finalizers: ['kubernetes'],
    },
    status: { phase: 'Terminating' },
  };
}

async function reconcileOnce(client: KubeClient, ns: KObject): Promise<number | void> {
  const factory = new InformerFactory(client);
  const controller = new NamespaceController(client, factory);
  // Fed by hand instead of a watch: apply() is what a watch event would call.
  const informer = factory.informer(NAMESPACES) as unknown as {
    apply(type: string, key: string, obj: KObject): void;
  };
  informer.apply('ADDED', 'doomed', ns);
  const run = controller as unknown as { reconcile(key: string): Promise<number | void> };
  return run.reconcile('doomed');
}

test('a terminating namespace is emptied across every served namespaced type', async () => {
  const held: KObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'held', finalizers: ['example.com/hold'] },
  };
  const going: KObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', deletionTimestamp: '2024-01-01T00:00:00Z' },
  };
  const api = fakeApi(
    new Map([
      ['configmaps', [held]],
      ['pods', [going]],
    ]),
    terminating(),
  );
  const requeue = await reconcileOnce(api.client, terminating());

  const namespaced = RESOURCE_TYPES.filter((rt) => rt.namespaced).map((rt) =>
    rt.group ? `${rt.plural}.${rt.group}` : rt.plural,
  );
  assert.deepEqual(api.listed.sort(), namespaced.sort(), 'every namespaced type is listed');
  assert.deepEqual(api.deleted, ['configmaps/held'], 'terminating objects are not deleted twice');
  assert.ok(typeof requeue === 'number' && requeue > 0, 'looks again while content is left');
  const conditions = api.current().status.conditions as Condition[];
  const byType = (type: string) => conditions.find((c) => c.type === type);
  assert.equal(byType('NamespaceContentRemaining')?.reason, 'SomeResourcesRemain');
  assert.match(byType('NamespaceContentRemaining')!.message!, /configmaps: 1 object, pods: 1/);
  assert.equal(byType('NamespaceFinalizersRemaining')?.reason, 'SomeFinalizersRemain');
  assert.match(byType('NamespaceFinalizersRemaining')!.message!, /example\.com\/hold: 1 object/);
  assert.deepEqual(api.current().metadata.finalizers, ['kubernetes']);

  const empty = fakeApi(new Map(), terminating());
  assert.equal(await reconcileOnce(empty.client, terminating()), undefined);
  assert.equal(empty.current().metadata.finalizers, undefined, 'the finalizer goes when empty');
  const removed = (empty.current().status.conditions as Condition[]).find(
    (c) => c.type === 'NamespaceContentRemaining',
  );
  assert.deepEqual([removed?.status, removed?.reason], ['False', 'ContentRemoved']);
});

test('namespace deletion conditions', () => {
  const NOW = new Date('2024-01-01T00:00:10Z');
  const report = (
    remaining: [string, number][],
    finalizers: [string, number][] = [],
    failures: string[] = [],
  ): ContentReport => ({
    remaining: new Map(remaining),
    finalizers: new Map(finalizers),
    failures,
  });
  const table: { name: string; report: ContentReport; want: Record<string, [string, string]> }[] = [
    {
      name: 'content left',
      report: report([['pods', 2]]),
      want: {
        NamespaceContentRemaining: ['True', 'SomeResourcesRemain'],
        NamespaceFinalizersRemaining: ['False', 'ContentHasNoFinalizers'],
        NamespaceDeletionContentFailure: ['False', 'ContentDeleted'],
      },
    },
    {
      name: 'held by a finalizer',
      report: report([['configmaps', 1]], [['example.com/hold', 1]]),
      want: {
        NamespaceContentRemaining: ['True', 'SomeResourcesRemain'],
        NamespaceFinalizersRemaining: ['True', 'SomeFinalizersRemain'],
      },
    },
    {
      name: 'a delete failed',
      report: report([['pods', 1]], [], ['pods p: boom']),
      want: { NamespaceDeletionContentFailure: ['True', 'ContentDeletionFailed'] },
    },
    {
      name: 'empty',
      report: report([]),
      want: {
        NamespaceContentRemaining: ['False', 'ContentRemoved'],
        NamespaceFinalizersRemaining: ['False', 'ContentHasNoFinalizers'],
        NamespaceDeletionDiscoveryFailure: ['False', 'ResourcesDiscovered'],
        NamespaceDeletionGroupVersionParsingFailure: ['False', 'ParsedGroupVersions'],
      },
    },
  ];
  for (const c of table) {
    const conditions = namespaceConditions(c.report, [], NOW);
    assert.equal(conditions.length, 5, c.name);
    for (const [type, want] of Object.entries(c.want)) {
      const got = conditions.find((x) => x.type === type);
      assert.deepEqual([got?.status, got?.reason], want, `${c.name}: ${type}`);
    }
  }

  const first = namespaceConditions(report([['pods', 2]]), [], NOW);
  const later = new Date(NOW.getTime() + 5000);
  assert.deepEqual(namespaceConditions(report([['pods', 2]]), first, later), first, 'unchanged');
  const fewer = namespaceConditions(report([['pods', 1]]), first, later);
  const remaining = (cs: Condition[]) => cs.find((x) => x.type === 'NamespaceContentRemaining')!;
  assert.equal(remaining(fewer).lastTransitionTime, remaining(first).lastTransitionTime);
  const done = namespaceConditions(report([]), first, later);
  assert.equal(remaining(done).lastTransitionTime, '2024-01-01T00:00:15Z');
});
