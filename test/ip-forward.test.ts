import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FLYCES } from './helpers/cluster.js';
import { NetnsLab, stopProc, waitFor, type Proc } from './helpers/netns-cluster.js';

/**
 * IP forwarding handed back after `flyces up` was killed: by `flyces down`, or by the next
 * `flyces up` on the data dir when it stops. `flyces up` runs in a network namespace of its
 * own (helpers/netns-cluster.ts), whose `net.ipv4.ip_forward` is its own: the host's value
 * is never written, and is checked to be what it was.
 */

const HOST_FORWARDING = '/proc/sys/net/ipv4/ip_forward';
const RECORD = 'ip-forward.json';

describe('IP forwarding after flyces up is killed', { timeout: 240_000 }, () => {
  const lab = new NetnsLab();
  const hostBefore = readFileSync(HOST_FORWARDING, 'utf8');
  let runs = 0;

  const forwarding = async () =>
    (await lab.exec('m', 'cat', ['/proc/sys/net/ipv4/ip_forward'])).trim();
  const setForwarding = (v: 0 | 1) => lab.exec('m', 'sysctl', ['-qw', `net.ipv4.ip_forward=${v}`]);
  const down = (dir: string) =>
    lab.exec('m', process.execPath, [FLYCES, 'down', '--data-dir', dir]);

  /** Starts `flyces up` on `dir` in the namespace; resolves once it says it is up. */
  async function up(dir: string): Promise<Proc> {
    const p = lab.flyces('m', `up-${++runs}`, [
      ...['up', '--data-dir', dir, '--port', '16544', '--agent-port', '20351'],
      ...['--pod-cidr', '10.42.252.0/24', '--bridge', 'flycesgap1', '--node-name', 'fwd-node'],
    ]);
    await waitFor('flyces up to be up', 90_000, async () => {
      if (p.proc.exitCode !== null) throw new Error(`flyces up exited: ${lab.tail(p)}`);
      return readFileSync(p.log, 'utf8').includes('flyCes is up');
    });
    return p;
  }

  function dataDir(name: string): string {
    const dir = join(lab.root, name);
    lab.onDestroy(async () => void (await down(dir)));
    return dir;
  }

  before(async () => {
    await lab.addNamespace('m');
  });

  after(async () => {
    await lab.destroy();
    assert.equal(readFileSync(HOST_FORWARDING, 'utf8'), hostBefore, "the host's forwarding");
  });

  test('flyces down after a kill turns forwarding back off', async () => {
    const dir = dataDir('killed');
    await setForwarding(0);
    const p = await up(dir);
    assert.equal(await forwarding(), '1');
    assert.ok(existsSync(join(dir, RECORD)), 'recorded before turning it on');
    await stopProc(p, 'SIGKILL');
    assert.equal(await forwarding(), '1', 'a killed run cannot turn it off');
    assert.match(await down(dir), /turned IP forwarding back off/);
    assert.equal(await forwarding(), '0');
    assert.ok(!existsSync(join(dir, RECORD)));
    assert.doesNotMatch(await down(dir), /forwarding/, 'a second down has nothing to restore');
  });

  test('the next flyces up takes over what a killed one left, and a clean stop hands it back', async () => {
    const dir = dataDir('restarted');
    await setForwarding(0);
    await stopProc(await up(dir), 'SIGKILL');
    const second = await up(dir);
    assert.equal(await forwarding(), '1');
    assert.ok(existsSync(join(dir, RECORD)));
    await stopProc(second, 'SIGINT');
    assert.equal(second.proc.exitCode, 0, lab.tail(second));
    assert.equal(await forwarding(), '0');
    assert.ok(!existsSync(join(dir, RECORD)));
  });

  test('forwarding that was on before flyces up stays on after a kill and down', async () => {
    const dir = dataDir('was-on');
    await setForwarding(1);
    await stopProc(await up(dir), 'SIGKILL');
    assert.ok(!existsSync(join(dir, RECORD)), 'nothing recorded: flyCes did not turn it on');
    await down(dir);
    assert.equal(await forwarding(), '1');
  });
});
