import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  accessSync,
  constants,
  existsSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { buildWebImage, FLYCES } from './helpers/cluster.js';
import { runtimeStateDir } from '../src/runtime/state-dir.js';
import {
  NetnsCluster,
  type PodView,
  NetnsLab,
  stopProc,
  waitFor,
  webManifest,
  type Proc,
  type ServerHandle,
} from './helpers/netns-cluster.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * A cluster of several machines built from network namespaces on this machine: `flyces
 * server` in "cp", joined agents running real pods in "n1" and "n2", all on one LAN bridge
 * (helpers/netns-cluster.ts). Pods reach each other across nodes by pod IP and by Service
 * name, a dead node's pods move, a node cut off and back leaves exactly the wanted pods,
 * and a control plane of two servers on a 3-member etcd survives losing both leaders in a
 * rolling update. Pods come from 10.44.0.0/16 and Services from 10.45.0.0/16, ranges no
 * other test uses.
 */

const run = promisify(execFile);
const CLUSTER_CIDR = '10.44.0.0/16';
const SERVICE_CIDR = '10.45.0.0/16';
const REPLICAS = 4;
const NEEDED = ['nsenter', 'runc', 'conmon', 'kubectl', 'etcd', 'skopeo', 'umoci'];

function missingBinary(): string | undefined {
  const dirs = (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  const found = (bin: string) =>
    dirs.some((d) => {
      try {
        accessSync(join(d, bin), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
  const missing = NEEDED.find((b) => !found(b));
  if (missing) return missing;
  if (process.getuid?.() !== 0) return 'root';
  return ['/bin/busybox'].find((p) => {
    try {
      accessSync(p, constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
}

const skip = missingBinary();
if (skip) console.log(`# cluster tests skipped: ${skip} is not available`);

/** Names of the pods whose sandbox miniC records as ready under a runtime state root. */
function readySandboxes(runtimeRoot: string): string[] {
  const dir = join(runtimeRoot, 'sandboxes');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((id) => {
    try {
      const rec = JSON.parse(readFileSync(join(dir, id, 'sandbox.json'), 'utf8'));
      return rec.state === 'ready' ? [rec.podName as string] : [];
    } catch {
      return [];
    }
  });
}

