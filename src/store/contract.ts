import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isDeepStrictEqual as isDeepEqual } from 'node:util';
import {
  keysOf,
  record,
  rejectsWith,
  settle,
  until,
  throwsWith,
  watchIsCompacted,
  yieldTurn,
} from './contract-helpers.js';
import type { KeyValue, ListResult, Store, WatchEvent } from './store.js';

/**
 * The behaviour every Store backend must show, as a node:test suite. A backend's test
 * file calls it once per configuration; `open` must return a fresh, empty store each time
 * (every test closes the store it opened). Nothing here knows which backend runs.
 *
 * Where the contract leaves a choice, the suite asks for what etcd does: compact(R) keeps
 * the state at R and the events from R on, so list at R and watch from R - 1 still work.
 */
export function storeContractSuite(name: string, open: () => Promise<Store>): void {
  const withStore = (fn: (store: Store) => Promise<void>) => async () => {
    const store = await open();
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  };

  describe(`Store contract: ${name}`, () => {
    describe('revisions and writes', () => writeTests(withStore));
    describe('list', () => listTests(withStore));
    describe('watch', () => watchTests(withStore));
    describe('compaction and close', () => lifecycleTests(withStore, open));
  });
}

type WithStore = (fn: (store: Store) => Promise<void>) => () => Promise<void>;

function writeTests(withStore: WithStore): void {
  test(
    'an empty store is at revision 0',
    withStore(async (store) => {
      assert.equal(await store.currentRevision(), 0);
      assert.equal(await store.compactedRevision(), 0);
      assert.deepEqual(await store.list(''), { items: [], revision: 0 });
    }),
  );

  test(
    'every write takes a new, higher revision across keys',
    withStore(async (store) => {
      const writes: Array<() => Promise<unknown>> = [
        () => store.create('/a/1', 'a1'),
        () => store.create('/b/1', 'b1'),
        () => store.update('/a/1', 'a1.2'),
        () => store.delete('/b/1'),
        () => store.create('/b/1', 'b1 again'),
      ];
      let last = await store.currentRevision();
      for (const write of writes) {
        await write();
        const revision = await store.currentRevision();
        assert.ok(revision > last, `revision ${revision} after ${last}`);
        last = revision;
      }
      const recreated = await store.get('/b/1');
      assert.equal(recreated?.modRevision, last);
      assert.equal(recreated?.createRevision, last, 'a recreated key starts a new life');
    }),
  );

  test(
    'create refuses an existing key and changes nothing',
    withStore(async (store) => {
      const kv = await store.create('/k', 'v1');
      const revision = await store.currentRevision();
      assert.deepEqual(kv, {
        key: '/k',
        value: 'v1',
        createRevision: revision,
        modRevision: revision,
      });
      await rejectsWith(store.create('/k', 'v2'), 'AlreadyExists');
      assert.equal(await store.currentRevision(), kv.modRevision);
      assert.deepEqual(await store.get('/k'), kv);
    }),
  );

  test(
    'get returns the current value, or undefined',
    withStore(async (store) => {
      assert.equal(await store.get('/missing'), undefined);
      const created = await store.create('/k', 'v1');
      assert.deepEqual(await store.get('/k'), created);
      const updated = await store.update('/k', 'v2');
      assert.deepEqual(await store.get('/k'), updated);
      assert.equal(updated.createRevision, created.createRevision);
      assert.ok(updated.modRevision > created.modRevision);
    }),
  );

  test(
    'update swaps only when the expected modRevision matches',
    withStore(async (store) => {
      const v1 = await store.create('/k', 'v1');
      const v2 = await store.update('/k', 'v2', v1.modRevision);
      assert.deepEqual(v2.value, 'v2');

      const before = await store.currentRevision();
      await rejectsWith(store.update('/k', 'stale', v1.modRevision), 'Conflict');
      assert.equal(await store.currentRevision(), before, 'a refused write takes no revision');
      assert.deepEqual(await store.get('/k'), v2);

      const v3 = await store.update('/k', 'v3');
      assert.equal(v3.value, 'v3', 'without an expected revision the update is unconditional');
      await rejectsWith(store.update('/missing', 'x'), 'NotFound');
      await rejectsWith(store.update('/missing', 'x', v3.modRevision), 'NotFound');
    }),
  );

  test(
    'delete returns the last value, honours the expected revision, and takes a revision',
    withStore(async (store) => {
      const v1 = await store.create('/k', 'v1');
      const v2 = await store.update('/k', 'v2');
      await rejectsWith(store.delete('/k', v1.modRevision), 'Conflict');
      assert.deepEqual(await store.get('/k'), v2);

      assert.deepEqual(await store.delete('/k', v2.modRevision), v2);
      assert.ok((await store.currentRevision()) > v2.modRevision);
      assert.equal(await store.get('/k'), undefined);
      await rejectsWith(store.delete('/k'), 'NotFound');
      await rejectsWith(store.delete('/never'), 'NotFound');

      const again = await store.create('/k', 'v3');
      assert.equal(again.createRevision, again.modRevision);
    }),
  );
}

