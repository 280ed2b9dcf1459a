import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { readdirSync, renameSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigMap, Pod, Secret } from '../api/types.js';
import { ConfigError } from './env.js';
import { expandSubPathExpr, pinSubPath, resolveSubPath } from './volumes.js';
import { VolumeManager, writeAtomic } from './volumes.js';
import type { Mounter } from './volumes.js';

const tmp = mkdtempSync(join(tmpdir(), 'flyces-volumes-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('resolveSubPath', () => {
  const root = join(tmp, 'vol');
  const outside = join(tmp, 'outside');
  mkdirSync(join(root, 'a', 'b'), { recursive: true });
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(root, 'a', 'file'), 'x');
  symlinkSync('a/b', join(root, 'inner'));
  symlinkSync('../outside', join(root, 'up'));
  symlinkSync(outside, join(root, 'abs'));
  symlinkSync('b/../../..', join(root, 'a', 'climb'));
  symlinkSync('loop', join(root, 'loop'));
  symlinkSync('../a', join(root, 'a', 'self'));

  const ok: [string, string][] = [
    ['a', 'a'],
    ['a/b', 'a/b'],
    ['./a/./b/', 'a/b'],
    ['inner', 'a/b'],
    ['a/self/b', 'a/b'],
    ['a/file', 'a/file'],
    ['new/dir', 'new/dir'],
  ];
  for (const [sub, want] of ok) {
    test(`resolves ${sub}`, async () => {
      assert.equal(await resolveSubPath(root, sub), join(root, want));
    });
  }
  test('creates missing directories', () =>
    assert.ok(statSync(join(root, 'new/dir')).isDirectory()));

  const refused = [
    '..',
    'a/../..',
    '/etc',
    'up',
    'up/x',
    'abs',
    'a/climb',
    'loop',
    'a/file/x',
    'a\0',
  ];
  for (const sub of refused) {
    test(`refuses ${sub}`, async () => {
      await assert.rejects(resolveSubPath(root, sub), ConfigError);
    });
  }
  test('nothing was created outside', () =>
    assert.deepEqual(existsSync(join(outside, 'x')), false));
});

describe('pinSubPath', () => {
  const root = join(tmp, 'pin');
  const outside = join(tmp, 'pin-outside');
  mkdirSync(join(root, 'dir'), { recursive: true });
  mkdirSync(outside);
  const got: string[] = [];
  /** Swaps the directory for a symlink out of the volume while "mounting", as a container may. */
  const swapping: Mounter = {
    mountTmpfs: async () => undefined,
    unmount: async () => undefined,
    isMountPoint: async () => false,
    async bindMount(source) {
      renameSync(join(root, 'dir'), join(root, 'moved'));
      symlinkSync(outside, join(root, 'dir'));
      got.push(readlinkSync(source));
    },
  };

  test('what is mounted is the file checked, whatever its path names by then', async () => {
    const target = join(tmp, 'pin-target');
    assert.equal(
      await pinSubPath(swapping, root, join(root, 'dir'), target, 'subPath dir'),
      target,
    );
    assert.deepEqual(got, [join(root, 'moved')]);
  });
  test('a path that leads out by the time it is opened is refused', async () => {
    await assert.rejects(
      pinSubPath(swapping, root, join(root, 'dir'), join(tmp, 'pin-t2'), 'subPath dir'),
      { message: 'subPath dir leads outside the volume' },
    );
    assert.equal(got.length, 1, 'nothing mounted');
  });
});

