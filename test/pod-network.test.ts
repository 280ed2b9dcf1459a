import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';

import { componentLogger } from '../src/log.js';
import { PodNetwork, vethName } from '../src/runtime/pod-network.js';

/**
 * The pod network against real namespaces, veth pairs and a bridge: what one attachment
 * makes, a second try after a half-made one, detaching when the namespace is gone, and
 * detaching a sandbox the CNI plugins attached (before miniC made the network itself).
 * Needs root; its namespaces, bridge and temp dir are its own, removed by name at the end.
 */

const exec = promisify(execFile);
const BRIDGE = 'flycespn0';
const CIDR = '10.42.232.0/24';
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flyces-podnet-'));
const made = new Set<string>();
const network = new PodNetwork({
  bridge: BRIDGE,
  podCidr: CIDR,
  ipamDir: path.join(tmp, 'leases'),
  scratchDir: path.join(tmp, 'scratch'),
  log: componentLogger('pod-network-test'),
});
const leaseDir = path.join(tmp, 'leases', 'flyces');

after(async () => {
  for (const netns of made) await exec('ip', ['netns', 'delete', netns]).catch(() => undefined);
  await exec('ip', ['link', 'del', BRIDGE]).catch(() => undefined);
  await fs.rm(tmp, { recursive: true, force: true });
});

async function ip(args: string[]): Promise<string> {
  return (await exec('ip', args)).stdout;
}

async function leases(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await fs.readdir(leaseDir).catch(() => [] as string[])) {
    if (name.startsWith('10.')) out[name] = await fs.readFile(path.join(leaseDir, name), 'utf8');
  }
  return out;
}

function netnsName(tag: string): string {
  const name = `flycespn-${tag}-${process.pid}`;
  made.add(name);
  return name;
}

test('an attachment: lo and eth0 up with the leased address, a default route, a hairpin port', async () => {
  const netns = netnsName('a');
  const config = network.bridgeConfig();
  const got = await network.attach('attach-a', netns, config);
  assert.deepEqual(got, { ip: '10.42.232.2', prefixLength: 24, gateway: '10.42.232.1' });
  assert.deepEqual(await leases(), { '10.42.232.2': 'attach-a\r\neth0' });

  const inside = await ip(['-n', netns, '-o', '-4', 'addr', 'show']);
  assert.match(inside, /^\d+: lo\s+inet 127\.0\.0\.1\/8/m);
  assert.match(inside, /^\d+: eth0\s+inet 10\.42\.232\.2\/24/m);
  assert.match(await ip(['-n', netns, 'link', 'show', 'dev', 'eth0']), /state UP/);
  assert.match(await ip(['-n', netns, 'route', 'show', 'default']), /default via 10\.42\.232\.1/);
  const veth = vethName('attach-a');
  const port = await ip(['-d', 'link', 'show', 'dev', veth]);
  assert.match(port, new RegExp(`master ${BRIDGE}`));
  assert.match(port, /hairpin on/);
  // The bridge was made, with the gateway address, and the pod reaches it.
  assert.match(await ip(['-o', '-4', 'addr', 'show', 'dev', BRIDGE]), /10\.42\.232\.1\/24/);
  await exec('ip', [
    'netns',
    'exec',
    netns,
    'busybox',
    'ping',
    '-c',
    '1',
    '-W',
    '2',
    '10.42.232.1',
  ]);

  await network.detach('attach-a', netns, config, got.ip);
  assert.deepEqual(await leases(), {});
  assert.doesNotMatch(await ip(['-o', 'link']), new RegExp(veth));
  assert.doesNotMatch(await ip(['-n', netns, '-o', 'link']), /eth0/);
  await network.deleteNetns(netns);
  assert.ok(!existsSync(`/var/run/netns/${netns}`));
});

test('a second try after a half-made attachment ends with one veth and one lease', async () => {
  const netns = netnsName('b');
  const config = network.bridgeConfig();
  // What a crash after the first try's veth leaves: namespace, veth pair and lease.
  const first = await network.attach('attach-b', netns, config);
  const second = await network.attach('attach-b', netns, config);
  assert.notEqual(second.ip, first.ip, 'a new address, not the one just released');
  assert.deepEqual(await leases(), { [second.ip]: 'attach-b\r\neth0' });
  const veths = (await ip(['-o', 'link', 'show', 'master', BRIDGE])).trim().split('\n');
  assert.equal(veths.length, 1);
  assert.match(
    await ip(['-n', netns, '-o', '-4', 'addr', 'show', 'dev', 'eth0']),
    new RegExp(second.ip),
  );

  // The namespace deleted behind the network's back takes its veth pair with it; detaching
  // still releases the address.
  await exec('ip', ['netns', 'delete', netns]);
  await network.detach('attach-b', netns, config);
  assert.deepEqual(await leases(), {});
  assert.equal((await ip(['-o', 'link', 'show', 'master', BRIDGE])).trim(), '');
});

