import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';

import { kubeconfigText, writeKubeconfig } from '../src/cli/kubeconfig.js';
import { ImageStore } from '../src/runtime/images.js';
import { RuntimeError } from '../src/runtime/runtime.js';
import { TestCluster, waitFor } from './helpers/cluster.js';
import { busyboxLayer, makeArchive, makeTar } from './helpers/oci-images.js';
import { startRegistry } from './helpers/registry.js';

/**
 * flyCes on a full disk: image pulls and imports that run out of space, an image index
 * that cannot be written, and a cluster whose data dir (store, images, logs) fills up
 * under a running pod. Each case checks what the user sees, what is left on disk, and
 * that everything works again once space is freed. The disks are tmpfs mounts of this
 * test's own (source flycesdf-*), filled with a file of its own; the cluster uses API
 * port 16793 (not pod-life.test.ts's 16743), agent port 20550, pods 10.42.248.0/24 and the bridge flycesdf0. Needs root.
 */

const exec = promisify(execFile);
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flyces-disk-full-'));
const mounts: string[] = [];
const children: ChildProcess[] = [];

after(async () => {
  for (const child of children) child.kill();
  for (const dir of mounts.reverse()) await exec('umount', [dir]).catch(() => undefined);
  await fs.rm(tmp, { recursive: true, force: true });
});

/** A tmpfs of `mb` MiB and `inodes` inodes at TMP/name, unmounted when the test ends. */
async function disk(name: string, mb: number, inodes = 10_000): Promise<string> {
  const dir = path.join(tmp, name);
  await fs.mkdir(dir);
  const options = `size=${mb}m,nr_inodes=${inodes}`;
  await exec('mount', ['-t', 'tmpfs', '-o', options, `flycesdf-${name}`, dir]);
  mounts.push(dir);
  return dir;
}

/** Fills the disk of `dir` until `leave` bytes are free (about; 0 is all of it). */
async function fill(dir: string, leave = 0): Promise<void> {
  const st = await fs.statfs(dir);
  // With nothing to leave, a MiB is left to dd: a running pod's log may take some meanwhile.
  const bytes = st.bavail * st.bsize - (leave > 0 ? leave : 1 << 20);
  if (bytes > 0) await exec('fallocate', ['-l', String(bytes), path.join(dir, 'filler')]);
  if (leave > 0) return;
  // Whatever fallocate could not take (and what was freed since) goes too.
  await exec('dd', ['if=/dev/zero', `of=${path.join(dir, 'filler-rest')}`, 'bs=4k']).catch(
    () => undefined,
  );
  assert.equal((await fs.statfs(dir)).bavail, 0, `${dir} is not full`);
}

async function unfill(dir: string): Promise<void> {
  await fs.rm(path.join(dir, 'filler'), { force: true });
  await fs.rm(path.join(dir, 'filler-rest'), { force: true });
}

/** Every path below `dir`, relative, sorted. */
async function tree(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.sort();
}

// An image whose second layer holds 12 MiB that do not compress: 13 MiB of blobs, and as
// much again once unpacked.
const BIG = randomBytes(12 << 20);
const layers = [
  await busyboxLayer([]),
  await makeTar([{ header: { name: 'big', size: BIG.length }, body: BIG }]),
];
const blobBytes = layers.reduce((sum, l) => sum + l.length, 0);
const bigArchive = path.join(tmp, 'big.tar');
await makeArchive(bigArchive, layers, 'localhost/big:1');
const smallArchive = path.join(tmp, 'small.tar');
await makeArchive(smallArchive, [await busyboxLayer([])], 'localhost/small:1');

const registry = await startRegistry(
  tmp,
  'registry',
  path.join(tmp, 'storage'),
  undefined,
  children,
);
const policy = path.join(tmp, 'policy.json');
await fs.writeFile(policy, '{"default":[{"type":"insecureAcceptAnything"}]}');
await exec('skopeo', [
  ...['--policy', policy, 'copy', '--quiet', '--dest-tls-verify=false'],
  ...[`oci-archive:${bigArchive}`, `docker://127.0.0.1:${registry}/big:1`],
]);
const bigRef = `127.0.0.1:${registry}/big:1`;

