import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mountsUnder, TestCluster, waitFor } from './helpers/cluster.js';

/**
 * Pod volumes and env as a user who means harm (or just makes mistakes) would use them:
 * configMap items with paths Kubernetes cleans or refuses, items that make one file the
 * directory of another, subPathExpr (one pod's part of a shared volume, and an expansion
 * from a Secret that climbs out), a configMap read by a user other than root, a Secret value
 * that no environment can hold, a symlink swapped in after a subPath was checked, and
 * resourceFieldRef without limits or requests. Each
 * failure must show in the pod's status, an Event and the agent's log, leave nothing
 * half-written, and never show the Secret's value.
 */

const run = promisify(execFile);
const IMAGE = 'localhost/flyces-web:1';
const SECRET_VALUE = `sv-${randomBytes(8).toString('hex')}`;
const HOST_MARK = `host-${randomBytes(8).toString('hex')}`;
/**
 * Writes into its own part of a shared volume (subPathExpr with its name), reads it through a
 * read-only subPath that it cannot write, and checks that a memory limit it lacks reads as
 * the node's (in Mi, so above 0) and a request as 0.
 */
const SPE_SCRIPT =
  'echo hi > /mine/f; echo "pods=$(ls /all/pods) mem=$MEM req=$REQ";' +
  ' test "$(ls /all/pods)" = spe && test "$(cat /all/pods/spe/f)" = hi &&' +
  ' test "$MEM" -gt 0 && test "$REQ" = 0 && test "$(cat /ro/spe/f)" = hi && ! touch /ro/spe/g';

