/**
 * What the agent's per-event and per-start work costs on a busy node, the way it did it
 * before (a walk of every object) and the way it does it now (an index), side by side.
 *
 * Host ports: PODS pods on the node, each publishing one hostPort, and UPDATES pod
 * updates; one in MOVE_EVERY gives its pod a new address, the others leave the ports as
 * they were (most updates are status changes of that kind). Before, each
 * event listed every pod, collected every pod's ports and handed them to the proxy, which
 * compared them as JSON with the last list; now a HostPortBook looks at the updated pod
 * alone and publishes only a change.
 *
 * Prints microseconds per event and one JSON line.
 */
import type { Pod } from '../src/api/types.js';
import { HostPortBook, hostPortsOf } from '../src/agent/host-ports.js';

const PODS = Number(process.env.PODS ?? 500);
const UPDATES = Number(process.env.UPDATES ?? 1000);
const MOVE_EVERY = Number(process.env.MOVE_EVERY ?? 50);
const TRIALS = Number(process.env.TRIALS ?? 5);

function hostPortPod(i: number, rv: number, podIP = `10.42.${i >> 8}.${i & 255}`): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `p${i}`, namespace: 'bench', uid: `uid-${i}`, resourceVersion: `${rv}` },
    spec: {
      containers: [{ name: 'c', image: 'i', ports: [{ containerPort: 80, hostPort: 20000 + i }] }],
    },
    status: { phase: 'Running', podIP },
  } as Pod;
}

/**
 * Microseconds per call of `fn` over `rounds` calls, after a warm-up of a tenth: the best
 * of TRIALS runs, as other work on a shared machine only adds to a run.
 */
function perCall(rounds: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.ceil(rounds / 10); i++) fn(i);
  let best = Infinity;
  for (let t = 0; t < TRIALS; t++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) fn(i);
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1000 / rounds);
  }
  return best;
}

function hostPorts(): { before: number; after: number; published: number } {
  const pods = new Map<string, Pod>();
  for (let i = 0; i < PODS; i++) pods.set(`bench/p${i}`, hostPortPod(i, 1));
  let moves = 0;
  const updated = (i: number) => {
    const key = `bench/p${i % PODS}`;
    const ip =
      i % MOVE_EVERY === 0 ? `10.44.${moves++ & 255}.${i & 255}` : pods.get(key)!.status!.podIP;
    const p = hostPortPod(i % PODS, i + 2, ip);
    pods.set(key, p);
    return p;
  };
  // Before: the informer's list, every pod's ports, and the proxy's comparison as JSON.
  let lastText = '';
  const before = perCall(UPDATES, (i) => {
    updated(i);
    const text = JSON.stringify(hostPortsOf([...pods.values()]));
    if (text !== lastText) lastText = text;
  });
  const book = new HostPortBook();
  for (const p of pods.values()) book.update(p);
  let published = 0;
  let calls = 0;
  const after = perCall(UPDATES, (i) => {
    calls++;
    if (!book.update(updated(i))) return;
    book.list();
    published++;
  });
  return { before, after, published: Math.round((published / calls) * UPDATES) };
}

const ports = hostPorts();
const us = (n: number) => `${n.toFixed(1)} µs`;
console.log(`host ports, ${PODS} pods, ${UPDATES} updates: per event`);
console.log(`  walk of every pod   ${us(ports.before)}`);
console.log(
  `  HostPortBook        ${us(ports.after)}  (${ports.published} publications per ${UPDATES})`,
);
console.log(JSON.stringify({ hostPorts: ports }));
