/**
 * Where the machine's CPU went during the pod-startup bench's bursts: milliseconds of CPU
 * per container, by command, for each engine, from a system-wide perf recording.
 *
 *   BENCH_WINDOWS=/tmp/windows perf record -k mono -a -F 999 -o /tmp/perf.data -- \
 *     node dist/bench/pod-startup.js
 *   node dist/bench/cpu-by-command.js /tmp/perf.data /tmp/windows
 *
 * The bench notes each burst's window on CLOCK_MONOTONIC (`-k mono` makes perf stamp its
 * samples on the same clock). Every sample in a window counts 1/F s of CPU for the command
 * it caught; runc's init stages (runc:[0:PARENT] and so on) count as "runc init", kernel
 * threads as one line, and idle CPUs as "(idle)". perf's own cost is in every figure.
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

function main(): void {
  const [data, windowsFile] = process.argv.slice(2);
  if (!data || !windowsFile) {
    throw new Error('usage: node dist/bench/cpu-by-command.js PERF_DATA WINDOWS_FILE');
  }
  const frequency = Number(/sample_freq=(\d+)/.exec(perf(['evlist', '-i', data, '-F']))?.[1]);
  if (!frequency) throw new Error(`${data} does not say its sampling frequency (perf record -F)`);
  const windows: Window[] = readFileSync(windowsFile, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [engine, count, start, end] = line.trim().split(/\s+/);
      if (!end || !(Number(count) > 0)) throw new Error(`${windowsFile}: bad line "${line}"`);
      return { engine, count: Number(count), start, end };
    });
  const engines = [...new Set(windows.map((w) => w.engine))];
  for (const engine of engines) {
    const mine = windows.filter((w) => w.engine === engine);
    const containers = mine.reduce((sum, w) => sum + w.count, 0);
    const samples = new Map<string, number>();
    for (const w of mine) {
      const script = perf(['script', '-i', data, '-F', 'comm', '--time', `${w.start},${w.end}`]);
      for (const line of script.split('\n')) {
        const comm = line.trim();
        if (comm === '') continue;
        const command = commandOf(comm);
        samples.set(command, (samples.get(command) ?? 0) + 1);
      }
    }
    const ms = (n: number) => (n * 1000) / frequency / containers;
    const total = [...samples.values()].reduce((a, b) => a + b, 0);
    console.log(
      `${engine}: ${mine.length} bursts, ${containers} containers; CPU ms per container ` +
        `(all CPUs, idle included: ${ms(total).toFixed(1)})`,
    );
    for (const [command, n] of [...samples].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
      console.log(`  ${ms(n).toFixed(2).padStart(7)}  ${command}`);
    }
  }
}

main();
