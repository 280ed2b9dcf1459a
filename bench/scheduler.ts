/**
 * Scheduler throughput, shaped like Kubernetes' scheduler_perf "SchedulingBasic": many
 * nodes, many pending pods with small cpu and memory requests, no affinity or spreading.
 *
 * Each run starts an API server in this process on a fresh SQLite store in a temp dir
 * (loopback, port 0), creates the nodes (ready, 4 cpu / 32 GiB / 110 pods each) and then
 * all pending pods (100m cpu, 128 MiB each) through the registry in bulk, untimed. Then
 * the real Scheduler starts with its informers, in a worker thread as in `flyces up`, and
 * the clock runs from its start until a watch on the pods (opened before the start) has
 * seen every pod bound. Printed: pods/s, the split between the informers' initial list
 * and scheduling + binding, and on Linux the CPU time per pod of each kind of thread
 * (API server, scheduler, V8 and libuv helpers), which a busy machine blurs far less.
 *
 * Throughput runs: 5,000 nodes with 10,000 and then 50,000 pods. Scaling runs: 500, 5,000
 * and 15,000 nodes with 2,000 pods each, reporting the time per placement end to end and
 * the time of the placement decision alone (Framework.schedule over the scheduler's node
 * snapshot, measured in a copy of the same cluster without the API).
 *
 * Run: npm run bench:scheduler. Environment: BENCH_NODES (5000), BENCH_PODS
 * ("10000,50000"), BENCH_SCALE_NODES ("500,5000,15000"), BENCH_SCALE_PODS (2000),
 * BENCH_SKIP ("throughput" or "scaling"), BENCH_TLS=1 (HTTPS instead of the Unix socket),
 * BENCH_CPU_PROF=DIR (a .cpuprofile of this thread per run, covering only the timed part),
 * BENCH_WORKER=0 (the scheduler in the API server's thread instead of a worker thread).
 * Logs are at warn level unless FLYCES_LOG_LEVEL says otherwise. Everything started is
 * stopped and the temp dir removed at the end.
 *
 * Also printed per run: how many `Scheduled` Events were written. The scheduler records
 * Events in the background and drops them when its queue is full (as Kubernetes' event
 * broadcaster does), so in a burst far fewer Events than pods may be written.
 */
process.env.FLYCES_LOG_LEVEL ??= 'warn';

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Session } from 'node:inspector/promises';

const { ApiServer } = await import('../src/apiserver/server.js');
const { ensureServingCert } = await import('../src/apiserver/pki.js');
const { byGroupResource } = await import('../src/api/resources.js');
const { InformerFactory } = await import('../src/client/factory.js');
const { KubeClient } = await import('../src/client/rest.js');
const { Scheduler } = await import('../src/scheduler/scheduler.js');
const { ControlLoopsThread } = await import('../src/cli/control-plane-thread.js');
const { Framework } = await import('../src/scheduler/framework/framework.js');
const { NodeInfo } = await import('../src/scheduler/framework/nodeinfo.js');
const { defaultPlugins } = await import('../src/scheduler/plugins/registry.js');
const { SqliteStore } = await import('../src/store/sqlite/sqlite-store.js');
type NodeObject = import('../src/api/types.js').NodeObject;
type Pod = import('../src/api/types.js').Pod;

const nodesRt = byGroupResource.get('/nodes')!;
const podsRt = byGroupResource.get('/pods')!;
const eventsRt = byGroupResource.get('/events')!;

function nodeObject(i: number): NodeObject {
  const name = `node-${i}`;
  const resources = { cpu: '4', memory: '32Gi', pods: '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    status: {
      capacity: resources,
      allocatable: resources,
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

function podObject(i: number): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `pod-${i}`, namespace: 'default' },
    spec: {
      containers: [
        { name: 'c', image: 'pause', resources: { requests: { cpu: '100m', memory: '128Mi' } } },
      ],
    },
  };
}

interface RunResult {
  nodes: number;
  pods: number;
  createSeconds: number;
  totalSeconds: number;
  syncSeconds: number;
  podsPerSecond: number;
  /** Scheduled Events written by the end of the run. */
  events: number;
  /** CPU time per pod in µs, by thread (Linux); see cpuPerPod. */
  cpuMicrosPerPod?: CpuPerPod;
}