describe('a cluster of network namespaces', { skip, timeout: 300_000 }, () => {
  const lab = new NetnsLab();
  const cluster = new NetnsCluster(lab);
  const ips: Record<string, string> = {};

  const pods = () => cluster.pods('web');

  /** Waits until exactly `count` live web pods are ready, all passing `where`. */
  async function waitServing(
    what: string,
    timeoutMs: number,
    where: (p: PodView) => boolean = () => true,
  ): Promise<PodView[]> {
    let live: PodView[] = [];
    await waitFor(what, timeoutMs, async () => {
      live = (await pods()).filter((p) => !p.deleting);
      return live.length === REPLICAS && live.every((p) => p.ready && p.ip && where(p));
    });
    return live;
  }

  /**
   * Whether `url` answers an HTTP GET from inside a machine's namespace (Node's fetch run
   * there): true if it answered with the page, false if it could not connect or timed out.
   * Anything else (a crash of the probe) throws, so a broken probe cannot pass for "down".
   * The probe exits as soon as it has an answer: an aborted fetch leaves its connection
   * attempt behind, and to an address whose pod just went (the neighbour entry still names
   * the pod's old MAC) that attempt outlived the 10 s the probe is given, so a pod that was
   * gone read as a failed probe three times in a row (CI, 2026-12-05).
   */
  async function answersFrom(machine: string, url: string): Promise<boolean> {
    const script =
      'fetch(process.argv[1], { signal: AbortSignal.timeout(2000) })' +
      '.then(async (r) => { console.log((await r.text()).includes("flyCes") ? "up" : "other"); })' +
      '.catch(() => console.log("down"))' +
      '.finally(() => process.exit(0));';
    const out = (await lab.exec(machine, process.execPath, ['-e', script, url], 10_000)).trim();
    if (out !== 'up' && out !== 'down') throw new Error(`probe of ${url} said ${out}`);
    return out === 'up';
  }

  before(async () => {
    ips.cp = await lab.addMachine('cp', 1);
    ips.n1 = await lab.addMachine('n1', 11);
    ips.n2 = await lab.addMachine('n2', 12);
    await cluster.startServer('cp', ips.cp, 6443, [
      ...['--cluster-cidr', CLUSTER_CIDR, '--service-cidr', SERVICE_CIDR],
    ]);
    const archive = join(lab.root, 'web.tar');
    await buildWebImage(archive);
    for (const machine of ['n1', 'n2']) {
      const dir = join(lab.root, `agent-${machine}`);
      await run(process.execPath, [FLYCES, 'image', 'import', '--data-dir', dir, archive]);
      cluster.startAgent(machine, ips[machine]);
    }
    await cluster.waitNodeReady('n1', 60_000);
    await cluster.waitNodeReady('n2', 60_000);
    // The agents were not told the cluster's pod range: they read what the server published.
    for (const machine of ['n1', 'n2']) {
      const log = readFileSync(join(lab.root, `agent-${machine}.log`), 'utf8');
      assert.match(log, /"clusterCIDR":"10\.44\.0\.0\/16".*server published/);
    }
  });

  after(async () => {
    if (process.env.FLYCES_TEST_LOG) {
      for (const name of ['server', 'agent-n1', 'agent-n2']) {
        console.log(`--- ${name}`);
        console.log(
          await run('tail', ['-n', '60', join(lab.root, `${name}.log`)]).then((r) => r.stdout),
        );
      }
    }
    await lab.destroy();
  });

  test('pods on n1 and n2 reach each other by pod IP and by Service name', async () => {
    const manifest = join(lab.root, 'web.yaml');
    writeFileSync(manifest, webManifest(REPLICAS));
    await cluster.kubectl('apply', '-f', manifest);
    const live = await waitServing('4 ready web pods', 90_000);
    const a = live.find((p) => p.node === 'n1');
    const b = live.find((p) => p.node === 'n2');
    assert.ok(a && b, `pods on both nodes: ${JSON.stringify(live.map((p) => p.node))}`);
    assert.ok(a.ip!.startsWith('10.44.') && b.ip!.startsWith('10.44.'), 'pod IPs in 10.44/16');

    const wget = (from: PodView, url: string) =>
      // busybox 1.35's `wget -T` crashes; its `timeout` applet bounds the request instead.
      cluster.kubectl('exec', from.name, '--', 'timeout', '5', 'wget', '-qO-', url);
    assert.match(await wget(a, `http://${b.ip}:8080/`), /flyCes/, 'n1 pod → n2 pod by IP');
    assert.match(await wget(b, `http://${a.ip}:8080/`), /flyCes/, 'n2 pod → n1 pod by IP');

    const resolv = await cluster.kubectl('exec', a.name, '--', 'cat', '/etc/resolv.conf');
    assert.match(resolv, /^nameserver 10\.44\.\d+\.1$/m, 'DNS on the pod bridge gateway');
    await waitFor('endpoints of web', 30_000, async () => {
      const ep = await cluster.kubectl(
        ...['get', 'endpoints', 'web', '-o', 'jsonpath={.subsets[*].addresses[*].ip}'],
      );
      return ep.trim().split(/\s+/).filter(Boolean).length === REPLICAS;
    });
    // Any Service name resolves from either node; `web` picks one of the 4 pods at random.
    for (const from of [a, b]) {
      for (const name of ['web', 'web.default', 'web.default.svc.cluster.local']) {
        assert.match(
          await wget(from, `http://${name}:8080/`),
          /flyCes/,
          `${name} from ${from.node}`,
        );
      }
    }
    // A Service whose only endpoint is on the other node: always across the LAN.
    for (const [from, to] of [
      [a, b],
      [b, a],
    ]) {
      const svc = `only-${to.node}`;
      await cluster.kubectl('label', 'pod', to.name, `only=${to.node}`);
      await cluster
        .kubectl(
          ...['create', 'service', 'clusterip', svc, '--tcp=8080:8080'],
          ...['--dry-run=client', '-o', 'json'],
        )
        .then(async (text) => {
          const obj = JSON.parse(text);
          obj.spec.selector = { only: to.node };
          obj.spec.type = 'NodePort';
          const file = join(lab.root, `${svc}.json`);
          writeFileSync(file, JSON.stringify(obj));
          await cluster.kubectl('apply', '-f', file);
        });
      await waitFor(`${svc} endpoints`, 30_000, async () => {
        const ep = await cluster.kubectl(
          ...['get', 'endpoints', svc, '-o', 'jsonpath={.subsets[*].addresses[*].ip}'],
        );
        return ep.trim() === to.ip;
      });
      for (let i = 0; i < 3; i++) {
        const page = await wget(from, `http://${svc}.default.svc.cluster.local:8080/`);
        assert.match(page, /flyCes/, `${from.node} → ${svc} by Service name`);
      }
      // Its NodePort on the node without the endpoint, from the control-plane machine.
      const nodePort = (
        await cluster.kubectl('get', 'svc', svc, '-o', 'jsonpath={.spec.ports[0].nodePort}')
      ).trim();
      const url = `http://${ips[from.node!]}:${nodePort}/`;
      assert.ok(await answersFrom('cp', url), `${url} answers from cp`);
    }
  });

  test("killing n2's agent moves its pods to n1 within 30 s", async () => {
    const n2 = cluster.agents.get('n2')!;
    const before = (await pods()).filter((p) => p.node === 'n2' && !p.deleting);
    assert.ok(before.length > 0, 'n2 runs pods');
    const killedAt = Date.now();
    await stopProc(n2.proc!, 'SIGKILL');
    await lab.setLink('n2', false);
    await waitServing('all pods ready on n1', 45_000, (p) => p.node === 'n1');
    const seconds = (Date.now() - killedAt) / 1000;
    console.log(`# node lost → its pods Running and Ready on n1: ${seconds.toFixed(1)} s`);
    assert.ok(seconds <= 30, `moved in ${seconds.toFixed(1)} s`);

    // n2 comes back for the next test: its link up and its agent restarted (no token).
    await lab.setLink('n2', true);
    cluster.startAgent('n2', ips.n2);
    await cluster.waitNodeReady('n2', 60_000);
  });

  test('cutting n1 off and restoring it leaves exactly the wanted pods running', async () => {
    const onN1 = (await pods()).filter((p) => p.node === 'n1' && !p.deleting);
    assert.ok(onN1.length > 0, 'n1 runs pods');
    for (const old of onN1) assert.ok(await answersFrom('n1', `http://${old.ip}:8080/`), old.name);
    // The agent keeps its runtime's records on its state root (a tmpfs under /run/flyces).
    const runtimeN1 = runtimeStateDir(cluster.agents.get('n1')!.dir);
    for (const old of onN1) assert.ok(readySandboxes(runtimeN1).includes(old.name), old.name);
    await lab.setLink('n1', false);
    await waitServing('replacements on n2', 60_000, (p) => p.node === 'n2');
    await lab.setLink('n1', true);
    await cluster.waitNodeReady('n1', 60_000);

    // Once n1 is back, its replaced pods end and their objects go; the count stays put.
    await waitFor('the replaced pods gone', 60_000, async () => {
      const all = await pods();
      return all.length === REPLICAS && all.every((p) => !p.deleting && p.ready);
    });
    for (const old of onN1) {
      await waitFor(`replaced pod ${old.name} stopped on n1`, 30_000, async () => {
        return !(await answersFrom('n1', `http://${old.ip}:8080/`));
      });
    }
    // miniC's records on n1: no replaced pod keeps a ready sandbox.
    await waitFor('no ready sandbox of a replaced pod on n1', 30_000, async () => {
      const ready = readySandboxes(runtimeN1);
      return !onN1.some((p) => ready.includes(p.name));
    });
    const still = (await pods()).filter((p) => !p.deleting);
    assert.equal(still.length, REPLICAS);
    // The link going down took n1's route to n2's pods with it; the agent puts it back.
    const n2Range = (
      await cluster.kubectl('get', 'node', 'n2', '-o', 'jsonpath={.spec.podCIDR}')
    ).trim();
    await waitFor("n1's route to n2's pods back", 20_000, async () => {
      const routes = await lab.exec('n1', 'ip', ['route', 'show', 'proto', '177']);
      return routes.includes(`${n2Range} via ${ips.n2}`);
    });
    const onN2 = still.find((p) => p.node === 'n2')!;
    assert.ok(await answersFrom('n1', `http://${onN2.ip}:8080/`), 'n1 reaches pods on n2');
    assert.ok(!still.some((p) => onN1.some((o) => o.name === p.name)), 'no replaced pod remains');
  });

  test('two servers on a 3-member etcd lose no object when both leaders die in a rollout', async () => {
    await lab.addNamespace('ha');
    const members = [0, 1, 2].map((i) => ({
      name: `e${i}`,
      client: `http://127.0.0.1:${2379 + i * 100}`,
      peer: `http://127.0.0.1:${2380 + i * 100}`,
    }));
    const initial = members.map((m) => `${m.name}=${m.peer}`).join(',');
    const etcds = new Map<string, Proc>();
    for (const m of members) {
      etcds.set(
        m.name,
        lab.spawn('ha', `etcd-${m.name}`, 'etcd', [
          ...['--name', m.name, '--data-dir', join(lab.root, `etcd-${m.name}`)],
          ...['--listen-client-urls', m.client, '--advertise-client-urls', m.client],
          ...['--listen-peer-urls', m.peer, '--initial-advertise-peer-urls', m.peer],
          ...['--initial-cluster', initial, '--initial-cluster-state', 'new'],
          ...['--initial-cluster-token', lab.prefix, '--log-level', 'error'],
        ]),
      );
    }
    const metric = async (m: (typeof members)[number], name: string) => {
      const out = await lab.exec('ha', '/bin/busybox', ['wget', '-qO-', `${m.client}/metrics`]);
      return new RegExp(`^${name} (\\d+)`, 'm').exec(out)?.[1];
    };
    await waitFor('an etcd leader', 30_000, async () => {
      const leaders = await Promise.all(members.map((m) => metric(m, 'etcd_server_is_leader')));
      return leaders.filter((l) => l === '1').length === 1;
    });

    const ha = new NetnsCluster(lab);
    const etcdArgs = ['--etcd', members.map((m) => m.client).join(','), '--leader-lease', '6'];
    const first = await ha.startServer('ha', '127.0.0.1', 6443, etcdArgs, 'ha-a');
    const kubectlVia = (s: ServerHandle, ...args: string[]) =>
      lab.exec('ha', 'kubectl', ['--kubeconfig', s.kubeconfig, ...args]);
    const holder = async (s: ServerHandle, lease: string) =>
      (
        await kubectlVia(
          s,
          ...['-n', 'kube-system', 'get', 'lease', lease, '-o', 'jsonpath={.spec.holderIdentity}'],
        ).catch(() => '')
      ).trim();
    await waitFor('ha-a to lead', 30_000, async () => {
      return Boolean(
        (await holder(first, 'kube-controller-manager')) && (await holder(first, 'kube-scheduler')),
      );
    });
    const leaderIdentity = await holder(first, 'kube-controller-manager');
    const second = await ha.startServer('ha', '127.0.0.1', 6444, etcdArgs, 'ha-b');
    const kubectl = (...args: string[]) => kubectlVia(second, ...args);
    lab.flyces('ha', 'hollow', [
      ...['agent', '--hollow', '3', '--kubeconfig', second.kubeconfig, '--name-prefix', 'h'],
    ]);
    await waitFor('3 hollow nodes', 30_000, async () => {
      const names = await kubectl('get', 'nodes', '-o', 'name');
      return names.trim().split('\n').filter(Boolean).length === 3;
    });

    const objects = join(lab.root, 'objects.yaml');
    const maps = Array.from({ length: 20 }, (_, i) =>
      [
        'apiVersion: v1',
        'kind: ConfigMap',
        `metadata: { name: keep-${i} }`,
        `data: { i: "${i}" }`,
      ].join('\n'),
    );
    writeFileSync(
      objects,
      [
        webManifest(6)
          .replace('name: web', 'name: roll')
          // Each step of the rollout waits 2 s, so the leaders die in the middle of it.
          .replace('replicas: 6', 'replicas: 6\n  minReadySeconds: 2'),
        ...maps,
      ].join('\n---\n'),
    );
    await kubectl('apply', '-f', objects);
    await kubectl('rollout', 'status', 'deployment/roll', '--timeout=60s');
    const snapshot = async () =>
      (await kubectl('get', 'configmaps,deployments,services,nodes', '-o', 'name'))
        .trim()
        .split('\n')
        .sort();
    const known = await snapshot();

    await kubectl('set', 'env', 'deployment/roll', 'ROUND=2');
    await waitFor('the rollout under way', 20_000, async () => {
      const d = JSON.parse(await kubectl('get', 'deployment', 'roll', '-o', 'json'));
      return d.status?.observedGeneration >= d.metadata.generation && d.status?.updatedReplicas > 0;
    });
    const etcdLeader =
      members[
        (await Promise.all(members.map((m) => metric(m, 'etcd_server_is_leader')))).indexOf('1')
      ];
    await stopProc(etcds.get(etcdLeader.name)!, 'SIGKILL');
    await stopProc(first.proc, 'SIGKILL');
    const killedAt = Date.now();
    const midway = await kubectl('rollout', 'status', 'deployment/roll', '--watch=false');
    console.log(`# at the kills: ${midway.trim()}`);
    assert.doesNotMatch(midway, /successfully rolled out/, 'the leaders died mid-rollout');

    await waitFor('ha-b to take both leases', 40_000, async () => {
      const [cm, sched] = [
        await holder(second, 'kube-controller-manager'),
        await holder(second, 'kube-scheduler'),
      ];
      return Boolean(cm && sched && cm !== leaderIdentity && sched !== leaderIdentity);
    });
    await kubectl('rollout', 'status', 'deployment/roll', '--timeout=90s');
    console.log(
      `# leaders killed → rollout complete: ${((Date.now() - killedAt) / 1000).toFixed(1)} s`,
    );
    const pods = JSON.parse(await kubectl('get', 'pods', '-l', 'app=web', '-o', 'json'));
    const live = pods.items.filter((p: any) => !p.metadata.deletionTimestamp);
    assert.equal(live.length, 6);
    assert.ok(
      live.every((p: any) => p.spec.containers[0].env?.some((e: any) => e.name === 'ROUND')),
      'every pod runs the new template',
    );
    const now = await snapshot();
    assert.deepEqual(now, known, 'no object lost');
    for (let i = 0; i < 20; i++) {
      const v = await kubectl('get', 'configmap', `keep-${i}`, '-o', 'jsonpath={.data.i}');
      assert.equal(v.trim(), String(i));
    }
  });
});
