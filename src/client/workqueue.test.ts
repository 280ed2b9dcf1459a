import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from './workqueue.js';

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
