import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deepEqual } from './equal.js';

test('deepEqual', () => {
  const cases: [unknown, unknown, boolean][] = [
    [{ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 }, true],
    [{ a: 1, x: undefined }, { a: 1 }, true],
    [{ a: 1 }, { a: 2 }, false],
    [[1, 2], [2, 1], false],
    [[], {}, false],
    [null, {}, false],
    ['a', 'a', true],
  ];
  for (const [a, b, want] of cases) assert.equal(deepEqual(a, b), want, JSON.stringify([a, b]));
});
