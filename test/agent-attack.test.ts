import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sandboxId } from '../src/runtime/records.js';
import { TestCluster, waitFor } from './helpers/cluster.js';

/**
 * Attacks on the agent's side of a pod's life under `flyces up` with real containers: what
 * is left behind when an exec's client vanishes or an exec probe hangs, and what a failing
 * container's messages give away.
 */

/** The command lines of this machine's processes that contain `marker`, with their pids. */
function processesWith(marker: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    if (cmdline.includes(marker)) found.push(`${pid}: ${cmdline}`);
  }
  return found;
}

/** The cgroup directories named `name`, in any hierarchy. */
async function cgroupDirsNamed(name: string): Promise<string[]> {
  const find = ['/sys/fs/cgroup', '-maxdepth', '8', '-type', 'd', '-name', name];
  const { stdout } = await promisify(execFile)('find', find);
  return stdout.split('\n').filter((d) => d !== '');
}

describe('attacks on the agent', { timeout: 240_000 }, () => {
  const cluster = new TestCluster({
    podCidr: '10.42.247.0/24',
    bridge: 'flycesaa1',
    port: 17110,
    agentPort: 17111,
  });

  async function apply(name: string, containers: object[], extra: object = {}): Promise<void> {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: containers.map((c) => ({
          image: 'localhost/flyces-web:1',
          imagePullPolicy: 'Never',
          ...c,
        })),
        ...extra,
      },
    };
    const file = join(cluster.dataDir, `${name}.json`);
    writeFileSync(file, JSON.stringify(pod));
    await cluster.kubectl('apply', '-f', file);
  }

  async function running(name: string): Promise<void> {
    await waitFor(`pod ${name} to run`, 30_000, async () => {
      const phase = await cluster.kubectl('get', 'pod', name, '-o', 'jsonpath={.status.phase}');
      return phase === 'Running';
    });
  }

  before(async () => {
    await cluster.start();
    await cluster.importWebImage();
  });
  after(async () => {
    await cluster.destroy();
  });

  test('an exec whose client vanishes leaves nothing running', async () => {
    await apply('holder', [{ name: 'c', command: ['sleep', '3600'] }]);
    await running('holder');
    // sh forks the sleep (it is not the last command), as a script's commands are.
    const script = 'sleep 70131; echo gone';
    const child = spawn(
      'kubectl',
      ['--kubeconfig', cluster.kubeconfig, 'exec', 'holder', '--', 'sh', '-c', script],
      { stdio: 'ignore' },
    );
    try {
      await waitFor('the exec to run its sleep', 20_000, async () => {
        return processesWith('sleep 70131').some((p) => p.endsWith(': sleep 70131 '));
      });
    } finally {
      child.kill('SIGKILL');
    }
    // Neither the command's children in the container nor runc exec on the agent remain.
    await waitFor('the exec to be cleaned up', 10_000, async () => {
      return processesWith('70131').length === 0;
    }).catch((err: Error) => {
      throw new Error(`${err.message}; left: ${processesWith('70131').join('; ')}`);
    });
  });

  test('an exec probe that hangs is killed at its timeout, not left running', async () => {
    const probe = {
      exec: { command: ['sleep', '70141'] },
      timeoutSeconds: 1,
      periodSeconds: 1,
    };
    await apply('hang-probe', [{ name: 'c', command: ['sleep', '3600'], readinessProbe: probe }]);
    await running('hang-probe');
    await waitFor('three probes to time out', 20_000, async () => {
      const events = await cluster.kubectl(
        'get',
        'events',
        '--field-selector',
        'involvedObject.name=hang-probe,reason=Unhealthy',
        '-o',
        'jsonpath={.items[*].count}',
      );
      const count = events.split(' ').reduce((sum, n) => sum + (Number(n) || 0), 0);
      return count >= 3;
    });
    // At most the probe in progress runs; each one before it was killed.
    const left = processesWith('sleep 70141').filter((p) => p.endsWith(': sleep 70141 '));
    assert.ok(left.length <= 1, `probe commands left running: ${left.join('; ')}`);
    await cluster.kubectl('delete', 'pod', 'hang-probe', '--wait=false');
  });

  test('logs -f goes on after conmon rotates the log at its size limit (10 MiB)', async () => {
    // 11 MB of output makes conmon start a new file; the marker is written to that one.
    const dump = "head -c 11000000 /dev/zero | tr '\\0' x | fold -w 1000";
    const script = `echo begin; sleep 3; ${dump}; echo rotated-marker; sleep 3600`;
    await apply('chatty', [{ name: 'c', command: ['sh', '-c', script] }]);
    await running('chatty');
    const child = spawn('kubectl', ['--kubeconfig', cluster.kubeconfig, 'logs', '-f', 'chatty'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let tail = '';
    let bytes = 0;
    const found = new Promise<boolean>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        tail = (tail + chunk.toString('utf8')).slice(-2000);
        if (tail.includes('rotated-marker')) resolve(true);
      });
      child.on('close', () => resolve(false));
      setTimeout(() => resolve(false), 30_000);
    });
    try {
      assert.ok(await found, `logs -f stopped after ${bytes} bytes: ...${tail.slice(-80)}`);
    } finally {
      child.kill('SIGKILL');
      await cluster.kubectl('delete', 'pod', 'chatty', '--wait=false');
    }
  });

  test('logs --previous of a container that ended for good is refused', async () => {
    const image = { image: 'localhost/flyces-web:1', imagePullPolicy: 'Never' };
    const init = [{ name: 'init', ...image, command: ['echo', 'from-init'] }];
    await apply('ended', [{ name: 'c', command: ['echo', 'from-app'] }], {
      restartPolicy: 'Never',
      initContainers: init,
    });
    await waitFor('the pod to succeed', 30_000, async () => {
      const phase = await cluster.kubectl('get', 'pod', 'ended', '-o', 'jsonpath={.status.phase}');
      return phase === 'Succeeded';
    });
    for (const c of ['init', 'c']) {
      assert.match(await cluster.kubectl('logs', 'ended', '-c', c), /^from-/);
      // kubelet answers from lastState, which neither has: each ran once.
      const got = await cluster.kubectlResult('logs', 'ended', '-c', c, '--previous');
      assert.notEqual(got.code, 0, `${c}: ${got.stdout}`);
      assert.match(got.stderr, new RegExp(`previous terminated container "${c}"`), got.stderr);
    }
  });

  test('a pod deleted with --force and created again starts without waiting for the old', async () => {
    // sleep as process 1 ignores SIGTERM: the old pod's containers take their whole grace.
    await apply('reborn', [{ name: 'c', command: ['sleep', '70171'] }], {
      terminationGracePeriodSeconds: 30,
    });
    await running('reborn');
    const oldUid = await cluster.kubectl('get', 'pod', 'reborn', '-o', 'jsonpath={.metadata.uid}');
    await cluster.kubectl('delete', 'pod', 'reborn', '--force', '--grace-period=0');
    const started = Date.now();
    await apply('reborn', [{ name: 'c', command: ['sleep', '70171'] }]);
    await waitFor('the new pod to run', 30_000, async () => {
      const got = await cluster.kubectl(
        'get',
        'pod',
        'reborn',
        '-o',
        'jsonpath={.metadata.uid} {.status.phase}',
      );
      return got.startsWith(oldUid) ? false : got.endsWith(' Running');
    });
    const seconds = (Date.now() - started) / 1000;
    // The agent stops a gone pod's containers within 10 s; the new pod used to wait for that.
    assert.ok(seconds < 6, `the new pod ran after ${seconds} s`);
    // The old pod's container is still removed, after its grace.
    await waitFor('the old container to go', 20_000, async () => {
      return processesWith('sleep 70171').filter((p) => p.endsWith(': sleep 70171 ')).length === 1;
    });
    await cluster.kubectl('delete', 'pod', 'reborn', '--wait=false');
  });

  test('a pod whose postStart hangs is deleted within its grace period', async () => {
    const postStart = { exec: { command: ['sleep', '70161'] } };
    const c = { name: 'c', command: ['sleep', '3600'], lifecycle: { postStart } };
    await apply('hang-poststart', [c]);
    await waitFor('the postStart hook to run', 20_000, async () => {
      return processesWith('sleep 70161').some((p) => p.endsWith(': sleep 70161 '));
    });
    const started = Date.now();
    await cluster.kubectl('delete', 'pod', 'hang-poststart', '--timeout=60s');
    const seconds = (Date.now() - started) / 1000;
    // Grace period 1 s; the hook's own timeout (30 s) used to hold the deletion.
    assert.ok(seconds < 10, `deleted after ${seconds} s`);
    await waitFor('the hook to end', 10_000, async () => processesWith('70161').length === 0);
  });

  test('a registry that never answers holds up neither other pods nor a deletion', async () => {
    const sockets = new Set<Socket>();
    const registry = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => registry.listen(17195, '127.0.0.1', resolve));
    try {
      const image = '127.0.0.1:17195/attack/hang:1';
      await apply('hang-pull', [{ name: 'c', image, imagePullPolicy: 'IfNotPresent' }]);
      await waitFor('the pull to reach the registry', 20_000, async () => sockets.size > 0);
      // Meanwhile the pod shows what it waits for, as kubelet has it: not Pending without a word.
      await waitFor('the pod to show ContainerCreating', 5_000, async () => {
        const reason = await cluster.kubectl(
          'get',
          'pod',
          'hang-pull',
          '-o',
          'jsonpath={.status.containerStatuses[0].state.waiting.reason}',
        );
        return reason === 'ContainerCreating';
      });
      await apply('during-pull', [{ name: 'c', command: ['sleep', '3600'] }]);
      await running('during-pull');
      const started = Date.now();
      await cluster.kubectl('delete', 'pod', 'hang-pull', '--timeout=60s');
      const seconds = (Date.now() - started) / 1000;
      // The pull's own timeout (30 s without an answer) used to hold the deletion.
      assert.ok(seconds < 10, `deleted after ${seconds} s`);
      await cluster.kubectl('delete', 'pod', 'during-pull', '--wait=false');
    } finally {
      for (const socket of sockets) socket.destroy();
      registry.close();
    }
  });

  test("a Secret's value shows in no status, Event or agent log of a failed start", async () => {
    const value = 'Attack-S3cret-Value';
    await cluster.kubectl('create', 'secret', 'generic', 'attack', `--from-literal=pass=${value}`);
    const env = [{ name: 'PASS', valueFrom: { secretKeyRef: { name: 'attack', key: 'pass' } } }];
    await apply('secret-cmd', [{ name: 'c', command: ['$(PASS)'], env }]);
    let events = '';
    await waitFor('the failed start to be reported', 30_000, async () => {
      events = await cluster.kubectl(
        'get',
        'events',
        '--field-selector',
        'involvedObject.name=secret-cmd,reason=Failed',
        '-o',
        'json',
      );
      return events.includes('executable file not found');
    });
    // The failed start shows in the status too, with why: StartError, as containerd has it.
    let pod = '';
    await waitFor('the failed start in the status', 20_000, async () => {
      pod = await cluster.kubectl('get', 'pod', 'secret-cmd', '-o', 'json');
      const state = JSON.parse(pod).status.containerStatuses?.[0];
      const ended = state?.state?.terminated ?? state?.lastState?.terminated;
      return ended?.reason === 'StartError';
    }).catch((err: Error) => assert.fail(`${err.message}: ${pod}`));
    const failedPod = JSON.parse(pod) as { metadata: { uid: string } };
    const ended = JSON.parse(pod).status.containerStatuses[0].lastState.terminated;
    assert.match(ended.message, /exec: .*\[hidden\].*executable file not found/, pod);
    // runc's words without its log line's time and level, which made each try's Event new.
    assert.match(ended.message, /^runtime failed to create the container: runc create failed: /);
    assert.doesNotMatch(ended.message, /time=|level=|\n/);
    assert.equal(ended.startedAt, '1970-01-01T00:00:00Z', 'never started: the epoch, as kubelet');
    assert.ok(events.includes('[hidden]'), events);
    assert.ok(!events.includes(value), `the Event shows the Secret: ${events}`);
    assert.ok(!pod.includes(value), `the pod's status shows the Secret: ${pod}`);
    // A probe that prints it: its output goes into the Unhealthy Event.
    const probe = { exec: { command: ['sh', '-c', 'echo token=$PASS; exit 1'] }, periodSeconds: 1 };
    const c = { name: 'c', command: ['sleep', '3600'], env, readinessProbe: probe };
    await apply('secret-probe', [c]);
    await waitFor('the probe to fail', 30_000, async () => {
      events = await cluster.kubectl(
        'get',
        'events',
        '--field-selector',
        'involvedObject.name=secret-probe,reason=Unhealthy',
        '-o',
        'json',
      );
      return events.includes('Readiness probe failed');
    });
    assert.ok(events.includes('token=[hidden]'), events);
    assert.ok(!events.includes(value), `the probe's Event shows the Secret: ${events}`);
    const log = readFileSync(cluster.logFile, 'utf8');
    const lines = log.split('\n').filter((l) => l.includes(value));
    assert.deepEqual(lines, [], 'the agent log shows the Secret');
    await cluster.kubectl('delete', 'pod', 'secret-cmd', 'secret-probe', '--wait=false');
    // runc made the pod's cgroup on the way to the failed start: it goes with the pod.
    const sandbox = sandboxId(failedPod.metadata.uid, 0);
    let left: string[] = [];
    await waitFor("the failed pod's cgroups to go", 20_000, async () => {
      left = await cgroupDirsNamed(sandbox);
      return left.length === 0;
    }).catch((err: Error) => assert.fail(`${err.message}: ${left.join(', ')}`));
  });
});