function listTests(withStore: WithStore): void {
  test(
    'list orders by key and matches the prefix exactly',
    withStore(async (store) => {
      for (const key of ['/a/y', '/ab/x', '/a/x', '/a', '/a/b/c', '/b/a', '/a0', '/']) {
        await store.create(key, `value of ${key}`);
      }
      const cases: Array<[string, string[]]> = [
        ['/a/', ['/a/b/c', '/a/x', '/a/y']],
        ['/a', ['/a', '/a/b/c', '/a/x', '/a/y', '/a0', '/ab/x']],
        ['/ab/', ['/ab/x']],
        ['/c/', []],
        ['', ['/', '/a', '/a/b/c', '/a/x', '/a/y', '/a0', '/ab/x', '/b/a']],
      ];
      for (const [prefix, keys] of cases) {
        const result = await store.list(prefix);
        assert.deepEqual(keysOf(result.items), keys, `prefix ${JSON.stringify(prefix)}`);
        assert.equal(result.revision, await store.currentRevision());
      }
      const [first] = (await store.list('/a/x')).items;
      assert.deepEqual(first, await store.get('/a/x'));
    }),
  );

  test(
    'list pages with limit and startAfter at one revision',
    withStore(async (store) => {
      const keys = Array.from({ length: 25 }, (_, i) => `/p/k${String(i).padStart(2, '0')}`);
      for (const key of keys) await store.create(key, key);
      await store.create('/q/k00', 'other prefix');

      const first = await store.list('/p/', { limit: 10 });
      assert.deepEqual(keysOf(first.items), keys.slice(0, 10));
      // Changes after the first page must not show in the pages read at its revision.
      await store.create('/p/k05a', 'late');
      await store.delete('/p/k20');

      const seen = await pageAll(store, '/p/', first, 10);
      assert.deepEqual(seen, keys);

      const fromBefore = await store.list('/p/', { startAfter: '/a', limit: 2 });
      assert.deepEqual(keysOf(fromBefore.items), ['/p/k00', '/p/k01']);
      const pastEnd = await store.list('/p/', { startAfter: '/p/zz' });
      assert.deepEqual(pastEnd.items, []);
    }),
  );

  test(
    'list at a past revision shows the keys as they were',
    withStore(async (store) => {
      const snapshots = await writeHistory(store, '/s/');
      for (const [revision, snapshot] of snapshots) {
        const result = await store.list('/s/', { revision });
        assert.deepEqual(result, { items: snapshot, revision }, `at revision ${revision}`);
      }
      const [revision, snapshot] = snapshots[5]!;
      const paged = await pageAll(store, '/s/', await store.list('/s/', { revision, limit: 1 }), 1);
      assert.deepEqual(paged, keysOf(snapshot));
    }),
  );
}

