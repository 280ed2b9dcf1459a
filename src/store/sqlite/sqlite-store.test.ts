import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { record, settle, sleep, waitFor } from '../contract-helpers.js';
import { storeContractSuite } from '../contract.js';
import { compactOnce, startCompactor } from '../compactor.js';
import type { StoreError, Watch } from '../store.js';
import { SqliteStore } from './sqlite-store.js';
import { prefixEnd } from './keys.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-store-'));
  dirs.push(dir);
  return join(dir, 'store.db');
}

// Small pages make the replay of the contract's race test span many turns.
storeContractSuite('sqlite in memory, small watch pages', async () =>
  SqliteStore.open(':memory:', { watchPageSize: 16, compactChunkRows: 3 }),
);
storeContractSuite('sqlite file', async () => SqliteStore.open(tempFile()));

describe('SqliteStore', () => {
  test('data, revisions and compaction survive a reopen', async () => {
    const path = tempFile();
    const first = SqliteStore.open(path);
    await first.create('/k/a', 'a1');
    const b = await first.create('/k/b', 'b1');
    await first.update('/k/a', 'a2');
    await first.delete('/k/b');
    const deletedAt = await first.currentRevision();
    await first.compact(deletedAt);
    await first.close();

    const second = SqliteStore.open(path);
    try {
      assert.equal(await second.currentRevision(), deletedAt);
      assert.equal(await second.compactedRevision(), deletedAt);
      assert.deepEqual((await second.get('/k/a'))?.value, 'a2');
      const next = await second.create('/k/c', 'c1');
      assert.equal(next.modRevision, deletedAt + 1);

      const replay = record(second, '/k/', deletedAt - 1);
      await replay.until(2);
      assert.deepEqual(
        replay.events.map((event) => [event.type, event.kv.key, event.prev?.value]),
        [
          ['DELETED', '/k/b', 'b1'],
          ['ADDED', '/k/c', undefined],
        ],
      );
      assert.equal(replay.events[0]!.prev?.modRevision, b.modRevision);
      replay.watch.cancel();
    } finally {
      await second.close();
    }
  });

  test('writes of one turn share a commit; a failed one does not undo the others', async () => {
    const store = SqliteStore.open(':memory:');
    try {
      await store.create('/k/taken', 'v');
      const start = await store.currentRevision();
      const rec = record(store, '/k/', start);
      const cases: { name: string; write: Promise<unknown>; code?: string; rev?: number }[] = [
        { name: 'create a', write: store.create('/k/a', 'a'), rev: start + 1 },
        { name: 'create taken', write: store.create('/k/taken', 'x'), code: 'AlreadyExists' },
        { name: 'stale update', write: store.update('/k/taken', 'y', 999), code: 'Conflict' },
        { name: 'delete absent', write: store.delete('/k/none'), code: 'NotFound' },
        { name: 'update taken', write: store.update('/k/taken', 'z'), rev: start + 2 },
        { name: 'create b', write: store.create('/k/b', 'b'), rev: start + 3 },
      ];
      for (const c of cases) {
        const outcome = await c.write.then(
          (value) => value,
          (err: unknown) => err,
        );
        if (c.code) assert.equal((outcome as StoreError).code, c.code, c.name);
        else assert.equal((outcome as { modRevision: number }).modRevision, c.rev, c.name);
      }
      assert.equal(await store.currentRevision(), start + 3);
      await rec.until(3);
      assert.deepEqual(
        rec.events.map((e) => [e.type, e.kv.key, e.revision]),
        [
          ['ADDED', '/k/a', start + 1],
          ['MODIFIED', '/k/taken', start + 2],
          ['ADDED', '/k/b', start + 3],
        ],
      );
      assert.equal((await store.get('/k/taken'))?.value, 'z');
      rec.watch.cancel();
    } finally {
      await store.close();
    }
  });

  test('a live watcher has the event of a lone write before the writer goes on', async () => {
    const store = SqliteStore.open(':memory:');
    try {
      const rec = record(store, '/k/', await store.currentRevision());
      // The first write after the watch starts is read from history (a turn of its own).
      await store.create('/k/first', 'v');
      await rec.until(1);
      const written = await store.create('/k/a', 'a');
      assert.deepEqual(
        rec.events.map((e) => e.revision),
        [written.modRevision - 1, written.modRevision],
      );
      // A handler that writes: its write is committed in a later turn, and its watcher
      // hears of it then.
      const second = store.watch('/k/', written.modRevision, {
        onEvent: (e) => {
          if (e.kv.key === '/k/b') void store.create('/k/c', 'c');
        },
      });
      await sleep(20);
      await store.create('/k/b', 'b');
      assert.equal(rec.events.at(-1)?.kv.key, '/k/b');
      await rec.until(4);
      assert.equal(rec.events.at(-1)?.kv.key, '/k/c');
      // Writes of one turn share a commit, whose events wait for the next turn.
      const batch = await Promise.all([store.create('/k/d', 'd'), store.create('/k/e', 'e')]);
      assert.equal(rec.events.length, 4, 'not yet');
      await rec.until(6);
      assert.deepEqual(
        rec.events.slice(4).map((e) => e.revision),
        batch.map((kv) => kv.modRevision),
      );
      second.cancel();
      rec.watch.cancel();
    } finally {
      await store.close();
    }
  });

  test('writes, watches and cancels from handlers: every revision once, in order', async () => {
    const store = SqliteStore.open(':memory:', { watchPageSize: 4 });
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const WRITES = 600;
    let writes = 0;
    let delivered = 0;
    const watches: { after: number; seen: number[]; watch: Watch; heardAtCancel?: number }[] = [];
    const start = (after: number) => {
      const seen: number[] = [];
      const watch = store.watch('/k/', after, {
        onEvent: (e) => {
          seen.push(e.revision);
          // Writes, watches from a revision that may be in the batch being delivered,
          // cancellations of a watch (this one too, at times) and faults, all from handlers.
          if (writes < WRITES && random() < 0.6) void store.create(`/k/h${++writes}`, 'v');
          if (watches.length < 20 && random() < 0.05) {
            start(Math.max(0, e.revision - Math.floor(random() * 4)));
          }
          // The first watch stays, to keep the moves coming.
          if (watches.length > 1 && random() < 0.02) {
            const other = watches[1 + Math.floor(random() * (watches.length - 1))]!;
            other.watch.cancel();
            other.heardAtCancel ??= other.seen.length;
          }
          if (++delivered % 997 === 0) throw new Error('a handler fault');
        },
      });
      watches.push({ after, seen, watch });
    };
    try {
      start(0);
      while (writes < WRITES) await store.create(`/k/m${++writes}`, 'v');
      // No handler writes any more; those queued commit in the next turn.
      await sleep(20);
      const last = await store.currentRevision();
      await waitFor(
        () =>
          watches.every(
            (w) => w.heardAtCancel !== undefined || (w.seen.at(-1) ?? w.after) === last,
          ),
        5000,
        () => `every watch at revision ${last}`,
      );
      for (const [i, w] of watches.entries()) {
        const want = Array.from({ length: w.seen.length }, (_, n) => w.after + 1 + n);
        assert.deepEqual(w.seen, want, `watch ${i} from ${w.after}`);
        if (w.heardAtCancel === undefined) {
          assert.equal(w.seen.at(-1) ?? w.after, last, `watch ${i} is complete`);
        } else {
          assert.equal(w.seen.length, w.heardAtCancel, `watch ${i} hears nothing once cancelled`);
        }
      }
      const cancelled = watches.filter((w) => w.heardAtCancel !== undefined).length;
      assert.ok(watches.length > 5 && cancelled > 0, 'the test did its moves');
    } finally {
      for (const w of watches) w.watch.cancel();
      await store.close();
    }
  });

  test('close commits the writes still queued', async () => {
    const path = tempFile();
    const store = SqliteStore.open(path);
    const write = store.create('/k/late', 'v');
    await store.close();
    assert.equal((await write).modRevision, 1);
    const reopened = SqliteStore.open(path);
    assert.equal((await reopened.get('/k/late'))?.value, 'v');
    await reopened.close();
  });

  test('the file is in WAL mode', async () => {
    const path = tempFile();
    const store = SqliteStore.open(path);
    await store.create('/k', 'v');
    const probe = new Database(path, { readonly: true });
    try {
      assert.equal(probe.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      probe.close();
      await store.close();
    }
  });

  test('compaction removes superseded history from the log', async () => {
    const path = tempFile();
    const store = SqliteStore.open(path, { compactChunkRows: 7 });
    await store.create('/gone', 'x');
    await store.delete('/gone');
    await store.create('/k', 'v0');
    for (let i = 1; i < 100; i++) await store.update('/k', `v${i}`);
    const target = await compactOnce(store, 10);
    assert.equal(target, (await store.currentRevision()) - 10);

    const probe = new Database(path, { readonly: true });
    try {
      const rows = probe.prepare('SELECT revision FROM log ORDER BY revision').pluck().all();
      // The newest write of /k before the target, then everything from the target on.
      const current = await store.currentRevision();
      const kept = [target! - 1];
      for (let r = target!; r <= current; r++) kept.push(r);
      assert.deepEqual(rows, kept);
    } finally {
      probe.close();
      await store.close();
    }
  });

  test('a watch replaying from before a compaction ends with Compacted', async () => {
    const store = SqliteStore.open(':memory:', { watchPageSize: 2 });
    for (let i = 0; i < 20; i++) await store.create(`/k/${i}`, 'v');
    const slow = record(store, '/k/', 0);
    await store.compact(15);
    const err = await slow.untilError();
    assert.equal((err as { code?: string }).code, 'Compacted');
    assert.ok(slow.events.length < 15);
    await settle();
    await store.close();
  });

  test('startCompactor keeps the latest revisions and stops', async () => {
    const store = SqliteStore.open(':memory:');
    const stop = startCompactor(store, { keepRevisions: 5, intervalMs: 5 });
    try {
      for (let i = 0; i < 20; i++) await store.create(`/k/${i}`, 'v');
      const deadline = Date.now() + 2000;
      while ((await store.compactedRevision()) !== 15) {
        assert.ok(Date.now() < deadline, 'the compactor did not compact to 15');
        await sleep(5);
      }
      stop();
      await store.create('/k/late', 'v');
      await settle();
      assert.equal(await store.compactedRevision(), 15, 'no compaction after stop');
    } finally {
      await store.close();
    }
  });

  test('prefixEnd bounds exactly the keys with the prefix', () => {
    const cases: Array<[string, string | undefined]> = [
      ['/a/', '/a0'],
      ['', undefined],
      ['a\u{10ffff}', 'b'],
      ['\u{10ffff}', undefined],
      ['x\ud7ff', 'x\ue000'],
    ];
    for (const [prefix, end] of cases) assert.equal(prefixEnd(prefix), end, prefix);
  });
});

test('the store file and its WAL are readable by their owner only, whatever the umask', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-sqlite-mode-'));
  const old = process.umask(0o022);
  try {
    chmodSync(dir, 0o755);
    const fresh = join(dir, 'fresh.db');
    const store = SqliteStore.open(fresh);
    await store.create('/k/secret', 'value');
    for (const file of [fresh, `${fresh}-wal`, `${fresh}-shm`]) {
      assert.equal(statSync(file).mode & 0o777, 0o600, file);
    }
    await store.close();
    // A store an earlier version left readable by all is made private when opened.
    const older = join(dir, 'older.db');
    new Database(older).close();
    chmodSync(older, 0o644);
    const reopened = SqliteStore.open(older);
    assert.equal(statSync(older).mode & 0o777, 0o600);
    await reopened.close();
  } finally {
    process.umask(old);
    rmSync(dir, { recursive: true, force: true });
  }
});
