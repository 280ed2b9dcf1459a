import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  finishedAtFor,
  RuntimeRecords,
  type ContainerRecord,
  type SandboxRecord,
} from './records.js';

function sandbox(id: string): SandboxRecord {
  return {
    id,
    podUid: 'uid-1',
    podName: 'p',
    podNamespace: 'default',
    hostname: 'p',
    labels: { a: '1' },
    attempt: 0,
    netns: 'flyces-test',
    cniConfig: {},
    state: 'ready',
    createdAt: '2026-01-01T00:00:00Z',
  };
}

function container(id: string, sandboxId: string): ContainerRecord {
  return {
    id,
    sandboxId,
    name: 'c',
    image: 'busybox:1',
    imageId: 'sha256:' + 'a'.repeat(64),
    attempt: 0,
    labels: {},
    createdAt: '2026-01-01T00:00:00Z',
    stopSignal: 'SIGTERM',
  };
}

const SB = 'b'.repeat(64);
const C1 = 'c'.repeat(64);
const C2 = 'd'.repeat(64);

test('records written by one process are read back by the next, with no temporary files', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'flyces-records-'));
  try {
    const first = new RuntimeRecords(root);
    mkdirSync(first.sandboxDir(SB), { recursive: true });
    mkdirSync(first.containerDir(C1), { recursive: true });
    await first.writeSandbox(sandbox(SB));
    await first.addContainer(container(C1, SB));
    await first.writeContainer({ ...container(C1, SB), startedAt: '2026-01-01T00:00:01Z' });

    const next = new RuntimeRecords(root);
    assert.deepEqual(await next.readSandbox(SB), sandbox(SB));
    assert.equal((await next.readContainer(C1))?.startedAt, '2026-01-01T00:00:01Z');
    assert.deepEqual(readdirSync(first.containerDir(C1)), ['container.json']);
    assert.deepEqual(readdirSync(first.sandboxDir(SB)), ['sandbox.json']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('an unreadable record (what a machine crash can leave) counts as missing', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'flyces-records-'));
  try {
    const first = new RuntimeRecords(root);
    for (const id of [C1, C2]) mkdirSync(first.containerDir(id), { recursive: true });
    mkdirSync(first.sandboxDir(SB), { recursive: true });
    await first.writeSandbox(sandbox(SB));
    await first.addContainer(container(C1, SB));
    writeFileSync(path.join(first.containerDir(C2), 'container.json'), '');
    writeFileSync(path.join(first.sandboxDir(SB), 'sandbox.json'), '{"id": "trunc');

    const next = new RuntimeRecords(root);
    assert.equal(await next.readSandbox(SB), undefined);
    assert.deepEqual(
      (await next.containers()).map((c) => c.id),
      [C1],
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('records an earlier miniC kept on disk are read and written where they are', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flyces-records-'));
  const disk = path.join(dir, 'runtime');
  const state = path.join(dir, 'state');
  try {
    // The earlier layout: records beside the containers' files, under the root on disk.
    const earlier = new RuntimeRecords(disk);
    mkdirSync(earlier.sandboxDir(SB), { recursive: true });
    mkdirSync(earlier.containerDir(C1), { recursive: true });
    await earlier.writeSandbox(sandbox(SB));
    await earlier.addContainer(container(C1, SB));

    const now = new RuntimeRecords(state, disk);
    assert.equal((await now.readSandbox(SB))?.podName, 'p');
    assert.equal(await now.isEarlier(C1), true);
    await now.writeContainer({ ...container(C1, SB), startedAt: '2026-01-01T00:00:02Z' });
    assert.match(
      readFileSync(path.join(disk, 'containers', C1, 'container.json'), 'utf8'),
      /00:00:02/,
    );
    // A new container's record goes to the state root; its files on disk stay apart.
    mkdirSync(now.containerStateDir(C2), { recursive: true });
    mkdirSync(now.containerDir(C2), { recursive: true });
    await now.addContainer(container(C2, SB));
    assert.ok(existsSync(path.join(state, 'containers', C2, 'container.json')));
    assert.equal(await now.isEarlier(C2), false);

    const again = new RuntimeRecords(state, disk);
    assert.deepEqual((await again.containers()).map((c) => c.id).sort(), [C1, C2]);
    for (const id of [C1, C2]) await again.removeContainer(id);
    await again.removeSandbox(SB);
    for (const root of [disk, state]) {
      for (const kind of ['containers', 'sandboxes'])
        assert.deepEqual(
          existsSync(path.join(root, kind)) ? readdirSync(path.join(root, kind)) : [],
          [],
          `${root}/${kind}`,
        );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a container never finishes before it started', () => {
  const start = '2026-12-05T20:05:03.844Z';
  const cases: [string | undefined, string, string][] = [
    [start, '2026-12-05T20:05:04.100Z', '2026-12-05T20:05:04.100Z'],
    [start, start, start],
    // The exit file's coarse time, 2 ms behind the start read just before.
    [start, '2026-12-05T20:05:03.842Z', start],
    // A start that failed has no start time: its exit is taken as it is.
    [undefined, '2026-12-05T20:05:03.842Z', '2026-12-05T20:05:03.842Z'],
  ];
  for (const [startedAt, exitedAt, want] of cases) {
    assert.equal(finishedAtFor(startedAt, new Date(exitedAt)), want, `${startedAt} ${exitedAt}`);
  }
});
