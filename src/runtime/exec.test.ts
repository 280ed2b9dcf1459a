import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ExecError, run, runCapture } from './exec.js';

test('programs run by the spawn helper report as they did when run in-process', async (t) => {
  await t.test('output, input and exit code', async () => {
    const done = await runCapture('sh', ['-c', 'cat; echo oops >&2; exit 3'], { input: 'in' });
    assert.deepEqual(done, { code: 3, stdout: 'in', stderr: 'oops\n', timedOut: false });
  });

  await t.test('run fails with ExecError on a non-zero exit', async () => {
    await assert.rejects(run('sh', ['-c', 'echo bad >&2; exit 1']), (err: unknown) => {
      assert.ok(err instanceof ExecError);
      assert.equal(err.exitCode, 1);
      assert.equal(err.stderr, 'bad\n');
      return true;
    });
  });

  await t.test('a program that does not exist is an ExecError without exit code', async () => {
    await assert.rejects(runCapture('/no/such/program', []), (err: unknown) => {
      assert.ok(err instanceof ExecError);
      assert.equal(err.exitCode, null);
      assert.match(err.stderr, /ENOENT/);
      return true;
    });
  });

  await t.test('a program past its time limit is killed', async () => {
    const t0 = Date.now();
    const done = await runCapture('sleep', ['10'], { timeoutMs: 100 });
    assert.equal(done.timedOut, true);
    assert.equal(done.code, null);
    assert.ok(Date.now() - t0 < 5000);
  });

  await t.test('many at once all come back', async () => {
    const outs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => runCapture('echo', [String(i)])),
    );
    assert.deepEqual(
      outs.map((o) => o.stdout.trim()),
      Array.from({ length: 20 }, (_, i) => String(i)),
    );
  });
});
