import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { TestCluster, waitFor } from './helpers/cluster.js';

/**
 * What makes the agent sync a pod under `flyces up`: a change of the pod's spec, labels or
 * status that it did not write itself, its containers' changes, and its own requeues, but
 * not the pod's status it just wrote. A container whose create fails for good is tried
 * again at a growing interval. API port 17400, agent port 17401, pods 10.42.201.0/24, the
 * bridge flyceshA0. The agent logs at debug level, which names
 * each pod sync ("pod sync").
 */

describe('what syncs a pod', { timeout: 300_000 }, () => {
  const cluster = new TestCluster({
    podCidr: '10.42.201.0/24',
    bridge: 'flyceshA0',
    port: 17400,
    agentPort: 17401,
  });

  before(async () => {
    process.env.FLYCES_LOG_LEVEL = 'debug';
    await cluster.start();
    await cluster.importWebImage();
  });
  after(async () => {
    await cluster.destroy();
  });

  async function apply(
    name: string,
    spec: object,
    extra: { container?: object; labels?: Record<string, string> } = {},
  ): Promise<void> {
    const container = {
      name: 'c',
      image: 'localhost/flyces-web:1',
      imagePullPolicy: 'Never',
      command: ['sleep', '3600'],
      ...extra.container,
    };
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels: extra.labels ?? {} },
      spec: { terminationGracePeriodSeconds: 1, containers: [container], ...spec },
    };
    const file = join(cluster.dataDir, `${name}.json`);
    writeFileSync(file, JSON.stringify(pod));
    await cluster.kubectl('apply', '-f', file);
  }

  /** The times (ms) of the agent's log lines about pod `name` that say `msg`. */
  function logged(name: string, msg: string): number[] {
    return readFileSync(cluster.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes(`"pod":"default/${name}"`) && l.includes(`"msg":"${msg}"`))
      .map((l) => (JSON.parse(l) as { time: number }).time);
  }

  const podField = (name: string, jsonpath: string) =>
    cluster.kubectl('get', 'pod', name, '-o', `jsonpath=${jsonpath}`);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test('a pod starts in a few syncs; a running one is synced by its requeue', async (t) => {
    const probe = { exec: { command: ['true'] }, periodSeconds: 1 };
    await apply('quiet', {}, { container: { readinessProbe: probe } });
    await waitFor('the pod to be ready', 30_000, async () => {
      return (await podField('quiet', '{.status.containerStatuses[0].ready}')) === 'true';
    });
    await sleep(3000);
    const started = logged('quiet', 'pod sync').length;
    t.diagnostic(`${started} syncs to start a pod`);
    // Its binding, its container's start seen by the relist, its readiness probe's first
    // success; none for the statuses the agent wrote (running, then ready). There were 5.
    assert.ok(started <= 4, `${started} syncs to start a pod`);
    await sleep(12_000);
    const idle = logged('quiet', 'pod sync').length - started;
    t.diagnostic(`${idle} syncs of a running pod in 12 s`);
    // The periodic look, every 10 s.
    assert.ok(idle >= 1 && idle <= 2, `${idle} syncs of a running pod in 12 s`);
  });

  test('a status someone else writes syncs the pod, which gets its own again', async () => {
    const before = logged('quiet', 'pod sync').length;
    const patch = { status: { conditions: [{ type: 'Ready', status: 'False', reason: 'Other' }] } };
    await cluster.kubectl(
      ...['patch', 'pod', 'quiet', '--subresource=status', '--type=merge'],
      ...['-p', JSON.stringify(patch)],
    );
    // Sooner than the periodic look (10 s).
    await waitFor('the agent to report the pod ready again', 3000, async () => {
      const ready = await podField('quiet', '{.status.conditions[?(@.type=="Ready")].status}');
      return ready === 'True';
    });
    assert.ok(logged('quiet', 'pod sync').length > before);
  });

  test('a label change of a running pod reaches its downwardAPI file', async () => {
    const volume = {
      name: 'info',
      downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] },
    };
    await apply(
      'labelled',
      { volumes: [volume] },
      {
        container: { volumeMounts: [{ name: 'info', mountPath: '/info' }] },
        labels: { tier: 'one' },
      },
    );
    await waitFor('the pod to run', 30_000, async () => {
      return (await podField('labelled', '{.status.containerStatuses[0].ready}')) === 'true';
    });
    const labels = () => cluster.kubectl('exec', 'labelled', '--', 'cat', '/info/labels');
    assert.match(await labels(), /tier="one"/);
    await cluster.kubectl('label', 'pod', 'labelled', 'tier=two', '--overwrite');
    // Sooner than the periodic look (10 s).
    await waitFor('the new label in the file', 5000, async () => /tier="two"/.test(await labels()));
  });

  test('a container that cannot be created is tried again at a growing interval', async (t) => {
    // The runtime refuses to create a container whose working directory is among its fds.
    await apply('refused', {}, { container: { workingDir: '/proc/self/fd/3' } });
    // The image runs as root: a settings error, which kubelet tries again every 10 s.
    await apply('nonroot', { securityContext: { runAsNonRoot: true } });
    await waitFor('CreateContainerError', 30_000, async () => {
      const state = await podField('refused', '{.status.containerStatuses[0].state.waiting}');
      return /CreateContainerError/.test(state) && /working directory/.test(state);
    });
    await sleep(33_000);
    const tries = logged('refused', 'container failed to start');
    const at = tries.map((x) => x - tries[0]);
    t.diagnostic(`tries at ${at.join(', ')} ms`);
    // Back-off as for a crashing container: 10 s, then 20 s (the next one would be 40 s).
    // There were 7 tries, 5 s apart.
    assert.equal(tries.length, 3, `tries at ${at.join(', ')} ms`);
    const [first, second] = [tries[1] - tries[0], tries[2] - tries[1]];
    assert.ok(first >= 9000 && first < 13_000, `${first} ms to the second try`);
    assert.ok(second >= 18_000 && second < 23_000, `${second} ms to the third try`);

    // Meanwhile the status shows why, and an Event for each try says so too.
    const state = await podField('refused', '{.status.containerStatuses[0].state.waiting}');
    assert.match(state, /CreateContainerError/);
    assert.match(state, /working directory \/proc\/self\/fd\/3 is not allowed/);
    const events = JSON.parse(
      await cluster.kubectl(
        ...['get', 'events', '--field-selector', 'involvedObject.name=refused,reason=Failed'],
        ...['-o', 'json'],
      ),
    ) as { items: { count?: number; message: string }[] };
    const count = events.items.reduce((sum, e) => sum + (e.count ?? 1), 0);
    assert.equal(count, 3, JSON.stringify(events.items));
    assert.match(events.items[0].message, /working directory/);
    const syncs = logged('refused', 'pod sync').length;
    t.diagnostic(`${syncs} syncs`);
    // The tries, the periodic looks between them, no more.
    assert.ok(syncs <= 8, `${syncs} syncs in 35 s`);

    const nonroot = await podField('nonroot', '{.status.containerStatuses[0].state.waiting}');
    assert.match(nonroot, /"reason":"CreateContainerConfigError"/);
    assert.match(nonroot, /container has runAsNonRoot and image will run as root/);
    const looks = logged('nonroot', 'container config failed');
    const gaps = looks.slice(1).map((at, i) => at - looks[i]);
    t.diagnostic(`settings tried again after ${gaps.join(', ')} ms`);
    assert.ok(looks.length >= 3, `${looks.length} tries`);
    for (const gap of gaps) assert.ok(gap >= 9000 && gap < 13_000, `${gap} ms between tries`);
    assert.equal(logged('nonroot', 'container failed to start').length, 0);
  });
});
