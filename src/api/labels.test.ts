import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromLabelSelector, parseFieldSelector, parseLabelSelector } from './labels.js';

test('label selector parsing and matching', () => {
  const labels = { app: 'web', tier: 'front' };
  const cases: [string, boolean][] = [
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app=db', false],
    ['app!=db', true],
    ['app in (web, db)', true],
    ['app notin (web)', false],
    ['tier', true],
    ['!tier', false],
    ['!missing', true],
    ['app=web,tier in (front,back)', true],
    ['app=web,missing', false],
  ];
  for (const [text, want] of cases) {
    assert.equal(parseLabelSelector(text).matches(labels), want, text);
  }
});

test('bad label selectors are refused with the term', () => {
  assert.throws(() => parseLabelSelector('app=(x'), /app=\(x/);
  assert.throws(() => parseLabelSelector('a b'), /unable to parse/);
});

test('field selector', () => {
  const sel = parseFieldSelector('metadata.name=x,spec.nodeName!=n1');
  assert.equal(sel.matches({ 'metadata.name': 'x', 'spec.nodeName': 'n2' }), true);
  assert.equal(sel.matches({ 'metadata.name': 'x', 'spec.nodeName': 'n1' }), false);
  assert.throws(() => parseFieldSelector('metadata.name in (x)'));
});

test('structured selector', () => {
  const sel = fromLabelSelector({
    matchLabels: { app: 'web' },
    matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['db'] }],
  });
  assert.equal(sel.matches({ app: 'web', tier: 'front' }), true);
  assert.equal(sel.matches({ app: 'web', tier: 'db' }), false);
  assert.equal(sel.toString(), 'app=web,tier notin (db)');
});
