/**
 * Failover figures of a real multi-node cluster made of network namespaces on this machine
 * (test/helpers/netns-cluster.ts): `flyces server` in "cp", joined agents with runc pods in
 * "n1" and "n2", pods from 10.44.0.0/16 and Services from 10.45.0.0/16.
 *
 * What is measured:
 * - node lost: a node's agent is killed (SIGKILL) and its LAN link taken down; the time
 *   runs from the kill until the Deployment's 4 pods are all Running and Ready on the other
 *   node. Once for n2, once for n1 (each restored before the next). With default timings
 *   this is the 16 s node lease, the 8 s default tolerations, then a pod start.
 * - Service rule update: a Service selecting no pod yet is probed from n1's namespace (a
 *   Node fetch loop every 10 ms on its ClusterIP, whose rules in n1's nft table apply to
 *   locally made connections). A pod is labelled to match: the time from just before
 *   `kubectl label` to the first answer covers the endpoints controller, the watch to the
 *   agent and the proxier's nft apply, and kubectl's own run (printed apart). Unlabelling
 *   it, the time to the first refusal. The target is a pod pinned to n2 (remote endpoint)
 *   and one pinned to n1 (local), in turn. BENCH_ROUNDS rounds.
 * - the proxier's own sync records on n1 (debug log "service rules applied"): latencyMs,
 *   from the change the agent's informer saw to the rules applied.
 *
 * Everything is removed at the end, also on failure or Ctrl-C (NetnsLab.destroy()).
 * Run as root from the repository: npm run bench:failover. Environment: BENCH_ROUNDS (5).
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildWebImage, FLYCES } from '../test/helpers/cluster.js';
import {
  NetnsCluster,
  type PodView,
  NetnsLab,
  stopProc,
  waitFor,
  webManifest,
  type Proc,
} from '../test/helpers/netns-cluster.js';

const run = promisify(execFile);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CLUSTER_CIDR = '10.44.0.0/16';
const REPLICAS = 4;

const lab = new NetnsLab();
const cluster = new NetnsCluster(lab);
cluster.agentEnv = { FLYCES_LOG_LEVEL: 'debug' };
const ips: Record<string, string> = {};

const pods = () => cluster.pods('web');

async function allReady(where: (p: PodView) => boolean, timeoutMs: number): Promise<void> {
  await waitFor('all web pods ready', timeoutMs, async () => {
    const all = await pods();
    const live = all.filter((p) => !p.deleting);
    return live.length === REPLICAS && live.every((p) => p.ready && where(p));
  });
}

async function setup(): Promise<void> {
  ips.cp = await lab.addMachine('cp', 1);
  ips.n1 = await lab.addMachine('n1', 11);
  ips.n2 = await lab.addMachine('n2', 12);
  await cluster.startServer('cp', ips.cp, 6443, [
    ...['--cluster-cidr', CLUSTER_CIDR, '--service-cidr', '10.45.0.0/16'],
  ]);
  const archive = join(lab.root, 'web.tar');
  await buildWebImage(archive);
  for (const machine of ['n1', 'n2']) {
    const dir = join(lab.root, `agent-${machine}`);
    await run(process.execPath, [FLYCES, 'image', 'import', '--data-dir', dir, archive]);
    cluster.startAgent(machine, ips[machine]);
  }
  await cluster.waitNodeReady('n1');
  await cluster.waitNodeReady('n2');
  const manifest = join(lab.root, 'web.yaml');
  writeFileSync(manifest, webManifest(REPLICAS));
  await cluster.kubectl('apply', '-f', manifest);
  await allReady(() => true, 120_000);
}

/** Kills `victim`'s agent and cuts its link; returns seconds until all pods run elsewhere. */
async function nodeLost(victim: string, survivor: string): Promise<number> {
  await allReady(() => true, 60_000);
  const agent = cluster.agents.get(victim)!;
  const killedAt = Date.now();
  await stopProc(agent.proc!, 'SIGKILL');
  await lab.setLink(victim, false);
  await allReady((p) => p.node === survivor, 90_000);
  const seconds = (Date.now() - killedAt) / 1000;

  await lab.setLink(victim, true);
  cluster.startAgent(victim, ips[victim]);
  await cluster.waitNodeReady(victim);
  await waitFor('the old pods gone', 60_000, async () => (await pods()).length === REPLICAS);
  return seconds;
}

