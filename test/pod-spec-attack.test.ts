import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { TestCluster, waitFor } from './helpers/cluster.js';

/**
 * Attacks on what a pod spec means on the node, under `flyces up` with kubectl and runc,
 * compared with what kubelet does: a container that cannot start under restartPolicy Never,
 * start and finish times of containers that exit at once, hostPath types, a memory
 * emptyDir's size, a container killed for memory, and fields the API must refuse by name.
 * The pods are made at once and looked at one by one.
 */

const IMAGE = 'localhost/flyces-web:1';
type Obj = Record<string, any>;

describe('attacks on pod spec semantics', { timeout: 120_000 }, () => {
  const cluster = new TestCluster({
    podCidr: '10.42.204.0/24',
    bridge: 'flyceshD0',
    port: 17800,
    agentPort: 17801,
  });
  const hostDir = join(cluster.dataDir, 'host');
  let socketServer: Server | undefined;

  const container = (command: string, extra: Obj = {}) => ({
    name: 'c',
    image: IMAGE,
    imagePullPolicy: 'Never',
    command: ['sh', '-c', command],
    ...extra,
  });
  const pods: Record<string, Obj> = {
    // runc refuses a relative working directory when it starts the container.
    'start-error-never': {
      restartPolicy: 'Never',
      containers: [container('true', { workingDir: 'relative/dir' })],
    },
    'quick-exits': {
      restartPolicy: 'Never',
      initContainers: [0, 1, 2].map((i) => ({
        ...container(''),
        command: ['true'],
        name: `i${i}`,
      })),
      containers: Array.from({ length: 12 }, (_, i) => ({
        ...container(''),
        command: ['true'],
        name: `c${i}`,
      })),
    },
    'host-path-types': {
      restartPolicy: 'Never',
      containers: [
        container('test -S /sock && test -d /made && echo ok', {
          volumeMounts: [
            { name: 'sock', mountPath: '/sock' },
            { name: 'made', mountPath: '/made' },
          ],
        }),
      ],
      volumes: [
        { name: 'sock', hostPath: { path: join(hostDir, 'sock'), type: 'Socket' } },
        { name: 'made', hostPath: { path: join(hostDir, 'untyped', 'deep') } },
      ],
    },
    'host-path-not-a-socket': {
      restartPolicy: 'Never',
      containers: [container('true', { volumeMounts: [{ name: 'sock', mountPath: '/sock' }] })],
      volumes: [{ name: 'sock', hostPath: { path: join(hostDir, 'file'), type: 'Socket' } }],
    },
    'memory-volume': {
      restartPolicy: 'Never',
      containers: [
        container("df -k /m | awk 'NR==2 {print $2}'", {
          // A JSON number and a decimal fraction: both come back as Kubernetes writes them.
          resources: { limits: { memory: '64Mi', cpu: 0.5 } },
          volumeMounts: [{ name: 'm', mountPath: '/m' }],
        }),
      ],
      volumes: [{ name: 'm', emptyDir: { medium: 'Memory', sizeLimit: '1Gi' } }],
    },
    'named-host': {
      restartPolicy: 'Never',
      hostname: 'web-0',
      subdomain: 'web',
      hostAliases: [{ ip: '10.1.2.3', hostnames: ['db', 'db.local'] }],
      containers: [container('hostname; cat /etc/hosts')],
    },
    'deleted-ends': {
      terminationGracePeriodSeconds: 2,
      containers: [
        container('trap "exit 0" TERM; sleep 1000 & wait', { name: 'polite' }),
        // pid 1 with no handler: SIGTERM does nothing, SIGKILL at the grace period's end.
        { ...container(''), name: 'stubborn', command: ['sleep', '1000'] },
      ],
    },
    'oom-killed': {
      restartPolicy: 'Never',
      containers: [
        container("x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived", {
          resources: { limits: { memory: '32Mi' } },
        }),
      ],
    },
  };

  before(async () => {
    mkdirSync(hostDir, { recursive: true });
    writeFileSync(join(hostDir, 'file'), 'x');
    socketServer = createServer();
    await new Promise<void>((res) => socketServer!.listen(join(hostDir, 'sock'), res));
    await cluster.start(['--allow-host-path']);
    await cluster.importWebImage();
    for (const [name, spec] of Object.entries(pods)) await apply(name, spec);
  });
  after(async () => {
    socketServer?.close();
    await cluster.destroy();
  });

  async function apply(name: string, spec: Obj): Promise<void> {
    const file = join(cluster.dataDir, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec }),
    );
    await cluster.kubectl('apply', '-f', file);
  }

  async function pod(name: string): Promise<Obj> {
    return JSON.parse(await cluster.kubectl('get', 'pod', name, '-o', 'json'));
  }

  /** The pod once `done` holds for it. */
  async function podWhen(name: string, done: (p: Obj) => boolean): Promise<Obj> {
    let last: Obj = {};
    await waitFor(`pod ${name}`, 30_000, async () => done((last = await pod(name))));
    return last;
  }

  const ended = (p: Obj) => ['Succeeded', 'Failed'].includes(p.status?.phase);

  test('a container that cannot start under Never is terminated with StartError, not waiting', async () => {
    const p = await podWhen('start-error-never', ended);
    assert.equal(p.status.phase, 'Failed');
    const [s] = p.status.containerStatuses;
    assert.equal(s.state.waiting, undefined, JSON.stringify(s.state));
    assert.equal(s.state.terminated.reason, 'StartError');
    assert.equal(s.state.terminated.exitCode, 128);
    assert.match(s.state.terminated.message, /Cwd must be an absolute path/);
    assert.deepEqual(s.lastState, {});
  });

  test('containers that exit at once never finish before they started', async () => {
    const p = await podWhen('quick-exits', ended);
    assert.equal(p.status.phase, 'Succeeded');
    const all = [...p.status.initContainerStatuses, ...p.status.containerStatuses];
    assert.equal(all.length, 15);
    for (const s of all) {
      const { startedAt, finishedAt } = s.state.terminated;
      assert.ok(
        Date.parse(startedAt) <= Date.parse(finishedAt),
        `${s.name}: ${startedAt} > ${finishedAt}`,
      );
    }
  });

  test('hostPath: a Socket is checked, an untyped missing path is made as a directory', async () => {
    const p = await podWhen('host-path-types', ended);
    assert.equal(p.status.phase, 'Succeeded', JSON.stringify(p.status.containerStatuses));
    assert.equal((await cluster.kubectl('logs', 'host-path-types')).trim(), 'ok');
    assert.ok(statSync(join(hostDir, 'untyped', 'deep')).isDirectory());

    const refused = await podWhen(
      'host-path-not-a-socket',
      (x) => x.status?.containerStatuses?.[0]?.state?.waiting?.message !== undefined,
    );
    const { waiting } = refused.status.containerStatuses[0].state;
    assert.equal(waiting.reason, 'CreateContainerConfigError');
    assert.match(
      waiting.message,
      /^volume "sock": hostPath type check failed: .*\/file is not a socket$/,
    );
    const events = await cluster.kubectl(
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=host-path-not-a-socket',
      '-o',
      'jsonpath={.items[*].message}',
    );
    assert.match(events, /file is not a socket/);
  });

  test("a memory emptyDir is no larger than its pod's memory limit", async () => {
    await podWhen('memory-volume', ended);
    assert.equal((await cluster.kubectl('logs', 'memory-volume')).trim(), String(64 * 1024));
  });

  test('quantities come back in canonical form, as strings', async () => {
    const { resources } = (await pod('memory-volume')).spec.containers[0];
    assert.deepEqual(resources, {
      limits: { cpu: '500m', memory: '64Mi' },
      requests: { cpu: '500m', memory: '64Mi' },
    });
  });

  test('hostname, subdomain and hostAliases reach the hostname and /etc/hosts', async () => {
    const p = await podWhen('named-host', ended);
    assert.equal(p.status.phase, 'Succeeded');
    const lines = (await cluster.kubectl('logs', 'named-host')).split('\n');
    assert.equal(lines[0], 'web-0');
    assert.equal(lines[1], '# Kubernetes-managed hosts file.');
    assert.ok(
      lines.includes(`${p.status.podIP}\tweb-0.web.default.svc.cluster.local\tweb-0`),
      lines.join('\n'),
    );
    assert.deepEqual(lines.slice(-3), [
      '# Entries added by HostAliases.',
      '10.1.2.3\tdb\tdb.local',
      '',
    ]);
  });

  test('a deleted pod shows its containers ended and a terminal phase before it goes', async () => {
    await podWhen('deleted-ends', (p) => p.status?.phase === 'Running');
    const watch = spawn('kubectl', [
      ...['--kubeconfig', cluster.kubeconfig, 'get', 'pod', 'deleted-ends', '-w'],
      ...['--output-watch-events', '-o', 'json'],
    ]);
    let out = '';
    watch.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    try {
      await cluster.kubectl('delete', 'pod', 'deleted-ends', '--wait=false');
      await waitFor('the pod to go', 30_000, async () => /"type": ?"DELETED"/.test(out)).catch(
        (err: Error) => assert.fail(`${err.message}; the watch printed: ${out.slice(-1500)}`),
      );
    } finally {
      watch.kill();
    }
    // One event per line.
    const events = out
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as { type: string; object: Obj });
    const last = events.filter((e) => e.type === 'MODIFIED').at(-1)!.object;
    assert.equal(last.status.phase, 'Failed', 'one container was killed');
    const codes = Object.fromEntries(
      last.status.containerStatuses.map((c: Obj) => [c.name, c.state.terminated?.exitCode]),
    );
    assert.deepEqual(codes, { polite: 0, stubborn: 137 });
    assert.equal(events.at(-1)!.type, 'DELETED');
  });

  test('a container killed for memory shows OOMKilled with 137', async () => {
    const p = await podWhen('oom-killed', ended);
    assert.equal(p.status.phase, 'Failed');
    const { terminated } = p.status.containerStatuses[0].state;
    assert.equal(terminated.reason, 'OOMKilled');
    assert.equal(terminated.exitCode, 137);
    assert.doesNotMatch(await cluster.kubectl('logs', 'oom-killed'), /survived/);
  });

  test('the API refuses, naming the field, fractional GPUs and divisors Kubernetes does not allow', async () => {
    const cases: [Obj, RegExp][] = [
      [
        container('true', { resources: { limits: { 'example.com/gpu': '500m' } } }),
        /spec\.containers\[0\]\.resources\.limits\[example\.com\/gpu\]: Invalid value: "500m": must be an integer/,
      ],
      [
        container('true', { resources: { requests: { 'example.com/gpu': '1' } } }),
        /spec\.containers\[0\]\.resources\.limits\[example\.com\/gpu\]: Required value/,
      ],
      [
        container('true', {
          env: [
            {
              name: 'X',
              valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '3m' } },
            },
          ],
        }),
        /spec\.containers\[0\]\.env\[0\]\.valueFrom\.resourceFieldRef\.divisor: Invalid value: "3m"/,
      ],
    ];
    for (const [c, want] of cases) {
      const file = join(cluster.dataDir, 'refused.json');
      const spec = { containers: [c] };
      writeFileSync(
        file,
        JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'refused' }, spec }),
      );
      const got = await cluster.kubectlResult('apply', '--dry-run=server', '-f', file);
      assert.notEqual(got.code, 0, JSON.stringify(c));
      assert.match(got.stderr, want);
    }
  });
});
