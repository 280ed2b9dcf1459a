import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseAttachQuery, startAttach } from './attach.js';

test('the attach query is read as kubectl sends it, and refused with Kubernetes’ wording', () => {
  const q = (s: string) => parseAttachQuery(new URLSearchParams(s));
  assert.deepEqual(q('container=c&stdin=true&stdout=true&stderr=true'), {
    command: [],
    stdin: true,
    stdout: true,
    stderr: true,
    tty: false,
  });
  assert.equal(q('stdin=1&stdout=1&tty=true').tty, true);
  assert.throws(() => q('container=c'), /at least 1 of stdin, stdout, stderr/);
  assert.throws(() => q('stdout=true&stderr=true&tty=true'), /stderr cannot be true when tty/);
});

test('an attach asking for stdin where the runtime cannot give one fails before it starts', async () => {
  const target = { logPath: '/nonexistent/log', running: async () => false };
  const req = { command: [], stdin: true, stdout: true, stderr: false, tty: false };
  await assert.rejects(startAttach(target, req), /cannot attach to a stdin/);
  // Without stdin, a session on a container that ended ends at once, with success.
  const session = await startAttach(target, { ...req, stdin: false });
  assert.equal(session.stdin, undefined);
  assert.deepEqual(await session.exited, { exitCode: 0 });
});