describe('writeAtomic', () => {
  const dir = join(tmp, 'atomic');
  mkdirSync(dir);
  const payload = (entries: [string, string, number?][]) =>
    new Map(entries.map(([p, d, m]) => [p, { data: Buffer.from(d), mode: m ?? 0o644 }]));

  test('writes files behind ..data and top-level links', async () => {
    assert.equal(
      await writeAtomic(
        dir,
        payload([
          ['k', 'v1'],
          ['sub/x', 'xx', 0o400],
        ]),
      ),
      true,
    );
    assert.equal(readFileSync(join(dir, 'k'), 'utf8'), 'v1');
    assert.equal(readlinkSync(join(dir, 'k')), '..data/k');
    assert.equal(readlinkSync(join(dir, 'sub')), '..data/sub');
    assert.equal(statSync(join(dir, 'sub/x')).mode & 0o777, 0o400);
  });
  test('unchanged content is not rewritten', async () => {
    const before = readlinkSync(join(dir, '..data'));
    assert.equal(
      await writeAtomic(
        dir,
        payload([
          ['k', 'v1'],
          ['sub/x', 'xx', 0o400],
        ]),
      ),
      false,
    );
    assert.equal(readlinkSync(join(dir, '..data')), before);
  });
  test('a change swaps ..data, drops removed keys and the old generation', async () => {
    const before = readlinkSync(join(dir, '..data'));
    // What an agent that stopped between writing and swapping leaves.
    mkdirSync(join(dir, '..2020_01_01_00_00_00.000.orphan'));
    symlinkSync('..2020_01_01_00_00_00.000.orphan', join(dir, '..data_tmp'));
    await writeAtomic(
      dir,
      payload([
        ['k', 'v2'],
        ['new', 'n'],
      ]),
    );
    assert.equal(readFileSync(join(dir, 'k'), 'utf8'), 'v2');
    assert.equal(existsSync(join(dir, 'sub')), false);
    assert.equal(existsSync(join(dir, before)), false);
    assert.equal(readFileSync(join(dir, 'new'), 'utf8'), 'n');
    const generations = readdirSync(dir).filter((n) => n.startsWith('..') && n !== '..data');
    assert.deepEqual(generations, [readlinkSync(join(dir, '..data'))], 'only the current one');
  });
  test('refuses paths that climb', async () => {
    await assert.rejects(writeAtomic(dir, payload([['../x', 'v']])), ConfigError);
    await assert.rejects(writeAtomic(dir, payload([['..data', 'v']])), ConfigError);
  });

  test('paths are cleaned: ./x, a//b and c/ are x, a/b and c, and stay unchanged', async () => {
    const d = join(tmp, 'clean');
    mkdirSync(d);
    const files = () =>
      payload([
        ['./x', 'x'],
        ['a//b', 'b'],
        ['c/', 'c'],
        ['d/..e', 'e'],
      ]);
    await writeAtomic(d, files());
    assert.equal(readFileSync(join(d, 'x'), 'utf8'), 'x');
    assert.equal(readFileSync(join(d, 'a/b'), 'utf8'), 'b');
    assert.equal(readFileSync(join(d, 'c'), 'utf8'), 'c');
    assert.equal(readFileSync(join(d, 'd/..e'), 'utf8'), 'e');
    assert.deepEqual(
      readdirSync(d)
        .filter((n) => !n.startsWith('..'))
        .sort(),
      ['a', 'c', 'd', 'x'],
    );
    assert.equal(await writeAtomic(d, files()), false, 'the same files are not written again');
  });

  const refused: [string, [string, string][], RegExp][] = [
    ['empty', [['', 'v']], /must name a file/],
    ['only dots', [['./', 'v']], /must name a file/],
    ['absolute', [['/etc/x', 'v']], /must be a relative path/],
    ['a NUL byte', [['a\0b', 'v']], /must not contain a NUL byte/],
    ['reserved', [['..data_tmp/x', 'v']], /must not start with '\.\.'/],
    ['a long name', [['n'.repeat(256), 'v']], /at most 255 bytes/],
    ['a long path', [[Array(20).fill('d'.repeat(250)).join('/'), 'v']], /at most 4096 bytes/],
    [
      'a file that is also a directory',
      [
        ['k', 'v'],
        ['k/sub', 'w'],
      ],
      /file path k is also the directory of k\/sub/,
    ],
  ];
  for (const [name, entries, want] of refused) {
    test(`refuses ${name}, leaving the old files whole`, async () => {
      const before = readdirSync(dir).sort();
      await assert.rejects(
        writeAtomic(dir, payload(entries)),
        (err: Error) => err instanceof ConfigError && want.test(err.message),
      );
      assert.deepEqual(readdirSync(dir).sort(), before);
      assert.equal(readFileSync(join(dir, 'k'), 'utf8'), 'v2');
    });
  }

  test('a write that fails on the way leaves no half-written generation', async () => {
    const before = readdirSync(dir).sort();
    // k is written, then the file system refuses a path that fits Kubernetes' 4096 bytes
    // but not once the volume's own directory is put in front of it.
    const deep = Array(16).fill('d'.repeat(255)).join('/');
    await assert.rejects(
      writeAtomic(
        dir,
        payload([
          ['k', 'v3'],
          [deep, 'x'],
        ]),
      ),
      { code: 'ENAMETOOLONG' },
    );
    assert.deepEqual(readdirSync(dir).sort(), before);
    assert.equal(readFileSync(join(dir, 'k'), 'utf8'), 'v2');
  });
});

