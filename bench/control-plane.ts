/**
 * The control plane under load, through the API only (flyCes issue 4): hollow nodes,
 * Deployments totalling many pods, from apply until every pod reports Running.
 *
 * Two child processes run on loopback, each on the bench's own temp data dir:
 * `flyces up --no-agent` (API server, SQLite store, scheduler, controllers; no local node,
 * so no container is ever started) on a free port, and `flyces agent --hollow N` with the
 * kubeconfig that `up` wrote. Once every hollow node is Ready, the bench creates its
 * namespaces and Deployments and, while they roll out, measures:
 *
 * - single-object writes: every 100 ms a ConfigMap is created or one of a pool of 50 is
 *   merge-patched (in turn), open loop (a slow answer does not delay the next request, up
 *   to 50 in flight); latency of each, timed on a thread of its own
 *   (control-plane-probes.ts) so the bench's watch decoding does not add to it;
 * - namespace-wide lists: every 2 s all pods of one bench namespace (in turn), closed loop;
 *   latency until the last byte of the answer, which is read but not parsed;
 * - rollout: time from the first Deployment create until all pods exist (watch with
 *   `spec.nodeName=`), are bound (watch with `spec.nodeName!=`) and report Running (watch with
 *   `status.phase=Running`); watches, never polling lists;
 * - peak memory of each process: VmHWM from /proc/<pid>/status.
 *
 * If the rollout has not finished by the time limit, the figures so far and how far it
 * got are printed instead. The children are stopped by pid (SIGTERM, then SIGKILL) and the
 * temp dir is removed at the end, also on failure or Ctrl-C.
 *
 * Run: npm run bench:control-plane (builds first). Environment, with defaults:
 * BENCH_NODES 5000, BENCH_PODS 150000, BENCH_DEPLOYMENTS 150, BENCH_NAMESPACES 5,
 * BENCH_MAX_PODS 110 (per node), BENCH_TIME_LIMIT_S 600 (from the first Deployment),
 * BENCH_READY_LIMIT_S 600 (for the nodes to be Ready), BENCH_CPU_PROF=DIR (children run
 * with --cpu-prof into DIR), BENCH_LOG_LEVEL (children's FLYCES_LOG_LEVEL, default warn),
 * BENCH_KEEP_LOGS=DIR (copies the children's logs there), BENCH_NODE_ARGS (extra node flags for
 * the children, split on spaces, e.g. `--heapsnapshot-signal=SIGUSR2`), BENCH_HOLD_S (seconds to
 * keep the children running after the report, with their pids printed, to inspect them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { byGroupResource } from '../src/api/resources.js';
import type { Deployment, KObject, NodeObject } from '../src/api/types.js';
import { loadKubeconfig } from '../src/cli/kubeconfig.js';
import { KubeClient, type WatchHandle } from '../src/client/rest.js';
import type { ProbeSamples, ProbeSettings } from './control-plane-probes.js';

const NODE_COUNT = intEnv('BENCH_NODES', 5000);
const POD_COUNT = intEnv('BENCH_PODS', 150_000);
const DEPLOYMENT_COUNT = intEnv('BENCH_DEPLOYMENTS', 150);
const NAMESPACE_COUNT = intEnv('BENCH_NAMESPACES', 5);
const MAX_PODS = intEnv('BENCH_MAX_PODS', 110);
const TIME_LIMIT_MS = intEnv('BENCH_TIME_LIMIT_S', 600) * 1000;
const READY_LIMIT_MS = intEnv('BENCH_READY_LIMIT_S', 600) * 1000;
const CPU_PROF = process.env.BENCH_CPU_PROF;
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'warn';
const KEEP_LOGS = process.env.BENCH_KEEP_LOGS;
const HOLD_MS = Number(process.env.BENCH_HOLD_S ?? 0) * 1000;
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

const WRITE_EVERY_MS = 100;
const WRITES_IN_FLIGHT = 50;
/** ConfigMaps the write probe patches in turn. */
const PROBE_POOL = 50;
const LIST_EVERY_MS = 2000;
const LABEL = 'flyces-bench';
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const FLYCES = join(REPO, 'bin/flyces.js');
const PODS = byGroupResource.get('/pods')!;
const NODES = byGroupResource.get('/nodes')!;
const NAMESPACES = byGroupResource.get('/namespaces')!;
const DEPLOYMENTS = byGroupResource.get('apps/deployments')!;
const CONFIGMAPS = byGroupResource.get('/configmaps')!;

