import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { ImageStore } from '../src/runtime/images.js';
import { readJson } from '../src/runtime/fsutil.js';
import { MiniC, type MiniCOptions } from '../src/runtime/minic.js';
import { removeCgroupsUnder, unmountUnder } from './helpers/cleanup.js';

/**
 * miniC's state root against the real thing (runc, conmon, network namespaces): containers an earlier
 * miniC left under its root on disk are driven by one with a state root of its own, and
 * what the next runtime removes at its start is only what no record names. Needs root;
 * uses its own temp root, bridge and pod CIDR, removed by name at the end.
 */

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const BRIDGE = 'flycesat9';
const POD_CIDR = '10.42.237.0/24';
const IMAGE = 'localhost/flyces-web:1';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flyces-state-root-'));
const images = new ImageStore({ root: path.join(tmp, 'images') });
const disk = path.join(tmp, 'runtime');
const base: MiniCOptions = {
  root: disk,
  images,
  podCidr: POD_CIDR,
  bridge: BRIDGE,
  cgroupParent: `flyces-test-${path.basename(tmp)}`,
};
/** The earlier layout: everything under the root on disk. */
const earlierOptions: MiniCOptions = { ...base, stateRoot: disk };
const stateOptions: MiniCOptions = { ...base, stateRoot: path.join(tmp, 'state') };
const runtimes: MiniC[] = [];
const netnsBefore = await namespaces();

async function namespaces(): Promise<Set<string>> {
  return new Set((await fs.readdir('/var/run/netns').catch(() => [] as string[])).map(String));
}

