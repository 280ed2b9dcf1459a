import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

import { pino } from 'pino';

import { ImageStore } from '../src/runtime/images.js';
import { buildWebImage, FLYCES, TestCluster, waitFor } from './helpers/cluster.js';
import { pushArchive, rejectsPull, startRegistry } from './helpers/registry.js';

/**
 * Attacks on image pulls with real processes: Debian's docker-registry over TLS with
 * certificates made here with openssl, reached through registries.yaml; and under `flyces
 * up` (API port 17900, agent 17901, pods 10.42.206.0/24 on bridge flyceshE0), a pull cut
 * by kill -9 and a registries.yaml edited while the agent runs. Every server this file
 * starts listens on 127.0.0.1, ports 17970-17979.
 */

const exec = promisify(execFile);
const PORTS = { tls: 17970, closed: 17971 };
const silent = pino({ level: 'silent' });

/** A CA and a serving certificate for 127.0.0.1 that it signed, made with openssl. */
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const f = (name: string) => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await exec('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.crt'),
    '-days',
    '1',
    '-subj',
    '/CN=flyces image-attack CA',
  ]);
  await exec('openssl', [
    'req',
    ...ec,
    '-keyout',
    f('tls.key'),
    '-out',
    f('tls.csr'),
    '-subj',
    '/CN=127.0.0.1',
  ]);
  await fs.writeFile(f('san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  await exec('openssl', [
    'x509',
    '-req',
    '-in',
    f('tls.csr'),
    '-CA',
    f('ca.crt'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('tls.crt'),
    '-days',
    '1',
    '-extfile',
    f('san.cnf'),
  ]);
  return { ca: f('ca.crt'), cert: f('tls.crt'), key: f('tls.key') };
}

test('registries.yaml against a TLS docker-registry', { timeout: 60_000 }, async (t) => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flyces-image-attack-'));
  const children: ChildProcess[] = [];
  t.after(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    }
    await fs.rm(tmp, { recursive: true, force: true });
  });
  const certs = await makeCertificates(tmp);
  const storage = path.join(tmp, 'storage');
  const tlsFiles = { certificate: certs.cert, key: certs.key };
  await startRegistry(tmp, 'tls', storage, undefined, children, tlsFiles, PORTS.tls);
  const archive = path.join(tmp, 'web.tar');
  await buildWebImage(archive);
  const registry = `127.0.0.1:${PORTS.tls}`;
  await pushArchive(archive, `docker://${registry}/web:1`, tmp);

  let stores = 0;
  const storeWith = async (yaml: string) => {
    const registriesConfig = path.join(tmp, `registries-${++stores}.yaml`);
    await fs.writeFile(registriesConfig, yaml);
    const root = path.join(tmp, `store-${stores}`);
    // Never the registry itself for registry.flyces.test: no name is looked up, nothing leaves.
    return new ImageStore({
      root,
      registriesConfig,
      logger: silent,
      defaultRegistryEndpoint: false,
    });
  };

  await t.test('a loopback registry with a ca_file is spoken to over TLS', async () => {
    const store = await storeWith(
      `configs:\n  "${registry}":\n    tls:\n      ca_file: ${certs.ca}\n`,
    );
    const info = await store.pullImage(`${registry}/web:1`);
    assert.deepEqual(info.names, [`${registry}/web:1`]);
    const skip = await storeWith(
      `configs:\n  "${registry}":\n    tls:\n      insecure_skip_verify: true\n`,
    );
    assert.equal((await skip.pullImage(`${registry}/web:1`)).digest, info.digest);
  });

  await t.test('mirror endpoints in turn; when all fail, the error names each', async () => {
    const mirrors = (endpoints: string[]) =>
      'mirrors:\n  registry.flyces.test:\n    endpoint:\n' +
      endpoints.map((e) => `      - "${e}"\n`).join('') +
      `configs:\n  "${registry}":\n    tls:\n      ca_file: ${certs.ca}\n`;
    const closed = `http://127.0.0.1:${PORTS.closed}`;
    const store = await storeWith(mirrors([closed, `https://${registry}`]));
    const info = await store.pullImage('registry.flyces.test/web:1');
    assert.deepEqual(info.names, ['registry.flyces.test/web:1']);

    const failing = await storeWith(mirrors([closed, `https://${registry}/v2/elsewhere`]));
    const message = await rejectsPull(failing.pullImage('registry.flyces.test/web:1'), /./);
    assert.match(
      message,
      new RegExp(`cannot reach 127\\.0\\.0\\.1:${PORTS.closed}: .*ECONNREFUSED`),
    );
    assert.match(message, new RegExp(`\\(mirror 127\\.0\\.0\\.1:${PORTS.tls}\\)`));
    assert.match(message, /manifest unknown: registry\.flyces\.test\/web:1/);
  });
});