function intEnv(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const elapsed = (since: number) => performance.now() - since;

// ---------------------------------------------------------------- processes and clean-up

interface Child {
  name: string;
  proc: ChildProcess;
  log: string;
  exited: Promise<void>;
}

const children: Child[] = [];
let tmp: string | undefined;
let cleaning: Promise<void> | undefined;
/** Set by SIGINT/SIGTERM: the children's exits that follow are not failures to report. */
let interrupted = false;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Starts `flyces ARGS` with its output in a log file of the temp dir. */
function startFlyces(name: string, args: string[]): Child {
  const log = join(tmp!, `${name}.log`);
  const fd = openSync(log, 'w');
  const prof = CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : [];
  const proc = spawn(process.execPath, [...prof, ...NODE_ARGS, FLYCES, ...args], {
    stdio: ['ignore', fd, fd],
    env: { ...process.env, FLYCES_LOG_LEVEL: LOG_LEVEL },
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const child = { name, proc, log, exited };
  children.push(child);
  return child;
}

/** SIGTERM, then SIGKILL after 15 s; by pid, only the children this bench started. */
async function stopChild(child: Child): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  child.proc.kill('SIGTERM');
  const killed = sleep(15_000).then(() => {
    if (child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL');
    }
  });
  await Promise.race([child.exited, killed]);
  await child.exited;
}

/** Stops the agent first (it writes to the server), then the server; removes the temp dir. */
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    for (const child of [...children].reverse()) await stopChild(child);
    if (tmp && KEEP_LOGS) {
      mkdirSync(KEEP_LOGS, { recursive: true });
      for (const child of children) copyFileSync(child.log, join(KEEP_LOGS, `${child.name}.log`));
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaning;
}

function tail(path: string, chars = 1500): string {
  return existsSync(path) ? readFileSync(path, 'utf8').slice(-chars) : '';
}

/** Throws with the child's last output when it has exited. */
function checkAlive(child: Child): void {
  if (child.proc.exitCode === null && child.proc.signalCode === null) return;
  throw new Error(
    `${child.name} exited (${child.proc.exitCode ?? child.proc.signalCode}):\n${tail(child.log)}`,
  );
}

/** Peak and current resident memory of a process in MiB, from /proc. */
function memoryOf(pid: number | undefined): { peakMiB: number; rssMiB: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
    return {
      peakMiB: Math.round(field('VmHWM') / 1024),
      rssMiB: Math.round(field('VmRSS') / 1024),
    };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- statistics

interface Stats {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1];
}

function stats(samples: number[]): Stats | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (v: number) => Math.round(v);
  return {
    n: sorted.length,
    p50: round(quantile(sorted, 0.5)),
    p99: round(quantile(sorted, 0.99)),
    max: round(sorted[sorted.length - 1]),
  };
}

// ---------------------------------------------------------------- watching

/**
 * Follows a collection with watches only: the first watch sends every current object as
 * ADDED, later ones resume from the last resourceVersion seen, and a 410 starts over.
 */
function follow(
  client: KubeClient,
  rt: typeof PODS,
  query: Record<string, string>,
  onEvent: (type: string, obj: KObject) => void,
): { stop(): void } {
  let stopped = false;
  let handle: WatchHandle | undefined;
  let rv: string | undefined;
  void (async () => {
    while (!stopped) {
      let expired = false;
      handle = client.watch(rt, undefined, { ...query, resourceVersion: rv }, (event) => {
        if (event.type === 'ERROR') {
          expired = (event.object as { code?: number }).code === 410;
          return;
        }
        rv = event.object.metadata?.resourceVersion ?? rv;
        if (event.type !== 'BOOKMARK') onEvent(event.type, event.object);
      });
      await handle.done;
      if (expired) rv = undefined;
      if (!stopped) await sleep(200);
    }
  })();
  return {
    stop() {
      stopped = true;
      handle?.stop();
    },
  };
}

/** The keys of the objects a watch currently shows, with the time each milestone fell. */
class Tally {
  readonly keys = new Set<string>();
  readonly reached = new Map<number, number>();

  constructor(
    private readonly target: number,
    private readonly since: () => number | undefined,
  ) {}

  apply(type: string, obj: KObject): void {
    const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    if (type === 'DELETED') this.keys.delete(key);
    else this.keys.add(key);
    this.mark(this.keys.size);
  }

  mark(count: number): void {
    const start = this.since();
    if (start === undefined) return;
    for (const share of [0.5, 0.9, 0.99, 1]) {
      if (!this.reached.has(share) && count >= Math.ceil(share * this.target)) {
        this.reached.set(share, elapsed(start));
      }
    }
  }

  get done(): boolean {
    return this.reached.has(1);
  }
}

// ---------------------------------------------------------------- the cluster

async function startCluster(): Promise<{ client: KubeClient; up: Child; agent: Child }> {
  const port = await freePort();
  const dataDir = join(tmp!, 'data');
  const up = startFlyces('up', ['up', '--no-agent', '--data-dir', dataDir, '--port', `${port}`]);
  const kubeconfig = join(dataDir, 'kubeconfig');
  const deadline = Date.now() + 60_000;
  while (!existsSync(kubeconfig)) {
    checkAlive(up);
    if (Date.now() > deadline) throw new Error(`flyces up did not start:\n${tail(up.log)}`);
    await sleep(200);
  }
  await sleep(200); // the file is written by rename, but give the server its first turn
  const client = new KubeClient({ ...loadKubeconfig(kubeconfig), userAgent: 'flyces-bench' });
  const agent = startFlyces('agent', [
    'agent',
    '--hollow',
    `${NODE_COUNT}`,
    '--kubeconfig',
    kubeconfig,
    '--max-pods',
    `${MAX_PODS}`,
  ]);
  return { client, up, agent };
}

function isReady(node: NodeObject): boolean {
  return !!node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Resolves with the time it took once every hollow node is Ready. */
async function waitForNodes(client: KubeClient, procs: Child[]): Promise<number> {
  const started = performance.now();
  const ready = new Set<string>();
  const watch = follow(client, NODES, { labelSelector: 'flyces.io/hollow=true' }, (type, o) => {
    if (type !== 'DELETED' && isReady(o as NodeObject)) ready.add(o.metadata.name!);
    else ready.delete(o.metadata.name!);
  });
  try {
    let reported = 0;
    while (ready.size < NODE_COUNT) {
      procs.forEach(checkAlive);
      if (elapsed(started) > READY_LIMIT_MS) {
        throw new Error(`only ${ready.size} of ${NODE_COUNT} nodes Ready after the limit`);
      }
      if (elapsed(started) - reported > 10_000) {
        reported = elapsed(started);
        process.stderr.write(`  ${ready.size}/${NODE_COUNT} nodes Ready\n`);
      }
      await sleep(250);
    }
    return elapsed(started);
  } finally {
    watch.stop();
  }
}

function namespaceName(i: number): string {
  return `bench-${i}`;
}

function deployment(i: number, replicas: number): Deployment {
  const labels = { [LABEL]: 'cp', app: `web-${i}` };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `web-${i}`, namespace: namespaceName(i % NAMESPACE_COUNT), labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: 'web',
              image: 'registry.invalid/web:1',
              resources: { requests: { cpu: '10m', memory: '16Mi' } },
            },
          ],
        },
      },
    },
  };
}

