import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { mountsUnder, TestCluster, waitFor } from './helpers/cluster.js';

/**
 * ConfigMaps and Secrets end to end: made and read with the real kubectl, turned into a
 * container's environment and mounted as files, a ConfigMap change seen by the running
 * container, downwardAPI and projected volumes (a label change seen by the container, a
 * serviceAccountToken source refused), missing references and hostPath volumes shown as
 * CreateContainerConfigError, and the Secret's value kept out of the flyces up log.
 */

const run = promisify(execFile);
const IMAGE = 'localhost/flyces-web:1';
const SECRET_VALUE = `pw-${randomBytes(8).toString('hex')}`;

describe('ConfigMaps and Secrets in env and volumes', { timeout: 300_000 }, () => {
  const cluster = new TestCluster({
    podCidr: '10.42.210.0/24',
    bridge: 'flycescfg0',
    port: 16843,
    agentPort: 16850,
  });

  function apply(name: string, obj: unknown): Promise<string> {
    const file = join(cluster.dataDir, `${name}.json`);
    writeFileSync(file, JSON.stringify(obj));
    return cluster.kubectl('apply', '-f', file);
  }

  function create(name: string, obj: unknown): Promise<string> {
    const file = join(cluster.dataDir, `${name}.json`);
    writeFileSync(file, JSON.stringify(obj));
    return cluster.kubectl('create', '-f', file);
  }

  function pod(name: string, container: object, volumes: object[] = []): object {
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels: { test: 'config' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        volumes,
        containers: [{ name: 'c', image: IMAGE, imagePullPolicy: 'Never', ...container }],
      },
    };
  }

  async function waiting(name: string): Promise<{ reason?: string; message?: string }> {
    const p = JSON.parse(await cluster.kubectl('get', 'pod', name, '-o', 'json'));
    return p.status?.containerStatuses?.[0]?.state?.waiting ?? {};
  }

  before(async () => {
    await cluster.start();
    await cluster.importWebImage();
  });

  after(async () => {
    await cluster.kubectlResult('delete', 'pods', '-l', 'test=config', '--wait=false');
    await cluster.destroy();
    await run('ip', ['link', 'del', 'flycescfg0']).catch(() => undefined);
  });

  test('kubectl creates and lists ConfigMaps and Secrets; data is base64', async () => {
    // kubectl's `create configmap` and `create secret` send protobuf, which the API server
    // does not read yet; the same objects go through `create -f` as JSON.
    await create('app-config', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'app-config' },
      data: { GREETING: 'hello', 'app.conf': 'v1', '1st': 'skipped' },
    });
    await create('app-secret', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'app-secret' },
      data: { PASSWORD: Buffer.from(SECRET_VALUE).toString('base64') },
    });
    const cms = await cluster.kubectl('get', 'cm', 'app-config');
    assert.match(cms, /^NAME\s+DATA\s+AGE\n/);
    assert.match(cms, /app-config\s+3\s+\d+s/);
    const secrets = await cluster.kubectl('get', 'secrets');
    assert.match(secrets, /^NAME\s+TYPE\s+DATA\s+AGE\n/);
    assert.match(secrets, /app-secret\s+Opaque\s+1\s+\d+s/);
    const yaml = await cluster.kubectl('get', 'secret', 'app-secret', '-o', 'yaml');
    assert.match(yaml, new RegExp(`PASSWORD: ${Buffer.from(SECRET_VALUE).toString('base64')}`));
    assert.doesNotMatch(yaml, new RegExp(SECRET_VALUE));
  });

  test('stringData is folded into data; immutable Secrets refuse changes', async () => {
    await create('frozen', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'frozen' },
      immutable: true,
      stringData: { token: 'abc' },
    });
    const s = JSON.parse(await cluster.kubectl('get', 'secret', 'frozen', '-o', 'json'));
    assert.deepEqual(s.data, { token: Buffer.from('abc').toString('base64') });
    assert.equal(s.stringData, undefined);
    const res = await cluster.kubectlResult(
      'patch',
      'secret',
      'frozen',
      '--type=merge',
      '-p',
      '{"data":{"token":"eHl6"}}',
    );
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /field is immutable when `immutable` is set/);
    assert.doesNotMatch(res.stderr, /eHl6|xyz/);
  });

  test('files of kind List and of several documents: apply, get, create, delete', async () => {
    // What `kubectl get -o yaml` prints for several objects; kubectl expands it itself, but
    // checks it first against /openapi/v2, which it asks for in protobuf.
    const cm = (name: string, data: Record<string, string>) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, labels: { test: 'list' } },
      data,
    });
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'list-secret', labels: { test: 'list' } },
      data: { user: Buffer.from('list').toString('base64') },
    };
    const listFile = join(cluster.dataDir, 'list.yaml');
    const list = (v: string) => ({
      apiVersion: 'v1',
      kind: 'List',
      items: [cm('list-a', { v }), secret],
    });
    const names = async () =>
      (await cluster.kubectl('get', 'cm,secrets', '-l', 'test=list', '-o', 'name')).trim();

    writeFileSync(listFile, YAML.stringify(list('1')));
    const applied = await cluster.kubectl('apply', '-f', listFile);
    assert.match(applied, /^configmap\/list-a created$/m);
    assert.match(applied, /^secret\/list-secret created$/m);
    assert.equal(await names(), 'configmap/list-a\nsecret/list-secret');
    writeFileSync(listFile, YAML.stringify(list('2')));
    const again = await cluster.kubectl('apply', '-f', listFile);
    assert.match(again, /^configmap\/list-a configured$/m);
    assert.match(again, /^secret\/list-secret unchanged$/m);
    const a = JSON.parse(await cluster.kubectl('get', 'cm', 'list-a', '-o', 'json'));
    assert.deepEqual(a.data, { v: '2' });
    assert.match(await cluster.kubectl('get', '-f', listFile), /list-a[\s\S]*list-secret/);
    assert.match(await cluster.kubectl('delete', '-f', listFile), /"list-secret" deleted/);
    assert.equal(await names(), '');
    await cluster.kubectl('create', '-f', listFile);
    assert.equal(await names(), 'configmap/list-a\nsecret/list-secret');
    await cluster.kubectl('delete', '-f', listFile);

    // Several documents, one of them a List.
    const multiFile = join(cluster.dataDir, 'multi.yaml');
    const docs = [
      cm('multi-a', {}),
      { apiVersion: 'v1', kind: 'List', items: [cm('multi-b', {})] },
    ];
    writeFileSync(multiFile, docs.map((d) => YAML.stringify(d)).join('---\n'));
    await cluster.kubectl('apply', '-f', multiFile);
    assert.equal(await names(), 'configmap/multi-a\nconfigmap/multi-b');
    await cluster.kubectl('delete', '-f', multiFile);
    assert.equal(await names(), '');

    // A misspelt field in an item is refused with its name.
    writeFileSync(
      listFile,
      YAML.stringify({ apiVersion: 'v1', kind: 'List', items: [{ ...cm('list-b', {}), dta: {} }] }),
    );
    const bad = await cluster.kubectlResult('apply', '-f', listFile);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unknown field "dta"/);
    assert.equal(await names(), '');
  });

  test('a file with kinds this cluster does not serve: the rest is applied', async () => {
    // An Ingress (a group not served) and a ResourceQuota (a core kind not served): as
    // against Kubernetes without those CRDs, each is named as not found, the rest applied.
    const file = join(cluster.dataDir, 'mixed.yaml');
    const cm = (name: string) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, labels: { test: 'mixed' } },
      data: { a: '1' },
    });
    const ingress = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'mixed-ing' },
      spec: { defaultBackend: { service: { name: 'web', port: { number: 80 } } } },
    };
    const quota = {
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'mixed-quota' },
      spec: { hard: { pods: '10' } },
    };
    const docs = [cm('mixed-a'), quota, ingress, cm('mixed-b')];
    writeFileSync(file, docs.map((d) => YAML.stringify(d)).join('---\n'));
    const res = await cluster.kubectlResult('apply', '-f', file);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /no matches for kind "ResourceQuota" in version "v1"/);
    assert.match(res.stderr, /no matches for kind "Ingress" in version "networking\.k8s\.io\/v1"/);
    assert.doesNotMatch(res.stderr, /failed to list CRDs/);
    const names = await cluster.kubectl('get', 'cm', '-l', 'test=mixed', '-o', 'name');
    assert.equal(names.trim(), 'configmap/mixed-a\nconfigmap/mixed-b');
    await cluster.kubectl('delete', 'cm', '-l', 'test=mixed');
  });

  test('a pod gets env from both and mounts both; a ConfigMap change reaches it', async () => {
    const script =
      'echo "GREETING=$GREETING MSG=$MSG POD=$POD_NAME"; echo "PASSWORD=$PASSWORD";' +
      ' echo "FROM_CM=$FROM_CM"; echo "file-secret=$(cat /etc/secret/PASSWORD)";' +
      ' while true; do echo "conf=$(cat /etc/config/app.conf)"; sleep 1; done';
    await apply(
      'consumer',
      pod(
        'consumer',
        {
          command: ['sh', '-c', script],
          envFrom: [{ configMapRef: { name: 'app-config' } }],
          env: [
            {
              name: 'GREETING',
              valueFrom: { configMapKeyRef: { name: 'app-config', key: 'GREETING' } },
            },
            {
              name: 'PASSWORD',
              valueFrom: { secretKeyRef: { name: 'app-secret', key: 'PASSWORD' } },
            },
            { name: 'MSG', value: '$(GREETING) world' },
            { name: 'FROM_CM', value: '$(GREETING)-$$(GREETING)' },
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          ],
          volumeMounts: [
            { name: 'config', mountPath: '/etc/config' },
            { name: 'secret', mountPath: '/etc/secret' },
          ],
        },
        [
          { name: 'config', configMap: { name: 'app-config' } },
          { name: 'secret', secret: { secretName: 'app-secret' } },
        ],
      ),
    );
    await waitFor('consumer Running', 60_000, async () =>
      /consumer\s+1\/1\s+Running/.test(await cluster.kubectl('get', 'pod', 'consumer')),
    );
    let logs = '';
    await waitFor('the file in the log', 20_000, async () => {
      logs = await cluster.kubectl('logs', 'consumer');
      return /conf=v1/.test(logs);
    });
    assert.match(logs, /GREETING=hello MSG=hello world POD=consumer/);
    assert.match(logs, new RegExp(`PASSWORD=${SECRET_VALUE}`));
    assert.match(logs, /FROM_CM=hello-\$\(GREETING\)/);
    assert.match(logs, new RegExp(`file-secret=${SECRET_VALUE}`));
    const events = await cluster.kubectl(
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=consumer',
    );
    assert.match(events, /InvalidEnvironmentVariableNames.*Keys \[1st\]/);

    await cluster.kubectl(
      'patch',
      'configmap',
      'app-config',
      '--type=merge',
      '-p',
      '{"data":{"app.conf":"v2"}}',
    );
    await waitFor('the changed file in the log', 30_000, async () =>
      /conf=v2/.test(await cluster.kubectl('logs', 'consumer', '--tail=2')),
    );
  });

  test("a container gets the Service variables of its namespace's Services", async () => {
    await apply('env-svc', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'env-svc' },
      spec: { selector: { app: 'none' }, ports: [{ name: 'http', port: 8080 }] },
    });
    const svc = JSON.parse(await cluster.kubectl('get', 'svc', 'env-svc', '-o', 'json'));
    const api = JSON.parse(await cluster.kubectl('get', 'svc', 'kubernetes', '-o', 'json'));
    await apply(
      'svc-env',
      pod('svc-env', {
        command: ['sh', '-c', 'env | sort; sleep 3600'],
        env: [{ name: 'URL', value: 'http://$(ENV_SVC_SERVICE_HOST):$(ENV_SVC_SERVICE_PORT)/' }],
      }),
    );
    let logs = '';
    await waitFor('the environment in the log', 60_000, async () => {
      logs = await cluster.kubectl('logs', 'svc-env').catch(() => '');
      return /^URL=/m.test(logs);
    });
    const ip = svc.spec.clusterIP as string;
    assert.match(logs, new RegExp(`^ENV_SVC_SERVICE_HOST=${ip}$`, 'm'));
    assert.match(logs, /^ENV_SVC_SERVICE_PORT=8080$/m);
    assert.match(logs, /^ENV_SVC_SERVICE_PORT_HTTP=8080$/m);
    assert.match(logs, new RegExp(`^ENV_SVC_PORT_8080_TCP=tcp://${ip}:8080$`, 'm'));
    assert.match(logs, new RegExp(`^URL=http://${ip}:8080/$`, 'm'));
    assert.match(logs, new RegExp(`^KUBERNETES_SERVICE_HOST=${api.spec.clusterIP}$`, 'm'));
    assert.match(logs, /^KUBERNETES_SERVICE_PORT=443$/m);
    await cluster.kubectl('delete', 'pod/svc-env', 'svc/env-svc', '--wait=false');
  });

  test('downwardAPI and projected volumes show the pod; a label change reaches them', async () => {
    const script =
      'cd /etc; for f in info/name info/cpu info/mem info/annotations all/greeting' +
      ' all/creds/password; do echo "$f=$(cat $f)"; done;' +
      ' echo "mode=$(stat -L -c %a all/creds/password)";' +
      ' while true; do echo "labels=$(cat info/labels | tr "\\n" " ") tier=$(cat all/tier)";' +
      ' sleep 1; done';
    const spec = pod(
      'podinfo',
      {
        command: ['sh', '-c', script],
        resources: { limits: { cpu: '250m', memory: '32Mi' } },
        volumeMounts: [
          { name: 'info', mountPath: '/etc/info' },
          { name: 'all', mountPath: '/etc/all' },
        ],
      },
      [
        {
          name: 'info',
          downwardAPI: {
            items: [
              { path: 'name', fieldRef: { fieldPath: 'metadata.name' } },
              { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
              { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
              {
                path: 'cpu',
                resourceFieldRef: { containerName: 'c', resource: 'limits.cpu', divisor: '1m' },
              },
              {
                path: 'mem',
                resourceFieldRef: { containerName: 'c', resource: 'limits.memory', divisor: '1Mi' },
              },
            ],
          },
        },
        {
          name: 'all',
          projected: {
            defaultMode: 0o440,
            sources: [
              { configMap: { name: 'app-config', items: [{ key: 'GREETING', path: 'greeting' }] } },
              {
                secret: {
                  name: 'app-secret',
                  items: [{ key: 'PASSWORD', path: 'creds/password' }],
                },
              },
              {
                downwardAPI: {
                  items: [{ path: 'tier', fieldRef: { fieldPath: "metadata.labels['tier']" } }],
                },
              },
            ],
          },
        },
      ],
    ) as { metadata: { labels: Record<string, string>; annotations?: object } };
    spec.metadata.labels.tier = 'one';
    spec.metadata.annotations = { note: 'say "hi"' };
    await apply('podinfo', spec);
    let logs = '';
    await waitFor('the files in the log', 60_000, async () => {
      logs = await cluster.kubectl('logs', 'podinfo').catch(() => '');
      return /^labels=/m.test(logs);
    });
    assert.match(logs, /^info\/name=podinfo$/m);
    assert.match(logs, /^info\/cpu=250$/m);
    assert.match(logs, /^info\/mem=32$/m);
    // kubectl apply adds its own annotation; ours is there in kubelet's format.
    assert.match(logs, /^note="say \\"hi\\""$/m);
    assert.match(logs, /^all\/greeting=hello$/m);
    assert.match(logs, new RegExp(`^all/creds/password=${SECRET_VALUE}$`, 'm'));
    assert.match(logs, /^mode=440$/m);
    assert.match(logs, /^labels=test="config" tier="one" tier=one$/m);
    const tmpfs = await mountsUnder(join(cluster.dataDir, 'pods'));
    assert.ok(
      tmpfs.some((m) => m.endsWith('/volumes/all')),
      'the projection is on tmpfs',
    );
    assert.ok(!tmpfs.some((m) => m.endsWith('/volumes/info')));

    await cluster.kubectl('label', 'pod', 'podinfo', 'tier=two', '--overwrite');
    await waitFor('the new label in both volumes', 15_000, async () =>
      /^labels=test="config" tier="two" tier=two$/m.test(
        await cluster.kubectl('logs', 'podinfo', '--tail=2'),
      ),
    );
  });

  test('a projected serviceAccountToken is refused, naming the source', async () => {
    await apply(
      'sa-token',
      pod(
        'sa-token',
        { command: ['sh', '-c', 'sleep 3600'], volumeMounts: [{ name: 't', mountPath: '/t' }] },
        [{ name: 't', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }],
      ),
    );
    const message =
      'volume "t": sources[0]: serviceAccountToken is not supported: this cluster has no ' +
      'ServiceAccounts to issue tokens for';
    await waitFor('CreateContainerConfigError', 30_000, async () => {
      const w = await waiting('sa-token');
      return w.reason === 'CreateContainerConfigError' && w.message === message;
    });
    const events = await cluster.kubectl(
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=sa-token',
    );
    assert.ok(events.includes(`Error: ${message}`), events);
  });

  test('a pod naming a missing ConfigMap waits with CreateContainerConfigError', async () => {
    await apply(
      'missing-cm',
      pod('missing-cm', {
        command: ['sh', '-c', 'sleep 3600'],
        env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'nowhere', key: 'k' } } }],
      }),
    );
    await waitFor('CreateContainerConfigError', 30_000, async () =>
      /missing-cm\s+0\/1\s+CreateContainerConfigError/.test(
        await cluster.kubectl('get', 'pod', 'missing-cm'),
      ),
    );
    assert.equal((await waiting('missing-cm')).message, 'configmap "nowhere" not found');
    await apply('nowhere', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'nowhere' },
      data: { k: 'found' },
    });
    await waitFor('missing-cm Running once the ConfigMap exists', 30_000, async () =>
      /missing-cm\s+1\/1\s+Running/.test(await cluster.kubectl('get', 'pod', 'missing-cm')),
    );
  });

  test('hostPath volumes are refused on this node', async () => {
    await apply(
      'host',
      pod(
        'host',
        { command: ['sh', '-c', 'sleep 3600'], volumeMounts: [{ name: 'h', mountPath: '/h' }] },
        [{ name: 'h', hostPath: { path: '/etc' } }],
      ),
    );
    await waitFor('hostPath refused', 30_000, async () => {
      const w = await waiting('host');
      return (
        w.reason === 'CreateContainerConfigError' &&
        w.message === 'volume "h": hostPath volumes are not allowed on this node'
      );
    });
  });

  test('pod volume mistakes are refused by the API with the field named', async () => {
    const bad = pod(
      'bad-volumes',
      { volumeMounts: [{ name: 'nope', mountPath: 'rel', subPath: '../x' }] },
      [{ name: 'a', emptyDir: {}, configMap: { name: 'x' } }],
    );
    const file = join(cluster.dataDir, 'bad-volumes.json');
    writeFileSync(file, JSON.stringify(bad));
    const res = await cluster.kubectlResult('apply', '-f', file);
    assert.notEqual(res.code, 0);
    assert.match(
      res.stderr,
      /spec\.volumes\[0\]\.\w+: Forbidden: may not specify more than 1 volume type/,
    );
    assert.match(res.stderr, /spec\.containers\[0\]\.volumeMounts\[0\]\.name: Not found: "nope"/);
    assert.match(res.stderr, /volumeMounts\[0\]\.mountPath: Invalid value: "rel"/);
    assert.match(res.stderr, /volumeMounts\[0\]\.subPath: Invalid value: "\.\.\/x"/);
  });

  test('deleting the pods unmounts and removes their volumes', async () => {
    await cluster.kubectl('delete', 'pods', '-l', 'test=config');
    await waitFor(
      'pods gone',
      60_000,
      async () => (await cluster.kubectl('get', 'pods', '-o', 'name')).trim() === '',
    );
    await waitFor(
      'volumes gone',
      10_000,
      async () => (await mountsUnder(join(cluster.dataDir, 'pods'))).length === 0,
    );
    const pods = await run('ls', [join(cluster.dataDir, 'pods')]);
    assert.equal(pods.stdout.trim(), '');
  });

  test('the secret value never reaches the flyces up log', () => {
    const log = readFileSync(cluster.logFile, 'utf8');
    assert.ok(log.length > 0);
    assert.ok(!log.includes(SECRET_VALUE));
    assert.ok(!log.includes(Buffer.from(SECRET_VALUE).toString('base64')));
  });
});
