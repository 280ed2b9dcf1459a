import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code } from '../../framework/interface.js';
import { runFilter, testNode, testPod } from '../../framework/testing.js';
import { balancedAllocation } from './balanced-allocation.js';
import { fit } from './fit.js';
import { leastAllocated } from './least-allocated.js';

test('fit counts cpu, memory, pods, extended and hugepages resources', () => {
  const gpuNode = { 'example.com/gpu': '2', 'hugepages-2Mi': '1Gi' };
  const cases: {
    name: string;
    allocatable?: Record<string, string>;
    used?: Record<string, string>;
    wanted: Record<string, string>;
    reasons: string[];
  }[] = [
    { name: 'fits', wanted: { cpu: '1' }, reasons: [] },
    { name: 'cpu', wanted: { cpu: '5' }, reasons: ['Insufficient cpu'] },
    { name: 'memory', wanted: { memory: '9Gi' }, reasons: ['Insufficient memory'] },
    {
      name: 'no such device',
      wanted: { 'example.com/gpu': '1' },
      reasons: ['Insufficient example.com/gpu'],
    },
    { name: 'device', allocatable: gpuNode, wanted: { 'example.com/gpu': '2' }, reasons: [] },
    {
      name: 'device taken',
      allocatable: gpuNode,
      used: { 'example.com/gpu': '1' },
      wanted: { 'example.com/gpu': '2' },
      reasons: ['Insufficient example.com/gpu'],
    },
    { name: 'hugepages', allocatable: gpuNode, wanted: { 'hugepages-2Mi': '512Mi' }, reasons: [] },
    {
      name: 'hugepages taken',
      allocatable: gpuNode,
      used: { 'hugepages-2Mi': '768Mi' },
      wanted: { 'hugepages-2Mi': '512Mi' },
      reasons: ['Insufficient hugepages-2Mi'],
    },
    {
      name: 'several at once',
      wanted: { cpu: '5', 'example.com/gpu': '1' },
      reasons: ['Insufficient cpu', 'Insufficient example.com/gpu'],
    },
    {
      name: 'pod count',
      allocatable: { pods: '1' },
      used: {},
      wanted: {},
      reasons: ['Too many pods'],
    },
  ];
  for (const c of cases) {
    const pods = c.used ? [testPod('used', { requests: c.used })] : [];
    const node = testNode('n', { allocatable: c.allocatable, pods });
    const status = runFilter(fit, testPod('p', { requests: c.wanted }), node);
    assert.deepEqual(status.reasons, c.reasons, c.name);
    assert.equal(status.code, c.reasons.length ? Code.Unschedulable : Code.Success, c.name);
  }
});

test('node accounting of extended resources', () => {
  const node = testNode('n', { allocatable: { 'example.com/gpu': '4' } });
  node.addPod(testPod('a', { requests: { 'example.com/gpu': '1' } }));
  node.addPod(testPod('b', { requests: { 'example.com/gpu': '2' } }));
  assert.equal(node.requested.scalar?.['example.com/gpu'], 3);
  node.removePod('default/a');
  assert.equal(node.requested.scalar?.['example.com/gpu'], 2);
  assert.equal(node.clone().requested.scalar?.['example.com/gpu'], 2);
});

test('least and balanced allocation scores', () => {
  // Nodes have 4 cpu and 8Gi; the pod asks for 1 cpu and 1Gi unless it asks for nothing.
  const asks = { cpu: '1', memory: '1Gi' };
  const cases: {
    name: string;
    used?: Record<string, string>;
    wanted?: Record<string, string>;
    least: number;
    balanced: number;
  }[] = [
    { name: 'empty node', least: 81, balanced: 93 },
    { name: 'cpu heavy', used: { cpu: '2', memory: '1Gi' }, least: 50, balanced: 75 },
    { name: 'balanced', used: { cpu: '1', memory: '3Gi' }, least: 50, balanced: 100 },
    // Least allocated counts it as 100m and 200Mi; balanced allocation as nothing.
    { name: 'pod without requests', wanted: {}, least: 97, balanced: 100 },
    // The pod on the node counts as 100m and 200Mi too: 2.5% and 2.4% more used.
    { name: 'beside a pod without requests', used: {}, least: 78, balanced: 93 },
  ];
  for (const c of cases) {
    const pods = c.used ? [testPod('used', { requests: c.used })] : [];
    const node = testNode('n', { pods });
    const pod = testPod('p', { requests: c.wanted ?? asks });
    assert.equal(leastAllocated.score(new Map(), pod, node), c.least, c.name);
    assert.equal(balancedAllocation.score(new Map(), pod, node), c.balanced, c.name);
  }
});