async function createNamespaces(client: KubeClient): Promise<void> {
  for (let i = 0; i < NAMESPACE_COUNT; i++) {
    const metadata = { name: namespaceName(i) };
    await client.create(NAMESPACES, { apiVersion: 'v1', kind: 'Namespace', metadata });
  }
  for (let i = 0; i < PROBE_POOL; i++) {
    const metadata = { name: `probe-pool-${i}`, namespace: namespaceName(0) };
    await client.create(CONFIGMAPS, { apiVersion: 'v1', kind: 'ConfigMap', metadata });
  }
}

/** POD_COUNT replicas spread evenly over DEPLOYMENT_COUNT Deployments. */
async function applyDeployments(client: KubeClient): Promise<void> {
  const each = Math.floor(POD_COUNT / DEPLOYMENT_COUNT);
  const extra = POD_COUNT - each * DEPLOYMENT_COUNT;
  for (let i = 0; i < DEPLOYMENT_COUNT; i++) {
    await client.create(DEPLOYMENTS, deployment(i, each + (i < extra ? 1 : 0)));
  }
}

// ---------------------------------------------------------------- probes during the rollout

interface Probes extends ProbeSamples {
  stop(): Promise<void>;
}

/**
 * Starts the write and list probes on a thread of their own (control-plane-probes.ts);
 * stop() ends them and fills in the samples.
 */
