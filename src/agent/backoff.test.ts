import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RestartBackoff } from './backoff.js';

test('restart back-off: at once, then 10 s doubling to 5 min, reset after a long run', () => {
  const b = new RestartBackoff();
  let now = 1_000_000;
  assert.equal(b.remaining('c', now - 1000, now, now), 0, 'first crash restarts at once');
  b.restarted('c', now);
  assert.equal(b.remaining('c', now, now + 500, now + 500), 9_500);
  assert.equal(b.period('c'), 10_000, 'the period, whatever is left of it');
  now += 10_000;
  assert.equal(b.remaining('c', now - 9000, now - 8000, now), 0);
  b.restarted('c', now);
  assert.equal(b.remaining('c', now, now + 1, now + 1), 19_999, 'doubled');
  assert.equal(b.period('c'), 20_000);
  for (let i = 0; i < 10; i++) {
    now += 400_000;
    b.restarted('c', now);
  }
  assert.equal(b.remaining('c', now, now + 1, now + 1), 299_999, 'capped at 5 minutes');
  assert.equal(b.remaining('c', now, now + 600_000, now + 600_001), 0, 'long run resets');
  b.restarted('c', now + 600_001);
  assert.equal(b.remaining('c', now + 600_001, now + 600_002, now + 600_002), 9_999);
});