/** Reads the remaining pages after `first` at its revision; returns every key seen. */
async function pageAll(
  store: Store,
  prefix: string,
  first: ListResult,
  limit: number,
): Promise<string[]> {
  const seen = keysOf(first.items);
  let page = first;
  while (page.items.length === limit) {
    const startAfter = page.items.at(-1)!.key;
    page = await store.list(prefix, { revision: first.revision, limit, startAfter });
    assert.equal(page.revision, first.revision);
    seen.push(...keysOf(page.items));
  }
  return seen;
}

/**
 * Writes creates, updates, deletes and re-creates under `prefix` (and noise beside it),
 * returning the list of `prefix` as it was after each write.
 */
async function writeHistory(store: Store, prefix: string): Promise<Array<[number, KeyValue[]]>> {
  const steps: Array<() => Promise<unknown>> = [];
  for (const name of ['a', 'b', 'c', 'd']) steps.push(() => store.create(prefix + name, '1'));
  steps.push(() => store.update(prefix + 'b', '2'));
  steps.push(() => store.create(`${prefix.slice(0, -1)}x/noise`, 'noise'));
  steps.push(() => store.delete(prefix + 'a'));
  steps.push(() => store.update(prefix + 'c', '2'));
  steps.push(() => store.create(prefix + 'a', 'again'));
  steps.push(() => store.delete(prefix + 'd'));
  steps.push(() => store.update(prefix + 'b', '3'));
  steps.push(() => store.create(prefix + 'e', '1'));

  const snapshots: Array<[number, KeyValue[]]> = [[0, []]];
  for (const step of steps) {
    await step();
    const { items, revision } = await store.list(prefix);
    snapshots.push([revision, items]);
  }
  return snapshots;
}

