/**
 * Time of one scheduling cycle (Framework.schedule with the default plugins) over an
 * in-memory snapshot of NODES nodes, each running PODS_PER_NODE pods, for a plain pod and
 * for a pod with a zone topology spread constraint and hostname anti-affinity. Nothing is
 * bound: the snapshot stays the same, so every cycle sees the same cluster. Prints the mean
 * per-pod time in microseconds after a warm-up, as a table and as one JSON line.
 */
import { Framework } from '../src/scheduler/framework/framework.js';
import {
  spreadAntiAffinityPod,
  syntheticCluster,
  testPod,
} from '../src/scheduler/framework/testing.js';
import { defaultPlugins } from '../src/scheduler/plugins/registry.js';

const NODES = Number(process.env.NODES ?? 5000);
const PODS_PER_NODE = Number(process.env.PODS_PER_NODE ?? 4);
const ROUNDS = Number(process.env.ROUNDS ?? 2000);

function measure(
  framework: Framework,
  nodes: ReturnType<typeof syntheticCluster>,
  make: (i: number) => ReturnType<typeof testPod>,
  rounds: number,
): number {
  const pods = Array.from({ length: rounds }, (_, i) => make(i));
  for (const p of pods.slice(0, Math.min(200, rounds))) framework.schedule(p, nodes);
  const start = process.hrtime.bigint();
  for (const p of pods) if (!framework.schedule(p, nodes).node) throw new Error('not placed');
  return Number(process.hrtime.bigint() - start) / 1000 / rounds;
}

const nodes = syntheticCluster(NODES, PODS_PER_NODE);
const framework = new Framework(defaultPlugins());
const plain = measure(
  framework,
  nodes,
  (i) => testPod(`plain-${i}`, { requests: { cpu: '100m', memory: '128Mi' } }),
  ROUNDS,
);
const spread = measure(
  framework,
  nodes,
  (i) => spreadAntiAffinityPod(`spread-${i}`, `app-${i % 10}`),
  Math.max(20, ROUNDS / 100),
);
console.log(`nodes ${NODES}, pods per node ${PODS_PER_NODE}`);
console.log(`plain pod           ${plain.toFixed(1)} µs/pod`);
console.log(`spread+anti pod     ${spread.toFixed(1)} µs/pod`);
console.log(
  JSON.stringify({
    nodes: NODES,
    podsPerNode: PODS_PER_NODE,
    plainUs: plain,
    spreadAntiUs: spread,
  }),
);
