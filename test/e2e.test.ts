import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { httpGet, mountsUnder, netnsList, REPO, TestCluster, waitFor } from './helpers/cluster.js';
import { runtimeStateDir } from '../src/runtime/state-dir.js';

/**
 * The first end-to-end path: `flyces up`, the demo image imported as an air-gapped user
 * would, and examples/web.yaml driven with the real kubectl through create, self-healing,
 * scaling, a rolling update, logs, a restart of the control plane, and deletion, with real
 * runc containers serving HTTP on their pod IPs.
 */

const run = promisify(execFile);
const MANIFEST = join(REPO, 'examples', 'web.yaml');

interface PodView {
  name: string;
  ip?: string;
  phase?: string;
  ready: boolean;
  deleting: boolean;
  containerID?: string;
  restarts: number;
  env?: string;
}

describe('flyces up runs the web Deployment end to end', { timeout: 600_000 }, () => {
  const cluster = new TestCluster({
    podCidr: '10.42.240.0/24',
    bridge: 'flycese2e0',
    port: 16543,
    agentPort: 16550,
  });

  async function pods(): Promise<PodView[]> {
    const list = JSON.parse(await cluster.kubectl('get', 'pods', '-l', 'app=web', '-o', 'json'));
    return list.items.map((p: any) => ({
      name: p.metadata.name,
      ip: p.status?.podIP,
      phase: p.status?.phase,
      ready:
        p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') ?? false,
      deleting: Boolean(p.metadata.deletionTimestamp),
      containerID: p.status?.containerStatuses?.[0]?.containerID,
      restarts: p.status?.containerStatuses?.[0]?.restartCount ?? 0,
      env: p.spec.containers[0].env?.find((e: any) => e.name === 'GREETING')?.value,
    }));
  }

  async function waitForServing(count: number, timeoutMs = 90_000): Promise<PodView[]> {
    let last: PodView[] = [];
    await waitFor(`${count} ready web pods`, timeoutMs, async () => {
      last = (await pods()).filter((p) => !p.deleting);
      return last.length === count && last.every((p) => p.ready && p.phase === 'Running' && p.ip);
    });
    for (const pod of last) {
      const res = await httpGet(`http://${pod.ip}:8080/`);
      assert.equal(res.status, 200, `pod ${pod.name} answers`);
      assert.match(res.body, /flyCes/, `pod ${pod.name} serves the page`);
    }
    return last;
  }

  before(async () => {
    await cluster.start();
    const { output: out, stderr } = await cluster.importWebImage();
    assert.match(out, /localhost\/flyces-web:1/);
    // The ID it prints is the one `flyces image ls` shows.
    const id = /\(ID ([0-9a-f]{12}), manifest sha256:[0-9a-f]{64}\)/.exec(out)?.[1];
    assert.ok(id, out);
    const listed = await cluster.flyces('image', 'ls', '--data-dir', cluster.dataDir);
    assert.match(listed, new RegExp(`localhost/flyces-web:1\\s+${id}\\s`));
    // Its result is the line above; its info logs stay out of the user's way.
    if (process.env.FLYCES_LOG_LEVEL === undefined) assert.equal(stderr, '');
  });

  after(async () => {
    await cluster.destroy();
    await run('ip', ['link', 'del', 'flycese2e0']).catch(() => undefined);
  });

  test('apply creates three serving pods, shown as kubectl shows them', async () => {
    const applied = await cluster.kubectl('apply', '-f', MANIFEST);
    assert.match(applied, /deployment.apps\/web created/);
    await waitForServing(3);
    const wide = await cluster.kubectl('get', 'pods', '-o', 'wide');
    const header = wide.split('\n')[0].split(/\s{2,}/);
    assert.deepEqual(header.slice(0, 7), [
      'NAME',
      'READY',
      'STATUS',
      'RESTARTS',
      'AGE',
      'IP',
      'NODE',
    ]);
    const rows = wide.trim().split('\n').slice(1);
    assert.equal(rows.length, 3);
    for (const row of rows)
      assert.match(row, /\s1\/1\s+Running\s+0\s+\S+\s+10\.42\.240\.\d+\s+e2e-node\s/);
    const chunked = await cluster.kubectl('get', 'pods', '--chunk-size=1', '--no-headers');
    assert.equal(chunked.trim().split('\n').length, 3, 'kubectl pages through a chunked list');
    const rs = await cluster.kubectl(
      'get',
      'rs',
      '-o',
      'jsonpath={.items[*].metadata.ownerReferences[0].name}',
    );
    assert.equal(rs.trim(), 'web');
  });

  test('a deleted pod is replaced', async () => {
    const [victim] = await pods();
    await cluster.kubectl('delete', 'pod', victim.name);
    const now = await waitForServing(3);
    assert.ok(!now.some((p) => p.name === victim.name));
  });

  test('scaling to 5 and to 1 converges', async () => {
    await cluster.kubectl('scale', 'deployment', 'web', '--replicas=5');
    await waitForServing(5);
    await cluster.kubectl('scale', 'deployment', 'web', '--replicas=1');
    await waitFor('scale-down to 1 pod', 90_000, async () => (await pods()).length === 1);
    await waitForServing(1);
    await cluster.kubectl('scale', 'deployment', 'web', '--replicas=3');
    await waitForServing(3);
  });

  test('a changed template rolls over within maxSurge and maxUnavailable', async () => {
    const manifest = readFileSync(MANIFEST, 'utf8').replace('value: hello', 'value: rolled');
    const file = join(cluster.dataDir, 'web-rolled.yaml');
    writeFileSync(file, manifest);
    await cluster.kubectl('apply', '-f', file);
    // maxSurge 1 and maxUnavailable 1 on 3 replicas: at most 4 pods, at least 2 ready.
    let watching = true;
    const violations: string[] = [];
    const watcher = (async () => {
      while (watching) {
        const all = (await pods()).filter((p) => !p.deleting);
        const ready = all.filter((p) => p.ready).length;
        if (all.length > 4) violations.push(`${all.length} pods exist`);
        if (ready < 2) violations.push(`only ${ready} ready`);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const status = await cluster.kubectl('rollout', 'status', 'deployment/web', '--timeout=120s');
    watching = false;
    await watcher;
    assert.match(status, /successfully rolled out/);
    assert.deepEqual(violations, []);
    const now = await waitForServing(3);
    assert.ok(now.every((p) => p.env === 'rolled'));
  });

  test('logs show the container output', async () => {
    const [pod] = await pods();
    await httpGet(`http://${pod.ip}:8080/`);
    await waitFor('the request in the log', 10_000, async () =>
      /response:200/.test(await cluster.kubectl('logs', pod.name)),
    );
    const own = await cluster.flyces('logs', '--kubeconfig', cluster.kubeconfig, pod.name);
    assert.match(own, /response:200/);

    await httpGet(`http://${pod.ip}:8080/`);
    const tail = await cluster.kubectl('logs', pod.name, '--tail=1', '--timestamps');
    assert.equal(tail.trim().split('\n').length, 1);
    assert.match(tail, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z .*response:200/);
    assert.equal((await cluster.kubectl('logs', pod.name, '--since=1h')).length > 0, true);
    assert.equal(
      (await cluster.kubectl('logs', pod.name, '--since-time=2099-01-01T00:00:00Z')).trim(),
      '',
    );

    // -f keeps streaming: a request made after it started shows up in its output.
    const agentStreams = async () =>
      (
        await run('ss', ['-Htn', 'state', 'established', `sport = :${cluster.opts.agentPort}`])
      ).stdout
        .split('\n')
        .filter((l) => l.trim()).length;
    // Idle keep-alive connections of the plain requests above close within the agent's
    // keep-alive timeout (5 s).
    await waitFor('no connection to the agent', 15_000, async () => (await agentStreams()) === 0);
    const follow = spawn('kubectl', ['--kubeconfig', cluster.kubeconfig, 'logs', '-f', pod.name]);
    let streamed = '';
    follow.stdout.on('data', (chunk) => (streamed += chunk));
    try {
      await waitFor('logs -f to start', 10_000, async () => streamed.length > 0);
      const before = (streamed.match(/response:200/g) ?? []).length;
      await httpGet(`http://${pod.ip}:8080/`);
      await waitFor(
        'the new request in logs -f',
        10_000,
        async () => (streamed.match(/response:200/g) ?? []).length > before,
      );
    } finally {
      follow.kill('SIGTERM');
    }
    // Stopping -f ends the stream on the agent too, also one that has shown nothing yet
    // (--tail=0 on a quiet container): it was left open, and kept the agent's stop waiting.
    await waitFor('the agent to end the stream', 10_000, async () => (await agentStreams()) === 0);
    const quiet = spawn('kubectl', [
      '--kubeconfig',
      cluster.kubeconfig,
      'logs',
      '-f',
      '--tail=0',
      pod.name,
    ]);
    await waitFor('the quiet stream open', 10_000, async () => (await agentStreams()) === 1);
    quiet.kill('SIGTERM');
    await waitFor('the agent to end the quiet stream', 10_000, async () => {
      return (await agentStreams()) === 0;
    });
  });

  test('a Service reaches the pods by name through the cluster DNS, and on a node port', async () => {
    const manifest = join(cluster.dataDir, 'web-svc.yaml');
    writeFileSync(
      manifest,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web' },
        spec: {
          type: 'NodePort',
          selector: { app: 'web' },
          ports: [{ port: 80, targetPort: 8080 }],
        },
      }),
    );
    await cluster.kubectl('apply', '-f', manifest);
    await waitFor('three endpoints', 30_000, async () => {
      const ep = await cluster.kubectl(
        'get',
        'endpoints',
        'web',
        '-o',
        'jsonpath={.subsets[*].addresses[*].ip}',
      );
      return ep.trim().split(/\s+/).filter(Boolean).length === 3;
    });
    const [pod] = await pods();
    const resolv = await cluster.kubectl('exec', pod.name, '--', 'cat', '/etc/resolv.conf');
    assert.match(resolv, /^nameserver 10\.42\.240\.1$/m);
    assert.match(
      resolv,
      /^search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local$/m,
    );
    // By short name (search list), namespaced name and full name, through the ClusterIP.
    const script =
      'for n in web web.default web.default.svc.cluster.local web web; do ' +
      'wget -qO- http://$n/ | grep -c "Hello from flyCes"; done';
    const answers = await cluster.kubectl('exec', pod.name, '--', 'sh', '-c', script);
    assert.deepEqual(answers.trim().split('\n'), ['1', '1', '1', '1', '1']);
    const nodePort = (
      await cluster.kubectl('get', 'svc', 'web', '-o', 'jsonpath={.spec.ports[0].nodePort}')
    ).trim();
    const res = await httpGet(`http://10.42.240.1:${nodePort}/`);
    assert.equal(res.status, 200);
    await cluster.kubectl('delete', '-f', manifest);
  });

  test("a pod's hostPort reaches it on the node's addresses, from here and from a pod", async () => {
    const manifest = join(cluster.dataDir, 'hostport.json');
    writeFileSync(
      manifest,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'hostport' },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'web',
              image: 'localhost/flyces-web:1',
              imagePullPolicy: 'Never',
              ports: [{ containerPort: 8080, hostPort: 18080 }],
            },
          ],
        },
      }),
    );
    await cluster.kubectl('apply', '-f', manifest);
    await cluster.kubectl('wait', '--for=condition=Ready', 'pod/hostport', '--timeout=60s');
    // The node's address on the pod bridge; the rules follow the pod within a second.
    let status = 0;
    await waitFor('the hostPort to answer', 10_000, async () => {
      status = (await httpGet('http://10.42.240.1:18080/').catch(() => ({ status: 0 }))).status;
      return status === 200;
    });
    const [pod] = await pods();
    const fromPod = await cluster.kubectl(
      'exec',
      pod.name,
      '--',
      'sh',
      '-c',
      'wget -qO- http://10.42.240.1:18080/ | grep -c "Hello from flyCes"',
    );
    assert.equal(fromPod.trim(), '1');
    await cluster.kubectl('delete', '-f', manifest);
    await waitFor('the hostPort to close', 15_000, async () => {
      const res = await httpGet('http://10.42.240.1:18080/').catch(() => ({ status: 0 }));
      return res.status === 0;
    });
  });

  test('the flyces command applies, lists and deletes without kubectl', async () => {
    const kc = ['--kubeconfig', cluster.kubeconfig];
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'own-cli' },
      spec: {
        containers: [{ name: 'c', image: 'localhost/flyces-web:1', imagePullPolicy: 'Never' }],
      },
    };
    const file = join(cluster.dataDir, 'own-cli.json');
    writeFileSync(file, JSON.stringify(pod));
    assert.match(await cluster.flyces('apply', ...kc, '-f', file), /pod\/own-cli created/);
    assert.match(await cluster.flyces('apply', ...kc, '-f', file), /pod\/own-cli unchanged/);
    await waitFor('own-cli Running', 30_000, async () =>
      /own-cli\s+1\/1\s+Running/.test(await cluster.flyces('get', 'pods', ...kc, '-o', 'wide')),
    );
    const wide = await cluster.flyces('get', 'pods', ...kc, '-o', 'wide');
    assert.match(wide.split('\n')[0], /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE/);
    assert.match(await cluster.flyces('delete', ...kc, '-f', file), /pod "own-cli" deleted/);
    await waitFor(
      'own-cli gone',
      30_000,
      async () => !/own-cli/.test(await cluster.kubectl('get', 'pods')),
    );
  });

  test('invalid manifests are refused with the field named, and nothing is created', async () => {
    const bad = readFileSync(MANIFEST, 'utf8')
      .replace('name: web\n  labels', 'name: Bad_Name\n  labels')
      .replace('cpu: 50m', 'cpu: lots');
    const file = join(cluster.dataDir, 'bad.yaml');
    writeFileSync(file, bad);
    const res = await cluster.kubectlResult('apply', '-f', file);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /metadata\.name/);
    const fixedName = bad.replace('Bad_Name', 'bad-cpu');
    writeFileSync(file, fixedName);
    const res2 = await cluster.kubectlResult('apply', '-f', file);
    assert.match(res2.stderr, /spec\.template\.spec\.containers\[0\]\.resources\.requests\.cpu/);
    writeFileSync(
      file,
      readFileSync(MANIFEST, 'utf8')
        .replace('name: web\n  labels', 'name: typo\n  labels')
        .replace('ports:', 'prots:'),
    );
    const typo = await cluster.kubectlResult('apply', '-f', file);
    assert.notEqual(typo.code, 0);
    assert.match(typo.stderr, /unknown field "spec\.template\.spec\.containers\[0\]\.prots"/);
    const deployments = await cluster.kubectl('get', 'deployments', '-o', 'name');
    assert.equal(deployments.trim(), 'deployment.apps/web');
  });

  test('a pod whose image is missing reports ErrImageNeverPull, not a crash', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'missing-image' },
      spec: { containers: [{ name: 'c', image: 'localhost/nope:1', imagePullPolicy: 'Never' }] },
    };
    const file = join(cluster.dataDir, 'missing.json');
    writeFileSync(file, JSON.stringify(pod));
    await cluster.kubectl('apply', '-f', file);
    await waitFor('ErrImageNeverPull', 30_000, async () =>
      /ErrImageNeverPull/.test(await cluster.kubectl('get', 'pod', 'missing-image')),
    );
    await cluster.kubectl('delete', 'pod', 'missing-image');
  });

  test('a crashing container is restarted with back-off, and its last run is in --previous', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'crasher' },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'c',
            image: 'localhost/flyces-web:1',
            imagePullPolicy: 'Never',
            command: ['sh', '-c', 'echo boom; exit 3'],
          },
        ],
      },
    };
    const file = join(cluster.dataDir, 'crasher.json');
    writeFileSync(file, JSON.stringify(pod));
    await cluster.kubectl('apply', '-f', file);
    await waitFor('CrashLoopBackOff after a restart', 30_000, async () => {
      const p = JSON.parse(await cluster.kubectl('get', 'pod', 'crasher', '-o', 'json'));
      const s = p.status?.containerStatuses?.[0];
      return s?.restartCount >= 1 && s?.state?.waiting?.reason === 'CrashLoopBackOff';
    });
    const p = JSON.parse(await cluster.kubectl('get', 'pod', 'crasher', '-o', 'json'));
    assert.equal(p.status.containerStatuses[0].lastState.terminated.exitCode, 3);
    assert.match(await cluster.kubectl('get', 'pod', 'crasher'), /CrashLoopBackOff/);
    assert.match(await cluster.kubectl('logs', 'crasher', '--previous'), /boom/);
    const events = await cluster.kubectl(
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=crasher',
    );
    assert.match(events, /BackOff\s+pod\/crasher\s+Back-off restarting failed container c/);
    assert.match(
      events,
      /Pulled\s+pod\/crasher\s+Container image "localhost\/flyces-web:1" already present/,
    );
    await cluster.kubectl('delete', 'pod', 'crasher');
  });

  test('restarting flyces up keeps every object and adopts the running containers', async () => {
    const beforeRestart = await pods();
    assert.equal(await cluster.stop(), 0, 'flyces up exits cleanly on SIGINT');
    for (const pod of beforeRestart) {
      const res = await httpGet(`http://${pod.ip}:8080/`);
      assert.equal(res.status, 200, 'containers keep serving while the control plane is down');
    }
    await cluster.start();
    await waitForServing(3);
    const afterRestart = await pods();
    assert.deepEqual(
      afterRestart.map((p) => [p.name, p.containerID, p.restarts]).sort(),
      beforeRestart.map((p) => [p.name, p.containerID, p.restarts]).sort(),
      'the same containers, not restarted',
    );
    // The node's own Events, as kubelet's: each start, and Ready at the first.
    let nodeEvents = '';
    await waitFor('the node Events', 10_000, async () => {
      nodeEvents = await cluster.kubectl(
        'get',
        'events',
        '--field-selector',
        'involvedObject.kind=Node',
        '-o',
        'custom-columns=REASON:.reason,FROM:.source.component',
      );
      return (nodeEvents.match(/^Starting\s+flyces-agent$/gm) ?? []).length >= 2;
    });
    assert.match(nodeEvents, /^NodeReady\s+flyces-agent$/m);
  });

  test('delete -f removes the Deployment, its ReplicaSets, pods, containers and namespaces', async () => {
    // This cluster's network namespaces are named after its sandboxes' ids.
    const sandboxDir = join(runtimeStateDir(cluster.dataDir), 'sandboxes');
    const ours = readdirSync(sandboxDir).map((id) => `flyces-${id.slice(0, 12)}`);
    assert.ok(ours.length >= 3);
    await cluster.kubectl('delete', '-f', MANIFEST);
    await waitFor('every web pod to be gone', 90_000, async () => (await pods()).length === 0);
    await waitFor(
      'replica sets gone',
      30_000,
      async () => (await cluster.kubectl('get', 'rs', '-o', 'name')).trim() === '',
    );
    await waitFor('network namespaces gone', 30_000, async () => {
      const now = await netnsList();
      return ours.every((n) => !now.includes(n)) && readdirSync(sandboxDir).length === 0;
    });
    assert.deepEqual(await mountsUnder(cluster.dataDir), []);
    const runcRoot = join(runtimeStateDir(cluster.dataDir), 'runc');
    const { stdout } = await run('runc', ['--root', runcRoot, 'list', '-q']);
    assert.equal(stdout.trim(), '', 'no runc container left');
  });
});
