import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { imageIdentity, readImageFile, resolveImageUser } from './image-user.js';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'node:x:1000:1000::/home/node:/bin/sh',
  'nginx:x:101:101:nginx:/nonexistent:/bin/false',
  '# a comment',
  'broken-line',
].join('\n');
const GROUP = [
  'root:x:0:',
  'node:x:1000:',
  'nginx:x:101:',
  'docker:x:998:node,nginx',
  'video:x:44:node',
].join('\n');

test("an image's User resolved through its /etc/passwd and /etc/group", () => {
  const cases: [string | undefined, object][] = [
    [undefined, { uid: 0, gid: 0 }],
    ['node', { uid: 1000, gid: 1000, additionalGids: [998, 44] }],
    ['nginx:docker', { uid: 101, gid: 998 }],
    ['101', { uid: 101, gid: 101, additionalGids: [998] }],
    ['4242', { uid: 4242, gid: 0 }],
    ['4242:7', { uid: 4242, gid: 7 }],
    ['node:44', { uid: 1000, gid: 44, additionalGids: [998] }],
  ];
  for (const [user, want] of cases) {
    assert.deepEqual(resolveImageUser(user, PASSWD, GROUP), want, user);
  }
  assert.throws(
    () => resolveImageUser('postgres', PASSWD, GROUP),
    /"postgres" is not in the image's \/etc\/passwd/,
  );
  assert.throws(
    () => resolveImageUser('node:wheel', PASSWD, GROUP),
    /"wheel" is not in the image's \/etc\/group/,
  );
  assert.throws(() => resolveImageUser('node', undefined, undefined), /not in the image's/);
  assert.deepEqual(resolveImageUser('1000', undefined, undefined), { uid: 1000, gid: 0 });
});

test('the layers decide top down: a file, a link or a file for a directory hides lower ones', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'flyces-image-user-'));
  try {
    const layer = (name: string) => {
      const dir = path.join(root, name);
      mkdirSync(dir);
      return dir;
    };
    const bottom = layer('bottom');
    mkdirSync(path.join(bottom, 'etc'));
    writeFileSync(path.join(bottom, 'etc', 'passwd'), 'old:x:1:1::/:/bin/sh\n');
    const none = layer('none');
    const upper = layer('upper');
    mkdirSync(path.join(upper, 'etc'));
    writeFileSync(path.join(upper, 'etc', 'passwd'), PASSWD);
    const linked = layer('linked');
    mkdirSync(path.join(linked, 'etc'));
    symlinkSync('/etc/passwd', path.join(linked, 'etc', 'passwd'));
    const flat = layer('flat');
    writeFileSync(path.join(flat, 'etc'), 'not a directory');

    assert.equal(await readImageFile([bottom, none], 'etc/passwd'), 'old:x:1:1::/:/bin/sh\n');
    assert.equal(await readImageFile([bottom, upper, none], 'etc/passwd'), PASSWD);
    assert.equal(
      await readImageFile([bottom, linked], 'etc/passwd'),
      undefined,
      'no link followed',
    );
    assert.equal(await readImageFile([bottom, flat], 'etc/passwd'), undefined);
    assert.equal(await readImageFile([none], 'etc/passwd'), undefined);
    assert.deepEqual(await imageIdentity('node', [bottom, upper]), { uid: 1000, gid: 1000 });
    // A runAsUser stands in for the image's User, which is then not looked up.
    assert.deepEqual(await imageIdentity('nobody-here', [bottom, upper], 1000), {
      uid: 1000,
      gid: 1000,
    });
    assert.deepEqual(await imageIdentity('nobody-here', [bottom, upper], 5), { uid: 5, gid: 0 });
    // Unpacked layers never change: their account files are read once per image.
    writeFileSync(path.join(upper, 'etc', 'passwd'), 'node:x:7:7::/:/bin/sh\n');
    assert.deepEqual(await imageIdentity('node', [bottom, upper]), { uid: 1000, gid: 1000 });
    assert.deepEqual(await imageIdentity('node', [none, upper]), { uid: 7, gid: 7 });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
