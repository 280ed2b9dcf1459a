import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalQuantity, cpuMillis, parseQuantity } from './quantity.js';

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

test('canonicalQuantity: as Kubernetes writes a quantity back', () => {
  const cases: [unknown, string | undefined][] = [
    ['1', '1'],
    ['0.5', '500m'],
    ['.5', '500m'],
    ['+1', '1'],
    ['2000m', '2'],
    ['1500m', '1500m'],
    ['1000', '1k'],
    ['100M', '100M'],
    ['1.5G', '1500M'],
    ['128974848', '128974848'],
    ['0.0001', '100u'],
    ['0.1n', '1n'],
    ['0', '0'],
    ['128Mi', '128Mi'],
    ['1024Mi', '1Gi'],
    ['1.5Gi', '1536Mi'],
    ['1Ki', '1Ki'],
    ['0.5Ki', '512'],
    ['1.1Ki', '1126400m'],
    ['0Mi', '0'],
    ['1e3', '1e3'],
    ['1.5e3', '1500'],
    ['5e-1', '500e-3'],
    ['1E', '1E'],
    [0.5, '500m'],
    [134217728, '134217728'],
    [2, '2'],
    ['-1', undefined],
    ['abc', undefined],
    ['1.5.5', undefined],
    [undefined, undefined],
  ];
  for (const [input, want] of cases) {
    assert.equal(canonicalQuantity(input), want, `canonicalQuantity(${JSON.stringify(input)})`);
  }
});
