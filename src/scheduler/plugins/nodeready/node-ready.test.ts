import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Toleration } from '../../../api/types.js';
import { Code } from '../../framework/interface.js';
import { runFilter, testNode, testPod } from '../../framework/testing.js';
import { nodeReady } from './node-ready.js';

test('nodes that are not ready admit only pods tolerating the not-ready taint', () => {
  const key = 'node.kubernetes.io/not-ready';
  const cases: { name: string; ready: boolean; tolerations?: Toleration[]; fits: boolean }[] = [
    { name: 'ready', ready: true, fits: true },
    { name: 'not ready', ready: false, fits: false },
    { name: 'tolerated', ready: false, tolerations: [{ key, operator: 'Exists' }], fits: true },
    {
      name: 'tolerated for NoExecute only (as DaemonSet pods are)',
      ready: false,
      tolerations: [{ key, operator: 'Exists', effect: 'NoExecute' }],
      fits: false,
    },
  ];
  for (const c of cases) {
    const node = testNode('n');
    node.ready = c.ready;
    const status = runFilter(
      nodeReady,
      testPod('p', { spec: { tolerations: c.tolerations } }),
      node,
    );
    assert.equal(status.code === Code.Success, c.fits, c.name);
    if (!c.fits) assert.deepEqual(status.reasons, ['node(s) were not ready'], c.name);
  }
});
