import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stopSignalOf } from './signals.js';

test('an image stop signal is one runc knows, or SIGTERM', () => {
  const cases: [string | undefined, string][] = [
    [undefined, 'SIGTERM'],
    ['', 'SIGTERM'],
    ['SIGINT', 'SIGINT'],
    ['quit', 'SIGQUIT'],
    ['sigusr1', 'SIGUSR1'],
    ['9', '9'],
    ['SIGFOO', 'SIGTERM'],
    ['0', 'SIGTERM'],
    ['65', 'SIGTERM'],
    ['SIGRTMIN+3', 'SIGTERM'],
  ];
  for (const [configured, want] of cases) assert.equal(stopSignalOf(configured), want, configured);
});
