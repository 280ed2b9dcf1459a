import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { MiniC } from '../src/runtime/minic.js';
import type { ContainerConfig } from '../src/runtime/runtime.js';
import { httpGet } from './helpers/cluster.js';
import { minicChildScript, processesOf, until } from './helpers/processes.js';
import { runtimeRig } from './helpers/runtime-rig.js';

/**
 * miniC's warm container monitor (src/runtime/warm-monitor.ts) with real conmon and runc:
 * made once the network is prepared, taken by the next container, replaced; let go when
 * its container goes without starting or its create fails; ended with a process killed
 * while it holds one (the next runtime on the root removes its directories, and a
 * container that had taken one starts afresh); released by `close` (the agent's stop)
 * and `removeSpareNetwork` (flyces down). No runc or conmon of a monitor may be left
 * behind.
 */

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const IMAGE = 'localhost/flyces-web:1';
const base: Omit<ContainerConfig, 'name'> = { image: IMAGE, attempt: 0, labels: {} };

test('warm container monitors', async (t) => {
  const { tmp, images, options, minic, pod } = await runtimeRig(
    t,
    'flyces-warm-test-',
    { bridge: 'flycesw0', podCidr: '10.42.254.0/24' },
    () => ({}),
    async () => {
      await minic.removeSpareNetwork();
      if (later) await later.removeSpareNetwork();
    },
  );
  let later: MiniC | undefined;
  const file = path.join(options.root, 'warm-monitor.json');
  const archive = path.join(tmp, 'web.tar');
  await exec(path.join(repo, 'examples', 'build-image.sh'), [archive]);
  await images.importArchive(archive);

  /** The id of the ready monitor once its runc waits for a spec, other than `not`. */
  const warmId = (not?: string) =>
    until('a warm monitor', async () => {
      const id = (JSON.parse(await fs.readFile(file, 'utf8')) as { id: string }).id;
      if (id === not) return undefined;
      const waiting = (await processesOf(id)).length >= 2; // conmon and its runc create
      return waiting ? id : undefined;
    });
  const gone = (id: string) =>
    until(`the processes of ${id} to end`, async () =>
      (await processesOf(id)).length === 0 ? true : undefined,
    );

  await minic.prepareNetwork();
  const sandbox = await minic.runSandbox(pod('warm'));

  await t.test('taken by the next container, which runs; a new one is made', async () => {
    const w1 = await warmId();
    const id = await minic.createContainer(sandbox.id, { ...base, name: 'web' });
    assert.equal(id, w1, 'the container has the warm monitor id');
    await minic.startContainer(id);
    assert.equal((await minic.containerStatus(id))?.state, 'running');
    const page = () => httpGet(`http://${sandbox.ip}:8080/`).then((r) => r.body);
    assert.match(await until('the page', page), /Hello/);
    // The bundle's spec is a file again: runc exec reads its process defaults from it.
    const bundle = path.join(options.root, 'state', 'containers', id, 'bundle');
    assert.ok((await fs.lstat(path.join(bundle, 'config.json'))).isFile());
    const echoed = await minic.execSync(id, ['echo', 'exec works'], 5000);
    assert.equal(echoed.exitCode, 0);
    assert.match(echoed.output, /exec works/);
    const w2 = await warmId(w1);
    assert.notEqual(w2, w1);
    await minic.stopContainer(id, 1);
    await minic.removeContainer(id);
    await gone(id);
  });

  await t.test('a container removed before it starts lets its monitor go', async () => {
    const w = await warmId();
    const id = await minic.createContainer(sandbox.id, { ...base, name: 'never' });
    assert.equal(id, w);
    await minic.removeContainer(id);
    await gone(id);
    assert.equal(existsSync(path.join(options.root, 'containers', id)), false);
  });

  await t.test('a create that fails lets its monitor go', async () => {
    const w = await warmId();
    await assert.rejects(
      minic.createContainer(sandbox.id, { ...base, name: 'x', image: 'localhost/none:1' }),
      /not found/,
    );
    await gone(w);
    assert.equal(existsSync(path.join(options.root, 'containers', w)), false);
    assert.equal(existsSync(path.join(options.root, 'state', 'containers', w)), false);
    await warmId(w);
  });

  await t.test('a new runtime on the root releases the last one and starts one taken', async () => {
    await warmId();
    // An agent that stops between a container's create and its start: the container took
    // a monitor, whose report now goes nowhere.
    const taken = await minic.createContainer(sandbox.id, { ...base, name: 'taken' });
    await warmId(taken);
    await minic.removeSpareNetwork(); // this runtime makes no more
    // Another process leaves a ready monitor behind when it exits.
    const script = path.join(tmp, 'leave-one.mjs');
    // Alive until killed: the monitor is made once the runtime has been idle a moment.
    await fs.writeFile(script, minicChildScript(['await m.prepareNetwork();']));
    const { root, bridge, podCidr, cgroupParent } = options;
    const args = JSON.stringify({
      root,
      bridge,
      podCidr,
      cgroupParent,
      imagesRoot: path.join(tmp, 'images'),
    });
    const child = execFile(process.execPath, [script, args]);
    let output = '';
    child.stderr?.on('data', (chunk: string) => (output += chunk));
    const left = await warmId().catch((err: Error) => {
      throw new Error(`${err.message}; the other process said: ${output.slice(-2000)}`);
    });
    child.kill('SIGKILL');
    // Its end of the FIFO closed with it: its runc reads an empty spec, and both go.
    await gone(left);
    const leftDir = path.join(options.root, 'state', 'containers', left);
    assert.ok(existsSync(leftDir), 'its directories stay for the next runtime');

    later = new MiniC(options);
    await later.prepareNetwork();
    assert.equal(existsSync(leftDir), false, 'the next runtime removes them');
    const next = await warmId(left);
    // Its monitor's report went to the earlier runtime: it starts afresh, under a new conmon.
    await later.startContainer(taken);
    assert.equal((await later.containerStatus(taken))?.state, 'running');
    await later.stopContainer(taken, 1);
    await later.removeContainer(taken);
    await gone(taken);
    // The agent's stop closes the runtime: the monitor is let go, and no other is made.
    await later.close();
    await gone(next);
    assert.equal(existsSync(file), false, 'its file goes with it');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(existsSync(file), false, 'no new one after close');
    await later.removeSpareNetwork();
  });
});