/** A fetch loop on `url` in n1's namespace that reports each change of up/down with its time. */
function startProbe(url: string): {
  proc: Proc;
  next(state: string, after: number): Promise<number>;
} {
  const script = `
    let last = '';
    const tick = async () => {
      let state = 'down';
      try {
        const r = await fetch(process.argv[1], { signal: AbortSignal.timeout(500) });
        state = (await r.text()).includes('flyCes') ? 'up' : 'down';
      } catch {}
      if (state !== last) { last = state; console.log(Date.now() + ' ' + state); }
      setTimeout(tick, 10);
    };
    tick();`;
  const proc = lab.spawn('n1', 'probe', process.execPath, ['-e', script, url]);
  const seen: { at: number; state: string }[] = [];
  let buffer = '';
  proc.proc.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) {
      const [at, state] = line.split(' ');
      seen.push({ at: Number(at), state });
    }
  });
  return {
    proc,
    async next(state, after) {
      let found: number | undefined;
      await waitFor(`the probe to see ${state}`, 30_000, async () => {
        found = seen.find((s) => s.state === state && s.at >= after)?.at;
        return found !== undefined;
      });
      return found! - after;
    },
  };
}

function targetPod(node: string): string {
  return [
    'apiVersion: v1',
    'kind: Pod',
    `metadata: { name: target-${node} }`,
    'spec:',
    `  nodeName: ${node}`,
    '  terminationGracePeriodSeconds: 2',
    '  containers:',
    '    - { name: web, image: localhost/flyces-web:1, imagePullPolicy: Never }',
  ].join('\n');
}

async function serviceLatency(): Promise<{
  add: number[];
  remove: number[];
  kubectlMs: number[];
}> {
  const file = join(lab.root, 'probe-svc.yaml');
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Service',
      'metadata: { name: probe }',
      'spec:',
      '  selector: { probe: "yes" }',
      '  ports: [{ port: 8080, targetPort: 8080 }]',
    ].join('\n'),
  );
  await cluster.kubectl('apply', '-f', file);
  // One target pod pinned to each node: the Deployment's pods all sit on one node by now.
  const targets = join(lab.root, 'targets.yaml');
  writeFileSync(targets, ['n1', 'n2'].map(targetPod).join('\n---\n'));
  await cluster.kubectl('apply', '-f', targets);
  await cluster.kubectl('wait', '--for=condition=Ready', 'pod/target-n1', 'pod/target-n2');
  const ip = (
    await cluster.kubectl('get', 'svc', 'probe', '-o', 'jsonpath={.spec.clusterIP}')
  ).trim();
  const probe = startProbe(`http://${ip}:8080/`);
  await probe.next('down', 0);
  const add: number[] = [];
  const remove: number[] = [];
  const kubectlMs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const node = i % 2 === 0 ? 'n2' : 'n1';
    let t0 = Date.now();
    await cluster.kubectl('label', 'pod', `target-${node}`, 'probe=yes');
    kubectlMs.push(Date.now() - t0);
    add.push(await probe.next('up', t0));
    t0 = Date.now();
    await cluster.kubectl('label', 'pod', `target-${node}`, 'probe-');
    remove.push(await probe.next('down', t0));
  }
  await stopProc(probe.proc);
  return { add, remove, kubectlMs };
}

function proxierRecords(): number[] {
  const log = readFileSync(join(lab.root, 'agent-n1.log'), 'utf8');
  const out: number[] = [];
  for (const line of log.split('\n')) {
    if (!line.includes('service rules applied')) continue;
    try {
      const rec = JSON.parse(line) as { latencyMs?: number };
      if (typeof rec.latencyMs === 'number') out.push(rec.latencyMs);
    } catch {
      // not a log record
    }
  }
  return out;
}

function summary(values: number[]): { n: number; median: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    median: sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : NaN,
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
  };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: the bench makes network namespaces');
  process.once('SIGINT', () => void lab.destroy().then(() => process.exit(130)));
  try {
    await setup();
    const lostN2 = await nodeLost('n2', 'n1');
    const lostN1 = await nodeLost('n1', 'n2');
    const svc = await serviceLatency();
    const records = proxierRecords();
    const fmt = (s: { n: number; median: number; max: number }, unit: string) =>
      `n=${s.n} median ${s.median.toFixed(0)} ${unit}, max ${s.max.toFixed(0)} ${unit}`;
    console.log('\nflyCes failover (network-namespace cluster, 2 nodes, 4 pods)');
    console.log(
      `  node lost → pods Ready elsewhere:  n2 ${lostN2.toFixed(1)} s, n1 ${lostN1.toFixed(1)} s`,
    );
    console.log(`  endpoint added → ClusterIP answers: ${fmt(summary(svc.add), 'ms')}`);
    console.log(`  endpoint removed → refused:        ${fmt(summary(svc.remove), 'ms')}`);
    console.log(`  (of which kubectl label itself:    ${fmt(summary(svc.kubectlMs), 'ms')})`);
    console.log(`  proxier sync latency (n1 records): ${fmt(summary(records), 'ms')}`);
    console.log(
      JSON.stringify({
        nodeLostSeconds: { n2: lostN2, n1: lostN1 },
        serviceAddMs: svc.add,
        serviceRemoveMs: svc.remove,
        proxierSync: summary(records),
      }),
    );
  } finally {
    await lab.destroy();
  }
}

await main();
