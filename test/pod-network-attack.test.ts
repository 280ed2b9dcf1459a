import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';

import { componentLogger } from '../src/log.js';
import { ImageStore } from '../src/runtime/images.js';
import { MiniC } from '../src/runtime/minic.js';
import { PodNetwork, vethName } from '../src/runtime/pod-network.js';
import { sandboxId } from '../src/runtime/records.js';

/**
 * The pod network under the conditions that broke it or might: many attachments at once,
 * a bridge deleted under running pods and while attachments run, a subnet running out, a
 * device of the bridge's name that takes no ports, the namespace file a reboot leaves
 * where /run is on disk, records of earlier settings and of the CNI era (by the network
 * and by a new miniC), a full disk, and detaching twice. Needs root; its bridges (flycesna*), namespaces (flycesna-*),
 * address ranges (10.42.241.0/24 to 10.42.245.0/24), tmpfs and temp dir are its own,
 * removed by name at the end.
 */

const exec = promisify(execFile);
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flyces-netattack-'));
const bridges = new Set<string>();
const namespaces = new Set<string>();
const mounts = new Set<string>();

after(async () => {
  for (const dir of mounts) await exec('umount', [dir]).catch(() => undefined);
  for (const netns of namespaces) {
    await exec('ip', ['netns', 'delete', netns]).catch(() => undefined);
    await fs.rm(`/var/run/netns/${netns}`, { force: true }).catch(() => undefined);
  }
  for (const bridge of bridges) await exec('ip', ['link', 'del', bridge]).catch(() => undefined);
  await fs.rm(tmp, { recursive: true, force: true });
});

function podNetwork(bridge: string, podCidr: string): { network: PodNetwork; leaseDir: string } {
  bridges.add(bridge);
  const dir = path.join(tmp, bridge);
  const network = new PodNetwork({
    bridge,
    podCidr,
    ipamDir: path.join(dir, 'leases'),
    scratchDir: path.join(dir, 'scratch'),
    log: componentLogger('pod-network-attack-test'),
  });
  return { network, leaseDir: path.join(dir, 'leases', 'flyces') };
}

function netnsNames(tag: string, count: number): string[] {
  const names = Array.from({ length: count }, (_, i) => `flycesna-${tag}${i}-${process.pid}`);
  for (const name of names) namespaces.add(name);
  return names;
}

async function ip(args: string[]): Promise<string> {
  return (await exec('ip', args)).stdout;
}

/** One ping from inside `netns` to `address`, answered within 2 s, or a rejection. */
async function ping(netns: string, address: string): Promise<void> {
  await exec('ip', ['netns', 'exec', netns, 'busybox', 'ping', '-c', '1', '-W', '2', address]);
}

async function ports(bridge: string): Promise<string[]> {
  const out = await ip(['-o', 'link', 'show', 'master', bridge]).catch(() => '');
  return out
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => line.split(':')[1].trim().split('@')[0]);
}

async function leaseNames(dir: string): Promise<string[]> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  return names.filter((name) => name.startsWith('10.')).sort();
}