function startProbes(client: KubeClient): Probes {
  const settings: ProbeSettings = {
    client: client.config,
    namespaces: Array.from({ length: NAMESPACE_COUNT }, (_, i) => namespaceName(i)),
    pool: PROBE_POOL,
    writeEveryMs: WRITE_EVERY_MS,
    writesInFlight: WRITES_IN_FLIGHT,
    listEveryMs: LIST_EVERY_MS,
  };
  const worker = new Worker(new URL('./control-plane-probes.js', import.meta.url), {
    workerData: settings,
  });
  const probes: Probes = {
    creates: [],
    patches: [],
    lists: [],
    listBytes: [],
    errors: [],
    stop: async () => {
      const got = new Promise<ProbeSamples>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      worker.postMessage('stop');
      Object.assign(probes, await got);
      await worker.terminate();
    },
  };
  return probes;
}

// ---------------------------------------------------------------- the run

interface Rollout {
  created: number;
  bound: Tally;
  running: Tally;
  createdAt?: number;
  durationMs: number;
  finished: boolean;
}

/** Applies the Deployments and follows them until every pod runs or the time limit. */
async function rollout(client: KubeClient, procs: Child[], probes: () => Probes): Promise<Rollout> {
  const clock: { start?: number } = {};
  const since = () => clock.start;
  const bound = new Tally(POD_COUNT, since);
  const running = new Tally(POD_COUNT, since);
  const created = new Set<string>();
  const result: Rollout = { created: 0, bound, running, durationMs: 0, finished: false };
  const selector = `${LABEL}=cp`;
  // A pod is counted as created when a watch first shows it, unbound or bound.
  const seen = (pod: KObject) => {
    created.add(`${pod.metadata.namespace}/${pod.metadata.name}`);
    result.created = created.size;
    if (result.created >= POD_COUNT && clock.start !== undefined) {
      result.createdAt ??= elapsed(clock.start);
    }
  };
  const watches = [
    follow(client, PODS, { labelSelector: selector, fieldSelector: 'spec.nodeName!=' }, (t, o) => {
      bound.apply(t, o);
      seen(o);
    }),
    follow(
      client,
      PODS,
      { labelSelector: selector, fieldSelector: 'status.phase=Running' },
      (t, o) => running.apply(t, o),
    ),
    follow(client, PODS, { labelSelector: selector, fieldSelector: 'spec.nodeName=' }, (_t, o) =>
      seen(o),
    ),
  ];
  await sleep(500); // let the watches open before anything they should see happens
  const start = performance.now();
  clock.start = start;
  const probing = probes();
  try {
    await applyDeployments(client);
    let reported = 0;
    while (!running.done && elapsed(start) < TIME_LIMIT_MS) {
      procs.forEach(checkAlive);
      if (elapsed(start) - reported >= 10_000) {
        reported = elapsed(start);
        progress(result, reported, procs);
      }
      await sleep(250);
    }
    result.durationMs = elapsed(start);
    result.finished = running.done;
    return result;
  } finally {
    await probing.stop();
    watches.forEach((w) => w.stop());
  }
}

