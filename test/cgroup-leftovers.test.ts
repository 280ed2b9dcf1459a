import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { MiniC } from '../src/runtime/minic.js';
import type { ContainerConfig } from '../src/runtime/runtime.js';
import { busyboxLayer, makeArchive } from './helpers/oci-images.js';
import { processesOf, until } from './helpers/processes.js';
import { runtimeRig } from './helpers/runtime-rig.js';

/**
 * The cgroup directories runc makes for a container (PARENT/SANDBOX/CONTAINER in every
 * hierarchy, the pod's directory above the container's) go when the container is removed,
 * whatever became of its start: a `runc create` that failed (runc deletes the container's
 * own directories then, but not the pod's it made on the way), with or without a warm
 * monitor, and a removal by another runtime on the same root, as `flyces down` does.
 * The directories are sought in every hierarchy below the rig's own cgroup parent, before
 * the rig's clean-up (which removes whatever is there) runs. Needs root.
 */

const exec = promisify(execFile);
const IMAGE = 'localhost/cg-leftovers:1';
const base: Omit<ContainerConfig, 'name'> = { image: IMAGE, attempt: 0, labels: {} };
/** A command runc cannot find: `runc create` fails after it has made the cgroups. */
const MISSING = { command: ['/no/such/command'] };

test("a container's cgroups go with it, whatever became of its start", async (t) => {
  let later: MiniC | undefined;
  const { tmp, images, options, minic, pod } = await runtimeRig(
    t,
    'flyces-cgroup-leftovers-test-',
    { bridge: 'flycescgl0', podCidr: '10.42.226.0/24' },
    () => ({}),
    async () => {
      await minic.removeSpareNetwork();
      if (later) await later.removeSpareNetwork();
    },
  );
  // A pod of its own for each case (the rig's pods share one uid, so one sandbox id).
  const podOf = (name: string) => ({ ...pod(name), podUid: `${pod(name).podUid}-${name}` });
  const archive = path.join(tmp, 'image.tar');
  await makeArchive(archive, [await busyboxLayer([])], IMAGE);
  await images.importArchive(archive);

  /** Every cgroup directory below the rig's parent, in any hierarchy, deepest first. */
  const leftovers = async (): Promise<string[]> => {
    const parent = options.cgroupParent!;
    const found = await exec('find', [
      ...['/sys/fs/cgroup', '-maxdepth', '8', '-mindepth', '2', '-depth', '-type', 'd'],
      ...['-path', `*/${parent}/*`],
    ]);
    return found.stdout.split('\n').filter((d) => d !== '');
  };
  /** Creates a container whose start fails in `runc create`, and checks it did. */
  const failedStart = async (runtime: MiniC, sandboxId: string, name: string) => {
    const id = await runtime.createContainer(sandboxId, { ...base, ...MISSING, name });
    await assert.rejects(runtime.startContainer(id), /no such file|not found/);
    assert.equal((await runtime.containerStatus(id))?.state, 'exited');
    return id;
  };

  await t.test('runc create fails: removal leaves no cgroup, not even the pod one', async () => {
    const sandbox = await minic.runSandbox(podOf('create-fails'));
    const id = await failedStart(minic, sandbox.id, 'c');
    const made = await leftovers();
    assert.ok(
      made.some((d) => d.endsWith(`/${sandbox.id}`)),
      `runc made the pod's cgroups on the way: ${made.join(', ')}`,
    );
    await minic.removeContainer(id);
    assert.deepEqual(await leftovers(), []);
    await minic.removeSandbox(sandbox.id);
  });

  await t.test("a pod's cgroup stays while another of its containers runs", async () => {
    const sandbox = await minic.runSandbox(podOf('two'));
    const running = await minic.createContainer(sandbox.id, { ...base, name: 'runs' });
    await minic.startContainer(running);
    const failed = await failedStart(minic, sandbox.id, 'fails');
    await minic.removeContainer(failed);
    const left = await leftovers();
    assert.ok(left.length > 0, 'the running container keeps its cgroups');
    for (const dir of left) {
      const ok = dir.endsWith(`/${sandbox.id}/${running}`) || dir.endsWith(`/${sandbox.id}`);
      assert.ok(ok, `only the running container's and its pod's cgroups are left: ${dir}`);
    }
    await minic.removeSandbox(sandbox.id);
    assert.deepEqual(await leftovers(), []);
  });

  await t.test('runc create fails on a warm monitor: removal leaves no cgroup', async () => {
    await minic.prepareNetwork();
    const sandbox = await minic.runSandbox(podOf('warm'));
    const file = path.join(options.root, 'warm-monitor.json');
    // Ready once its conmon and its runc create (waiting for the spec) both run.
    const warm = await until('a warm monitor', async () => {
      const { id } = JSON.parse(await fs.readFile(file, 'utf8')) as { id: string };
      return (await processesOf(id)).length >= 2 ? id : undefined;
    });
    const id = await failedStart(minic, sandbox.id, 'c');
    assert.equal(id, warm, 'the container took the warm monitor');
    await minic.removeContainer(id);
    assert.deepEqual(await leftovers(), []);
    await minic.removeSandbox(sandbox.id);
  });

  // `flyces down` is a runtime of its own on the root; so is the one that made the container
  // here, since the rig's runtime would not see it go (two must not drive one root at once).
  await t.test('another runtime on the root (flyces down) removes them', async () => {
    const first = new MiniC(options);
    const sandbox = await first.runSandbox(podOf('down'));
    await failedStart(first, sandbox.id, 'c');
    later = new MiniC(options);
    await later.removeSandbox(sandbox.id);
    assert.deepEqual(await leftovers(), []);
  });
});
