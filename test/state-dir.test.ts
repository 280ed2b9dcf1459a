import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, promises as fs, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { mountPoints } from '../src/runtime/fsutil.js';

/**
 * The agent's state root (src/runtime/state-dir.ts) in a real process: from the host's
 * mount namespace ensureStateDir mounts a tmpfs on an empty directory; from a mount
 * namespace of the process's own (`unshare --mount`, as a systemd unit with PrivateTmp
 * gets) it mounts nothing and says why, since that tmpfs would end with the process.
 * Needs root; uses its own temp directories.
 */

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const stateDirModule = path.resolve(here, '..', 'src', 'runtime', 'state-dir.js');
const TMPFS_MAGIC = 0x01021994;

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flyces-state-dir-'));
after(async () => {
  for (const mount of mountPoints()
    .filter((m) => m.startsWith(`${tmp}/`))
    .reverse()) {
    await exec('umount', [mount]).catch(() => undefined);
  }
  await fs.rm(tmp, { recursive: true, force: true });
});

/** Runs ensureStateDir(dir) in a Node child, under `prefix` (e.g. unshare); its report. */
async function ensureIn(prefix: string[], dir: string) {
  const script = `
    import { statfsSync } from 'node:fs';
    import { ensureStateDir } from ${JSON.stringify(stateDirModule)};
    const warnings = [];
    const log = { warn: (fields, msg) => warnings.push(msg), info() {}, error() {}, debug() {} };
    await ensureStateDir(${JSON.stringify(dir)}, log);
    console.log(JSON.stringify({ tmpfs: statfsSync(${JSON.stringify(dir)}).type === ${TMPFS_MAGIC}, warnings }));
  `;
  const args = [...prefix, process.execPath, '--input-type=module', '-e', script];
  const { stdout } = await exec(args[0], args.slice(1));
  return JSON.parse(stdout) as { tmpfs: boolean; warnings: string[] };
}

test('from the host mount namespace the state root gets a tmpfs of its own', async () => {
  const dir = path.join(tmp, 'host', 'state');
  const report = await ensureIn([], dir);
  assert.deepEqual(report, { tmpfs: true, warnings: [] });
  assert.ok(mountPoints().includes(dir), 'the tmpfs outlives the process that mounted it');
  assert.equal(statfsSync(dir).type, TMPFS_MAGIC);
  await exec('umount', [dir]);
});

test('from a mount namespace of its own nothing is mounted, and the log says why', async () => {
  // private as `unshare` makes it by default, slave as systemd's PrivateTmp does.
  for (const propagation of ['private', 'slave']) {
    const dir = path.join(tmp, propagation, 'state');
    const report = await ensureIn(['unshare', '--mount', '--propagation', propagation], dir);
    assert.equal(report.tmpfs, false, propagation);
    assert.equal(report.warnings.length, 1);
    assert.match(report.warnings[0], /mount namespace of its own/);
    assert.ok(existsSync(dir), 'the directory is made, on disk');
    assert.ok(!mountPoints().includes(dir));
  }
});
