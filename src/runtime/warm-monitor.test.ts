import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { componentLogger } from '../log.js';
import type { SyncMessage } from './conmon.js';
import { Starts } from './idle-refill.js';
import { WarmMonitors, writeSpec } from './warm-monitor.js';

/**
 * WarmMonitors against fake conmon starts: what is made, taken, released and when. A
 * monitor's bundle has a real FIFO; its fake runc opens the read end (at once, or when
 * the test says) and is told what a real runc would read.
 */
function rig(opts: { claimedIds?: string[]; opensLater?: boolean; fails?: boolean } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flyces-warm-unit-'));
  const events: string[] = [];
  const reports = new Map<string, (m: SyncMessage) => void>();
  /** Each monitor's FIFO read end, as its runc holds it. */
  const readers = new Map<string, number>();
  const bundle = (id: string) => path.join(dir, id, 'bundle');
  const open = (id: string) =>
    readers.set(
      id,
      openSync(path.join(bundle(id), 'config.json'), constants.O_RDONLY | constants.O_NONBLOCK),
    );
  const starts = new Starts();
  const monitors = new WarmMonitors({
    file: path.join(dir, 'warm-monitor.json'),
    bundle,
    prepare: async (id) => {
      events.push(`prepare ${id.slice(0, 4)}`);
      mkdirSync(bundle(id), { recursive: true });
      execFileSync('mkfifo', [path.join(bundle(id), 'config.json')]);
    },
    start: (id) => {
      events.push(`start ${id.slice(0, 4)}`);
      if (opts.fails) return Promise.reject(new Error('no conmon'));
      if (!opts.opensLater) open(id);
      return new Promise<SyncMessage>((resolve) => reports.set(id, resolve));
    },
    reap: async (id) => void events.push(`reap ${id.slice(0, 4)}`),
    remove: async (id) => {
      events.push(`remove ${id.slice(0, 4)}`);
      rmSync(path.join(dir, id), { recursive: true, force: true });
    },
    claimed: async (id) => (opts.claimedIds ?? []).includes(id),
    starts,
    log: componentLogger('warm-unit', {}),
  });
  /** What monitor `id`'s runc reads now: the bytes, 'eof', or 'waiting' (nothing yet). */
  const reads = (id: string): string => {
    const buf = Buffer.alloc(70_000);
    try {
      const n = readSync(readers.get(id)!, buf);
      return n === 0 ? 'eof' : buf.subarray(0, n).toString();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return 'waiting';
      throw err;
    }
  };
  const done = () => {
    for (const fd of readers.values()) closeSync(fd);
    rmSync(dir, { recursive: true });
  };
  return { dir, events, reports, readers, open, reads, monitors, starts, done };
}

const settle = (ms = 60) => new Promise((r) => setTimeout(r, ms));

test('one is made when idle, taken once, and replaced once the runtime is idle again', async () => {
  const r = rig();
  await r.monitors.start();
  await settle();
  const first = r.monitors.take();
  assert.ok(first, 'a monitor was ready');
  assert.equal(r.monitors.take(), undefined, 'taken only once');
  const handed = r.monitors.handOver(first.id);
  assert.equal(handed, first);
  assert.equal(r.monitors.handOver(first.id), undefined, 'handed over once');
  // Busy: nothing is made until the work is over and a moment has passed.
  let release!: () => void;
  const work = r.starts.busy(() => new Promise<void>((res) => (release = res)));
  await settle();
  assert.equal(r.monitors.take(), undefined, 'none made while busy');
  release();
  await work;
  await settle();
  assert.ok(r.monitors.take(), 'made again once idle');
  await r.monitors.remove();
  r.done();
});

test('a monitor is ready only once its runc has the FIFO open', async () => {
  const r = rig({ opensLater: true });
  await r.monitors.start();
  await settle();
  const [full] = [...r.reports.keys()];
  assert.ok(full, 'its conmon was started');
  assert.equal(r.monitors.take(), undefined, 'not ready while nobody reads the FIFO');
  r.open(full);
  await settle();
  const warm = r.monitors.take();
  assert.equal(warm?.id, full, 'ready once read');
  assert.equal(r.reads(full), 'waiting', 'its runc waits for a spec');
  writeSpec(warm!, Buffer.from('{"ociVersion":"1.0.2"}'));
  assert.equal(r.reads(full), '{"ociVersion":"1.0.2"}');
  assert.equal(r.reads(full), 'eof', 'and then the end of it');
  await r.monitors.remove();
  r.done();
});

test('a monitor let go, released or removed gives its runc an end of file', async () => {
  const r = rig();
  await r.monitors.start();
  await settle();
  // Let go by a removal before its container started.
  const forgotten = r.monitors.take()!;
  assert.equal(r.reads(forgotten.id), 'waiting');
  r.monitors.forget(forgotten.id);
  assert.equal(r.reads(forgotten.id), 'eof');
  await settle();
  // Taken and not started when the runtime closes: this process will not write its spec.
  const taken = r.monitors.take()!;
  await settle();
  const ready = [...r.reports.keys()].find((id) => id !== forgotten.id && id !== taken.id)!;
  assert.equal(r.reads(ready), 'waiting');
  await r.monitors.remove();
  assert.equal(r.reads(taken.id), 'eof', 'the taken one');
  assert.equal(r.reads(ready), 'eof', 'the ready one');
  assert.equal(r.monitors.handOver(taken.id), undefined, 'its container starts afresh');
  assert.ok(r.events.includes(`remove ${ready.slice(0, 4)}`), 'the ready one is removed');
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

test('a conmon that cannot start is tried again after a pause, not at once', async () => {
  const r = rig({ fails: true });
  await r.monitors.start();
  await settle(400);
  assert.equal(r.events.filter((e) => e.startsWith('start')).length, 1, r.events.join(', '));
  assert.ok(
    r.events.some((e) => e.startsWith('remove')),
    'its directories go',
  );
  assert.equal(r.monitors.take(), undefined);
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
    const r = rig({ claimedIds: [...claims] });
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
