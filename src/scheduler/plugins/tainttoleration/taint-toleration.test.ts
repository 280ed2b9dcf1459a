import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Taint, Toleration } from '../../../api/types.js';
import { Code } from '../../framework/interface.js';
import { runFilter, testNode, testPod } from '../../framework/testing.js';
import { tolerates } from '../../../api/taints.js';
import { taintToleration } from './taint-toleration.js';

const gpu: Taint = { key: 'gpu', value: 'yes', effect: 'NoSchedule' };

test('a toleration tolerates a taint', () => {
  const cases: { name: string; t: Toleration; taint?: Taint; want: boolean }[] = [
    { name: 'Equal, same value', t: { key: 'gpu', operator: 'Equal', value: 'yes' }, want: true },
    { name: 'Equal by default', t: { key: 'gpu', value: 'yes' }, want: true },
    { name: 'Equal, other value', t: { key: 'gpu', value: 'no' }, want: false },
    { name: 'Exists ignores value', t: { key: 'gpu', operator: 'Exists' }, want: true },
    { name: 'other key', t: { key: 'cpu', operator: 'Exists' }, want: false },
    { name: 'empty key with Exists tolerates all', t: { operator: 'Exists' }, want: true },
    { name: 'empty key with Equal tolerates nothing', t: { operator: 'Equal' }, want: false },
    {
      name: 'same effect',
      t: { key: 'gpu', operator: 'Exists', effect: 'NoSchedule' },
      want: true,
    },
    {
      name: 'other effect',
      t: { key: 'gpu', operator: 'Exists', effect: 'NoExecute' },
      want: false,
    },
    {
      name: 'empty value equals missing value',
      t: { key: 'k', operator: 'Equal', value: '' },
      taint: { key: 'k', effect: 'NoSchedule' },
      want: true,
    },
  ];
  for (const c of cases) assert.equal(tolerates(c.t, c.taint ?? gpu), c.want, c.name);
});

test('filter on NoSchedule and NoExecute taints', () => {
  const cases: { name: string; taints: Taint[]; tolerations?: Toleration[]; reason?: string }[] = [
    { name: 'no taints', taints: [] },
    {
      name: 'untolerated NoSchedule',
      taints: [gpu],
      reason: 'node(s) had untolerated taint {gpu: yes}',
    },
    {
      name: 'untolerated NoExecute',
      taints: [{ key: 'dedicated', value: 'db', effect: 'NoExecute' }],
      reason: 'node(s) had untolerated taint {dedicated: db}',
    },
    {
      name: 'PreferNoSchedule does not filter',
      taints: [{ key: 'k', effect: 'PreferNoSchedule' }],
    },
    { name: 'tolerated', taints: [gpu], tolerations: [{ key: 'gpu', operator: 'Exists' }] },
    {
      name: 'one of two tolerated',
      taints: [gpu, { key: 'b', value: 'x', effect: 'NoSchedule' }],
      tolerations: [{ key: 'gpu', operator: 'Exists' }],
      reason: 'node(s) had untolerated taint {b: x}',
    },
  ];
  for (const c of cases) {
    const pod = testPod('p', { spec: { tolerations: c.tolerations } });
    const status = runFilter(taintToleration, pod, testNode('n', { taints: c.taints }));
    if (!c.reason) assert.equal(status.code, Code.Success, c.name);
    else {
      assert.equal(status.code, Code.UnschedulableAndUnresolvable, c.name);
      assert.deepEqual(status.reasons, [c.reason], c.name);
    }
  }
});

test('score prefers fewer intolerable PreferNoSchedule taints', () => {
  const soft = (key: string): Taint => ({ key, effect: 'PreferNoSchedule' });
  const nodes = [
    testNode('clean'),
    testNode('one', { taints: [soft('a')] }),
    testNode('two', { taints: [soft('a'), soft('b')] }),
    testNode('tolerated', { taints: [soft('c')] }),
  ];
  const pod = testPod('p', { spec: { tolerations: [{ key: 'c', operator: 'Exists' }] } });
  const scores = nodes.map((n) => taintToleration.score(new Map(), pod, n));
  assert.deepEqual(scores, [0, 1, 2, 0]);
  taintToleration.normalize(scores);
  assert.deepEqual(scores, [100, 50, 0, 100]);
  const none = [0, 0];
  taintToleration.normalize(none);
  assert.deepEqual(none, [100, 100]);
});
