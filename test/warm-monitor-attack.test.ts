import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, lstatSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { MiniC } from '../src/runtime/minic.js';
import type { ContainerConfig } from '../src/runtime/runtime.js';
import { minicChildScript, processesOf, until as untilEvery } from './helpers/processes.js';
import { runtimeRig } from './helpers/runtime-rig.js';

/**
 * Attacks on miniC's warm container monitor (src/runtime/warm-monitor.ts) with real conmon
 * and runc: a monitor taken the moment it is made (its runc not yet at the FIFO), a create
 * that fails at that moment, a close at that moment, a spec too large for the pipe, many
 * starts at once, logs, exec and adoption of a warm-started container, and an agent killed
 * while it holds a monitor or while a create that took one is under way. Each container
 * must run under one conmon, and no conmon or runc of a monitor may be left behind.
 */

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const IMAGE = 'localhost/flyces-web:1';
const sleeper: Omit<ContainerConfig, 'name'> = {
  image: IMAGE,
  attempt: 0,
  labels: {},
  command: ['/bin/sh', '-c', 'trap "exit 0" TERM; echo "$GREETING"; sleep 60 & wait'],
  env: [{ name: 'GREETING', value: 'hello from a warm start' }],
};

/** `until` asked every 2 ms: these tests time the windows between a monitor's steps. */
const until = <T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000) =>
  untilEvery(what, fn, ms, 2);

const gone = (id: string, ms = 10_000) =>
  until(
    `the processes of ${id.slice(0, 12)} to end`,
    async () => ((await processesOf(id)).length === 0 ? true : undefined),
    ms,
  );

/**
 * A runc whose `create` takes 300 ms more to reach the bundle, as on a busy machine: a
 * monitor's runc then opens its FIFO well after conmon was started.
 */
async function slowCreate(dir: string): Promise<string> {
  const runc = (await exec('sh', ['-c', 'command -v runc'])).stdout.trim();
  const wrapper = path.join(dir, 'slow-runc');
  const script = `#!/bin/sh\ncase " $* " in *" create "*) sleep 0.3 ;; esac\nexec ${runc} "$@"\n`;
  await fs.writeFile(wrapper, script, { mode: 0o755 });
  return wrapper;
}

