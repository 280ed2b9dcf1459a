import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { UserInfo } from './auth.js';
import { authorize, forbiddenMessage, type NodeFacts, type ResourceAttributes } from './authz.js';

const nodeA: UserInfo = { name: 'system:node:a', groups: ['system:nodes'] };
const admin: UserInfo = { name: 'system:admin', groups: ['system:masters'] };
const stranger: UserInfo = { name: 'flyces-apiserver', groups: [] };
/** A node name without the nodes group is not a node. */
const fakeNode: UserInfo = { name: 'system:node:a', groups: [] };

/** Pods: default/on-a is bound to a, default/on-b to b, default/pending to none. */
const facts: NodeFacts = {
  async podNode(ns, name) {
    if (ns !== 'default') return undefined;
    return { 'on-a': 'a', 'on-b': 'b', pending: '' }[name];
  },
  /** on-a uses Secret default/s-a and ConfigMap default/c-a; on-b uses Secret default/s-b. */
  refers(node, ref) {
    const uses: Record<string, string[]> = {
      a: ['Secret/default/s-a', 'ConfigMap/default/c-a'],
      b: ['Secret/default/s-b'],
    };
    return uses[node]?.includes(ref) ?? false;
  },
};

function obj(verb: string, resource: string, namespace?: string, name?: string) {
  return { verb, group: '', resource, namespace, name };
}

const cases: [string, UserInfo, ResourceAttributes, boolean][] = [
  ['admin does anything', admin, { verb: 'delete', group: '', resource: 'nodes', name: 'b' }, true],
  ['node lists pods', nodeA, { verb: 'list', group: '', resource: 'pods' }, true],
  ['node watches secrets', nodeA, obj('watch', 'secrets'), false],
  ['node lists secrets of a namespace', nodeA, obj('list', 'secrets', 'default'), false],
  ["node gets its pod's secret", nodeA, obj('get', 'secrets', 'default', 's-a'), true],
  ["node gets another node's pod's secret", nodeA, obj('get', 'secrets', 'default', 's-b'), false],
  ['node gets the same name elsewhere', nodeA, obj('get', 'secrets', 'other', 's-a'), false],
  ["node updates its pod's secret", nodeA, obj('update', 'secrets', 'default', 's-a'), false],
  ["node gets its pod's configmap", nodeA, obj('get', 'configmaps', 'default', 'c-a'), true],
  [
    'a secret name is not a configmap name',
    nodeA,
    obj('get', 'configmaps', 'default', 's-a'),
    false,
  ],
  ['node lists configmaps', nodeA, obj('list', 'configmaps'), false],
  ['node reads kube-public configmaps', nodeA, obj('get', 'configmaps', 'kube-public', 'x'), true],
  ['node watches kube-public configmaps', nodeA, obj('watch', 'configmaps', 'kube-public'), true],
  [
    'node writes kube-public configmaps',
    nodeA,
    obj('update', 'configmaps', 'kube-public', 'x'),
    false,
  ],
  [
    'node reads endpointslices',
    nodeA,
    { verb: 'list', group: 'discovery.k8s.io', resource: 'endpointslices' },
    true,
  ],
  ['node gets another node', nodeA, { verb: 'get', group: '', resource: 'nodes', name: 'b' }, true],
  ['node creates itself', nodeA, { verb: 'create', group: '', resource: 'nodes', name: 'a' }, true],
  [
    'node creates another',
    nodeA,
    { verb: 'create', group: '', resource: 'nodes', name: 'b' },
    false,
  ],
  ['node patches itself', nodeA, { verb: 'patch', group: '', resource: 'nodes', name: 'a' }, true],
  ['node patches b', nodeA, { verb: 'patch', group: '', resource: 'nodes', name: 'b' }, false],
  [
    'node patches own status',
    nodeA,
    { verb: 'patch', group: '', resource: 'nodes', subresource: 'status', name: 'a' },
    true,
  ],
  [
    "node patches b's status",
    nodeA,
    { verb: 'patch', group: '', resource: 'nodes', subresource: 'status', name: 'b' },
    false,
  ],
  [
    'node deletes itself',
    nodeA,
    { verb: 'delete', group: '', resource: 'nodes', name: 'a' },
    false,
  ],
  ['node renews own lease', nodeA, lease('patch', 'kube-node-lease', 'a'), true],
  ['node creates own lease', nodeA, lease('create', 'kube-node-lease', 'a'), true],
  ["node patches b's lease", nodeA, lease('patch', 'kube-node-lease', 'b'), false],
  ['node writes a lease elsewhere', nodeA, lease('update', 'kube-system', 'a'), false],
  ['pod status of own pod', nodeA, pod('patch', 'on-a', 'status'), true],
  ['pod status of a pod of b', nodeA, pod('update', 'on-b', 'status'), false],
  ['pod status of an unbound pod', nodeA, pod('patch', 'pending', 'status'), false],
  ['pod status of a missing pod', nodeA, pod('patch', 'gone', 'status'), true],
  ['delete own pod', nodeA, pod('delete', 'on-a'), true],
  ['delete a pod of b', nodeA, pod('delete', 'on-b'), false],
  ['patch own pod spec', nodeA, pod('patch', 'on-a'), false],
  [
    'create pods',
    nodeA,
    { verb: 'create', group: '', resource: 'pods', namespace: 'default' },
    false,
  ],
  ['exec in own pod', nodeA, pod('create', 'on-a', 'exec'), false],
  ['read pod logs', nodeA, pod('get', 'on-a', 'log'), false],
  ['create events', nodeA, { verb: 'create', group: '', resource: 'events', namespace: 'x' }, true],
  ['delete events', nodeA, { verb: 'delete', group: '', resource: 'events', name: 'e' }, false],
  ['read deployments', nodeA, { verb: 'list', group: 'apps', resource: 'deployments' }, false],
  ['create namespaces', nodeA, { verb: 'create', group: '', resource: 'namespaces' }, false],
  [
    'write configmaps',
    nodeA,
    { verb: 'update', group: '', resource: 'configmaps', name: 'c' },
    false,
  ],
  ['non-node user reads pods', stranger, { verb: 'list', group: '', resource: 'pods' }, false],
  ['node name without the group', fakeNode, { verb: 'list', group: '', resource: 'pods' }, false],
];

