import { createReadStream, watch as watchFile, statSync, type FSWatcher } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';

/**
 * Reading container logs. conmon writes them in the CRI format, one line per chunk of
 * output: `<RFC 3339 time> <stdout|stderr> <F|P> <text>`, where P marks a partial line that
 * the next entry continues. These functions give back what the container printed, optionally
 * with its timestamps, as `kubectl logs` shows it.
 */

export interface LogOptions {
  /** Only the last N lines. */
  tailLines?: number;
  /** Only lines written at or after this time (ms since epoch). */
  since?: number;
  /** Prefix each line with its RFC 3339 timestamp. */
  timestamps?: boolean;
  /** Stop after this many bytes. */
  limitBytes?: number;
}

export interface LogLine {
  time: string;
  stream: string;
  text: string;
}

/** Parses one CRI log entry; undefined for a malformed line. */
export function parseCriLine(line: string): (LogLine & { partial: boolean }) | undefined {
  const first = line.indexOf(' ');
  const second = line.indexOf(' ', first + 1);
  const third = line.indexOf(' ', second + 1);
  if (first < 0 || second < 0) return undefined;
  const tag = third < 0 ? line.slice(second + 1) : line.slice(second + 1, third);
  const text = third < 0 ? '' : line.slice(third + 1);
  return {
    time: line.slice(0, first),
    stream: line.slice(first + 1, second),
    text,
    partial: tag === 'P',
  };
}

/** Joins partial entries into whole lines, in order. */
export class LineAssembler {
  private pending?: LogLine;

  push(line: string): LogLine | undefined {
    const entry = parseCriLine(line);
    if (!entry) return undefined;
    if (this.pending) {
      this.pending.text += entry.text;
      if (entry.partial) return undefined;
      const whole = this.pending;
      this.pending = undefined;
      return whole;
    }
    if (entry.partial) {
      this.pending = { time: entry.time, stream: entry.stream, text: entry.text };
      return undefined;
    }
    return { time: entry.time, stream: entry.stream, text: entry.text };
  }
}

/** Formats a line for `kubectl logs`; times are shown in UTC with a Z, as kubelet does. */
export function formatLine(line: LogLine, timestamps: boolean | undefined): string {
  if (!timestamps) return `${line.text}\n`;
  return `${line.time.replace(/\+00:00$/, 'Z')} ${line.text}\n`;
}

/** Reads the whole log file and returns the lines that pass the options' filters. */
export async function readLog(
  path: string,
  opts: LogOptions,
): Promise<{ lines: LogLine[]; offset: number }> {
  const lines: LogLine[] = [];
  let size = 0;
  try {
    size = statSync(path).size;
  } catch {
    return { lines, offset: 0 };
  }
  const assembler = new LineAssembler();
  const rl = createInterface({
    input: createReadStream(path, { end: Math.max(0, size - 1) }),
    crlfDelay: Infinity,
  });
  for await (const raw of rl) {
    const line = assembler.push(raw);
    if (!line) continue;
    if (opts.since !== undefined && Date.parse(line.time) < opts.since) continue;
    lines.push(line);
    if (opts.tailLines !== undefined && lines.length > opts.tailLines) lines.shift();
  }
  return { lines: opts.tailLines === 0 ? [] : lines, offset: size };
}

/**
 * Writes the log to `out`, then, if `follow`, keeps writing new entries until `done()` says
 * the container has stopped (and the file has been drained) or the reader goes away.
 */
export async function streamLog(
  path: string,
  out: Writable,
  opts: LogOptions & { follow?: boolean; done?: () => Promise<boolean> },
): Promise<void> {
  const { lines, offset } = await readLog(path, opts);
  let written = 0;
  // Counted in bytes, as limitBytes is: a line of non-ASCII text is longer than its length.
  const write = (line: LogLine): boolean => {
    const bytes = Buffer.from(formatLine(line, opts.timestamps), 'utf8');
    if (opts.limitBytes !== undefined && written + bytes.length > opts.limitBytes) {
      out.write(bytes.subarray(0, opts.limitBytes - written));
      written = opts.limitBytes;
      return false;
    }
    written += bytes.length;
    out.write(bytes);
    return true;
  };
  for (const line of lines) if (!write(line)) return void out.end();
  if (!opts.follow) return void out.end();
  await follow(path, offset, write, out, opts.done ?? (async () => false));
}

async function follow(
  path: string,
  start: number,
  write: (line: LogLine) => boolean,
  out: Writable,
  done: () => Promise<boolean>,
): Promise<void> {
  let offset = start;
  let carry = '';
  const assembler = new LineAssembler();
  let closed = false;
  out.on('close', () => (closed = true));
  let watcher: FSWatcher | undefined;
  let wake: () => void = () => {};
  try {
    watcher = watchFile(path, () => wake());
  } catch {
    // The file may not exist yet; polling below still finds it.
  }
  try {
    while (!closed) {
      const chunk = await readFrom(path, offset);
      if (chunk.length > 0) {
        offset += chunk.length;
        const text = carry + chunk.toString('utf8');
        const parts = text.split('\n');
        carry = parts.pop() ?? '';
        for (const part of parts) {
          const line = assembler.push(part);
          if (line && !write(line)) return;
        }
        continue;
      }
      if (await done()) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 500);
      });
    }
  } finally {
    watcher?.close();
    out.end();
  }
}

async function readFrom(path: string, offset: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of createReadStream(path, { start: offset }))
      chunks.push(chunk as Buffer);
  } catch {
    return Buffer.alloc(0);
  }
  return Buffer.concat(chunks);
}