/** Whether a process of container `id` has `file` open. */
async function opened(id: string, file: string): Promise<boolean> {
  for (const pid of await processesOf(id)) {
    for (const fd of await fs.readdir(`/proc/${pid}/fd`).catch(() => [])) {
      if ((await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === file) return true;
    }
  }
  return false;
}

/** What a runtime root shows of its warm monitor. */
function monitorOf(root: string) {
  const file = path.join(root, 'warm-monitor.json');
  const named = () => (JSON.parse(readFileSync(file, 'utf8')) as { id: string }).id;
  const fifo = (id: string) => path.join(root, 'state', 'containers', id, 'bundle', 'config.json');
  return {
    file,
    named,
    /** A monitor other than `not` the moment its FIFO exists: its runc may not read it yet. */
    made: (not?: string) =>
      until('a new monitor', async () => {
        const id = named();
        return id !== not && lstatSync(fifo(id)).isFIFO() ? id : undefined;
      }),
    /** A monitor other than `not` whose runc has its FIFO open. */
    waiting: (not?: string) =>
      until('a waiting monitor', async () => {
        const id = named();
        return id !== not && (await opened(id, fifo(id))) ? id : undefined;
      }),
  };
}

/** The only process naming container `id` must be its conmon, the one its pid file names. */
async function oneConmon(root: string, id: string): Promise<void> {
  const pidFile = path.join(root, 'state', 'containers', id, 'conmon.pid');
  const conmon = Number((await fs.readFile(pidFile, 'utf8')).trim());
  const procs = await processesOf(id);
  const names = await Promise.all(
    procs.map(async (p) => (await fs.readFile(`/proc/${p}/cmdline`, 'utf8')).split('\0')[0]),
  );
  assert.deepEqual(procs, [conmon], `one conmon for ${id.slice(0, 12)}; found ${names.join(' ')}`);
}

test('warm monitor attacks in one runtime', async (t) => {
  const { tmp, images, options, minic, pod } = await runtimeRig(
    t,
    'flyces-warmattack-',
    { bridge: 'flyceswa0', podCidr: '10.42.228.0/24' },
    async (dir) => ({ runtimePath: await slowCreate(dir) }),
    () => minic.removeSpareNetwork(),
  );
  const root = options.root;
  const monitor = monitorOf(root);
  const archive = path.join(tmp, 'web.tar');
  await exec(path.join(repo, 'examples', 'build-image.sh'), [archive]);
  await images.importArchive(archive);
  await minic.prepareNetwork();
  const sandbox = await minic.runSandbox(pod('attack'));

  await t.test('taken the moment it is made, its container runs under one conmon', async () => {
    // Each start is followed 25 ms later by a new monitor, which the next create takes as
    // soon as it can: its runc (slowCreate) has not opened the FIFO yet.
    const ids: string[] = [];
    let taken: string | undefined;
    for (let round = 0; round < 5; round++) {
      const made = await monitor.made(taken);
      await new Promise((r) => setTimeout(r, 30)); // its conmon is started meanwhile
      const id = await minic.createContainer(sandbox.id, { ...sleeper, name: `quick${round}` });
      const started = Date.now();
      await minic.startContainer(id);
      // A fresh start takes about 0.4 s here (slowCreate); none waits for a conmon to go.
      const took = Date.now() - started;
      assert.ok(took < 1500, `start ${round} took ${took} ms`);
      ids.push(id);
      // One not yet ready stays for the next round.
      if (id === made) taken = id;
    }
    assert.ok(taken, 'some container took a monitor');
    for (const id of ids) {
      assert.equal((await minic.containerStatus(id))?.state, 'running');
      await oneConmon(root, id);
    }
    for (const id of ids) await minic.removeContainer(id);
    for (const id of ids) await gone(id);
  });

  await t.test('a create that fails the moment a monitor is made leaves nothing', async () => {
    const failing = () =>
      assert.rejects(
        minic.createContainer(sandbox.id, { ...sleeper, name: 'x', image: 'localhost/none:1' }),
        /not found/,
      );
    let last: string | undefined;
    for (let round = 0; round < 3; round++) {
      const made = await monitor.made(last);
      last = made;
      await new Promise((r) => setTimeout(r, 30)); // its conmon is started meanwhile
      const started = Date.now();
      await failing();
      const took = Date.now() - started;
      assert.ok(took < 1500, `the failed create took ${took} ms`);
      await new Promise((r) => setTimeout(r, 300));
      if (monitor.named() === made) {
        // Not taken (it was not ready yet): it is now, and the next create takes it.
        assert.ok((await processesOf(made)).length >= 2, 'its conmon and runc wait');
        await failing();
      }
      await gone(made, 5000);
      assert.equal(existsSync(path.join(root, 'state', 'containers', made)), false);
      assert.equal(existsSync(path.join(root, 'containers', made)), false);
    }
  });

  await t.test('a spec too large for the pipe starts afresh, with its own spec', async () => {
    const w = await monitor.waiting();
    const big = Array.from({ length: 70 }, (_, i) => ({
      name: `BIG_${i}`,
      value: `${i}:`.padEnd(1000, 'x'),
    }));
    const id = await minic.createContainer(sandbox.id, {
      ...sleeper,
      name: 'big',
      env: [...sleeper.env!, ...big],
    });
    assert.equal(id, w);
    await minic.startContainer(id);
    await oneConmon(root, id);
    const shown = await minic.execSync(id, ['sh', '-c', 'echo "$BIG_69"'], 5000);
    assert.equal(shown.output.trim(), big[69].value);
    await minic.removeContainer(id);
    await gone(id);
  });

  await t.test('many containers created and started at once each run once', async () => {
    const w = await monitor.waiting();
    const ids = await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        const id = await minic.createContainer(sandbox.id, { ...sleeper, name: `many${i}` });
        await minic.startContainer(id);
        return id;
      }),
    );
    assert.equal(ids.filter((id) => id === w).length, 1, 'one took the monitor');
    for (const id of ids) {
      assert.equal((await minic.containerStatus(id))?.state, 'running');
      await oneConmon(root, id);
    }
    await Promise.all(ids.map((id) => minic.removeContainer(id)));
    for (const id of ids) await gone(id);
  });

  await t.test('a monitor whose runc is killed, ready or taken, leaves nothing', async () => {
    /** Kills the `runc create` of monitor `id` (found by this test's root in its command). */
    const killRunc = async (id: string) => {
      for (const pid of await processesOf(id)) {
        const argv = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
        if (argv[0].endsWith('runc') && argv.some((a) => a.includes(root))) {
          process.kill(pid, 'SIGKILL');
        }
      }
    };
    // Ready: it is dropped and another made.
    const ready = await monitor.waiting();
    await killRunc(ready);
    await gone(ready, 5000);
    const next = await monitor.waiting(ready);
    assert.equal(existsSync(path.join(root, 'state', 'containers', ready)), false);
    // Taken: its container starts afresh.
    const id = await minic.createContainer(sandbox.id, { ...sleeper, name: 'orphaned' });
    assert.equal(id, next);
    await killRunc(id);
    await gone(id, 5000);
    await minic.startContainer(id);
    assert.equal((await minic.containerStatus(id))?.state, 'running');
    await oneConmon(root, id);
    await minic.removeContainer(id);
    await gone(id);
  });

  await t.test(
    'a warm-started container: its log, exec, and a later runtime adopts it',
    async () => {
      const w = await monitor.waiting();
      const id = await minic.createContainer(sandbox.id, { ...sleeper, name: 'adopted' });
      assert.equal(id, w);
      await minic.startContainer(id);
      const logPath = (await minic.containerStatus(id))!.logPath;
      await until('the greeting in the log', async () =>
        (await fs.readFile(logPath, 'utf8')).includes('hello from a warm start') ? true : undefined,
      );
      // Another runtime on the root (an agent after a restart) sees it run and execs in it.
      // Only one may drive the root: this one only looks, and the first stops the container.
      const later = new MiniC(options);
      assert.equal((await later.containerStatus(id))?.state, 'running');
      const shown = await later.execSync(id, ['sh', '-c', 'echo "$GREETING"'], 5000);
      assert.equal(shown.output.trim(), 'hello from a warm start');
      await minic.stopContainer(id, 5);
      const stopped = await minic.containerStatus(id);
      assert.equal(stopped?.state, 'exited');
      assert.equal(stopped?.exitCode, 0, 'its conmon wrote the exit code of a TERM it trapped');
      await minic.removeContainer(id);
      await gone(id);
    },
  );
});

