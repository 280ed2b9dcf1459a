import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultPlugins } from '../plugins/registry.js';
import { Framework } from './framework.js';
import { spreadAntiAffinityPod, syntheticCluster, testPod } from './testing.js';

/**
 * Not a benchmark: checks that a cycle with the default plugins over 5,000 nodes completes
 * and picks a node, for a plain pod and for one with topology spread and anti-affinity,
 * within a bound loose enough for a busy shared machine (bench/scheduler-cycle.ts measures).
 */
test('a cycle over 5,000 nodes completes', () => {
  const nodes = syntheticCluster(5000, 4);
  const framework = new Framework(defaultPlugins());
  const plainStart = performance.now();
  for (let i = 0; i < 20; i++) {
    const pod = testPod(`plain-${i}`, { requests: { cpu: '100m', memory: '128Mi' } });
    assert.ok(framework.schedule(pod, nodes).node, 'plain pod placed');
  }
  const plainMs = (performance.now() - plainStart) / 20;
  assert.ok(plainMs < 5, `plain pod cycle took ${plainMs.toFixed(2)} ms`);

  const pod = spreadAntiAffinityPod('spread', 'app-3');
  const result = framework.schedule(pod, nodes);
  assert.ok(result.node, 'spread pod placed');
  const hostPods = [...result.node.pods.values()].map((p) => p.pod.metadata.labels?.app);
  assert.ok(!hostPods.includes('app-3'), 'anti-affinity kept it off nodes running app-3');
});