/** One cluster: create nodes and pods, start the scheduler, wait for every pod bound. */
async function run(nodeCount: number, podCount: number): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-bench-sched-'));
  currentDir = dir;
  const tls = await ensureServingCert(join(dir, 'tls'), ['127.0.0.1']);
  const store = SqliteStore.open(join(dir, 'store.db'));
  const token = randomBytes(16).toString('hex');
  // As in `flyces up`, the scheduler reaches the API server over its private Unix socket
  // (BENCH_TLS=1: over HTTPS on loopback, as a scheduler on another machine would).
  const socketPath = process.env.BENCH_TLS === '1' ? undefined : join(dir, 'api.sock');
  const server = new ApiServer({
    store,
    tokens: [token],
    port: 0,
    host: '127.0.0.1',
    tls,
    socketPath,
  });
  const { port } = await server.start();
  const client = new KubeClient({
    server: `https://127.0.0.1:${port}`,
    token,
    caPem: tls.caPem,
    userAgent: 'bench-scheduler',
    socketPath,
  });
  try {
    const created = performance.now();
    await createAll(nodeCount, (i) => server.registry.create(nodesRt, undefined, nodeObject(i)));
    await createAll(podCount, (i) => server.registry.create(podsRt, 'default', podObject(i)));
    const createSeconds = (performance.now() - created) / 1000;

    const list = await client.list(podsRt, undefined, { limit: 1 });
    let bound = 0;
    let allBound!: () => void;
    const done = new Promise<void>((resolve) => (allBound = resolve));
    const watch = client.watch<Pod>(
      podsRt,
      undefined,
      { resourceVersion: list.resourceVersion },
      (e) => {
        if (e.type === 'MODIFIED' && e.object.spec?.nodeName && ++bound === podCount) allBound();
      },
    );

    const profile = await startProfile();
    const cpuBefore = threadCpu();
    const start = performance.now();
    const scheduler = startScheduler(client);
    await scheduler.synced;
    const synced = performance.now();
    await done;
    const end = performance.now();
    const cpuAfter = threadCpu();
    await profile?.stop(`scheduler-${nodeCount}-${podCount}`);
    await scheduler.stop();
    watch.stop();
    const totalSeconds = (end - start) / 1000;
    const events = await client.list<{ reason?: string }>(eventsRt, 'default');
    return {
      events: events.items.filter((e) => e.reason === 'Scheduled').length,
      cpuMicrosPerPod: cpuBefore && cpuAfter && cpuPerPod(cpuBefore, cpuAfter, podCount),
      nodes: nodeCount,
      pods: podCount,
      createSeconds,
      totalSeconds,
      syncSeconds: (synced - start) / 1000,
      podsPerSecond: podCount / totalSeconds,
    };
  } finally {
    client.close();
    await server.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    currentDir = undefined;
  }
}

/**
 * Starts the scheduler as `flyces up` does, on the control loops' thread holding the
 * kube-scheduler lease, or (BENCH_WORKER=0) in this thread without a lease, sharing the API
 * server's core.
 */
function startScheduler(client: InstanceType<typeof KubeClient>): {
  synced: Promise<void>;
  stop(): Promise<void>;
} {
  if (process.env.BENCH_WORKER !== '0') {
    // The control loops' thread of `flyces up`, running the scheduler alone (no pod of the
    // bench has an owner for controllers to act on).
    // A scheduler that lost its lease stops for good: the run could never finish.
    const onLost = () => {
      console.error('the scheduler lost its lease; the run cannot finish');
      if (currentDir) rmSync(currentDir, { recursive: true, force: true });
      process.exit(1);
    };
    const thread = new ControlLoopsThread(client.config, {
      identity: 'bench',
      controllers: false,
      onLost,
    });
    return { synced: thread.start(), stop: () => thread.stop() };
  }
  const informers = new InformerFactory(client);
  const scheduler = new Scheduler(client, informers);
  scheduler.register();
  let running: Promise<void> = Promise.resolve();
  const synced = informers.start().then(() => void (running = scheduler.run()));
  return {
    synced,
    async stop() {
      scheduler.stop();
      await running;
      informers.stop();
    },
  };
}

/** The temp dir of the run in progress, removed if the bench is interrupted. */
let currentDir: string | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (currentDir) rmSync(currentDir, { recursive: true, force: true });
    process.exit(130);
  });
}

/**
 * CPU seconds used so far by each thread of this process, by thread id, from /proc;
 * undefined off Linux. On a busy shared machine these move much less than wall-clock
 * figures do.
 */
function threadCpu(): Map<number, number> | undefined {
  if (process.platform !== 'linux') return undefined;
  const ticks = 100; // USER_HZ, 100 on every Linux this runs on
  const seconds = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    seconds.set(Number(tid), (Number(fields[11]) + Number(fields[12])) / ticks);
  }
  return seconds;
}