/** CPU seconds (user + system, all threads) a process has used so far, from /proc. */
function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
  } catch {
    return undefined;
  }
}

const lastCpu = new Map<number, { at: number; cpu: number }>();

/** "name cpu% rss" for a child since the previous progress line. */
function usage(child: Child): string {
  const pid = child.proc.pid;
  const cpu = cpuSecondsOf(pid);
  const mem = memoryOf(pid);
  if (pid === undefined || cpu === undefined || !mem) return `${child.name} gone`;
  const now = performance.now();
  const prev = lastCpu.get(pid);
  lastCpu.set(pid, { at: now, cpu });
  const pct = prev ? Math.round((100 * (cpu - prev.cpu)) / ((now - prev.at) / 1000)) : 0;
  return `${child.name} ${pct}% ${mem.rssMiB} MiB`;
}

function progress(r: Rollout, ms: number, procs: Child[]): void {
  const s = Math.round(ms / 1000);
  const line = `created ${r.created}, bound ${r.bound.keys.size}, running ${r.running.keys.size}`;
  const load = procs.map(usage).join(', ');
  process.stderr.write(`  ${s}s: ${line} of ${POD_COUNT} (${load})\n`);
}

// ---------------------------------------------------------------- the report

const mib = (bytes: number) => Math.round(bytes / 1024 / 1024);
const secs = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);
const fmt = (s: Stats | undefined) =>
  s ? `p50 ${s.p50} ms  p99 ${s.p99} ms  max ${s.max} ms  (n ${s.n})` : 'no samples';

