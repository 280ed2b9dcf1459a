import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { byGroupResource } from '../src/api/resources.js';
import type { NodeObject, Pod } from '../src/api/types.js';
import { isReason, KubeClient } from '../src/client/rest.js';
import { loadKubeconfig } from '../src/cli/kubeconfig.js';
import { FLYCES, waitFor } from './helpers/cluster.js';

/**
 * Machines joining a cluster, as processes: `flyces server` on loopback with a temp data
 * dir, `flyces agent --server --token --no-runtime` joining it (no containers), and two
 * servers sharing an etcd of the test's own. Every process is stopped by its pid and
 * every temp dir removed in `after`, also when a test failed.
 */

const run = promisify(execFile);
const NODES = byGroupResource.get('/nodes')!;
const PODS = byGroupResource.get('/pods')!;
const LEASES = byGroupResource.get('coordination.k8s.io/leases')!;
/** Node certificates live 12 s here, so a renewal comes 8 s after joining. */
const CERT_SECONDS = 12;

const root = mkdtempSync(join(tmpdir(), 'flyces-join-'));
const procs = new Set<ChildProcess>();

interface Proc {
  proc: ChildProcess;
  log: string;
  exited: Promise<number | null>;
}

function start(name: string, args: string[]): Proc {
  const log = join(root, `${name}.log`);
  const out = createWriteStream(log, { flags: 'a' });
  const proc = spawn(process.execPath, [FLYCES, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Both into one file, which ends once both have: the first to end must not close it.
  proc.stdout!.pipe(out, { end: false });
  proc.stderr!.pipe(out, { end: false });
  const written = new Promise<void>((resolve) => proc.once('close', () => out.end(resolve)));
  // Exited and its output in the file: a test reads the log as soon as this resolves (it
  // found it empty now and then when this came at the exit, before the pipes' last data).
  const exited = track(proc).then(async (code) => {
    await written;
    return code;
  });
  return { proc, log, exited };
}

/** Remembers a process until it exits, so `after` stops whatever still runs. */
function track(proc: ChildProcess): Promise<number | null> {
  procs.add(proc);
  return new Promise((resolve) =>
    proc.once('exit', (code) => {
      procs.delete(proc);
      resolve(code);
    }),
  );
}

async function stop(p: Proc): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  p.proc.kill('SIGTERM');
  const timer = setTimeout(() => p.proc.kill('SIGKILL'), 5_000);
  await p.exited;
  clearTimeout(timer);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

interface Server {
  p: Proc;
  dir: string;
  url: string;
  admin: KubeClient;
  joinToken: string;
}

async function startServer(name: string, extra: string[] = []): Promise<Server> {
  const dir = join(root, name);
  const port = await freePort();
  const p = start(name, [
    'server',
    ...['--data-dir', dir, '--port', String(port), '--bind-address', '127.0.0.1'],
    ...['--advertise-address', '127.0.0.1', '--node-cert-lifetime', String(CERT_SECONDS)],
    ...extra,
  ]);
  const kubeconfig = join(dir, 'kubeconfig');
  await waitFor(`${name} to write its kubeconfig`, 30_000, async () => {
    if (p.proc.exitCode !== null) throw new Error(`flyces up exited: ${readFileSync(p.log)}`);
    return existsSync(kubeconfig) && existsSync(join(dir, 'join-token'));
  });
  const admin = new KubeClient({ ...loadKubeconfig(kubeconfig), userAgent: 'join-test' });
  return {
    p,
    dir,
    url: `https://127.0.0.1:${port}`,
    admin,
    joinToken: readFileSync(join(dir, 'join-token'), 'utf8').trim(),
  };
}

function startAgent(server: Server, node: string, token?: string, dir = `agent-${node}`): Proc {
  return start(dir, [
    'agent',
    ...['--server', server.url, '--node-name', node, '--data-dir', join(root, dir)],
    ...['--node-ip', '127.0.0.1', '--agent-port', '0', '--no-runtime'],
    ...(token ? ['--token', token] : []),
  ]);
}

/** The node's Lease renewTime as ms, or 0. */
async function leaseTime(client: KubeClient, node: string): Promise<number> {
  try {
    const lease = await client.get(LEASES, 'kube-node-lease', node);
    return Date.parse(lease.spec?.renewTime ?? '') || 0;
  } catch (err) {
    if (isReason(err, 'NotFound')) return 0;
    throw err;
  }
}

/** A client authenticated only by the certificate the agent keeps in its data dir. */
function nodeClient(server: Server, node: string): KubeClient {
  const pki = join(root, `agent-${node}`, 'pki');
  return new KubeClient({
    server: server.url,
    token: '',
    caPem: readFileSync(join(pki, 'ca.crt'), 'utf8'),
    clientCert: {
      certPem: readFileSync(join(pki, 'client.crt'), 'utf8'),
      keyPem: readFileSync(join(pki, 'client.key'), 'utf8'),
    },
  });
}

const clients: KubeClient[] = [];

after(async () => {
  for (const c of clients) c.close();
  for (const proc of [...procs]) {
    if (proc.exitCode !== null || proc.signalCode !== null) continue;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(root, { recursive: true, force: true });
});

describe('joining a server', { timeout: 120_000 }, () => {
  let server: Server;
  let agent: Proc;

  before(async () => {
    server = await startServer('server');
    clients.push(server.admin);
  });

  test('a wrong join secret is refused with a clear error', async () => {
    const [prefix, hash] = server.joinToken.split('::');
    const p = startAgent(server, 'wrong', `${prefix}::${hash}::not-the-secret`);
    assert.equal(await p.exited, 1);
    assert.match(readFileSync(p.log, 'utf8'), /join token was not accepted/);
    assert.equal(existsSync(join(root, 'agent-wrong', 'pki', 'client.crt')), false);
  });

  test('a CA hash that is not the server CA is refused before the secret is sent', async () => {
    const [prefix, , secret] = server.joinToken.split('::');
    const p = startAgent(server, 'mitm', `${prefix}::${'0'.repeat(64)}::${secret}`);
    assert.equal(await p.exited, 1);
    assert.match(readFileSync(p.log, 'utf8'), /is not the one the join token names/);
  });

  test('a joined agent registers, with credentials of its own kept 0600', async () => {
    agent = startAgent(server, 'a', server.joinToken);
    await waitFor('node a to be Ready', 30_000, async () => {
      if (agent.proc.exitCode !== null) throw new Error(readFileSync(agent.log, 'utf8'));
      const node = await server.admin.get<NodeObject>(NODES, undefined, 'a');
      return !!node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    });
    const pki = join(root, 'agent-a', 'pki');
    for (const file of ['client.key', 'client.crt', 'serving.key', 'ca.crt'])
      assert.equal(statSync(join(pki, file)).mode & 0o777, 0o600, file);
    const cert = new X509Certificate(readFileSync(join(pki, 'client.crt')));
    assert.match(cert.subject, /CN=system:node:a/);
    assert.match(cert.subject, /O=system:nodes/);
    const node = await server.admin.get<NodeObject>(NODES, undefined, 'a');
    assert.match(node.spec?.podCIDR ?? '', /^10\.42\.\d+\.0\/24$/, 'pod range from node-ipam');
    // The serving certificate is not one the cluster CA vouches for: a node cannot pose
    // as an API server with it.
    const clusterCa = new X509Certificate(readFileSync(join(pki, 'ca.crt')));
    const serving = new X509Certificate(readFileSync(join(pki, 'serving.crt')));
    assert.equal(serving.verify(clusterCa.publicKey), false);
    assert.equal(cert.verify(clusterCa.publicKey), true);
  });

  test('node credentials work and are limited to the node', async () => {
    await server.admin.create(NODES, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'b' } });
    const client = nodeClient(server, 'a');
    clients.push(client);
    assert.ok((await client.list(NODES)).items.length >= 2);
    await client.patch(NODES, undefined, 'a', { metadata: { labels: { own: 'yes' } } });
    await assert.rejects(
      client.patch(NODES, undefined, 'b', { metadata: { labels: { x: 'y' } } }),
      (err: Error) =>
        isReason(err, 'Forbidden') &&
        err.message ===
          'nodes "b" is forbidden: User "system:node:a" cannot patch resource "nodes" ' +
            'in API group "" at the cluster scope',
    );
    await assert.rejects(
      client.create(NODES, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'c' } }),
      (err) => isReason(err, 'Forbidden'),
    );
    await assert.rejects(
      client.create(byGroupResource.get('/namespaces')!, {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'x' },
      }),
      (err) => isReason(err, 'Forbidden'),
    );
    await assert.rejects(client.list(byGroupResource.get('apps/deployments')!), (err) =>
      isReason(err, 'Forbidden'),
    );

    // Secrets: only those a pod bound to the node refers to, and only by name.
    const SECRETS = byGroupResource.get('/secrets')!;
    const secret = (name: string) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: 'default' },
      stringData: { k: name },
    });
    await server.admin.create(SECRETS, secret('for-a'));
    await server.admin.create(SECRETS, secret('for-b'));
    const usingSecret = (pod: string, node: string, name: string): Pod => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: pod, namespace: 'default' },
      spec: {
        nodeName: node,
        containers: [{ name: 'c', image: 'busybox' }],
        volumes: [{ name: 's', secret: { secretName: name } }],
      },
    });
    await assert.rejects(client.get(SECRETS, 'default', 'for-a'), (err) =>
      isReason(err, 'Forbidden'),
    );
    await server.admin.create(PODS, usingSecret('uses-a', 'a', 'for-a'));
    await server.admin.create(PODS, usingSecret('uses-b', 'b', 'for-b'));
    await waitFor('the pod to be indexed', 5_000, async () =>
      client.get(SECRETS, 'default', 'for-a').then(
        () => true,
        () => false,
      ),
    );
    await assert.rejects(client.get(SECRETS, 'default', 'for-b'), (err) =>
      isReason(err, 'Forbidden'),
    );
    await assert.rejects(client.list(SECRETS, 'default'), (err) => isReason(err, 'Forbidden'));
    await server.admin.delete(PODS, 'default', 'uses-a', { gracePeriodSeconds: 0 });
    await server.admin.delete(PODS, 'default', 'uses-b', { gracePeriodSeconds: 0 });
  });

  test('logs are proxied to the agent over mutual TLS; the agent refuses anyone else', async () => {
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'default' },
      spec: { nodeName: 'a', containers: [{ name: 'c', image: 'busybox' }] },
    };
    await server.admin.create(PODS, pod);
    // The agent answers (it has no container to read): proof the API server reached it.
    await assert.rejects(
      server.admin.request('GET', '/api/v1/namespaces/default/pods/p/log'),
      (err: Error) => isReason(err, 'BadRequest') && /waiting to start/.test(err.message),
    );
    // kubectl exec goes the same way, over a TLS connection to the agent.
    const exec = await run('kubectl', ['exec', 'p', '--', 'true'], {
      env: { ...process.env, KUBECONFIG: join(server.dir, 'kubeconfig') },
    }).then(
      () => '',
      (err: { stderr: string }) => err.stderr,
    );
    assert.match(exec, /container c is not running in pod p/);
    const node = await server.admin.get<NodeObject>(NODES, undefined, 'a');
    const port = node.status!.daemonEndpoints!.kubeletEndpoint!.Port;
    const status = await new Promise<number | string>((resolve) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/healthz', rejectUnauthorized: false },
        (res) => resolve(res.statusCode ?? 0),
      );
      req.on('error', (err) => resolve(err.message));
      req.end();
    });
    assert.notEqual(status, 200, 'the agent endpoint served a client without a certificate');
  });

  test('the agent renews its certificate and keeps heartbeating', async () => {
    const pki = join(root, 'agent-a', 'pki');
    const first = new X509Certificate(readFileSync(join(pki, 'client.crt')));
    await waitFor('a renewed client certificate', 20_000, async () => {
      const now = new X509Certificate(readFileSync(join(pki, 'client.crt')));
      return now.serialNumber !== first.serialNumber;
    });
    const expiry = Date.parse(first.validTo);
    await new Promise((r) => setTimeout(r, Math.max(0, expiry - Date.now()) + 1_000));
    const after = Date.now();
    await waitFor('a lease renewal after the first certificate expired', 15_000, async () => {
      return (await leaseTime(server.admin, 'a')) > after;
    });
    // The API server reaches the agent's renewed serving certificate too.
    await assert.rejects(
      server.admin.request('GET', '/api/v1/namespaces/default/pods/p/log'),
      (err: Error) => isReason(err, 'BadRequest') && /waiting to start/.test(err.message),
    );
  });

  test('a restarted agent needs no token', async () => {
    await stop(agent);
    agent = startAgent(server, 'a');
    const since = Date.now();
    await waitFor('a lease renewal by the restarted agent', 20_000, async () => {
      if (agent.proc.exitCode !== null) throw new Error(readFileSync(agent.log, 'utf8'));
      return (await leaseTime(server.admin, 'a')) > since;
    });
    assert.match(readFileSync(agent.log, 'utf8'), /using the stored node credentials/);
    await stop(agent);
  });

  test("another machine cannot join under a node's name until that Node is deleted", async () => {
    const pw = statSync(join(root, 'agent-a', 'pki', 'node-password'));
    assert.equal(pw.mode & 0o777, 0o600, 'the node password is private');
    const impostor = startAgent(server, 'a', server.joinToken, 'agent-a-other');
    assert.equal(await impostor.exited, 1);
    assert.match(readFileSync(impostor.log, 'utf8'), /node name a belongs to another machine/);
    const otherPki = join(root, 'agent-a-other', 'pki');
    assert.equal(existsSync(join(otherPki, 'client.crt')), false, 'no credentials issued');

    // The machine that owns the name may join again with the token (same password).
    for (const f of ['client.crt', 'client.key']) rmSync(join(root, 'agent-a', 'pki', f));
    const owner = startAgent(server, 'a', server.joinToken);
    await waitFor('the owner to rejoin', 20_000, async () => {
      if (owner.proc.exitCode !== null) throw new Error(readFileSync(owner.log, 'utf8'));
      return /joined the cluster/.test(readFileSync(owner.log, 'utf8'));
    });
    await stop(owner);

    // Once the Node is deleted the name is free for another machine.
    await server.admin.delete(NODES, undefined, 'a');
    const newcomer = startAgent(server, 'a', server.joinToken, 'agent-a-other');
    await waitFor('the new machine to register node a', 30_000, async () => {
      if (newcomer.proc.exitCode !== null) throw new Error(readFileSync(newcomer.log, 'utf8'));
      const node = await server.admin.get(NODES, undefined, 'a').catch(() => undefined);
      return node !== undefined && existsSync(join(otherPki, 'client.crt'));
    });
    await stop(newcomer);
  });
});

