import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Expectations } from './expectations.js';

test('expectations', async (t) => {
  let now = 0;
  const make = () => new Expectations(1000, () => now);
  const cases: { name: string; steps: (e: Expectations) => void; satisfied: boolean }[] = [
    { name: 'unknown key is satisfied', steps: () => {}, satisfied: true },
    { name: 'pending creations block', steps: (e) => e.expectCreations('k', 2), satisfied: false },
    {
      name: 'all creations observed',
      steps: (e) => {
        e.expectCreations('k', 2);
        e.creationObserved('k');
        e.creationObserved('k');
      },
      satisfied: true,
    },
    {
      name: 'a deletion seen twice counts once',
      steps: (e) => {
        e.expectDeletions('k', ['ns/a', 'ns/b']);
        e.deletionObserved('k', 'ns/a');
        e.deletionObserved('k', 'ns/a');
      },
      satisfied: false,
    },
    {
      name: 'all deletions observed',
      steps: (e) => {
        e.expectDeletions('k', ['ns/a', 'ns/b']);
        e.deletionObserved('k', 'ns/a');
        e.deletionObserved('k', 'ns/b');
      },
      satisfied: true,
    },
    {
      name: 'expired record no longer blocks',
      steps: (e) => {
        e.expectCreations('k', 1);
        now += 1001;
      },
      satisfied: true,
    },
    {
      name: 'deleted key is satisfied',
      steps: (e) => {
        e.expectCreations('k', 1);
        e.delete('k');
      },
      satisfied: true,
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      now = 0;
      const e = make();
      c.steps(e);
      assert.equal(e.satisfied('k'), c.satisfied);
    });
  }
});