async function leases(): Promise<string[]> {
  const dir = path.join(disk, 'cni', 'networks', 'flyces');
  return (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => /^\d/.test(n));
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function entries(dir: string): Promise<string[]> {
  return (await fs.readdir(dir).catch(() => [] as string[])).sort();
}

function runtime(options: MiniCOptions): MiniC {
  const minic = new MiniC(options);
  runtimes.push(minic);
  return minic;
}

/** A reboot as the runtime sees it: the kernel's boot id differs from the one it noted. */
async function simulateReboot(): Promise<void> {
  const file = path.join(disk, 'boot.json');
  const noted = JSON.parse(await fs.readFile(file, 'utf8')) as { bootId: string };
  await fs.writeFile(file, JSON.stringify({ bootId: `before-${noted.bootId}` }));
}

const pod = (name: string) => ({
  podUid: `uid-${name}-${path.basename(tmp)}`,
  podName: name,
  podNamespace: 'default',
  hostname: name,
  labels: {},
});

/** Creates and starts the web container of sandbox `sandboxId`; its id. */
async function startWeb(minic: MiniC, sandboxId: string): Promise<string> {
  const id = await minic.createContainer(sandboxId, {
    name: 'web',
    image: IMAGE,
    attempt: 0,
    labels: {},
  });
  await minic.startContainer(id);
  return id;
}

/** A runtime on `options` running pod `name`'s web container, its spare network stopped. */
async function podRunning(options: MiniCOptions, name: string) {
  const minic = runtime(options);
  await minic.prepareNetwork();
  const sandbox = await minic.runSandbox(pod(name));
  const id = await startWeb(minic, sandbox.id);
  await minic.removeSpareNetwork();
  return { minic, sandbox, id };
}

/** A runtime on `options` has started (removing leftovers) and stopped its spare network. */
async function startAndStop(options: MiniCOptions): Promise<void> {
  const minic = runtime(options);
  await minic.prepareNetwork();
  await minic.removeSpareNetwork();
}

/** What the running container `id` at address `ip` has on disk is all still there. */
async function assertKept(id: string, ip: string): Promise<void> {
  assert.ok(existsSync(path.join(disk, 'containers', id, 'upper')), 'its writable layer stays');
  assert.ok(existsSync(path.join(disk, 'containers', id, 'container.log')), 'its log stays');
  assert.ok((await leases()).includes(ip), 'its address stays');
}

before(async () => {
  const archive = path.join(tmp, 'web.tar');
  await exec(path.join(repo, 'examples', 'build-image.sh'), [archive]);
  await images.importArchive(archive);
});

after(async () => {
  const last = new MiniC(stateOptions);
  for (const sb of await last.listSandboxes().catch(() => [])) {
    await last.removeSandbox(sb.id).catch((err) => console.error('cleanup', err));
  }
  for (const minic of runtimes) await minic.removeSpareNetwork().catch(() => undefined);
  for (const name of await namespaces()) {
    if (!netnsBefore.has(name) && name.startsWith('flyces-')) {
      // Only namespaces a sandbox or spare of this test's roots names are ours.
      const ours = (await exec('grep', ['-rl', name, tmp]).catch(() => ({ stdout: '' }))).stdout;
      if (ours) await exec('ip', ['netns', 'delete', name]).catch(() => undefined);
    }
  }
  await unmountUnder(tmp);
  await exec('ip', ['link', 'del', BRIDGE]).catch(() => undefined);
  await removeCgroupsUnder(base.cgroupParent!);
  await fs.rm(tmp, { recursive: true, force: true });
});

test('a pod an earlier miniC runs under its root on disk is driven and removed', async () => {
  const { sandbox, id: oldId } = await podRunning(earlierOptions, 'old');
  assert.ok(existsSync(path.join(disk, 'containers', oldId, 'container.json')));
  assert.ok(existsSync(path.join(disk, 'runc', oldId)));

  // The agent restarts with the new layout: its state root is elsewhere and empty. The
  // boot noted is made another, so that leftovers are looked for: records on disk count.
  await simulateReboot();
  const now = runtime(stateOptions);
  await now.prepareNetwork();
  assert.ok(existsSync(path.join(disk, 'containers', oldId, 'upper')), 'its writable layer stays');
  assert.ok((await leases()).includes(sandbox.ip!), 'its address stays');
  assert.equal((await now.containerStatus(oldId))?.state, 'running');
  const hostname = await now.execSync(oldId, ['cat', '/etc/hostname'], 5000);
  assert.equal(hostname.output.trim(), 'old');

  // A new container in the earlier sandbox sees the sandbox's /etc files (it does not serve:
  // the port is the first one's).
  const newId = await now.createContainer(sandbox.id, {
    name: 'side',
    command: ['sleep', '3600'],
    image: IMAGE,
    attempt: 0,
    labels: {},
  });
  await now.startContainer(newId);
  const hosts = await now.execSync(newId, ['cat', '/etc/hosts'], 5000);
  assert.match(hosts.output, new RegExp(`${sandbox.ip!.replaceAll('.', '\\.')}\\s+old`));

  // Another restart: both containers are known, neither's files are taken for leftovers.
  // The runtime before it stops making spare networks first, as a stopped agent would (two
  // live runtimes on one root each made one, and the first one's address stayed taken).
  await now.removeSpareNetwork();
  const again = runtime(stateOptions);
  await again.prepareNetwork();
  const running = (await again.listContainers()).filter((c) => c.state === 'running');
  assert.deepEqual(running.map((c) => c.id).sort(), [oldId, newId].sort());
  for (const id of [oldId, newId])
    assert.ok(existsSync(path.join(disk, 'containers', id, 'upper')));

  await again.stopContainer(oldId, 5);
  assert.equal((await again.containerStatus(oldId))?.state, 'exited');
  await again.stopSandbox(sandbox.id);
  await again.removeSandbox(sandbox.id);
  await again.removeSpareNetwork();
  for (const root of [disk, stateOptions.stateRoot!]) {
    for (const kind of ['containers', 'sandboxes'])
      assert.deepEqual(await entries(path.join(root, kind)), [], `${root}/${kind}`);
    assert.deepEqual(await entries(path.join(root, 'runc')), [], `${root}/runc`);
  }
  assert.deepEqual(await leases(), [], 'every address is free');
});

test('after a reboot empties the state root, the same pod starts again on a clean runtime', async () => {
  const first = runtime(stateOptions);
  await first.prepareNetwork();
  const sandbox = await first.runSandbox(pod('boot'));
  const oldId = await startWeb(first, sandbox.id);
  const rec = JSON.parse(
    await fs.readFile(
      path.join(stateOptions.stateRoot!, 'containers', oldId, 'container.json'),
      'utf8',
    ),
  ) as { cgroupPaths: string[] };
  const sbFile = path.join(stateOptions.stateRoot!, 'sandboxes', sandbox.id, 'sandbox.json');
  const { netns } = JSON.parse(await fs.readFile(sbFile, 'utf8')) as { netns: string };

  // The spare that replaces the one the sandbox took is made first, so that none is being
  // made when the machine "reboots" (this runtime stays alive in the test's process).
  await until('the next spare network', async () => {
    const spare = await readJson<{ netns?: string; ip?: string }>(
      path.join(disk, 'spare-network.json'),
    ).catch(() => undefined);
    return spare?.ip !== undefined && spare.netns !== netns;
  });

  // The reboot: processes, cgroups, namespaces and the state root (a tmpfs) go; the disk
  // (writable layers, logs, leases, the spare's file) stays.
  await first.stopContainer(oldId, 0);
  for (const dir of rec.cgroupPaths) await fs.rmdir(dir).catch(() => undefined);
  for (const name of [netns, ...(await namespaces())]) {
    const spare = await fs.readFile(path.join(disk, 'spare-network.json'), 'utf8').catch(() => '');
    if (name === netns || spare.includes(`"${name}"`))
      await exec('ip', ['netns', 'delete', name]).catch(() => undefined);
  }
  await fs.rm(stateOptions.stateRoot!, { recursive: true, force: true });
  await simulateReboot();
  assert.ok((await leases()).includes(sandbox.ip!));

  const next = runtime(stateOptions);
  await next.prepareNetwork();
  assert.deepEqual(await next.listContainers(), []);
  assert.ok(!existsSync(path.join(disk, 'containers', oldId)), "the old container's files go");
  const again = await next.runSandbox(pod('boot'));
  assert.equal(again.id, sandbox.id, 'the same pod and attempt: the same sandbox id');
  assert.equal(again.state, 'ready');
  const newId = await startWeb(next, again.id);
  assert.equal((await next.containerStatus(newId))?.state, 'running');
  const hosts = await next.execSync(newId, ['cat', '/etc/hosts'], 5000);
  assert.match(hosts.output, new RegExp(`${again.ip!.replaceAll('.', '\\.')}\\s+boot`));

  await next.stopSandbox(again.id);
  await next.removeSandbox(again.id);
  await next.removeSpareNetwork();
  assert.deepEqual(await entries(path.join(disk, 'containers')), []);
  assert.deepEqual(await leases(), [], 'every address is free');
});

test('an empty state root without a reboot is no reason to free what live pods use', async () => {
  const { minic: first, sandbox, id } = await podRunning(stateOptions, 'live');

  // A runtime that finds no records (its state root was lost, or is another one) on the
  // same boot: the pod still runs, so its writable layer, log and address stay.
  await startAndStop({ ...stateOptions, stateRoot: path.join(tmp, 'other-state') });
  await assertKept(id, sandbox.ip!);
  assert.equal((await first.containerStatus(id))?.state, 'running');

  await first.stopSandbox(sandbox.id);
  await first.removeSandbox(sandbox.id);
  assert.deepEqual(await leases(), []);
});

test('where the kernel gives no boot id, a reboot cannot be told and nothing is removed', async () => {
  const { minic: first, sandbox, id } = await podRunning(stateOptions, 'unknown-boot');
  await simulateReboot();
  const noted = await fs.readFile(path.join(disk, 'boot.json'), 'utf8');

  // Another state root (so no records) and an emulated /proc without a boot id: missing,
  // then empty. What would be a reboot's leftovers with a boot id stays, and the noted
  // boot is not overwritten with nothing.
  const emptyBootId = path.join(tmp, 'empty-boot-id');
  await fs.writeFile(emptyBootId, '\n');
  const otherRoot = path.join(tmp, 'unknown-boot-state');
  for (const bootIdFile of [path.join(tmp, 'no-such-boot-id'), emptyBootId]) {
    await startAndStop({ ...stateOptions, stateRoot: otherRoot, bootIdFile });
    await assertKept(id, sandbox.ip!);
    assert.equal(await fs.readFile(path.join(disk, 'boot.json'), 'utf8'), noted);
  }
  assert.equal((await first.containerStatus(id))?.state, 'running');

  // The same runtime with the kernel's boot id takes it for the reboot it was simulated as.
  await startAndStop({ ...stateOptions, stateRoot: otherRoot });
  assert.ok(!existsSync(path.join(disk, 'containers', id)), 'its directory is a leftover now');
  assert.ok(!(await leases()).includes(sandbox.ip!), 'its address is free');

  await first.stopSandbox(sandbox.id);
  await first.removeSandbox(sandbox.id);
  assert.deepEqual(await leases(), []);
});
