import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupDirsOf, runcCgroupDirsOf } from './cgroup-dirs.js';

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

test("runc's cgroup directories for a cgroups path are known before runc makes them", () => {
  // A hybrid host as this machine's: the runner's memory cgroup is a nested one of its own.
  const mountinfo = [
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
    '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
    '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
    '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  ].join('\n');
  const runner = [
    '9:name=systemd:/',
    '8:pids:/',
    '7:net_cls:/', // a hierarchy this process has not mounted: no directory
    '4:memory:/session/abc',
    '2:cpu,cpuacct:/',
    '0::/',
    '',
  ].join('\n');
  type Case = { name: string; path: string; cgroup?: string; want: string[] };
  const cases: Case[] = [
    {
      name: "a relative path goes below the runner's own cgroup in each hierarchy",
      path: 'flyces/pod/c0ffee',
      want: [
        '/sys/fs/cgroup/cpu,cpuacct/flyces/pod/c0ffee',
        '/sys/fs/cgroup/memory/session/abc/flyces/pod/c0ffee',
        '/sys/fs/cgroup/pids/flyces/pod/c0ffee',
        '/sys/fs/cgroup/systemd/flyces/pod/c0ffee',
        '/sys/fs/cgroup/unified/flyces/pod/c0ffee',
      ],
    },
    {
      name: "an absolute path starts at each hierarchy's root",
      path: '/flyces/pod/c0ffee',
      want: [
        '/sys/fs/cgroup/cpu,cpuacct/flyces/pod/c0ffee',
        '/sys/fs/cgroup/memory/flyces/pod/c0ffee',
        '/sys/fs/cgroup/pids/flyces/pod/c0ffee',
        '/sys/fs/cgroup/systemd/flyces/pod/c0ffee',
        '/sys/fs/cgroup/unified/flyces/pod/c0ffee',
      ],
    },
    { name: 'a path that climbs out of its parent', path: 'flyces/../../c0ffee', want: [] },
    { name: 'a path of nothing but itself', path: './', want: [] },
    {
      name: "a runner outside this process's cgroup namespace is reached by no mount",
      path: 'flyces/pod/c0ffee',
      cgroup: '0::/../elsewhere',
      want: [],
    },
  ];
  for (const c of cases) {
    const dirs = runcCgroupDirsOf(c.cgroup ?? runner, mountinfo, c.path);
    assert.deepEqual(dirs.sort(), c.want, c.name);
  }
});
