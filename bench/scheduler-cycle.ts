/**
 * Time of one scheduling cycle (Framework.schedule with the default plugins) over an
 * in-memory snapshot of NODES nodes, each running PODS_PER_NODE pods, for a plain pod and
 * for a pod with a zone topology spread constraint and hostname anti-affinity. Nothing is
 * bound: the snapshot stays the same, so every cycle sees the same cluster. Prints the mean
 * per-pod time in microseconds after a warm-up, as a table and as one JSON line. The plain
 * pod runs twice: with the node array cached by a NodeSnapshot, and copied from a plain Map
 * each cycle (what the scheduler does while its snapshot is a plain Map).
 */
import { Framework } from '../src/scheduler/framework/framework.js';
import { NodeSnapshot } from '../src/scheduler/framework/snapshot.js';
import {
  spreadAntiAffinityPod,
  syntheticCluster,
  testPod,
} from '../src/scheduler/framework/testing.js';
import { defaultPlugins } from '../src/scheduler/plugins/registry.js';

const NODES = Number(process.env.NODES ?? 5000);
const PODS_PER_NODE = Number(process.env.PODS_PER_NODE ?? 4);
const ROUNDS = Number(process.env.ROUNDS ?? 2000);

type Nodes = ReturnType<typeof syntheticCluster>;
type MakePod = (i: number) => ReturnType<typeof testPod>;

/**
 * Mean microseconds per cycle, wall clock and CPU (user + system, which a busy shared
 * machine inflates less); `nodesFor` hands the cycle its node array.
 */
function measure(
  framework: Framework,
  nodesFor: () => Nodes,
  make: MakePod,
  rounds: number,
): { wall: number; cpu: number } {
  const pods = Array.from({ length: rounds }, (_, i) => make(i));
  for (const p of pods.slice(0, Math.min(200, rounds))) framework.schedule(p, nodesFor());
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  for (const p of pods) if (!framework.schedule(p, nodesFor()).node) throw new Error('not placed');
  const cpu = process.cpuUsage(cpuStart);
  const wall = Number(process.hrtime.bigint() - start) / 1000 / rounds;
  return { wall, cpu: (cpu.user + cpu.system) / rounds };
}

const show = (t: { wall: number; cpu: number }) =>
  `${t.wall.toFixed(1)} µs/pod wall, ${t.cpu.toFixed(1)} µs/pod cpu`;

const nodes = syntheticCluster(NODES, PODS_PER_NODE);
const map = new Map(nodes.map((n) => [n.name, n]));
const snapshot = new NodeSnapshot(map);
const framework = new Framework(defaultPlugins());
const plainPod: MakePod = (i) =>
  testPod(`plain-${i}`, { requests: { cpu: '100m', memory: '128Mi' } });
const spreadPod: MakePod = (i) => spreadAntiAffinityPod(`spread-${i}`, `app-${i % 10}`);
const cached = () => Framework.nodeList(snapshot) as Nodes;
const copied = () => Framework.nodeList(map) as Nodes;
const plain = measure(framework, cached, plainPod, ROUNDS);
const plainCopied = measure(framework, copied, plainPod, ROUNDS);
const spread = measure(framework, cached, spreadPod, Math.max(20, ROUNDS / 100));
console.log(`nodes ${NODES}, pods per node ${PODS_PER_NODE}`);
console.log(`plain pod, NodeSnapshot      ${show(plain)}`);
console.log(`plain pod, plain Map copied  ${show(plainCopied)}`);
console.log(`spread+anti pod              ${show(spread)}`);
console.log(
  JSON.stringify({
    nodes: NODES,
    podsPerNode: PODS_PER_NODE,
    plainUs: plain,
    plainCopiedUs: plainCopied,
    spreadAntiUs: spread,
  }),
);
