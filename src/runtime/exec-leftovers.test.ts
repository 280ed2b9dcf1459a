import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  mkdtempSync,
  mkdirSync,
  existsSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { endExecLeftovers } from './exec-leftovers.js';
import { childrenOf, processRuns } from './process-tree.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A shell with a child, as an exec's command with what it started. */
async function shellWithChild(): Promise<{ pid: number; child: number }> {
  const sh = spawn('sh', ['-c', 'sleep 300 & wait'], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const [child] = await childrenOf(sh.pid!);
    if (child) return { pid: sh.pid!, child };
    await sleep(20);
  }
  throw new Error('the shell started no child');
}

test("an earlier agent's exec sessions are ended with what they started; newer ones stay", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'exec-leftovers-'));
  const started: number[] = [];
  t.after(() => {
    for (const pid of started) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // ended by the test
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const stream = await shellWithChild();
  const probe = await shellWithChild();
  const mine = await shellWithChild();
  started.push(stream.pid, stream.child, probe.pid, probe.child, mine.pid, mine.child);

  // A stream's directory and a probe's pid file, as runc leaves them after the command began.
  mkdirSync(path.join(dir, 'aaaa'));
  writeFileSync(path.join(dir, 'aaaa', 'pid'), String(stream.pid));
  writeFileSync(path.join(dir, 'aaaa', 'runc.log'), '');
  writeFileSync(path.join(dir, 'bbbb.pid'), String(probe.pid));
  // A pid file written long before its process started: the pid is another process's now.
  writeFileSync(path.join(dir, 'cccc.pid'), String(mine.pid));
  const hourAgo = new Date(Date.now() - 3_600_000);
  utimesSync(path.join(dir, 'cccc.pid'), hourAgo, hourAgo);
  // An entry of no use: no pid.
  mkdirSync(path.join(dir, 'dddd'));
  const before = Date.now() + 1000;
  await sleep(20);

  const ended = await endExecLeftovers(dir, before);
  assert.deepEqual(ended.sort(), [stream.pid, probe.pid].sort());
  await sleep(100);
  for (const pid of [stream.pid, stream.child, probe.pid, probe.child]) {
    assert.equal(processRuns(pid), false, `pid ${pid} still runs`);
  }
  assert.equal(processRuns(mine.pid), true, 'a process that started after the file was spared');
  assert.deepEqual(readdirSync(dir), []);

  // Entries made after `before` belong to this process's own sessions and stay.
  mkdirSync(path.join(dir, 'eeee'));
  writeFileSync(path.join(dir, 'eeee', 'pid'), String(mine.pid));
  assert.deepEqual(await endExecLeftovers(dir, Date.now() - 60_000), []);
  assert.ok(existsSync(path.join(dir, 'eeee', 'pid')));
  assert.equal(processRuns(mine.pid), true);
  assert.deepEqual(await endExecLeftovers(path.join(dir, 'none'), Date.now()), []);
});
