import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../api/types.js';
import { EventQueue } from './event-queue.js';
import type { EventRecorder } from './events.js';

/** A recorder whose writes finish only when the test lets them, counting the concurrent. */
function slowRecorder() {
  const written: string[] = [];
  const waiting: (() => void)[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const recorder = {
    record: async (_obj: KObject, _type: string, _reason: string, message: string) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise<void>((resolve) => waiting.push(resolve));
      inFlight--;
      written.push(message);
    },
  } as unknown as EventRecorder;
  const release = async () => {
    while (waiting.length > 0) {
      for (const resolve of waiting.splice(0)) resolve();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { recorder, written, release, maxInFlight: () => maxInFlight };
}

const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', uid: 'u' } } as KObject;

test('every queued event is written, by at most `senders` at a time', async () => {
  const cases = [
    { senders: 1, events: 5 },
    { senders: 2, events: 9 },
    { senders: 4, events: 3 },
  ];
  for (const c of cases) {
    const { recorder, written, release, maxInFlight } = slowRecorder();
    const queue = new EventQueue(recorder, { senders: c.senders });
    const want = Array.from({ length: c.events }, (_, i) => `e${i}`);
    for (const message of want) queue.record(pod, 'Normal', 'R', message);
    const drained = queue.drain();
    await release();
    await drained;
    assert.deepEqual(written.slice().sort(), want.slice().sort(), `senders ${c.senders}`);
    assert.ok(maxInFlight() <= c.senders, `at most ${c.senders} in flight`);
    assert.equal(queue.pending, 0);
    assert.equal(queue.dropped, 0);
  }
});

test('a full queue drops new events and counts them; record never waits', async () => {
  const { recorder, written, release } = slowRecorder();
  const queue = new EventQueue(recorder, { capacity: 3, senders: 1 });
  // The first is taken by the sender at once, three wait, the rest find the queue full.
  for (let i = 0; i < 10; i++) queue.record(pod, 'Normal', 'R', `e${i}`);
  assert.equal(queue.pending, 3);
  assert.equal(queue.dropped, 6);
  const drained = queue.drain();
  await release();
  await drained;
  assert.deepEqual(written, ['e0', 'e1', 'e2', 'e3']);
});

test('drain resolves at once when nothing is queued', async () => {
  const { recorder } = slowRecorder();
  await new EventQueue(recorder).drain();
});
