import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuMillis, parseQuantity } from './quantity.js';

test('parseQuantity', () => {
  const cases: [string | number, number | undefined][] = [
    ['1', 1],
    ['100m', 0.1],
    ['1.5', 1.5],
    ['512Mi', 512 * 2 ** 20],
    ['2Gi', 2 * 2 ** 30],
    ['2G', 2e9],
    ['1k', 1000],
    ['1e3', 1000],
    ['.5', 0.5],
    [3, 3],
    ['', undefined],
    ['1 Gi', undefined],
    ['abc', undefined],
    ['1Gb', undefined],
    ['--1', undefined],
    ['1e999', undefined],
  ];
  for (const [input, want] of cases) {
    assert.equal(parseQuantity(input), want, `parseQuantity(${JSON.stringify(input)})`);
  }
});

test('cpuMillis', () => {
  assert.equal(cpuMillis('100m'), 100);
  assert.equal(cpuMillis('0.25'), 250);
  assert.equal(cpuMillis('2'), 2000);
  assert.equal(cpuMillis(undefined), 0);
});
