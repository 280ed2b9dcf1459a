import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { pino } from 'pino';

import { ImageStore } from '../src/runtime/images.js';
import { RuntimeError } from '../src/runtime/runtime.js';
import { buildWebImage, FLYCES } from './helpers/cluster.js';
import { startRegistry } from './helpers/registry.js';

/**
 * Attacks on image pulls with real processes: Debian's docker-registry over TLS with
 * certificates made here with openssl, reached through registries.yaml. Every server this
 * file starts listens on 127.0.0.1, ports 17970-17979.
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

async function rejectsPull(promise: Promise<unknown>, pattern: RegExp): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof RuntimeError, `not a RuntimeError: ${String(err)}`);
    assert.equal(err.code, 'ErrImagePull');
    assert.match(err.message, pattern);
    return err.message;
  }
  assert.fail('the pull succeeded');
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
  const policy = path.join(tmp, 'policy.json');
  await fs.writeFile(policy, '{"default":[{"type":"insecureAcceptAnything"}]}');
  const registry = `127.0.0.1:${PORTS.tls}`;
  await exec('skopeo', [
    '--policy',
    policy,
    'copy',
    '--quiet',
    '--dest-tls-verify=false',
    `oci-archive:${archive}`,
    `docker://${registry}/web:1`,
  ]);

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
