import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  criLogLines,
  LOG_BYTES,
  logTail,
  MESSAGE_BYTES,
  terminationMessage,
} from './termination.js';

const entry = (stream: string, tag: string, text: string) =>
  `2026-12-05T10:00:00.000000000Z ${stream} ${tag} ${text}\n`;

function dir(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'flyces-termination-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('CRI log lines: parts joined, spaces kept, a last partial line without newline', () => {
  const text =
    entry('stdout', 'F', 'one  two') +
    entry('stderr', 'P', 'thr') +
    entry('stderr', 'F', 'ee') +
    entry('stdout', 'P', 'last');
  assert.deepEqual(criLogLines(text), ['one  two\n', 'three\n', 'last']);
});

test('the log tail is the first 2048 bytes of the last 80 lines', async (t) => {
  const d = dir(t);
  const log = path.join(d, 'log');
  let text = '';
  for (let i = 0; i < 200; i++) text += entry('stdout', 'F', `line ${i}`);
  writeFileSync(log, text);
  const tail = await logTail(log);
  assert.ok(tail.startsWith('line 120\n'), tail.slice(0, 20));
  assert.ok(tail.endsWith('line 199\n'));

  let long = '';
  for (let i = 0; i < 100; i++) long += entry('stdout', 'F', `${i} ${'x'.repeat(60)}`);
  writeFileSync(log, long);
  const cut = await logTail(log);
  assert.equal(Buffer.byteLength(cut), LOG_BYTES);
  assert.ok(cut.startsWith('20 x'), 'starts at the 80th line from the end');
});

test('a big log is read from its end only; an entry cut by the window is dropped', async (t) => {
  const d = dir(t);
  const log = path.join(d, 'log');
  const big = entry('stdout', 'F', 'y'.repeat(100_000));
  writeFileSync(log, big + entry('stderr', 'F', 'fatal: out of cheese'));
  assert.equal(await logTail(log), 'fatal: out of cheese\n');
});

test('the message file wins; the log stands in only for a failure that left none', async (t) => {
  const d = dir(t);
  const messageFile = path.join(d, 'termination-log');
  const logFile = path.join(d, 'log');
  writeFileSync(logFile, entry('stderr', 'F', 'panic: the log'));
  const read = (fallbackToLogs: boolean, exitCode: number | undefined) =>
    terminationMessage({ messageFile, logFile, fallbackToLogs, exitCode });

  writeFileSync(messageFile, 'disk full at /data');
  assert.equal(await read(true, 1), 'disk full at /data');
  writeFileSync(messageFile, 'z'.repeat(MESSAGE_BYTES + 100));
  assert.equal((await read(false, 0))?.length, MESSAGE_BYTES);

  writeFileSync(messageFile, '');
  assert.equal(await read(false, 1), undefined, 'policy File: no fallback');
  assert.equal(await read(true, 0), undefined, 'a success takes nothing from the log');
  assert.equal(await read(true, 2), 'panic: the log\n');
  assert.equal(await read(true, undefined), 'panic: the log\n', 'no exit code is a failure');
  rmSync(messageFile);
  assert.equal(await read(false, 1), undefined, 'a missing file is no message');
});

test('a message file swapped for a link or a FIFO is not followed or waited on', async (t) => {
  const d = dir(t);
  const secret = path.join(d, 'host-secret');
  writeFileSync(secret, 'host only');
  const linked = path.join(d, 'linked');
  symlinkSync(secret, linked);
  const logFile = path.join(d, 'none');
  assert.equal(
    await terminationMessage({ messageFile: linked, logFile, fallbackToLogs: false, exitCode: 1 }),
    undefined,
  );
  const fifo = path.join(d, 'fifo');
  execFileSync('mkfifo', [fifo]);
  assert.equal(
    await terminationMessage({ messageFile: fifo, logFile, fallbackToLogs: false, exitCode: 1 }),
    undefined,
  );
});