test('flyces up refuses image GC thresholds kubelet would refuse, before starting', async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'flyces-image-attack-flags-'));
  try {
    const cases: [string[], RegExp][] = [
      [
        ['--image-gc-high-threshold', '70', '--image-gc-low-threshold', '80'],
        /--image-gc-low-threshold \(80\) must be less than --image-gc-high-threshold \(70\)/,
      ],
      [['--image-gc-high-threshold', '101'], /101 is not a whole percent from 0 to 100/],
      [['--image-gc-low-threshold', 'x'], /x is not a whole percent/],
    ];
    for (const [flags, pattern] of cases) {
      const args = [FLYCES, 'up', '--data-dir', dataDir, '--port', '17900', ...flags];
      const result = await exec(process.execPath, args).then(
        () => assert.fail(`flyces up ${flags.join(' ')} started`),
        (err: { code?: number; stderr?: string }) => err,
      );
      assert.equal(result.code, 1);
      assert.match(result.stderr ?? '', pattern);
    }
    assert.deepEqual(await fs.readdir(dataDir), [], 'nothing was started');
  } finally {
    await fs.rm(dataDir, { recursive: true, force: true });
  }
});

/** A front to docker-registry that can hold a layer half-sent and demand Basic auth. */
interface Front {
  server: http.Server;
  /** Layer downloads stop after their first bytes, and wait, while this is set. */
  hold: boolean;
  /** Resolves when a held layer has sent its first bytes. */
  held: Promise<void>;
  seen: string[];
}

const FRONT_USER = 'puller';
const FRONT_PASSWORD = 'Front-s3cret-pw';