function machine(): Record<string, unknown> {
  return {
    date: new Date().toISOString(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryMiB: mib(totalmem()),
    kernel: release(),
    node: process.version,
    loadavg: loadavg().map((l) => l.toFixed(2)),
  };
}

function report(
  facts: Record<string, unknown>,
  nodesReadyMs: number,
  r: Rollout,
  p: Probes,
  memory: Record<string, { peakMiB: number; rssMiB: number } | undefined>,
): void {
  const writes = stats([...p.creates, ...p.patches]);
  const lists = stats(p.lists);
  const listMiB = (Math.max(0, ...p.listBytes) / 1024 / 1024).toFixed(1);
  const peakTotal = Object.values(memory).reduce((a, m) => a + (m?.peakMiB ?? 0), 0);
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const out = [
    '',
    `flyCes control-plane benchmark — ${facts.date}`,
    `machine: ${facts.cpus} × ${facts.cpuModel}, ${facts.memoryMiB} MiB, Linux ${facts.kernel}, ` +
      `Node ${facts.node}; load average at start ${(facts.loadavg as string[]).join(' ')}, ` +
      `at end ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} (the machine is shared)`,
    `size: ${NODE_COUNT} hollow nodes (max ${MAX_PODS} pods each), ${DEPLOYMENT_COUNT} ` +
      `Deployments, ${POD_COUNT} pods in ${NAMESPACE_COUNT} namespaces`,
    `nodes Ready after ${secs(nodesReadyMs)}`,
    r.finished
      ? `all ${POD_COUNT} pods Running after ${secs(r.durationMs)}`
      : `TIME LIMIT after ${secs(r.durationMs)}: created ${r.created}, bound ` +
        `${r.bound.keys.size}, Running ${r.running.keys.size} of ${POD_COUNT}`,
    `  all created ${secs(r.createdAt)}; bound 50% ${secs(r.bound.reached.get(0.5))}, ` +
      `100% ${secs(r.bound.reached.get(1))}`,
    `  Running 50% ${secs(r.running.reached.get(0.5))}, 90% ${secs(r.running.reached.get(0.9))}` +
      `, 99% ${secs(r.running.reached.get(0.99))}, 100% ${secs(r.running.reached.get(1))}`,
    `writes (ConfigMap create + patch): ${fmt(writes)}`,
    `  create ${fmt(stats(p.creates))}`,
    `  patch  ${fmt(stats(p.patches))}`,
    `lists (pods of one namespace, up to ${listMiB} MiB): ${fmt(lists)}`,
    `errors during the rollout: ${p.errors.length}${p.errors.length ? ` (first: ${p.errors[0]})` : ''}`,
    ...Object.entries(memory).map(
      ([name, m]) => `peak memory ${name}: ${m ? `${m.peakMiB} MiB` : 'unknown'}`,
    ),
    'goals:',
    `  all Running within 5 min: ${verdict(r.finished && r.durationMs <= 300_000)}`,
    `  write p99 <= 1 s: ${verdict(!!writes && writes.p99 <= 1000)}`,
    `  list p99 <= 5 s: ${verdict(!!lists && lists.p99 <= 5000)}`,
    `  memory <= 4 GiB (all processes): ${verdict(peakTotal <= 4096)} (${peakTotal} MiB)`,
  ];
  process.stdout.write(out.join('\n') + '\n');
  const json = {
    ...facts,
    nodes: NODE_COUNT,
    pods: POD_COUNT,
    deployments: DEPLOYMENT_COUNT,
    namespaces: NAMESPACE_COUNT,
    nodesReadyMs: Math.round(nodesReadyMs),
    finished: r.finished,
    durationMs: Math.round(r.durationMs),
    created: r.created,
    bound: r.bound.keys.size,
    running: r.running.keys.size,
    runningAtMs: Object.fromEntries([...r.running.reached].map(([k, v]) => [k, Math.round(v)])),
    writes,
    lists,
    listMaxBytes: Math.max(0, ...p.listBytes),
    errors: p.errors.length,
    memory,
  };
  process.stdout.write(`${JSON.stringify(json)}\n`);
}

async function main(): Promise<void> {
  const facts = machine();
  tmp = mkdtempSync(join(tmpdir(), 'flyces-cpbench-'));
  process.stderr.write(
    `control-plane bench: ${NODE_COUNT} nodes, ${POD_COUNT} pods; temp dir ${tmp}\n`,
  );
  const { client, up, agent } = await startCluster();
  const memory: Record<string, { peakMiB: number; rssMiB: number } | undefined> = {};
  const sample = () => {
    memory['flyces up (control plane)'] =
      memoryOf(up.proc.pid) ?? memory['flyces up (control plane)'];
    memory['flyces agent --hollow'] = memoryOf(agent.proc.pid) ?? memory['flyces agent --hollow'];
    memory['bench (client)'] = memoryOf(process.pid);
  };
  const sampler = setInterval(sample, 1000);
  try {
    const nodesReadyMs = await waitForNodes(client, [up, agent]);
    process.stderr.write(`  ${NODE_COUNT} nodes Ready after ${secs(nodesReadyMs)}\n`);
    await createNamespaces(client);
    let probes: Probes | undefined;
    const r = await rollout(client, [up, agent], () => (probes = startProbes(client)));
    sample();
    report(facts, nodesReadyMs, r, probes!, memory);
    if (HOLD_MS > 0) {
      process.stderr.write(
        `  holding ${secs(HOLD_MS)}: flyces up pid ${up.proc.pid}, hollow agent pid ${agent.proc.pid}\n`,
      );
      await sleep(HOLD_MS);
    }
  } finally {
    clearInterval(sampler);
    client.close();
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping the children and removing ${tmp ?? 'nothing'}\n`);
    void cleanUp().finally(() => process.exit(130));
  });
}

main()
  .catch((err: Error) => {
    if (!interrupted)
      process.stderr.write(`control-plane bench failed: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanUp());
