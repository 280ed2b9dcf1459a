import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { RuntimeError } from '../../src/runtime/runtime.js';

/** Debian's docker-registry on a loopback port, for tests that pull images. */

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitForHttp(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: server exited (${child.exitCode})`);
    const ok = await fetch(url).then(
      (r) => r.status === 200 || r.status === 401,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not come up`);
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`port ${port}: server exited (${child.exitCode})`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} did not open`);
}

/** A registry's TLS files: its serving certificate and key, and the CA its clients need. */
export interface RegistryTls {
  certificate: string;
  key: string;
  /** When set, a client must present a certificate this CA signed. */
  clientCa?: string;
}

/** Starts docker-registry on `fixedPort`, or a free loopback port; returns its port. */
export async function startRegistry(
  tmp: string,
  name: string,
  storage: string,
  htpasswd: string | undefined,
  children: ChildProcess[],
  tls?: RegistryTls,
  fixedPort?: number,
): Promise<number> {
  const port = fixedPort ?? (await freePort());
  const auth = htpasswd
    ? `auth:\n  htpasswd:\n    realm: flyces-test\n    path: ${htpasswd}\n`
    : '';
  const tlsConfig = tls
    ? `  tls:\n    certificate: ${tls.certificate}\n    key: ${tls.key}\n` +
      (tls.clientCa ? `    clientcas:\n      - ${tls.clientCa}\n` : '')
    : '';
  const config = path.join(tmp, `${name}.yaml`);
  await fs.writeFile(
    config,
    'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n' +
      `storage:\n  filesystem:\n    rootdirectory: ${storage}\n` +
      `http:\n  addr: 127.0.0.1:${port}\n` +
      tlsConfig +
      auth,
  );
  const child = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: 'ignore' });
  children.push(child);
  // A TLS registry's certificate is one the test made: its port opening is enough.
  if (tls) await waitForPort(port, child);
  else await waitForHttp(`http://127.0.0.1:${port}/v2/`, child);
  return port;
}

/**
 * Pushes an OCI archive to `dest` (docker://HOST:PORT/REPO:TAG) with skopeo, which takes
 * the test's own TLS certificates on trust; its policy file goes in `dir`.
 */
export async function pushArchive(archive: string, dest: string, dir: string): Promise<void> {
  const policy = path.join(dir, 'policy.json');
  await fs.writeFile(policy, '{"default":[{"type":"insecureAcceptAnything"}]}');
  await promisify(execFile)('skopeo', [
    ...['--policy', policy, 'copy', '--quiet', '--dest-tls-verify=false'],
    `oci-archive:${archive}`,
    dest,
  ]);
}

/** Awaits a pull that must fail with ErrImagePull saying `pattern`; returns its message. */
export async function rejectsPull(promise: Promise<unknown>, pattern: RegExp): Promise<string> {
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