async function startFront(port: number, upstream: number): Promise<Front> {
  let markHeld = () => {};
  const front: Front = {
    server: http.createServer(),
    hold: true,
    held: new Promise<void>((r) => (markHeld = r)),
    seen: [],
  };
  const basic = 'Basic ' + Buffer.from(`${FRONT_USER}:${FRONT_PASSWORD}`).toString('base64');
  front.server.on('request', (req, res) => {
    front.seen.push(`${req.method} ${req.url}`);
    if (req.url?.startsWith('/v2/private/') && req.headers.authorization !== basic) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="front"' }).end();
      return;
    }
    const headers = { ...req.headers, host: `127.0.0.1:${upstream}` };
    delete headers.authorization;
    const out = http.request(
      { host: '127.0.0.1', port: upstream, path: req.url, method: req.method, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        const big = Number(up.headers['content-length'] ?? 0) > 100_000;
        if (!front.hold || !big || !req.url?.includes('/blobs/')) return void up.pipe(res);
        // Half a layer, then nothing until the client goes away.
        up.once('data', (chunk: Buffer) => {
          res.write(chunk);
          up.pause();
          markHeld();
        });
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => front.server.listen(port, '127.0.0.1', resolve));
  return front;
}

/** Every file below `dir`, relative to it. */
async function filesBelow(dir: string): Promise<string[]> {
  return (await fs.readdir(dir, { recursive: true })).map(String).sort();
}

describe('pulls under flyces up', { timeout: 120_000 }, () => {
  const cluster = new TestCluster({
    podCidr: '10.42.206.0/24',
    bridge: 'flyceshE0',
    port: 17900,
    agentPort: 17901,
  });
  const children: ChildProcess[] = [];
  let front: Front | undefined;
  let tmp = '';
  const ports = { front: 17972, upstream: 17973 };
  const images = () => path.join(cluster.dataDir, 'images');

  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flyces-image-attack-cluster-'));
    await startRegistry(
      tmp,
      'plain',
      path.join(tmp, 'storage'),
      undefined,
      children,
      undefined,
      ports.upstream,
    );
    const archive = path.join(tmp, 'web.tar');
    await buildWebImage(archive);
    for (const dest of ['web:1', 'private/web:1']) {
      await pushArchive(archive, `docker://127.0.0.1:${ports.upstream}/${dest}`, tmp);
    }
    front = await startFront(ports.front, ports.upstream);
    await cluster.start();
  });

  after(async () => {
    front?.server.closeAllConnections();
    front?.server.close();
    try {
      await cluster.destroy();
    } finally {
      for (const child of children) {
        if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      }
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });

  const pod = (name: string, image: string) =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'c', image, imagePullPolicy: 'IfNotPresent' }],
      },
    });
  const apply = async (name: string, image: string) => {
    const file = path.join(tmp, `${name}.json`);
    await fs.writeFile(file, pod(name, image));
    await cluster.kubectl('apply', '-f', file);
  };
  const phase = (name: string) =>
    cluster.kubectl('get', 'pod', name, '-o', 'jsonpath={.status.phase}');
  const waiting = (name: string) =>
    cluster.kubectl(
      'get',
      'pod',
      name,
      '-o',
      'jsonpath={.status.containerStatuses[0].state.waiting}',
    );

  test('kill -9 of the agent during a pull: the next start sweeps tmp/ and completes it', async () => {
    await apply('killed', `127.0.0.1:${ports.front}/web:1`);
    await front!.held;
    const staging = (await fs.readdir(path.join(images(), 'tmp'))).filter((e) =>
      e.startsWith('pull-'),
    );
    assert.equal(staging.length, 1, 'a pull is under way');
    await cluster.kill();
    front!.hold = false;
    await cluster.start();
    await waitFor('the pod to run', 60_000, async () => (await phase('killed')) === 'Running');
    const tmpLeft = await fs.readdir(path.join(images(), 'tmp'));
    assert.deepEqual(tmpLeft, [], 'the killed pull left nothing in tmp/');
    // Every blob in the store is whole: its bytes hash to its name.
    const blobs = path.join(images(), 'blobs', 'sha256');
    for (const hex of await fs.readdir(blobs)) {
      const bytes = await fs.readFile(path.join(blobs, hex));
      assert.equal(createHash('sha256').update(bytes).digest('hex'), hex);
    }
    assert.ok(
      (await filesBelow(path.join(images(), 'layers'))).some((f) => f.endsWith('bin/busybox')),
    );
  });

  test('registries.yaml: a bad one fails the pull naming file and field; an edit is picked up', async () => {
    const file = path.join(cluster.dataDir, 'registries.yaml');
    const registry = `127.0.0.1:${ports.front}`;
    await fs.writeFile(
      file,
      `configs:\n  "${registry}":\n    auth:\n      username: ${FRONT_USER}\n      password: ${FRONT_PASSWORD}\n    tls:\n      insecure_skip_verify: "yes"\n`,
    );
    await apply('private', `${registry}/private/web:1`);
    let message = '';
    await waitFor('ErrImagePull', 30_000, async () => {
      const w = await waiting('private');
      if (!w.includes('ErrImagePull')) return false;
      message = (JSON.parse(w) as { message: string }).message;
      return true;
    });
    const field = `configs."${registry}".tls.insecure_skip_verify must be true or false`;
    assert.ok(message.includes(`${file}: ${field}`), message);
    let events = '';
    await waitFor('an Event naming the field', 10_000, async () => {
      const list = await cluster.kubectl('get', 'events', '-o', 'json');
      const items = (
        JSON.parse(list) as { items: { message?: string; involvedObject: { name: string } }[] }
      ).items;
      events = items
        .filter((e) => e.involvedObject.name === 'private')
        .map((e) => e.message)
        .join('\n');
      return events.includes(field);
    });
    // The log is JSON, its quotes escaped.
    const logged = JSON.stringify(`${file}: ${field}`).slice(1, -1);
    assert.ok(cluster.tail(400).includes(logged), "the agent's log names the field");
    assert.equal(await phase('killed'), 'Running', 'the agent keeps running its pods');

    await fs.writeFile(
      file,
      `configs:\n  "${registry}":\n    auth:\n      username: ${FRONT_USER}\n      password: ${FRONT_PASSWORD}\n`,
    );
    await waitFor(
      'the edited file to be used',
      40_000,
      async () => (await phase('private')) === 'Running',
    );
    for (const text of [cluster.tail(2000), events, message]) {
      assert.ok(!text.includes(FRONT_PASSWORD), 'the password shows');
    }
  });
});
