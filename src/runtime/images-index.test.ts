import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ImageStore } from './images.js';

const ID = 'sha256:' + '1'.repeat(64);

/**
 * An image store's index, as the store writes it, with one image of `layers` and the
 * unpacked layers `stored` (by default the image's own).
 */
function writeIndex(root: string, names: string[], layers: string[] = [], stored = layers): void {
  const image = {
    id: ID,
    digest: 'sha256:' + '2'.repeat(64),
    names,
    config: { Cmd: ['sh'] },
    layers,
    blobs: [],
    createdAt: '2026-01-01T00:00:00Z',
  };
  const unpacked = Object.fromEntries(stored.map((l) => [l, { size: 1 }]));
  writeFileSync(
    path.join(root, 'images.json'),
    JSON.stringify({ images: [image], layers: unpacked }),
  );
}

test('readers see the index another writer (another process) replaced', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'flyces-images-'));
  try {
    const store = new ImageStore({ root });
    assert.equal(await store.getImage('busybox:1'), undefined, 'no index yet');
    writeIndex(root, ['docker.io/library/busybox:1']);
    assert.equal((await store.getImage('busybox:1'))?.id, ID);

    // Another store on the same root stands for `flyces image import` or `rmi` elsewhere.
    await new ImageStore({ root }).removeImage('busybox:1');
    assert.equal(await store.getImage('busybox:1'), undefined, 'the removal is seen');
    assert.equal(await store.resolveImage('busybox:1'), undefined);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('what resolveImage hands out can be changed without changing the store', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'flyces-images-'));
  try {
    writeIndex(root, ['docker.io/library/busybox:1']);
    const store = new ImageStore({ root });
    const first = await store.resolveImage('busybox:1');
    first!.config.Cmd!.push('-c');
    first!.names.push('x');
    const again = await store.resolveImage('busybox:1');
    assert.deepEqual(again?.config.Cmd, ['sh']);
    assert.deepEqual(again?.names, ['docker.io/library/busybox:1']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a layer a container stacks is kept when its image is removed, until it is free', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'flyces-images-'));
  try {
    const layer = 'sha256:' + '3'.repeat(64);
    writeIndex(root, ['docker.io/library/busybox:1'], [layer]);
    const store = new ImageStore({ root });
    const dir = store.layerDir(layer);
    mkdirSync(dir, { recursive: true });
    let users = new Set([dir]);
    store.setLayerUsers(async () => users);

    await store.removeImage('busybox:1');
    assert.equal(await store.getImage('busybox:1'), undefined);
    assert.ok(existsSync(dir), 'the layer a container uses stays');

    users = new Set();
    writeIndex(root, ['docker.io/library/other:1'], [], [layer]);
    await store.removeImage('other:1');
    assert.ok(!existsSync(dir), 'a layer no container uses goes with the next removal');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('an image resolved with a claim while it is removed: found with its layers, or not found', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'flyces-images-'));
  try {
    const layer = 'sha256:' + '4'.repeat(64);
    for (const removalFirst of [true, false]) {
      writeIndex(root, ['docker.io/library/busybox:1'], [layer]);
      const store = new ImageStore({ root });
      mkdirSync(store.layerDir(layer), { recursive: true });
      // The runtime's claims, as MiniC keeps them for containers being created.
      const claimed = new Set<string>();
      store.setLayerUsers(async () => new Set(claimed));
      await store.getImage('busybox:1'); // the index is read and kept, as on a busy node
      const claim = (found: { layerDirs: string[] }) => {
        for (const dir of found.layerDirs) claimed.add(dir);
      };
      const remove = () => store.removeImage('busybox:1');
      const resolve = () => store.resolveImage('busybox:1', claim);
      const found = removalFirst
        ? (await Promise.all([remove(), resolve()]))[1]
        : (await Promise.all([resolve(), remove()]))[0];
      const order = removalFirst ? 'removal asked first' : 'resolve asked first';
      if (found) assert.ok(existsSync(found.layerDirs[0]), `${order}: the layers stay`);
      else assert.equal(claimed.size, 0, `${order}: nothing claimed for an image not found`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the first import or pull removes what imports and pulls of ended processes left', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'flyces-images-'));
  try {
    const tmp = path.join(root, 'tmp');
    const ended = spawnSync('true').pid;
    const hourAgo = new Date(Date.now() - 3_700_000);
    const leftovers: [string, boolean][] = [
      [`pull-${ended}-AbCdEf`, false],
      [`import-${ended}-AbCdEf`, false],
      [`pull-${process.pid}-AbCdEf`, true],
      ['pull-Recent', true],
      ['pull-HourOld', false],
    ];
    for (const [name] of leftovers) {
      mkdirSync(path.join(tmp, name), { recursive: true });
      writeFileSync(path.join(tmp, name, 'half-a-blob'), 'x');
    }
    utimesSync(path.join(tmp, 'pull-HourOld'), hourAgo, hourAgo);

    const store = new ImageStore({ root });
    await assert.rejects(store.importArchive(path.join(root, 'no-such.tar')));
    for (const [name, kept] of leftovers) {
      assert.equal(existsSync(path.join(tmp, name)), kept, name);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
