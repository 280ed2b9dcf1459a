import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HollowAgent } from '../src/agent/hollow.js';
import { byGroupResource } from '../src/api/resources.js';
import type { Deployment, Pod } from '../src/api/types.js';
import { loadKubeconfig } from '../src/cli/kubeconfig.js';
import { KubeClient } from '../src/client/rest.js';
import { until } from './helpers/sched.js';

/**
 * `flyces up --no-agent`: the control plane alone, as the control-plane benchmark runs it.
 * It needs no root or runc, registers no node of its own, and schedules onto nodes that
 * join (hollow ones here), its scheduler and controllers talking over the private socket.
 */

const NODES = byGroupResource.get('/nodes')!;
const PODS = byGroupResource.get('/pods')!;
const DEPLOYMENTS = byGroupResource.get('apps/deployments')!;

describe('flyces up --no-agent', () => {
  let dir: string;
  let child: ChildProcess;
  let output = '';
  let client: KubeClient;
  let hollow: HollowAgent;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flyces-noagent-'));
    child = spawn(
      process.execPath,
      ['bin/flyces.js', 'up', '--no-agent', '--data-dir', dir, '--port', '0'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLYCES_LOG_LEVEL: 'warn' } },
    );
    child.stdout!.on('data', (d: Buffer) => (output += d));
    child.stderr!.on('data', (d: Buffer) => (output += d));
    const kubeconfig = join(dir, 'kubeconfig');
    await until('the kubeconfig', async () => (existsSync(kubeconfig) ? true : undefined), 30_000);
    client = new KubeClient(loadKubeconfig(kubeconfig));
    await until(
      'the API server',
      () => client.request('GET', '/version').catch(() => undefined),
      30_000,
    );
    await until(
      'flyces up to say it is up',
      async () => (/is up/.test(output) ? true : undefined),
      30_000,
    );
  });

  after(async () => {
    await hollow?.stop();
    client?.close();
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('runs without a node of its own and schedules onto nodes that join', async () => {
    assert.match(output, /No local node \(--no-agent\)/);
    assert.ok(existsSync(join(dir, 'apiserver.sock')), 'the private socket is there');
    assert.equal((await client.list(NODES)).items.length, 0);

    hollow = new HollowAgent({ client, count: 3, maxPods: 10 });
    await hollow.start();
    const labels = { app: 'web' };
    const deployment: Deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'default' },
      spec: {
        replicas: 6,
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'web:1' }] } },
      },
    };
    await client.create(DEPLOYMENTS, deployment);
    const pods = await until(
      '6 Running pods',
      async () => {
        const list = await client.list<Pod>(PODS, 'default');
        const running = list.items.filter((p) => p.status?.phase === 'Running');
        return running.length === 6 ? running : undefined;
      },
      30_000,
    );
    assert.ok(pods.every((p) => hollow.nodeNames.includes(p.spec.nodeName!)));
  });

  test('stops cleanly on SIGTERM', async () => {
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 0, output.slice(-800));
    assert.equal(readFileSync(join(dir, 'token'), 'utf8').trim().length > 0, true);
  });
});
