import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.js';

test('merge patch', () => {
  const cases: [unknown, unknown, unknown][] = [
    [
      { a: 1, b: 2 },
      { b: null, c: 3 },
      { a: 1, c: 3 },
    ],
    [{ a: { x: 1 } }, { a: { y: 2 } }, { a: { x: 1, y: 2 } }],
    [{ a: [1, 2] }, { a: [3] }, { a: [3] }],
    [{ a: 1 }, { spec: { replicas: 5 } }, { a: 1, spec: { replicas: 5 } }],
  ];
  for (const [target, patch, want] of cases) assert.deepEqual(mergePatch(target, patch), want);
});

test('json patch', () => {
  const doc = { spec: { replicas: 1, list: ['a', 'b'] } };
  assert.deepEqual(
    jsonPatch(doc, [
      { op: 'replace', path: '/spec/replicas', value: 3 },
      { op: 'add', path: '/spec/list/-', value: 'c' },
      { op: 'remove', path: '/spec/list/0' },
      { op: 'add', path: '/metadata', value: { name: 'x' } },
    ]),
    { spec: { replicas: 3, list: ['b', 'c'] }, metadata: { name: 'x' } },
  );
  assert.equal(doc.spec.replicas, 1, 'input untouched');
  assert.throws(() => jsonPatch(doc, [{ op: 'test', path: '/spec/replicas', value: 2 }]));
  assert.throws(() => jsonPatch(doc, [{ op: 'replace', path: '/spec/missing', value: 2 }]));
  assert.throws(() => jsonPatch(doc, { op: 'add' }), /list of operations/);
});

test('strategic merge patch merges containers and env by name', () => {
  const target = {
    spec: {
      containers: [
        {
          name: 'web',
          image: 'a',
          env: [
            { name: 'A', value: '1' },
            { name: 'B', value: '2' },
          ],
        },
        { name: 'side', image: 's' },
      ],
      finalizers: ['x'],
    },
  };
  const patch = {
    spec: {
      $setElementOrder$containers: undefined,
      containers: [
        {
          name: 'web',
          env: [
            { name: 'A', value: '9' },
            { name: 'B', $patch: 'delete' },
          ],
        },
      ],
      '$setElementOrder/containers': [{ name: 'side' }, { name: 'web' }],
      finalizers: ['y'],
    },
  };
  delete (patch.spec as any).$setElementOrder$containers;
  assert.deepEqual(strategicMergePatch(target, patch), {
    spec: {
      containers: [
        { name: 'side', image: 's' },
        { name: 'web', image: 'a', env: [{ name: 'A', value: '9' }] },
      ],
      finalizers: ['x', 'y'],
    },
  });
});

test('strategic merge patch directives', () => {
  assert.deepEqual(strategicMergePatch({ a: { x: 1, y: 2 } }, { a: { $patch: 'replace', z: 3 } }), {
    a: { z: 3 },
  });
  assert.deepEqual(strategicMergePatch({ a: { x: 1 }, b: 1 }, { a: null }), { b: 1 });
  assert.deepEqual(
    strategicMergePatch({ l: ['a', 'b', 'c'] }, { '$deleteFromPrimitiveList/l': ['b'] }),
    { l: ['a', 'c'] },
  );
  assert.deepEqual(
    strategicMergePatch(
      { s: { type: 'A', a: 1, b: 2 } },
      { s: { $retainKeys: ['type', 'b'], b: 3 } },
    ),
    { s: { type: 'A', b: 3 } },
  );
});

test('patches cannot reach the prototype', () => {
  assert.throws(
    () => jsonPatch({}, [{ op: 'add', path: '/__proto__/x', value: 1 }]),
    /invalid field name/,
  );
  assert.throws(() => mergePatch({}, JSON.parse('{"__proto__": {"x": 1}}')), /invalid field name/);
  assert.throws(
    () => strategicMergePatch({}, JSON.parse('{"a": {"__proto__": {"x": 1}}}')),
    /invalid field name/,
  );
  assert.equal(({} as Record<string, unknown>).x, undefined);
});

test('strategic merge patch refuses malformed directives', () => {
  const target = { metadata: { labels: { a: '1' }, annotations: { b: '2' } } };
  assert.throws(
    () => strategicMergePatch(target, { metadata: { $patch: 'bogus' } }),
    /unknown patch directive/,
  );
  assert.throws(() => strategicMergePatch(target, { $retainKeys: [1, 2] }), /list of field names/);
  assert.throws(
    () => strategicMergePatch(target, { metadata: { $retainKeys: ['labels'], annotations: {} } }),
    /does not list "annotations"/,
  );
  assert.deepEqual(strategicMergePatch(target, { metadata: { labels: { $patch: 'delete' } } }), {
    metadata: { annotations: { b: '2' } },
  });
});

test('json patch copies are bounded', () => {
  const doc = { spec: { data: 'x'.repeat(1024) } };
  const ops = Array.from({ length: 30 }, (_, i) => ({
    op: 'copy',
    from: '/spec',
    path: `/spec/c${i}`,
  }));
  assert.throws(() => jsonPatch(doc, ops), /copies more than/);
});

test('strategic merge patch: ports merge by port in a Service, by containerPort in a pod', () => {
  const cases: { name: string; target: unknown; patch: unknown; want: unknown }[] = [
    {
      name: 'service ports, as kubectl apply sends a changed targetPort',
      target: {
        spec: {
          ports: [
            { name: 'http', port: 80, targetPort: 8080, nodePort: 30080 },
            { name: 'm', port: 9090, targetPort: 9090 },
          ],
        },
      },
      patch: {
        spec: {
          '$setElementOrder/ports': [{ port: 80 }, { port: 9090 }],
          ports: [{ port: 80, targetPort: 8081 }],
        },
      },
      want: {
        spec: {
          ports: [
            { name: 'http', port: 80, targetPort: 8081, nodePort: 30080 },
            { name: 'm', port: 9090, targetPort: 9090 },
          ],
        },
      },
    },
    {
      name: 'container ports still by containerPort',
      target: { spec: { containers: [{ name: 'c', ports: [{ containerPort: 80 }] }] } },
      patch: {
        spec: { containers: [{ name: 'c', ports: [{ containerPort: 80, name: 'http' }] }] },
      },
      want: { spec: { containers: [{ name: 'c', ports: [{ containerPort: 80, name: 'http' }] }] } },
    },
    {
      name: 'an EndpointSlice list of ports is replaced whole',
      target: { ports: [{ name: 'a', port: 80 }] },
      patch: { ports: [{ name: 'b', port: 81 }] },
      want: { ports: [{ name: 'b', port: 81 }] },
    },
  ];
  for (const c of cases) assert.deepEqual(strategicMergePatch(c.target, c.patch), c.want, c.name);
});
