import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';

import { ImageStore } from '../src/runtime/images.js';
import { MiniC, type MiniCOptions } from '../src/runtime/minic.js';
import type { SpareNetwork } from '../src/runtime/spare-network.js';

/**
 * The spare pod network of miniC against real network namespaces: made
 * when the network is prepared, taken by the next sandbox and replaced, taken over or
 * cleaned up by the next process on the same root, deleted by `removeSpareNetwork`. Needs
 * root; uses its own temp root, pod CIDR and bridge, removed by name at the end.
 */

const exec = promisify(execFile);
const BRIDGE = 'flycessp0';
const POD_CIDR = '10.42.235.0/24';

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'flyces-spare-'));
const options: MiniCOptions = {
  root: path.join(root, 'runtime'),
  images: new ImageStore({ root: path.join(root, 'images') }),
  bridge: BRIDGE,
  podCidr: POD_CIDR,
};
const spareFile = path.join(root, 'runtime', 'spare-network.json');
const made = new Set<string>();
/** Namespaces that existed before: any other that appears is this test's runtime's. */
const before = await namespaces();

async function namespaces(): Promise<Set<string>> {
  return new Set((await fs.readdir('/var/run/netns').catch(() => [] as string[])).map(String));
}

after(async () => {
  for (const name of await namespaces()) if (!before.has(name)) made.add(name);
  for (const name of made) {
    if (existsSync(`/var/run/netns/${name}`)) await exec('ip', ['netns', 'delete', name]);
  }
  await exec('ip', ['link', 'delete', BRIDGE]).catch(() => undefined);
  await fs.rm(root, { recursive: true, force: true });
});

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The spare described on disk once it is attached (it has an address), else undefined. */
async function readySpare(): Promise<SpareNetwork | undefined> {
  try {
    const spare = JSON.parse(await fs.readFile(spareFile, 'utf8')) as SpareNetwork;
    if (!spare.ip) return undefined;
    made.add(spare.netns);
    return spare;
  } catch {
    return undefined;
  }
}

const sandboxConfig = (name: string) => ({
  podUid: `uid-${name}`,
  podName: name,
  podNamespace: 'default',
  hostname: name,
  labels: {},
});

test('a spare network is made, taken by the next sandbox, replaced, and cleaned up', async () => {
  const minic = new MiniC(options);
  await minic.prepareNetwork();
  const first = await until('a spare network', readySpare);
  assert.ok(existsSync(`/var/run/netns/${first.netns}`));
  assert.ok(first.ip?.startsWith('10.42.235.'));

  const sandbox = await minic.runSandbox(sandboxConfig('a'));
  assert.equal(sandbox.state, 'ready');
  assert.equal(sandbox.ip, first.ip, 'the sandbox took the spare as it was');
  const hosts = await fs.readFile(
    path.join(options.root, 'state', 'sandboxes', sandbox.id, 'hosts'),
    'utf8',
  );
  assert.match(hosts, new RegExp(`${first.ip!.replaceAll('.', '\\.')}\\ta`));

  const second = await until('the next spare', async () => {
    const spare = await readySpare();
    return spare && spare.netns !== first.netns ? spare : undefined;
  });
  assert.notEqual(second.ip, first.ip);

  // Removing the sandbox releases the spare's namespace and address as its own.
  await minic.removeSandbox(sandbox.id);
  assert.ok(!existsSync(`/var/run/netns/${first.netns}`));

  // The next process on the root takes the spare over rather than making another.
  const again = new MiniC(options);
  await again.prepareNetwork();
  const b = await again.runSandbox(sandboxConfig('b'));
  assert.equal(b.ip, second.ip);
  await again.removeSandbox(b.id);
  const third = await until('a third spare', async () => {
    const spare = await readySpare();
    return spare && spare.netns !== second.netns ? spare : undefined;
  });

  // `flyces down`: a fresh runtime deletes the spare, namespace and file.
  await new MiniC(options).removeSpareNetwork();
  assert.ok(!existsSync(`/var/run/netns/${third.netns}`), 'the spare namespace is gone');
  assert.ok(!existsSync(spareFile), 'its description is gone');
  const leases = await fs.readdir(path.join(options.root, 'cni', 'networks', 'flyces'));
  assert.deepEqual(
    leases.filter((f) => f.startsWith('10.')),
    [],
    'every address was released',
  );
});