function lease(verb: string, namespace: string, name: string): ResourceAttributes {
  return { verb, group: 'coordination.k8s.io', resource: 'leases', namespace, name };
}

function pod(verb: string, name: string, subresource?: string): ResourceAttributes {
  return { verb, group: '', resource: 'pods', namespace: 'default', name, subresource };
}

for (const [name, user, attrs, want] of cases) {
  test(`authorize: ${name}`, async () => {
    assert.equal(await authorize(user, attrs, facts), want);
  });
}

test('forbidden messages are worded as kube-apiserver words them', () => {
  const rows: [ResourceAttributes, string][] = [
    [
      { verb: 'patch', group: '', resource: 'nodes', name: 'b' },
      'nodes "b" is forbidden: User "system:node:a" cannot patch resource "nodes" ' +
        'in API group "" at the cluster scope',
    ],
    [
      {
        verb: 'update',
        group: '',
        resource: 'pods',
        subresource: 'status',
        namespace: 'ns',
        name: 'p',
      },
      'pods "p" is forbidden: User "system:node:a" cannot update resource "pods/status" ' +
        'in API group "" in the namespace "ns"',
    ],
    [
      { verb: 'list', group: 'apps', resource: 'deployments' },
      'deployments is forbidden: User "system:node:a" cannot list resource "deployments" ' +
        'in API group "apps" at the cluster scope',
    ],
  ];
  for (const [attrs, want] of rows) assert.equal(forbiddenMessage(nodeA, attrs), want);
});