describe('two servers on one etcd', { timeout: 120_000 }, () => {
  let etcd: Proc;
  let etcdUrl: string;

  before(async () => {
    const [client, peer] = [await freePort(), await freePort()];
    etcdUrl = `http://127.0.0.1:${client}`;
    const etcdLog = join(root, 'etcd.log');
    const out = createWriteStream(etcdLog);
    const proc = spawn(
      'etcd',
      [
        ...['--data-dir', join(root, 'etcd'), '--name', 'join-test'],
        ...['--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl],
        ...['--listen-peer-urls', `http://127.0.0.1:${peer}`],
        ...['--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`],
        ...['--initial-cluster', `join-test=http://127.0.0.1:${peer}`],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc.stdout!.pipe(out);
    proc.stderr!.pipe(out);
    etcd = { proc, log: etcdLog, exited: track(proc) };
    await waitFor('etcd to serve', 20_000, async () => {
      if (proc.exitCode !== null) throw new Error(readFileSync(etcdLog, 'utf8'));
      const res = await fetch(`${etcdUrl}/health`).catch(() => undefined);
      return res?.ok ?? false;
    });
  });

  after(async () => {
    if (etcd) await stop(etcd);
  });

  test('share objects, CA and tokens, and both accept a joined node', async () => {
    const [one, two] = await Promise.all([
      startServer('etcd-one', ['--etcd', etcdUrl]),
      startServer('etcd-two', ['--etcd', etcdUrl]),
    ]);
    clients.push(one.admin, two.admin);
    assert.equal(one.joinToken, two.joinToken);
    assert.equal(one.admin.config.caPem, two.admin.config.caPem);
    assert.equal(one.admin.config.token, two.admin.config.token);
    const cm = byGroupResource.get('/configmaps')!;
    await one.admin.create(cm, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'shared', namespace: 'default' },
      data: { a: '1' },
    });
    await waitFor('the object through the second server', 10_000, async () => {
      const got = await two.admin.get(cm, 'default', 'shared').catch(() => undefined);
      return got?.data?.a === '1';
    });
    // A node that joined through one server is trusted by the other.
    const agent = startAgent(one, 'e', one.joinToken);
    await waitFor('node e through the second server', 30_000, async () => {
      if (agent.proc.exitCode !== null) throw new Error(readFileSync(agent.log, 'utf8'));
      const node = await two.admin.get<NodeObject>(NODES, undefined, 'e').catch(() => undefined);
      return node !== undefined && existsSync(join(root, 'agent-e', 'pki', 'client.crt'));
    });
    const viaTwo = nodeClient(two, 'e');
    clients.push(viaTwo);
    await viaTwo.patch(NODES, undefined, 'e', { metadata: { labels: { via: 'two' } } });
    await stop(agent);
    await stop(one.p);
    await stop(two.p);
  });
});
