import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { storeContractSuite } from '../src/store/contract.js';
import { EtcdStore } from '../src/store/etcd/etcd-store.js';
import { StoreError } from '../src/store/store.js';

const ETCD = '/usr/bin/etcd';
const STARTUP_MS = 15_000;

interface Etcd {
  url: string;
  process: ChildProcess;
  dir: string;
}

const started: Etcd[] = [];

function stopAll(): void {
  for (const etcd of started.splice(0)) {
    if (etcd.process.exitCode === null && etcd.process.pid) etcd.process.kill('SIGKILL');
    rmSync(etcd.dir, { recursive: true, force: true });
  }
}
after(stopAll);
process.on('exit', stopAll);

/**
 * Two ports nobody listens on right now, on the loopback interface: both held open
 * together while chosen, so they differ (asked one after the other, the kernel may hand
 * out the same one twice).
 */
async function freePorts(): Promise<[number, number]> {
  const servers = [net.createServer(), net.createServer()];
  const ports = await Promise.all(
    servers.map(
      (server) =>
        new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
        }),
    ),
  );
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return [ports[0], ports[1]];
}

/**
 * Starts a new single-member etcd on loopback and waits until it answers. A port taken
 * by someone else between its choice and etcd's bind makes etcd exit; it is started
 * again on other ports (at most three times).
 */
async function startEtcd(attempt = 1): Promise<Etcd> {
  // tmpfs keeps etcd's fsync per write cheap; the suite writes thousands of keys.
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'flyces-etcd-'));
  const [client, peer] = await freePorts();
  const url = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const child = spawn(
    ETCD,
    [
      ...['--name', 't', '--data-dir', join(dir, 'data')],
      ...['--listen-client-urls', url, '--advertise-client-urls', url],
      ...['--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl],
      ...['--initial-cluster', `t=${peerUrl}`, '--log-level', 'error'],
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const etcd = { url, process: child, dir };
  started.push(etcd);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  try {
    await waitHealthy(etcd, () => stderr);
  } catch (err) {
    if (attempt < 3 && /address already in use/.test(stderr)) return startEtcd(attempt + 1);
    throw err;
  }
  return etcd;
}

async function waitHealthy(etcd: Etcd, stderr: () => string): Promise<void> {
  const deadline = Date.now() + STARTUP_MS;
  while (Date.now() < deadline) {
    if (etcd.process.exitCode !== null) assert.fail(`etcd exited: ${stderr()}`);
    try {
      const res = await fetch(`${etcd.url}/health`);
      if (res.ok && ((await res.json()) as { health?: string }).health === 'true') return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`etcd did not become healthy: ${stderr()}`);
}

// The contract expects an empty store to be at revision 0, and etcd's revision counts every
// write in the cluster, so each store gets an etcd of its own rather than a fresh prefix.
storeContractSuite('etcd, one etcd per store', async () => {
  const etcd = await startEtcd();
  return EtcdStore.open({ hosts: [etcd.url] });
});

describe('EtcdStore', () => {
  test('stores with different prefixes share one etcd without seeing each other', async () => {
    const etcd = await startEtcd();
    const a = await EtcdStore.open({ hosts: [etcd.url], prefix: '/cluster-a' });
    const b = await EtcdStore.open({ hosts: [etcd.url], prefix: '/cluster-b' });
    try {
      const created = await a.create('/k', 'a');
      await b.create('/k', 'b');
      assert.deepEqual(await a.get('/k'), created);
      assert.deepEqual(
        (await b.list('')).items.map((kv) => [kv.key, kv.value]),
        [['/k', 'b']],
      );
      assert.equal(await a.currentRevision(), await b.currentRevision(), 'one revision');
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a compaction made by another client is found and reported', async () => {
    const etcd = await startEtcd();
    const writer = await EtcdStore.open({ hosts: [etcd.url] });
    const other = await EtcdStore.open({ hosts: [etcd.url] });
    try {
      for (let i = 0; i < 9; i++) await writer.create(`/k/${i}`, 'v');
      await writer.compact(6);
      assert.equal(await other.compactedRevision(), 6);
      await assert.rejects(
        other.list('/k/', { revision: 3 }),
        (err) => err instanceof StoreError && err.code === 'Compacted' && err.compactRevision === 6,
      );
    } finally {
      await writer.close();
      await other.close();
    }
  });

  test('a watch below a compaction made elsewhere ends with Compacted', async () => {
    const etcd = await startEtcd();
    const writer = await EtcdStore.open({ hosts: [etcd.url] });
    const other = await EtcdStore.open({ hosts: [etcd.url] });
    try {
      for (let i = 0; i < 5; i++) await writer.create(`/k/${i}`, 'v');
      await writer.compact(4);
      const err = await new Promise<Error>((resolve) => {
        other.watch('/k/', 1, { onEvent: () => assert.fail('no events'), onError: resolve });
      });
      assert.ok(err instanceof StoreError && err.code === 'Compacted', String(err));
      assert.equal(err.compactRevision, 4);
    } finally {
      await writer.close();
      await other.close();
    }
  });
});
