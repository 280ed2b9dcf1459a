import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ImageStore } from './images.js';

const ID = 'sha256:' + '1'.repeat(64);

/** An image store's index with one image and no layers, as the store writes it. */
function writeIndex(root: string, names: string[]): void {
  const image = {
    id: ID,
    digest: 'sha256:' + '2'.repeat(64),
    names,
    config: { Cmd: ['sh'] },
    layers: [],
    blobs: [],
    createdAt: '2026-01-01T00:00:00Z',
  };
  writeFileSync(path.join(root, 'images.json'), JSON.stringify({ images: [image], layers: {} }));
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
