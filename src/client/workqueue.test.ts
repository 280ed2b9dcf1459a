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
