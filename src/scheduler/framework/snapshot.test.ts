import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Framework } from './framework.js';
import { NodeSnapshot } from './snapshot.js';
import { testNode } from './testing.js';

test('a NodeSnapshot keeps its node array until its members change', () => {
  const a = testNode('a');
  const b = testNode('b');
  const snapshot = new NodeSnapshot([['a', a]]);
  const steps: { name: string; change: () => void; same: boolean; names: string[] }[] = [
    { name: 'nothing changed', change: () => undefined, same: true, names: ['a'] },
    { name: 'same node set again', change: () => snapshot.set('a', a), same: true, names: ['a'] },
    { name: 'node added', change: () => snapshot.set('b', b), same: false, names: ['a', 'b'] },
    {
      name: 'node replaced',
      change: () => snapshot.set('a', testNode('a')),
      same: false,
      names: ['a', 'b'],
    },
    {
      name: 'unknown node deleted',
      change: () => snapshot.delete('x'),
      same: true,
      names: ['a', 'b'],
    },
    { name: 'node deleted', change: () => snapshot.delete('a'), same: false, names: ['b'] },
    { name: 'cleared', change: () => snapshot.clear(), same: false, names: [] },
  ];
  let list = snapshot.list();
  for (const s of steps) {
    s.change();
    const next = Framework.nodeList(snapshot);
    assert.equal(next === list, s.same, s.name);
    assert.deepEqual(
      next.map((n) => n.name),
      s.names,
      s.name,
    );
    list = next;
  }
  const plain = new Map([['a', a]]);
  assert.notEqual(Framework.nodeList(plain), Framework.nodeList(plain), 'a plain Map is copied');
});
