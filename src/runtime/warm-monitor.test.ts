import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { componentLogger } from '../log.js';
import type { SyncMessage } from './conmon.js';
import { WarmMonitors } from './warm-monitor.js';

/** WarmMonitors against fake conmon starts: what is made, taken, released and when. */
function rig(claimedIds: string[] = []) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flyces-warm-unit-'));
  const events: string[] = [];
  const reports = new Map<string, (m: SyncMessage) => void>();
  const monitors = new WarmMonitors({
    file: path.join(dir, 'warm-monitor.json'),
    bundle: (id) => path.join(dir, id, 'bundle'),
    prepare: async (id) => void events.push(`prepare ${id.slice(0, 4)}`),
    start: (id) =>
      new Promise<SyncMessage>((resolve) => {
        events.push(`start ${id.slice(0, 4)}`);
        reports.set(id, resolve);
      }),
    reap: async (id) => void events.push(`reap ${id.slice(0, 4)}`),
    remove: async (id) => void events.push(`remove ${id.slice(0, 4)}`),
    claimed: async (id) => claimedIds.includes(id),
    log: componentLogger('warm-unit', {}),
  });
  return { dir, events, reports, monitors, done: () => rmSync(dir, { recursive: true }) };
}

const settle = () => new Promise((r) => setTimeout(r, 60));

test('one is made when idle, taken once, and replaced once the runtime is idle again', async () => {
  const r = rig();
  await r.monitors.start();
  await settle();
  const first = r.monitors.take();
  assert.ok(first, 'a monitor was ready');
  assert.equal(r.monitors.take(), undefined, 'taken only once');
  const synced = r.monitors.synced(first.id);
  assert.ok(synced);
  assert.equal(r.monitors.synced(first.id), undefined, 'its report is handed out once');
  // Busy: nothing is made until the work is over and a moment has passed.
  let release!: () => void;
  const work = r.monitors.busy(() => new Promise<void>((res) => (release = res)));
  await settle();
  assert.equal(r.monitors.take(), undefined, 'none made while busy');
  release();
  await work;
  await settle();
  assert.ok(r.monitors.take(), 'made again once idle');
  await r.monitors.remove();
  r.done();
});

test('a ready monitor whose conmon reports (it failed) is dropped, released and replaced', async () => {
  const r = rig();
  await r.monitors.start();
  await settle();
  const [id] = [...r.reports.keys()];
  r.reports.get(id)!({ data: -1, message: 'runc died' });
  await settle();
  assert.ok(r.events.includes(`reap ${id.slice(0, 4)}`), 'released');
  const next = r.monitors.take();
  assert.ok(next && next.id !== id, 'another one is ready');
  await r.monitors.remove();
  r.done();
});

test('at start, one a previous process left is released unless a record claims it', async () => {
  const left = 'a'.repeat(64);
  const claimed = 'b'.repeat(64);
  for (const [id, claims, released] of [
    [left, [], true],
    [claimed, [claimed], false],
  ] as const) {
    const r = rig([...claims]);
    writeFileSync(path.join(r.dir, 'warm-monitor.json'), JSON.stringify({ id }));
    await r.monitors.start();
    assert.equal(r.events.includes(`reap ${id.slice(0, 4)}`), released, id.slice(0, 4));
    await r.monitors.remove();
    r.done();
  }
  // A file naming no id of ours names nothing to release.
  const r = rig();
  writeFileSync(path.join(r.dir, 'warm-monitor.json'), JSON.stringify({ id: '../../etc' }));
  await r.monitors.start();
  assert.deepEqual(
    r.events.filter((e) => e.startsWith('reap')),
    [],
  );
  await r.monitors.remove();
  r.done();
});
