import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockIndex, firstFree, formatCidr, parseCidr } from './cidr.js';

test('CIDRs parse to their network and print back', () => {
  const cases: [string, string | undefined][] = [
    ['10.42.0.0/16', '10.42.0.0/16'],
    ['10.42.7.9/24', '10.42.7.0/24'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['255.255.255.255/32', '255.255.255.255/32'],
    ['10.42.0.0/33', undefined],
    ['10.420.0.0/16', undefined],
    ['10.42.0.0', undefined],
    ['fd00::/64', undefined],
  ];
  for (const [text, want] of cases) {
    const c = parseCidr(text);
    assert.equal(c && formatCidr(c), want, text);
  }
});

test('blocks are handed out lowest first and recognised', () => {
  const range = parseCidr('10.42.0.0/16')!;
  assert.equal(formatCidr(firstFree(range, 24, new Set())!), '10.42.0.0/24');
  assert.equal(formatCidr(firstFree(range, 24, new Set([0, 1, 3]))!), '10.42.2.0/24');
  assert.equal(blockIndex(range, 24, parseCidr('10.42.200.0/24')!), 200);
  assert.equal(blockIndex(range, 24, parseCidr('10.43.0.0/24')!), undefined, 'outside');
  assert.equal(blockIndex(range, 24, parseCidr('10.42.0.0/25')!), undefined, 'wrong size');
  const small = parseCidr('10.42.0.0/23')!;
  assert.equal(firstFree(small, 24, new Set([0, 1])), undefined, 'full');
});
