/**
 * Where the machine's CPU went during the pod-startup bench's bursts: milliseconds of CPU
 * per container, by command, for each engine, from a system-wide perf recording.
 *
 *   BENCH_WINDOWS=/tmp/windows perf record -k mono -a -e cpu-clock -F 999 -o /tmp/perf.data \
 *     -- node dist/bench/pod-startup.js
 *   node dist/bench/cpu-by-command.js /tmp/perf.data /tmp/windows
 *
 * The bench notes each burst's window on CLOCK_MONOTONIC (`-k mono` makes perf stamp its
 * samples on the same clock). Every sample in a window counts 1/F s of CPU for the command
 * it caught; runc's init stages (runc:[0:PARENT] and so on) count as "runc init", kernel
 * threads as one line, and idle CPUs as "(idle)". perf's own cost is in every figure.
 *
 * That arithmetic holds only for such a recording, so anything else is refused before a
 * figure is printed: another event than cpu-clock (a hardware event does not sample idle
 * CPUs), more than one, a period (-c) instead of a frequency, not every CPU, another clock
 * than CLOCK_MONOTONIC, samples lost (perf's buffer overran), a window that is malformed or
 * not inside the recording, or one in which it has no sample.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

interface Window {
  engine: string;
  count: number;
  start: string;
  end: string;
}

function perf(args: string[]): string {
  const out = spawnSync('perf', args, { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (out.error) throw new Error(`perf: ${out.error.message}`);
  if (out.status !== 0) throw new Error(`perf ${args[0]} failed: ${out.stderr.trim()}`);
  return out.stdout;
}

function commandOf(comm: string): string {
  if (comm.startsWith('runc:[')) return 'runc init';
  if (comm === 'swapper') return '(idle)';
  if (/^(kworker|ksoftirqd|rcu_|kdamond|migration|kcompactd)/.test(comm)) return '(kernel threads)';
  return comm;
}

interface Recording {
  frequency: number;
  first: number;
  last: number;
}

/** What the recording's header says, refused unless it is the kind described above. */
function recording(data: string): Recording {
  const header = perf(['report', '--header-only', '-i', data]);
  const events = [...header.matchAll(/^# event : name = ([^,]*),(.*)$/gm)]
    .map(([, name, rest]) => ({ name: name.trim(), rest }))
    .filter((e) => !e.name.startsWith('dummy'));
  if (events.length !== 1 || !/^cpu-clock\b/.test(events[0].name)) {
    const names = events.map((e) => e.name).join(', ') || 'none';
    throw new Error(
      `${data} must sample one event, cpu-clock (perf record -e cpu-clock), not ${names}`,
    );
  }
  const { rest } = events[0];
  const frequency = /\bfreq = 1\b/.test(rest)
    ? Number(/sample_freq \} = (\d+)/.exec(rest)?.[1])
    : NaN;
  if (!(frequency > 0))
    throw new Error(`${data} does not say its sampling frequency (perf record -F)`);
  // perf counts only the command it runs (enabled on its exec) unless recording every CPU.
  if (/\benable_on_exec = 1\b/.test(rest) || !/\bsample_type = [^,]*\bCPU\b/.test(rest)) {
    throw new Error(`${data} is not a recording of every CPU (perf record -a)`);
  }
  if (!/\buse_clockid = 1\b/.test(rest) || !/\bclockid = 1\b/.test(rest)) {
    throw new Error(`${data} is not stamped on CLOCK_MONOTONIC (perf record -k mono)`);
  }
  // Samples perf could not keep up with are not in the recording: its counts fall short.
  const stats = perf(['report', '--stats', '-i', data]);
  const lost = [...stats.matchAll(/^\s*(LOST|LOST_SAMPLES) events:\s*(\d+)/gm)].filter(
    ([, , n]) => Number(n) > 0,
  );
  if (lost.length > 0) {
    const what = lost.map(([, kind, n]) => `${n} ${kind}`).join(', ');
    throw new Error(
      `${data} lost samples (${what} records): record again with a larger buffer (-m) or a lower -F`,
    );
  }
  const time = (what: string) =>
    Number(new RegExp(`^# time of ${what} sample : ([\\d.]+)$`, 'm').exec(header)?.[1]);
  const [first, last] = [time('first'), time('last')];
  if (!(first > 0 && last >= first)) throw new Error(`${data} holds no samples`);
  return { frequency, first, last };
}

const DECIMAL = /^\d+(\.\d+)?$/;

/** The windows file's lines, "ENGINE COUNT START END", each checked. */
function readWindows(file: string, rec: Recording): Window[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const fields = line.trim().split(/\s+/);
      const [engine, count, start, end] = fields;
      const bad = (why: string) => new Error(`${file}: ${why} in "${line}"`);
      if (fields.length !== 4) throw bad('not ENGINE COUNT START END');
      if (!/^[1-9]\d*$/.test(count)) throw bad(`count "${count}" is not a positive whole number`);
      if (!DECIMAL.test(start) || !DECIMAL.test(end)) throw bad('start or end is not seconds');
      if (!(Number(start) < Number(end))) throw bad('the window ends before it starts');
      // A sample period of slack at either end: the first and last samples fall in them.
      const slack = 1 / rec.frequency;
      if (Number(start) < rec.first - slack || Number(end) > rec.last + slack) {
        throw bad(`the window is not inside the recording (${rec.first} to ${rec.last})`);
      }
      return { engine, count: Number(count), start, end };
    });
}

/** One engine's lines: its CPU per container by command, summed over its windows. */
function engineReport(data: string, rec: Recording, engine: string, mine: Window[]): string[] {
  const containers = mine.reduce((sum, w) => sum + w.count, 0);
  const samples = new Map<string, number>();
  for (const w of mine) {
    const script = perf(['script', '-i', data, '-F', 'comm', '--time', `${w.start},${w.end}`]);
    const comms = script
      .split('\n')
      .map((line) => line.trim())
      .filter((comm) => comm !== '');
    if (comms.length === 0) {
      throw new Error(`${data} has no sample from ${w.start} to ${w.end} (${engine})`);
    }
    for (const comm of comms) {
      const command = commandOf(comm);
      samples.set(command, (samples.get(command) ?? 0) + 1);
    }
  }
  const ms = (n: number) => (n * 1000) / rec.frequency / containers;
  const total = [...samples.values()].reduce((a, b) => a + b, 0);
  const lines = [
    `${engine}: ${mine.length} bursts, ${containers} containers; CPU ms per container ` +
      `(all CPUs, idle included: ${ms(total).toFixed(1)})`,
  ];
  for (const [command, n] of [...samples].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    lines.push(`  ${ms(n).toFixed(2).padStart(7)}  ${command}`);
  }
  return lines;
}

function main(): void {
  const [data, windowsFile, ...more] = process.argv.slice(2);
  if (!data || !windowsFile || more.length > 0) {
    throw new Error('usage: node dist/bench/cpu-by-command.js PERF_DATA WINDOWS_FILE');
  }
  const rec = recording(data);
  const windows = readWindows(windowsFile, rec);
  if (windows.length === 0) throw new Error(`${windowsFile} names no window`);
  const engines = [...new Set(windows.map((w) => w.engine))];
  const report = engines.flatMap((e) =>
    engineReport(
      data,
      rec,
      e,
      windows.filter((w) => w.engine === e),
    ),
  );
  // Printed once every window has counted: a failure prints no figure at all.
  console.log(report.join('\n'));
}

try {
  main();
} catch (err) {
  console.error(`cpu-by-command: ${(err as Error).message}`);
  process.exit(1);
}
