import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { followFromEnd, LineAssembler, parseCriLine, readLog, streamLog } from './logs.js';

test('parse CRI log lines', () => {
  const cases: [string, unknown][] = [
    [
      '2026-01-01T00:00:00.1Z stdout F hello world',
      { time: '2026-01-01T00:00:00.1Z', stream: 'stdout', text: 'hello world', partial: false },
    ],
    [
      '2026-01-01T00:00:00.1Z stderr P part',
      { time: '2026-01-01T00:00:00.1Z', stream: 'stderr', text: 'part', partial: true },
    ],
    [
      '2026-01-01T00:00:00.1Z stdout F',
      { time: '2026-01-01T00:00:00.1Z', stream: 'stdout', text: '', partial: false },
    ],
    ['garbage', undefined],
  ];
  for (const [line, want] of cases) assert.deepEqual(parseCriLine(line), want, line);
});

test('partial lines are joined', () => {
  const a = new LineAssembler();
  assert.equal(a.push('t1 stdout P abc'), undefined);
  assert.deepEqual(a.push('t2 stdout F def'), { time: 't1', stream: 'stdout', text: 'abcdef' });
});

test('readLog tail and since', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-logs-'));
  try {
    const path = join(dir, 'c.log');
    writeFileSync(
      path,
      [
        '2026-01-01T00:00:01Z stdout F one',
        '2026-01-01T00:00:02Z stdout F two',
        '2026-01-01T00:00:03Z stderr F three',
        '',
      ].join('\n'),
    );
    assert.deepEqual(
      (await readLog(path, {})).lines.map((l) => l.text),
      ['one', 'two', 'three'],
    );
    assert.deepEqual(
      (await readLog(path, { tailLines: 2 })).lines.map((l) => l.text),
      ['two', 'three'],
    );
    assert.deepEqual((await readLog(path, { tailLines: 0 })).lines, []);
    const since = Date.parse('2026-01-01T00:00:02Z');
    assert.deepEqual(
      (await readLog(path, { since })).lines.map((l) => l.text),
      ['two', 'three'],
    );
    assert.deepEqual((await readLog(join(dir, 'missing'), {})).lines, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('limitBytes counts bytes, not characters', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-logs-'));
  try {
    const path = join(dir, 'c.log');
    writeFileSync(path, '2026-01-01T00:00:01Z stdout F h\u00e9llo w\u00f6rld\n');
    const cases: [number, string][] = [
      [1, 'h'],
      [3, 'h\u00e9'],
      [6, 'h\u00e9llo'],
      [14, 'h\u00e9llo w\u00f6rld\n'],
      [100, 'h\u00e9llo w\u00f6rld\n'],
    ];
    for (const [limitBytes, want] of cases) {
      const out = new PassThrough();
      const chunks: Buffer[] = [];
      out.on('data', (chunk: Buffer) => chunks.push(chunk));
      await streamLog(path, out, { limitBytes });
      const got = Buffer.concat(chunks);
      assert.ok(got.length <= limitBytes, `${got.length} bytes for limitBytes ${limitBytes}`);
      assert.equal(got.toString('utf8'), want, `limitBytes ${limitBytes}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('follow goes on across a rotated or truncated log', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-logs-'));
  const entry = (text: string) => `2026-01-01T00:00:01Z stdout F ${text}\n`;
  const cases: [string, (path: string) => void][] = [
    [
      'renamed over (conmon)',
      (path) => {
        writeFileSync(join(dir, 'new.log'), entry('three'));
        renameSync(join(dir, 'new.log'), path);
      },
    ],
    ['truncated in place', (path) => writeFileSync(path, entry('three'))],
  ];
  try {
    for (const [name, rotate] of cases) {
      const path = join(dir, 'c.log');
      writeFileSync(path, entry('one') + entry('two, longer than what follows'));
      const out = new PassThrough();
      let text = '';
      out.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      let finished = false;
      const streamed = streamLog(path, out, { follow: true, done: async () => finished });
      const seen = async (want: string) => {
        for (let i = 0; i < 100 && !text.includes(want); i++)
          await new Promise((resolve) => setTimeout(resolve, 20));
        assert.ok(text.includes(want), `${name}: ${JSON.stringify(text)} lacks ${want}`);
      };
      try {
        await seen('two');
        rotate(path);
        await seen('three');
        appendFileSync(path, entry('four'));
        await seen('four');
      } finally {
        finished = true;
        await streamed;
      }
      assert.equal(text, 'one\ntwo, longer than what follows\nthree\nfour\n', name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a followed log keeps to since, even when it lies ahead', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-logs-'));
  const path = join(dir, 'c.log');
  try {
    writeFileSync(path, '2026-01-01T00:00:01Z stdout F before\n');
    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    let finished = false;
    const since = Date.parse('2026-01-01T00:00:05Z');
    const streamed = streamLog(path, out, { follow: true, since, done: async () => finished });
    appendFileSync(path, '2026-01-01T00:00:03Z stdout F still before\n');
    appendFileSync(path, '2026-01-01T00:00:06Z stdout F after\n');
    for (let i = 0; i < 100 && !text.includes('after'); i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    finished = true;
    await streamed;
    assert.equal(text, 'after\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a last line the container left without a newline is shown, without one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-logs-'));
  const path = join(dir, 'c.log');
  const collect = (out: PassThrough) => {
    let text = '';
    out.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    return () => text;
  };
  try {
    writeFileSync(
      path,
      '2026-01-01T00:00:01Z stdout F one\n2026-01-01T00:00:02Z stdout P 1\n' +
        '2026-01-01T00:00:02Z stdout P 2\n',
    );
    const { lines } = await readLog(path, {});
    assert.deepEqual(
      lines.map((l) => [l.text, l.partial === true]),
      [
        ['one', false],
        ['12', true],
      ],
    );
    const plain = new PassThrough();
    const text = collect(plain);
    await streamLog(path, plain, { timestamps: true });
    assert.equal(text(), '2026-01-01T00:00:01Z one\n2026-01-01T00:00:02Z 12');

    // Followed: the rest of the line still comes; and at the container's end, what is left.
    const followed = new PassThrough();
    const seen = collect(followed);
    let finished = false;
    const streamed = streamLog(path, followed, { follow: true, done: async () => finished });
    appendFileSync(path, '2026-01-01T00:00:03Z stdout F 3\n2026-01-01T00:00:04Z stdout P 4\n');
    for (let i = 0; i < 100 && !seen().includes('123'); i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    finished = true;
    await streamed;
    assert.equal(seen(), 'one\n123\n4');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a follower gets a part of a line at once, not when its newline comes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-logs-'));
  const path = join(dir, 'c.log');
  const at = (s: number) => `2026-01-01T00:00:0${s}Z`;
  try {
    for (const timestamps of [false, true]) {
      writeFileSync(path, `${at(1)} stdout F start\n${at(2)} stdout P .\n`);
      const out = new PassThrough();
      let text = '';
      out.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      let finished = false;
      const streamed = streamLog(path, out, {
        follow: true,
        timestamps,
        done: async () => finished,
      });
      const seen = async (want: string) => {
        for (let i = 0; i < 100 && text !== want; i++)
          await new Promise((resolve) => setTimeout(resolve, 20));
        assert.equal(text, want, `timestamps ${timestamps}`);
      };
      const shown = (...parts: [number, string][]) =>
        parts.map(([s, t]) => (timestamps ? `${at(s)} ${t}` : t)).join('');
      try {
        await seen(shown([1, 'start\n'], [2, '.']));
        appendFileSync(path, `${at(3)} stdout P .\n`);
        await seen(shown([1, 'start\n'], [2, '.'], [3, '.']));
        appendFileSync(path, `${at(4)} stdout F done\n`);
        await seen(shown([1, 'start\n'], [2, '.'], [3, '.'], [4, 'done\n']));
      } finally {
        finished = true;
        await streamed;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an attach follows the log from its end, each entry as it comes, partial ones too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-attach-log-'));
  try {
    const log = join(dir, 'container.log');
    // Before the attach: not shown. The last entry is cut short (conmon still writing it).
    writeFileSync(log, 't0 stdout F before\nt0 stdout P cut sh');
    const seen: string[] = [];
    let ended = false;
    const stop = new Writable({ write: (_c, _e, done) => done() });
    const following = followFromEnd(
      log,
      (entry) => {
        seen.push(`${entry.stream}:${entry.text}`);
        return true;
      },
      stop,
      async () => ended,
      async () => undefined,
    );
    await new Promise((r) => setTimeout(r, 100));
    appendFileSync(log, 'ort\nt1 stdout P / # \nt2 stdout F ls\nt3 stderr F oops\n');
    await new Promise((r) => setTimeout(r, 700));
    ended = true;
    await following;
    // The entry being written when the attach began is shown whole; the prompt, without a
    // newline, at once.
    assert.deepEqual(seen, ['stdout:cut short', 'stdout:/ # ', 'stdout:ls\n', 'stderr:oops\n']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a follower waits for a slow reader instead of reading the whole log into memory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flyces-logs-slow-'));
  try {
    const path = join(dir, 'c.log');
    writeFileSync(path, '');
    // A reader that takes nothing until told to: what it was handed is what piled up.
    let handed = 0;
    let flowing = false;
    const held: (() => void)[] = [];
    const out = new Writable({
      highWaterMark: 64 * 1024,
      write: (chunk: Buffer, _e, done) => {
        handed += chunk.length;
        if (flowing) done();
        else held.push(done);
      },
    });
    let finished = false;
    const streamed = streamLog(path, out, { follow: true, done: async () => finished });
    // 8 MiB of log, in lines of 1 KiB.
    const line = `2026-01-01T00:00:00Z stdout F ${'x'.repeat(1000)}\n`;
    appendFileSync(path, line.repeat(8 * 1024));
    await new Promise((r) => setTimeout(r, 1500));
    const piled = handed + out.writableLength;
    flowing = true;
    for (const done of held.splice(0)) done();
    finished = true;
    await streamed;
    assert.ok(piled <= 2.5 * 1024 * 1024, `${piled} bytes taken from the log for a stalled reader`);
    assert.equal(handed, 8 * 1024 * (1000 + 1));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
