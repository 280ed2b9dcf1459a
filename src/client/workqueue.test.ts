import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runEachKey, WorkQueue } from './workqueue.js';

test('a waiting key is not queued twice', async () => {
  const q = new WorkQueue();
  q.add('a');
  q.add('a');
  q.add('b');
  assert.equal(q.length, 2);
  assert.equal(await q.get(), 'a');
  assert.equal(await q.get(), 'b');
});

test('a key added while processing comes back once it is done, never concurrently', async () => {
  const q = new WorkQueue();
  q.add('a');
  const key = await q.get();
  q.add('a');
  assert.equal(q.length, 0, 'not handed out while processing');
  q.done(key!);
  assert.equal(q.length, 1);
  assert.equal(await q.get(), 'a');
});

test('rate limited re-adds back off exponentially and forget resets', async () => {
  const q = new WorkQueue(10, 1000);
  q.addRateLimited('a');
  q.addRateLimited('a');
  assert.equal(q.numRequeues('a'), 2);
  const started = Date.now();
  assert.equal(await q.get(), 'a');
  assert.ok(Date.now() - started >= 5);
  q.forget('a');
  assert.equal(q.numRequeues('a'), 0);
  q.shutDown();
  assert.equal(await q.get(), undefined);
});

test('of two delays for one key the sooner wins', async () => {
  const q = new WorkQueue();
  q.addAfter('a', 60_000);
  q.addAfter('a', 10);
  const started = Date.now();
  assert.equal(await q.get(), 'a');
  assert.ok(Date.now() - started < 1000);
  q.shutDown();
});

test('a delay past what a timer holds (about 24.8 days) is not cut to a millisecond', async () => {
  const q = new WorkQueue();
  // A CronJob's next run a month away, say: Node fires a longer timer at once.
  q.addAfter('a', 30 * 24 * 3600 * 1000);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(q.length, 0, 'the key is not due yet');
  q.shutDown();
});

test('a consumer of a full queue lets the event loop run between its keys', async () => {
  const cases = [
    { name: 'synchronous work of 2 ms per key', workMs: 2, keys: 200, maxWaitMs: 150 },
    { name: 'no work', workMs: 0, keys: 10_000, maxWaitMs: 150 },
  ];
  for (const c of cases) {
    const q = new WorkQueue();
    for (let i = 0; i < c.keys; i++) q.add(`k${i}`);
    const started = performance.now();
    let ioAt: number | undefined;
    setImmediate(() => (ioAt = performance.now() - started));
    for (let i = 0; i < c.keys; i++) {
      const key = (await q.get())!;
      const until = performance.now() + c.workMs;
      while (performance.now() < until);
      q.done(key);
    }
    assert.ok(ioAt !== undefined, `${c.name}: the event loop ran before the queue drained`);
    assert.ok(ioAt < c.maxWaitMs, `${c.name}: it waited ${ioAt} ms`);
  }
});

test('runEachKey: slow keys do not hold up others, and one key never runs twice at once', async () => {
  const q = new WorkQueue(1, 10);
  const release: (() => void)[] = [];
  const running = new Map<string, number>();
  const seen: string[] = [];
  let failedOnce = false;
  let overlapped = false;
  const done = runEachKey(
    q,
    async (key) => {
      running.set(key, (running.get(key) ?? 0) + 1);
      if (running.get(key)! > 1) overlapped = true;
      seen.push(key);
      try {
        if (key.startsWith('slow')) await new Promise<void>((r) => release.push(r));
        if (key === 'flaky' && !failedOnce) {
          failedOnce = true;
          throw new Error('first try fails');
        }
      } finally {
        running.set(key, running.get(key)! - 1);
      }
    },
    () => undefined,
  );
  for (let i = 0; i < 10; i++) q.add(`slow${i}`);
  q.add('fast');
  q.add('flaky');
  q.add('slow0');
  const until = async (what: () => boolean) => {
    while (!what()) await new Promise((r) => setTimeout(r, 1));
  };
  await until(() => seen.filter((k) => k === 'flaky').length === 2);
  assert.ok(seen.includes('fast'), 'a quick key ran while ten slow ones waited');
  assert.equal(seen.filter((k) => k === 'slow0').length, 1, 'slow0 waits for its first run');
  for (const r of release.splice(0)) r();
  await until(() => seen.filter((k) => k === 'slow0').length === 2);
  for (const r of release.splice(0)) r();
  q.shutDown();
  await done;
  assert.equal(overlapped, false, 'a key was reconciled twice at once');
});