test('a spare a sandbox had claimed before a crash is left to that sandbox', async () => {
  // A sandbox record naming a namespace, and a spare file naming the same one: the crash
  // came between the sandbox's record and the spare file's removal.
  const netns = 'flyces-sparetest';
  await exec('ip', ['netns', 'add', netns]);
  made.add(netns);
  const sandboxId = 'e'.repeat(64);
  const dir = path.join(options.root, 'sandboxes', sandboxId);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(
    path.join(dir, 'sandbox.json'),
    JSON.stringify({
      id: sandboxId,
      podUid: 'uid-c',
      podName: 'c',
      podNamespace: 'default',
      hostname: 'c',
      labels: {},
      attempt: 0,
      netns,
      cniId: 'f'.repeat(64),
      cniConfig: {},
      ip: '10.42.235.200',
      state: 'ready',
      createdAt: '2026-01-01T00:00:00Z',
    }),
  );
  await fs.writeFile(
    spareFile,
    JSON.stringify({ netns, cniId: 'f'.repeat(64), cniConfig: {}, ip: '10.42.235.200' }),
  );
  const minic = new MiniC(options);
  await minic.removeSpareNetwork();
  assert.ok(existsSync(`/var/run/netns/${netns}`), "the sandbox's namespace stays");
  assert.ok(!existsSync(spareFile));
  await fs.rm(dir, { recursive: true, force: true });
});

/** The addresses host-local has leased on the test's pod network. */
/** The namespace a sandbox's record names; it is this test's to delete at the end. */
async function recordedNetns(sandboxId: string): Promise<string> {
  const file = path.join(options.root, 'state', 'sandboxes', sandboxId, 'sandbox.json');
  const { netns } = JSON.parse(await fs.readFile(file, 'utf8')) as { netns: string };
  made.add(netns);
  return netns;
}

async function leases(): Promise<string[]> {
  const dir = path.join(options.root, 'cni', 'networks', 'flyces');
  return (await fs.readdir(dir).catch(() => [] as string[])).filter((f) => f.startsWith('10.'));
}

test("a spare whose namespace was deleted behind the runtime's back is not handed out", async (t) => {
  const minic = new MiniC(options);
  t.after(() => minic.removeSpareNetwork());
  await minic.prepareNetwork();
  const spare = await until('a spare network', readySpare);
  await exec('ip', ['netns', 'delete', spare.netns]);

  const sandbox = await minic.runSandbox(sandboxConfig('d'));
  assert.equal(sandbox.state, 'ready');
  assert.notEqual(sandbox.ip, spare.ip, 'the sandbox made a network of its own');
  const netns = await recordedNetns(sandbox.id);
  assert.ok(existsSync(`/var/run/netns/${netns}`));
  const next = await until('the next spare', async () => {
    const s = await readySpare();
    return s && s.netns !== spare.netns ? s : undefined;
  });
  await minic.removeSandbox(sandbox.id);
  await minic.removeSpareNetwork();
  assert.ok(!existsSync(`/var/run/netns/${next.netns}`));
  assert.deepEqual(await leases(), [], "the lost spare's address was released too");
});

test('a spare file naming something other than a spare namespace is ignored and removed', async (t) => {
  // Garbage, truncated, or naming a path outside the namespace directory: a sandbox must
  // never join what it names, and nothing it names is deleted.
  const outside = path.join(root, 'not-a-netns');
  await fs.writeFile(outside, '');
  const named = path.relative('/var/run/netns', outside);
  const bodies = [
    '{"netns": "flyces-',
    'null',
    '[1,2]',
    JSON.stringify({ netns: named, cniId: 'a'.repeat(64), cniConfig: {}, ip: '10.42.235.250' }),
    JSON.stringify({ netns: 'flyces-abc', cniId: 'a'.repeat(64), cniConfig: 'x', ip: 5 }),
  ];
  for (const body of bodies) {
    await fs.mkdir(path.dirname(spareFile), { recursive: true });
    await fs.writeFile(spareFile, body);
    const minic = new MiniC(options);
    t.after(() => minic.removeSpareNetwork());
    await minic.prepareNetwork();
    const sandbox = await minic.runSandbox(sandboxConfig('g'));
    assert.ok(sandbox.ip?.startsWith('10.42.235.'), body);
    assert.notEqual(sandbox.ip, '10.42.235.250', body);
    const netns = await recordedNetns(sandbox.id);
    assert.match(netns, /^flyces-[0-9a-f]+$/, body);
    assert.ok(existsSync(outside), body);
    await minic.removeSandbox(sandbox.id);
    await minic.removeSpareNetwork();
  }
  assert.deepEqual(await leases(), []);
});

