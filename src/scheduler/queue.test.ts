import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod } from '../api/types.js';
import { SchedulingQueue, type QueuedPod } from './queue.js';

class FakeClock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
}

function pod(name: string, priority?: number, labels?: Record<string, string>): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels },
    spec: { containers: [{ name: 'c', image: 'i' }], priority },
  };
}

/** Pops everything active right now, without waiting. */
async function drain(q: SchedulingQueue): Promise<QueuedPod[]> {
  const out: QueuedPod[] = [];
  for (let next = q.tryPop(); next; next = q.tryPop()) out.push(next);
  return out;
}

const names = (infos: QueuedPod[]) => infos.map((i) => i.pod.metadata.name);

test('active order: higher priority first, then earlier queued', async () => {
  const cases: { name: string; pods: [string, number | undefined][]; want: string[] }[] = [
    {
      name: 'fifo at equal priority',
      pods: [
        ['a', 0],
        ['b', 0],
        ['c', undefined],
      ],
      want: ['a', 'b', 'c'],
    },
    {
      name: 'priority wins',
      pods: [
        ['low', 1],
        ['high', 100],
        ['mid', 50],
      ],
      want: ['high', 'mid', 'low'],
    },
    {
      name: 'negative below unset',
      pods: [
        ['neg', -5],
        ['unset', undefined],
      ],
      want: ['unset', 'neg'],
    },
  ];
  for (const c of cases) {
    const clock = new FakeClock();
    const q = new SchedulingQueue(clock);
    for (const [n, p] of c.pods) {
      q.add(pod(n, p));
      clock.t += 1;
    }
    assert.deepEqual(names(await drain(q)), c.want, c.name);
  }
});

test('backoff doubles from 1 s to at most 10 s', async () => {
  const clock = new FakeClock();
  const q = new SchedulingQueue(clock);
  q.add(pod('p'));
  const waits = [1000, 2000, 4000, 8000, 10_000, 10_000];
  for (const wait of waits) {
    const [info] = await drain(q);
    assert.ok(info, `popped before a ${wait} ms backoff`);
    q.requeueBackoff(info);
    assert.equal(q.placeOf('default/p'), 'backoff');
    clock.t += wait - 1;
    q.tick();
    assert.equal((await drain(q)).length, 0, `still backing off ${wait - 1} ms in`);
    clock.t += 1;
    q.tick();
    assert.equal(q.placeOf('default/p'), 'active', `active after ${wait} ms`);
  }
});

test('unschedulable pods move only on events, through backoff, or on the 60 s flush', async () => {
  const clock = new FakeClock();
  const q = new SchedulingQueue(clock);
  q.add(pod('p'));
  q.requeueUnschedulable((await drain(q))[0]);
  clock.t += 5_000;
  q.tick();
  assert.equal(q.placeOf('default/p'), 'unschedulable', 'no event, no move');
  q.moveAll((p) => p.metadata.name !== 'p');
  assert.equal(q.placeOf('default/p'), 'unschedulable', 'filtered out of the event');
  q.moveAll();
  assert.deepEqual(names(await drain(q)), ['p']);

  assert.equal(q.placeOf('default/p'), 'inflight');
});

test('an event during an attempt sends an unschedulable pod to backoff', async () => {
  const clock = new FakeClock();
  const q = new SchedulingQueue(clock);
  q.add(pod('p'));
  const [info] = await drain(q);
  q.moveAll();
  q.requeueUnschedulable(info);
  assert.equal(q.placeOf('default/p'), 'backoff');
  clock.t += 1000;
  q.tick();
  assert.equal(q.placeOf('default/p'), 'active');
});

test('the periodic flush retries unschedulable pods after 60 s', async () => {
  const clock = new FakeClock();
  const q = new SchedulingQueue(clock);
  q.add(pod('p'));
  q.requeueUnschedulable((await drain(q))[0]);
  clock.t += 59_999;
  q.tick();
  assert.equal(q.placeOf('default/p'), 'unschedulable');
  clock.t += 1;
  q.tick();
  assert.equal(q.placeOf('default/p'), 'active');
});

test('updates: waiting pods get the new version; a changed unschedulable pod is retried', async () => {
  const clock = new FakeClock();
  const q = new SchedulingQueue(clock);
  q.add(pod('a', 1));
  q.add(pod('b', 2));
  q.update(pod('a', 10));
  const popped = await drain(q);
  assert.deepEqual(names(popped), ['a', 'b'], 'a raised above b');
  assert.equal(popped[0].pod.spec.priority, 10, 'popped with its new version');

  q.requeueUnschedulable(popped[0]);
  q.done('default/b');
  clock.t += 2000;
  const statusOnly = pod('a', 10);
  statusOnly.status = { phase: 'Pending' };
  q.update(statusOnly);
  assert.equal(q.placeOf('default/a'), 'unschedulable', 'a status change does not move it');
  q.update(pod('a', 10, { app: 'x' }));
  assert.equal(q.placeOf('default/a'), 'active', 'a label change does');
  assert.equal((await drain(q))[0].pod.metadata.labels?.app, 'x');
});

test('deleted and done pods leave the queue; pop waits and close releases it', async () => {
  const q = new SchedulingQueue(new FakeClock());
  q.add(pod('gone'));
  q.delete('default/gone');
  assert.equal((await drain(q)).length, 0);
  const waiting = q.pop();
  q.add(pod('late'));
  assert.equal((await waiting)?.pod.metadata.name, 'late');
  q.done('default/late');
  assert.equal(q.placeOf('default/late'), undefined);
  const released = q.pop();
  q.close();
  assert.equal(await released, undefined);
});
