import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { ApiError } from '../src/api/errors.js';
import { byGroupResource } from '../src/api/resources.js';
import type { KObject } from '../src/api/types.js';
import { KubeClient, type WatchEvent } from '../src/client/rest.js';
import { issueCert, newClusterCa, type CaPair } from '../src/apiserver/pki.js';
import { startTestApiServer, type TestApiServer } from './helpers/apiserver.js';

/** The API server's REST behaviour, through HTTPS, as Kubernetes clients rely on it. */

const deployments = byGroupResource.get('apps/deployments')!;
const pods = byGroupResource.get('/pods')!;

function deployment(name: string, extra: Record<string, unknown> = {}): KObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default', labels: { app: name } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'c', image: 'busybox:1', env: [{ name: 'A', value: '1' }] }] },
      },
      ...extra,
    },
  };
}

async function rejects(
  promise: Promise<unknown>,
  reason: string,
  pattern?: RegExp,
): Promise<ApiError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ApiError, `expected ApiError, got ${err}`);
    assert.equal(err.reason, reason, err.message);
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.fail(`expected ${reason}`);
}

describe('API server', () => {
  let api: TestApiServer;
  let client: KubeClient;

  before(async () => {
    api = await startTestApiServer();
    client = api.client;
  });
  after(async () => api.stop());

  test('every request needs a valid bearer token', async () => {
    const bad = new KubeClient({ server: api.url, token: 'wrong', caPem: api.caPem });
    await rejects(bad.list(pods, 'default'), 'Unauthorized');
    await rejects(bad.request('GET', '/version'), 'Unauthorized');
    bad.close();
  });

  test('create sets server fields; stale updates conflict', async () => {
    const created = await client.create(deployments, deployment('a'));
    assert.ok(created.metadata.uid);
    assert.ok(created.metadata.creationTimestamp);
    assert.equal(created.metadata.generation, 1);
    assert.equal(created.spec.strategy.rollingUpdate.maxSurge, '25%', 'defaults applied');
    await rejects(
      client.create(deployments, deployment('a')),
      'AlreadyExists',
      /deployments.apps "a" already exists/,
    );

    const changed = structuredClone(created);
    changed.spec.replicas = 3;
    const updated = await client.update(deployments, changed);
    assert.equal(updated.metadata.generation, 2, 'spec change bumps generation');
    assert.ok(Number(updated.metadata.resourceVersion) > Number(created.metadata.resourceVersion));
    await rejects(client.update(deployments, changed), 'Conflict', /has been modified/);
  });

  test('status is written only through its subresource', async () => {
    const d = await client.get(deployments, 'default', 'a');
    d.status = { replicas: 99 };
    const afterMain = await client.update(deployments, d);
    assert.notEqual(afterMain.status?.replicas, 99);
    afterMain.status = { replicas: 7 };
    afterMain.spec.replicas = 50;
    const afterStatus = await client.updateStatus(deployments, afterMain);
    assert.equal(afterStatus.status.replicas, 7);
    assert.equal(afterStatus.spec.replicas, 3);
  });

  test('validation names the field', async () => {
    const cases: [KObject, RegExp][] = [
      [deployment('Bad_Name'), /metadata\.name: Invalid value: "Bad_Name"/],
      [deployment('b', { replicas: -1 }), /spec\.replicas: Invalid value: -1/],
      [
        (() => {
          const d = deployment('c');
          d.spec.template.spec.containers[0].resources = { limits: { memory: 'lots' } };
          return d;
        })(),
        /spec\.template\.spec\.containers\[0\]\.resources\.limits\.memory/,
      ],
      [
        (() => {
          const d = deployment('d');
          d.metadata.labels = { 'bad key!': 'x' };
          return d;
        })(),
        /metadata\.labels/,
      ],
      [
        deployment('e', { selector: { matchLabels: { app: 'other' } } }),
        /selector. does not match template .labels/,
      ],
    ];
    for (const [obj, pattern] of cases) {
      const err = await rejects(client.create(deployments, obj), 'Invalid', pattern);
      assert.equal(err.code, 422);
      assert.ok(err.details?.causes?.[0]?.field);
    }
    const list = await client.list(deployments, 'default');
    assert.deepEqual(
      list.items.map((d) => d.metadata.name),
      ['a'],
      'nothing half-created',
    );
  });

  test("an object's metadata and spec errors come back together, as Kubernetes lists them", async () => {
    const pod: KObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'Bad_Name', namespace: 'default' },
      spec: { containers: [{ name: 'c', image: 'busybox:1', ports: [{ containerPort: 70000 }] }] },
    };
    const err = await rejects(client.create(pods, pod), 'Invalid');
    assert.deepEqual(
      err.details?.causes?.map((c) => c.field),
      ['metadata.name', 'spec.containers[0].ports[0].containerPort'],
    );
    assert.match(err.message, /metadata\.name: Invalid value: "Bad_Name"/);
    assert.match(err.message, /containerPort: Invalid value: 70000/);

    const svc: KObject = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: '1svc', namespace: 'default' },
      spec: { type: 'Bogus', ports: [{ port: 80 }] },
    };
    const svcErr = await rejects(client.create(byGroupResource.get('/services')!, svc), 'Invalid');
    assert.deepEqual(
      svcErr.details?.causes?.map((c) => c.field),
      ['metadata.name', 'spec.type'],
      'one name error (DNS-1035), and the spec error beside it',
    );
  });

  test('fieldValidation: Strict refuses unknown fields, Warn stores and warns', async () => {
    const typo = deployment('typo');
    typo.spec.template.spec.containers[0].prots = [{ containerPort: 80 }];
    const strict = client.request('POST', '/apis/apps/v1/namespaces/default/deployments', {
      query: { fieldValidation: 'Strict' },
      body: typo,
    });
    await rejects(
      strict,
      'BadRequest',
      /unknown field "spec\.template\.spec\.containers\[0\]\.prots"/,
    );
    const res = await client.open('POST', '/apis/apps/v1/namespaces/default/deployments', {
      body: typo,
    });
    res.resume();
    assert.match(String(res.headers.warning), /299 - "unknown field \\"spec\.template/);
    await client.delete(deployments, 'default', 'typo');
    await rejects(
      client.request('POST', '/apis/apps/v1/namespaces/default/deployments', {
        query: { fieldValidation: 'Loose' },
        body: typo,
      }),
      'BadRequest',
      /fieldValidation parameter unsupported/,
    );
  });

  test('objects in a missing namespace are refused', async () => {
    const d = deployment('x');
    d.metadata.namespace = 'nope';
    await rejects(client.create(deployments, d), 'NotFound', /namespaces "nope" not found/);
  });

  test('label and field selectors', async () => {
    for (const [name, tier] of [
      ['p1', 'web'],
      ['p2', 'db'],
      ['p3', 'web'],
    ]) {
      await client.create(pods, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'default', labels: { tier } },
        spec: {
          containers: [{ name: 'c', image: 'i' }],
          nodeName: name === 'p3' ? 'n1' : undefined,
        },
      });
    }
    const names = async (query: Record<string, string>) =>
      (await client.list(pods, 'default', query)).items.map((p) => p.metadata.name);
    assert.deepEqual(await names({ labelSelector: 'tier=web' }), ['p1', 'p3']);
    assert.deepEqual(await names({ labelSelector: 'tier in (db),tier!=web' }), ['p2']);
    assert.deepEqual(await names({ fieldSelector: 'spec.nodeName=n1' }), ['p3']);
    assert.deepEqual(
      await names({ fieldSelector: 'metadata.name!=p1', labelSelector: 'tier=web' }),
      ['p3'],
    );
    await rejects(
      client.list(pods, 'default', { fieldSelector: 'spec.image=x' }),
      'BadRequest',
      /field label not supported/,
    );
    await rejects(client.list(pods, 'default', { labelSelector: 'a b' }), 'BadRequest');
  });

  test('watch from a resourceVersion replays later changes in order, then live ones', async () => {
    const start = (await client.list(deployments, 'default')).resourceVersion;
    const events: string[] = [];
    const handle = client.watch(
      deployments,
      'default',
      { resourceVersion: start },
      (e: WatchEvent) => {
        events.push(`${e.type} ${e.object.metadata.name} ${e.object.spec?.replicas}`);
      },
    );
    await client.create(deployments, deployment('w'));
    await client.patch(deployments, 'default', 'w', { spec: { replicas: 5 } });
    await client.delete(deployments, 'default', 'w');
    const deadline = Date.now() + 5000;
    while (events.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    handle.stop();
    assert.deepEqual(events, ['ADDED w 2', 'MODIFIED w 5', 'DELETED w 5']);

    const replay: string[] = [];
    const again = client.watch(
      deployments,
      'default',
      { resourceVersion: start },
      (e: WatchEvent) => {
        replay.push(`${e.type} ${e.object.metadata.name}`);
      },
    );
    while (replay.length < 3 && Date.now() < deadline + 5000)
      await new Promise((r) => setTimeout(r, 20));
    again.stop();
    assert.deepEqual(replay, ['ADDED w', 'MODIFIED w', 'DELETED w']);
  });

  test('the three patch formats', async () => {
    await client.patch(
      deployments,
      'default',
      'a',
      {
        spec: {
          template: { spec: { containers: [{ name: 'c', env: [{ name: 'B', value: '2' }] }] } },
        },
      },
      'strategic',
    );
    let d = await client.get(deployments, 'default', 'a');
    assert.deepEqual(
      d.spec.template.spec.containers[0].env,
      [
        { name: 'A', value: '1' },
        { name: 'B', value: '2' },
      ],
      'strategic merges env by name',
    );
    assert.equal(d.spec.template.spec.containers[0].image, 'busybox:1');
    await client.patch(
      deployments,
      'default',
      'a',
      [{ op: 'replace', path: '/spec/replicas', value: 4 }],
      'json',
    );
    d = await client.patch(
      deployments,
      'default',
      'a',
      { metadata: { labels: { extra: 'yes' } } },
      'merge',
    );
    assert.equal(d.spec.replicas, 4);
    assert.equal(d.metadata.labels?.extra, 'yes');
    await rejects(
      client.patch(deployments, 'default', 'a', {
        metadata: { resourceVersion: '1' },
        spec: { replicas: 1 },
      }),
      'Conflict',
    );
  });

  test('scale subresource', async () => {
    const scale = await client.request(
      'GET',
      '/apis/apps/v1/namespaces/default/deployments/a/scale',
    );
    assert.equal(scale.kind, 'Scale');
    assert.equal(scale.spec.replicas, 4);
    assert.equal(scale.status.selector, 'app=a');
    await client.patch(deployments, 'default', 'a', { spec: { replicas: 6 } }, 'merge', 'scale');
    assert.equal((await client.get(deployments, 'default', 'a')).spec.replicas, 6);
  });

  test('server-side tables for kubectl get', async () => {
    const table = await client.request('GET', '/api/v1/namespaces/default/pods', {
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json',
    });
    assert.equal(table.kind, 'Table');
    assert.deepEqual(table.columnDefinitions.map((c: { name: string }) => c.name).slice(0, 7), [
      'Name',
      'Ready',
      'Status',
      'Restarts',
      'Age',
      'IP',
      'Node',
    ]);
    assert.deepEqual(table.rows[0].cells.slice(0, 4), ['p1', '0/1', 'Pending', '0']);

    // A restarted container: the count and how long ago its last run ended, as kubectl has it.
    const p2 = await client.get(pods, 'default', 'p2');
    const finishedAt = new Date(Date.now() - 5_000).toISOString().replace(/\.\d+Z$/, 'Z');
    p2.status = {
      phase: 'Running',
      containerStatuses: [
        {
          name: 'c',
          ready: true,
          restartCount: 2,
          image: 'i',
          imageID: '',
          state: { running: { startedAt: finishedAt } },
          lastState: { terminated: { exitCode: 1, reason: 'Error', finishedAt } },
        },
      ],
    };
    await client.updateStatus(pods, p2);
    const after = await client.request('GET', '/api/v1/namespaces/default/pods/p2', {
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json',
    });
    assert.match(after.rows[0].cells[3], /^2 \([5-9]s ago\)$/);
  });

  test('binding sets the node once; bound pods are deleted gracefully', async () => {
    const bind = (name: string, node: string) =>
      client.request('POST', `/api/v1/namespaces/default/pods/${name}/binding`, {
        body: {
          apiVersion: 'v1',
          kind: 'Binding',
          metadata: { name },
          target: { kind: 'Node', name: node },
        },
      });
    await rejects(bind('p1', 'No_Such/Node'), 'Invalid', /target\.name/);
    await bind('p1', 'n1');
    await rejects(bind('p1', 'n2'), 'Conflict', /already assigned/);
    const bound = await client.get(pods, 'default', 'p1');
    assert.equal(bound.spec.nodeName, 'n1');
    assert.equal(
      bound.status.conditions.find((c: { type: string }) => c.type === 'PodScheduled').status,
      'True',
    );

    const marked = await client.delete(pods, 'default', 'p1');
    assert.ok(marked.metadata.deletionTimestamp, 'a bound pod is only marked');
    assert.ok(await client.get(pods, 'default', 'p1'));
    await client.delete(pods, 'default', 'p1', { gracePeriodSeconds: 0 });
    await rejects(client.get(pods, 'default', 'p1'), 'NotFound');
    await client.delete(pods, 'default', 'p2');
    await rejects(client.get(pods, 'default', 'p2'), 'NotFound', /pods "p2" not found/);
  });

  test('hostile or malformed writes are refused and change nothing', async () => {
    const before = await client.get(deployments, 'default', 'a');
    const cases: [Promise<unknown>, string, RegExp][] = [
      [
        client.patch(
          deployments,
          'default',
          'a',
          [{ op: 'add', path: '/__proto__/x', value: 1 }],
          'json',
        ),
        'BadRequest',
        /invalid field name/,
      ],
      [
        client.patch(deployments, 'default', 'a', { status: 'garbage' }, 'merge', 'status'),
        'Invalid',
        /status/,
      ],
      [
        client.patch(deployments, 'default', 'a', { spec: { replicas: 2 ** 40 } }),
        'Invalid',
        /must be at most/,
      ],
      [
        client.patch(deployments, 'default', 'a', { metadata: { $patch: 'bogus' } }, 'strategic'),
        'BadRequest',
        /unknown patch directive/,
      ],
      [
        client.patch(
          deployments,
          'default',
          'a',
          Array.from({ length: 30 }, (_, i) => ({
            op: 'copy',
            from: '/spec',
            path: `/spec/c${i}`,
          })),
          'json',
        ),
        'RequestEntityTooLarge',
        /copies more than/,
      ],
      [
        client.request('POST', '/api/v1/pods', {
          body: { metadata: { name: 'z', namespace: 'default' } },
        }),
        'MethodNotAllowed',
        /does not allow/,
      ],
      [
        client.request('GET', '/api/v1/namespaces/default/pods/%ZZ'),
        'BadRequest',
        /percent-encoding/,
      ],
    ];
    for (const [promise, reason, pattern] of cases) await rejects(promise, reason, pattern);
    const after = await client.get(deployments, 'default', 'a');
    assert.equal(
      after.metadata.resourceVersion,
      before.metadata.resourceVersion,
      'nothing written',
    );
    assert.equal(({} as Record<string, unknown>).x, undefined);
  });

  test('a limit without a request defaults the request', async () => {
    const pod = await client.create(pods, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'limited', namespace: 'default' },
      spec: {
        containers: [
          { name: 'c', image: 'i', resources: { limits: { cpu: '500m', memory: '64Mi' } } },
        ],
      },
    });
    assert.deepEqual(pod.spec.containers[0].resources.requests, { cpu: '500m', memory: '64Mi' });
    // Requests equal to limits (defaulted so) make the pod Guaranteed, set at its creation.
    assert.equal(pod.status.qosClass, 'Guaranteed');
    await client.delete(pods, 'default', 'limited');
  });

  test("lists page with limit and continue, all pages at the first page's revision", async () => {
    const leases = byGroupResource.get('coordination.k8s.io/leases')!;
    for (let i = 0; i < 7; i++) {
      await client.create(leases, {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: {
          name: `page-${i}`,
          namespace: 'default',
          labels: { even: String(i % 2 === 0) },
        },
        spec: {},
      });
    }
    const path = '/apis/coordination.k8s.io/v1/namespaces/default/leases';
    const first = await client.request('GET', path, { query: { limit: 3 } });
    assert.deepEqual(
      first.items.map((l: KObject) => l.metadata.name),
      ['page-0', 'page-1', 'page-2'],
    );
    assert.equal(first.metadata.remainingItemCount, 4);
    await client.delete(leases, 'default', 'page-4');
    const names: string[] = first.items.map((l: KObject) => l.metadata.name);
    let token = first.metadata.continue;
    while (token) {
      const next = await client.request('GET', path, { query: { limit: 3, continue: token } });
      assert.equal(next.metadata.resourceVersion, first.metadata.resourceVersion);
      names.push(...next.items.map((l: KObject) => l.metadata.name));
      token = next.metadata.continue;
    }
    assert.deepEqual(
      names,
      Array.from({ length: 7 }, (_, i) => `page-${i}`),
      'page-4 still in the snapshot',
    );
    const even = await client.request('GET', path, {
      query: { limit: 2, labelSelector: 'even=true' },
    });
    assert.deepEqual(
      even.items.map((l: KObject) => l.metadata.name),
      ['page-0', 'page-2'],
    );
    await rejects(
      client.request('GET', path, { query: { limit: 2, continue: 'garbage' } }),
      'BadRequest',
      /continue/,
    );
    await rejects(
      client.request('GET', path, { query: { limit: 'x' } }),
      'BadRequest',
      /invalid limit/,
    );
  });

  test('discovery and openapi documents', async () => {
    const groups = await client.request('GET', '/apis');
    assert.ok(groups.groups.some((g: { name: string }) => g.name === 'apps'));
    const core = await client.request('GET', '/api/v1');
    const names = core.resources.map((r: { name: string }) => r.name);
    for (const n of [
      'pods',
      'pods/log',
      'pods/status',
      'pods/binding',
      'nodes',
      'namespaces',
      'events',
    ]) {
      assert.ok(names.includes(n), n);
    }
    const index = await client.request('GET', '/openapi/v3');
    assert.ok(index.paths['apis/apps/v1'].serverRelativeURL);
  });

  test('bodies that are not JSON objects get a 400 or 422, not a crash', async () => {
    const send = (body: string) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(api.url);
        const req = request(
          {
            host: url.hostname,
            port: url.port,
            method: 'POST',
            path: '/apis/apps/v1/namespaces/default/deployments',
            ca: api.caPem,
            headers: { Authorization: `Bearer ${api.token}`, 'Content-Type': 'application/json' },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    assert.equal(await send('{not json'), 400);
    assert.equal(await send('[1,2]'), 422);
    assert.equal(await send('{"metadata": 5}'), 422);
    assert.equal(await send('{"metadata": {"name": "z"}, "spec": "x"}'), 422);
  });
});

