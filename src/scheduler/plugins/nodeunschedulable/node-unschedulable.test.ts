import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Toleration } from '../../../api/types.js';
import { Code } from '../../framework/interface.js';
import { runFilter, testNode, testPod } from '../../framework/testing.js';
import { nodeUnschedulable } from './node-unschedulable.js';

test('cordoned nodes admit only pods tolerating the cordon taint', () => {
  const key = 'node.kubernetes.io/unschedulable';
  const cases: { name: string; cordoned: boolean; tolerations?: Toleration[]; fits: boolean }[] = [
    { name: 'schedulable node', cordoned: false, fits: true },
    { name: 'cordoned', cordoned: true, fits: false },
    {
      name: 'tolerates by key',
      cordoned: true,
      tolerations: [{ key, operator: 'Exists' }],
      fits: true,
    },
    {
      name: 'tolerates with effect',
      cordoned: true,
      tolerations: [{ key, operator: 'Exists', effect: 'NoSchedule' }],
      fits: true,
    },
    {
      name: 'wrong effect',
      cordoned: true,
      tolerations: [{ key, operator: 'Exists', effect: 'NoExecute' }],
      fits: false,
    },
    {
      name: 'tolerates everything',
      cordoned: true,
      tolerations: [{ operator: 'Exists' }],
      fits: true,
    },
    {
      name: 'Equal with a value does not match the valueless taint',
      cordoned: true,
      tolerations: [{ key, operator: 'Equal', value: 'x' }],
      fits: false,
    },
  ];
  for (const c of cases) {
    const pod = testPod('p', { spec: { tolerations: c.tolerations } });
    const status = runFilter(nodeUnschedulable, pod, testNode('n', { unschedulable: c.cordoned }));
    assert.equal(status.code === Code.Success, c.fits, c.name);
    if (!c.fits) assert.deepEqual(status.reasons, ['node(s) were unschedulable'], c.name);
  }
});
