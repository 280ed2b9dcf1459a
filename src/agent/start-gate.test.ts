import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StartGate } from './start-gate.js';

const tick = () => new Promise((r) => setTimeout(r, 1));

/** A task that runs until its `finish` is called, noting when it began. */
function task(log: string[], name: string) {
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  return { finish, fn: async () => void (log.push(name), await done) };
}

test('at most `slots` owners run at once, and the others in the order they asked', async () => {
  const gate = new StartGate(2, 60_000);
  const log: string[] = [];
  const tasks = ['a', 'b', 'c', 'd'].map((n) => task(log, n));
  const runs = tasks.map((t, i) => gate.run(`pod${i}`, t.fn));
  await tick();
  assert.deepEqual(log, ['a', 'b']);
  assert.equal(gate.queued, 2);
  tasks[1].finish();
  await tick();
  assert.deepEqual(log, ['a', 'b', 'c']);
  tasks[0].finish();
  await tick();
  assert.deepEqual(log, ['a', 'b', 'c', 'd']);
  tasks[2].finish();
  tasks[3].finish();
  await Promise.all(runs);
  assert.equal(gate.queued, 0);
});

test('an owner inside the gate runs its nested calls at once, even with every slot taken', async () => {
  const gate = new StartGate(1, 60_000);
  const log: string[] = [];
  const other = task(log, 'other');
  const outer = gate.run('pod', async () => {
    const queuedBehind = gate.run('other', other.fn);
    await gate.run('pod', async () => void log.push('nested'));
    log.push('outer');
    return { queuedBehind };
  });
  const { queuedBehind } = await outer;
  await tick();
  assert.deepEqual(log, ['nested', 'outer', 'other'], 'other ran once the outer call ended');
  other.finish();
  await queuedBehind;
});

test('a slot held past the limit goes to the next owner; the holder goes on', async () => {
  const gate = new StartGate(1, 20);
  const log: string[] = [];
  const slow = task(log, 'slow');
  const quick = task(log, 'quick');
  const runs = [gate.run('slow', slow.fn), gate.run('quick', quick.fn)];
  await tick();
  assert.deepEqual(log, ['slow']);
  await new Promise((r) => setTimeout(r, 40));
  assert.deepEqual(log, ['slow', 'quick'], 'the next owner got the slot after 20 ms');
  quick.finish();
  slow.finish();
  await Promise.all(runs);
  // Both slots' releases counted once: one owner runs at once again, not two.
  const again = [task(log, 'x'), task(log, 'y')];
  const more = again.map((t, i) => gate.run(`p${i}`, t.fn));
  await tick();
  assert.deepEqual(log.slice(2), ['x']);
  again[0].finish();
  again[1].finish();
  await Promise.all(more);
});

test('a failing start frees its slot and the error reaches the caller', async () => {
  const gate = new StartGate(1, 60_000);
  await assert.rejects(
    gate.run('pod', async () => {
      throw new Error('runc failed');
    }),
    /runc failed/,
  );
  assert.equal(await gate.run('next', async () => 'ran'), 'ran');
});

test('slots must be a positive whole number', () => {
  assert.throws(() => new StartGate(0), /slots must be >= 1/);
  assert.throws(() => new StartGate(1.5), /slots must be >= 1/);
});
