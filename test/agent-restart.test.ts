import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent } from '../src/agent/agent.js';
import { ImageGc } from '../src/agent/image-gc.js';
import { byGroupResource } from '../src/api/resources.js';
import type { Pod } from '../src/api/types.js';
import { componentLogger } from '../src/log.js';
import { ImageStore } from '../src/runtime/images.js';
import { MiniC } from '../src/runtime/minic.js';
import { startTestApiServer, type TestApiServer } from './helpers/apiserver.js';
import { buildWebImage, netnsList, waitFor } from './helpers/cluster.js';
import { sleep } from './helpers/workload.js';

/**
 * The agent as its own process would run it, against a real API server and real containers:
 * killed and started again, it adopts what still runs and removes the containers of pods
 * deleted while it was away. Also image garbage collection on the real image store.
 */

const run = promisify(execFile);
const pods = byGroupResource.get('/pods')!;
const BRIDGE = 'flycesagt0';

describe('agent restart', { timeout: 180_000 }, () => {
  let api: TestApiServer;
  const dir = mkdtempSync(join(tmpdir(), 'flyces-agent-'));
  const images = new ImageStore({ root: join(dir, 'images') });
  const runtime = () =>
    new MiniC({ root: join(dir, 'runtime'), images, podCidr: '10.42.215.0/24', bridge: BRIDGE });
  let agent: Agent | undefined;

  const startAgent = async () => {
    // As `flyces up` starts it: the runtime's network first, which also ends what exec
    // sessions of the agent before left running.
    const minic = runtime();
    await minic.prepareNetwork();
    agent = new Agent({
      client: api.client,
      runtime: minic,
      images,
      tokens: [api.token],
      name: 'agent-test',
      internalIP: '127.0.0.1',
      agentPort: 0,
      dataDir: dir,
    });
    await agent.start();
  };

  before(async () => {
    api = await startTestApiServer();
    const archive = join(dir, 'web.tar');
    await buildWebImage(archive);
    await images.importArchive(archive);
    // A second build differs in its config (timestamps), so it is an image of its own.
    const other = join(dir, 'other.tar');
    await buildWebImage(other);
    await images.importArchive(other, 'localhost/unused:1');
  });

  after(async () => {
    await agent?.stop();
    const minic = runtime();
    for (const s of await minic.listSandboxes()) {
      for (const c of await minic.listContainers())
        if (c.sandboxId === s.id) await minic.stopContainer(c.id, 0);
      await minic.removeSandbox(s.id);
    }
    await minic.removeSpareNetwork();
    await run('ip', ['link', 'del', BRIDGE]).catch(() => undefined);
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const pod = (name: string): Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      nodeName: 'agent-test',
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'c', image: 'localhost/flyces-web:1', imagePullPolicy: 'Never' }],
    },
  });

  const containerId = async (name: string) => {
    const p = await api.client.get<Pod>(pods, 'default', name);
    const s = p.status?.containerStatuses?.[0];
    return s?.state.running ? s.containerID : undefined;
  };

  test('survivors are adopted, pods deleted meanwhile lose their containers', async () => {
    await startAgent();
    await api.client.create(pods, pod('keep'));
    await api.client.create(pods, pod('gone'));
    await waitFor(
      'both running',
      30_000,
      async () => !!(await containerId('keep')) && !!(await containerId('gone')),
    );
    const kept = await containerId('keep');
    const goneUid = (await api.client.get<Pod>(pods, 'default', 'gone')).metadata.uid;
    const goneNetns = (await runtime().listSandboxes()).find((s) => s.podUid === goneUid)!;
    // An exec session the agent never closes, as when it is killed: its command goes on.
    const keptId = kept!.replace(/^[a-z]+:\/\//, '');
    const session = await runtime().execStream(keptId, ['sleep', '311'], {
      stdin: false,
      tty: false,
    });
    session.stdout.resume();
    session.stderr.resume();
    const sleeping = async () => {
      const r = await runtime().execSync(keptId, ['ps', '-o', 'args'], 5000);
      return / sleep 311|^sleep 311/m.test(r.output);
    };
    await waitFor('the exec command to run', 10_000, sleeping);

    await agent!.stop();
    agent = undefined;
    // The agent is away: the pod is removed from the API without it (as a force delete does).
    await api.client.delete(pods, 'default', 'gone', { gracePeriodSeconds: 0 });
    await startAgent();

    await waitFor('the orphan removed', 30_000, async () => {
      const sandboxes = await runtime().listSandboxes();
      return !sandboxes.some((s) => s.podUid === goneUid);
    });
    assert.ok(!(await netnsList()).includes(`flyces-${goneNetns.id.slice(0, 12)}`));
    assert.ok(!(await runtime().listContainers()).some((c) => c.sandboxId === goneNetns.id));
    assert.equal(await containerId('keep'), kept, 'the same container, not restarted');
    // The new agent ended the session's command: no client could reach it any more.
    const exit = await Promise.race([session.exited, sleep(10_000).then(() => undefined)]);
    assert.equal(exit?.exitCode, 137, 'the exec command ended');
    assert.equal(await sleeping(), false);
    const status = (await api.client.get<Pod>(pods, 'default', 'keep')).status!;
    assert.equal(status.containerStatuses![0].restartCount, 0);
  });

  test('image garbage collection removes only images no container uses', async () => {
    // No minimum age: both images were first seen by this collector just now.
    const gc = new ImageGc(images, runtime(), dir, componentLogger('test'), {
      usage: async () => ({ capacity: 100, used: 99 }),
      minAgeMs: 0,
    });
    const removed = await gc.collect();
    assert.deepEqual(removed, ['localhost/unused:1']);
    const names = (await images.listImages()).flatMap((i) => i.names);
    assert.ok(names.includes('localhost/flyces-web:1'), 'the image in use stays');
    assert.ok(!names.includes('localhost/unused:1'));
  });
});
