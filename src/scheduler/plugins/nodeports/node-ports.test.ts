import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod } from '../../../api/types.js';
import { Code } from '../../framework/interface.js';
import { runFilter, testNode, testPod } from '../../framework/testing.js';
import { nodePorts, REASON_NODE_PORTS } from './node-ports.js';

function withPort(name: string, hostPort: number, protocol?: string, hostIP?: string): Pod {
  const pod = testPod(name);
  pod.spec.containers[0].ports = [{ containerPort: 80, hostPort, protocol, hostIP } as never];
  return pod;
}

test('host port conflicts', () => {
  const cases: { name: string; used: Pod[]; wanted: Pod; fits: boolean }[] = [
    { name: 'no ports used', used: [], wanted: withPort('p', 80), fits: true },
    { name: 'pod without host ports', used: [withPort('u', 80)], wanted: testPod('p'), fits: true },
    { name: 'same port', used: [withPort('u', 80)], wanted: withPort('p', 80), fits: false },
    { name: 'other port', used: [withPort('u', 80)], wanted: withPort('p', 81), fits: true },
    {
      name: 'other protocol',
      used: [withPort('u', 53)],
      wanted: withPort('p', 53, 'UDP'),
      fits: true,
    },
    {
      name: 'different host IPs',
      used: [withPort('u', 80, 'TCP', '10.0.0.1')],
      wanted: withPort('p', 80, 'TCP', '10.0.0.2'),
      fits: true,
    },
    {
      name: 'same host IP',
      used: [withPort('u', 80, 'TCP', '10.0.0.1')],
      wanted: withPort('p', 80, 'TCP', '10.0.0.1'),
      fits: false,
    },
    {
      name: 'wanted 0.0.0.0 overlaps a specific IP',
      used: [withPort('u', 80, 'TCP', '10.0.0.1')],
      wanted: withPort('p', 80),
      fits: false,
    },
    {
      name: 'used 0.0.0.0 overlaps a specific IP',
      used: [withPort('u', 80)],
      wanted: withPort('p', 80, 'TCP', '10.0.0.1'),
      fits: false,
    },
  ];
  for (const c of cases) {
    const status = runFilter(nodePorts, c.wanted, testNode('n', { pods: c.used }));
    assert.equal(status.code === Code.Success, c.fits, c.name);
    if (!c.fits) {
      assert.equal(status.code, Code.Unschedulable, c.name);
      assert.deepEqual(status.reasons, [REASON_NODE_PORTS], c.name);
    }
  }
});

test('removing a pod frees its host port', () => {
  const node = testNode('n', { pods: [withPort('u', 80)] });
  node.removePod('default/u');
  assert.equal(runFilter(nodePorts, withPort('p', 80), node).code, Code.Success);
});
