import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { downCommand } from '../src/cli/node-commands.js';
import { componentLogger } from '../src/log.js';
import { mountPoints } from '../src/runtime/fsutil.js';
import { ImageStore } from '../src/runtime/images.js';
import { MiniC, type MiniCOptions } from '../src/runtime/minic.js';
import { ensureStateDir, releaseStateDir, runtimeStateDir } from '../src/runtime/state-dir.js';

/**
 * `flyces down` against a runtime set up as `flyces up` sets it up (its state root under
 * /run/flyces, a tmpfs of its own where /run is on disk), with the data dir named through
 * a symlink by one and by its real path by the other. Needs root; uses its own temp data
 * dir, bridge and pod CIDR, removed by name at the end.
 */

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const BRIDGE = 'flycesat9';
const POD_CIDR = '10.42.237.0/24';
const IMAGE = 'localhost/flyces-web:1';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flyces-down-'));
const real = path.join(tmp, 'data');
const link = path.join(tmp, 'link');
await fs.mkdir(real);
await fs.symlink(real, link);
/** The state root `flyces up --data-dir LINK` uses. */
const upStateRoot = runtimeStateDir(link);
const options: MiniCOptions = {
  root: path.join(link, 'runtime'),
  stateRoot: upStateRoot,
  images: new ImageStore({ root: path.join(link, 'images') }),
  podCidr: POD_CIDR,
  bridge: BRIDGE,
};

after(async () => {
  // Whatever down missed, found through the state root up used.
  const left = new MiniC(options);
  for (const sb of await left.listSandboxes().catch(() => [])) {
    await left.removeSandbox(sb.id).catch((err) => console.error('cleanup', err));
  }
  await left.removeSpareNetwork().catch(() => undefined);
  await releaseStateDir(upStateRoot).catch((err) => console.error('cleanup', err));
  await exec('ip', ['link', 'del', BRIDGE]).catch(() => undefined);
  await fs.rm(tmp, { recursive: true, force: true });
});

test('flyces down given another spelling of the data dir stops what flyces up started', async () => {
  const archive = path.join(tmp, 'web.tar');
  await exec(path.join(repo, 'examples', 'build-image.sh'), [archive]);
  await options.images.importArchive(archive);
  await ensureStateDir(upStateRoot, componentLogger('minic'));
  const up = new MiniC(options);
  await up.prepareNetwork();
  const sandbox = await up.runSandbox({
    podUid: `uid-${path.basename(tmp)}`,
    podName: 'web',
    podNamespace: 'default',
    hostname: 'web',
    labels: {},
  });
  const id = await up.createContainer(sandbox.id, {
    name: 'web',
    image: IMAGE,
    attempt: 0,
    labels: {},
  });
  await up.startContainer(id);
  const record = path.join(upStateRoot, 'containers', id, 'conmon.pid');
  const conmonPid = Number(await fs.readFile(record, 'utf8'));
  await up.removeSpareNetwork();

  // The Service rules a killed `flyces up` would leave (a clean stop removes its own).
  const table = `flyces_${BRIDGE}`;
  await exec('nft', ['add', 'table', 'ip', table]);

  // No bridge named: the one the runtime noted in the data dir goes.
  await downCommand(real);
  await assert.rejects(exec('nft', ['list', 'table', 'ip', table]), /No such file/);
  await assert.rejects(exec('ip', ['link', 'show', 'dev', BRIDGE]), /does not exist/);
  const cmdline = await fs.readFile(`/proc/${conmonPid}/cmdline`, 'utf8').catch(() => '');
  assert.equal(cmdline, '', "the container's conmon still runs");
  assert.deepEqual(await fs.readdir(path.join(real, 'runtime', 'containers')), []);
  const leases = path.join(real, 'runtime', 'cni', 'networks', 'flyces');
  assert.deepEqual(
    (await fs.readdir(leases).catch(() => [] as string[])).filter((n) => /^\d/.test(n)),
    [],
  );
  assert.ok(!mountPoints().includes(upStateRoot), 'the state root is unmounted');
  assert.ok(!existsSync(upStateRoot), 'the state root is gone');
  // A second down finds nothing to do and does not fail.
  await downCommand(link, BRIDGE);
});

test('flyces down given a data dir that was never used makes nothing there', async () => {
  const never = path.join(tmp, 'never');
  await downCommand(never, BRIDGE);
  assert.ok(!existsSync(never), `${never} was made`);
});
