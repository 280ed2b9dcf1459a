import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runc } from './runc.js';

test('listing is tried again when a container vanishes while runc reads the root', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-runc-'));
  try {
    // A stand-in for runc that fails as runc does on its first call, then answers.
    const fake = join(dir, 'runc');
    const marker = join(dir, 'called');
    writeFileSync(
      fake,
      `#!/bin/sh\nif [ ! -e ${marker} ]; then touch ${marker}; ` +
        `echo 'stat /x/runc/abc: no such file or directory' >&2; exit 1; fi\n` +
        `echo '[{"id":"c1","status":"running"}]'\n`,
    );
    chmodSync(fake, 0o755);
    const list = await new Runc(fake, join(dir, 'root')).list();
    assert.equal(list.get('c1'), 'running');

    const broken = join(dir, 'broken');
    writeFileSync(broken, "#!/bin/sh\necho 'permission denied' >&2; exit 1\n");
    chmodSync(broken, 0o755);
    await assert.rejects(new Runc(broken, join(dir, 'root')).list(), /permission denied/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('start opens the exec fifo as runc start does, and falls back to runc start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-runc-'));
  const root = join(dir, 'root');
  const fifoOf = (id: string) => {
    mkdirSync(join(root, id), { recursive: true });
    const fifo = join(root, id, 'exec.fifo');
    spawn('mkfifo', [fifo]).once('exit', () => undefined);
    return fifo;
  };
  const made = async (file: string) => {
    for (let i = 0; i < 100 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 10));
  };
  try {
    await t.test('a waiting init gets its byte, and the fifo is removed', async () => {
      const fifo = fifoOf('c1');
      await made(fifo);
      // Stands in for runc init: blocks opening the fifo for writing, then writes one byte.
      const init = spawn('sh', ['-c', `printf 0 > ${fifo}`]);
      const initExit = new Promise((r) => init.once('exit', r));
      await new Runc('/bin/false', root).start('c1');
      assert.equal(existsSync(fifo), false);
      assert.equal(await initExit, 0);
    });

    await t.test('an init that is gone fails the start', async () => {
      const fifo = fifoOf('c2');
      await made(fifo);
      await assert.rejects(
        new Runc('/bin/false', root).start('c2', () => false),
        /already dead/,
      );
    });

    await t.test('without a fifo, runc start runs', async () => {
      const fake = join(dir, 'runc');
      const called = join(dir, 'start-called');
      writeFileSync(
        fake,
        `#!/bin/sh
echo "$@" > ${called}
`,
      );
      chmodSync(fake, 0o755);
      await new Runc(fake, root).start('c3');
      assert.equal(existsSync(called), true);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a container an earlier miniC made under its old root is driven there', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-runc-'));
  try {
    const root = join(dir, 'state', 'runc');
    const earlier = join(dir, 'runtime', 'runc');
    mkdirSync(join(root, 'new1'), { recursive: true });
    mkdirSync(join(earlier, 'old1'), { recursive: true });
    // A stand-in for runc that lists one container per root, named after the root.
    const fake = join(dir, 'runc');
    writeFileSync(
      fake,
      `#!/bin/sh\ncase "$1" in --root=${earlier}) id=old1;; *) id=new1;; esac\n` +
        `echo "[{\\"id\\":\\"$id\\",\\"status\\":\\"running\\"}]"\n`,
    );
    chmodSync(fake, 0o755);
    const runc = new Runc(fake, root, earlier);
    assert.equal(runc.rootFor('old1'), earlier);
    assert.equal(runc.rootFor('new1'), root);
    assert.equal(runc.rootFor('unknown'), root, 'a new container goes to the current root');
    assert.deepEqual([...(await runc.list()).entries()].sort(), [
      ['new1', 'running'],
      ['old1', 'running'],
    ]);
    // An earlier root with no container left (or none at all) is not listed.
    rmSync(join(earlier, 'old1'), { recursive: true });
    assert.deepEqual([...(await runc.list()).keys()], ['new1']);
    rmSync(earlier, { recursive: true });
    assert.deepEqual([...(await runc.list()).keys()], ['new1']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