test('a sandbox attached by the CNI plugins is detached: eth0 inside and its lease', async () => {
  const netns = netnsName('c');
  await exec('ip', ['netns', 'add', netns]);
  // As the bridge plugin left it: a veth of a random name on the bridge, eth0 inside, and
  // host-local's lease under its dataDir and the network's name.
  await exec('ip', [
    'link',
    'add',
    'flycespnold',
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    'netns',
    netns,
  ]);
  await exec('ip', ['link', 'set', 'dev', 'flycespnold', 'master', BRIDGE, 'up']);
  const dataDir = path.join(tmp, 'cni-leases');
  await fs.mkdir(path.join(dataDir, 'flyces'), { recursive: true });
  await fs.writeFile(path.join(dataDir, 'flyces', '10.42.232.77'), 'legacy-id\r\neth0');
  const cniConfig = {
    cniVersion: '1.0.0',
    name: 'flyces',
    type: 'bridge',
    bridge: BRIDGE,
    isGateway: false,
    ipMasq: false,
    hairpinMode: true,
    ipam: { type: 'host-local', ranges: [[{ subnet: CIDR }]], dataDir },
  };
  await network.detach('legacy-id', netns, cniConfig, '10.42.232.77');
  assert.doesNotMatch(await ip(['-o', 'link']), /flycespnold/);
  assert.deepEqual(await fs.readdir(path.join(dataDir, 'flyces')), []);
  // A config of neither kind is refused with its reason.
  await assert.rejects(network.detach('x', netns, {}), /names no pod network/);
  await assert.rejects(network.attach('x', netns, {}), /names no pod network/);
});

test('a veth pair left by an earlier attachment under the same id gives way', async () => {
  // What a namespace deleted while a process still held it leaves for a while: the pair.
  const veth = vethName('attach-d');
  await exec('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'flycespnpeer']);
  const netns = netnsName('d');
  const config = network.bridgeConfig();
  const got = await network.attach('attach-d', netns, config);
  assert.doesNotMatch(await ip(['-o', 'link']), /flycespnpeer/);
  assert.match(await ip(['-d', 'link', 'show', 'dev', veth]), new RegExp(`master ${BRIDGE}`));
  await network.detach('attach-d', netns, config, got.ip);
  await network.deleteNetns(netns);
  assert.deepEqual(await leases(), {});
});

test('repair puts back a bridge deleted, set down or stripped of its address, and ports taken off', async () => {
  const netns = netnsName('r');
  const config = network.bridgeConfig();
  const got = await network.attach('attach-r', netns, config);
  const veth = vethName('attach-r');
  const ping = () =>
    exec('ip', ['netns', 'exec', netns, 'busybox', 'ping', '-c', '1', '-W', '1', '10.42.232.1']);
  await ping();
  assert.deepEqual(await network.repair(), [], 'nothing to repair');
  const faults: [string[], RegExp][] = [
    [['link', 'del', BRIDGE], /bridge missing/],
    [['link', 'set', 'dev', BRIDGE, 'down'], /bridge down/],
    [['addr', 'del', '10.42.232.1/24', 'dev', BRIDGE], /gateway address missing/],
    [['link', 'set', 'dev', veth, 'nomaster'], /1 pod ports off the bridge/],
  ];
  for (const [args, expected] of faults) {
    await exec('ip', args);
    await assert.rejects(ping(), `ip ${args.join(' ')} cuts the pod off`);
    assert.match((await network.repair()).join(', '), expected);
    await ping();
    const port = await ip(['-d', 'link', 'show', 'dev', veth]);
    assert.match(port, new RegExp(`master ${BRIDGE}`));
    assert.match(port, /hairpin on/);
  }
  await network.detach('attach-r', netns, config, got.ip);
  await network.deleteNetns(netns);
});