describe('expandSubPathExpr', () => {
  const env = new Map([
    ['POD', 'web-1'],
    ['EMPTY', ''],
    ['UP', '..'],
    ['ROOT', '/etc'],
    ['SECRET', 's3cr3t/../..'],
  ]);
  test('expands $(VAR) and $$', () => {
    assert.equal(expandSubPathExpr('logs/$(POD)/$$x', env), 'logs/web-1/$x');
  });
  const refused: [string, RegExp][] = [
    ['$(NOPE)/$(EMPTY)', /^subPathExpr \$\(NOPE\)\/\$\(EMPTY\): missing value for NOPE, EMPTY$/],
    ['$(UP)/x', /must expand to a relative path without '\.\.'/],
    ['$(ROOT)', /must expand to a relative path/],
    ['a/$(SECRET)', /^subPathExpr a\/\$\(SECRET\) must expand/],
  ];
  for (const [expr, want] of refused) {
    test(`refuses ${expr}`, () => {
      assert.throws(
        () => expandSubPathExpr(expr, env),
        (err: Error) =>
          err instanceof ConfigError && want.test(err.message) && !/s3cr3t/.test(err.message),
      );
    });
  }
});

describe('VolumeManager', () => {
  const mounts: string[][] = [];
  const mounted = new Set<string>();
  /** Bind mount targets and the file each got, read through the source as mount would. */
  const binds = new Map<string, string>();
  const mounter: Mounter = {
    async mountTmpfs(dir, options) {
      mounts.push([dir, ...options]);
      mounted.add(dir);
    },
    async bindMount(source, target) {
      binds.set(target, readlinkSync(source));
      mounted.add(target);
    },
    async unmount(dir) {
      mounted.delete(dir);
    },
    async isMountPoint(dir) {
      return mounted.has(dir);
    },
  };
  const cm: ConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'cfg', namespace: 'ns' },
    data: { 'app.conf': 'one', other: 'o' },
    binaryData: { 'bin.dat': Buffer.from([1, 2, 3]).toString('base64') },
  };
  const secret: Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'sec', namespace: 'ns' },
    data: { password: Buffer.from('pw').toString('base64') },
  };
  const source = {
    configMap: (ns: string, name: string) => (name === 'cfg' ? cm : undefined),
    secret: (ns: string, name: string) => (name === 'sec' ? secret : undefined),
  };
  const dataDir = join(tmp, 'data');
  const manager = new VolumeManager({ dataDir, source, mounter });
  const allowed = new VolumeManager({ dataDir, source, mounter, allowHostPath: true });

  function pod(volumes: unknown[], volumeMounts: unknown[]): Pod {
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'ns', uid: 'uid-1' },
      spec: { volumes, containers: [{ name: 'c', image: 'i', volumeMounts }] },
    };
  }
  const volDir = (name: string) => join(dataDir, 'pods', 'uid-1', 'volumes', name);
  const subDir = (name: string, i: number) =>
    join(dataDir, 'pods', 'uid-1', 'volume-subpaths', name, 'c', String(i));

  test('sets up every kind and returns the mounts', async () => {
    const p = pod(
      [
        { name: 'cache', emptyDir: {} },
        { name: 'mem', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
        { name: 'cfg', configMap: { name: 'cfg', items: [{ key: 'app.conf', path: 'conf/app' }] } },
        { name: 'all', configMap: { name: 'cfg', defaultMode: 0o600 } },
        { name: 'sec', secret: { secretName: 'sec' } },
      ],
      [
        { name: 'cache', mountPath: '/cache' },
        { name: 'mem', mountPath: '/mem', readOnly: true },
        { name: 'cfg', mountPath: '/etc/app' },
        { name: 'all', mountPath: '/etc/one', subPath: 'app.conf' },
        { name: 'sec', mountPath: '/secret' },
      ],
    );
    const got = await manager.mountsFor(p, p.spec.containers[0], new Map());
    assert.deepEqual(got, [
      { containerPath: '/cache', hostPath: volDir('cache'), readOnly: false },
      { containerPath: '/mem', hostPath: volDir('mem'), readOnly: true },
      { containerPath: '/etc/app', hostPath: volDir('cfg'), readOnly: true },
      { containerPath: '/etc/one', hostPath: subDir('all', 3), readOnly: true },
      { containerPath: '/secret', hostPath: volDir('sec'), readOnly: true },
    ]);
    assert.deepEqual(mounts, [
      [volDir('mem'), 'mode=0777', 'size=1048576'],
      [volDir('sec'), 'mode=0755'],
    ]);
    const generation = readlinkSync(join(volDir('all'), '..data'));
    assert.equal(binds.get(subDir('all', 3)), join(volDir('all'), generation, 'app.conf'));
    assert.equal(readFileSync(join(volDir('cfg'), 'conf/app'), 'utf8'), 'one');
    assert.deepEqual([...readFileSync(join(volDir('all'), 'bin.dat'))], [1, 2, 3]);
    assert.equal(statSync(join(volDir('all'), 'other')).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(volDir('sec'), 'password'), 'utf8'), 'pw');
    assert.equal(statSync(volDir('cache')).mode & 0o777, 0o777);
    assert.equal(statSync(volDir('cfg')).mode & 0o777, 0o755, 'any user reads a configMap');

    cm.data!['app.conf'] = 'two';
    await manager.refresh(p);
    assert.equal(readFileSync(join(volDir('cfg'), 'conf/app'), 'utf8'), 'two');
    assert.equal(mounts.length, 2, 'set-up mounts are not repeated');
    // A restart after the change mounts the new generation's file (Kubernetes #68211 failed).
    await manager.mountsFor(p, p.spec.containers[0], new Map());
    const now = readlinkSync(join(volDir('all'), '..data'));
    assert.notEqual(now, generation);
    assert.equal(binds.get(subDir('all', 3)), join(volDir('all'), now, 'app.conf'));

    await manager.removePodVolumes('uid-1');
    assert.equal(existsSync(join(dataDir, 'pods', 'uid-1')), false);
    assert.equal(mounted.size, 0);
  });

  test("a pod's fsGroup owns its emptyDir, configMap and secret volumes, group-readable", async () => {
    const p = pod(
      [
        { name: 'cache', emptyDir: {} },
        { name: 'cfg', configMap: { name: 'cfg' } },
        { name: 'sec', secret: { secretName: 'sec', defaultMode: 0o400 } },
      ],
      [
        { name: 'cache', mountPath: '/cache' },
        { name: 'cfg', mountPath: '/etc/app' },
        { name: 'sec', mountPath: '/secret' },
      ],
    );
    p.spec.securityContext = { runAsUser: 1000, fsGroup: 2000 };
    await manager.mountsFor(p, p.spec.containers[0], new Map());
    const cache = statSync(volDir('cache'));
    assert.equal(cache.gid, 2000);
    assert.equal(cache.mode & 0o7777, 0o2777, 'setgid, so new files get the group');
    const password = statSync(join(volDir('sec'), 'password'));
    assert.equal(password.gid, 2000);
    assert.equal(password.mode & 0o777, 0o440, 'the group reads a secret of mode 0400');
    const conf = statSync(join(volDir('cfg'), 'app.conf'));
    assert.equal(conf.gid, 2000);
    assert.equal(conf.mode & 0o777, 0o644);
    await manager.removePodVolumes('uid-1');
  });

  test('downwardAPI and projected volumes: files, read-only, projections on tmpfs, fsGroup', async () => {
    const p = pod(
      [
        {
          name: 'info',
          downwardAPI: {
            items: [
              { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
              { path: 'name', fieldRef: { fieldPath: 'metadata.name' }, mode: 0o600 },
            ],
          },
        },
        {
          name: 'all',
          projected: {
            defaultMode: 0o400,
            sources: [
              { configMap: { name: 'cfg', items: [{ key: 'other', path: 'conf/other' }] } },
              { secret: { name: 'sec' } },
              {
                downwardAPI: {
                  items: [{ path: 'ns', fieldRef: { fieldPath: 'metadata.namespace' } }],
                },
              },
            ],
          },
        },
      ],
      [
        { name: 'info', mountPath: '/info' },
        { name: 'all', mountPath: '/all' },
      ],
    );
    p.metadata.labels = { b: '2', a: 'x y' };
    p.spec.securityContext = { fsGroup: 2000 };
    mounts.length = 0;
    const got = await manager.mountsFor(p, p.spec.containers[0], new Map());
    assert.deepEqual(got, [
      { containerPath: '/info', hostPath: volDir('info'), readOnly: true },
      { containerPath: '/all', hostPath: volDir('all'), readOnly: true },
    ]);
    assert.deepEqual(mounts, [[volDir('all'), 'mode=0755']], 'only the projection on tmpfs');
    assert.equal(readFileSync(join(volDir('info'), 'labels'), 'utf8'), 'a="x y"\nb="2"');
    assert.equal(readFileSync(join(volDir('info'), 'name'), 'utf8'), 'p');
    assert.equal(readFileSync(join(volDir('all'), 'conf/other'), 'utf8'), 'o');
    assert.equal(readFileSync(join(volDir('all'), 'password'), 'utf8'), 'pw');
    assert.equal(readFileSync(join(volDir('all'), 'ns'), 'utf8'), 'ns');
    assert.equal(readlinkSync(join(volDir('all'), 'ns')), '..data/ns');
    const modes: [string, number][] = [
      [join(volDir('info'), 'labels'), 0o644],
      [join(volDir('info'), 'name'), 0o640],
      [join(volDir('all'), 'password'), 0o440],
    ];
    for (const [file, mode] of modes) {
      const st = statSync(file);
      assert.equal(st.gid, 2000, file);
      assert.equal(st.mode & 0o777, mode, file);
    }
    assert.equal(statSync(volDir('info')).mode & 0o777, 0o755);
    await manager.removePodVolumes('uid-1');
    assert.equal(mounted.size, 0);
  });

  test('a label change reaches the files whole at the next sync; no change writes nothing', async () => {
    const p = pod(
      [
        {
          name: 'info',
          downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] },
        },
        {
          name: 'all',
          projected: {
            sources: [
              { configMap: { name: 'cfg', items: [{ key: 'other', path: 'other' }] } },
              {
                downwardAPI: {
                  items: [{ path: 'tier', fieldRef: { fieldPath: "metadata.labels['tier']" } }],
                },
              },
            ],
          },
        },
        { name: 'cfg', configMap: { name: 'cfg' } },
      ],
      [{ name: 'info', mountPath: '/info' }],
    );
    p.metadata.labels = { tier: 'one' };
    await manager.refreshPodMetadata(p);
    assert.equal(
      existsSync(volDir('info')),
      false,
      'nothing is set up before a container needs it',
    );
    await manager.mountsFor(p, p.spec.containers[0], new Map());
    const generations = () =>
      ['info', 'all', 'cfg'].map((v) => readlinkSync(join(volDir(v), '..data')));
    const before = generations();

    await manager.refreshPodMetadata(p);
    assert.deepEqual(generations(), before, 'unchanged');
    // Files another writer changed stay as they are too: unchanged labels are not looked at.
    writeFileSync(join(volDir('info'), before[0], 'labels'), 'tampered');
    await manager.refreshPodMetadata(p);
    assert.equal(readFileSync(join(volDir('info'), 'labels'), 'utf8'), 'tampered');

    const changed = { ...p, metadata: { ...p.metadata, labels: { tier: 'two', x: '1' } } };
    await manager.refreshPodMetadata(changed);
    const after = generations();
    assert.notEqual(after[0], before[0]);
    assert.notEqual(after[1], before[1]);
    assert.equal(after[2], before[2], 'a configMap volume is not rewritten');
    assert.equal(readFileSync(join(volDir('info'), 'labels'), 'utf8'), 'tier="two"\nx="1"');
    assert.equal(readFileSync(join(volDir('all'), 'tier'), 'utf8'), 'two');
    assert.equal(readFileSync(join(volDir('all'), 'other'), 'utf8'), 'o');
    assert.equal(existsSync(join(volDir('info'), before[0])), false, 'old generation gone');
    await manager.removePodVolumes('uid-1');
  });

  const hostFile = join(tmp, 'host-file');
  writeFileSync(hostFile, 'x');
  const failures: [string, unknown[], unknown[], RegExp, VolumeManager?][] = [
    [
      'missing configmap',
      [{ name: 'v', configMap: { name: 'nope' } }],
      [],
      /volume "v": configmap "nope" not found/,
    ],
    [
      'missing secret',
      [{ name: 'v', secret: { secretName: 'nope' } }],
      [],
      /volume "v": secret "nope" not found/,
    ],
    [
      'missing item key',
      [{ name: 'v', configMap: { name: 'cfg', items: [{ key: 'zz', path: 'z' }] } }],
      [],
      /non-existent key: zz/,
    ],
    [
      'items that make a file a directory',
      [
        {
          name: 'v',
          configMap: {
            name: 'cfg',
            items: [
              { key: 'app.conf', path: 'k' },
              { key: 'other', path: 'k/x' },
            ],
          },
        },
      ],
      [],
      /^volume "v": file path k is also the directory of k\/x$/,
    ],
    [
      'subPathExpr with an unset variable',
      [{ name: 'v', emptyDir: {} }],
      [{ name: 'v', mountPath: '/v', subPathExpr: 'x/$(NOPE)' }],
      /^subPathExpr x\/\$\(NOPE\): missing value for NOPE$/,
    ],
    [
      'hostPath not allowed',
      [{ name: 'h', hostPath: { path: '/etc' } }],
      [],
      /^volume "h": hostPath volumes are not allowed on this node$/,
    ],
    [
      'unsupported type',
      [{ name: 'pvc', persistentVolumeClaim: { claimName: 'x' } }],
      [],
      /persistentVolumeClaim volumes are not supported/,
    ],
    [
      'serviceAccountToken projection',
      [{ name: 'p', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }],
      [],
      /^volume "p": sources\[0\]: serviceAccountToken is not supported: this cluster has no ServiceAccounts/,
    ],
    [
      'hostPath type check',
      [{ name: 'h', hostPath: { path: '/nonexistent-flyces', type: 'Directory' } }],
      [],
      /hostPath type check failed/,
      allowed,
    ],
    [
      'hostPath of type Socket on a regular file',
      [{ name: 'h', hostPath: { path: hostFile, type: 'Socket' } }],
      [],
      /^volume "h": hostPath type check failed: .*\/host-file is not a socket$/,
      allowed,
    ],
    [
      'hostPath of type CharDevice on a regular file',
      [{ name: 'h', hostPath: { path: hostFile, type: 'CharDevice' } }],
      [],
      /host-file is not a character device$/,
      allowed,
    ],
  ];
  for (const [name, volumes, vm, want, which] of failures) {
    test(`fails: ${name}`, async () => {
      const p = pod(volumes, vm);
      await assert.rejects(
        (which ?? manager).mountsFor(p, p.spec.containers[0], new Map()),
        (err: Error) => err instanceof ConfigError && want.test(err.message),
      );
    });
  }

  test('subPathExpr mounts the expanded path; a subPath and an expr that climbs do not', async () => {
    const p = pod(
      [{ name: 'v', emptyDir: {} }],
      [
        { name: 'v', mountPath: '/a', subPathExpr: 'logs/$(POD)' },
        { name: 'v', mountPath: '/b', subPath: 'plain/$(POD)' },
      ],
    );
    const env = new Map([['POD', 'web-1']]);
    const got = await manager.mountsFor(p, p.spec.containers[0], env);
    assert.deepEqual(
      got.map((m) => m.hostPath),
      [subDir('v', 0), subDir('v', 1)],
    );
    assert.equal(binds.get(subDir('v', 0)), join(volDir('v'), 'logs/web-1'));
    assert.equal(binds.get(subDir('v', 1)), join(volDir('v'), 'plain/$(POD)'));
    symlinkSync('/etc', join(volDir('v'), 'planted'));
    const climbing = pod(
      [{ name: 'v', emptyDir: {} }],
      [{ name: 'v', mountPath: '/c', subPathExpr: '$(POD)' }],
    );
    await assert.rejects(
      manager.mountsFor(climbing, climbing.spec.containers[0], new Map([['POD', 'planted']])),
      { message: /^subPathExpr \$\(POD\) leads outside the volume$/ },
    );
    await manager.removePodVolumes('uid-1');
  });

  test('items naming one key many times cannot make the agent write without bound', async () => {
    const big: ConfigMap = {
      ...cm,
      metadata: { name: 'big', namespace: 'ns' },
      data: { k: 'x'.repeat(1 << 20) },
    };
    const bigSource = { ...source, configMap: () => big };
    const m = new VolumeManager({ dataDir, source: bigSource, mounter });
    const items = Array.from({ length: 40 }, (_, i) => ({ key: 'k', path: `copy${i}` }));
    const p = pod([{ name: 'v', configMap: { name: 'big', items } }], []);
    const tooMuch = (v: string) =>
      `volume "${v}": the pod's configMap, secret, downwardAPI and projected volumes would ` +
      `hold more than ${32 << 20} bytes`;
    await assert.rejects(m.mountsFor(p, p.spec.containers[0], new Map()), {
      message: tooMuch('v'),
    });
    assert.deepEqual(readdirSync(volDir('v')), [], 'nothing written');
    const fits = pod([{ name: 'v', configMap: { name: 'big', items: items.slice(0, 30) } }], []);
    await m.mountsFor(fits, fits.spec.containers[0], new Map());
    await m.removePodVolumes('uid-1');

    // Projections count too.
    const projected = pod(
      [
        { name: 'v', configMap: { name: 'big', items: items.slice(0, 20) } },
        { name: 'w', projected: { sources: [{ configMap: { name: 'big', items } }] } },
      ],
      [],
    );
    await assert.rejects(m.mountsFor(projected, projected.spec.containers[0], new Map()), {
      message: tooMuch('w'),
    });
    await m.removePodVolumes('uid-1');
  });

  test('optional sources make empty volumes', async () => {
    const p = pod(
      [{ name: 'v', configMap: { name: 'nope', optional: true } }],
      [{ name: 'v', mountPath: '/v' }],
    );
    const [m] = await manager.mountsFor(p, p.spec.containers[0], new Map());
    assert.equal(m.hostPath, volDir('v'));
    await manager.removePodVolumes('uid-1');
  });

  test("a memory emptyDir is no larger than the pod's memory limit", async () => {
    const bounded = new VolumeManager({ dataDir, source, mounter, allocatable: { memory: '8Gi' } });
    const p = pod(
      [{ name: 'm', emptyDir: { medium: 'Memory', sizeLimit: '1Gi' } }],
      [{ name: 'm', mountPath: '/m' }],
    );
    p.spec.containers[0].resources = { limits: { memory: '64Mi' } };
    const before = mounts.length;
    await bounded.mountsFor(p, p.spec.containers[0], new Map());
    assert.deepEqual(mounts.slice(before), [[volDir('m'), 'mode=0777', `size=${64 << 20}`]]);
    await bounded.removePodVolumes('uid-1');
  });

  test('hostPath when allowed', async () => {
    const host = join(tmp, 'host-dir');
    const p = pod(
      [{ name: 'h', hostPath: { path: host, type: 'DirectoryOrCreate' } }],
      [{ name: 'h', mountPath: '/h' }],
    );
    const [m] = await allowed.mountsFor(p, p.spec.containers[0], new Map());
    assert.deepEqual(m, { containerPath: '/h', hostPath: host, readOnly: false });
    assert.ok(statSync(host).isDirectory());
  });
});