test('sandboxes started together: one takes the spare, each gets its own address', async (t) => {
  const minic = new MiniC(options);
  t.after(() => minic.removeSpareNetwork());
  await minic.prepareNetwork();
  const spare = await until('a spare network', readySpare);
  const names = ['m1', 'm2', 'm3', 'm4', 'm5'];
  const sandboxes = await Promise.all(names.map((n) => minic.runSandbox(sandboxConfig(n))));
  for (const s of sandboxes) assert.equal(s.state, 'ready');
  assert.equal(sandboxes.filter((s) => s.ip === spare.ip).length, 1);
  assert.equal(new Set(sandboxes.map((s) => s.ip)).size, names.length);
  for (const s of sandboxes) {
    await recordedNetns(s.id);
  }
  // One sandbox's namespace deleted behind the runtime's back: removing the sandbox still
  // releases its address.
  const lost = await recordedNetns(sandboxes[0].id);
  await exec('ip', ['netns', 'delete', lost]);
  for (const s of sandboxes) await minic.removeSandbox(s.id);
  await minic.removeSpareNetwork();
  assert.deepEqual(await leases(), []);
});

test('a spare made for another pod network is not taken over after a restart', async (t) => {
  // The operator restarts the runtime with another bridge and pod CIDR: the spare left on
  // the old network must not give the first pod an address of the old range.
  const first = new MiniC(options);
  await first.prepareNetwork();
  const old = await until('a spare network', readySpare);
  await first.runSandbox(sandboxConfig('o')); // busy: no new spare is made meanwhile
  const stale = await until('the next spare', async () => {
    const s = await readySpare();
    return s && s.netns !== old.netns ? s : undefined;
  });
  // The first runtime "crashes": nothing cleans up the spare it leaves.
  const moved: MiniCOptions = { ...options, bridge: 'flycesat0', podCidr: '10.42.236.0/24' };
  const second = new MiniC(moved);
  t.after(async () => {
    await second.removeSpareNetwork();
    await exec('ip', ['link', 'delete', 'flycesat0']).catch(() => undefined);
  });
  await second.prepareNetwork();
  const sandbox = await second.runSandbox(sandboxConfig('p'));
  await recordedNetns(sandbox.id); // deleted at the end even if an assertion fails
  assert.match(sandbox.ip ?? '', /^10\.42\.236\./, 'an address of the new range');
  assert.ok(!existsSync(`/var/run/netns/${stale.netns}`), 'the stale spare was deleted');
  for (const s of await second.listSandboxes()) await second.removeSandbox(s.id);
  await second.removeSpareNetwork();
  assert.deepEqual(await leases(), [], 'the stale spare released its old address');
});

test('after a reboot the next runtime frees what the containers of the last boot left', async () => {
  const minic = new MiniC(options);
  await minic.prepareNetwork();
  await until('a spare network', readySpare);
  const sandbox = await minic.runSandbox(sandboxConfig('r'));
  const netns = await recordedNetns(sandbox.id);
  // A container's files on disk (writable layer, log), whose record was on the state root.
  const orphan = path.join(options.root, 'containers', 'f'.repeat(64));
  await fs.mkdir(path.join(orphan, 'upper'), { recursive: true });
  await fs.writeFile(path.join(orphan, 'container.log'), 'last boot\n');
  const spare = await until('the next spare', async () => {
    const s = await readySpare();
    return s && s.ip !== sandbox.ip ? s : undefined;
  });
  assert.ok((await leases()).includes(sandbox.ip!));

  // The reboot: every namespace and the state root (a tmpfs for an agent) are gone.
  for (const name of [netns, spare.netns])
    await exec('ip', ['netns', 'delete', name]).catch(() => undefined);
  await fs.rm(path.join(options.root, 'state'), { recursive: true, force: true });
  // And the kernel's boot id is another than the one the runtime noted.
  await fs.writeFile(path.join(options.root, 'boot.json'), '{"bootId":"the last boot"}');

  const next = new MiniC(options);
  await next.prepareNetwork();
  assert.equal((await next.listSandboxes()).length, 0);
  assert.ok(!existsSync(orphan), "the container's files are gone");
  assert.ok(!(await leases()).includes(sandbox.ip!), "the sandbox's address is free again");
  await next.removeSpareNetwork();
  assert.deepEqual(await leases(), [], 'the spare of the last boot released its address too');
});
