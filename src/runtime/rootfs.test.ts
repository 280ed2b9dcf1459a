import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { rootfsMount } from './rootfs.js';

const layer = (root: string, i: number) =>
  path.join(root, 'layers', 'sha256', i.toString(16).padStart(64, '0'));

test('rootfs: layers stack top first; an image without layers gets an empty lower', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flyces-rootfs-'));
  try {
    const two = rootfsMount(dir, ['/l/0', '/l/1']);
    assert.equal(two.destination, '/');
    assert.deepEqual(two.options, [`lowerdir=/l/1:/l/0,upperdir=${dir}/upper,workdir=${dir}/work`]);
    const none = rootfsMount(dir, []);
    assert.match(none.options[0], new RegExp(`^lowerdir=${dir}/empty,`));
    assert.ok(existsSync(path.join(dir, 'empty')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
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
    () => rootfsMount(dir, layers),
    /too many layers \(28\).*take \d+ bytes, the limit is 4095/,
  );
  assert.doesNotThrow(() => rootfsMount(dir, layers.slice(0, 20)));
});

test('rootfs: a directory overlay options cannot name is refused clearly', () => {
  const dir = `/var/lib/c/${'0'.repeat(64)}`;
  for (const bad of ['/var/lib/img:v2', '/var/lib/a,b', '/var/lib/a\\b']) {
    assert.throws(
      () => rootfsMount(dir, [layer(bad, 1)]),
      (err: Error) => err.message.includes(bad) && /cannot name the directory/.test(err.message),
    );
  }
  assert.throws(() => rootfsMount('/run/a,upperdir=/etc', ['/l/0']), /cannot name/);
});