function watchTests(withStore: WithStore): void {
  test(
    'watch replays the changes after a revision, then stops at the prefix',
    withStore(async (store) => {
      const a1 = await store.create('/w/a', 'a1');
      const a2 = await store.update('/w/a', 'a2');
      await store.create('/wx/noise', 'not under /w/');
      const b1 = await store.create('/w/b', 'b1');
      await store.delete('/w/a');
      const deleted = await store.currentRevision();

      const recorder = record(store, '/w/', a1.modRevision);
      await recorder.until(3);
      await settle();
      assert.deepEqual(recorder.events, [
        { type: 'MODIFIED', revision: a2.modRevision, kv: a2, prev: a1 },
        { type: 'ADDED', revision: b1.modRevision, kv: b1 },
        {
          type: 'DELETED',
          revision: deleted,
          kv: { ...a2, modRevision: deleted },
          prev: a2,
        },
      ]);
      recorder.watch.cancel();
    }),
  );

  test(
    'watch delivers live changes in order',
    withStore(async (store) => {
      await store.create('/other', 'x');
      const recorder = record(store, '/live/', await store.currentRevision());
      await settle(); // past any replay, so what follows is delivered live
      const k1 = await store.create('/live/k', '1');
      const k2 = await store.update('/live/k', '2');
      await store.create('/lives/not-me', 'x');
      await store.delete('/live/k');
      await recorder.until(3);
      await settle();
      const types = recorder.events.map((event) => event.type);
      assert.deepEqual(types, ['ADDED', 'MODIFIED', 'DELETED']);
      assert.deepEqual(recorder.events[0]!.kv, k1);
      assert.deepEqual(recorder.events[1], {
        type: 'MODIFIED',
        revision: k2.modRevision,
        kv: k2,
        prev: k1,
      });
      assert.equal(recorder.events[2]!.revision, await store.currentRevision());
      recorder.watch.cancel();
    }),
  );

  test(
    'the DELETED event carries the last value at the delete revision, live and replayed',
    withStore(async (store) => {
      const created = await store.create('/d/k', 'v1');
      const last = await store.update('/d/k', 'v2');
      const live = record(store, '/d/', last.modRevision);
      await settle();
      await store.delete('/d/k', last.modRevision);
      const revision = await store.currentRevision();
      const replayed = record(store, '/d/', last.modRevision);
      await live.until(1);
      await replayed.until(1);

      const expected: WatchEvent = {
        type: 'DELETED',
        revision,
        kv: {
          key: '/d/k',
          value: 'v2',
          createRevision: created.createRevision,
          modRevision: revision,
        },
        prev: last,
      };
      assert.deepEqual(live.events, [expected]);
      assert.deepEqual(replayed.events, [expected]);
      live.watch.cancel();
      replayed.watch.cancel();
    }),
  );

  test(
    'watch delivers each event exactly once and in order while writes race the replay',
    withStore(async (store) => raceReplay(store)),
  );

  test(
    'cancel stops delivery at once, also from inside a handler',
    withStore(async (store) => {
      const cancelled = record(store, '/c/', 0);
      await store.create('/c/1', 'x');
      cancelled.watch.cancel();
      await store.create('/c/2', 'x');

      const events: WatchEvent[] = [];
      const watch = store.watch('/c/', await store.currentRevision(), {
        onEvent: (event) => {
          events.push(event);
          watch.cancel();
        },
      });
      // Concurrent writes: a backend may order them either way, so the first by revision wins.
      const [three, four] = await Promise.all([
        store.create('/c/3', 'x'),
        store.create('/c/4', 'x'),
      ]);
      const first = three.modRevision < four.modRevision ? '/c/3' : '/c/4';
      // Wait for the first delivery, then give a second one every chance to (wrongly) follow.
      await until(() => events.length > 0);
      await settle();
      // /c/1 may or may not have arrived before cancel(); nothing written after it may.
      const afterCancel = cancelled.events.filter((event) => event.kv.key !== '/c/1');
      assert.deepEqual(afterCancel, []);
      assert.deepEqual(cancelled.errors, [], 'cancel is not an error');
      assert.deepEqual(keysOf(events.map((event) => event.kv)), [first]);
    }),
  );

  test(
    'a throwing handler breaks neither other watches nor the store',
    withStore(async (store) => {
      let thrown = 0;
      store.watch('/t/', 0, {
        onEvent: () => {
          thrown++;
          throw new Error('handler fault (expected by the test)');
        },
      });
      const healthy = record(store, '/t/', 0);
      for (const name of ['a', 'b', 'c']) await store.create(`/t/${name}`, name);
      await healthy.until(3);
      await settle();
      assert.equal(thrown, 3, 'the faulty watch keeps receiving events');
      assert.equal(healthy.events.length, 3);
      await store.create('/t/d', 'd');
      await healthy.until(4);
    }),
  );
}

/**
 * Watches that start in the past while writes keep coming, from several starting points,
 * must each see exactly the writes after their start, in order, with replayed events equal
 * to the ones delivered live.
 */
async function raceReplay(store: Store): Promise<void> {
  const reference = record(store, '/race/', 0);
  await settle(); // the reference watch is live before the first write
  const written: number[] = [];
  const write = async (i: number) => {
    const key = `/race/k${i % 37}`;
    const kv = i < 37 ? await store.create(key, `v${i}`) : await store.update(key, `v${i}`);
    written.push(kv.modRevision);
    if (i % 5 === 0) await store.create(`/racer/noise${i}`, 'x');
  };
  for (let i = 0; i < 500; i++) await write(i);

  const starts = [0, written[100]!, written[400]!, written[499]!];
  const watchers = starts.map((after) => ({ after, recorder: record(store, '/race/', after) }));
  for (let i = 500; i < 1000; i++) {
    await write(i);
    if (i % 3 === 0) await yieldTurn();
  }
  await Promise.all(Array.from({ length: 100 }, (_, j) => write(1000 + j)));

  written.sort((a, b) => a - b);
  await reference.until(written.length);
  for (const { after, recorder } of watchers) {
    const expected = written.filter((revision) => revision > after);
    await recorder.until(expected.length);
    await settle();
    const revisions = recorder.events.map((event) => event.revision);
    assert.deepEqual(revisions, expected, `watch from ${after}`);
    const sameEvents = reference.events.filter((event) => event.revision > after);
    assert.deepEqual(recorder.events, sameEvents, `watch from ${after} matches live events`);
    recorder.watch.cancel();
  }
  reference.watch.cancel();
}

