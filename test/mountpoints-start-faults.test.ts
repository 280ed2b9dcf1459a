import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { busyboxLayer, makeArchive } from './helpers/oci-images.js';
import { runtimeRig } from './helpers/runtime-rig.js';

/**
 * Faults on miniC's start path, between `runc create` and the process running: runc's
 * state file, conmon's pid file and the exec fifo damaged, gone or replaced, conmon killed.
 * A runc wrapper applies the fault named in a file once `runc create` has succeeded, and
 * notes the container's pid. Whatever the fault, a start settles well within its time
 * limit and either runs the process, which a stop then ends, or fails and leaves no
 * process behind; removal then leaves none of its runc state and cgroups. Needs root.
 */

const exec = promisify(execFile);
const BRIDGE = 'flycesat8';
const POD_CIDR = '10.42.238.0/24';

/** Whether the process runs (a zombie has ended). */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
};

/** A runc that, after a successful create, applies the fault written in `faultFile`. */
function wrapper(realRunc: string, faultFile: string, pidDir: string): string {
  return `#!/bin/sh
is_create=0; root=; bundle=; prev=
for a in "$@"; do
  case "$a" in --root=*) root="\${a#--root=}";; create) is_create=1;; esac
  [ "$prev" = --bundle ] && bundle="$a"
  [ "$prev" = --root ] && root="$a"
  prev="$a"; id="$a"
done
[ $is_create = 1 ] || exec ${realRunc} "$@"
${realRunc} "$@" || exit $?
state="$root/$id"; dir="$(dirname "$bundle")"
sed -n 's/.*"init_process_pid":\\([0-9]*\\).*/\\1/p' "$state/state.json" > ${pidDir}/"$id"
case "$(cat ${faultFile})" in
  state-junk) printf '{"cgroup_paths":' > "$state/state.json";;
  state-missing) rm "$state/state.json";;
  state-no-cgroups) sed 's/"cgroup_paths":{[^}]*}/"cgroup_paths":{}/' "$state/state.json" > "$state/s" && mv "$state/s" "$state/state.json";;
  conmon-pid-junk) printf 'junk' > "$dir/conmon.pid";;
  conmon-pid-missing) rm "$dir/conmon.pid";;
  conmon-pid-dir) rm "$dir/conmon.pid"; mkdir "$dir/conmon.pid";;
  fifo-file) rm "$state/exec.fifo"; : > "$state/exec.fifo";;
  fifo-missing) rm "$state/exec.fifo";;
  fifo-other) rm "$state/exec.fifo"; mkfifo "$state/exec.fifo";;
  conmon-dies) (sleep 0.3; kill -9 $PPID) >/dev/null 2>&1 &;;
  conmon-dies-at-once) kill -9 $PPID;;
  conmon-dies-soon) (sleep 0.02; kill -9 $PPID) >/dev/null 2>&1 &;;
esac
exit 0
`;
}

test('faults between runc create and the process running', async (t) => {
  const pids: number[] = [];
  let faultFile = '';
  let pidDir = '';
  const realRunc = (await exec('sh', ['-c', 'command -v runc'])).stdout.trim();
  const { tmp, images, options, minic, pod } = await runtimeRig(
    t,
    'flyces-start-faults-test-',
    { bridge: BRIDGE, podCidr: POD_CIDR },
    async (dir) => {
      faultFile = path.join(dir, 'fault');
      pidDir = path.join(dir, 'pids');
      await fs.mkdir(pidDir);
      const runtimePath = path.join(dir, 'runc-faulty');
      await fs.writeFile(runtimePath, wrapper(realRunc, faultFile, pidDir), { mode: 0o755 });
      return { runtimePath };
    },
    // Processes a failed case left: only the containers this test created, by pid.
    () => {
      for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    },
  );
  const runcRoot = path.join(options.root, 'state', 'runc');

  const archive = path.join(tmp, 'image.tar');
  await makeArchive(archive, [await busyboxLayer([])], 'localhost/mp-faults:1');
  await images.importArchive(archive);
  const sandbox = await minic.runSandbox(pod('faults'));

  const runcIds = async () =>
    (
      JSON.parse(
        (await exec(realRunc, [`--root=${runcRoot}`, 'list', '--format', 'json'])).stdout || 'null',
      ) ?? []
    ).map((c: { id: string }) => c.id);

  for (const fault of [
    'none',
    'state-junk',
    'state-missing',
    'state-no-cgroups',
    'conmon-pid-junk',
    'conmon-pid-missing',
    'conmon-pid-dir',
    'fifo-file',
    'fifo-missing',
    'fifo-other',
    'conmon-dies',
    'conmon-dies-at-once',
    'conmon-dies-soon',
  ]) {
    await t.test(fault, async () => {
      await fs.writeFile(faultFile, fault);
      const id = await minic.createContainer(sandbox.id, {
        name: fault,
        image: 'localhost/mp-faults:1',
        attempt: 0,
        labels: {},
      });
      const t0start = Date.now();
      const started = await minic.startContainer(id).then(
        () => true,
        (err: Error) => err,
      );
      // Well within the start's own time limit (30 s): no fault is left to run it out.
      assert.ok(Date.now() - t0start < 10_000, `${fault}: the start settled within 10 s`);
      const pid = Number(await fs.readFile(path.join(pidDir, id), 'utf8'));
      assert.ok(pid > 0, 'the wrapper noted the pid');
      pids.push(pid);
      if (started === true) {
        assert.equal((await minic.containerStatus(id))?.state, 'running');
        await minic.stopContainer(id, 1);
        assert.equal((await minic.containerStatus(id))?.state, 'exited');
      } else {
        assert.equal((await minic.containerStatus(id))?.state, 'exited', String(started));
      }
      // A process killed on the failure's path takes a moment to end.
      const t0 = Date.now();
      while (alive(pid) && Date.now() < t0 + 15000) await new Promise((r) => setTimeout(r, 20));
      assert.ok(
        !alive(pid),
        `${fault}: the container's process ${pid} is gone (${String(started)})`,
      );
      await minic.removeContainer(id);
      assert.ok(!(await runcIds()).includes(id), `${fault}: runc has no such container`);
      assert.ok(!existsSync(path.join(runcRoot, id)), `${fault}: runc's state is gone`);
      const cgroups = (
        await exec('find', ['/sys/fs/cgroup', '-maxdepth', '8', '-type', 'd', '-name', id])
      ).stdout.trim();
      assert.equal(cgroups, '', `${fault}: the container's cgroups are gone`);
    });
  }
});
