import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ApiError } from '../src/api/errors.js';
import { byGroupResource } from '../src/api/resources.js';
import type { EndpointSlice, Endpoints, Service } from '../src/api/service.js';
import { nowTimestamp, type Pod } from '../src/api/types.js';
import { ensureServingCert } from '../src/apiserver/pki.js';
import { ApiServer } from '../src/apiserver/server.js';
import { InformerFactory } from '../src/client/factory.js';
import { KubeClient, resourcePath } from '../src/client/rest.js';
import { kubeconfigText, writeKubeconfig } from '../src/cli/kubeconfig.js';
import { EndpointsController } from '../src/controllers/endpoints/controller.js';
import { ControllerManager } from '../src/controllers/manager.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { startTestApiServer, type TestApiServer } from './helpers/apiserver.js';

/**
 * Services end to end on one API server with the controllers and no agent: the test plays
 * the kubelet, patching pod status with an IP, Running and Ready.
 */

const SERVICES = byGroupResource.get('/services')!;
const ENDPOINTS = byGroupResource.get('/endpoints')!;
const SLICES = byGroupResource.get('discovery.k8s.io/endpointslices')!;
const PODS = byGroupResource.get('/pods')!;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function errorOf(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApiError, String(err));
    return err;
  }
  assert.fail('expected an error');
}

function webPod(name: string, ip: string): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { app: 'web' } },
    spec: {
      nodeName: 'node-a',
      containers: [
        { name: 'web', image: 'nginx:1.25', ports: [{ name: 'http', containerPort: 8080 }] },
      ],
    },
    status: { podIP: ip },
  } as Pod;
}

/** What a kubelet reports for a running pod, ready or not. */
async function reportStatus(api: TestApiServer, name: string, ip: string, ready: boolean) {
  const at = nowTimestamp();
  const status = {
    phase: 'Running',
    podIP: ip,
    podIPs: [{ ip }],
    conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: at }],
  };
  await api.client.patch(PODS, 'default', name, { status }, 'merge', 'status');
}

const getEndpoints = (api: TestApiServer, name: string) =>
  api.client.get<Endpoints>(ENDPOINTS, 'default', name);

async function slicesOf(api: TestApiServer, service: string): Promise<EndpointSlice[]> {
  const query = { labelSelector: `kubernetes.io/service-name=${service}` };
  return (await api.client.list<EndpointSlice>(SLICES, 'default', query)).items;
}

function kubectl(api: TestApiServer) {
  const kubeconfig = join(api.dir, 'kubeconfig');
  writeKubeconfig(kubeconfig, kubeconfigText(api.url, api.caPem, api.token));
  return async (...args: string[]): Promise<string> => {
    // Asynchronously: the API server under test runs in this very process.
    const run = promisify(execFile);
    const { stdout } = await run('kubectl', ['--kubeconfig', kubeconfig, ...args], {
      encoding: 'utf8',
    });
    return stdout;
  };
}

async function setup(t: TestContext): Promise<TestApiServer> {
  const api = await startTestApiServer();
  const manager = new ControllerManager(api.client);
  await manager.start();
  t.after(async () => {
    await manager.stop();
    await api.stop();
  });
  return api;
}

test('the kubernetes service points at the API server', async (t) => {
  const api = await setup(t);
  const port = Number(new URL(api.url).port);
  const svc = await api.client.get<Service>(SERVICES, 'default', 'kubernetes');
  assert.equal(svc.spec.clusterIP, '10.43.0.1');
  assert.deepEqual(svc.spec.ports, [
    { name: 'https', port: 443, protocol: 'TCP', targetPort: port },
  ]);
  const ep = await getEndpoints(api, 'kubernetes');
  assert.deepEqual(ep.subsets, [
    { addresses: [{ ip: '127.0.0.1' }], ports: [{ name: 'https', port, protocol: 'TCP' }] },
  ]);
  const [slice] = await slicesOf(api, 'kubernetes');
  assert.deepEqual(slice?.endpoints?.[0]?.addresses, ['127.0.0.1']);
});

