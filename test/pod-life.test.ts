import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { TestCluster, waitFor } from './helpers/cluster.js';
import { startRegistry } from './helpers/registry.js';

/**
 * The life of a pod under `flyces up` with real containers: probes, security contexts, and
 * images pulled from a real registry on loopback (Debian's docker-registry behind htpasswd)
 * with credentials from an imagePullSecret.
 */

const run = promisify(execFile);
const USER = 'puller';
const PASSWORD = 'Pod-life-S3cret';

describe('the life of a pod', { timeout: 300_000 }, () => {
  const cluster = new TestCluster({
    podCidr: '10.42.239.0/24',
    bridge: 'flycesprb0',
    port: 16743,
    agentPort: 16750,
  });
  const children: ChildProcess[] = [];
  let registry = 0;

  before(async () => {
    await cluster.start();
    const { archive } = await cluster.importWebImage();
    const htpasswd = join(cluster.dataDir, 'htpasswd');
    writeFileSync(htpasswd, (await run('htpasswd', ['-Bbn', USER, PASSWORD])).stdout);
    const storage = join(cluster.dataDir, 'registry');
    mkdirSync(storage);
    registry = await startRegistry(cluster.dataDir, 'registry', storage, htpasswd, children);
    const policy = join(cluster.dataDir, 'policy.json');
    writeFileSync(policy, '{"default":[{"type":"insecureAcceptAnything"}]}');
    await run('skopeo', [
      '--policy',
      policy,
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      '--dest-creds',
      `${USER}:${PASSWORD}`,
      `oci-archive:${archive}`,
      `docker://127.0.0.1:${registry}/team/web:2`,
    ]);
  });
  after(async () => {
    for (const child of children) child.kill('SIGTERM');
    await cluster.destroy();
  });

  async function apply(
    name: string,
    container: Record<string, unknown>,
    spec: object = {},
  ): Promise<void> {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          { name: 'c', image: 'localhost/flyces-web:1', imagePullPolicy: 'Never', ...container },
        ],
        ...spec,
      },
    };
    const file = join(cluster.dataDir, `${name}.json`);
    writeFileSync(file, JSON.stringify(pod));
    await cluster.kubectl('apply', '-f', file);
  }

  async function status(name: string): Promise<any> {
    return JSON.parse(await cluster.kubectl('get', 'pod', name, '-o', 'json')).status;
  }

  async function waitForLog(name: string, pattern: RegExp): Promise<string> {
    let text = '';
    await waitFor(`${name} to log ${pattern}`, 30_000, async () => {
      text = await cluster.kubectl('logs', name).catch(() => '');
      return pattern.test(text);
    });
    return text;
  }

  const ready = (s: any) => s?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True';

  test('a passing readiness probe makes the pod Ready; a failing one keeps it Running but not Ready', async () => {
    await apply('ready-ok', {
      readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
    });
    await apply('ready-bad', {
      readinessProbe: {
        httpGet: { path: '/missing', port: 8080 },
        periodSeconds: 1,
        failureThreshold: 1,
      },
    });
    await waitFor('ready-ok Ready', 30_000, async () => ready(await status('ready-ok')));
    await waitFor(
      'ready-bad Running',
      30_000,
      async () => (await status('ready-bad'))?.phase === 'Running',
    );
    await new Promise((r) => setTimeout(r, 3000));
    const bad = await status('ready-bad');
    assert.equal(ready(bad), false);
    assert.equal(bad.containerStatuses[0].ready, false);
    assert.match(await cluster.kubectl('get', 'pod', 'ready-bad'), /0\/1\s+Running/);
    const events = await cluster.kubectl(
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=ready-bad',
    );
    assert.match(
      events,
      /Unhealthy.*Readiness probe failed: HTTP probe failed with statuscode: 404/,
    );
  });

  test('the pod IP reaches env and /etc/hosts, whether or not containers start before the network', async () => {
    const show = ['sh', '-c', 'echo "env=$POD_IP"; cat /etc/hosts; sleep 1000'];
    // No env naming the IP: created while the network is attached, /etc/hosts filled in after.
    await apply('ip-hosts', { command: show });
    // An env naming the IP: created only once the network is attached.
    await apply('ip-env', {
      command: show,
      env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
    });
    for (const name of ['ip-hosts', 'ip-env']) {
      await waitFor(`${name} to have an IP`, 30_000, async () => !!(await status(name))?.podIP);
      const ip = (await status(name)).podIP as string;
      const text = await waitForLog(
        name,
        new RegExp(`^${ip.replace(/\./g, '\\.')}\\s+${name}$`, 'm'),
      );
      assert.match(text, name === 'ip-env' ? new RegExp(`^env=${ip}$`, 'm') : /^env=$/m);
    }
  });

  test('a failing liveness probe restarts the container', async () => {
    await apply('live', {
      command: ['sh', '-c', 'touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600'],
      livenessProbe: {
        exec: { command: ['cat', '/tmp/healthy'] },
        periodSeconds: 1,
        failureThreshold: 2,
      },
    });
    await waitFor(
      'a liveness restart',
      60_000,
      async () => (await status('live'))?.containerStatuses?.[0]?.restartCount >= 1,
    );
    const events = await cluster.kubectl(
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=live',
    );
    assert.match(events, /Container c failed liveness probe, will be restarted/);
  });

  test('a changed image restarts the container with it, whatever the restart policy', async () => {
    const archive = join(cluster.dataDir, 'web.tar');
    const name = 'localhost/flyces-web:2';
    await cluster.flyces('image', 'import', '--data-dir', cluster.dataDir, '--name', name, archive);
    const command = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];
    await apply('swap', { command }, { restartPolicy: 'Never' });
    const running = async () => (await status('swap'))?.containerStatuses?.[0]?.state?.running;
    await waitFor('swap to run', 30_000, async () => !!(await running()));
    const first = (await status('swap')).containerStatuses[0].containerID;
    await cluster.kubectl('set', 'image', 'pod/swap', `c=${name}`);
    await waitFor('swap to run its new image', 30_000, async () => {
      const c = (await status('swap'))?.containerStatuses?.[0];
      return !!c?.state?.running && c.containerID !== first;
    });
    const c = (await status('swap')).containerStatuses[0];
    assert.equal(c.image, name);
    assert.equal(c.restartCount, 1);
    const events = await cluster.kubectl(
      ...['get', 'events', '--field-selector', 'involvedObject.name=swap'],
    );
    assert.match(events, /Container c definition changed, will be restarted/);
  });

  test("a container's termination message, or its log's end, shows in its status", async () => {
    const terminated = async (name: string) => {
      let state: any;
      await waitFor(`${name} to end`, 30_000, async () => {
        state = (await status(name))?.containerStatuses?.[0]?.state?.terminated;
        return state !== undefined;
      });
      return state;
    };
    const never = { restartPolicy: 'Never' };
    await apply(
      'term-file',
      {
        command: [
          'sh',
          '-c',
          'echo -n "config missing: /etc/app.yaml" > /dev/termination-log; exit 3',
        ],
      },
      never,
    );
    await apply(
      'term-path',
      {
        command: ['sh', '-c', 'echo done > /tmp/last-word'],
        terminationMessagePath: '/tmp/last-word',
      },
      never,
    );
    await apply(
      'term-logs',
      {
        command: ['sh', '-c', 'echo starting; echo "fatal: no database" >&2; exit 1'],
        terminationMessagePolicy: 'FallbackToLogsOnError',
      },
      never,
    );
    await apply(
      'term-logs-ok',
      {
        command: ['sh', '-c', 'echo all fine'],
        terminationMessagePolicy: 'FallbackToLogsOnError',
      },
      never,
    );
    const file = await terminated('term-file');
    assert.equal(file.exitCode, 3);
    assert.equal(file.message, 'config missing: /etc/app.yaml');
    assert.equal((await terminated('term-path')).message, 'done\n');
    assert.equal((await terminated('term-logs')).message, 'starting\nfatal: no database\n');
    assert.equal((await terminated('term-logs-ok')).message, undefined, 'success: no fallback');
    assert.match(
      await cluster.kubectl('describe', 'pod', 'term-file'),
      /Message:\s+config missing: \/etc\/app\.yaml/,
    );
    await cluster.kubectl('delete', 'pod', 'term-file', 'term-path', 'term-logs', 'term-logs-ok');
  });

  test('a pod past its activeDeadlineSeconds fails with DeadlineExceeded; its logs stay', async () => {
    await apply(
      'deadline',
      { command: ['sh', '-c', 'echo working; sleep 3600'] },
      { activeDeadlineSeconds: 3 },
    );
    let s: any;
    await waitFor('the pod to fail', 30_000, async () => {
      s = await status('deadline');
      return s?.phase === 'Failed';
    });
    assert.equal(s.reason, 'DeadlineExceeded');
    assert.equal(s.message, 'Pod was active on the node longer than the specified deadline');
    assert.ok(s.containerStatuses[0].state.terminated, 'its container was stopped');
    const started = Date.parse(s.startTime);
    const ended = Date.parse(s.containerStatuses[0].state.terminated.finishedAt);
    assert.ok(
      ended - started >= 3000 && ended - started < 15_000,
      `ended after ${ended - started} ms`,
    );
    assert.match(await cluster.kubectl('logs', 'deadline'), /working/);
    const events = await cluster.kubectl(
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=deadline',
    );
    assert.match(events, /DeadlineExceeded/);
    await cluster.kubectl('delete', 'pod', 'deadline');
  });

  test('pods past their ephemeral storage are evicted: a container limit, an emptyDir sizeLimit', async () => {
    await apply('disk-hog', {
      command: ['sh', '-c', 'dd if=/dev/zero of=/fill bs=1M count=6; echo filled; sleep 3600'],
      resources: { limits: { 'ephemeral-storage': '2Mi' } },
    });
    await apply(
      'dir-hog',
      {
        command: ['sh', '-c', 'dd if=/dev/zero of=/cache/fill bs=1M count=3; sleep 3600'],
        volumeMounts: [{ name: 'cache', mountPath: '/cache' }],
      },
      { volumes: [{ name: 'cache', emptyDir: { sizeLimit: '1Mi' } }] },
    );
    // Its termination message file is on the node's disk too, read or not.
    await apply('message-hog', {
      command: ['sh', '-c', 'dd if=/dev/zero of=/dev/termination-log bs=1M count=6; sleep 3600'],
      resources: { limits: { 'ephemeral-storage': '2Mi' } },
    });
    await apply('disk-ok', {
      command: ['sh', '-c', 'dd if=/dev/zero of=/fill bs=1M count=1; sleep 3600'],
      resources: { limits: { 'ephemeral-storage': '8Mi' } },
    });
    const failed = async (name: string) => {
      let s: any;
      await waitFor(`${name} to be evicted`, 40_000, async () => {
        s = await status(name);
        return s?.phase === 'Failed';
      });
      return s;
    };
    const hog = await failed('disk-hog');
    assert.equal(hog.reason, 'Evicted');
    assert.match(
      hog.message,
      /^Container c took [\d.]+Mi of ephemeral storage, more than its limit of 2Mi\.$/,
    );
    assert.ok(hog.containerStatuses[0].state.terminated, 'its container was stopped');
    // A sync queued meanwhile, which sees the pod as it was, must not start it again.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const later = await status('disk-hog');
    assert.equal(later.phase, 'Failed', 'an evicted pod stays Failed');
    assert.equal(later.containerStatuses[0].restartCount, 0, 'its container is not restarted');
    assert.match(await cluster.kubectl('logs', 'disk-hog'), /filled/);
    const dir = await failed('dir-hog');
    const uid = JSON.parse(await cluster.kubectl('get', 'pod', 'dir-hog', '-o', 'json')).metadata
      .uid;
    await waitFor('the evicted pod to free its emptyDir', 10_000, async () => {
      return !existsSync(join(cluster.dataDir, 'pods', uid, 'volumes', 'cache'));
    });
    assert.match(
      dir.message,
      /^emptyDir volume "cache" holds [\d.]+Mi, more than its sizeLimit of 1Mi\.$/,
    );
    assert.match((await failed('message-hog')).message, /^Container c took [\d.]+Mi/);
    assert.match(
      await cluster.kubectl('get', 'events', '--field-selector', 'involvedObject.name=disk-hog'),
      /Warning\s+Evicted/,
    );
    assert.equal((await status('disk-ok')).phase, 'Running', 'a pod within its limit runs on');
    await cluster.kubectl('delete', 'pod', 'disk-hog', 'dir-hog', 'message-hog', 'disk-ok');
  });

  test('readiness waits for the startup probe', async () => {
    await apply('slow', {
      command: ['sh', '-c', 'sleep 3; touch /tmp/started; sleep 3600'],
      startupProbe: {
        exec: { command: ['cat', '/tmp/started'] },
        periodSeconds: 1,
        failureThreshold: 30,
      },
    });
    await waitFor('slow Running', 30_000, async () => (await status('slow'))?.phase === 'Running');
    const early = await status('slow');
    assert.equal(
      early.containerStatuses[0].started,
      false,
      'not started before the startup probe passes',
    );
    assert.equal(ready(early), false);
    await waitFor('slow Ready after startup', 30_000, async () => ready(await status('slow')));
    assert.equal((await status('slow')).containerStatuses[0].restartCount, 0);
  });

  test('an image is pulled from a registry with the credentials of an imagePullSecret', async () => {
    const config = {
      auths: {
        [`127.0.0.1:${registry}`]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') },
      },
    };
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'regcred' },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': Buffer.from(JSON.stringify(config)).toString('base64') },
    };
    const file = join(cluster.dataDir, 'regcred.json');
    writeFileSync(file, JSON.stringify(secret));
    await cluster.kubectl('apply', '-f', file);
    const image = `127.0.0.1:${registry}/team/web:2`;
    await apply(
      'pulled',
      { image, imagePullPolicy: 'IfNotPresent' },
      { imagePullSecrets: [{ name: 'regcred' }] },
    );
    await waitFor('pulled Running', 60_000, async () => ready(await status('pulled')));
    const events = await cluster.kubectl(
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=pulled',
    );
    assert.match(events, /Pulling\s+pod\/pulled\s+Pulling image/);
    assert.match(events, /Successfully pulled image/);

    await apply('no-creds', { image, imagePullPolicy: 'Always' });
    await waitFor('ErrImagePull or ImagePullBackOff', 30_000, async () =>
      /ErrImagePull|ImagePullBackOff/.test(await cluster.kubectl('get', 'pod', 'no-creds')),
    );
    const described = await cluster.kubectl('describe', 'pod', 'no-creds');
    assert.match(described, /unauthorized/);
    assert.doesNotMatch(described + cluster.tail(2000), new RegExp(PASSWORD));
  });

  test('securityContext: user, read-only root, capabilities, seccomp and the privilege policy', async () => {
    const script = 'id -u; touch /probe-file 2>&1; unshare -n true 2>&1; echo done; sleep 3600';
    await apply('locked', {
      command: ['sh', '-c', script],
      securityContext: {
        runAsUser: 1000,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      },
    });
    const logs = await waitForLog('locked', /done/);
    assert.match(logs, /^1000$/m);
    assert.match(logs, /Read-only file system/);
    assert.match(logs, /unshare: .*(Operation not permitted|not permitted)/);

    // Creating a user namespace needs no capability, so only the seccomp profile stops it.
    const userns = 'unshare -U true 2>&1 && echo userns-ok; echo done; sleep 3600';
    await apply('as-root', { command: ['sh', '-c', userns] });
    await apply('unconfined', {
      command: ['sh', '-c', userns],
      securityContext: { seccompProfile: { type: 'Unconfined' } },
    });
    assert.match(await waitForLog('as-root', /done/), /Operation not permitted/);
    assert.match(await waitForLog('unconfined', /done/), /userns-ok/);

    await apply('privileged', {
      command: ['sleep', '3600'],
      securityContext: { privileged: true },
    });
    await apply('fd-cwd', { command: ['sleep', '3600'], workingDir: '/proc/self/fd/7' });
    await waitFor('privileged refused', 30_000, async () =>
      /privileged containers are not allowed/.test(
        await cluster.kubectl('describe', 'pod', 'privileged'),
      ),
    );
    await waitFor('workingDir refused', 30_000, async () =>
      /working directory \/proc\/self\/fd\/7 is not allowed/.test(
        await cluster.kubectl('describe', 'pod', 'fd-cwd'),
      ),
    );
  });

  test('init containers run in order before the app; a failed one under Never fails the pod', async () => {
    const volume = { volumes: [{ name: 'work', emptyDir: {} }] };
    const mount = { volumeMounts: [{ name: 'work', mountPath: '/work' }] };
    const init = (name: string, text: string) => ({
      name,
      image: 'localhost/flyces-web:1',
      imagePullPolicy: 'Never',
      command: ['sh', '-c', `echo ${text} >> /work/trail`],
      ...mount,
    });
    await apply(
      'inits',
      { command: ['sh', '-c', 'cat /work/trail; sleep 3600'], ...mount },
      { ...volume, initContainers: [init('first', 'one'), init('second', 'two')] },
    );
    assert.match(await waitForLog('inits', /two/), /^one\ntwo$/m);
    const s = await status('inits');
    assert.equal(s.conditions.find((c: any) => c.type === 'Initialized').status, 'True');
    assert.deepEqual(
      s.initContainerStatuses.map((c: any) => [c.name, c.state.terminated?.exitCode, c.ready]),
      [
        ['first', 0, true],
        ['second', 0, true],
      ],
    );

    await apply(
      'init-fails',
      { command: ['sh', '-c', 'echo app-ran; sleep 3600'] },
      {
        restartPolicy: 'Never',
        initContainers: [
          {
            name: 'bad',
            image: 'localhost/flyces-web:1',
            imagePullPolicy: 'Never',
            command: ['sh', '-c', 'exit 4'],
          },
        ],
      },
    );
    await waitFor(
      'init-fails Failed',
      30_000,
      async () => (await status('init-fails'))?.phase === 'Failed',
    );
    assert.match(await cluster.kubectl('get', 'pod', 'init-fails'), /Init:Error/);
    assert.equal(
      (await status('init-fails')).containerStatuses[0].state.waiting?.reason,
      'PodInitializing',
    );
  });

  test('postStart runs before the container counts as started; preStop runs before the stop', async () => {
    await apply(
      'hooked',
      {
        command: [
          'sh',
          '-c',
          'trap "exit 0" TERM; while [ ! -f /tmp/ps ]; do sleep 0.1; done; echo saw-post-start; sleep 3600 & wait',
        ],
        lifecycle: {
          postStart: { exec: { command: ['sh', '-c', 'touch /tmp/ps'] } },
          preStop: { exec: { command: ['sh', '-c', 'sleep 2'] } },
        },
      },
      { terminationGracePeriodSeconds: 10 },
    );
    await waitForLog('hooked', /saw-post-start/);
    const started = Date.now();
    await cluster.kubectl('delete', 'pod', 'hooked');
    assert.ok(Date.now() - started >= 2000, 'the deletion waited for preStop');

    await apply('bad-hook', {
      command: ['sleep', '3600'],
      lifecycle: { postStart: { exec: { command: ['sh', '-c', 'exit 1'] } } },
    });
    await waitFor('FailedPostStartHook', 30_000, async () =>
      /FailedPostStartHook/.test(
        await cluster.kubectl('get', 'events', '--field-selector', 'involvedObject.name=bad-hook'),
      ),
    );
  });

  test('pods that take their whole grace period to stop hold up no other pod, nor the stop', async () => {
    // sleep as a container's process 1 has no handler for SIGTERM, so it ignores it: each
    // of these takes the full grace period. They outnumber the agent's four sync workers
    // of before, which they all held, so that a new pod waited for the grace period.
    const grace = 8;
    const slow = ['slow-stop-1', 'slow-stop-2', 'slow-stop-3', 'slow-stop-4', 'slow-stop-5'];
    for (const name of slow)
      await apply(name, { command: ['sleep', '3600'] }, { terminationGracePeriodSeconds: grace });
    await waitFor('the slow stoppers Running', 30_000, async () => {
      const states = await Promise.all(slow.map(status));
      return states.every((s) => s?.phase === 'Running');
    });
    await cluster.kubectl('delete', 'pod', '--wait=false', ...slow);
    await new Promise((r) => setTimeout(r, 1000));
    const asked = Date.now();
    await apply('meanwhile', {});
    await waitFor(
      'a new pod Running',
      grace * 1000,
      async () => (await status('meanwhile'))?.phase === 'Running',
    );
    const took = Date.now() - asked;
    assert.ok(took < 5000, `the new pod took ${took} ms`);
    const left = await cluster.kubectl('get', 'pods', '-o', 'name', ...slow);
    assert.equal(left.trim().split('\n').length, slow.length, 'the slow ones were still stopping');

    // Ctrl-C does not wait for their grace periods either; the next start finishes the job.
    const stopping = Date.now();
    assert.equal(await cluster.stop(), 0);
    assert.ok(Date.now() - stopping < 8000, `stopping took ${Date.now() - stopping} ms`);
    await cluster.start();
    await waitFor('the slow stoppers gone', (grace + 20) * 1000, async () =>
      (await cluster.kubectl('get', 'pods', '-o', 'name'))
        .split('\n')
        .every((line) => !line.includes('slow-stop')),
    );
    await cluster.kubectl('delete', 'pod', 'meanwhile');
  });

  test('with --allow-privileged: privileged containers and host namespaces', async () => {
    assert.equal(await cluster.stop(), 0);
    await cluster.start(['--allow-privileged']);
    await apply(
      'root-powers',
      {
        command: ['sh', '-c', 'grep CapEff /proc/self/status; cat /proc/1/comm; sleep 3600'],
        securityContext: { privileged: true },
      },
      { hostPID: true },
    );
    const logs = await waitForLog('root-powers', /CapEff/);
    assert.doesNotMatch(logs, /CapEff:\s+00000000a80425fb/, 'more than the default capabilities');
    assert.doesNotMatch(logs, /^sh$/m, "pid 1 is the node's, not the container's shell");

    await apply(
      'on-host',
      { command: ['httpd', '-f', '-p', '127.0.0.1:18099', '-h', '/www'] },
      { hostNetwork: true },
    );
    await waitFor(
      'on-host Running',
      30_000,
      async () => (await status('on-host'))?.phase === 'Running',
    );
    assert.equal((await status('on-host')).podIP, '127.0.0.1');
    const page = await waitFor("the page on the node's loopback", 15_000, async () =>
      fetch('http://127.0.0.1:18099/').then(
        (r) => r.ok,
        () => false,
      ),
    );
    void page;
    await cluster.kubectl('delete', 'pod', 'on-host', 'root-powers');
  });

  test('flyces up stops promptly while probes are running', async () => {
    const started = Date.now();
    assert.equal(await cluster.stop(), 0);
    assert.ok(Date.now() - started < 10_000, `stopping took ${Date.now() - started} ms`);
  });
});
