import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import type { ContainerConfig } from '../src/runtime/runtime.js';
import {
  busyboxLayer,
  dir,
  file,
  link,
  makeArchive,
  makeTar,
  type Entry,
} from './helpers/oci-images.js';
import { runtimeRig } from './helpers/runtime-rig.js';

/**
 * The mount-point layer under hostile images and faults, against runc, conmon and
 * overlayfs (needs root). Images are built here from the host's static busybox, with their
 * own /etc; the runtime has its own temp root, bridge and pod range.
 */

const BRIDGE = 'flycesat8';
const POD_CIDR = '10.42.238.0/24';
/** Every entry under `root` with its type, mode, owner, size and mtime. */
async function snapshot(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const rel of ['', ...(await fs.readdir(root, { recursive: true }))].map(String).sort()) {
    const st = await fs.lstat(path.join(root, rel));
    out.push(`${rel} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs}`);
  }
  return out;
}

test('the mount-point layer under hostile images and faults', async (t) => {
  const { tmp, images, options, minic, pod } = await runtimeRig(t, 'flyces-mountpoints-test-', {
    bridge: BRIDGE,
    podCidr: POD_CIDR,
  });
  const layerDir = path.join(options.root, 'mountpoints');

  const image = async (name: string, layers: Entry[][]): Promise<string> => {
    const archive = path.join(tmp, `${name}.tar`);
    const built = await Promise.all(layers.map((l, i) => (i === 0 ? busyboxLayer(l) : makeTar(l))));
    const ref = `localhost/mp-${name}:1`;
    await makeArchive(archive, built, ref);
    await images.importArchive(archive);
    return ref;
  };

  const sandbox = await minic.runSandbox(pod('mp'));
  let n = 0;
  const run = async (ref: string, extra: Partial<ContainerConfig> = {}): Promise<string> => {
    const id = await minic.createContainer(sandbox.id, {
      name: `c${n++}`,
      image: ref,
      attempt: 0,
      labels: {},
      ...extra,
    });
    await minic.startContainer(id);
    return id;
  };
  const sh = async (id: string, script: string) => {
    const res = await minic.execSync(id, ['/bin/sh', '-c', script], 5000);
    return { code: res.exitCode, out: res.output.trim() };
  };
  const sh2 = async (id: string, script: string) => {
    const res = await minic.execSync(id, ['/bin/busybox', 'sh', '-c', script], 5000);
    return { code: res.exitCode, out: res.output.trim() };
  };
  const podHosts = (out: string) => assert.match(out, /\bmp\b/, "the pod's /etc/hosts");

  let before: string[] = [];
  await t.test('an image without /etc: the pod files, writes stay in the container', async () => {
    const ref = await image('noetc', [[]]);
    const id = await run(ref);
    before = await snapshot(layerDir);
    podHosts((await sh(id, 'cat /etc/hosts')).out);
    const wrote = await sh(
      id,
      'touch /etc/new /proc-no 2>&1; chmod 700 /etc; mkdir /etc/d; ls /etc',
    );
    assert.equal(wrote.out, ['d', 'hostname', 'hosts', 'new', 'resolv.conf'].join('\n'));
    // Another container does not see the first one's writes, and the layer is as made.
    const other = await run(ref, { security: { runAsUser: 1000, runAsGroup: 1000 } });
    podHosts((await sh(other, 'cat /etc/hosts')).out);
    assert.equal((await sh(other, 'ls /etc')).out, 'hostname\nhosts\nresolv.conf');
    assert.equal((await sh(other, 'stat -c %a /etc')).out, '755');
    assert.deepEqual(await snapshot(layerDir), before);
  });

  await t.test("the image's own /etc takes precedence, as between image layers", async () => {
    // /etc a symlink to a directory of the image: the pod's files land there.
    const linked = await run(await image('etclink', [[dir('data'), link('etc', 'data')]]));
    assert.equal((await sh(linked, 'ls /data')).out, 'hostname\nhosts\nresolv.conf');
    // An opaque /etc in a later layer hides the lower /etc and the mount-point layer.
    const opaque = await image('opaque', [
      [dir('etc'), file('etc/issue', 'lower\n'), file('etc/motd', 'hi\n')],
      [dir('etc'), file('etc/.wh..wh..opq', ''), file('etc/issue', 'upper\n')],
    ]);
    const o = await run(opaque, { security: { readOnlyRootFilesystem: true } });
    assert.equal(
      (await sh(o, 'ls /etc; cat /etc/issue')).out,
      'hostname\nhosts\nissue\nresolv.conf\nupper',
    );
    // A whiteout of the image's /etc/hosts: the pod's file still mounts there.
    const wh = await image('whiteout', [
      [dir('etc', 0o700), file('etc/hosts', 'image\n')],
      [dir('etc', 0o700), file('etc/.wh.hosts', '')],
    ]);
    const w = await run(wh);
    podHosts((await sh(w, 'cat /etc/hosts')).out);
    assert.equal((await sh(w, 'stat -c %a /etc')).out, '700', "the image's /etc mode");
    // /etc/hosts a directory in the image: runc cannot mount the pod's file on it.
    const bad = await image('hostsdir', [[dir('etc'), dir('etc/hosts')]]);
    await assert.rejects(run(bad));
    assert.deepEqual(await snapshot(layerDir), before);
  });

  await t.test('an image without layers runs on the mount-point layer alone', async () => {
    const archive = path.join(tmp, 'nolayers.tar');
    await makeArchive(archive, [], 'localhost/mp-nolayers:1');
    await images.importArchive(archive);
    // Its only program comes from a volume.
    const id = await run('localhost/mp-nolayers:1', {
      command: ['/bin/busybox', 'sleep', '3600'],
      mounts: [{ hostPath: '/bin/busybox', containerPath: '/bin/busybox', readOnly: true }],
    });
    podHosts((await sh2(id, 'cat /etc/hosts')).out);
    assert.equal((await sh2(id, 'ls / | tr "\\n" " "')).out, 'bin dev etc proc sys');
    assert.deepEqual(await snapshot(layerDir), before);
  });

  await t.test(
    'odd /etc, /proc and /dev in images start or fail as without the layer',
    async () => {
      // What each image gave before the layer existed (runc 1.1.5, checked on its parent
      // commit): the layer changes no outcome, and where a container runs it sees the pod's
      // /etc/hosts.
      const cases: [string, Entry[], string][] = [
        ['etc-to-root', [link('etc', '/')], 'runs'],
        ['etc-up', [link('etc', '../..')], 'runs'],
        ['etc-dangling', [link('etc', '/nowhere')], 'runs'],
        ['hosts-out', [dir('etc'), link('etc/hosts', '../../../../tmp/flyces-mp-out')], 'runs'],
        ['etc-file', [file('etc', 'not a directory\n')], 'fails'],
        ['proc-file', [file('proc', '')], 'fails'],
        ['proc-link', [dir('data'), link('proc', 'data')], 'fails'],
        ['dev-link', [dir('data'), link('dev', 'data')], 'runs'],
        ['sys-file', [file('sys', '')], 'fails'],
      ];
      const outcomes: string[] = [];
      for (const [name, entries] of cases) {
        const ref = await image(name, [entries]);
        const outcome = await run(ref).then(
          async (id) => {
            podHosts((await sh(id, 'cat /etc/hosts')).out);
            return 'runs';
          },
          () => 'fails',
        );
        outcomes.push(`${name} ${outcome}`);
      }
      assert.deepEqual(
        outcomes,
        cases.map(([name, , outcome]) => `${name} ${outcome}`),
      );
      assert.ok(!(await fs.stat('/tmp/flyces-mp-out').catch(() => undefined)), 'nothing outside');
      assert.deepEqual(await snapshot(layerDir), before);
    },
  );

  await t.test('a layer deleted while containers run is made again for the next', async () => {
    const ref = 'localhost/mp-noetc:1';
    const running = await run(ref);
    await fs.rm(layerDir, { recursive: true });
    podHosts((await sh(running, 'cat /etc/hosts')).out);
    const next = await run(ref);
    podHosts((await sh(next, 'cat /etc/hosts')).out);
    assert.deepEqual(
      (await snapshot(layerDir)).map((l) => l.split(' ').slice(0, 4).join(' ')),
      before.map((l) => l.split(' ').slice(0, 4).join(' ')),
    );
  });

  await t.test('a layer that is not what it should be is refused, naming it', async () => {
    const ref = 'localhost/mp-noetc:1';
    await fs.rm(layerDir, { recursive: true, force: true });
    await fs.writeFile(layerDir, '');
    await assert.rejects(run(ref), /mountpoints is not the mount-point layer/);
    await fs.rm(layerDir);
    await fs.symlink(path.join(tmp, 'elsewhere'), layerDir);
    await assert.rejects(run(ref), /mountpoints is not the mount-point layer/);
    await fs.rm(layerDir);
    podHosts((await sh(await run(ref), 'cat /etc/hosts')).out);
  });
});
