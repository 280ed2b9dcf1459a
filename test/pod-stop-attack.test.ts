import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, waitFor } from './helpers/cluster.js';

/**
 * Attacks on how pods stop, pull and report under `flyces up`, found by re-running issue
 * 3's cases with kubectl: a preStop hook that outlasts the grace period, a grace period
 * shortened while the pod stops, preStop before a kill for a liveness probe or a postStart
 * hook, a pull secret that is not there, a Secret in a termination message, an image's
 * unknown stop signal and its User by name. Port 17679 is one of this file's and nothing
 * listens on it.
 */

const run = promisify(execFile);

describe('attacks on the life of a pod', { timeout: 180_000 }, () => {
  const cluster = new TestCluster({
    podCidr: '10.42.203.0/24',
    bridge: 'flyceshC0',
    port: 17670,
    agentPort: 17671,
  });

  let webArchive = '';

  before(async () => {
    await cluster.start();
    webArchive = (await cluster.importWebImage()).archive;
  });
  after(async () => {
    await cluster.destroy();
  });

  async function apply(name: string, spec: object): Promise<void> {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec };
    const file = join(cluster.dataDir, `${name}.json`);
    writeFileSync(file, JSON.stringify(pod));
    await cluster.kubectl('apply', '-f', file);
  }

  test('a preStop hook that outlasts the grace period is followed by the stop signal', async () => {
    const grace = 3;
    await apply('long-pre-stop', {
      terminationGracePeriodSeconds: grace,
      containers: [
        {
          name: 'c',
          image: 'localhost/flyces-web:1',
          imagePullPolicy: 'Never',
          // The image's stop signal is SIGTERM.
          command: [
            'sh',
            '-c',
            'trap "echo got-term; exit 0" TERM; echo up; while :; do sleep 0.1; done',
          ],
          lifecycle: { preStop: { exec: { command: ['sleep', '60'] } } },
        },
      ],
    });
    await cluster.kubectl('wait', '--for=condition=Ready', 'pod/long-pre-stop', '--timeout=30s');
    const logs = spawn('kubectl', [
      '--kubeconfig',
      cluster.kubeconfig,
      'logs',
      '-f',
      'long-pre-stop',
    ]);
    let out = '';
    logs.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const ended = new Promise((resolve) => logs.once('exit', resolve));
    await waitFor('the log stream', 10_000, async () => out.includes('up'));

    const started = Date.now();
    await cluster.kubectl('delete', 'pod', 'long-pre-stop', '--timeout=60s');
    const took = Date.now() - started;
    await ended;
    assert.match(out, /got-term/, 'the container heard its stop signal after preStop');
    assert.ok(took >= grace * 1000, `deleted after ${took} ms, within the grace period`);
    assert.ok(took < (grace + 2) * 1000 + 3000, `deleted after ${took} ms`);
  });

  test('a grace period shortened while the pod stops ends the stop sooner', async () => {
    const ignoreTerm = ['sh', '-c', 'trap "" TERM; echo up; while :; do sleep 0.1; done'];
    const container = { image: 'localhost/flyces-web:1', imagePullPolicy: 'Never' };
    await apply('shortened', {
      terminationGracePeriodSeconds: 60,
      containers: [
        { ...container, name: 'a', command: ignoreTerm },
        {
          ...container,
          name: 'b',
          command: ignoreTerm,
          lifecycle: { preStop: { exec: { command: ['sleep', '50'] } } },
        },
      ],
    });
    await cluster.kubectl('wait', '--for=condition=Ready', 'pod/shortened', '--timeout=30s');
    await cluster.kubectl('delete', 'pod', 'shortened', '--wait=false');
    // The agent has begun the stop with 60 s (preStop runs, TERM is ignored).
    await new Promise((r) => setTimeout(r, 2000));

    const started = Date.now();
    await cluster.kubectl('delete', 'pod', 'shortened', '--grace-period=2', '--timeout=90s');
    const took = Date.now() - started;
    assert.ok(took < 10_000, `the pod went ${took} ms after its grace period became 2 s`);
  });

  test('a container killed for its liveness probe runs its preStop hook first', async () => {
    await apply('liveness-pre-stop', {
      terminationGracePeriodSeconds: 5,
      containers: [
        {
          name: 'c',
          image: 'localhost/flyces-web:1',
          imagePullPolicy: 'Never',
          command: ['sh', '-c', 'trap "echo got-term; exit 0" TERM; while :; do sleep 0.1; done'],
          livenessProbe: {
            exec: { command: ['test', '-e', '/tmp/alive'] },
            initialDelaySeconds: 1,
            periodSeconds: 1,
            failureThreshold: 1,
          },
          lifecycle: {
            preStop: { exec: { command: ['sh', '-c', 'echo pre-stop-ran > /proc/1/fd/1'] } },
          },
        },
      ],
    });
    let previous = '';
    await waitFor('the first instance killed', 30_000, async () => {
      previous = await cluster.kubectl('logs', 'liveness-pre-stop', '--previous');
      return previous.includes('got-term');
    });
    assert.match(previous, /pre-stop-ran\n(.*\n)*got-term/, 'preStop ran before the stop signal');
    await cluster.kubectl('delete', 'pod', 'liveness-pre-stop', '--grace-period=1');
  });

  test('a container killed for its failed postStart hook runs its preStop hook first', async () => {
    await apply('post-start-pre-stop', {
      terminationGracePeriodSeconds: 5,
      restartPolicy: 'Never',
      containers: [
        {
          name: 'c',
          image: 'localhost/flyces-web:1',
          imagePullPolicy: 'Never',
          command: ['sh', '-c', 'trap "echo got-term; exit 0" TERM; while :; do sleep 0.1; done'],
          lifecycle: {
            postStart: { exec: { command: ['sh', '-c', 'exit 1'] } },
            preStop: { exec: { command: ['sh', '-c', 'echo pre-stop-ran > /proc/1/fd/1'] } },
          },
        },
      ],
    });
    let log = '';
    await waitFor('the container killed', 30_000, async () => {
      log = await cluster.kubectl('logs', 'post-start-pre-stop');
      return log.includes('got-term');
    });
    assert.match(log, /pre-stop-ran\n(.*\n)*got-term/, 'preStop ran before the stop signal');
    await cluster.kubectl('delete', 'pod', 'post-start-pre-stop', '--grace-period=1');
  });

  /**
   * Imports the demo image changed by `umoci config` with `configArgs` (and, with `files`,
   * those files added under its root) as localhost/NAME:1.
   */
  async function importVariant(
    name: string,
    configArgs: string[],
    files: Record<string, string> = {},
  ): Promise<void> {
    const work = join(cluster.dataDir, `variant-${name}`);
    mkdirSync(work);
    const layout = join(work, 'oci');
    const archive = join(work, 'image.tar');
    const policy = join(cluster.dataDir, 'policy.json');
    writeFileSync(policy, '{"default":[{"type":"insecureAcceptAnything"}]}');
    const skopeo = (from: string, to: string) =>
      run('skopeo', ['--policy', policy, 'copy', '--quiet', from, to]);
    await skopeo(`oci-archive:${webArchive}`, `oci:${layout}:web`);
    if (Object.keys(files).length > 0) {
      const bundle = join(work, 'bundle');
      await run('umoci', ['unpack', '--image', `${layout}:web`, bundle]);
      for (const [file, text] of Object.entries(files)) {
        writeFileSync(join(bundle, 'rootfs', file), text);
      }
      await run('umoci', ['repack', '--image', `${layout}:web`, bundle]);
    }
    await run('umoci', ['config', '--image', `${layout}:web`, '--tag', 'v', ...configArgs]);
    await skopeo(`oci:${layout}:v`, `oci-archive:${archive}`);
    const ref = `localhost/${name}:1`;
    await cluster.flyces('image', 'import', '--data-dir', cluster.dataDir, '--name', ref, archive);
  }

  test('a pod whose image names a stop signal runc does not know is deleted', async () => {
    await importVariant('bad-signal', ['--config.stopsignal', 'SIGFOO']);
    await apply('bad-signal', {
      terminationGracePeriodSeconds: 30,
      containers: [{ name: 'c', image: 'localhost/bad-signal:1', imagePullPolicy: 'Never' }],
    });
    await cluster.kubectl('wait', '--for=condition=Ready', 'pod/bad-signal', '--timeout=30s');
    const started = Date.now();
    await cluster.kubectl('delete', 'pod', 'bad-signal', '--timeout=60s');
    // SIGTERM stands in, which the image's shell answers by exiting.
    assert.ok(Date.now() - started < 10_000, `deleted after ${Date.now() - started} ms`);
  });

  test("an image's User by name runs as its /etc/passwd says, with its groups", async () => {
    await importVariant('named-user', ['--config.user', 'node'], {
      'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n',
      'etc/group': 'root:x:0:\nnode:x:1000:\ndocker:x:998:node\n',
    });
    await apply('named-user', {
      restartPolicy: 'Never',
      containers: [
        { name: 'c', image: 'localhost/named-user:1', imagePullPolicy: 'Never', command: ['id'] },
      ],
    });
    let out = '';
    await waitFor('id to print', 30_000, async () => {
      out = await cluster.kubectl('logs', 'named-user').catch(() => '');
      return out !== '';
    });
    assert.equal(out.trim(), 'uid=1000(node) gid=1000(node) groups=998(docker)');
    await cluster.kubectl('delete', 'pod', 'named-user', '--grace-period=1');
  });

  test("a termination message taken from the log shows no Secret's value", async () => {
    const value = 'Zebra-Quux-9731';
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db' },
      stringData: { pw: value },
    };
    const file = join(cluster.dataDir, 'db-secret.json');
    writeFileSync(file, JSON.stringify(secret));
    await cluster.kubectl('apply', '-f', file);
    await apply('tells-secret', {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'c',
          image: 'localhost/flyces-web:1',
          imagePullPolicy: 'Never',
          terminationMessagePolicy: 'FallbackToLogsOnError',
          env: [{ name: 'PW', valueFrom: { secretKeyRef: { name: 'db', key: 'pw' } } }],
          command: ['sh', '-c', 'echo "connecting with $PW"; exit 3'],
        },
      ],
    });
    let message = '';
    await waitFor('the container to fail', 30_000, async () => {
      const path = '{.status.containerStatuses[0].state.terminated.message}';
      message = await cluster.kubectl('get', 'pod', 'tells-secret', '-o', `jsonpath=${path}`);
      return message !== '';
    });
    assert.equal(message.trim(), 'connecting with [hidden]');
    await cluster.kubectl('delete', 'pod', 'tells-secret', '--grace-period=1');
  });

  test('an imagePullSecret that is not there is named in an Event and the pull error', async () => {
    await apply('missing-secret', {
      imagePullSecrets: [{ name: 'no-such-secret' }],
      containers: [{ name: 'c', image: '127.0.0.1:17679/team/web:1' }],
    });
    const events = () =>
      cluster.kubectl('get', 'events', '--field-selector', 'involvedObject.name=missing-secret');
    await waitFor('the Event', 30_000, async () =>
      /FailedToRetrieveImagePullSecret.*"no-such-secret" not found/.test(await events()),
    );
    await waitFor('the pull error', 30_000, async () =>
      /Failed to pull image.*"no-such-secret" not found/.test(await events()),
    );
    await cluster.kubectl('delete', 'pod', 'missing-secret', '--grace-period=1');
  });
});