function lifecycleTests(withStore: WithStore, open: () => Promise<Store>): void {
  // The compact revision falls on a create, on a delete (tombstone), on an update, and
  // on the newest write.
  for (const step of [4, 7, 8, 12]) {
    test(
      `compaction at write ${step} keeps the state at and the events from that revision`,
      withStore(async (store) => compactAndResume(store, step)),
    );
  }

  test(
    'compaction at or below the compacted revision changes nothing; writes go on',
    withStore(async (store) => {
      await writeHistory(store, '/s/');
      const current = await store.currentRevision();
      await store.compact(current - 3);
      await store.compact(current - 5);
      assert.equal(await store.compactedRevision(), current - 3);
      const next = await store.create('/s/after', 'x');
      assert.ok(next.modRevision > current);
      await store.compact(next.modRevision);
      const listed = await store.list('/s/', { revision: next.modRevision });
      assert.equal(listed.items.length, 5);
    }),
  );

  test('close ends watches with Closed and refuses every call', async () => {
    const store = await open();
    await store.create('/k', 'v');
    const recorder = record(store, '/', 0);
    await recorder.until(1);
    await store.close();
    const err = await recorder.untilError();
    assert.equal((err as { code?: string }).code, 'Closed');
    await settle();
    assert.equal(recorder.errors.length, 1, 'onError is called once');

    await rejectsWith(store.get('/k'), 'Closed');
    await rejectsWith(store.list('/'), 'Closed');
    await rejectsWith(store.create('/k2', 'v'), 'Closed');
    await rejectsWith(store.update('/k', 'v'), 'Closed');
    await rejectsWith(store.delete('/k'), 'Closed');
    await rejectsWith(store.compact(1), 'Closed');
    await rejectsWith(store.currentRevision(), 'Closed');
    throwsWith(() => store.watch('/', 0, { onEvent: () => {} }), 'Closed');
    await store.close();
  });
}

/**
 * Writes a history, compacts at the revision of write `step`, and checks what is left:
 * lists from the compact revision on, watches from one before it, Compacted before that.
 */
async function compactAndResume(store: Store, step: number): Promise<void> {
  const all = record(store, '/s/', 0);
  const snapshots = await writeHistory(store, '/s/');
  const changes = snapshots.filter(
    (_, i) => i > 0 && !isDeepEqual(snapshots[i - 1]![1], snapshots[i]![1]),
  );
  await all.until(changes.length);
  const compactAt = snapshots[step]![0];

  await store.compact(compactAt);
  assert.equal(await store.compactedRevision(), compactAt);
  await rejectsWith(store.list('/s/', { revision: compactAt - 1 }), 'Compacted', compactAt);
  for (const [revision, snapshot] of snapshots.filter(([r]) => r >= compactAt)) {
    const result = await store.list('/s/', { revision });
    assert.deepEqual(result.items, snapshot, `list at ${revision} after compaction`);
  }

  await watchIsCompacted(store, '/s/', 0, compactAt);
  await watchIsCompacted(store, '/s/', compactAt - 2, compactAt);
  const resumed = record(store, '/s/', compactAt - 1);
  const expected = all.events.filter((event) => event.revision >= compactAt);
  await resumed.until(expected.length);
  await settle();
  assert.deepEqual(resumed.events, expected);
  assert.deepEqual(all.errors, [], 'a live watch survives compaction');
  resumed.watch.cancel();
  all.watch.cancel();
}