test('service allocation, endpoints following readiness, kubectl, deletion', async (t) => {
  const api = await setup(t);
  const client = api.client;
  const ips = { a: '10.42.0.11', b: '10.42.0.12', c: '10.42.0.13' };
  for (const [name, ip] of Object.entries(ips)) {
    await client.create(PODS, { ...webPod(name, ip), status: undefined });
  }
  const web = await client.create<Service>(SERVICES, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'default' },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
  });
  assert.match(web.spec.clusterIP!, /^10\.43\.\d+\.\d+$/);
  assert.notEqual(web.spec.clusterIP, '10.43.0.1');

  // No pod has an IP yet: Endpoints without subsets and one empty slice.
  await waitFor('empty endpoints', async () => (await getEndpoints(api, 'web')).metadata.uid);
  assert.equal((await getEndpoints(api, 'web')).subsets, undefined);

  await reportStatus(api, 'a', ips.a, true);
  await reportStatus(api, 'b', ips.b, true);
  await reportStatus(api, 'c', ips.c, false);
  const ep = await waitFor('endpoints of three pods', async () => {
    const e = await getEndpoints(api, 'web');
    const s = e.subsets?.[0];
    return s?.addresses?.length === 2 && s.notReadyAddresses?.length === 1 ? e : undefined;
  });
  const subset = ep.subsets![0]!;
  assert.deepEqual(subset.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
  assert.deepEqual(
    subset.addresses!.map((a) => [a.ip, a.nodeName, a.targetRef?.kind, a.targetRef?.name]),
    [
      [ips.a, 'node-a', 'Pod', 'a'],
      [ips.b, 'node-a', 'Pod', 'b'],
    ],
  );
  assert.equal(subset.notReadyAddresses![0]!.ip, ips.c);

  const [slice] = await waitFor('slice of three pods', async () => {
    const list = await slicesOf(api, 'web');
    return list.length === 1 && list[0]!.endpoints?.length === 3 ? list : undefined;
  });
  assert.equal(
    slice!.metadata.labels?.['endpointslice.kubernetes.io/managed-by'],
    'endpointslice-controller.k8s.io',
  );
  assert.equal(slice!.addressType, 'IPv4');
  assert.deepEqual(slice!.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
  assert.equal(slice!.metadata.ownerReferences?.[0]?.uid, web.metadata.uid);
  assert.deepEqual(slice!.endpoints!.find((e) => e.addresses[0] === ips.c)?.conditions, {
    ready: false,
    serving: false,
    terminating: false,
  });

  // Readiness change reaches the endpoints within a second.
  const changed = Date.now();
  await reportStatus(api, 'c', ips.c, true);
  await waitFor('pod c ready in endpoints', async () => {
    const s = (await getEndpoints(api, 'web')).subsets?.[0];
    return s?.addresses?.length === 3 && !s.notReadyAddresses;
  });
  const took = Date.now() - changed;
  t.diagnostic(`readiness reached Endpoints in ${took} ms`);
  assert.ok(took < 1000, `took ${took} ms`);

  // A terminating pod leaves ready addresses; its slice endpoint says terminating.
  await client.delete(PODS, 'default', 'a', { gracePeriodSeconds: 30 });
  await waitFor('terminating pod out of endpoints', async () => {
    const s = (await getEndpoints(api, 'web')).subsets?.[0];
    return s?.addresses?.length === 2 && !s.addresses.some((a) => a.ip === ips.a);
  });
  const terminating = await waitFor('terminating condition', async () => {
    const [s] = await slicesOf(api, 'web');
    const e = s?.endpoints?.find((x) => x.addresses[0] === ips.a);
    return e?.conditions.terminating ? e : undefined;
  });
  assert.deepEqual(terminating.conditions, { ready: false, serving: true, terminating: true });

  await checkKubectl(t, api, web);

  // Deleting the service removes its endpoints and slices and frees its IP.
  await client.delete(SERVICES, 'default', 'web');
  await waitFor('endpoints deleted', async () => {
    const err = await errorOf(getEndpoints(api, 'web'));
    return err.reason === 'NotFound';
  });
  await waitFor('slices deleted', async () => (await slicesOf(api, 'web')).length === 0);
  const again = await client.create<Service>(SERVICES, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web2', namespace: 'default' },
    spec: { clusterIP: web.spec.clusterIP, ports: [{ port: 80 }] },
  });
  assert.equal(again.spec.clusterIP, web.spec.clusterIP);
});

