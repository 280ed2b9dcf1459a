import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupDirsOf, Runc } from './runc.js';

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

test("a container's cgroup directories are found from its process's membership", () => {
  const id = 'c0ffee';
  // A hybrid host (v1 hierarchies, one co-mounted, plus the unified one), the memory
  // hierarchy mounted from below its root, and a mount point with a space in it.
  const mountinfo = [
    '30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct',
    '31 25 0:27 /outer /sys/fs/cgroup/memory rw,relatime shared:10 - cgroup cgroup rw,memory',
    '32 25 0:28 / /sys/fs/cgroup/sys\\040temd rw - cgroup cgroup rw,xattr,name=systemd',
    '33 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate',
    '34 25 0:30 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids',
    '40 21 8:1 / / rw,relatime - ext4 /dev/vda rw',
  ].join('\n');
  const procCgroup = [
    `9:name=systemd:/flyces/pod/${id}`,
    `4:memory:/outer/agent/flyces/pod/${id}`,
    `3:cpu,cpuacct:/flyces/pod/${id}`,
    '2:pids:/flyces/pod/other',
    `1:blkio:/flyces/pod/${id}`,
    `0::/flyces/pod/${id}`,
    '',
  ].join('\n');
  assert.deepEqual(cgroupDirsOf(procCgroup, mountinfo, id).sort(), [
    `/sys/fs/cgroup/cpu,cpuacct/flyces/pod/${id}`,
    `/sys/fs/cgroup/memory/agent/flyces/pod/${id}`,
    `/sys/fs/cgroup/sys temd/flyces/pod/${id}`,
    `/sys/fs/cgroup/unified/flyces/pod/${id}`,
  ]);
  // Outside a mount's root, or a process in no cgroup of that name: nothing.
  assert.deepEqual(cgroupDirsOf(`4:memory:/elsewhere/${id}`, mountinfo, id), []);
  assert.deepEqual(cgroupDirsOf(procCgroup, mountinfo, 'another'), []);
});

test('cgroup directories are never taken through a hidden mount or from outside a root', () => {
  const id = 'c0ffee';
  const tmpfs = '25 24 0:22 / /sys/fs/cgroup ro - tmpfs tmpfs ro';
  const pids = '31 25 0:27 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids';
  const unified = '33 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw';
  type Case = { name: string; id?: string; mounts: string[]; cgroup: string; want: string[] };
  const cases: Case[] = [
    {
      name: 'a tmpfs mounted over the cgroup mounts',
      mounts: [tmpfs, pids, '50 25 0:40 / /sys/fs/cgroup rw - tmpfs tmpfs rw'],
      cgroup: `2:pids:/flyces/pod/${id}`,
      want: [],
    },
    {
      name: 'a hierarchy mounted again, from below its root, over its first mount',
      mounts: [tmpfs, pids, '51 31 0:27 /sub /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids'],
      cgroup: `2:pids:/sub/flyces/pod/${id}`,
      want: [`/sys/fs/cgroup/pids/flyces/pod/${id}`],
    },
    {
      name: "a cgroup outside this process's cgroup namespace",
      mounts: [tmpfs, unified],
      cgroup: `0::/../elsewhere/flyces/pod/${id}`,
      want: [],
    },
    {
      name: 'a mount of a hierarchy from outside the namespace, and a cgroup below it',
      mounts: [tmpfs, '34 25 0:29 /.. /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw'],
      cgroup: `0::/../agent/flyces/pod/${id}`,
      want: [`/sys/fs/cgroup/unified/agent/flyces/pod/${id}`],
    },
    {
      name: 'a mount two levels outside the namespace, where the level between is unknown',
      mounts: [tmpfs, '34 25 0:29 /../.. /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw'],
      cgroup: `0::/../agent/flyces/pod/${id}`,
      want: [],
    },
    {
      name: "a mount of the container's cgroup itself: its mount point is not taken",
      mounts: [
        tmpfs,
        pids,
        `52 25 0:27 /flyces/pod/${id} /run/seen/${id} rw - cgroup cgroup rw,pids`,
      ],
      cgroup: `2:pids:/flyces/pod/${id}`,
      want: [`/sys/fs/cgroup/pids/flyces/pod/${id}`],
    },
    {
      name: 'an empty id, and a process in the root cgroups (the mount points themselves)',
      id: '',
      mounts: [tmpfs, pids, unified],
      cgroup: '2:pids:/\n0::/',
      want: [],
    },
    {
      name: 'an id that is the end of another',
      mounts: [tmpfs, pids],
      cgroup: `2:pids:/flyces/pod/de${id}`,
      want: [],
    },
  ];
  for (const c of cases) {
    const dirs = cgroupDirsOf(c.cgroup, c.mounts.join('\n'), c.id ?? id);
    assert.deepEqual(dirs.sort(), c.want, c.name);
  }
});