/**
 * Per-pod CPU in µs between two threadCpu() readings: of the main thread (the API server
 * and the store), of the threads started meanwhile (the scheduler's worker thread, when it
 * runs in one) and of the rest (V8's garbage collection helpers, libuv's pool). A thread
 * that ended before the second reading is not counted.
 */
function cpuPerPod(
  before: Map<number, number>,
  after: Map<number, number>,
  pods: number,
): CpuPerPod {
  const micros = { apiServerThread: 0, newThreads: 0, helperThreads: 0 };
  for (const [tid, seconds] of after) {
    const was = before.get(tid);
    const used = ((seconds - (was ?? 0)) * 1e6) / pods;
    if (tid === process.pid) micros.apiServerThread += used;
    else if (was === undefined) micros.newThreads += used;
    else micros.helperThreads += used;
  }
  return {
    apiServerThread: Math.round(micros.apiServerThread),
    newThreads: Math.round(micros.newThreads),
    helperThreads: Math.round(micros.helperThreads),
  };
}

interface CpuPerPod {
  apiServerThread: number;
  newThreads: number;
  helperThreads: number;
}

/** Profiles this thread when BENCH_CPU_PROF names a directory; stop() writes the file. */
async function startProfile(): Promise<{ stop(name: string): Promise<void> } | undefined> {
  const dir = process.env.BENCH_CPU_PROF;
  if (!dir) return undefined;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    async stop(name) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/** Runs `count` creations, 64 at a time. */
async function createAll(count: number, create: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await create(next++);
  };
  await Promise.all(Array.from({ length: 64 }, worker));
}

/** The placement decision alone: Framework.schedule over NodeInfos, no API. */
function decisionMicros(nodeCount: number, podCount: number): number {
  const framework = new Framework(defaultPlugins());
  const infos = Array.from({ length: nodeCount }, (_, i) => new NodeInfo(nodeObject(i)));
  const start = performance.now();
  for (let i = 0; i < podCount; i++) {
    const pod = podObject(i);
    const result = framework.schedule(pod, infos);
    if (!result.node) throw new Error(`pod ${i} did not fit`);
    result.node.addPod(pod);
  }
  return ((performance.now() - start) * 1000) / podCount;
}

function listEnv(name: string, fallback: string): number[] {
  return (process.env[name] ?? fallback).split(',').map((s) => Number(s.trim()));
}

async function main(): Promise<void> {
  const cpu = cpus();
  console.log(
    `machine: ${cpu.length} cores (${cpu[0]?.model ?? 'unknown'}), ` +
      `${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, ${process.platform}`,
  );
  const skip = process.env.BENCH_SKIP ?? '';
  const figures: Record<string, unknown>[] = [];
  if (skip !== 'throughput') {
    const nodes = listEnv('BENCH_NODES', '5000')[0];
    for (const pods of listEnv('BENCH_PODS', '10000,50000')) {
      const r = await run(nodes, pods);
      console.log(
        `throughput: ${r.nodes} nodes, ${r.pods} pods: ${r.podsPerSecond.toFixed(0)} pods/s ` +
          `(${r.totalSeconds.toFixed(1)} s from scheduler start, of which informer sync ` +
          `${r.syncSeconds.toFixed(1)} s; bulk create ${r.createSeconds.toFixed(1)} s untimed; ` +
          `${r.events} Scheduled Events written)` +
          (r.cpuMicrosPerPod
            ? `; CPU per pod: API server thread ${r.cpuMicrosPerPod.apiServerThread} µs, ` +
              `scheduler thread ${r.cpuMicrosPerPod.newThreads} µs, ` +
              `GC and I/O helpers ${r.cpuMicrosPerPod.helperThreads} µs`
            : ''),
      );
      figures.push({ run: 'throughput', ...r });
    }
  }
  if (skip !== 'scaling') {
    const pods = listEnv('BENCH_SCALE_PODS', '2000')[0];
    for (const nodes of listEnv('BENCH_SCALE_NODES', '500,5000,15000')) {
      const r = await run(nodes, pods);
      const decision = decisionMicros(nodes, pods);
      const perPlacement = (r.totalSeconds * 1e6) / pods;
      console.log(
        `scaling: ${nodes} nodes, ${pods} pods: ${perPlacement.toFixed(0)} µs per placement ` +
          `end to end (${r.podsPerSecond.toFixed(0)} pods/s), decision alone ` +
          `${decision.toFixed(0)} µs`,
      );
      figures.push({ run: 'scaling', ...r, microsPerPlacement: perPlacement, decision });
    }
  }
  console.log(JSON.stringify({ bench: 'scheduler', figures }));
}

await main();