async function checkKubectl(t: TestContext, api: TestApiServer, web: Service): Promise<void> {
  const run = kubectl(api);
  try {
    await run('version', '--client');
  } catch {
    return t.diagnostic('kubectl is not installed; skipped');
  }
  const get = await run('get', 'svc,endpoints,endpointslices');
  assert.match(get, /NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE/);
  const ip = web.spec.clusterIP!.replace(/\./g, '\\.');
  assert.match(get, new RegExp(`service/web\\s+ClusterIP\\s+${ip}\\s+<none>\\s+80/TCP`));
  assert.match(get, /service\/kubernetes\s+ClusterIP\s+10\.43\.0\.1\s+<none>\s+443\/TCP/);
  assert.match(get, /NAME\s+ENDPOINTS\s+AGE/);
  assert.match(get, /endpoints\/web\s+10\.42\.0\.12:8080,10\.42\.0\.13:8080\s/);
  assert.match(get, /NAME\s+ADDRESSTYPE\s+PORTS\s+ENDPOINTS\s+AGE/);
  assert.match(get, /endpointslice.discovery.k8s.io\/web-\w+\s+IPv4\s+8080\s+10\.42\.0\.1[123]/);

  // kubectl apply of a changed manifest: ports merge by port, the node port is kept.
  const manifest = join(api.dir, 'applied.yaml');
  const applied = (target: number) =>
    writeFileSync(
      manifest,
      [
        'apiVersion: v1',
        'kind: Service',
        'metadata: {name: applied}',
        'spec:',
        '  type: NodePort',
        '  selector: {app: web}',
        `  ports: [{name: a, port: 80, targetPort: ${target}}, {name: b, port: 81}]`,
      ].join('\n'),
    );
  applied(8080);
  await run('apply', '-f', manifest);
  const first = await api.client.get<Service>(SERVICES, 'default', 'applied');
  applied(8081);
  assert.match(await run('apply', '-f', manifest), /service\/applied configured/);
  const second = await api.client.get<Service>(SERVICES, 'default', 'applied');
  assert.equal(second.spec.ports!.length, 2);
  assert.equal(second.spec.ports![0]!.targetPort, 8081);
  assert.deepEqual(
    second.spec.ports!.map((p) => p.nodePort),
    first.spec.ports!.map((p) => p.nodePort),
  );
  await run('delete', '-f', manifest);

  const wide = await run('get', 'svc', 'web', '-o', 'wide');
  assert.match(wide, /SELECTOR/);
  assert.match(wide, /app=web/);

  const describe = await run('describe', 'svc', 'web');
  t.diagnostic(describe);
  assert.match(describe, /^Name:\s+web$/m);
  assert.match(describe, /^Selector:\s+app=web$/m);
  assert.match(describe, /^Type:\s+ClusterIP$/m);
  assert.match(describe, new RegExp(`^IP:\\s+${ip}$`, 'm'));
  assert.match(describe, /^TargetPort:\s+http\/TCP$/m);
  assert.match(describe, /^Endpoints:\s+10\.42\.0\.12:8080,10\.42\.0\.13:8080$/m);
}

test('hand-written endpoints of a service without selector are mirrored to slices', async (t) => {
  const api = await setup(t);
  await api.client.create(SERVICES, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'db', namespace: 'default' },
    spec: { ports: [{ port: 5432 }] },
  });
  const ep = {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'db', namespace: 'default', labels: { team: 'data' } },
    subsets: [{ addresses: [{ ip: '192.168.7.10' }], ports: [{ port: 5432 }] }],
  };
  await api.client.create(ENDPOINTS, ep);
  const [slice] = await waitFor('mirrored slice', async () => {
    const list = await slicesOf(api, 'db');
    return list[0]?.endpoints?.length === 1 ? list : undefined;
  });
  const labels = slice!.metadata.labels ?? {};
  assert.equal(
    labels['endpointslice.kubernetes.io/managed-by'],
    'endpointslicemirroring-controller.k8s.io',
  );
  assert.equal(labels.team, 'data');
  assert.deepEqual(slice!.endpoints![0]!.addresses, ['192.168.7.10']);
  assert.deepEqual(slice!.ports, [{ name: '', port: 5432, protocol: 'TCP' }]);

  // The controller leaves hand-written Endpoints alone, and follows their changes.
  const current = await getEndpoints(api, 'db');
  current.subsets![0]!.addresses!.push({ ip: '192.168.7.11' });
  await api.client.update(ENDPOINTS, current);
  await waitFor('second address mirrored', async () => {
    const [s] = await slicesOf(api, 'db');
    return s?.endpoints?.length === 2;
  });
  assert.equal((await getEndpoints(api, 'db')).subsets![0]!.addresses!.length, 2);

  await api.client.delete(SERVICES, 'default', 'db');
  await waitFor('mirrored slice gone', async () => (await slicesOf(api, 'db')).length === 0);
});

