import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimForwarding, FORWARDING_RECORD, releaseForwarding } from './ip-forward.js';

/** A data dir and stand-ins for the sysctl and the boot id, in a temp dir of their own. */
function sandbox(forwarding: '0' | '1', boot = 'boot-a') {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-ipfwd-'));
  const files = {
    record: join(dir, FORWARDING_RECORD),
    ipForwardFile: join(dir, 'ip_forward'),
    bootIdFile: join(dir, 'boot_id'),
  };
  writeFileSync(files.ipForwardFile, `${forwarding}\n`);
  writeFileSync(files.bootIdFile, `${boot}\n`);
  return {
    dir,
    files,
    value: () => readFileSync(files.ipForwardFile, 'utf8').trim(),
    recorded: () => existsSync(files.record),
    setBoot: (id: string) => writeFileSync(files.bootIdFile, id),
    done: () => rmSync(dir, { recursive: true, force: true }),
  };
}

test('ip forwarding: a clean run hands the machine back as it found it', async () => {
  const cases: { was: '0' | '1'; claimed: boolean }[] = [
    { was: '0', claimed: true },
    { was: '1', claimed: false },
  ];
  for (const c of cases) {
    const s = sandbox(c.was);
    assert.equal(await claimForwarding(s.files), c.claimed, `was ${c.was}`);
    assert.equal(s.value(), '1');
    assert.equal(s.recorded(), c.claimed, 'record written exactly when flyCes turned it on');
    assert.deepEqual(
      readdirSync(s.dir).filter((n) => n.endsWith('.tmp')),
      [],
      'no temporary file left',
    );
    assert.equal(await releaseForwarding(s.files), c.claimed);
    assert.equal(s.value(), c.was);
    assert.equal(s.recorded(), false);
    s.done();
  }
});

test('ip forwarding: after a kill, down or the next start reads the record', async () => {
  // The killed run turned forwarding on and recorded it; nothing turned it back off.
  const s = sandbox('0');
  await claimForwarding(s.files);

  // The next start takes it as its own: forwarding stays on (no flap), the record stays.
  assert.equal(await claimForwarding(s.files), true);
  assert.equal(s.value(), '1');
  assert.equal(s.recorded(), true);

  // Someone turned it off meanwhile: the start turns it on again, still as its own.
  writeFileSync(s.files.ipForwardFile, '0\n');
  assert.equal(await claimForwarding(s.files), true);
  assert.equal(s.value(), '1');

  // `flyces down` after that run was killed as well: off, record gone; a second down is idle.
  assert.equal(await releaseForwarding(s.files), true);
  assert.equal(s.value(), '0');
  assert.equal(s.recorded(), false);
  writeFileSync(s.files.ipForwardFile, '1\n'); // someone else's now
  assert.equal(await releaseForwarding(s.files), false);
  assert.equal(s.value(), '1');
  s.done();
});

test('ip forwarding: a record of an earlier boot is dropped without touching forwarding', async () => {
  const cases: { name: string; run: (s: ReturnType<typeof sandbox>) => Promise<boolean> }[] = [
    { name: 'down', run: (s) => releaseForwarding(s.files) },
    { name: 'start', run: (s) => claimForwarding(s.files) },
  ];
  for (const c of cases) {
    const s = sandbox('0', 'boot-a');
    await claimForwarding(s.files);
    s.setBoot('boot-b'); // rebooted; the machine's own settings turned forwarding on
    assert.equal(await c.run(s), false, c.name);
    assert.equal(s.value(), '1', c.name);
    assert.equal(s.recorded(), false, c.name);
    s.done();
  }
});

test('ip forwarding: a record flyCes cannot date or read counts as its own', async () => {
  const cases: { name: string; prepare: (s: ReturnType<typeof sandbox>) => void }[] = [
    { name: 'boot id unknown now', prepare: (s) => s.setBoot('') },
    { name: 'record without boot id', prepare: (s) => writeFileSync(s.files.record, '{}') },
    { name: 'record spoiled', prepare: (s) => writeFileSync(s.files.record, 'not json') },
  ];
  for (const c of cases) {
    const s = sandbox('0');
    await claimForwarding(s.files);
    c.prepare(s);
    assert.equal(await releaseForwarding(s.files), true, c.name);
    assert.equal(s.value(), '0', c.name);
    assert.equal(s.recorded(), false, c.name);
    s.done();
  }
});
