import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Starts } from './idle-refill.js';

const settle = (ms = 60) => new Promise((r) => setTimeout(r, ms));

/** A refill whose making is counted and, when `hold` is set, ends only when told. */
function rig(starts = new Starts(), opts: { failing?: boolean } = {}) {
  let made = 0;
  let ready = false;
  let finish: (() => void) | undefined;
  let gate = false;
  const refill = starts.refill(
    async () => {
      made++;
      if (gate) await new Promise<void>((resolve) => (finish = resolve));
      if (opts.failing) refill.retry();
      else ready = true;
    },
    () => ready,
  );
  return {
    refill,
    made: () => made,
    take: () => ((ready = false), refill.want()),
    gate: () => (gate = true),
    finish: () => finish?.(),
  };
}

test('a refill is made once the runtime is idle, and not while a start runs', async () => {
  const starts = new Starts();
  const r = rig(starts);
  let end!: () => void;
  const start = starts.busy(() => new Promise<void>((resolve) => (end = resolve)));
  r.refill.want();
  await settle();
  assert.equal(r.made(), 0, 'nothing is made while a start runs');
  end();
  await start;
  await settle();
  assert.equal(r.made(), 1, 'made once the start is over');
  r.refill.want();
  await settle();
  assert.equal(r.made(), 1, 'one that is ready is not made again');
  r.take();
  await settle();
  assert.equal(r.made(), 2, 'a taken one is replaced');
});

test('one set of starts holds every refill', async () => {
  const starts = new Starts();
  const a = rig(starts);
  const b = rig(starts);
  await starts.busy(async () => {
    a.refill.want();
    b.refill.want();
    await settle();
    assert.deepEqual([a.made(), b.made()], [0, 0]);
  });
  await settle();
  assert.deepEqual([a.made(), b.made()], [1, 1]);
});

test('a failed making waits for the retry delay, or for a start to come and go', async () => {
  const starts = new Starts();
  const r = rig(starts, { failing: true });
  r.refill.want();
  await settle();
  assert.equal(r.made(), 1);
  await settle(100);
  assert.equal(r.made(), 1, 'not tried again at once');
  await starts.busy(async () => undefined);
  await settle();
  assert.equal(r.made(), 2, 'tried again once a start ended');
  await r.refill.stop();
});

test('a cleanup in flight holds the next making; stop waits for it and makes no more', async () => {
  const r = rig();
  let cleaned!: () => void;
  r.refill.want();
  r.refill.track(new Promise<void>((resolve) => (cleaned = resolve)));
  await settle();
  assert.equal(r.made(), 0, 'the cleanup goes first');
  cleaned();
  await settle();
  assert.equal(r.made(), 1, 'made after the cleanup');

  r.gate();
  r.take();
  await settle();
  assert.equal(r.made(), 2, 'a making in flight');
  let stopped = false;
  const stop = r.refill.stop().then(() => (stopped = true));
  await settle();
  assert.equal(stopped, false, 'stop waits for the making in flight');
  assert.equal(r.refill.stopped, true, 'the making can see the stop');
  r.finish();
  await stop;
  r.take();
  await settle();
  assert.equal(r.made(), 2, 'nothing is made after stop');
});
