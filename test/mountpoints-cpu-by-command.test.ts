import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * bench/cpu-by-command against real perf recordings (system-wide, so it needs root) and
 * windows files that are wrong in every way a hand or a bench could make them, and a
 * recording that lost samples: it either prints figures from a recording that can give
 * them, or fails saying why and prints none.
 * (Named with the mount-point tests whose start-path work it measures.)
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const TOOL = path.resolve(here, '..', 'bench', 'cpu-by-command.js');
const hasPerf = spawnSync('perf', ['--version']).status === 0;

function perfRecord(file: string, args: string[]): void {
  const out = spawnSync('perf', ['record', ...args, '-o', file, '--', 'sleep', '0.3'], {
    encoding: 'utf8',
  });
  assert.equal(out.status, 0, out.stderr);
}

/** The recording's first and last sample times, as perf's header gives them. */
function span(file: string): [string, string] {
  const header = spawnSync('perf', ['report', '--header-only', '-i', file], { encoding: 'utf8' });
  const time = (what: string) =>
    new RegExp(`time of ${what} sample : ([\\d.]+)`).exec(header.stdout)![1];
  return [time('first'), time('last')];
}

function tool(...args: string[]) {
  const out = spawnSync(process.execPath, [TOOL, ...args], { encoding: 'utf8' });
  return { code: out.status, stdout: out.stdout, stderr: out.stderr };
}

test(
  'cpu-by-command prints figures only from a recording that can give them',
  { skip: !hasPerf && 'no perf' },
  async () => {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flyces-cpu-by-command-'));
    try {
      const good = path.join(tmp, 'good.data');
      perfRecord(good, ['-a', '-k', 'mono', '-e', 'cpu-clock', '-F', '99']);
      const [first, last] = span(good);
      const windows = path.join(tmp, 'windows');
      const withWindows = async (text: string) => {
        await fs.writeFile(windows, text);
        return tool(good, windows);
      };

      // The whole recording as one window of 2 containers: every CPU's time, idle included.
      const ok = await withWindows(`minic 2 ${first} ${last}\n`);
      assert.equal(ok.code, 0, ok.stderr);
      const total = Number(/idle included: ([\d.]+)\)/.exec(ok.stdout)?.[1]);
      const expected = ((Number(last) - Number(first)) * 1000 * os.cpus().length) / 2;
      assert.ok(total > expected * 0.7 && total < expected * 1.2, `${total} vs ${expected} ms`);
      assert.match(ok.stdout, /\(idle\)/);

      const refused = async (text: string, why: RegExp) => {
        const out = await withWindows(text);
        assert.equal(out.code, 1, text);
        assert.equal(out.stdout, '', `no figure for ${JSON.stringify(text)}`);
        assert.match(out.stderr, why, text);
        assert.doesNotMatch(out.stderr, /\n\s+at /, 'a message, not a stack');
      };
      const mid = ((Number(first) + Number(last)) / 2).toFixed(6);
      await refused(`minic 2 1.000000 2.000000\n`, /not inside the recording/);
      await refused(`minic 2 ${mid} 99999999.000000\n`, /not inside the recording/);
      await refused(`minic 2 ${last} ${first}\n`, /ends before it starts/);
      await refused(`minic 2 abc def\n`, /not seconds/);
      await refused(`minic 2 -1 ${first}\n`, /not seconds/);
      await refused(`minic 0 ${first} ${last}\n`, /not a positive whole number/);
      await refused(`minic 1.5 ${first} ${last}\n`, /not a positive whole number/);
      await refused(`minic 2 ${first} ${last} extra\n`, /not ENGINE COUNT START END/);
      await refused(`minic 2 ${first}\n`, /not ENGINE COUNT START END/);
      await refused(`\n\n`, /names no window/);
      // One good engine before a bad one: still nothing printed.
      await refused(`minic 2 ${first} ${mid}\nrunc 2 1.0 2.0\n`, /runc 2 1\.0 2\.0/);

      await fs.writeFile(windows, `minic 2 ${first} ${last}\n`);
      const other = async (name: string, args: string[], why: RegExp) => {
        const file = path.join(tmp, name);
        perfRecord(file, args);
        const out = tool(file, windows);
        assert.equal(out.code, 1, name);
        assert.equal(out.stdout, '', name);
        assert.match(out.stderr, why, name);
      };
      await other(
        'one-command.data',
        ['-k', 'mono', '-e', 'cpu-clock', '-F', '99'],
        /not a recording of every CPU \(perf record -a\)/,
      );
      await other(
        'nomono.data',
        ['-a', '-e', 'cpu-clock', '-F', '99'],
        /CLOCK_MONOTONIC \(perf record -k mono\)/,
      );
      await other(
        'period.data',
        ['-a', '-k', 'mono', '-e', 'cpu-clock', '-c', '1000000'],
        /frequency \(perf record -F\)/,
      );
      await other(
        'two.data',
        ['-a', '-k', 'mono', '-e', 'cpu-clock', '-e', 'task-clock', '-F', '99'],
        /one event, cpu-clock.*not cpu-clock, task-clock/,
      );

      // A buffer of one page at 20 kHz while every CPU is busy: perf loses samples, most
      // times. Its reader sometimes keeps up all the same (once in a CI run), so the
      // recording is made again until perf's own statistics show a loss, up to five times.
      const lossy = path.join(tmp, 'lossy.data');
      const spin = `for i in $(seq ${2 * os.cpus().length + 1}); do timeout 0.5 sh -c 'while :; do :; done' & done; wait`;
      const record = ['record', '-q', '-a', '-k', 'mono', '-e', 'cpu-clock', '-F', '20000'];
      const lostRecords = () => {
        const stats = spawnSync('perf', ['report', '--stats', '-i', lossy], { encoding: 'utf8' });
        return [...stats.stdout.matchAll(/^\s*(LOST|LOST_SAMPLES) events:\s*(\d+)/gm)].some(
          ([, , n]) => Number(n) > 0,
        );
      };
      for (let attempt = 1; ; attempt++) {
        const args = [...record, '-m', '1', '-o', lossy, '--', 'sh', '-c', spin];
        const busy = spawnSync('perf', args, { encoding: 'utf8' });
        assert.equal(busy.status, 0, busy.stderr);
        if (lostRecords()) break;
        assert.ok(attempt < 5, 'perf lost no sample in five busy recordings');
      }
      const [lossyFirst, lossyLast] = span(lossy);
      await fs.writeFile(windows, `minic 2 ${lossyFirst} ${lossyLast}\n`);
      const lost = tool(lossy, windows);
      assert.equal(lost.code, 1, lost.stdout);
      assert.equal(lost.stdout, '');
      assert.match(lost.stderr, /lost samples \(\d+ LOST/);
      await fs.writeFile(windows, `minic 2 ${first} ${last}\n`);

      assert.match(tool(good).stderr, /^cpu-by-command: usage: /);
      assert.match(
        tool(path.join(tmp, 'missing.data'), windows).stderr,
        /^cpu-by-command: perf report failed/,
      );
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  },
);