test('fifty attachments at once: each its own address, veth and eth0; all detached', async () => {
  const { network, leaseDir } = podNetwork('flycesna0', '10.42.241.0/24');
  const config = network.bridgeConfig();
  const names = netnsNames('many', 50);
  const got = await Promise.all(
    names.map((netns, i) => network.attach(`many-${i}`, netns, config)),
  );

  const ips = got.map((a) => a.ip);
  assert.equal(new Set(ips).size, 50, 'no address given twice');
  assert.deepEqual(await leaseNames(leaseDir), [...ips].sort());
  assert.deepEqual(
    (await ports('flycesna0')).sort(),
    names.map((_, i) => vethName(`many-${i}`)).sort(),
  );
  for (const i of [0, 17, 49]) {
    const inside = await ip(['-n', names[i], '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    assert.match(inside, new RegExp(`inet ${ips[i].replace(/\./g, '\\.')}/24`));
  }

  await Promise.all(names.map((netns, i) => network.detach(`many-${i}`, netns, config, ips[i])));
  await Promise.all(names.map((netns) => network.deleteNetns(netns)));
  assert.deepEqual(await leaseNames(leaseDir), []);
  assert.deepEqual(await ports('flycesna0'), []);
  for (const netns of names) assert.ok(!existsSync(`/var/run/netns/${netns}`), netns);
});

test('a bridge deleted between attachments is made again for all that run at once', async () => {
  const { network, leaseDir } = podNetwork('flycesna1', '10.42.242.0/24');
  const config = network.bridgeConfig();
  const [first, ...rest] = netnsNames('gone', 11);
  await network.attach('gone-first', first, config);
  await exec('ip', ['link', 'del', 'flycesna1']);

  // Every one of them fails its first try; the first to look makes the bridge again.
  const settled = await Promise.allSettled(
    rest.map((netns, i) => network.attach(`gone-${i}`, netns, config)),
  );
  const failed = settled.filter((s) => s.status === 'rejected');
  assert.deepEqual(
    failed.map((s) => String((s as PromiseRejectedResult).reason)),
    [],
    'no attachment fails',
  );
  assert.match(await ip(['-o', '-4', 'addr', 'show', 'dev', 'flycesna1']), /10\.42\.242\.1\/24/);
  // The ten, and the first one's port, which the deleted bridge let go of.
  assert.equal((await ports('flycesna1')).length, 11);
  await network.detach('gone-first', first, config);
  for (const [i, netns] of rest.entries()) await network.detach(`gone-${i}`, netns, config);
  assert.deepEqual(await leaseNames(leaseDir), []);
});

test('the file a reboot leaves of a namespace is replaced by a new namespace', async () => {
  const { network, leaseDir } = podNetwork('flycesna0', '10.42.241.0/24');
  const config = network.bridgeConfig();
  const [netns] = netnsNames('stale', 1);
  // Where /var/run is on disk, a namespace's file outlives the kernel that mounted it there.
  await fs.writeFile(`/var/run/netns/${netns}`, '');
  const got = await network.attach('stale', netns, config);
  const inside = await ip(['-n', netns, '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
  assert.match(inside, new RegExp(`inet ${got.ip.replace(/\./g, '\\.')}/24`));
  await network.detach('stale', netns, config, got.ip);
  await network.deleteNetns(netns);
  assert.ok(!existsSync(`/var/run/netns/${netns}`));
  assert.deepEqual(await leaseNames(leaseDir), []);
});

test('a sandbox the CNI plugins attached before a reboot is detached, lease and all', async () => {
  const { network } = podNetwork('flycesna0', '10.42.241.0/24');
  const [netns] = netnsNames('cni', 1);
  await fs.writeFile(`/var/run/netns/${netns}`, '');
  const dataDir = path.join(tmp, 'cni-leases');
  await fs.mkdir(path.join(dataDir, 'flyces'), { recursive: true });
  await fs.writeFile(path.join(dataDir, 'flyces', '10.42.241.200'), 'cni-era\r\neth0');
  const cniConfig = {
    cniVersion: '1.0.0',
    name: 'flyces',
    type: 'bridge',
    bridge: 'flycesna0',
    ipam: { type: 'host-local', ranges: [[{ subnet: '10.42.241.0/24' }]], dataDir },
  };
  await network.detach('cni-era', netns, cniConfig, '10.42.241.200');
  assert.deepEqual(await fs.readdir(path.join(dataDir, 'flyces')), []);
  await network.deleteNetns(netns);
  assert.ok(!existsSync(`/var/run/netns/${netns}`));
});

test('a sandbox recorded under earlier settings gets its own bridge and gateway', async () => {
  const { network } = podNetwork('flycesna1', '10.42.242.0/24');
  bridges.add('flycesna2');
  // The node's bridge and pod range changed since the sandbox's record was written.
  const earlier = { ...network.bridgeConfig(), bridge: 'flycesna2', subnet: '10.42.243.0/24' };
  const [netns] = netnsNames('earlier', 1);
  const got = await network.attach('earlier', netns, earlier);
  assert.match(got.ip, /^10\.42\.243\.\d+$/);
  assert.equal(got.gateway, '10.42.243.1');
  const addresses = await ip(['-o', '-4', 'addr', 'show', 'dev', 'flycesna2']);
  assert.match(addresses, /inet 10\.42\.243\.1\/24/);
  assert.doesNotMatch(addresses, /10\.42\.242\./, "the node's gateway is on its own bridge only");
  await ping(netns, got.gateway);
  await network.detach('earlier', netns, earlier, got.ip);
  await network.deleteNetns(netns);
});

test('a subnet runs out under attachments at once; the failed leave nothing behind', async () => {
  // 10.42.244.0/28: .2 to .14, thirteen addresses.
  const { network, leaseDir } = podNetwork('flycesna3', '10.42.244.0/28');
  const config = network.bridgeConfig();
  const names = netnsNames('full', 16);
  const settled = await Promise.allSettled(
    names.map((netns, i) => network.attach(`full-${i}`, netns, config)),
  );
  const attached = settled.flatMap((s, i) => (s.status === 'fulfilled' ? [i] : []));
  assert.equal(attached.length, 13);
  for (const [i, s] of settled.entries()) {
    if (s.status === 'fulfilled') continue;
    assert.match(String(s.reason), /no free address in 10\.42\.244\.0\/28/);
    assert.ok(!existsSync(`/var/run/netns/${names[i]}`), 'no namespace for a failure');
  }
  assert.equal((await leaseNames(leaseDir)).length, 13);
  assert.equal((await ports('flycesna3')).length, 13);

  const [freed, ...kept] = attached;
  await network.detach(`full-${freed}`, names[freed], config);
  await network.deleteNetns(names[freed]);
  const last = names.length - 1;
  assert.ok(!attached.includes(last));
  await network.attach(`full-${last}`, names[last], config);
  for (const i of [...kept, last]) await network.detach(`full-${i}`, names[i], config);
  assert.deepEqual(await leaseNames(leaseDir), []);
});

test('attaching to a device that takes no ports fails; detaching then clears it all', async () => {
  // A device of the bridge's name that is no bridge: the port cannot join it.
  bridges.add('flycesna4');
  await exec('ip', ['link', 'add', 'flycesna4', 'type', 'veth', 'peer', 'name', 'flycesna4p']);
  const { network, leaseDir } = podNetwork('flycesna4', '10.42.245.0/24');
  const config = network.bridgeConfig();
  const [netns] = netnsNames('noport', 1);
  await assert.rejects(network.attach('noport', netns, config), /attaching .* failed/);

  // What the runtime does after a failed set-up, twice over, as a retried cleanup would.
  for (let i = 0; i < 2; i++) {
    await network.detach('noport', netns, config);
    await network.deleteNetns(netns);
  }
  assert.deepEqual(await leaseNames(leaseDir), []);
  assert.doesNotMatch(await ip(['-o', 'link']), new RegExp(vethName('noport')));
  assert.ok(!existsSync(`/var/run/netns/${netns}`));
});

/**
 * Pods attached, their bridge deleted, then made again by a new PodNetwork (the agent
 * restarted) or, when `byHand`, by someone else before it looked: the pods are on it again.
 */
async function bridgeMadeAgain(byHand: boolean): Promise<void> {
  const { network } = podNetwork('flycesna5', '10.42.244.64/26');
  const config = network.bridgeConfig();
  const names = netnsNames(byHand ? 'rejoinh' : 'rejoin', 2);
  const got = await Promise.all(
    names.map((netns, i) => network.attach(`rejoin-${i}`, netns, config)),
  );
  await exec('ip', ['link', 'del', 'flycesna5']);
  assert.match(await ip(['-o', 'link', 'show', 'dev', vethName('rejoin-0')]), /UP/, 'port left');

  // A new process (the agent restarted) makes the bridge before any pod is set up, or
  // finds one that someone else made again.
  if (byHand) await exec('ip', ['link', 'add', 'flycesna5', 'type', 'bridge']);
  const again = podNetwork('flycesna5', '10.42.244.64/26').network;
  await again.ensureBridge();
  for (const [i, netns] of names.entries()) {
    const port = await ip(['-d', 'link', 'show', 'dev', vethName(`rejoin-${i}`)]);
    assert.match(port, /master flycesna5 /);
    assert.match(port, /hairpin on/);
    await ping(netns, got[i].gateway);
  }
  for (const [i, netns] of names.entries()) await again.detach(`rejoin-${i}`, netns, config);
  for (const netns of names) await again.deleteNetns(netns);
}

test('ports a deleted bridge let go of rejoin it when the next runtime makes it', () =>
  bridgeMadeAgain(false));

test('ports a deleted bridge let go of rejoin it when someone else made it again', () =>
  bridgeMadeAgain(true));

test('a lease a full disk kept from being written is not left to hold its address', async () => {
  const dir = path.join(tmp, 'full');
  await fs.mkdir(dir);
  await exec('mount', ['-t', 'tmpfs', '-o', 'size=8k', 'flycesna-full', dir]);
  mounts.add(dir);
  // The bridge is never made: leasing needs none.
  const network = new PodNetwork({
    bridge: 'flycesna9',
    podCidr: '10.42.244.0/28',
    ipamDir: dir,
    scratchDir: dir,
    log: componentLogger('pod-network-attack-test'),
  });
  const config = network.bridgeConfig();
  await fs.mkdir(path.join(dir, 'flyces'));
  await fs.writeFile(path.join(dir, 'filler'), Buffer.alloc(16384)).catch(() => undefined);
  for (const id of ['full-a', 'full-b']) {
    assert.throws(() => network.lease(config, id), /ENOSPC/);
    network.release(path.join(dir, 'flyces'), id);
  }
  assert.deepEqual(await fs.readdir(path.join(dir, 'flyces')), []);
  await fs.rm(path.join(dir, 'filler'));
  assert.equal(network.lease(config, 'full-c'), '10.42.244.2');
});

test('a new miniC stops and removes a sandbox the CNI plugins attached', async () => {
  // As the bridge plugin left it: a veth of its own name on the bridge, eth0 inside, and
  // host-local's lease under the runtime's root; the record names the namespace.
  const root = path.join(tmp, 'minic');
  const stateRoot = path.join(tmp, 'minic-state');
  bridges.add('flycesna6');
  await exec('ip', ['link', 'add', 'flycesna6', 'type', 'bridge']);
  const [netns] = netnsNames('cnirec', 1);
  await exec('ip', ['netns', 'add', netns]);
  const peer = ['peer', 'name', 'eth0', 'netns', netns];
  await exec('ip', ['link', 'add', 'flycesna6old', 'type', 'veth', ...peer]);
  await exec('ip', ['link', 'set', 'dev', 'flycesna6old', 'master', 'flycesna6', 'up']);
  const dataDir = path.join(root, 'cni', 'networks');
  const id = sandboxId(`uid-${path.basename(tmp)}`, 0);
  await fs.mkdir(path.join(dataDir, 'flyces'), { recursive: true });
  await fs.writeFile(path.join(dataDir, 'flyces', '10.42.243.9'), `${id}\r\neth0`);
  const record = {
    id,
    podUid: `uid-${path.basename(tmp)}`,
    podName: 'cni-era',
    podNamespace: 'default',
    hostname: 'cni-era',
    labels: {},
    attempt: 0,
    netns,
    cniConfig: {
      cniVersion: '1.0.0',
      name: 'flyces',
      type: 'bridge',
      bridge: 'flycesna6',
      isGateway: false,
      ipMasq: false,
      hairpinMode: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.42.243.0/24' }]], dataDir },
    },
    ip: '10.42.243.9',
    state: 'ready',
    createdAt: new Date().toISOString(),
  };
  await fs.mkdir(path.join(stateRoot, 'sandboxes', id), { recursive: true });
  await fs.writeFile(path.join(stateRoot, 'sandboxes', id, 'sandbox.json'), JSON.stringify(record));

  const minic = new MiniC({
    root,
    stateRoot,
    images: new ImageStore({ root: path.join(tmp, 'minic-images') }),
    bridge: 'flycesna6',
    podCidr: '10.42.243.0/24',
  });
  const [status] = await minic.listSandboxes();
  assert.deepEqual([status.id, status.state, status.ip], [id, 'ready', '10.42.243.9']);
  await minic.stopSandbox(id);
  assert.doesNotMatch(await ip(['-n', netns, '-o', 'link']), /eth0/);
  assert.doesNotMatch(await ip(['-o', 'link']), /flycesna6old/);
  assert.deepEqual(await fs.readdir(path.join(dataDir, 'flyces')), []);
  await minic.removeSandbox(id);
  assert.ok(!existsSync(`/var/run/netns/${netns}`));
  assert.deepEqual(await minic.listSandboxes(), []);
});