test('NodePort services, type changes and dry-run', async (t) => {
  const api = await setup(t);
  const client = api.client;
  const nodePort = (name: string, port?: number) =>
    client.create<Service>(SERVICES, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'default' },
      spec: { type: 'NodePort', selector: { app: name }, ports: [{ port: 80, nodePort: port }] },
    });
  const np = await nodePort('np', 30080);
  assert.equal(np.spec.ports![0]!.nodePort, 30080);
  assert.equal(np.spec.externalTrafficPolicy, 'Cluster');
  const auto = await nodePort('auto');
  const chosen = auto.spec.ports![0]!.nodePort!;
  assert.ok(chosen >= 30000 && chosen <= 32767, String(chosen));

  const taken = await errorOf(nodePort('np2', 30080));
  assert.equal(taken.code, 422);
  assert.match(
    taken.message,
    /spec.ports\[0\].nodePort: Invalid value: 30080: provided port is already allocated/,
  );
  const outside = await errorOf(nodePort('np2', 8080));
  assert.match(
    outside.message,
    /provided port is not in the valid range\. The range of valid ports is 30000-32767/,
  );

  const immutable = await errorOf(
    client.patch(SERVICES, 'default', 'np', {
      spec: { clusterIP: '10.43.9.9', clusterIPs: ['10.43.9.9'] },
    }),
  );
  assert.match(immutable.message, /spec.clusterIP: Invalid value: "10.43.9.9": field is immutable/);

  // NodePort → ClusterIP gives the node port back; it can be taken again.
  const cluster = await client.patch<Service>(SERVICES, 'default', 'np', {
    spec: { type: 'ClusterIP' },
  });
  assert.equal(cluster.spec.ports![0]!.nodePort, undefined);
  assert.equal(cluster.spec.externalTrafficPolicy, undefined);
  const retaken = await nodePort('np2', 30080);
  assert.equal(retaken.spec.ports![0]!.nodePort, 30080);
  const back = await client.patch<Service>(SERVICES, 'default', 'np', {
    spec: { type: 'NodePort' },
  });
  assert.notEqual(back.spec.ports![0]!.nodePort, 30080);
  assert.ok(back.spec.ports![0]!.nodePort);

  // A dry-run create shows an IP and a node port but reserves neither.
  const body = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'dry' },
    spec: { type: 'NodePort', ports: [{ port: 80 }] },
  };
  const dry = await client.request<Service>('POST', resourcePath(SERVICES, 'default'), {
    body,
    query: { dryRun: 'All' },
  });
  assert.ok(dry.spec.clusterIP && dry.spec.ports![0]!.nodePort);
  await errorOf(client.get(SERVICES, 'default', 'dry'));
  const real = await client.create<Service>(SERVICES, {
    ...body,
    metadata: { name: 'real', namespace: 'default' },
    spec: { ...body.spec, clusterIP: dry.spec.clusterIP, ports: dry.spec.ports },
  });
  assert.equal(real.spec.clusterIP, dry.spec.clusterIP);

  const unsupported = await errorOf(
    client.create(SERVICES, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'lb', namespace: 'default' },
      spec: { type: 'LoadBalancer', ports: [{ port: 80 }] },
    }),
  );
  assert.match(unsupported.message, /spec.type: Unsupported value: "LoadBalancer"/);
});

