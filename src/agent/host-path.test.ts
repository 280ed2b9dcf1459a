import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from './env.js';
import { hostPathProblem, prepareHostPath } from './host-path.js';

const tmp = mkdtempSync(join(tmpdir(), 'flyces-host-path-'));
const dir = join(tmp, 'dir');
const file = join(tmp, 'file');
const socket = join(tmp, 'sock');
let server: Server;

before(async () => {
  mkdirSync(dir);
  writeFileSync(file, 'x');
  server = createServer();
  await new Promise<void>((res) => server.listen(socket, res));
});
after(() => {
  server.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('each type accepts its own kind of file and names what it found instead', () => {
  const at = (p: string) => statSync(p);
  // No block device is sure to exist here; this stands for one.
  const block = { ...statSync(file), isFile: () => false, isBlockDevice: () => true } as Stats;
  const cases: [string, Stats | undefined, string | undefined][] = [
    ['', undefined, undefined],
    ['', at(file), undefined],
    ['Directory', at(dir), undefined],
    ['Directory', at(file), 'is not a directory'],
    ['Directory', undefined, 'does not exist'],
    ['DirectoryOrCreate', at(file), 'is not a directory'],
    ['File', at(file), undefined],
    ['File', at(dir), 'is not a file'],
    ['FileOrCreate', at(dir), 'is not a file'],
    ['Socket', at(socket), undefined],
    ['Socket', at(file), 'is not a socket'],
    ['CharDevice', at('/dev/null'), undefined],
    ['CharDevice', at(file), 'is not a character device'],
    ['BlockDevice', at('/dev/null'), 'is not a block device'],
    ['BlockDevice', block, undefined],
    ['Bogus', at(dir), 'has an unknown type "Bogus"'],
  ];
  for (const [type, st, want] of cases) {
    assert.equal(hostPathProblem(type, st), want, `${type} on ${st ? 'a file' : 'nothing'}`);
  }
});

test('the *OrCreate types and an untyped path make what is missing', async () => {
  await prepareHostPath('v', join(tmp, 'made', 'deep'), 'DirectoryOrCreate');
  assert.ok(statSync(join(tmp, 'made', 'deep')).isDirectory());
  await prepareHostPath('v', join(tmp, 'plain', 'deep'), '');
  assert.ok(statSync(join(tmp, 'plain', 'deep')).isDirectory());
  await prepareHostPath('v', join(tmp, 'made', 'f'), 'FileOrCreate');
  const made = statSync(join(tmp, 'made', 'f'));
  assert.ok(made.isFile());
  assert.equal(made.size, 0);
  // An existing file is left as it is.
  await prepareHostPath('v', file, 'FileOrCreate');
  assert.equal(statSync(file).size, 1);
});

test('a path of the wrong kind, or one that cannot be made, fails naming the volume', async () => {
  const cases: [string, string, RegExp][] = [
    [socket, 'File', /^volume "h": hostPath type check failed: .*\/sock is not a file$/],
    [file, 'Socket', /^volume "h": hostPath type check failed: .*\/file is not a socket$/],
    [file, 'CharDevice', /is not a character device$/],
    ['/dev/null', 'BlockDevice', /\/dev\/null is not a block device$/],
    [file, 'DirectoryOrCreate', /\/file is not a directory$/],
    [dir, 'FileOrCreate', /\/dir is not a file$/],
    [join(tmp, 'none'), 'Directory', /\/none does not exist$/],
    // As in kubelet, FileOrCreate does not make the parent directory.
    [
      join(tmp, 'no-parent', 'f'),
      'FileOrCreate',
      /^volume "h": could not create hostPath .*ENOENT/,
    ],
  ];
  for (const [path, type, want] of cases) {
    await assert.rejects(
      prepareHostPath('h', path, type),
      (err: Error) => err instanceof ConfigError && want.test(err.message),
      `${type} at ${path}`,
    );
  }
});