test('warm monitor attacks across processes', async (t) => {
  const { tmp, images, options, minic, pod } = await runtimeRig(
    t,
    'flyces-warmattack-',
    { bridge: 'flyceswa1', podCidr: '10.42.229.0/24' },
    () => ({}),
    () => minic.removeSpareNetwork(),
  );
  const root = options.root;
  const monitor = monitorOf(root);
  const archive = path.join(tmp, 'web.tar');
  await exec(path.join(repo, 'examples', 'build-image.sh'), [archive]);
  await images.importArchive(archive);
  const { bridge, podCidr, cgroupParent } = options;
  const args = JSON.stringify({
    root,
    bridge,
    podCidr,
    cgroupParent,
    imagesRoot: path.join(tmp, 'images'),
    pod: pod('child'),
  });
  const children: ReturnType<typeof spawn>[] = [];
  t.after(() => children.forEach((c) => c.kill('SIGKILL')));

  /** Runs a child process on the root; resolves once it printed `line`. */
  const runChild = async (name: string, steps: string[], line: string) => {
    const script = path.join(tmp, `${name}.mjs`);
    await fs.writeFile(script, minicChildScript(steps));
    const child = spawn(process.execPath, [script, args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const said = async () => (output.includes(line) ? true : undefined);
    await until(`${name} to say ${line}`, said, 20_000).catch((err: Error) => {
      throw new Error(`${err.message}; it said: ${output.slice(-2000)}`);
    });
    const kill = async () => {
      child.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise((r) => child.once('exit', r));
      }
    };
    return { kill, output: () => output };
  };

  await t.test('an agent killed during a create that took its monitor', async () => {
    // Its image store answers slowly (a pull, a busy disk), and the agent is killed while
    // the create waits for it: the monitor it took has no record yet.
    const child = await runChild(
      'slow-create',
      [
        'const resolve = images.resolveImage.bind(images);',
        'images.resolveImage = async (ref, claim) => {',
        '  const image = await resolve(ref, claim);',
        '  await sleep(5000);',
        '  return image;',
        '};',
        'await m.prepareNetwork();',
        'const sb = await m.runSandbox(o.pod);',
        'await sleep(1500);',
        "const fs = await import('node:fs');",
        "const file = JSON.parse(fs.readFileSync(o.root + '/warm-monitor.json', 'utf8'));",
        "console.log('creating ' + file.id + ' .');",
        "m.createContainer(sb.id, { image: 'localhost/flyces-web:1', attempt: 0, labels: {}, name: 'slow' });",
      ],
      ' .',
    );
    const taken = /creating ([0-9a-f]{64})/.exec(child.output())![1];
    assert.ok((await processesOf(taken)).length >= 2, 'its conmon and runc wait');
    // Time for a new monitor, were one made while the create runs.
    await new Promise((r) => setTimeout(r, 500));
    const named = monitor.named();
    await child.kill();

    await minic.prepareNetwork();
    await gone(taken, 5000);
    if (named !== taken) await gone(named, 5000);
    assert.equal(existsSync(path.join(root, 'state', 'containers', taken)), false);
    assert.equal(existsSync(path.join(root, 'containers', taken)), false);
    await minic.close();
  });

  await t.test('an agent killed while its monitor is ready leaves no runc waiting', async () => {
    const child = await runChild(
      'ready',
      ['await m.prepareNetwork();', "console.log('prepared');"],
      'prepared',
    );
    const id = await monitor.waiting();
    await child.kill();
    // Its runc reads the end of the FIFO and fails; conmon goes with it, no runtime needed.
    await gone(id, 5000);
  });

  await t.test('a runtime closed the moment its monitor is made leaves nothing', async () => {
    for (let round = 0; round < 3; round++) {
      const runtime = new MiniC(options);
      const before = existsSync(monitor.file) ? monitor.named() : undefined;
      await runtime.prepareNetwork();
      const made = await monitor.made(before);
      const closing = Date.now();
      await runtime.close();
      const took = Date.now() - closing;
      assert.ok(took < 1500, `the close took ${took} ms`);
      await gone(made, 5000);
      assert.equal(existsSync(path.join(root, 'state', 'containers', made)), false);
      assert.equal(existsSync(monitor.file), false);
    }
  });
});