test('a pull that fills the disk while unpacking fails as ErrImagePull and leaves nothing', async () => {
  const root = path.join(await disk('pull', 64), 'images');
  const store = new ImageStore({ root });
  // Room for the blobs, not for the unpacked layers besides them.
  await fill(path.dirname(root), blobBytes + (4 << 20));

  const err = await store.pullImage(bigRef).then(
    () => assert.fail('the pull succeeded on a full disk'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof RuntimeError, `not a RuntimeError: ${String(err)}`);
  assert.equal(err.code, 'ErrImagePull');
  assert.match(err.message, /no space left on device/);
  assert.match(err.message, new RegExp(`image store ${root}`));
  assert.deepEqual(await tree(root), ['blobs', 'blobs/sha256', 'layers', 'layers/sha256', 'tmp']);

  await unfill(path.dirname(root));
  const info = await store.pullImage(bigRef);
  assert.deepEqual(info.names, [bigRef]);
  assert.equal((await store.listImages()).length, 1);
});

/** Takes every inode left on the disk of `dir` with empty files in DIR/inodes. */
async function fillInodes(dir: string): Promise<void> {
  const fillers = path.join(dir, 'inodes');
  await fs.mkdir(fillers);
  for (let i = 0; ; i++) {
    try {
      await fs.writeFile(path.join(fillers, String(i)), '');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return;
      throw err;
    }
  }
}

test('a pull or an import that cannot make its staging directory names the cause', async () => {
  const dir = await disk('staging', 64, 100);
  const root = path.join(dir, 'images');
  const store = new ImageStore({ root });
  // The store's directories are there (as after any earlier import); only new ones fail.
  for (const sub of ['blobs/sha256', 'layers/sha256', 'tmp']) {
    await fs.mkdir(path.join(root, sub), { recursive: true });
  }
  await fillInodes(dir);

  const err = await store.pullImage(bigRef).then(
    () => assert.fail('the pull succeeded without an inode'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof RuntimeError, `not a RuntimeError: ${String(err)}`);
  assert.equal(err.code, 'ErrImagePull');
  assert.match(err.message, new RegExp(`^image store ${root}: ENOSPC: .* mkdtemp`));
  await assert.rejects(store.importArchive(bigArchive), /^ArchiveError: image store .* mkdtemp/);

  await fs.rm(path.join(dir, 'inodes'), { recursive: true });
  await store.pullImage(bigRef);
  assert.equal((await store.listImages()).length, 1);
});

test('an import onto a full disk names the cause and leaves nothing', async () => {
  const root = path.join(await disk('import', 64), 'images');
  const store = new ImageStore({ root });
  for (const leave of [0, blobBytes + (4 << 20)]) {
    await fill(path.dirname(root), leave);
    await assert.rejects(store.importArchive(bigArchive), (e: Error) =>
      e.message.startsWith(`image store ${root}: ENOSPC: no space left on device`),
    );
    assert.deepEqual(await tree(root), ['blobs', 'blobs/sha256', 'layers', 'layers/sha256', 'tmp']);
    await unfill(path.dirname(root));
  }
  const [info] = await store.importArchive(bigArchive);
  assert.deepEqual(info.names, ['localhost/big:1']);
});

test('an image index that cannot be written takes back the blobs and layers it would name', async () => {
  const dir = await disk('index', 64);
  const root = path.join(dir, 'images');
  const store = new ImageStore({ root });
  await store.importArchive(smallArchive);
  const before = await tree(root);

  // A removal holds the index lock (while it asks which layers containers use) until the
  // big import has unpacked and waits for that lock; then the disk is full.
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  store.setLayerUsers(async () => {
    await held;
    return new Set();
  });
  const removal = store.removeImage('localhost/small:1').then(
    () => 'removed',
    (e: Error) => e.message,
  );
  const importing = store.importArchive(bigArchive).then(
    () => 'imported',
    (e: Error) => e.message,
  );
  await waitFor('the big layer to be unpacked', 20_000, async () => {
    const staged = (await tree(path.join(root, 'tmp'))).filter((p) => p.endsWith('/big'));
    if (staged.length === 0) return false;
    return (await fs.stat(path.join(root, 'tmp', staged[0]))).size === BIG.length;
  });
  await new Promise((r) => setTimeout(r, 500));
  await fill(dir);
  release();

  assert.match(await removal, /ENOSPC/);
  assert.match(await importing, /no space left on device/);
  assert.deepEqual(await tree(root), before, 'the store holds files no index names');
  await unfill(dir);
  assert.deepEqual(
    (await store.listImages()).map((i) => i.names),
    [['localhost/small:1']],
  );
  await store.importArchive(bigArchive);
  assert.equal((await store.listImages()).length, 2);
});

test('the kubeconfig on a full disk: kept when unchanged, no temporary file when not', async () => {
  const dir = await disk('kubeconfig', 1);
  const file = path.join(dir, 'kubeconfig');
  const text = kubeconfigText('https://127.0.0.1:1', 'ca', 'token');
  writeKubeconfig(file, text);
  await fill(dir);
  writeKubeconfig(file, text);
  assert.throws(
    () => writeKubeconfig(file, kubeconfigText('https://127.0.0.1:2', 'ca', 'token')),
    new RegExp(`^Error: cannot write kubeconfig ${file}: ENOSPC`),
  );
  await unfill(dir);
  assert.deepEqual(await fs.readdir(dir), ['kubeconfig']);
  assert.equal(await fs.readFile(file, 'utf8'), text);
});

test('a cluster whose data dir fills up keeps serving and recovers once space is freed', async (t) => {
  const mount = await disk('cluster', 96, 4000);
  const cluster = new TestCluster({
    podCidr: '10.42.248.0/24',
    bridge: 'flycesdf0',
    port: 16793,
    agentPort: 20550,
    dataDir: path.join(mount, 'data'),
    logFile: path.join(tmp, 'flyces-up.log'),
  });
  await fs.mkdir(cluster.dataDir);
  t.after(async () => {
    await unfill(mount);
    await cluster.destroy();
  });
  await cluster.start();
  const podField = (name: string, jsonpath: string) =>
    cluster.kubectl('get', 'pod', name, '-o', `jsonpath=${jsonpath}`);

  await t.test('a pull that runs out of space shows ErrImagePull, then runs', async () => {
    await fill(mount, blobBytes + (6 << 20));
    await cluster.kubectl('run', 'big', `--image=${bigRef}`, '--restart=Never');
    await waitFor('ErrImagePull', 30_000, async () => {
      const reason = await podField('big', '{.status.containerStatuses[0].state.waiting.reason}');
      return reason === 'ErrImagePull' || reason === 'ImagePullBackOff';
    });
    const events = await cluster.kubectl(
      ...['get', 'events', '--field-selector', 'involvedObject.name=big,reason=Failed'],
      ...['-o', 'jsonpath={.items[*].message}'],
    );
    assert.match(events, /Failed to pull image .*no space left on device/);
    const log = await fs.readFile(cluster.logFile, 'utf8');
    assert.match(
      log,
      /"pod":"default\/big".*"err":"image store .*no space left.*image pull failed/,
    );
    const images = path.join(cluster.dataDir, 'images');
    assert.deepEqual(await tree(path.join(images, 'tmp')), []);
    assert.deepEqual(await tree(path.join(images, 'layers', 'sha256')), []);

    await unfill(mount);
    await waitFor('the pod to run', 60_000, async () => {
      return (await podField('big', '{.status.phase}')) === 'Running';
    });
  });

  await t.test(
    'a full store refuses writes clearly; reads, logs and the cluster go on',
    async () => {
      const script = 'i=0; while :; do i=$((i+1)); echo "line $i"; sleep 0.01; done';
      await cluster.kubectl(
        ...['run', 'logger', `--image=${bigRef}`, '--restart=Never', '--command'],
        ...['--', 'sh', '-c', script],
      );
      await waitFor('the logger to run', 30_000, async () => {
        return (await podField('logger', '{.status.phase}')) === 'Running';
      });
      const lastLine = async () => {
        const out = await cluster.kubectl('logs', 'logger', '--tail=1');
        return Number(/line (\d+)/.exec(out)?.[1] ?? NaN);
      };

      await fill(mount);
      const refused = await cluster.kubectlResult(
        'create',
        'configmap',
        'full',
        '--from-literal=a=b',
      );
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /Internal error occurred: database or disk is full/);
      // Longer than the leases' renew deadline (10 s): the control loops lose their leases.
      const until = Date.now() + 14_000;
      while (Date.now() < until) {
        assert.match(await cluster.kubectl('get', 'pods'), /logger\s+1\/1\s+Running/);
        assert.ok((await lastLine()) > 0);
        await new Promise((r) => setTimeout(r, 1000));
      }
      const stalled = await lastLine();

      await unfill(mount);
      await waitFor('writes to be taken again', 30_000, async () => {
        const res = await cluster.kubectlResult(
          'create',
          'configmap',
          'freed',
          '--from-literal=a=b',
        );
        return res.code === 0;
      });
      await waitFor('the logs to go on', 10_000, async () => (await lastLine()) > stalled);
      // The controllers work again: a Deployment gets its pod.
      await cluster.kubectl(
        'create',
        'deployment',
        'after',
        `--image=${bigRef}`,
        '--',
        'sleep',
        '3600',
      );
      await waitFor('the deployment to get a pod', 60_000, async () => {
        const out = await cluster.kubectl('get', 'pods', '-l', 'app=after', '-o', 'name');
        return out.trim() !== '';
      });
    },
  );

  await t.test(
    'a container that cannot be made shows CreateContainerError, now and then',
    async () => {
      // The agent keeps a pod network and a container monitor (with its directories) ready;
      // the first container of the pod takes them, the second must make its own directories.
      const runtime = path.join(cluster.dataDir, 'runtime');
      await waitFor('the spare network and monitor', 30_000, async () => {
        const names = await fs.readdir(runtime);
        return names.includes('spare-network.json') && names.includes('warm-monitor.json');
      });
      // No inode left: directories cannot be made, while the store's files still grow.
      const fillers = path.join(mount, 'inodes');
      await fs.mkdir(fillers);
      for (let i = 0; ; i++) {
        try {
          await fs.writeFile(path.join(fillers, String(i)), '');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
      const manifest = path.join(tmp, 'two.json');
      const container = (name: string) => ({ name, image: bigRef, command: ['sleep', '3600'] });
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'two' },
        spec: { containers: [container('one'), container('two')] },
      };
      await fs.writeFile(manifest, JSON.stringify(pod));
      await cluster.kubectl('create', '-f', manifest);
      await waitFor('CreateContainerError', 30_000, async () => {
        const state = await podField('two', '{.status.containerStatuses[1].state.waiting}');
        return /CreateContainerError/.test(state) && /no space left on device/.test(state);
      });
      const tries = async () => {
        const log = await fs.readFile(cluster.logFile, 'utf8');
        return log
          .split('\n')
          .filter((l) => l.includes('"pod":"default/two","container":"two"'))
          .filter((l) => l.includes('container failed to start')).length;
      };
      const before = await tries();
      await new Promise((r) => setTimeout(r, 12_000));
      // Tried again after 10 s, then 20 s (the back-off of a crashing container), not each
      // time the pod's status changed (hundreds a second).
      const made = (await tries()) - before;
      assert.ok(made >= 1 && made <= 2, `${made} tries in 12 s`);

      await fs.rm(fillers, { recursive: true });
      // At the next try, at most 20 s away.
      await waitFor('both containers to run', 45_000, async () => {
        const ready = await podField('two', '{.status.containerStatuses[*].ready}');
        return ready === 'true true';
      });
      // The failed tries left no container directory behind: each one on disk belongs to a
      // container a pod reports, or to the monitor kept warm for the next one.
      const known = await cluster.kubectl(
        ...['get', 'pods', '-o'],
        'jsonpath={.items[*].status.containerStatuses[*].containerID}',
      );
      const warmFile = path.join(runtime, 'warm-monitor.json');
      const warm = await fs.readFile(warmFile, 'utf8').catch(() => '');
      const stray = (await fs.readdir(path.join(runtime, 'containers'))).filter(
        (id) => !known.includes(id) && !warm.includes(id),
      );
      assert.deepEqual(stray, []);
    },
  );

  await t.test('flyces up says why it cannot start on the full disk, then starts', async () => {
    assert.equal(await cluster.stop(), 0);
    await fill(mount);
    const store = path.join(cluster.dataDir, 'store.db');
    await assert.rejects(cluster.start(), (err: Error) =>
      err.message.includes(`error: cannot open the store ${store}: disk I/O error (no space left`),
    );
    await unfill(mount);
    await cluster.start();
    assert.match(await cluster.kubectl('get', 'configmap', 'freed', '-o', 'name'), /freed/);
    const db = new Database(path.join(cluster.dataDir, 'store.db'), { readonly: true });
    try {
      assert.deepEqual(db.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
    } finally {
      db.close();
    }
  });
});