test('two API servers on one store share the ranges and the kubernetes service', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-svc-'));
  const tls = await ensureServingCert(join(dir, 'tls'), ['127.0.0.1']);
  const store = SqliteStore.open(join(dir, 'store.db'));
  const token = randomBytes(16).toString('hex');
  const servers: ApiServer[] = [];
  const clients: KubeClient[] = [];
  const start = async () => {
    const server = new ApiServer({
      store,
      tokens: [token],
      port: 0,
      tls,
      serviceCIDR: '10.96.0.0/28',
    });
    const { port } = await server.start();
    servers.push(server);
    const client = new KubeClient({ server: `https://127.0.0.1:${port}`, token, caPem: tls.caPem });
    clients.push(client);
    return { client, port };
  };
  t.after(async () => {
    for (const c of clients) c.close();
    for (const s of servers) await s.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const a = await start();
  const b = await start();

  // 14 usable addresses, the first kept for `kubernetes`: 13 services get one, 3 do not.
  const results = await Promise.allSettled(
    Array.from({ length: 16 }, (_, i) =>
      (i % 2 ? a : b).client.create<Service>(SERVICES, {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `s${i}`, namespace: 'default' },
        spec: { ports: [{ port: 80 }] },
      }),
    ),
  );
  const ips = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.spec.clusterIP] : []));
  assert.equal(ips.length, 13);
  assert.equal(new Set(ips).size, 13);
  assert.ok(!ips.includes('10.96.0.1'));
  for (const r of results) {
    if (r.status === 'rejected')
      assert.match(String(r.reason), /failed to allocate a serviceIP: range is full/);
  }

  // Freed through one server, allocated through the other.
  const freed = results.findIndex((r) => r.status === 'fulfilled');
  await b.client.delete(SERVICES, 'default', `s${freed}`);
  const reused = await a.client.create<Service>(SERVICES, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'reused', namespace: 'default' },
    spec: { ports: [{ port: 80 }] },
  });
  assert.equal(reused.spec.clusterIP, ips[0]);

  // A third server starting later finds nothing to repair and points `kubernetes` at itself.
  const c = await start();
  const ep = await c.client.get<Endpoints>(ENDPOINTS, 'default', 'kubernetes');
  assert.equal(ep.subsets?.[0]?.ports?.[0]?.port, c.port);
  const svc = await c.client.get<Service>(SERVICES, 'default', 'kubernetes');
  assert.equal(svc.spec.clusterIP, '10.96.0.1');
  assert.equal(svc.spec.ports?.[0]?.targetPort, c.port);
});

test('endpoint slices split at the per-slice limit and shrink again', async (t) => {
  const api = await startTestApiServer();
  const informers = new InformerFactory(api.client);
  const controller = new EndpointsController(api.client, informers, { maxEndpointsPerSlice: 2 });
  controller.register();
  await informers.start();
  const running = controller.run();
  t.after(async () => {
    controller.stop();
    await running;
    informers.stop();
    await api.stop();
  });
  await api.client.create(SERVICES, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'default' },
    spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] },
  });
  const names = ['p0', 'p1', 'p2', 'p3', 'p4'];
  for (const [i, name] of names.entries()) {
    await api.client.create(PODS, { ...webPod(name, ''), status: undefined });
    await reportStatus(api, name, `10.42.0.${20 + i}`, true);
  }
  const count = (slices: EndpointSlice[]) => slices.map((s) => s.endpoints?.length ?? 0).sort();
  await waitFor('three slices', async () => {
    const slices = await slicesOf(api, 'web');
    return deepEqualJson(count(slices), [1, 2, 2]);
  });
  // Settled: no duplicate slices appear from a cache that lagged the controller's writes.
  await sleep(300);
  assert.deepEqual(count(await slicesOf(api, 'web')), [1, 2, 2]);

  for (const name of ['p0', 'p1', 'p2']) {
    await api.client.delete(PODS, 'default', name, { gracePeriodSeconds: 0 });
  }
  await waitFor('one slice of two', async () =>
    deepEqualJson(count(await slicesOf(api, 'web')), [2]),
  );
  const [slice] = await slicesOf(api, 'web');
  assert.deepEqual(
    slice!.endpoints!.map((e) => e.addresses[0]),
    ['10.42.0.23', '10.42.0.24'],
  );
});

function deepEqualJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
