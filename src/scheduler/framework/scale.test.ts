import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultPlugins } from '../plugins/registry.js';
import { Framework } from './framework.js';
import { spreadAntiAffinityPod, syntheticCluster, testPod } from './testing.js';

/** CPU microseconds (user + system) that `fn` takes, per call, over `rounds` calls. */
function cpuPerCall(rounds: number, fn: (i: number) => void): number {
  const start = process.cpuUsage();
  for (let i = 0; i < rounds; i++) fn(i);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / rounds;
}

/**
 * Not a benchmark: checks that a cycle with the default plugins over 5,000 nodes completes
 * and places the pod, for a plain pod and for one with topology spread and anti-affinity.
 * The plain-pod bound (CPU time, after a warm-up) is 10× the goal of 0.2 ms, loose enough
 * for a busy shared machine yet far below a cycle that visits every pod of the cluster;
 * bench/scheduler-cycle.ts measures.
 */
test('a cycle over 5,000 nodes completes', () => {
  const nodes = syntheticCluster(5000, 4);
  const framework = new Framework(defaultPlugins());
  const plain = (i: number) => {
    const pod = testPod(`plain-${i}`, { requests: { cpu: '100m', memory: '128Mi' } });
    assert.ok(framework.schedule(pod, nodes).node, 'plain pod placed');
  };
  cpuPerCall(50, plain);
  const micros = cpuPerCall(100, plain);
  assert.ok(micros < 2000, `plain pod cycle took ${micros.toFixed(0)} µs of CPU`);

  const pod = spreadAntiAffinityPod('spread', 'app-3');
  const result = framework.schedule(pod, nodes);
  assert.ok(result.node, 'spread pod placed');
  const hostApps = [...result.node.pods.values()].map((p) => p.labels?.app);
  assert.ok(!hostApps.includes('app-3'), 'anti-affinity kept it off nodes running app-3');
});