describe('volume and env attacks', { timeout: 180_000 }, () => {
  const cluster = new TestCluster({
    podCidr: '10.42.225.0/24',
    bridge: 'flycesvv0',
    port: 17200,
    agentPort: 17201,
  });

  function apply(name: string, obj: unknown): Promise<{ code: number; stderr: string }> {
    const file = join(cluster.dataDir, `${name}.json`);
    writeFileSync(file, JSON.stringify(obj));
    return cluster.kubectlResult('apply', '-f', file);
  }

  function pod(name: string, container: object, volumes: object[] = []): object {
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels: { test: 'volattack' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        restartPolicy: 'Never',
        volumes,
        containers: [{ name: 'c', image: IMAGE, imagePullPolicy: 'Never', ...container }],
      },
    };
  }

  async function podJson(name: string): Promise<any> {
    return JSON.parse(await cluster.kubectl('get', 'pod', name, '-o', 'json'));
  }

  /**
   * Waits for the pod to succeed: its script checks what it sees and exits non-zero when
   * wrong. (Its log is only for the failure message: a last line written in parts may be
   * cut there, see the report of this test.)
   */
  async function succeeds(name: string): Promise<void> {
    await waitFor(`${name} Succeeded`, 40_000, async () => {
      const phase = (await podJson(name)).status?.phase;
      if (phase === 'Failed') throw new Error(`${name} failed: ${await logsOf(name)}`);
      return phase === 'Succeeded';
    });
  }

  function logsOf(name: string): Promise<string> {
    return cluster.kubectl('logs', name).catch((err: Error) => err.message);
  }

  /** The `err` fields of the flyces up log's JSON lines. */
  function loggedErrors(): string[] {
    const lines = readFileSync(cluster.logFile, 'utf8').split('\n');
    return lines.filter((l) => l.startsWith('{')).map((l) => String(JSON.parse(l).err ?? ''));
  }

  /** Waits for the container's CreateContainerConfigError and returns its message. */
  async function configError(name: string): Promise<string> {
    let message = '';
    await waitFor(`${name} CreateContainerConfigError`, 30_000, async () => {
      const waiting = (await podJson(name)).status?.containerStatuses?.[0]?.state?.waiting;
      message = waiting?.message ?? '';
      return waiting?.reason === 'CreateContainerConfigError';
    });
    return message;
  }

  async function eventMessages(name: string): Promise<string[]> {
    const out = await cluster.kubectl(
      'get',
      'events',
      '--field-selector',
      `involvedObject.name=${name}`,
      '-o',
      'json',
    );
    return JSON.parse(out).items.map((e: { message: string }) => e.message);
  }

  before(async () => {
    await cluster.start();
    await cluster.importWebImage();
    await apply('files', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'files' },
      data: { one: '1', two: '2' },
    });
    await apply('climb', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'climb' },
      stringData: { dir: `${SECRET_VALUE}/../..`, nul: `${SECRET_VALUE}\0tail` },
    });
  });

  after(async () => {
    await cluster.kubectlResult('delete', 'pods', '-l', 'test=volattack', '--wait=false');
    await cluster.destroy();
    await run('ip', ['link', 'del', 'flycesvv0']).catch(() => undefined);
  });

  test('the API refuses reserved item paths and subPath beside subPathExpr', async () => {
    const res = await apply(
      'refused',
      pod(
        'refused',
        { volumeMounts: [{ name: 'cfg', mountPath: '/c', subPath: 'a', subPathExpr: '$(X)' }] },
        [{ name: 'cfg', configMap: { name: 'files', items: [{ key: 'one', path: '..data' }] } }],
      ),
    );
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /configMap\.items\[0\]\.path: Invalid value: "\.\.data": must not/);
    assert.match(res.stderr, /subPathExpr: Invalid value: "\$\(X\)": subPathExpr and subPath/);
  });

  test('pods run: cleaned item paths, subPathExpr, resourceFieldRef, a user not root', async () => {
    const cleaned = pod(
      'paths',
      {
        command: ['cat', '/cfg/x', '/cfg/a/b', '/one'],
        volumeMounts: [
          { name: 'cfg', mountPath: '/cfg' },
          { name: 'cfg', mountPath: '/one', subPath: 'x' },
        ],
      },
      [
        {
          name: 'cfg',
          configMap: {
            name: 'files',
            items: [
              { key: 'one', path: './x' },
              { key: 'two', path: 'a//b' },
            ],
          },
        },
      ],
    );
    const resource = (resource: string) => ({ resourceFieldRef: { resource, divisor: '1Mi' } });
    const own = pod(
      'spe',
      {
        command: ['sh', '-c', SPE_SCRIPT],
        env: [
          { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'MEM', valueFrom: resource('limits.memory') },
          { name: 'REQ', valueFrom: resource('requests.memory') },
        ],
        volumeMounts: [
          { name: 'work', mountPath: '/all' },
          { name: 'work', mountPath: '/mine', subPathExpr: 'pods/$(POD_NAME)' },
          { name: 'work', mountPath: '/ro', subPath: 'pods', readOnly: true },
        ],
      },
      [{ name: 'work', emptyDir: {} }],
    );
    const nonRoot = pod(
      'nonroot',
      {
        securityContext: { runAsUser: 1000, runAsGroup: 1000 },
        command: ['cat', '/cfg/one'],
        volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }],
      },
      [{ name: 'cfg', configMap: { name: 'files' } }],
    );
    for (const p of [cleaned, own, nonRoot]) {
      assert.equal((await apply((p as { metadata: { name: string } }).metadata.name, p)).code, 0);
    }
    await succeeds('paths');
    await succeeds('spe');
    await succeeds('nonroot');
  });

  test('items that make a file a directory: status, Event, log, nothing on disk', async () => {
    const clash = pod(
      'clash',
      { command: ['sleep', '3600'], volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }] },
      [
        {
          name: 'cfg',
          configMap: {
            name: 'files',
            items: [
              { key: 'one', path: 'k' },
              { key: 'two', path: 'k/x' },
            ],
          },
        },
      ],
    );
    assert.equal((await apply('clash', clash)).code, 0);
    const want = 'volume "cfg": file path k is also the directory of k/x';
    assert.equal(await configError('clash'), want);
    await waitFor('the Event', 10_000, async () =>
      (await eventMessages('clash')).includes(`Error: ${want}`),
    );
    assert.ok(loggedErrors().includes(want), 'the agent logs it');
    const uid = (await podJson('clash')).metadata.uid;
    const dir = join(cluster.dataDir, 'pods', uid, 'volumes', 'cfg');
    assert.deepEqual(readdirSync(dir), [], 'no half-written generation is left');
  });

  test('a subPathExpr from a Secret that climbs is refused without its value', async () => {
    const climb = pod(
      'climb',
      {
        command: ['sleep', '3600'],
        env: [{ name: 'D', valueFrom: { secretKeyRef: { name: 'climb', key: 'dir' } } }],
        volumeMounts: [{ name: 'w', mountPath: '/w', subPathExpr: 'x/$(D)' }],
      },
      [{ name: 'w', emptyDir: {} }],
    );
    assert.equal((await apply('climb', climb)).code, 0);
    const message = await configError('climb');
    assert.equal(message, "subPathExpr x/$(D) must expand to a relative path without '..'");
    await waitFor('the Event', 10_000, async () =>
      (await eventMessages('climb')).includes(`Error: ${message}`),
    );
    const seen = [
      JSON.stringify(await podJson('climb')),
      JSON.stringify(await eventMessages('climb')),
      readFileSync(cluster.logFile, 'utf8'),
    ];
    for (const text of seen) assert.ok(!text.includes(SECRET_VALUE));
  });

  test('a symlink swapped in after the subPath check does not reach the host', async () => {
    // A host directory the attacker's symlink names; runc resolves links on the host.
    const host = mkdtempSync(join(tmpdir(), 'flyces-volattack-host-'));
    mkdirSync(join(host, 'new'));
    writeFileSync(join(host, 'new', 'marker'), `${HOST_MARK}\n`);
    try {
      // The first container waits for the agent to make dir/new (the subPath's missing
      // part, made while it is checked), then puts a symlink to the host in dir's place.
      const swap =
        'mkdir -p /w/dir; touch /w/ready; while [ ! -d /w/dir/new ]; do :; done;' +
        ` mv /w/dir /w/old; ln -s ${host} /w/dir; sleep 3600`;
      const ready = ['sh', '-c', 'while [ ! -f /w/ready ]; do sleep 0.05; done'];
      const spec = pod('swap', {}, [{ name: 'w', emptyDir: {} }]) as any;
      spec.spec.restartPolicy = 'Always';
      spec.spec.containers = [
        {
          name: 'swapper',
          image: IMAGE,
          imagePullPolicy: 'Never',
          command: ['sh', '-c', swap],
          lifecycle: { postStart: { exec: { command: ready } } },
          volumeMounts: [{ name: 'w', mountPath: '/w' }],
        },
        {
          name: 'victim',
          image: IMAGE,
          imagePullPolicy: 'Never',
          command: ['sh', '-c', 'cat /x/marker; sleep 3600'],
          volumeMounts: [{ name: 'w', mountPath: '/x', subPath: 'dir/new' }],
        },
      ];
      assert.equal((await apply('swap', spec)).code, 0);
      let state: any;
      await waitFor('the victim started or refused', 30_000, async () => {
        const statuses = (await podJson('swap')).status?.containerStatuses ?? [];
        state = statuses.find((c: { name: string }) => c.name === 'victim')?.state;
        return !!state?.running || state?.waiting?.reason === 'CreateContainerConfigError';
      });
      await new Promise((r) => setTimeout(r, 500));
      const logs = await cluster.kubectlResult('logs', 'swap', '-c', 'victim');
      assert.ok(!logs.stdout.includes(HOST_MARK), `the host's file was read: ${logs.stdout}`);
      if (state.waiting) assert.match(state.waiting.message, /^subPath dir\/new /);
    } finally {
      await cluster.kubectlResult('delete', 'pod', 'swap', '--grace-period=0', '--force');
      rmSync(host, { recursive: true, force: true });
    }
  });

  test('a Secret value with a NUL byte in env is refused without its value', async () => {
    const nul = pod('nul', {
      command: ['sleep', '3600'],
      env: [{ name: 'N', valueFrom: { secretKeyRef: { name: 'climb', key: 'nul' } } }],
    });
    assert.equal((await apply('nul', nul)).code, 0);
    const message = await configError('nul');
    assert.equal(message, 'env N: its value holds a NUL byte, which no environment can');
    await waitFor('the Event', 10_000, async () =>
      (await eventMessages('nul')).includes(`Error: ${message}`),
    );
    const seen = [
      JSON.stringify(await podJson('nul')),
      JSON.stringify(await eventMessages('nul')),
      readFileSync(cluster.logFile, 'utf8'),
    ];
    for (const text of seen) assert.ok(!text.includes(SECRET_VALUE));
  });

  test('a Secret deleted while mounted: the files stay, an Event and the log say so', async () => {
    await apply('gone', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'gone' },
      stringData: { token: 'kept' },
    });
    const holder = pod(
      'holder',
      { command: ['sleep', '3600'], volumeMounts: [{ name: 's', mountPath: '/s' }] },
      [{ name: 's', secret: { secretName: 'gone' } }],
    );
    assert.equal((await apply('holder', holder)).code, 0);
    await waitFor('holder Running', 30_000, async () =>
      /holder\s+1\/1\s+Running/.test(await cluster.kubectl('get', 'pod', 'holder')),
    );
    await cluster.kubectl('delete', 'secret', 'gone');
    const want = 'MountVolume.SetUp failed: volume "s": secret "gone" not found';
    await waitFor('the FailedMount Event', 20_000, async () =>
      (await eventMessages('holder')).includes(want),
    );
    assert.ok(loggedErrors().includes('volume "s": secret "gone" not found'), 'logged');
    const file = await cluster.kubectl('exec', 'holder', '--', 'cat', '/s/token');
    assert.equal(file, 'kept');
  });

  test('deleting the pods unmounts every volume and subPath and removes their files', async () => {
    await cluster.kubectl('delete', 'pods', '-l', 'test=volattack', '--wait=false');
    await waitFor(
      'pods gone',
      30_000,
      async () => (await cluster.kubectl('get', 'pods', '-o', 'name')).trim() === '',
    );
    const pods = join(cluster.dataDir, 'pods');
    // Volumes go before the pod's object, but pods of earlier tests may still be on their way.
    await waitFor(
      'nothing left',
      10_000,
      async () => (await mountsUnder(pods)).length === 0 && readdirSync(pods).length === 0,
    );
    assert.deepEqual(readdirSync(pods), []);
  });
});
