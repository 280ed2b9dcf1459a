import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { componentLogger } from '../log.js';
import { PodNetwork } from './cni.js';

test('stale address leases are released, and nothing but host-local lease files is touched', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flyces-cni-'));
  try {
    const network = new PodNetwork({
      bridge: 'flycesat9',
      podCidr: '10.42.237.0/24',
      ipamDir: dir,
      cniBinDir: '/usr/lib/cni',
      log: componentLogger('cni-test'),
    });
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
