import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
} from 'node:fs';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { componentLogger } from '../log.js';
import { PodNetwork } from './pod-network.js';

/** A PodNetwork on bridge flycesat9 whose leases and scratch files are under `dir`. */
function networkIn(dir: string, podCidr: string): PodNetwork {
  const log = componentLogger('pod-network-test');
  return new PodNetwork({ bridge: 'flycesat9', podCidr, ipamDir: dir, scratchDir: dir, log });
}

test('stale address leases are released, and nothing but host-local lease files is touched', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flyces-cni-'));
  try {
    const network = networkIn(dir, '10.42.237.0/24');
    const leases = path.join(dir, 'flyces');
    mkdirSync(leases);
    const files: [name: string, content: string, freed: boolean][] = [
      ['10.42.237.2', 'held1\r\neth0\r\n', false], // host-local 1.x: CRLF, then the interface
      ['10.42.237.3', 'held2\neth0', false],
      ['10.42.237.4', 'gone\r\neth0', true],
      ['10.42.237.5', 'gone', true], // older host-local: the id alone
      ['10.42.237.6', '', true], // what a crash while writing leaves
      ['10.42.237.7', '\nheld1', true], // the holder is the first line, not any line
      ['last_reserved_ip.0', '10.42.237.7', false],
      ['lock', '', false],
    ];
    for (const [name, content] of files) writeFileSync(path.join(leases, name), content);
    // Entries host-local never makes: left alone, and no reason to stop releasing others.
    mkdirSync(path.join(leases, '10.42.237.8'));
    execFileSync('mkfifo', [path.join(leases, '10.42.237.9')]);
    writeFileSync(path.join(dir, 'elsewhere'), 'gone');
    symlinkSync(path.join(dir, 'elsewhere'), path.join(leases, '10.42.237.10'));

    const freed = await network.releaseLeasesExcept(new Set(['held1', 'held2']));
    const expected = files.filter(([, , f]) => f).map(([name]) => name);
    assert.deepEqual(freed.sort(), expected.sort());
    for (const [name, , f] of files) assert.equal(existsSync(path.join(leases, name)), !f, name);
    for (const odd of ['10.42.237.8', '10.42.237.9', '10.42.237.10'])
      assert.ok(readdirSync(leases).includes(odd), odd);
    assert.ok(existsSync(path.join(dir, 'elsewhere')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('addresses are leased in turn after the last one given, each once, and released by holder', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flyces-lease-'));
  try {
    // .2 to .6: the network, the gateway and broadcast are not leased.
    const network = networkIn(dir, '10.42.236.0/29');
    const config = network.bridgeConfig();
    const leases = path.join(dir, 'flyces');
    mkdirSync(leases);
    // Another process (host-local of an earlier version, say) holds .3.
    writeFileSync(path.join(leases, '10.42.236.3'), 'other\r\neth0');
    assert.equal(network.lease(config, 'a'), '10.42.236.2');
    assert.equal(network.lease(config, 'b'), '10.42.236.4');
    assert.equal(readFileSync(path.join(leases, '10.42.236.4'), 'utf8'), 'b\r\neth0');
    assert.equal(readFileSync(path.join(leases, 'last_reserved_ip.0'), 'utf8'), '10.42.236.4');
    network.release(leases, 'a', '10.42.236.2');
    // After the last given, not the lowest free: .2 waits its turn.
    assert.equal(network.lease(config, 'c'), '10.42.236.5');
    assert.equal(network.lease(config, 'd'), '10.42.236.6');
    assert.equal(network.lease(config, 'e'), '10.42.236.2');
    assert.throws(() => network.lease(config, 'f'), /no free address in 10\.42\.236\.0\/29/);

    // A wrong hint falls back to a search; a FIFO among the files is never opened.
    execFileSync('mkfifo', [path.join(leases, '10.42.236.7')]);
    network.release(leases, 'c', '10.42.236.6');
    assert.ok(!existsSync(path.join(leases, '10.42.236.5')));
    assert.ok(existsSync(path.join(leases, '10.42.236.6')), "d's lease stays");
    network.release(leases, 'nobody');
    assert.deepEqual(readdirSync(leases).sort(), [
      '10.42.236.2',
      '10.42.236.3',
      '10.42.236.4',
      '10.42.236.6',
      '10.42.236.7',
      'last_reserved_ip.0',
    ]);

    // A new process (the agent restarted) goes on after host-local's last address.
    const again = networkIn(dir, '10.42.236.0/29');
    assert.equal(again.lease(config, 'g'), '10.42.236.5');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('names that would not be single words of an ip command line are refused', () => {
  const base = {
    podCidr: '10.42.236.0/24',
    ipamDir: '/x',
    scratchDir: '/x',
    log: componentLogger('t'),
  };
  assert.throws(() => new PodNetwork({ ...base, bridge: 'br 0' }), /bridge name "br 0"/);
  assert.throws(() => new PodNetwork({ ...base, bridge: 'b'.repeat(16) }), /bridge name/);
  assert.throws(
    () => new PodNetwork({ ...base, bridge: 'br0', scratchDir: '/tmp/a "b"' }),
    /scratch directory/,
  );
  assert.throws(
    () => new PodNetwork({ ...base, bridge: 'br0', podCidr: '10.42.0.0/31' }),
    /out of range/,
  );
});

test('the last address given is never noted through a link, nor into a FIFO', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flyces-lease-'));
  try {
    const options = {
      bridge: 'flycesat9',
      podCidr: '10.42.236.0/29',
      ipamDir: dir,
      scratchDir: dir,
    };
    const network = new PodNetwork({ ...options, log: componentLogger('lease-test') });
    const config = network.bridgeConfig();
    const leases = path.join(dir, 'flyces');
    const last = path.join(leases, 'last_reserved_ip.0');
    mkdirSync(leases);
    writeFileSync(path.join(dir, 'elsewhere'), 'not a lease');
    symlinkSync(path.join(dir, 'elsewhere'), last);
    assert.equal(network.lease(config, 'a'), '10.42.236.2');
    assert.equal(readFileSync(path.join(dir, 'elsewhere'), 'utf8'), 'not a lease');

    // Opening a FIFO to write waits for a reader, which would stop this whole process: the
    // lease is taken by another one, given a few seconds.
    rmSync(last);
    execFileSync('mkfifo', [last]);
    const script = [
      `import { PodNetwork } from ${JSON.stringify(import.meta.resolve('./pod-network.js'))};`,
      `import { componentLogger } from ${JSON.stringify(import.meta.resolve('../log.js'))};`,
      `const options = ${JSON.stringify(options)};`,
      `const network = new PodNetwork({ ...options, log: componentLogger('lease-test') });`,
      `process.stdout.write(network.lease(network.bridgeConfig(), 'b'));`,
    ].join('\n');
    const ip = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      timeout: 5000,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    assert.equal(ip, '10.42.236.3');
    assert.ok(lstatSync(last).isFIFO(), 'what is not the file is left as it is');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a lease file of any size is read only as far as its holder', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flyces-lease-'));
  try {
    const network = networkIn(dir, '10.42.236.0/24');
    const leases = path.join(dir, 'flyces');
    mkdirSync(leases);
    // Sparse, so they take no room: larger than any string Node can make of a whole file.
    const huge = 600 * 1024 * 1024;
    for (const [ip, holder] of [
      ['10.42.236.7', 'mine'],
      ['10.42.236.8', 'gone'],
      ['10.42.236.9', 'held'],
    ]) {
      writeFileSync(path.join(leases, ip), `${holder}\r\neth0`);
      truncateSync(path.join(leases, ip), huge);
    }
    network.release(leases, 'mine');
    assert.ok(!existsSync(path.join(leases, '10.42.236.7')), 'released by its holder');
    assert.deepEqual(await network.releaseLeasesExcept(new Set(['held'])), ['10.42.236.8']);
    assert.deepEqual(readdirSync(leases), ['10.42.236.9']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('whatever host-local noted as its last address, the next lease is one of the subnet', () => {
  // 10.42.236.0/29 leases .2 to .6; the search starts after the noted address. One outside
  // the range (below or above the subnet, its broadcast) starts it somewhere in the range.
  const anywhere = ['10.42.236.2', '10.42.236.3', '10.42.236.4', '10.42.236.5', '10.42.236.6'];
  const cases: [noted: string, next: string[]][] = [
    ['10.42.236.3', ['10.42.236.4']],
    ['10.42.236.6\n', ['10.42.236.2']], // the last of the range: around to the first
    ['10.42.236.7', anywhere],
    ['10.0.0.1', anywhere],
    ['10.99.0.1', anywhere],
    ['255.255.255.255', anywhere],
    ['not an address', ['10.42.236.2']],
    ['::1', ['10.42.236.2']],
    ['', ['10.42.236.2']],
  ];
  for (const [noted, next] of cases) {
    const dir = mkdtempSync(path.join(tmpdir(), 'flyces-lease-'));
    try {
      const network = networkIn(dir, '10.42.236.0/29');
      mkdirSync(path.join(dir, 'flyces'));
      writeFileSync(path.join(dir, 'flyces', 'last_reserved_ip.0'), noted);
      const config = network.bridgeConfig();
      const first = network.lease(config, 'a');
      assert.ok(next.includes(first), `${JSON.stringify(noted)}: ${first}`);
      // Written over in place: nothing of a longer note is left after the address.
      const last = readFileSync(path.join(dir, 'flyces', 'last_reserved_ip.0'), 'utf8');
      assert.equal(last, first, JSON.stringify(noted));
      // And from there every address of the range once, then no more.
      const all = [first, ...[1, 2, 3, 4].map((i) => network.lease(config, `a${i}`))];
      assert.deepEqual([...all].sort(), anywhere, JSON.stringify(noted));
      assert.throws(() => network.lease(config, 'b'), /no free address/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
