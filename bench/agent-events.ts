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
 * Service variables: SERVICES Services in NAMESPACES namespaces, and STARTS container
 * starts (each computes its Service variables). Before, each start went through every
 * Service of the cluster; now it reads the proxy's informer index by namespace.
 *
 * Prints microseconds per event or per start, and one JSON line.
 */
import { byGroupResource } from '../src/api/resources.js';
import type { Pod } from '../src/api/types.js';
import { InformerFactory } from '../src/client/factory.js';
import type { KubeClient } from '../src/client/rest.js';
import { serviceEnv } from '../src/agent/env.js';
import { HostPortBook, hostPortsOf } from '../src/agent/host-ports.js';
import { componentLogger } from '../src/log.js';
import { ServiceProxy } from '../src/proxy/service-proxy.js';
import type { Service } from '../src/proxy/types.js';

const PODS = Number(process.env.PODS ?? 500);
const UPDATES = Number(process.env.UPDATES ?? 1000);
const SERVICES = Number(process.env.SERVICES ?? 2000);
const NAMESPACES = Number(process.env.NAMESPACES ?? 100);
const STARTS = Number(process.env.STARTS ?? 1000);
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

function service(ns: string, name: string, i: number): Service & { apiVersion: string } {
  return {
    apiVersion: 'v1',
    metadata: { namespace: ns, name, resourceVersion: '1' } as Service['metadata'],
    spec: { clusterIP: `10.43.${i >> 8}.${i & 255}`, ports: [{ name: 'http', port: 80 }] },
  };
}

async function serviceVariables(): Promise<{ before: number; after: number; vars: number }> {
  const items = [service('default', 'kubernetes', 1)];
  for (let i = 0; i < SERVICES; i++) items.push(service(`ns${i % NAMESPACES}`, `svc${i}`, i + 2));
  const client = {
    list: async () => ({ items, resourceVersion: '1' }),
    watch: () => ({ done: new Promise<void>(() => undefined), stop: () => undefined }),
  } as unknown as KubeClient;
  const informers = new InformerFactory(client);
  const proxy = new ServiceProxy({
    informers,
    podCidr: '10.42.0.0/24',
    clusterCidr: '10.42.0.0/16',
    nodeAddresses: [],
    forwarding: {
      record: '/nonexistent',
      ipForwardFile: '/nonexistent',
      bootIdFile: '/nonexistent',
    },
    log: componentLogger('bench'),
  });
  await informers.start();
  const pod = (i: number) =>
    ({ metadata: { name: 'p', namespace: `ns${i % NAMESPACES}` }, spec: {} }) as Pod;
  let vars = 0;
  // Before: every Service the informer holds, as knownServices() listed them.
  const informer = informers.informer(byGroupResource.get('/services')!);
  const every = () => informer.list() as unknown as Service[];
  const before = perCall(STARTS, (i) => void (vars = serviceEnv(pod(i), every()).size));
  const after = perCall(STARTS, (i) => {
    const p = pod(i);
    vars = serviceEnv(p, proxy.servicesFor(p.metadata.namespace!)).size;
  });
  informers.stop();
  return { before, after, vars };
}

const ports = hostPorts();
const env = await serviceVariables();
const us = (n: number) => `${n.toFixed(1)} µs`;
console.log(`host ports, ${PODS} pods, ${UPDATES} updates: per event`);
console.log(`  walk of every pod   ${us(ports.before)}`);
console.log(
  `  HostPortBook        ${us(ports.after)}  (${ports.published} publications per ${UPDATES})`,
);
console.log(`Service variables, ${SERVICES} Services in ${NAMESPACES} namespaces: per start`);
console.log(`  every Service       ${us(env.before)}`);
console.log(`  namespace index     ${us(env.after)}  (${env.vars} variables each)`);
console.log(JSON.stringify({ hostPorts: ports, serviceVariables: env }));