describe('bulk bindings (flyCes scheduler path)', () => {
  let api: TestApiServer;
  let ca: CaPair;

  before(async () => {
    ca = await newClusterCa('test-client-ca');
    api = await startTestApiServer({ clientCaPem: ca.certPem });
  });
  after(async () => api.stop());

  const bindings = (names: string[]) => ({
    apiVersion: 'flyces.io/v1',
    kind: 'BindingList',
    items: names.map((name) => ({
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name, namespace: 'default' },
      target: { kind: 'Node', name: 'n1' },
    })),
  });

  test('bind each item as its subresource would, each authorized on its own', async () => {
    for (const name of ['q1', 'q2', 'q3']) {
      await api.client.create(pods, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'default' },
        spec: { containers: [{ name: 'c', image: 'pause:1' }] },
      });
    }
    const cert = await issueCert(ca, {
      commonName: 'system:node:n1',
      organizations: ['system:nodes'],
      usage: 'client',
      lifetimeMs: 3_600_000,
    });
    const node = new KubeClient({
      server: api.url,
      token: '',
      caPem: api.caPem,
      clientCert: { certPem: cert.certPem, keyPem: cert.keyPem! },
    });
    try {
      const refused = await node.request('POST', '/flyces/v1/bindings', {
        body: bindings(['q1']),
      });
      assert.equal(refused.items[0].reason, 'Forbidden');
      assert.match(refused.items[0].message, /cannot create resource "pods\/binding"/);
    } finally {
      node.close();
    }
    const answer = await api.client.request('POST', '/flyces/v1/bindings', {
      body: bindings(['q1', 'q2', 'missing', 'q1']),
    });
    assert.deepEqual(
      answer.items.map((s: { status: string; reason?: string }) => s.reason ?? s.status),
      ['Success', 'Success', 'NotFound', 'Conflict'],
    );
    for (const name of ['q1', 'q2']) {
      assert.equal((await api.client.get(pods, 'default', name)).spec.nodeName, 'n1');
    }
    assert.equal((await api.client.get(pods, 'default', 'q3')).spec.nodeName, undefined);
    await rejects(
      api.client.request('POST', '/flyces/v1/bindings', { body: { items: 'x' } }),
      'BadRequest',
      /^items: /,
    );
  });

  test('a dry run writes nothing; other methods are refused with 405', async () => {
    await api.client.create(pods, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'dry1', namespace: 'default' },
      spec: { containers: [{ name: 'c', image: 'pause:1' }] },
    });
    const answer = await api.client.request('POST', '/flyces/v1/bindings', {
      body: bindings(['dry1']),
      query: { dryRun: 'All' },
    });
    assert.equal(answer.items[0].status, 'Success');
    assert.equal((await api.client.get(pods, 'default', 'dry1')).spec.nodeName, undefined);
    const single = `/api/v1/namespaces/default/pods/dry1/binding`;
    await api.client.request('POST', single, {
      body: bindings(['dry1']).items[0],
      query: { dryRun: 'All' },
    });
    assert.equal((await api.client.get(pods, 'default', 'dry1')).spec.nodeName, undefined);
    await rejects(
      api.client.request('POST', '/flyces/v1/bindings', {
        body: bindings(['dry1']),
        query: { dryRun: 'Some' },
      }),
      'BadRequest',
      /invalid dry run option/,
    );
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      await rejects(
        api.client.request(method, '/flyces/v1/bindings', { body: bindings(['dry1']) }),
        'MethodNotAllowed',
        /only POST/,
      );
    }
    assert.equal((await api.client.get(pods, 'default', 'dry1')).spec.nodeName, undefined);
  });
});
