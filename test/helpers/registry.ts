import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

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

/** Starts docker-registry on a free loopback port; returns its port. */
export async function startRegistry(
  tmp: string,
  name: string,
  storage: string,
  htpasswd: string | undefined,
  children: ChildProcess[],
): Promise<number> {
  const port = await freePort();
  const auth = htpasswd
    ? `auth:\n  htpasswd:\n    realm: flyces-test\n    path: ${htpasswd}\n`
    : '';
  const config = path.join(tmp, `${name}.yaml`);
  await fs.writeFile(
    config,
    'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n' +
      `storage:\n  filesystem:\n    rootdirectory: ${storage}\n` +
      `http:\n  addr: 127.0.0.1:${port}\n` +
      auth,
  );
  const child = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: 'ignore' });
  children.push(child);
  await waitForHttp(`http://127.0.0.1:${port}/v2/`, child);
  return port;
}
