import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RuntimeError } from './runtime.js';
import { checkWorkingDir, resolveCapabilities, resolveIdentity, DEFAULT_CAPS } from './security.js';

test('capabilities add and drop from the default set', () => {
  const cases: [Parameters<typeof resolveCapabilities>[0], boolean, (caps: string[]) => boolean][] =
    [
      [undefined, false, (c) => c.length === DEFAULT_CAPS.length],
      [{ drop: ['ALL'] }, false, (c) => c.length === 0],
      [
        { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
        false,
        (c) => c.join() === 'CAP_NET_BIND_SERVICE',
      ],
      [
        { add: ['NET_ADMIN'], drop: ['KILL'] },
        false,
        (c) => c.includes('CAP_NET_ADMIN') && !c.includes('CAP_KILL'),
      ],
      [undefined, true, (c) => c.includes('CAP_SYS_ADMIN')],
    ];
  for (const [caps, privileged, check] of cases) {
    assert.ok(check(resolveCapabilities(caps, privileged)), JSON.stringify(caps));
  }
  assert.throws(
    () => resolveCapabilities({ add: ['NOPE'] }, false),
    /unknown capability "CAP_NOPE"/,
  );
});

test('identity from securityContext over the image', () => {
  assert.deepEqual(resolveIdentity(undefined, { uid: 0, gid: 0 }), { uid: 0, gid: 0 });
  assert.deepEqual(resolveIdentity({ runAsUser: 1000, runAsGroup: 2000 }, { uid: 0, gid: 0 }), {
    uid: 1000,
    gid: 2000,
  });
  assert.deepEqual(resolveIdentity({ supplementalGroups: [5] }, { uid: 7, gid: 7 }), {
    uid: 7,
    gid: 7,
    additionalGids: [5],
  });
  const configError = (message: RegExp) => (err: unknown) =>
    err instanceof RuntimeError &&
    err.code === 'CreateContainerConfigError' &&
    message.test(err.message);
  assert.throws(
    () => resolveIdentity({ runAsNonRoot: true }, { uid: 0, gid: 0 }),
    configError(/^container has runAsNonRoot and image will run as root$/),
  );
  assert.throws(
    () => resolveIdentity({ runAsNonRoot: true, runAsUser: 0 }, { uid: 1000, gid: 0 }),
    configError(/^container's runAsUser breaks non-root policy$/),
  );
  assert.deepEqual(resolveIdentity({ runAsNonRoot: true, runAsUser: 5 }, { uid: 0, gid: 0 }), {
    uid: 5,
    gid: 0,
  });
});

test('working directories under /proc/self/fd are refused', () => {
  for (const bad of [
    '/proc/self/fd/7',
    '/proc/self/fd',
    '/proc/1/fd/3',
    '/proc/thread-self/fd/8',
  ]) {
    assert.throws(() => checkWorkingDir(bad), /not allowed/, bad);
  }
  for (const ok of ['/', '/www', '/proc', '/procfs/self/fd']) checkWorkingDir(ok);
});
