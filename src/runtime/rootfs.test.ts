import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureMountPointLayer, MountPointLayer, rootfsMount } from './rootfs.js';

const layer = (root: string, i: number) =>
  path.join(root, 'layers', 'sha256', i.toString(16).padStart(64, '0'));

test('rootfs: layers stack top first over the mount-point layer, alone for no layers', () => {
  const dir = '/var/lib/c/0';
  const two = rootfsMount(dir, ['/l/0', '/l/1'], '/m');
  assert.equal(two.destination, '/');
  assert.deepEqual(two.options, [
    `lowerdir=/l/1:/l/0:/m,upperdir=${dir}/upper,workdir=${dir}/work`,
  ]);
  const none = rootfsMount(dir, [], '/m');
  assert.deepEqual(none.options, [`lowerdir=/m,upperdir=${dir}/upper,workdir=${dir}/work`]);
});

test('rootfs: the mount-point layer is made whole once, with its modes whatever the umask', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'flyces-rootfs-'));
  const umask = process.umask(0o077);
  try {
    const layer = ensureMountPointLayer(path.join(root, 'runtime'));
    assert.equal(layer, path.join(root, 'runtime', 'mountpoints'));
    const mode = (p: string) => statSync(path.join(layer, p)).mode & 0o7777;
    for (const d of ['', 'proc', 'dev', 'sys', 'etc']) {
      assert.ok(statSync(path.join(layer, d)).isDirectory(), d);
      assert.equal(mode(d), 0o755, d);
    }
    for (const f of ['etc/hosts', 'etc/hostname', 'etc/resolv.conf']) {
      assert.equal(statSync(path.join(layer, f)).size, 0, f);
      assert.equal(mode(f), 0o644, f);
    }
    assert.deepEqual(readdirSync(layer).sort(), ['dev', 'etc', 'proc', 'sys']);
    // Made once: the next call finds it, and nothing is left under a temporary name.
    assert.equal(ensureMountPointLayer(path.join(root, 'runtime')), layer);
    assert.deepEqual(readdirSync(path.join(root, 'runtime')), ['mountpoints']);
  } finally {
    process.umask(umask);
    rmSync(root, { recursive: true, force: true });
  }
});

test('rootfs: the options limit is counted in bytes, not characters', () => {
  // 28 layers under a root of 2-byte characters: under 4096 characters, over 4096 bytes,
  // which runc took and the kernel refused at start with an unclear mount error.
  const root = `/var/lib/${'é'.repeat(40)}`;
  const layers = Array.from({ length: 28 }, (_, i) => layer(root, i));
  const dir = `/var/lib/c/${'0'.repeat(64)}`;
  const options = `lowerdir=${layers.join(':')},upperdir=${dir}/upper,workdir=${dir}/work`;
  assert.ok(options.length < 4096 && Buffer.byteLength(options) >= 4096, 'the case is on the edge');
  assert.throws(
    () => rootfsMount(dir, layers, '/m'),
    /too many layers \(28\).*take \d+ bytes, the limit is 4095/,
  );
  assert.doesNotThrow(() => rootfsMount(dir, layers.slice(0, 20), '/m'));
});

test('rootfs: a directory overlay options cannot name is refused clearly', () => {
  const dir = `/var/lib/c/${'0'.repeat(64)}`;
  for (const bad of ['/var/lib/img:v2', '/var/lib/a,b', '/var/lib/a\\b']) {
    assert.throws(
      () => rootfsMount(dir, [layer(bad, 1)], '/m'),
      (err: Error) => err.message.includes(bad) && /cannot name the directory/.test(err.message),
    );
  }
  assert.throws(() => rootfsMount('/run/a,upperdir=/etc', ['/l/0'], '/m'), /cannot name/);
});

test('rootfs: a mount-point layer that is not exactly one is refused, naming what is wrong', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'flyces-rootfs-'));
  try {
    const layer = ensureMountPointLayer(root);
    const refused = (what: RegExp) =>
      assert.throws(
        () => ensureMountPointLayer(root),
        (err: Error) =>
          err.message.startsWith(`${layer} is not the mount-point layer`) && what.test(err.message),
      );
    writeFileSync(path.join(layer, 'etc', 'passwd'), 'root:x:0:0::/:/bin/sh\n');
    refused(/etc also holds passwd/);
    rmSync(path.join(layer, 'etc', 'passwd'));
    writeFileSync(path.join(layer, 'etc', 'hosts'), '10.0.0.1 elsewhere\n');
    refused(/etc\/hosts is not an empty file/);
    writeFileSync(path.join(layer, 'etc', 'hosts'), '');
    chmodSync(path.join(layer, 'etc'), 0o700);
    refused(/etc has mode 700, not 755/);
    rmSync(layer, { recursive: true });
    writeFileSync(layer, '');
    refused(/\. is not an empty directory/);
    rmSync(layer);
    symlinkSync(path.join(root, 'elsewhere'), layer);
    refused(/\. is missing|not an empty directory/);
    rmSync(layer);
    // A half-made layer left under its temporary name does not count, nor stay in the way.
    mkdirSync(path.join(root, '.mountpoints-left'));
    assert.equal(ensureMountPointLayer(root), layer);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('rootfs: the layer is checked whole once, and made again once it is removed', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'flyces-rootfs-'));
  try {
    const layers = new MountPointLayer(root);
    const layer = layers.path();
    assert.equal(layer, path.join(root, 'mountpoints'));
    rmSync(layer, { recursive: true });
    assert.equal(layers.path(), layer);
    assert.ok(statSync(path.join(layer, 'etc', 'hosts')).isFile());
    // Replaced by another directory: checked again, and refused as it is not the layer.
    const other = path.join(root, 'other');
    mkdirSync(other);
    chmodSync(other, 0o755);
    renameSync(other, layer + '-new');
    rmSync(layer, { recursive: true });
    renameSync(layer + '-new', layer);
    assert.throws(() => layers.path(), /proc is missing/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('rootfs: what a making of the layer cut short left is removed; one under way is not', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'flyces-rootfs-'));
  try {
    const runtime = path.join(root, 'runtime');
    const abandoned = path.join(runtime, '.mountpoints-abandon');
    const underWay = path.join(runtime, '.mountpoints-underway');
    mkdirSync(path.join(abandoned, 'proc'), { recursive: true });
    mkdirSync(underWay, { recursive: true });
    const longAgo = new Date(Date.now() - 10 * 60_000);
    utimesSync(abandoned, longAgo, longAgo);
    ensureMountPointLayer(runtime);
    assert.deepEqual(readdirSync(runtime).sort(), ['.mountpoints-underway', 'mountpoints']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
