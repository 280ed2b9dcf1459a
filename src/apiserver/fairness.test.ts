import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.js';
import { FairDispatcher } from './fairness.js';

/** A task that runs until released, recording the order tasks started in. */
function gate(started: string[], name: string) {
  let open!: () => void;
  const done = new Promise<void>((r) => (open = r));
  return { fn: async () => (started.push(name), done), open };
}

test('at most `limit` run; a waiting flow gets the next slot before a flooding one', async () => {
  const d = new FairDispatcher({ limit: 2 });
  const started: string[] = [];
  const a = Array.from({ length: 5 }, (_, i) => gate(started, `a${i}`));
  const b = gate(started, 'b0');
  const runs = a.map((g) => d.run('controller', g.fn));
  await new Promise((r) => setImmediate(r));
  const late = d.run('kubectl', b.fn);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, ['a0', 'a1']);
  assert.deepEqual(d.load, { running: 2, waiting: 4 });

  a[0].open();
  await new Promise((r) => setImmediate(r));
  // The controller's three waiting writes queued first, but kubectl's turn comes first.
  assert.deepEqual(started, ['a0', 'a1', 'b0']);
  b.open();
  await late;
  for (const g of a) g.open();
  await Promise.all(runs);
  assert.deepEqual(started, ['a0', 'a1', 'b0', 'a2', 'a3', 'a4']);
  assert.deepEqual(d.load, { running: 0, waiting: 0 });
});

test('a full queue is refused with 429, and a failing task frees its slot', async () => {
  const d = new FairDispatcher({ limit: 1, queueLength: 2 });
  const started: string[] = [];
  const first = gate(started, 'x0');
  const running = d.run('f', first.fn);
  const queued = [d.run('f', async () => 1), d.run('f', async () => 2)];
  await assert.rejects(
    d.run('f', async () => 3),
    (err: unknown) =>
      err instanceof ApiError && err.code === 429 && err.details?.retryAfterSeconds === 1,
  );
  first.open();
  await running;
  assert.deepEqual(await Promise.all(queued), [1, 2]);

  await assert.rejects(
    d.run('g', async () => {
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(await d.run('g', async () => 'after'), 'after');
  assert.deepEqual(d.load, { running: 0, waiting: 0 });
});
