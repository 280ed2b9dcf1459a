import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { byGroupResource } from '../src/api/resources.js';
import { startTestApiServer, type TestApiServer } from './helpers/apiserver.js';

/**
 * The typed `kubectl create` commands against a real API server. kubectl sends their
 * bodies in Kubernetes' protobuf encoding only; each command must create the object it
 * describes, read back with `kubectl get -o json`. Hostile protobuf bodies are refused with
 * a Status and leave the server serving.
 */

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

type Json = any;

describe('kubectl create (protobuf bodies)', () => {
  let api: TestApiServer;
  let kubeconfig: string;

  /** Asynchronously, since the API server under test runs in this very process. */
  function kubectl(...args: string[]): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      execFile(
        '/usr/bin/kubectl',
        ['--kubeconfig', kubeconfig, ...args],
        { encoding: 'utf8', timeout: 60_000 },
        (err, stdout, stderr) => {
          const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
          if (e && typeof e.code === 'string') return reject(e);
          resolve({ code: e ? Number(e.code ?? 1) : 0, stdout, stderr });
        },
      );
    });
  }

  async function ok(...args: string[]): Promise<string> {
    const r = await kubectl(...args);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  async function get(...args: string[]): Promise<Json> {
    return JSON.parse(await ok('get', ...args, '-o', 'json')) as Json;
  }

  /** POSTs raw bytes with the protobuf content type; resolves to the status and body. */
  function postRaw(path: string, body: Buffer): Promise<{ status: number; body: Json }> {
    const url = new URL(path, api.url);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'POST',
          ca: api.caPem,
          headers: {
            authorization: `Bearer ${api.token}`,
            'content-type': 'application/vnd.kubernetes.protobuf',
            accept: 'application/vnd.kubernetes.protobuf, application/json',
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  before(async () => {
    api = await startTestApiServer();
    kubeconfig = api.kubeconfig();
  });
  after(async () => api.stop());

  test('namespace, and objects created in it', async () => {
    await ok('create', 'namespace', 't1');
    assert.equal((await get('namespace', 't1')).status.phase, 'Active');
    await ok('-n', 't1', 'create', 'configmap', 'in-t1', '--from-literal=k=v');
    const cm = await get('-n', 't1', 'configmap', 'in-t1');
    assert.equal(cm.metadata.namespace, 't1');
    assert.deepEqual(cm.data, { k: 'v' });
  });

  test('deployment with replicas, port and command; expose', async () => {
    await ok(
      ...['create', 'deployment', 'd1', '--image=nginx:1', '--replicas=3', '--port=80'],
      ...['--', 'sleep', '10'],
    );
    const d = await get('deployment', 'd1');
    assert.equal(d.spec.replicas, 3);
    assert.deepEqual(d.spec.selector, { matchLabels: { app: 'd1' } });
    assert.deepEqual(d.spec.template.metadata.labels, { app: 'd1' });
    const c = d.spec.template.spec.containers[0];
    assert.equal(c.name, 'nginx');
    assert.equal(c.image, 'nginx:1');
    assert.deepEqual(c.command, ['sleep', '10']);
    assert.deepEqual(c.ports, [{ containerPort: 80, protocol: 'TCP' }]);

    await ok('create', 'deployment', 'd2', '--image=nginx:1', '--image=busybox:1');
    const two = (await get('deployment', 'd2')).spec.template.spec.containers;
    assert.deepEqual(
      two.map((x: Json) => [x.name, x.image]),
      [
        ['nginx', 'nginx:1'],
        ['busybox', 'busybox:1'],
      ],
    );

    await ok('expose', 'deployment', 'd1', '--port', '80');
    const svc = await get('service', 'd1');
    assert.deepEqual(svc.spec.selector, { app: 'd1' });
    assert.equal(svc.spec.ports[0].port, 80);
  });

  test('configmap from literals and a file', async () => {
    const file = join(api.dir, 'settings.conf');
    writeFileSync(file, 'line one\nline two\n');
    await ok('create', 'configmap', 'c1', '--from-literal=a=b', `--from-file=${file}`);
    const cm = await get('configmap', 'c1');
    assert.deepEqual(cm.data, { a: 'b', 'settings.conf': 'line one\nline two\n' });
  });

  test('secrets: generic and docker-registry', async () => {
    await ok('create', 'secret', 'generic', 's1', '--from-literal=a=b', '--from-literal=c=d e');
    const s = await get('secret', 's1');
    assert.equal(s.type, 'Opaque');
    assert.deepEqual(s.data, { a: 'Yg==', c: Buffer.from('d e').toString('base64') });

    await ok(
      ...['create', 'secret', 'docker-registry', 'r1', '--docker-server=reg.example'],
      ...['--docker-username=u', '--docker-password=p'],
    );
    const r = await get('secret', 'r1');
    assert.equal(r.type, 'kubernetes.io/dockerconfigjson');
    const config = JSON.parse(Buffer.from(r.data['.dockerconfigjson'], 'base64').toString());
    assert.equal(config.auths['reg.example'].username, 'u');
    assert.equal(config.auths['reg.example'].password, 'p');
  });

  test('services: clusterip, nodeport, headless', async () => {
    await ok('create', 'service', 'clusterip', 'svc1', '--tcp=80:8080');
    const a = await get('service', 'svc1');
    assert.equal(a.spec.type, 'ClusterIP');
    assert.match(a.spec.clusterIP, /^\d+\.\d+\.\d+\.\d+$/);
    assert.deepEqual(a.spec.selector, { app: 'svc1' });
    assert.equal(a.spec.ports[0].port, 80);
    assert.equal(a.spec.ports[0].targetPort, 8080);
    assert.equal(a.spec.ports[0].name, '80-8080');

    await ok('create', 'service', 'nodeport', 'np1', '--tcp=80:8080');
    const b = await get('service', 'np1');
    assert.equal(b.spec.type, 'NodePort');
    assert.ok(b.spec.ports[0].nodePort >= 30000 && b.spec.ports[0].nodePort <= 32767);

    await ok('create', 'service', 'clusterip', 'hl', '--clusterip=None');
    assert.equal((await get('service', 'hl')).spec.clusterIP, 'None');
  });

  test('job, cronjob, and a job from the cronjob', async () => {
    await ok('create', 'job', 'j1', '--image=busybox', '--', 'echo', 'hi');
    const j = await get('job', 'j1');
    assert.deepEqual(j.spec.template.spec.containers[0].command, ['echo', 'hi']);
    assert.equal(j.spec.template.spec.restartPolicy, 'Never');

    await ok('create', 'cronjob', 'cj1', '--image=busybox', '--schedule=*/5 * * * *');
    const cj = await get('cronjob', 'cj1');
    assert.equal(cj.spec.schedule, '*/5 * * * *');
    assert.equal(cj.spec.jobTemplate.spec.template.spec.restartPolicy, 'OnFailure');

    await ok('create', 'job', '--from=cronjob/cj1', 'j2');
    const j2 = await get('job', 'j2');
    assert.equal(j2.metadata.annotations['cronjob.kubernetes.io/instantiate'], 'manual');
    const owner = j2.metadata.ownerReferences[0];
    assert.deepEqual([owner.kind, owner.name, owner.uid], ['CronJob', 'cj1', cj.metadata.uid]);
    assert.equal(j2.spec.template.spec.containers[0].image, 'busybox');
  });

  test('priorityclass', async () => {
    await ok('create', 'priorityclass', 'pc1', '--value=100', '--description=for tests');
    const pc = await get('priorityclass', 'pc1');
    assert.equal(pc.value, 100);
    assert.equal(pc.description, 'for tests');
  });

  test('kubectl debug: a pod copy and a node debugging pod (also sent as protobuf)', async () => {
    await ok('run', 'p1', '--image=busybox', '--', 'sleep', '1000');
    await ok(
      ...['debug', 'p1', '--copy-to=p1-copy', '--image=busybox', '--attach=false'],
      ...['--profile=general', '--container=dbg', '--', 'sleep', '5'],
    );
    const copy = await get('pod', 'p1-copy');
    assert.deepEqual(
      copy.spec.containers.map((c: Json) => c.name),
      ['p1', 'dbg'],
    );

    await api.client.create(byGroupResource.get('/nodes')!, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'n1' },
    });
    const r = await kubectl(
      ...['debug', 'node/n1', '--image=busybox', '--attach=false', '--profile=sysadmin'],
    );
    assert.equal(r.code, 0, r.stderr);
    const name = /debugging pod (\S+)/.exec(r.stdout + r.stderr)?.[1];
    assert.ok(name, r.stdout + r.stderr);
    const pod = await get('pod', name);
    assert.equal(pod.spec.nodeName, 'n1');
    assert.equal(pod.spec.hostPID, true);
    assert.deepEqual(pod.spec.tolerations, [{ operator: 'Exists' }]);
    assert.deepEqual(pod.spec.volumes, [{ name: 'host-root', hostPath: { path: '/' } }]);
    assert.deepEqual(pod.spec.containers[0].securityContext, { privileged: true });
  });

  test('kubectl debug with an ephemeral container is told they are not served', async () => {
    // kubectl reads the 404's (empty) details to tell a missing subresource from a missing
    // pod; without them it crashed with a nil pointer.
    await ok('run', 'p-eph', '--image=busybox', '--', 'sleep', '1000');
    const r = await kubectl(
      ...['debug', 'p-eph', '--image=busybox', '--attach=false', '--profile=general'],
      ...['--', 'true'],
    );
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stderr, /panic/);
    assert.match(r.stderr, /ephemeral containers are disabled for this cluster/);
  });

  test("kubectl drain deletes the node's pods (DeleteOptions sent as protobuf)", async () => {
    const nodes = byGroupResource.get('/nodes')!;
    const pods = byGroupResource.get('/pods')!;
    await api.client.create(nodes, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'drained' },
    });
    for (const name of ['d1', 'd2']) {
      await api.client.create(pods, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'default' },
        spec: { nodeName: 'drained', containers: [{ name: 'c', image: 'busybox' }] },
      });
    }
    const r = await kubectl('drain', 'drained', '--force', '--grace-period=0', '--timeout=30s');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /node\/drained drained/);
    const left = await get('pods', '--field-selector=spec.nodeName=drained');
    assert.deepEqual(left.items, []);
    assert.equal((await get('node', 'drained')).spec.unschedulable, true);
  });

  test('hostile protobuf bodies are refused with a Status; the server keeps serving', async () => {
    const magic = [0x6b, 0x38, 0x73, 0x00];
    const typeMeta = [0x0a, 0x0f, 0x0a, 0x02, ...Buffer.from('v1'), 0x12, 0x09];
    const ns = [...typeMeta, ...Buffer.from('Namespace')];
    const cases: { name: string; body: number[]; status: number; message: RegExp }[] = [
      {
        name: 'length past the end',
        body: [...magic, ...ns, 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a],
        status: 400,
        message: /runs past the end/,
      },
      {
        name: 'unknown non-zero field',
        // raw = ObjectMeta{name: "x"}, then field 99 = 1
        body: [...magic, ...ns, 0x12, 0x08, 0x0a, 0x03, 0x0a, 0x01, 0x78, 0x98, 0x06, 0x01],
        status: 415,
        message: /field 99 of message Namespace.*send the object as JSON/,
      },
      {
        name: 'eleven-byte varint',
        body: [...magic, ...ns, 0x12, 0x0c, 0x38, ...Array<number>(10).fill(0xff), 0x01],
        status: 400,
        message: /longer than 10 bytes/,
      },
    ];
    for (const c of cases) {
      const r = await postRaw('/api/v1/namespaces', Buffer.from(c.body));
      assert.equal(r.status, c.status, c.name);
      assert.equal(r.body.kind, 'Status', c.name);
      assert.match(r.body.message, c.message, c.name);
    }
    assert.match(await ok('get', 'namespaces'), /t1/);
  });
});
