import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { ImageStore } from '../src/runtime/images.js';
import { MiniC } from '../src/runtime/minic.js';
import { vethName } from '../src/runtime/pod-network.js';
import { RuntimeError, type ContainerConfig } from '../src/runtime/runtime.js';
import { waitFor } from './helpers/cluster.js';
import { makeArchive, makeTar, type Entry } from './helpers/oci-images.js';
import { runtimeRig } from './helpers/runtime-rig.js';

/**
 * miniC against the real thing: runc, conmon, network namespaces, overlayfs. Needs root. Uses
 * its own temp root, pod CIDR and bridge, and removes them by name at the end.
 */

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const BRIDGE = 'flycest0';
const POD_CIDR = '10.42.250.0/24';
const LOG_SIZE_MAX = 64 * 1024;
const IMAGE = 'localhost/flyces-web:1';

async function sh(cmd: string, args: string[]): Promise<string> {
  return (await exec(cmd, args)).stdout;
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function eventually<T>(fn: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function treeOf(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { recursive: true }).catch(() => [] as string[])) {
    out.push(String(e));
  }
  return out.sort();
}

test('miniC runs pods with runc, conmon and a pod network', async (t) => {
  // The per-test cgroup parent that runc made; the runtime leaves parents in place.
  const cgroupParents = new Set<string>();
  const { tmp, images, options, minic, pod } = await runtimeRig(
    t,
    'flyces-runtime-test-',
    { bridge: BRIDGE, podCidr: POD_CIDR },
    () => ({ logSizeMax: LOG_SIZE_MAX }),
    async () => {
      for (const dir of cgroupParents) await fs.rmdir(dir).catch(() => undefined);
    },
  );
  // The state root is ROOT/state unless the caller names one (the agent's is a tmpfs).
  const runcRoot = path.join(options.root, 'state', 'runc');

  const archive = path.join(tmp, 'web.tar');
  await sh(path.join(repo, 'examples', 'build-image.sh'), [archive]);

  await t.test('imports the OCI archive', async () => {
    const [info] = await images.importArchive(archive);
    assert.deepEqual(info.names, [IMAGE]);
    assert.match(info.digest, /^sha256:[a-f0-9]{64}$/);
    assert.ok(info.size > 100_000);
    assert.equal((await images.getImage('localhost/flyces-web:1'))?.id, info.id);
    assert.equal((await images.getImage(info.id))?.id, info.id);
    const renamed = await images.importArchive(archive, 'example.com/other:2');
    assert.deepEqual(renamed[0].names, [IMAGE, 'example.com/other:2']);
    await images.removeImage('example.com/other:2');
    assert.deepEqual((await images.getImage(IMAGE))?.names, [IMAGE]);
  });

  const sandbox = await minic.runSandbox(pod('web', { app: 'web' }));
  const netns = `flyces-${sandbox.id.slice(0, 12)}`;
  const base: Omit<ContainerConfig, 'name'> = { image: IMAGE, attempt: 0, labels: {} };

  await t.test('sandbox is ready with an address', async () => {
    assert.equal(sandbox.state, 'ready');
    assert.match(sandbox.ip ?? '', /^10\.42\.250\.\d+$/);
    assert.match(await sh('ip', ['netns', 'list']), new RegExp(netns));
    assert.deepEqual(await minic.runSandbox(pod('web')), sandbox);
  });

  let webId = '';
  await t.test('web container serves its page and logs', async () => {
    const t0 = performance.now();
    webId = await minic.createContainer(sandbox.id, {
      ...base,
      name: 'web',
      resources: { cpuRequestMillis: 100, cpuLimitMillis: 500, memoryLimitBytes: 64 << 20 },
    });
    const t1 = performance.now();
    await minic.startContainer(webId);
    const t2 = performance.now();
    console.log(`create ${(t1 - t0).toFixed(0)} ms, start ${(t2 - t1).toFixed(0)} ms`);

    const body = await eventually(() => httpGet(`http://${sandbox.ip}:8080/`));
    assert.match(body, /Hello from flyCes/);
    // The overlay root is mounted in the container's namespace only, never on the host.
    const hostMounts = await fs.readFile('/proc/self/mounts', 'utf8');
    assert.ok(!hostMounts.includes(webId), 'the root file system is not a host mount');
    const layers = await minic.layersInUse();
    assert.ok(layers.size > 0, 'the runtime names the layers its containers stack');
    // The image has no /proc, /sys, /dev or /etc files: the mount-point layer has them, so
    // the start wrote nothing into the container's writable layer.
    assert.deepEqual(await fs.readdir(path.join(options.root, 'containers', webId, 'upper')), []);
    const hostname = await minic.execSync(webId, ['cat', '/etc/hostname'], 5000);
    assert.equal(hostname.output.trim(), 'web');
    const status = await minic.containerStatus(webId);
    assert.equal(status?.state, 'running');
    const log = await eventually(async () => {
      const text = await fs.readFile(status!.logPath, 'utf8');
      return /response:200/.test(text) ? text : undefined;
    });
    assert.match(log, /^\S+ stderr F .*response:200$/m);
  });

  await t.test('a new MiniC on the same root sees the running container', async () => {
    const again = new MiniC(options);
    const listed = await again.listContainers();
    assert.equal(listed.find((c) => c.id === webId)?.state, 'running');
    assert.equal((await again.listSandboxes())[0]?.id, sandbox.id);
  });

  await t.test('exit codes are recorded', async () => {
    const id = await minic.createContainer(sandbox.id, {
      ...base,
      name: 'fail',
      command: ['sh', '-c', 'echo bye; exit 3'],
    });
    await minic.startContainer(id);
    const status = await eventually(async () => {
      const s = await minic.containerStatus(id);
      return s?.state === 'exited' ? s : undefined;
    });
    assert.equal(status.exitCode, 3);
    assert.equal(status.reason, 'Error');
    assert.ok(status.finishedAt);
    assert.match(await fs.readFile(status.logPath, 'utf8'), /stdout F bye/);
    await minic.removeContainer(id);
    assert.equal(await minic.containerStatus(id), undefined);
  });

  const runToExit = async (
    name: string,
    command: string[],
    extra: Partial<ContainerConfig> = {},
  ) => {
    const id = await minic.createContainer(sandbox.id, { ...base, name, command, ...extra });
    await minic.startContainer(id);
    const status = await eventually(async () => {
      const s = await minic.containerStatus(id);
      return s?.state === 'exited' ? s : undefined;
    });
    return { id, status };
  };

  await t.test(
    'a log that passes the size limit starts afresh and keeps the newest lines',
    async () => {
      const script =
        'i=0; while [ $i -lt 6000 ]; do echo line-$i-padding-padding-padding; i=$((i+1)); done';
      const { id, status } = await runToExit('chatty', ['sh', '-c', script]);
      const size = (await fs.stat(status.logPath)).size;
      assert.ok(size <= LOG_SIZE_MAX + 4096, `log is ${size} bytes`);
      assert.match(await fs.readFile(status.logPath, 'utf8'), /line-5999-padding/);
      await minic.removeContainer(id);
    },
  );

  await t.test('a container killed for memory reports OOMKilled', async () => {
    const hog = 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo ${#x}';
    const { id, status } = await runToExit('hog', ['sh', '-c', hog], {
      resources: { memoryLimitBytes: 32 << 20 },
    });
    assert.equal(status.reason, 'OOMKilled');
    assert.equal(status.exitCode, 137);
    const stray = await fs.stat(path.join(process.cwd(), 'oom')).catch(() => undefined);
    assert.equal(stray, undefined, 'conmon left no marker in our working directory');
    await minic.removeContainer(id);
  });

  await t.test('the pids limit stops a container from forking past it', async () => {
    // Forty background sleeps would start freely without the limit.
    const forks = 'for i in $(seq 1 40); do sleep 30 & done; kill $(jobs -p); true';
    const { id, status } = await runToExit('forker', ['sh', '-c', forks], {
      resources: { pidsLimit: 10 },
    });
    assert.match(
      await fs.readFile(status.logPath, 'utf8'),
      /can't fork|Resource temporarily unavailable/,
    );
    await minic.removeContainer(id);
  });

  const trapped = (id: string) =>
    waitFor('the shell to set its trap', 10_000, async () => {
      return (await minic.execSync(id, ['test', '-f', '/tmp/trapped'], 5000)).exitCode === 0;
    });

  await t.test('stop with grace: SIGTERM, then SIGKILL for one that ignores it', async () => {
    const id = await minic.createContainer(sandbox.id, {
      ...base,
      name: 'stubborn',
      command: ['sh', '-c', 'trap "" TERM; touch /tmp/trapped; sleep 1000 & wait; sleep 1000'],
    });
    await minic.startContainer(id);
    // A SIGTERM sent before the shell set its trap would end it at once.
    await trapped(id);
    const t0 = Date.now();
    await minic.stopContainer(id, 1);
    const waited = Date.now() - t0;
    assert.ok(waited >= 900 && waited < 5000, `stop took ${waited} ms`);
    const status = await minic.containerStatus(id);
    assert.equal(status?.state, 'exited');
    assert.equal(status?.exitCode, 137);
    await minic.stopContainer(id, 1);
    await minic.removeContainer(id);

    const polite = await minic.createContainer(sandbox.id, {
      ...base,
      name: 'polite',
      command: ['sh', '-c', 'trap "exit 0" TERM; touch /tmp/trapped; sleep 1000 & wait'],
    });
    await minic.startContainer(polite);
    await trapped(polite);
    const t1 = Date.now();
    await minic.stopContainer(polite, 10);
    assert.ok(Date.now() - t1 < 2000, 'a container that exits on SIGTERM is not kept for grace');
    const politeStatus = await minic.containerStatus(polite);
    assert.equal(politeStatus?.exitCode, 0);
    assert.equal(politeStatus?.reason, 'Completed');

    // busybox httpd as pid 1 ignores SIGTERM, so this one takes the grace period.
    await minic.stopContainer(webId, 1);
    assert.equal((await minic.containerStatus(webId))?.state, 'exited');
  });

  await t.test('bad input', async () => {
    await assert.rejects(
      minic.createContainer(sandbox.id, { ...base, name: 'x', image: 'nosuch:1' }),
      (err: unknown) => err instanceof RuntimeError && err.code === 'ImageNotFound',
    );
    await assert.rejects(
      minic.createContainer(sandbox.id, { ...base, name: 'x', image: 'Bad Name' }),
      (err: unknown) => err instanceof RuntimeError && err.code === 'InvalidImageName',
    );
    const id = await minic.createContainer(sandbox.id, {
      ...base,
      name: 'missing-binary',
      command: ['/no/such/binary'],
    });
    await assert.rejects(minic.startContainer(id), (err: unknown) => {
      assert.ok(err instanceof RuntimeError && err.code === 'RunContainerError');
      assert.match(err.message, /no such file/i);
      assert.doesNotMatch(err.message, /time=|level=error/);
      return true;
    });
    assert.equal((await minic.containerStatus(id))?.state, 'exited');
    await minic.removeContainer(id);
  });

  await t.test('removal leaves nothing behind', async () => {
    const rec = JSON.parse(
      await fs.readFile(
        path.join(options.root, 'state', 'containers', webId, 'container.json'),
        'utf8',
      ),
    ) as { cgroupPaths: string[] };
    const conmonPid = Number(
      await fs.readFile(
        path.join(options.root, 'state', 'containers', webId, 'conmon.pid'),
        'utf8',
      ),
    );
    assert.ok(rec.cgroupPaths.length > 0);
    for (const dir of rec.cgroupPaths) cgroupParents.add(path.dirname(path.dirname(dir)));

    await minic.stopSandbox(sandbox.id);
    await minic.removeSandbox(sandbox.id);
    await minic.removeSandbox(sandbox.id);

    assert.equal((await minic.listSandboxes()).length, 0);
    assert.equal((await minic.listContainers()).length, 0);
    assert.ok(!(await fs.readFile('/proc/self/mounts', 'utf8')).includes(tmp), 'mounts remain');
    assert.doesNotMatch(await sh('ip', ['netns', 'list']), new RegExp(netns));
    assert.equal((await sh('runc', [`--root=${runcRoot}`, 'list', '-q'])).trim(), '');
    for (const kind of ['containers', 'sandboxes']) {
      for (const root of [options.root, path.join(options.root, 'state')]) {
        const left = await fs.readdir(path.join(root, kind)).catch(() => []);
        assert.deepEqual(left, [], `${root}/${kind} is empty`);
      }
    }
    // A zombie not yet reaped by init has an empty cmdline; a live conmon does not.
    const cmdline = await fs.readFile(`/proc/${conmonPid}/cmdline`, 'utf8').catch(() => '');
    assert.equal(cmdline, '', 'conmon still runs');
    for (const dir of rec.cgroupPaths) {
      await assert.rejects(fs.access(dir), `cgroup ${dir} remains`);
      await assert.rejects(fs.access(path.dirname(dir)), `cgroup ${path.dirname(dir)} remains`);
    }
  });

  await t.test('a container starts while its sandbox network is being attached', async () => {
    const config = {
      podUid: 'early-' + path.basename(tmp),
      podName: 'early',
      podNamespace: 'default',
      hostname: 'early',
      labels: {},
    };
    const setUp = minic.runSandbox(config);
    const id = await minic.createContainer(minic.sandboxIdFor(config), { ...base, name: 'web' });
    await minic.startContainer(id);
    const early = await setUp;
    assert.equal(early.state, 'ready');
    assert.equal((await minic.containerStatus(id))?.state, 'running');
    // Started through runc's exec fifo: runc, too, sees it running (the fifo is gone).
    const state = JSON.parse(await sh('runc', [`--root=${runcRoot}`, 'state', id]));
    assert.equal(state.status, 'running');
    // /etc/hosts was written before the address was known and names it once started.
    const hosts = await minic.execSync(id, ['cat', '/etc/hosts'], 5000);
    assert.match(hosts.output, new RegExp(`^${early.ip!.replace(/\./g, '\\.')}\\s+early$`, 'm'));
    assert.match(await eventually(() => httpGet(`http://${early.ip}:8080/`)), /Hello from flyCes/);
    await minic.stopSandbox(early.id);
    await minic.removeSandbox(early.id);
    assert.equal((await minic.listContainers()).length, 0);
  });

  await t.test('a failed sandbox set-up fails and removes the containers made for it', async () => {
    // Its "bridge" is one end of a veth pair, which takes no ports: the namespace and the
    // pod's veth pair are made, and putting that on the bridge fails.
    const notBridge = 'flycestv0';
    await exec('ip', ['link', 'add', notBridge, 'type', 'veth', 'peer', 'name', 'flycestv1']);
    t.after(() => exec('ip', ['link', 'del', notBridge]).catch(() => undefined));
    const broken = new MiniC({ ...options, bridge: notBridge });
    const config = {
      podUid: 'broken-' + path.basename(tmp),
      podName: 'broken',
      podNamespace: 'default',
      hostname: 'broken',
      labels: {},
    };
    const setUp = broken.runSandbox(config);
    const created = broken.createContainer(broken.sandboxIdFor(config), { ...base, name: 'web' });
    const started = created.then((id) => broken.startContainer(id));
    const [sandboxOutcome, startOutcome] = await Promise.allSettled([setUp, started]);
    assert.equal(sandboxOutcome.status, 'rejected');
    const sandboxErr = (sandboxOutcome as PromiseRejectedResult).reason as RuntimeError;
    assert.equal(sandboxErr.code, 'NetworkError');
    assert.equal(startOutcome.status, 'rejected');
    assert.ok((startOutcome as PromiseRejectedResult).reason instanceof RuntimeError);
    assert.equal((await broken.listSandboxes()).length, 0);
    assert.equal((await broken.listContainers()).length, 0);
    // Its container was made by runc before the network failed: no cgroup of it remains.
    const cgroups = await sh('find', [
      '/sys/fs/cgroup',
      '-maxdepth',
      '8',
      '-type',
      'd',
      '-name',
      broken.sandboxIdFor(config),
    ]);
    assert.equal(cgroups.trim(), '');
    const netnsOf = `flyces-${broken.sandboxIdFor(config).slice(0, 12)}`;
    assert.doesNotMatch(await sh('ip', ['netns', 'list']), new RegExp(netnsOf));
    // Nor its veth, nor its address lease.
    assert.doesNotMatch(
      await sh('ip', ['-o', 'link']),
      new RegExp(vethName(broken.sandboxIdFor(config))),
    );
    const leases = path.join(options.root, 'cni', 'networks', 'flyces');
    for (const name of await fs.readdir(leases).catch(() => [] as string[])) {
      const holder = await fs.readFile(path.join(leases, name), 'utf8').catch(() => '');
      assert.ok(!holder.startsWith(broken.sandboxIdFor(config)), `lease ${name} remains`);
    }
    assert.match(sandboxErr.message, /flycestv0.*Operation not supported/s);
    assert.ok(!(await fs.readFile('/proc/self/mounts', 'utf8')).includes(tmp), 'mounts remain');
    assert.equal((await sh('runc', [`--root=${runcRoot}`, 'list', '-q'])).trim(), '');
  });

  await t.test('a corrupt blob is refused and leaves the store unchanged', async () => {
    const layer = await makeTar([{ header: { name: 'hello.txt' }, body: 'x'.repeat(2000) }]);
    const file = path.join(tmp, 'corrupt.tar');
    await makeArchive(file, [layer], 'localhost/corrupt:1', { cmd: ['/bin/sh'], corrupt: true });
    const before = await treeOf(images.root);
    await assert.rejects(images.importArchive(file), /blob sha256:[a-f0-9]+ is corrupt/);
    assert.deepEqual(await treeOf(images.root), before);
    assert.equal(await images.getImage('localhost/corrupt:1'), undefined);
  });

  await t.test('hostile layers cannot write outside the layer root', async () => {
    const outside = path.join(tmp, 'outside');
    await fs.mkdir(outside);
    const cases: Entry[][] = [
      [{ header: { name: '../escape' }, body: 'pwned' }],
      [{ header: { name: 'a/../../escape' }, body: 'pwned' }],
      [
        { header: { name: 'link', type: 'symlink', linkname: outside } },
        { header: { name: 'link/escape' }, body: 'pwned' },
      ],
      [
        { header: { name: 'link', type: 'symlink', linkname: '../../../..' + outside } },
        { header: { name: 'link/escape' }, body: 'pwned' },
      ],
      [{ header: { name: 'passwd', type: 'link', linkname: '../../../../etc/passwd' } }],
    ];
    for (const [i, entries] of cases.entries()) {
      const file = path.join(tmp, `hostile-${i}.tar`);
      await makeArchive(file, [await makeTar(entries)], `localhost/hostile:${i}`, {
        cmd: ['/bin/sh'],
      });
      await assert.rejects(images.importArchive(file), /\.\.|symlink/, `case ${i}`);
    }
    assert.deepEqual(await fs.readdir(outside), []);
    await assert.rejects(fs.access(path.join(tmp, 'escape')));
    await assert.rejects(fs.access(path.join(tmp, 'images', 'escape')));
  });

  await t.test('whiteouts and device nodes', async () => {
    const layer = await makeTar([
      { header: { name: 'dir', type: 'directory' } },
      { header: { name: 'dir/.wh..wh..opq' } },
      { header: { name: '.wh.gone' } },
      { header: { name: 'null', type: 'character-device', devmajor: 1, devminor: 3 } },
      { header: { name: 'ok.txt' }, body: 'fine' },
    ]);
    const file = path.join(tmp, 'whiteouts.tar');
    await makeArchive(file, [layer], 'localhost/whiteouts:1', { cmd: ['/bin/sh'] });
    const [info] = await images.importArchive(file);
    const stored = await images.resolveImage(info.id);
    const dir = stored!.layerDirs[0];
    const gone = await fs.lstat(path.join(dir, 'gone'));
    assert.ok(gone.isCharacterDevice() && gone.rdev === 0);
    await assert.rejects(fs.access(path.join(dir, 'null')));
    const xattr = await sh('getfattr', [
      '-n',
      'trusted.overlay.opaque',
      '--only-values',
      path.join(dir, 'dir'),
    ]);
    assert.equal(xattr, 'y');
    await images.removeImage(info.id);
    await assert.rejects(fs.access(dir));
  });
});

test('sandboxes started together on a fresh bridge all get the network', async (t) => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flyces-runtime-burst-'));
  const bridge = 'flycest1';
  const minic = new MiniC({
    root: path.join(tmp, 'runtime'),
    images: new ImageStore({ root: path.join(tmp, 'images') }),
    podCidr: '10.42.249.0/24',
    bridge,
  });
  t.after(async () => {
    for (const sb of await minic.listSandboxes().catch(() => [])) {
      await minic.removeSandbox(sb.id).catch((err) => console.error('cleanup', err));
    }
    await sh('ip', ['link', 'del', bridge]).catch(() => undefined);
    await fs.rm(tmp, { recursive: true, force: true });
  });
  const sandboxes = await Promise.all(
    Array.from({ length: 4 }, (_, i) =>
      minic.runSandbox({
        podUid: `burst-${i}-${path.basename(tmp)}`,
        podName: `burst-${i}`,
        podNamespace: 'default',
        hostname: `burst-${i}`,
        labels: {},
      }),
    ),
  );
  assert.ok(sandboxes.every((s) => s.state === 'ready'));
  assert.equal(new Set(sandboxes.map((s) => s.ip)).size, 4, 'distinct addresses');
});
